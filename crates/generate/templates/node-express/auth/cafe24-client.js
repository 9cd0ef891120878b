// The Admin API client (docs/client.md): one per process, over the app's one connection pool;
// `client.mall(mallId)` binds it to a mall. A call takes the mall's token, waits for room in
// the mall's bucket, sends, and retries as the answer allows: a 401 once after a refresh, a 429
// (every method) after the pause Cafe24 asks for, 500/503/504 and lost answers with exponential
// backoff and jitter only when the request is idempotent (GET, PUT, DELETE, or a POST marked
// retrySafe), within CAFE24_API_MAX_ATTEMPTS and CAFE24_API_DEADLINE_SECS.
//
// The bucket is the fleet's (docs/contract.md §6.8): every attempt is charged to the mall's row
// in cafe24.api_budgets by one short statement, shared by every process of every implementation
// on the database, which says how long to wait; no connection is held across the call to
// Cafe24. An answer showing more use than the budget held, a *-Remain pause or a 429 corrects
// the row. While the budget does not answer within a second, an attempt is paced on this
// process's in-process mirror of a quarter of the bucket instead, and the next one tries the
// budget again.

import { request } from 'undici';

import { TimedOut, untilAborted, within } from './concurrency.js';
import { mallUrl } from './ids.js';
import { errorName, silentLogger } from './logger.js';
import { Metrics } from './metrics.js';
import { MAX_PAUSE_MS, Pacers, PastDeadline, limitReport, systemTimer } from './pacer.js';
import { describeTransportError } from './token-endpoint.js';

/** @import { Dispatcher } from 'undici' */
/** @import { Logger } from './logger.js' */
/** @import { LimitReport, MallPacer, Timer } from './pacer.js' */
/** @import { Secret } from './secret.js' */
/** @import { Settings } from './settings.js' */
/** @import { BudgetTake } from './store.js' */

const ADMIN_PREFIX = '/api/v2/admin';
const PAGE_LIMIT = 100;
const PRODUCTS_OFFSET_CAP = 5000;
const DEFAULT_OFFSET_CAP = 8000;
const PATH_CHARS = /^[A-Za-z0-9\-._~/%,]*$/;
const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']);
const RETRIED_STATUSES = new Set([500, 503, 504]);

/**
 * While the shared budget does not answer, a process paces itself on this share of the bucket
 * (depth and drain): four processes falling back together still stay within it.
 */
export const FALLBACK_SHARE = 0.25;
/**
 * Calls of headroom the shared budget keeps below Cafe24's bucket: calls leave on the database's
 * schedule but reach Cafe24 with a few milliseconds of jitter each.
 */
export const SHARED_HEADROOM = 1;
/** How long a statement on the shared budget may take before the attempt goes without it. */
export const BUDGET_TIMEOUT_MS = 1000;

/**
 * Where access tokens come from (the TokenManager).
 * @typedef {object} TokenSource
 * @property {(mallId: string, options?: { signal?: AbortSignal }) => Promise<Secret>} accessToken
 * @property {(mallId: string, rejected: Secret, options?: { signal?: AbortSignal }) => Promise<Secret>} refreshRejected
 */

/**
 * The mall's fleet-wide Admin API budget in PostgreSQL (contract §6.8): the Store.
 * @typedef {object} SharedBudget
 * @property {(mallId: string, budget: { size: number, drainPerSec: number, maxWaitSecs: number }) => Promise<BudgetTake>} takeApiCall
 * @property {(mallId: string, report: { used: number | null, drainPerSec: number, pauseSecs: number | null }) => Promise<void>} observeApiLimit
 */

/** @typedef {Record<string, string | number> | Array<[string, string | number]>} Query */
/** @typedef {{ status: number, body: any, attempts: number, limit: LimitReport }} ApiResponse */
/** @typedef {{ product_no: number, product_code?: string, product_name?: string, price?: string } & Record<string, unknown>} Product */
/**
 * A variant: `quantity` in lists, under `inventories` in the answer to an update.
 * @typedef {{ variant_code: string, quantity?: number, display?: string, selling?: string,
 *   inventories?: { quantity?: number } & Record<string, unknown> } & Record<string, unknown>} Variant
 */
/** @typedef {{ shop_no?: number, mall_id?: string, shop_name?: string } & Record<string, unknown>} StoreInfo */
/** @typedef {{ quantity?: number, display?: 'T' | 'F', selling?: 'T' | 'F', additional_amount?: string } & Record<string, unknown>} VariantUpdate */

/** An Admin API call failed; no error carries a token. */
export class Cafe24ApiError extends Error {
  name = 'Cafe24ApiError';

  /**
   * @param {string} message
   * @param {{ attempts?: number }} [details]
   */
  constructor(message, { attempts = 0 } = {}) {
    super(message);
    this.attempts = attempts;
  }
}

/** Cafe24 answered with an error: its status, code, message and body are kept. */
export class Cafe24Refused extends Cafe24ApiError {
  name = 'Cafe24Refused';

  /** @param {{ status: number, body: any, attempts: number }} answer */
  constructor({ status, body, attempts }) {
    const error = body !== null && typeof body === 'object' ? body.error : undefined;
    const message = error !== null && typeof error === 'object' ? String(error.message ?? '') : '';
    super(`Cafe24 answered ${status}: ${message.slice(0, 200)}`, { attempts });
    this.status = status;
    this.body = body;
    this.code = error !== null && typeof error === 'object' ? (error.code ?? null) : null;
    this.cafe24Message = message;
  }
}

/** No answer (connection refused, dropped, timed out). */
export class Cafe24Unreachable extends Cafe24ApiError {
  name = 'Cafe24Unreachable';
}
/** No success within CAFE24_API_DEADLINE_SECS. */
export class Cafe24Deadline extends Cafe24ApiError {
  name = 'Cafe24Deadline';
}
/** The request cannot be sent (a path that could leave the Admin API, a reserved filter). */
export class InvalidApiRequest extends Cafe24ApiError {
  name = 'InvalidApiRequest';
}
/** Cafe24's answer did not have the expected shape. */
export class MalformedAnswer extends Cafe24ApiError {
  name = 'MalformedAnswer';
}
/** Paging stopped: a full page brought nothing new (the cursor was ignored). */
export class NoProgress extends Cafe24ApiError {
  name = 'NoProgress';
}

/**
 * `raw` relative to /api/v2/admin, checked so a call cannot leave the mall's API.
 * @param {string} raw
 * @returns {string}
 * @throws {InvalidApiRequest}
 */
export function adminPath(raw) {
  let path = raw.startsWith(ADMIN_PREFIX) ? raw.slice(ADMIN_PREFIX.length) : raw;
  if (!path.startsWith('/')) path = `/${path}`;
  if (path.length < 2 || path.length > 1024) throw new InvalidApiRequest('the path is empty or too long');
  if (!PATH_CHARS.test(path)) throw new InvalidApiRequest('the path may hold only letters, digits and - . _ ~ / % ,');
  const segments = path.split('/').map((segment) => segment.toLowerCase().replaceAll('%2e', '.'));
  if (path.includes('//') || segments.some((segment) => segment === '.' || segment === '..')) {
    throw new InvalidApiRequest('the path must not contain empty, . or .. segments');
  }
  return path.replace(/\/+$/, '');
}

/**
 * @param {Query | undefined} query
 * @returns {string}
 */
function queryString(query) {
  if (query === undefined) return '';
  const pairs = Array.isArray(query) ? query : Object.entries(query);
  const search = new URLSearchParams(
    pairs.map(([key, value]) => /** @type {[string, string]} */ ([key, String(value)])),
  ).toString();
  return search ? `?${search}` : '';
}

/** The process's Admin API client: tokens, pacing per mall and retries, shared by all callers. */
export class Cafe24Client {
  /**
   * Without `budget`, every call is paced on the in-process mirror of the whole bucket (one
   * process alone on the mall); with it, on the fleet's budget, and the mirror is the fallback
   * share. `metrics` counts which paced each attempt.
   * @param {{ dispatcher: Dispatcher, tokens: TokenSource, settings: Settings, budget?: SharedBudget | null,
   *   metrics?: Metrics, timer?: Timer, random?: () => number, logger?: Logger }} options
   */
  constructor({
    dispatcher,
    tokens,
    settings,
    budget = null,
    metrics = new Metrics(),
    timer = systemTimer,
    random = Math.random,
    logger = silentLogger,
  }) {
    this.dispatcher = dispatcher;
    this.tokens = tokens;
    this.settings = settings;
    this.budget = budget;
    this.metrics = metrics;
    this.random = random;
    this.logger = logger;
    const size = settings.apiBucketSize;
    const drainPerSec = settings.apiDrainPerSec;
    this.pacers = new Pacers(
      budget === null
        ? { size, drainPerSec, timer }
        : { size: Math.max(size * FALLBACK_SHARE, 1), drainPerSec: drainPerSec * FALLBACK_SHARE, timer },
    );
  }

  /**
   * The client bound to one mall (and one shop of it).
   * @param {string} mallId
   * @param {{ shopNo?: number }} [options]
   */
  mall(mallId, { shopNo = 1 } = {}) {
    return new MallClient(this, mallId, shopNo);
  }
}

export class MallClient {
  #client;
  /**
   * The in-process mirror: the whole bucket without a shared budget, the fallback share with one.
   * @type {MallPacer}
   */
  pacer;

  /**
   * @param {Cafe24Client} client
   * @param {string} mallId
   * @param {number} shopNo
   */
  constructor(client, mallId, shopNo) {
    this.#client = client;
    this.mallId = mallId;
    this.shopNo = shopNo;
    this.url = mallUrl(client.settings.baseUrl, mallId, ADMIN_PREFIX);
    this.pacer = client.pacers.mall(mallId);
  }

  /**
   * Sends with pacing and retries; a non-success answer throws Cafe24Refused.
   * @param {string} method
   * @param {string} path relative to /api/v2/admin
   * @param {{ query?: Query, json?: unknown, retrySafe?: boolean, signal?: AbortSignal }} [options]
   * @returns {Promise<ApiResponse>}
   */
  async send(method, path, { query, json, retrySafe = false, signal } = {}) {
    const c = this.#client;
    const s = c.settings;
    const verb = method.toUpperCase();
    const url = this.url + adminPath(path) + queryString(query);
    const idempotent = retrySafe || IDEMPOTENT.has(verb);
    const timer = c.pacers.timer;
    const deadline = timer.now() + s.apiDeadlineSecs * 1000;
    let token = await c.tokens.accessToken(this.mallId, { signal });
    let refreshed = false;
    let attempts = 0;
    let failures = 0;
    let rateLimited = 0;
    for (;;) {
      /** @type {number | null} */
      let level;
      try {
        level = await this.#pace(deadline, signal);
      } catch (error) {
        if (error instanceof PastDeadline)
          throw new Cafe24Deadline("no room in the mall's call budget before the deadline", { attempts });
        throw error;
      }
      attempts += 1;
      const answer = await this.#attempt(verb, url, token, json, signal).catch((error) => ({ failed: error }));
      /** @type {{ error: Cafe24ApiError, reason: string, waitMs: number }} */
      let retry;
      if ('failed' in answer) {
        if (signal?.aborted) throw signal.reason;
        const unreachable = new Cafe24Unreachable(
          `Cafe24 could not be reached: ${describeTransportError(answer.failed)}`,
          { attempts },
        );
        if (!idempotent) throw unreachable;
        failures += 1;
        retry = { error: unreachable, reason: 'transport', waitMs: this.#backoff(failures) };
      } else {
        const limit = limitReport(answer.headers);
        this.pacer.observe(limit);
        if (answer.status !== 429 && level !== null) await this.#correctShared(level, limit);
        if (answer.status >= 200 && answer.status < 300) {
          if (answer.body === UNREADABLE) throw new MalformedAnswer("Cafe24's answer is not JSON", { attempts });
          return { status: answer.status, body: answer.body, attempts, limit };
        }
        const refused = new Cafe24Refused({
          status: answer.status,
          body: answer.body === UNREADABLE ? null : answer.body,
          attempts,
        });
        if (answer.status === 401 && !refreshed) {
          // Refused before processing: refresh once (or pick up another caller's refresh).
          refreshed = true;
          c.logger.info({ mallId: this.mallId }, '401 from Cafe24: refreshing the token and retrying once');
          token = await c.tokens.refreshRejected(this.mallId, token, { signal });
          continue;
        }
        if (answer.status === 429) {
          // Refused before processing: safe to send again, for every method. The pause is the wait.
          failures += 1;
          rateLimited += 1;
          const pauseMs = Math.min(limit.remainMs ?? this.#backoff(failures), MAX_PAUSE_MS);
          this.pacer.limited(pauseMs);
          // The bucket is full whatever the budget thought, and paused.
          if (c.budget !== null) await this.#observeShared(c.budget, s.apiBucketSize, pauseMs / 1000);
          retry = { error: refused, reason: 'rate_limited', waitMs: 0 };
        } else if (RETRIED_STATUSES.has(answer.status) && idempotent) {
          failures += 1;
          retry = { error: refused, reason: 'server_error', waitMs: this.#backoff(failures) };
        } else {
          throw refused;
        }
      }
      if (attempts - rateLimited >= s.apiMaxAttempts) {
        c.logger.warn({ mallId: this.mallId, method: verb, path, attempts }, 'giving up: no attempts left');
        throw retry.error;
      }
      if (timer.now() + retry.waitMs > deadline) {
        throw new Cafe24Deadline(`no success before the deadline: ${retry.error.message}`, { attempts });
      }
      const waitMs = Math.round(retry.waitMs);
      c.logger.warn(
        { mallId: this.mallId, method: verb, path, reason: retry.reason, attempt: attempts, waitMs },
        'retrying',
      );
      if (waitMs > 0) await timer.sleep(waitMs, signal);
    }
  }

  /**
   * Waits for room for one attempt. With a shared budget the attempt is charged to the mall's
   * row and the level it goes at is returned; if that statement fails or takes longer than
   * BUDGET_TIMEOUT_MS, the in-process fallback share paces it instead (null).
   * @param {number} deadline on the pacing timer's clock
   * @param {AbortSignal | undefined} signal
   * @returns {Promise<number | null>}
   * @throws {PastDeadline}
   */
  async #pace(deadline, signal) {
    const c = this.#client;
    if (c.budget !== null) {
      const s = c.settings;
      const timer = c.pacers.timer;
      signal?.throwIfAborted();
      const taking = c.budget.takeApiCall(this.mallId, {
        size: Math.max(s.apiBucketSize - SHARED_HEADROOM, 1),
        drainPerSec: s.apiDrainPerSec,
        maxWaitSecs: Math.max(deadline - timer.now(), 0) / 1000,
      });
      /** @type {BudgetTake | null} */
      let taken = null;
      try {
        taken = await untilAborted(within(taking, BUDGET_TIMEOUT_MS), signal);
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        c.logger.warn(
          { mallId: this.mallId, error: errorName(error) },
          error instanceof TimedOut
            ? "the shared API budget did not answer in time; pacing on this process's share"
            : "the shared API budget is unreachable; pacing on this process's share",
        );
      }
      if (taken !== null) {
        if (taken.waitSecs < 0) throw new PastDeadline("no room in the mall's budget before the deadline");
        c.metrics.paced('shared');
        if (taken.waitSecs > 0) await timer.sleep(taken.waitSecs * 1000, signal);
        return taken.level;
      }
      c.metrics.paced('fallback');
    }
    await this.pacer.acquire({ deadline, signal });
    return null;
  }

  /**
   * Corrects the shared budget when an answer shows more use than it held (calls from outside
   * the fleet) or asks for a pause; otherwise costs nothing.
   * @param {number} level the calls in the bucket when this attempt went, itself included
   * @param {LimitReport} limit
   */
  async #correctShared(level, limit) {
    const c = this.#client;
    if (c.budget === null) return;
    const used = limit.callLimit === null ? null : Math.min(limit.callLimit.used, c.settings.apiBucketSize);
    const raised = used !== null && used > level + 1 ? used : null;
    const pauseSecs = limit.remainMs === null ? null : limit.remainMs / 1000;
    if (raised === null && pauseSecs === null) return;
    await this.#observeShared(c.budget, raised, pauseSecs);
  }

  /**
   * `cafe24.observe_api_limit`, bounded by BUDGET_TIMEOUT_MS; a failure is only logged (the
   * next answer corrects the row again).
   * @param {SharedBudget} budget
   * @param {number | null} used
   * @param {number | null} pauseSecs
   */
  async #observeShared(budget, used, pauseSecs) {
    const c = this.#client;
    try {
      await within(
        budget.observeApiLimit(this.mallId, { used, drainPerSec: c.settings.apiDrainPerSec, pauseSecs }),
        BUDGET_TIMEOUT_MS,
      );
    } catch (error) {
      c.logger.warn(
        { mallId: this.mallId, error: errorName(error) },
        'could not correct the shared API budget; the next answer will',
      );
    }
  }

  /**
   * @param {string} method
   * @param {string} url
   * @param {Secret} token
   * @param {unknown} json
   * @param {AbortSignal | undefined} signal
   */
  async #attempt(method, url, token, json, signal) {
    const s = this.#client.settings;
    /** @type {Record<string, string>} */
    const headers = { authorization: `Bearer ${token.expose()}`, accept: 'application/json' };
    if (s.apiVersion !== null) headers['x-cafe24-api-version'] = s.apiVersion;
    if (json !== undefined) headers['content-type'] = 'application/json';
    const timeout = AbortSignal.timeout(s.apiTimeoutSecs * 1000);
    const response = await request(url, {
      dispatcher: this.#client.dispatcher,
      method: /** @type {Dispatcher.HttpMethod} */ (method),
      headers,
      body: json === undefined ? undefined : JSON.stringify(json),
      signal: signal ? AbortSignal.any([timeout, signal]) : timeout,
    });
    const text = await response.body.text();
    return { status: response.statusCode, headers: response.headers, body: parseJson(text) };
  }

  /**
   * Exponential backoff with equal jitter: half fixed, half random.
   * @param {number} failures
   */
  #backoff(failures) {
    const s = this.#client.settings;
    const ceiling = Math.min(s.apiBackoffMs * 2 ** Math.min(failures - 1, 16), s.apiBackoffMaxMs);
    return ceiling / 2 + (ceiling / 2) * this.#client.random();
  }

  /**
   * @param {string} path
   * @param {Query} [query]
   * @returns {Promise<any>}
   */
  async get(path, query) {
    return (await this.send('GET', path, { query })).body;
  }

  /**
   * `GET /products` with filters (limit, offset, display, …).
   * @param {Record<string, string | number>} [filters]
   * @returns {Promise<Product[]>}
   */
  async products(filters = {}) {
    return listOf(take(await this.get('/products', filters), 'products'), isProduct, 'products');
  }

  /**
   * @param {Record<string, string | number>} [filters]
   * @returns {Promise<number>}
   */
  async productsCount(filters = {}) {
    const count = take(await this.get('/products/count', filters), 'count');
    if (typeof count !== 'number') throw new MalformedAnswer('"count" is not a number');
    return count;
  }

  /**
   * @param {number} productNo
   * @returns {Promise<Product>}
   */
  async product(productNo) {
    return one(take(await this.get(`/products/${productNo}`), 'product'), isProduct, 'product');
  }

  /**
   * @param {number} productNo
   * @returns {Promise<Variant[]>}
   */
  async variants(productNo) {
    return listOf(take(await this.get(`/products/${productNo}/variants`), 'variants'), isVariant, 'variants');
  }

  /**
   * `PUT /products/{no}/variants/{code}`: inventory and display of one variant.
   * @param {number} productNo
   * @param {string} variantCode
   * @param {VariantUpdate} update
   * @returns {Promise<Variant>}
   */
  async updateVariant(productNo, variantCode, update) {
    const body = { shop_no: this.shopNo, request: update };
    const answer = await this.send('PUT', `/products/${productNo}/variants/${variantCode}`, { json: body });
    return one(take(answer.body, 'variant'), isVariant, 'variant');
  }

  /** @returns {Promise<StoreInfo>} */
  async store() {
    const store = take(await this.get('/store', { shop_no: this.shopNo }), 'store');
    if (store === null || typeof store !== 'object') throw new MalformedAnswer('"store" is not an object');
    return store;
  }

  /**
   * Every product matching `filters`, page by page, in ascending product_no and without
   * duplicates: by offset up to Cafe24's cap of 5,000, then by since_product_no (which Cafe24
   * refuses to combine with offset, sort or order).
   * @param {Record<string, string | number>} [filters]
   * @returns {AsyncGenerator<Product[]>}
   */
  async *productPages(filters = {}) {
    checkFilters(filters, ['limit', 'offset', 'since_product_no', 'sort', 'order', 'product_no']);
    /** @type {number | null} */
    let offset = 0;
    let lastKey = -1;
    for (;;) {
      const query =
        offset === null
          ? { ...filters, limit: PAGE_LIMIT, since_product_no: Math.max(lastKey, 0) }
          : { ...filters, limit: PAGE_LIMIT, order: 'asc', offset };
      const items = listOf(take(await this.get('/products', query), 'products'), isProduct, 'products');
      const fresh = items.filter((item) => {
        if (item.product_no <= lastKey) return false;
        lastKey = item.product_no;
        return true;
      });
      const full = items.length >= PAGE_LIMIT;
      if (full && fresh.length === 0)
        throw new NoProgress('a full page of products brought nothing new; paging stopped');
      if (fresh.length) yield fresh;
      if (!full) return;
      offset = offset !== null && offset + PAGE_LIMIT <= PRODUCTS_OFFSET_CAP ? offset + PAGE_LIMIT : null;
    }
  }

  /**
   * Any list endpoint by offset up to `offsetCap`; the items are the answer's first array.
   * @param {string} path
   * @param {{ offsetCap?: number, filters?: Record<string, string | number> }} [options]
   * @returns {AsyncGenerator<unknown[]>}
   */
  async *pages(path, { offsetCap = DEFAULT_OFFSET_CAP, filters = {} } = {}) {
    checkFilters(filters, ['limit', 'offset']);
    adminPath(path);
    let previous = '';
    for (let offset = 0; ; offset += PAGE_LIMIT) {
      const body = await this.get(path, { ...filters, limit: PAGE_LIMIT, offset });
      const items = body !== null && typeof body === 'object' ? Object.values(body).find(Array.isArray) : undefined;
      if (items === undefined) throw new MalformedAnswer(`no list in the answer of ${path}`);
      const full = items.length >= PAGE_LIMIT;
      const seen = JSON.stringify(items);
      if (full && seen === previous) throw new NoProgress(`the same page of ${path} came back; paging stopped`);
      previous = seen;
      if (items.length) yield items;
      if (!full) return;
      if (offset + PAGE_LIMIT > offsetCap) {
        this.#client.logger.warn({ path }, 'offset cap reached: later items cannot be listed by offset');
        return;
      }
    }
  }
}

const UNREADABLE = Symbol('unreadable');

/** @param {string} text */
function parseJson(text) {
  if (text === '') return null;
  try {
    return JSON.parse(text);
  } catch {
    return UNREADABLE;
  }
}

/**
 * @param {any} body
 * @param {string} key
 */
function take(body, key) {
  if (body === null || typeof body !== 'object' || !(key in body))
    throw new MalformedAnswer(`no "${key}" in the answer`);
  return body[key];
}

/**
 * @template T
 * @param {unknown} value
 * @param {(item: any) => item is T} is
 * @param {string} what
 * @returns {T}
 */
function one(value, is, what) {
  if (!is(value)) throw new MalformedAnswer(`"${what}" does not have the expected shape`);
  return value;
}

/**
 * @template T
 * @param {unknown} value
 * @param {(item: any) => item is T} is
 * @param {string} what
 * @returns {T[]}
 */
function listOf(value, is, what) {
  if (!Array.isArray(value) || !value.every(is))
    throw new MalformedAnswer(`"${what}" does not have the expected shape`);
  return value;
}

/**
 * @param {any} item
 * @returns {item is Product}
 */
function isProduct(item) {
  return item !== null && typeof item === 'object' && Number.isInteger(item.product_no);
}

/**
 * @param {any} item
 * @returns {item is Variant}
 */
function isVariant(item) {
  return item !== null && typeof item === 'object' && typeof item.variant_code === 'string';
}

/**
 * @param {Record<string, unknown>} filters
 * @param {string[]} reserved
 */
function checkFilters(filters, reserved) {
  for (const key of Object.keys(filters)) {
    if (reserved.includes(key)) throw new InvalidApiRequest(`${key} is set by the pager; it cannot be a filter here`);
  }
}
