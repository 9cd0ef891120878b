// The Admin API client (docs/client.md) against a local stand-in for Cafe24 whose answers each
// test scripts, with a virtual timer: pacing, 429 pauses, retries, the 401 refresh, paging, and
// what the client asks of the shared budget (contract §6.8) and does with its answers.
// The same client against the real sandbox and its real bucket: cafe24-api.test.js; the
// budget in PostgreSQL shared by several clients: api-budget.test.js.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { after, before, beforeEach, describe, it } from 'node:test';

import { Agent } from 'undici';

import { Cafe24Client, Cafe24Deadline, Cafe24Refused, InvalidApiRequest, NoProgress } from '../auth/cafe24-client.js';
import { Metrics } from '../auth/metrics.js';
import { Secret } from '../auth/secret.js';
import { loadSettings } from '../auth/settings.js';
import { testEnv } from './support/harness.js';

/** @import { SharedBudget } from '../auth/cafe24-client.js' */
/** @import { BudgetTake } from '../auth/store.js' */

/** Time that jumps instead of passing: a minute of the 40/2s bucket takes milliseconds. */
class VirtualTimer {
  ms = 0;
  now = () => this.ms;
  /** @param {number} ms @param {AbortSignal} [signal] */
  sleep = async (ms, signal) => {
    signal?.throwIfAborted();
    this.ms += Math.max(ms, 0);
    await new Promise((resolve) => setImmediate(resolve));
  };
}

/** @typedef {{ status?: number, headers?: Record<string, string>, body?: unknown, drop?: boolean }} Scripted */
/** @typedef {{ method: string, url: URL, headers: import('node:http').IncomingHttpHeaders, body: string }} Seen */

/** @type {Seen[]} */
let seen = [];
/** @type {(request: Seen) => Scripted} */
let answer = () => ({ body: {} });

const server = createServer((req, res) => {
  let body = '';
  req.setEncoding('utf8').on('data', (chunk) => (body += chunk));
  req.on('end', () => {
    const request = { method: req.method ?? '', url: new URL(req.url ?? '/', 'http://x'), headers: req.headers, body };
    seen.push(request);
    const scripted = answer(request);
    if (scripted.drop) return void res.socket?.destroy();
    res.writeHead(scripted.status ?? 200, {
      'content-type': 'application/json',
      'x-api-call-limit': '1/40',
      ...scripted.headers,
    });
    res.end(scripted.body === undefined ? '' : JSON.stringify(scripted.body));
  });
});
const dispatcher = new Agent();
let refreshes = 0;
const tokens = {
  accessToken: async () => new Secret('token-1'),
  /** @param {string} _mallId @param {Secret} rejected */
  refreshRejected: async (_mallId, rejected) => {
    refreshes += 1;
    return new Secret(rejected.expose() === 'token-1' ? 'token-2' : 'token-3');
  },
};
/** @type {string} */
let baseUrl;

/**
 * A client with its own pacers, timer and metrics.
 * @param {Record<string, string>} [overrides]
 * @param {{ budget?: SharedBudget }} [options]
 */
function client(overrides = {}, { budget } = {}) {
  const settings = loadSettings({
    ...testEnv({ databaseUrl: 'postgres://x@127.0.0.1:1/x' }),
    CAFE24_BASE_URL: baseUrl,
    ...overrides,
  });
  const timer = new VirtualTimer();
  const metrics = new Metrics();
  const api = new Cafe24Client({ dispatcher, tokens, settings, budget, metrics, timer, random: () => 0.5 });
  return { timer, metrics, shop: api.mall('shop1') };
}

/**
 * A stand-in for the shared budget that records what it is asked; `take` decides each answer.
 * @param {(asked: { size: number, drainPerSec: number, maxWaitSecs: number }) => Promise<BudgetTake>} take
 */
function scriptedBudget(take) {
  /** @type {Array<{ mallId: string, size: number, drainPerSec: number, maxWaitSecs: number }>} */
  const takes = [];
  /** @type {Array<{ mallId: string, used: number | null, drainPerSec: number, pauseSecs: number | null }>} */
  const observed = [];
  /** @type {SharedBudget} */
  const budget = {
    takeApiCall: async (mallId, asked) => {
      takes.push({ mallId, ...asked });
      return take(asked);
    },
    observeApiLimit: async (mallId, report) => {
      observed.push({ mallId, ...report });
    },
  };
  return { budget, takes, observed };
}

before(async () => {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  baseUrl = `http://127.0.0.1:${/** @type {import('node:net').AddressInfo} */ (server.address()).port}/m/{mall_id}`;
});
after(async () => {
  await dispatcher.close();
  server.close();
});
beforeEach(() => {
  seen = [];
  refreshes = 0;
  answer = () => ({ body: { count: 1 } });
});

describe('pacing (docs/client.md)', () => {
  it('lets 40 calls through at once and paces the rest at 2 per second, in arrival order', async () => {
    const { timer, shop } = client();
    await Promise.all(Array.from({ length: 45 }, () => shop.productsCount()));
    assert.equal(shop.pacer.stats.granted, 45);
    assert.equal(shop.pacer.stats.delayed, 5);
    assert.ok(timer.ms >= 2400 && timer.ms <= 2600, `${timer.ms} ms`);
  });

  it('raises its mirror from X-Api-Call-Limit (other processes share the bucket)', async () => {
    const { timer, shop } = client();
    answer = () => ({ body: { count: 1 }, headers: { 'x-api-call-limit': '40/40' } });
    await shop.productsCount();
    await shop.productsCount();
    assert.equal(shop.pacer.stats.corrections, 1);
    assert.ok(timer.ms >= 500, `the second call waited ${timer.ms} ms`);
  });
});

describe('the shared budget (contract §6.8)', () => {
  it('draws every attempt from it with one call of headroom, and waits what it says', async () => {
    const { budget, takes, observed } = scriptedBudget(async () => ({ waitSecs: 1.5, level: 12 }));
    const { timer, metrics, shop } = client({}, { budget });
    assert.equal(await shop.productsCount(), 1);
    assert.deepEqual(takes, [{ mallId: 'shop1', size: 39, drainPerSec: 2, maxWaitSecs: 120 }]);
    assert.equal(timer.ms, 1500);
    assert.deepEqual(observed, [], 'an answer within the budget costs no second statement');
    assert.equal(metrics.value('cafe24_api_paced', { budget: 'shared' }), 1);
    assert.equal(shop.pacer.stats.granted, 0, 'the in-process mirror did not pace it');
  });

  it('corrects it when Cafe24 shows more use than it held, or asks for a pause', async () => {
    const { budget, observed } = scriptedBudget(async () => ({ waitSecs: 0, level: 3 }));
    const { shop } = client({}, { budget });
    answer = () => ({ body: { count: 1 }, headers: { 'x-api-call-limit': '4/40' } });
    await shop.productsCount();
    assert.deepEqual(observed, [], 'one call more than the level is jitter, not outside use');
    answer = () => ({ body: { count: 1 }, headers: { 'x-api-call-limit': '55/40' } });
    await shop.productsCount();
    answer = () => ({ body: { count: 1 }, headers: { 'x-api-call-limit': '2/40', 'x-cafe24-time-remain': '2' } });
    await shop.productsCount();
    assert.deepEqual(observed, [
      { mallId: 'shop1', used: 40, drainPerSec: 2, pauseSecs: null },
      { mallId: 'shop1', used: null, drainPerSec: 2, pauseSecs: 2 },
    ]);
  });

  it('fills and pauses it on a 429, then draws again', async () => {
    const { budget, takes, observed } = scriptedBudget(async () => ({ waitSecs: 0, level: 1 }));
    const { shop } = client({}, { budget });
    answer = () =>
      seen.length === 1 ? { status: 429, headers: { 'x-cafe24-call-remain': '3' } } : { body: { count: 5 } };
    assert.equal(await shop.productsCount(), 5);
    assert.deepEqual(observed, [{ mallId: 'shop1', used: 40, drainPerSec: 2, pauseSecs: 3 }]);
    assert.equal(takes.length, 2);
  });

  it('gives up at the deadline when it has no room in time, sending nothing', async () => {
    const { budget } = scriptedBudget(async () => ({ waitSecs: -1, level: 39 }));
    const { shop } = client({}, { budget });
    await assert.rejects(shop.productsCount(), Cafe24Deadline);
    assert.equal(seen.length, 0);
  });

  it('paces on a quarter of the bucket while it fails, trying it again for every attempt', async () => {
    let failing = true;
    const { budget, takes } = scriptedBudget(async () => {
      if (failing) throw new Error('function cafe24.take_api_call does not exist');
      return { waitSecs: 0, level: 1 };
    });
    const { timer, metrics, shop } = client({}, { budget });
    await Promise.all(Array.from({ length: 12 }, () => shop.productsCount()));
    // The fallback share of 40 deep, 2 per second: 10 at once, then one every 2 seconds.
    assert.equal(shop.pacer.stats.granted, 12);
    assert.equal(shop.pacer.stats.delayed, 2);
    assert.ok(timer.ms >= 4000 && timer.ms <= 4100, `${timer.ms} ms`);
    assert.equal(metrics.value('cafe24_api_paced', { budget: 'fallback' }), 12);
    failing = false;
    await shop.productsCount();
    assert.equal(takes.length, 13);
    assert.equal(metrics.value('cafe24_api_paced', { budget: 'shared' }), 1);
  });
});

describe('retries (docs/client.md)', () => {
  it('pauses the whole mall for *-Remain on a 429 and sends again, whatever the method', async () => {
    const { timer, shop } = client();
    answer = () =>
      seen.length === 1
        ? { status: 429, headers: { 'x-cafe24-call-remain': '3', 'x-cafe24-time-remain': '-1' } }
        : { status: 201, body: { ok: 1 } };
    const made = await shop.send('POST', '/products', { json: { request: {} } });
    assert.equal(made.status, 201);
    assert.equal(made.attempts, 2);
    assert.ok(timer.ms >= 3000, `${timer.ms} ms`);
  });

  it('never pauses longer than 10 minutes, whatever a header says', async () => {
    const { timer, shop } = client({ CAFE24_API_DEADLINE_SECS: '3600' });
    answer = () =>
      seen.length === 1 ? { status: 429, headers: { 'x-cafe24-call-remain': '99999' } } : { body: { count: 2 } };
    assert.equal(await shop.productsCount(), 2);
    assert.ok(timer.ms <= 600_000 + 1000, `${timer.ms} ms`);
  });

  it('retries 500, 503 and 504 for a GET with growing backoff', async () => {
    const { timer, shop } = client();
    const statuses = [500, 503, 504];
    answer = () => (statuses.length ? { status: statuses.shift() } : { body: { count: 7 } });
    assert.equal(await shop.productsCount(), 7);
    assert.equal(seen.length, 4);
    // equal jitter with random() = 0.5: 375 + 750 + 1500 ms
    assert.ok(Math.abs(timer.ms - 2625) < 5, `${timer.ms} ms`);
  });

  it('does not retry a POST after a 500 unless it is marked safe', async () => {
    const { shop } = client();
    answer = () =>
      seen.length === 1 ? { status: 500, body: { error: { code: 500, message: 'oops' } } } : { status: 201, body: {} };
    const refused = await shop.send('POST', '/products', { json: {} }).catch((e) => e);
    assert.ok(refused instanceof Cafe24Refused && refused.status === 500 && refused.attempts === 1, String(refused));
    seen = [];
    assert.equal((await shop.send('POST', '/products', { json: {}, retrySafe: true })).attempts, 2);
  });

  it('retries a dropped connection for a GET', async () => {
    const { shop } = client();
    answer = () => (seen.length === 1 ? { drop: true } : { body: { count: 3 } });
    assert.equal(await shop.productsCount(), 3);
  });

  it('gives up after CAFE24_API_MAX_ATTEMPTS, keeping Cafe24 answer', async () => {
    const { shop } = client({ CAFE24_API_MAX_ATTEMPTS: '3' });
    answer = () => ({ status: 503, body: { error: { code: 503, message: 'busy' } } });
    const refused = await shop.productsCount().catch((e) => e);
    assert.ok(refused instanceof Cafe24Refused, String(refused));
    assert.equal(refused.status, 503);
    assert.equal(refused.attempts, 3);
    assert.equal(refused.cafe24Message, 'busy');
  });

  it('stops at CAFE24_API_DEADLINE_SECS', async () => {
    const { shop } = client({ CAFE24_API_DEADLINE_SECS: '2', CAFE24_API_BACKOFF_MS: '1000' });
    answer = () => ({ status: 503 });
    await assert.rejects(shop.productsCount(), Cafe24Deadline);
  });

  it('refreshes once after a 401 and retries once; a second 401 is returned', async () => {
    const { shop } = client();
    answer = (request) =>
      request.headers.authorization === 'Bearer token-2'
        ? { body: { count: 9 } }
        : { status: 401, body: { error: { code: 401, message: 'Invalid access_token' } } };
    assert.equal(await shop.productsCount(), 9);
    assert.equal(refreshes, 1);
    answer = () => ({ status: 401, body: { error: { code: 401, message: 'Invalid access_token' } } });
    const refused = await shop.productsCount().catch((e) => e);
    assert.ok(refused instanceof Cafe24Refused && refused.status === 401, String(refused));
    assert.equal(refreshes, 2);
    assert.doesNotMatch(`${refused.message} ${JSON.stringify(refused)}`, /token-\d/);
  });

  it('returns other refusals at once', async () => {
    const { shop } = client();
    answer = () => ({ status: 422, body: { error: { code: 422, message: 'limit must be 1-100' } } });
    const refused = await shop.products({ limit: 101 }).catch((e) => e);
    assert.ok(refused instanceof Cafe24Refused && refused.status === 422 && refused.attempts === 1, String(refused));
  });
});

describe('requests', () => {
  it('sends the bearer token, JSON and X-Cafe24-Api-Version', async () => {
    const { shop } = client({ CAFE24_API_VERSION: '2025-12-01' });
    answer = () => ({ body: { variant: { variant_code: 'P000000R000C', quantity: 5 } } });
    const variant = await shop.updateVariant(12, 'P000000R000C', { quantity: 5 });
    assert.equal(variant.quantity, 5);
    const request = /** @type {Seen} */ (seen[0]);
    assert.equal(request.method, 'PUT');
    assert.equal(request.url.pathname, '/m/shop1/api/v2/admin/products/12/variants/P000000R000C');
    assert.equal(request.headers.authorization, 'Bearer token-1');
    assert.equal(request.headers['x-cafe24-api-version'], '2025-12-01');
    assert.deepEqual(JSON.parse(request.body), { shop_no: 1, request: { quantity: 5 } });
  });

  it('refuses a path that could leave the Admin API before sending anything', async () => {
    const { shop } = client();
    for (const path of ['/products/../../oauth/token', '/products/%2e%2E/x', '/a//b', '/products?x=1', '/a b']) {
      await assert.rejects(shop.send('GET', path), InvalidApiRequest, path);
    }
    assert.equal(seen.length, 0);
  });
});

describe('paging', () => {
  /** @param {number} total */
  const catalogue = (total) => (/** @type {Seen} */ request) => {
    const q = request.url.searchParams;
    const limit = Number(q.get('limit'));
    const since = q.get('since_product_no');
    const first = since === null ? Number(q.get('offset')) + 1 : Number(since) + 1;
    if (since === null && Number(q.get('offset')) > 5000)
      return { status: 422, body: { error: { code: 422, message: 'offset' } } };
    const products = [];
    for (let no = first; no < first + limit && no <= total; no += 1)
      products.push({ product_no: no, product_name: `P${no}` });
    return { body: { products } };
  };

  it('reads every product in ascending order past the 5,000 offset cap, without duplicates', async () => {
    const { shop } = client();
    answer = catalogue(5250);
    const numbers = [];
    for await (const page of shop.productPages({ display: 'T' })) numbers.push(...page.map((p) => p.product_no));
    assert.equal(numbers.length, 5250);
    assert.ok(numbers.every((no, i) => no === i + 1));
    assert.ok(
      seen.some((r) => r.url.searchParams.has('since_product_no')),
      'switched to keyset paging',
    );
    assert.ok(seen.every((r) => r.url.searchParams.get('display') === 'T'));
  });

  it('stops with NoProgress when the server ignores the cursor', async () => {
    const { shop } = client();
    answer = () => ({ body: { products: Array.from({ length: 100 }, (_, i) => ({ product_no: i + 1 })) } });
    const pages = [];
    await assert.rejects(async () => {
      for await (const page of shop.productPages()) pages.push(page);
    }, NoProgress);
    assert.equal(pages.length, 1);
  });

  it('refuses filters the pager sets itself', async () => {
    const { shop } = client();
    await assert.rejects(async () => {
      for await (const page of shop.productPages({ offset: 10 })) assert.fail(String(page));
    }, InvalidApiRequest);
  });
});
