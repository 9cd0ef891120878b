// The exchange queue (docs/contract.md §6.3): every stored code is swapped for tokens while it is
// still valid. A pass expires what is too old (never sent), claims a batch newest first with
// FOR UPDATE SKIP LOCKED (any number of workers, in any language, share the queue) and
// exchanges each claimed code as detached work, fenced by its claim (id, attempts). The worker
// wakes on the callback (in process), on NOTIFY cafe24_authorization_codes (codes stored by any
// writer) and on a poll, because notifications are lost while a listener reconnects.

import { once } from 'node:events';
import { performance } from 'node:perf_hooks';

import { sleep } from './concurrency.js';
import { persist } from './database.js';
import { errorName, silentLogger } from './logger.js';
import { Secret } from './secret.js';
import { OAuthError } from './token-endpoint.js';
import { sealedPair } from './token-manager.js';

/** @import { TrackedWork } from './concurrency.js' */
/** @import { Database } from './database.js' */
/** @import { Logger } from './logger.js' */
/** @import { ClaimedCode, Store } from './store.js' */
/** @import { TokenEndpoint } from './token-endpoint.js' */
/** @import { TokenManager } from './token-manager.js' */
/** @import { Settings } from './settings.js' */

export const CHANNEL = 'cafe24_authorization_codes';
const BATCH = 32;
const SEND_MARGIN_MS = 2000;
const MAX_BACKOFF_MS = 4000;
const LEASE_SLACK_SECS = 10;
const POLL_LISTENING_MS = 2000;
const POLL_NOT_LISTENING_MS = 200;
const RELISTEN_MS = 1000;

/** @typedef {'exchanged' | 'failed' | 'retried' | 'expired'} ExchangeOutcome */
/** @typedef {{ expired: number, claimed: number, exchanged: number, failed: number, retried: number }} ExchangeSummary */

/**
 * How long a claim is held before another worker may take the code over: the token call, the
 * longest retry backoff and time for the writes, so a live worker is never overtaken.
 * @param {Settings} settings
 */
export function claimLeaseSecs(settings) {
  return settings.httpTimeoutSecs + MAX_BACKOFF_MS / 1000 + LEASE_SLACK_SECS;
}

/** Claims stored codes and exchanges them; one per process, started by startCafe24(). */
export class Exchanger {
  #db;
  #store;
  #endpoint;
  #tokens;
  #settings;
  #work;
  #logger;
  #listening = false;
  #woken = false;
  #wakeUp = () => {};
  /** @type {AbortController | null} */
  #running = null;
  /** @type {Promise<unknown> | null} */
  #loops = null;

  /**
   * @param {{ db: Database, store: Store, endpoint: TokenEndpoint, tokens: TokenManager,
   *   settings: Settings, work: TrackedWork, logger?: Logger }} options
   */
  constructor({ db, store, endpoint, tokens, settings, work, logger = silentLogger }) {
    this.#db = db;
    this.#store = store;
    this.#endpoint = endpoint;
    this.#tokens = tokens;
    this.#settings = settings;
    this.#work = work;
    this.#logger = logger;
  }

  get listening() {
    return this.#listening;
  }

  /** A code was stored: run a pass now. */
  wake() {
    this.#woken = true;
    this.#wakeUp();
  }

  /**
   * One pass: expire, claim, exchange what was claimed.
   * @returns {Promise<ExchangeSummary>}
   */
  async runOnce() {
    const lifetimeSecs = this.#settings.codeLifetimeSecs;
    const summary = {
      expired: await this.#store.expireCodes(lifetimeSecs),
      claimed: 0,
      exchanged: 0,
      failed: 0,
      retried: 0,
    };
    const claimed = await this.#store.claimCodes({
      lifetimeSecs,
      leaseSecs: claimLeaseSecs(this.#settings),
      batch: BATCH,
    });
    summary.claimed = claimed.length;
    const claimedAt = performance.now();
    // Each exchange is detached: once a code is sent, its tokens are stored whatever happens
    // to this pass.
    const outcomes = await Promise.allSettled(
      claimed.map((code) => this.#work.run(() => this.#exchangeOne(code, claimedAt))),
    );
    for (const outcome of outcomes) {
      if (outcome.status === 'fulfilled') {
        summary[outcome.value] += 1;
      } else {
        this.#logger.error(
          { error: errorName(outcome.reason) },
          'recording an exchange failed; the claim will be retried',
        );
        summary.failed += 1;
      }
    }
    return summary;
  }

  /**
   * Passes until nothing is claimed (retries included).
   * @returns {Promise<ExchangeSummary>}
   */
  async drain() {
    const total = { expired: 0, claimed: 0, exchanged: 0, failed: 0, retried: 0 };
    for (;;) {
      const summary = await this.runOnce();
      for (const key of /** @type {const} */ (['expired', 'claimed', 'exchanged', 'failed', 'retried']))
        total[key] += summary[key];
      if (summary.claimed === 0) return total;
    }
  }

  /** Exchanges codes as they arrive, until stop(). */
  start() {
    if (this.#running) return;
    const running = new AbortController();
    this.#running = running;
    this.#loops = Promise.all([this.#loop(running.signal), this.#listen(running.signal)]);
  }

  /** Stops claiming; exchanges already started are TrackedWork, drained by the runtime. */
  async stop() {
    this.#running?.abort();
    this.#wakeUp();
    await this.#loops;
    this.#running = null;
    this.#loops = null;
  }

  /** @param {AbortSignal} signal */
  async #loop(signal) {
    while (!signal.aborted) {
      this.#woken = false;
      try {
        await this.runOnce();
      } catch (error) {
        this.#logger.warn({ error: errorName(error) }, 'exchange pass failed; retrying');
      }
      if (this.#woken || signal.aborted) continue;
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, this.#listening ? POLL_LISTENING_MS : POLL_NOT_LISTENING_MS);
        this.#wakeUp = () => {
          clearTimeout(timer);
          resolve(undefined);
        };
      });
      this.#wakeUp = () => {};
    }
  }

  /** @param {AbortSignal} signal */
  async #listen(signal) {
    while (!signal.aborted) {
      /** @type {import('pg').Client | null} */
      let client = null;
      const hangUp = () => void client?.end().catch(() => {});
      signal.addEventListener('abort', hangUp, { once: true });
      try {
        client = await this.#db.connect();
        client.on('notification', () => this.wake());
        // An 'error' rejects this wait too: either way the session is over.
        const ended = once(client, 'end').catch(() => {});
        await client.query(`LISTEN ${CHANNEL}`);
        this.#listening = true;
        await ended;
      } catch (error) {
        if (!signal.aborted)
          this.#logger.warn({ error: errorName(error) }, 'listening for stored codes failed; polling meanwhile');
      } finally {
        this.#listening = false;
        signal.removeEventListener('abort', hangUp);
        hangUp();
      }
      await sleep(RELISTEN_MS, signal).catch(() => {});
    }
  }

  /**
   * @param {ClaimedCode} code
   * @param {number} claimedAt performance.now() at the claim
   * @returns {Promise<ExchangeOutcome>}
   */
  async #exchangeOne(code, claimedAt) {
    const lifetimeMs = this.#settings.codeLifetimeSecs * 1000;
    const ageMs = () => code.ageSecs * 1000 + performance.now() - claimedAt;
    if (ageMs() + SEND_MARGIN_MS >= lifetimeMs)
      return this.#finish(code, 'expired', 'not exchanged within the code lifetime');
    let tokens;
    try {
      tokens = await this.#endpoint.exchange(code.mallId, new Secret(code.code));
    } catch (error) {
      if (!(error instanceof OAuthError)) throw error;
      if (!error.retryable) {
        this.#logger.warn({ codeId: code.id, mallId: code.mallId, error: error.message }, 'exchange refused');
        return this.#finish(code, 'failed', error.message);
      }
      const backoffMs = Math.min(250 * 2 ** (Math.min(Math.max(code.attempts, 1), 5) - 1), MAX_BACKOFF_MS);
      if (ageMs() + backoffMs + SEND_MARGIN_MS >= lifetimeMs) {
        return this.#finish(code, 'expired', `Cafe24 unreachable within the code lifetime: ${error.message}`);
      }
      this.#logger.warn(
        { codeId: code.id, mallId: code.mallId, error: error.message, backoffMs },
        'exchange failed; retrying',
      );
      await sleep(backoffMs);
      if (!(await this.#store.retryCode(code, error.message))) {
        this.#logger.warn({ codeId: code.id }, 'the claim was taken over before it was put back');
      }
      return 'retried';
    }
    if (tokens.mallId !== null && tokens.mallId !== code.mallId) {
      return this.#finish(code, 'failed', 'Cafe24 issued tokens for a different mall');
    }
    const fresh = sealedPair(this.#tokens.sealer, code.mallId, tokens, this.#settings.clientId);
    // Cafe24 has consumed the code: these tokens are the only copy of the grant.
    const version = await persist(() => this.#store.completeExchange(code, fresh), {
      what: 'the exchanged grant',
      mallId: code.mallId,
      logger: this.#logger,
    });
    await this.#tokens.flagIncomplete(code.mallId, tokens);
    this.#logger.info({ codeId: code.id, mallId: code.mallId, version }, 'code exchanged: mall installed');
    return 'exchanged';
  }

  /**
   * @param {ClaimedCode} code
   * @param {'expired' | 'failed'} outcome
   * @param {string} error
   * @returns {Promise<ExchangeOutcome>}
   */
  async #finish(code, outcome, error) {
    if (!(await this.#store.finishCode(code, outcome, error))) {
      this.#logger.warn({ codeId: code.id }, 'the claim was taken over; the new holder records the outcome');
    }
    return outcome;
  }
}
