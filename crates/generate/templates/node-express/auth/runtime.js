// What the module holds while the app runs: the database pools, the one HTTP connection pool for
// every call to Cafe24, the token manager, the exchange worker and keep-alive. Built by
// startCafe24() when the app starts — never at import, never per request. close() stops taking
// work, then waits for work in flight (CAFE24_HTTP_TIMEOUT_SECS + 62 s at most: one token call,
// then the persist window) before closing the connection pool and the database.

import { Agent } from 'undici';

import { Cafe24Client } from './cafe24-client.js';
import { TrackedWork } from './concurrency.js';
import { Sealer } from './crypto.js';
import { Database, PERSIST_FOR_MS } from './database.js';
import { Exchanger } from './exchange.js';
import { KeepAlive } from './keepalive.js';
import { silentLogger } from './logger.js';
import { Metrics } from './metrics.js';
import { migrate } from './migrate.js';
import { StateSigner } from './state.js';
import { Store } from './store.js';
import { TokenEndpoint } from './token-endpoint.js';
import { JOURNAL_SLACK_MS, TokenManager } from './token-manager.js';

/** @import { Logger } from './logger.js' */
/** @import { Timer } from './pacer.js' */
/** @import { Settings } from './settings.js' */

const KEEP_ALIVE_MS = 10_000;

/**
 * @typedef {object} StartOptions
 * @property {Logger} [logger]
 * @property {() => Date} [clock] decides expiry and signs states; tests move it instead of sleeping
 * @property {boolean} [runWorker] exchange codes and keep malls alive in this process (default true)
 * @property {boolean} [migrate] apply the schema at start (default true)
 * @property {Timer} [timer] the Admin API client's pacing clock
 */

/** The running module; the routers and the app's own code take what they need from it. */
export class Cafe24 {
  /**
   * @param {{ settings: Settings, logger: Logger, db: Database, dispatcher: Agent, work: TrackedWork,
   *   store: Store, signer: StateSigner, tokens: TokenManager, exchanger: Exchanger,
   *   keepAlive: KeepAlive, client: Cafe24Client, metrics: Metrics }} parts
   */
  constructor(parts) {
    this.settings = parts.settings;
    this.logger = parts.logger;
    this.db = parts.db;
    this.dispatcher = parts.dispatcher;
    this.work = parts.work;
    this.store = parts.store;
    this.signer = parts.signer;
    this.tokens = parts.tokens;
    this.exchanger = parts.exchanger;
    this.keepAlive = parts.keepAlive;
    this.client = parts.client;
    this.metrics = parts.metrics;
  }

  /** How long shutdown waits for work already sent: one token call, then the persist window. */
  get drainBoundMs() {
    return this.settings.httpTimeoutSecs * 1000 + JOURNAL_SLACK_MS + PERSIST_FOR_MS;
  }

  /** Stops taking work, waits for the work in flight, then closes the pool and the database. */
  async close() {
    await Promise.all([this.exchanger.stop(), this.keepAlive.stop()]);
    if (this.work.size > 0) this.logger.info({ inFlight: this.work.size }, 'waiting for token work in flight');
    if (!(await this.work.drain(this.drainBoundMs))) {
      this.logger.error({ inFlight: this.work.size }, 'token work still running at the end of the shutdown bound');
    }
    await this.dispatcher.close();
    await this.db.close();
  }
}

/**
 * Connects, migrates, builds everything and (unless told not to) starts the worker.
 * @param {Settings} settings
 * @param {StartOptions} [options]
 * @returns {Promise<Cafe24>}
 */
export async function startCafe24(settings, options = {}) {
  const { logger = silentLogger, clock = () => new Date(), runWorker = true, timer } = options;
  const db = new Database(settings, { logger });
  try {
    await db.open();
    if (options.migrate ?? true) {
      const session = await db.connect();
      try {
        await migrate(session, { logger });
      } finally {
        await session.end();
      }
    }
  } catch (error) {
    await db.close();
    throw error;
  }
  const dispatcher = new Agent({
    connect: { timeout: Math.min(settings.httpTimeoutSecs, 5) * 1000 },
    keepAliveTimeout: KEEP_ALIVE_MS,
  });
  const work = new TrackedWork();
  const store = new Store(db, { logger });
  const endpoint = new TokenEndpoint({ dispatcher, settings, clock });
  const metrics = new Metrics();
  const tokens = new TokenManager({
    store,
    endpoint,
    sealer: new Sealer(settings.keyRing),
    settings,
    work,
    clock,
    logger,
  });
  const cafe24 = new Cafe24({
    settings,
    logger,
    db,
    dispatcher,
    work,
    store,
    signer: new StateSigner({ secret: settings.stateSecret, ttlSecs: settings.stateTtlSecs }),
    tokens,
    exchanger: new Exchanger({ db, store, endpoint, tokens, settings, work, logger }),
    keepAlive: new KeepAlive({ tokens, store, settings, logger }),
    // Every Admin API call draws from the mall's fleet-wide budget (contract §6.8).
    client: new Cafe24Client({ dispatcher, tokens, settings, budget: store, metrics, timer, logger }),
    metrics,
  });
  if (runWorker) {
    cafe24.exchanger.start();
    cafe24.keepAlive.start();
  }
  return cafe24;
}
