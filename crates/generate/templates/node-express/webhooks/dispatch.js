// Acting on stored events, off the request path (docs/contract.md §6.7): 90077 (app deleted) and
// 90078 (app expired) revoke the mall through the token lifecycle, unless older than its current
// grant; then the app's handlers run; then the optional forward. Failures are retried with
// exponential backoff (1 s doubling, at most 300 s) and dead-lettered after
// CAFE24_WEBHOOK_MAX_ATTEMPTS. Delivery is at least once: handlers must be idempotent (the
// event's id and dedupe key are given for that).

import { createHmac } from 'node:crypto';

import { request } from 'undici';

import { errorName, silentLogger } from '../auth/logger.js';

/** @import { Dispatcher as HttpDispatcher } from 'undici' */
/** @import { Logger } from '../auth/logger.js' */
/** @import { TokenManager } from '../auth/token-manager.js' */
/** @import { WebhookSettings } from './settings.js' */
/** @import { WebhookEvent, WebhookStore } from './store.js' */

export const APP_DELETED = 90077;
export const APP_EXPIRED = 90078;
const CLAIM_LEASE_SECS = 60;
const BATCH = 32;
const POLL_MS = 500;
const MAX_BACKOFF_MS = 300_000;
const FORWARD_TIMEOUT_MS = 10_000;

/** @typedef {(event: WebhookEvent) => Promise<void>} WebhookHandler */
/** @typedef {{ dispatched: number, retried: number, deadLettered: number }} DispatchSummary */

export class Dispatcher {
  #store;
  #tokens;
  #handlers;
  #settings;
  #http;
  #logger;
  #backoffMs;
  #woken = false;
  #wakeUp = () => {};
  /** @type {AbortController | null} */
  #running = null;
  /** @type {Promise<void> | null} */
  #loop = null;

  /**
   * @param {{ store: WebhookStore, tokens: TokenManager, settings: WebhookSettings, http: HttpDispatcher,
   *   handlers?: WebhookHandler[], logger?: Logger, backoffMs?: number }} options
   */
  constructor({ store, tokens, settings, http, handlers = [], logger = silentLogger, backoffMs = 1000 }) {
    this.#store = store;
    this.#tokens = tokens;
    this.#settings = settings;
    this.#http = http;
    this.#handlers = handlers;
    this.#logger = logger;
    this.#backoffMs = backoffMs;
  }

  /** An event was stored: dispatch now. */
  wake() {
    this.#woken = true;
    this.#wakeUp();
  }

  /**
   * Dispatches every event that is due now.
   * @returns {Promise<DispatchSummary>}
   */
  async runOnce() {
    const summary = { dispatched: 0, retried: 0, deadLettered: 0 };
    for (;;) {
      const events = await this.#store.claim({ leaseSecs: CLAIM_LEASE_SECS, batch: BATCH });
      if (events.length === 0) return summary;
      for (const event of events) {
        try {
          await this.#act(event);
        } catch (error) {
          const reason = (error instanceof Error ? `${error.name}: ${error.message}` : String(error)).slice(0, 500);
          if (event.attempts >= this.#settings.maxAttempts) {
            this.#logger.error(
              { eventId: event.id, mallId: event.mallId, error: errorName(error) },
              'webhook event dead-lettered',
            );
            await this.#store.deadLetter(event.id, reason);
            summary.deadLettered += 1;
          } else {
            const waitMs = Math.min(this.#backoffMs * 2 ** Math.min(event.attempts - 1, 16), MAX_BACKOFF_MS);
            this.#logger.warn(
              { eventId: event.id, attempt: event.attempts, error: errorName(error), waitMs },
              'webhook event failed',
            );
            await this.#store.retry(event.id, reason, new Date(Date.now() + waitMs));
            summary.retried += 1;
          }
          continue;
        }
        await this.#store.dispatched(event.id);
        summary.dispatched += 1;
      }
    }
  }

  /** Dispatches as events arrive and as retries fall due, until stop(). */
  start() {
    if (this.#running) return;
    const running = new AbortController();
    this.#running = running;
    this.#loop = this.#run(running.signal);
  }

  async stop() {
    this.#running?.abort();
    this.#wakeUp();
    await this.#loop;
    this.#running = null;
    this.#loop = null;
  }

  /** @param {AbortSignal} signal */
  async #run(signal) {
    while (!signal.aborted) {
      this.#woken = false;
      try {
        await this.runOnce();
      } catch (error) {
        this.#logger.warn({ error: errorName(error) }, 'webhook dispatch pass failed');
      }
      if (this.#woken || signal.aborted) continue;
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, POLL_MS);
        this.#wakeUp = () => {
          clearTimeout(timer);
          resolve(undefined);
        };
      });
      this.#wakeUp = () => {};
    }
  }

  /** @param {WebhookEvent} event */
  async #act(event) {
    if (event.eventNo === APP_DELETED || event.eventNo === APP_EXPIRED) {
      const reason = `app ${event.eventNo === APP_DELETED ? 'deleted' : 'expired'} (event ${event.eventNo})`;
      await this.#tokens.uninstalled(event.mallId, { reason, occurredAt: event.occurredAt });
    }
    for (const handler of this.#handlers) await handler(event);
    if (this.#settings.forward !== null) await this.#forward(event, this.#settings.forward);
  }

  /**
   * POSTs the raw body, signed, to CAFE24_WEBHOOK_FORWARD_URL; any 2xx is success.
   * @param {WebhookEvent} event
   * @param {{ url: string, secret: import('../auth/secret.js').Secret }} forward
   */
  async #forward(event, forward) {
    const signature = createHmac('sha256', forward.secret.expose()).update(event.body).digest('hex');
    const response = await request(forward.url, {
      dispatcher: this.#http,
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-cafe24-oauth-signature': `sha256=${signature}`,
        'x-cafe24-oauth-event-id': String(event.id),
        'x-cafe24-oauth-dedupe-key': event.dedupeKey,
        'x-cafe24-oauth-event-no': String(event.eventNo),
      },
      body: event.body,
      signal: AbortSignal.timeout(FORWARD_TIMEOUT_MS),
    });
    await response.body.dump();
    if (response.statusCode < 200 || response.statusCode >= 300) {
      throw new Error(`the forward target answered ${response.statusCode}`);
    }
  }
}
