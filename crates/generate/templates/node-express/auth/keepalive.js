// Keep-alive (docs/contract.md §10.3): a refresh token unused for 14 days dies and the mall must
// install again, so every active mall whose refresh token expires within the window is
// refreshed through the full protocol, at most CAFE24_KEEPALIVE_CONCURRENCY at once and
// CAFE24_KEEPALIVE_RATE started per second. On stop no new refresh starts.

import { Semaphore, sleep } from './concurrency.js';
import { errorName, silentLogger } from './logger.js';
import { TokenError } from './token-manager.js';

/** @import { Logger } from './logger.js' */
/** @import { Store } from './store.js' */
/** @import { TokenManager } from './token-manager.js' */
/** @import { Settings } from './settings.js' */

const MAX_DUE_PER_PASS = 10_000;

/** @typedef {{ due: number, refreshed: number, skipped: number, failed: number }} KeepAliveSummary */

/**
 * Refreshes the malls due now.
 * @param {{ tokens: TokenManager, store: Store, settings: Settings, signal?: AbortSignal, logger?: Logger }} options
 * @returns {Promise<KeepAliveSummary>}
 */
export async function keepAlivePass({ tokens, store, settings, signal, logger = silentLogger }) {
  const windowMs = settings.keepaliveWindowSecs * 1000;
  const due = await store.mallsDue(new Date(tokens.now().getTime() + windowMs), MAX_DUE_PER_PASS);
  const summary = { due: due.length, refreshed: 0, skipped: 0, failed: 0 };
  const permits = new Semaphore(settings.keepaliveConcurrency);
  /** @type {Promise<void>[]} */
  const started = [];
  /** @param {string} mallId */
  const refresh = async (mallId) => {
    try {
      if (await tokens.keepAlive(mallId, windowMs)) summary.refreshed += 1;
      else summary.skipped += 1;
    } catch (error) {
      if (!(error instanceof TokenError)) throw error;
      logger.warn({ mallId, error: error.message }, 'keep-alive refresh failed');
      summary.failed += 1;
    } finally {
      permits.release();
    }
  };
  for (const mallId of due) {
    if (signal?.aborted) break;
    await permits.acquire();
    started.push(refresh(mallId));
    await sleep(1000 / settings.keepaliveRate, signal).catch(() => {});
  }
  await Promise.all(started);
  return summary;
}

/** A keep-alive pass every CAFE24_KEEPALIVE_INTERVAL_SECS, from start() to stop(). */
export class KeepAlive {
  #options;
  /** @type {AbortController | null} */
  #running = null;
  /** @type {Promise<void> | null} */
  #loop = null;

  /** @param {{ tokens: TokenManager, store: Store, settings: Settings, logger?: Logger }} options */
  constructor(options) {
    this.#options = options;
  }

  start() {
    if (this.#running) return;
    const running = new AbortController();
    this.#running = running;
    this.#loop = this.#run(running.signal);
  }

  async stop() {
    this.#running?.abort();
    await this.#loop;
    this.#running = null;
    this.#loop = null;
  }

  /** @param {AbortSignal} signal */
  async #run(signal) {
    const { logger = silentLogger, settings } = this.#options;
    while (!signal.aborted) {
      try {
        const summary = await keepAlivePass({ ...this.#options, signal });
        if (summary.due > 0) logger.info(summary, 'keep-alive pass');
      } catch (error) {
        logger.warn({ error: errorName(error) }, 'keep-alive pass failed; retrying next interval');
      }
      await sleep(settings.keepaliveIntervalSecs * 1000, signal).catch(() => {});
    }
  }
}
