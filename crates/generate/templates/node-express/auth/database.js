// The PostgreSQL pools (node-postgres): one for statements, and one of its own for the sessions
// that hold per-mall refresh locks, so a refresh waiting on Cafe24 never holds a connection the
// callback needs. Background work may not take the last DATABASE_RESERVED_CONNECTIONS
// connections of the statement pool. Nothing connects before `open()`.

import pg from 'pg';

import { Semaphore, sleep } from './concurrency.js';
import { errorName, silentLogger } from './logger.js';

/** @import { Logger } from './logger.js' */
/** @import { DatabaseTarget, Settings } from './settings.js' */

export const PERSIST_FOR_MS = 60_000;
const INT8_OID = 20;

/** No connection within DATABASE_ACQUIRE_TIMEOUT_SECS, or the connection failed. */
export class DatabaseUnavailable extends Error {
  name = 'DatabaseUnavailable';
}

/**
 * Connection-class failures (the database is down or unreachable: 503, not 500).
 * @param {unknown} error
 */
export function isUnavailable(error) {
  if (error instanceof DatabaseUnavailable) return true;
  if (!(error instanceof Error)) return false;
  const code = /** @type {{ code?: unknown }} */ (error).code;
  if (typeof code === 'string') {
    // SQLSTATE class 08 (connection exception), shutdown, cannot connect now, too many connections.
    if (code.startsWith('08') || ['57P01', '57P02', '57P03', '53300'].includes(code)) return true;
    if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH', 'EPIPE', 'EAI_AGAIN'].includes(code)) {
      return true;
    }
  }
  return /timeout exceeded when trying to connect|Connection terminated|connection timeout/i.test(error.message);
}

/**
 * bigint columns (ids, versions) as numbers: every value this schema holds fits in 2^53.
 * Per pool, so the module changes no process-wide parser.
 */
const types = {
  /**
   * @param {number} oid
   * @param {'text' | 'binary'} [format]
   * @returns {(value: string) => unknown}
   */
  getTypeParser(oid, format) {
    if (oid === INT8_OID && format !== 'binary') return Number;
    return /** @type {(value: string) => unknown} */ (pg.types.getTypeParser(oid, format ?? 'text'));
  },
};

/**
 * node-postgres options for the configured database. May hold a password: never log them.
 * @param {DatabaseTarget} target
 * @returns {pg.ClientConfig}
 */
export function connectionConfig(target) {
  if ('url' in target) return { connectionString: target.url.expose(), types };
  /** @type {pg.ClientConfig['ssl']} */
  let ssl = false;
  // node-postgres cannot fall back from TLS, so `allow` and `prefer` connect without it.
  if (target.sslMode === 'require') ssl = { rejectUnauthorized: false };
  else if (target.sslMode === 'verify-ca' || target.sslMode === 'verify-full') ssl = { rejectUnauthorized: true };
  return {
    host: target.host,
    port: target.port,
    user: target.user,
    password: target.password?.expose(),
    database: target.database,
    ssl,
    types,
  };
}

export class Database {
  /** @type {pg.ClientConfig} */
  #config;
  /** @type {pg.Pool} */
  #pool;
  /** @type {pg.Pool} */
  #lockPool;
  /** @type {Semaphore} */
  #background;
  /** @type {number} */
  #timeoutMs;
  /** @type {Logger} */
  #logger;

  /**
   * @param {Settings} settings
   * @param {{ logger?: Logger }} [options]
   */
  constructor(settings, { logger = silentLogger } = {}) {
    this.#config = connectionConfig(settings.database);
    this.#timeoutMs = settings.dbAcquireTimeoutSecs * 1000;
    this.#logger = logger;
    this.#pool = new pg.Pool({
      ...this.#config,
      max: settings.dbMaxConnections,
      connectionTimeoutMillis: this.#timeoutMs,
    });
    // A lock session is waited for as long as the lock itself.
    this.#lockPool = new pg.Pool({
      ...this.#config,
      max: settings.dbLockConnections,
      connectionTimeoutMillis: settings.refreshLockWaitSecs * 1000,
    });
    for (const pool of [this.#pool, this.#lockPool]) {
      // An idle connection that dies is dropped by the pool; say so instead of crashing.
      pool.on('error', (error) => this.#logger.warn({ error: errorName(error) }, 'an idle database connection failed'));
    }
    this.#background = new Semaphore(Math.max(settings.dbMaxConnections - settings.dbReservedConnections, 1));
  }

  /** The pool of sessions that hold per-mall advisory locks. */
  get lockPool() {
    return this.#lockPool;
  }

  /** Checks that the database answers; throws DatabaseUnavailable otherwise. */
  async open() {
    try {
      await this.#pool.query('SELECT 1');
    } catch (error) {
      if (isUnavailable(error)) throw new DatabaseUnavailable('the database is unreachable', { cause: error });
      throw error;
    }
  }

  async close() {
    await Promise.all([this.#pool.end(), this.#lockPool.end()]);
  }

  /**
   * A session of its own, outside the pools (LISTEN, migrations). The caller ends it.
   * @returns {Promise<pg.Client>}
   */
  async connect() {
    const client = new pg.Client({ ...this.#config, connectionTimeoutMillis: this.#timeoutMs });
    client.on('error', (error) => this.#logger.warn({ error: errorName(error) }, 'a database session failed'));
    await client.connect();
    return client;
  }

  /**
   * One statement on a pooled connection. Background work leaves the reserved connections to
   * the request path.
   * @param {string} text
   * @param {unknown[]} [params]
   * @param {{ background?: boolean }} [options]
   * @returns {Promise<pg.QueryResult<any>>}
   */
  query(text, params = [], { background = false } = {}) {
    const run = () => this.#pool.query(text, params);
    return background ? this.#background.use(run) : run();
  }

  /**
   * Runs `fn` in one transaction on one checked-out connection.
   * @template T
   * @param {(client: pg.PoolClient) => Promise<T>} fn
   * @param {{ background?: boolean }} [options]
   * @returns {Promise<T>}
   */
  transaction(fn, { background = false } = {}) {
    const run = async () => {
      const client = await this.#pool.connect();
      /** @param {Error} error */
      const onError = (error) =>
        this.#logger.warn({ error: errorName(error) }, 'a database connection failed in a transaction');
      client.on('error', onError);
      let broken = false;
      try {
        await client.query('BEGIN');
        const result = await fn(client);
        await client.query('COMMIT');
        return result;
      } catch (error) {
        broken = isUnavailable(error);
        await client.query('ROLLBACK').catch(() => {
          broken = true;
        });
        throw error;
      } finally {
        client.off('error', onError);
        client.release(broken);
      }
    };
    return background ? this.#background.use(run) : run();
  }
}

/**
 * Retries a write that must not be lost (a pair Cafe24 already issued) on fresh connections,
 * with backoff from 50 ms doubling to 5 s, for up to 60 s.
 * @template T
 * @param {() => Promise<T>} write
 * @param {{ what: string, mallId: string, logger?: Logger, forMs?: number }} options
 * @returns {Promise<T>}
 */
export async function persist(write, { what, mallId, logger = silentLogger, forMs = PERSIST_FOR_MS }) {
  const giveUpAt = Date.now() + forMs;
  let backoffMs = 50;
  for (;;) {
    try {
      return await write();
    } catch (error) {
      if (Date.now() + backoffMs >= giveUpAt) {
        logger.error({ mallId, error: errorName(error) }, `could not store ${what}; the mall will need a new install`);
        throw error;
      }
      logger.warn({ mallId, error: errorName(error), retryInMs: backoffMs }, `storing ${what} failed; retrying`);
      await sleep(backoffMs);
      backoffMs = Math.min(backoffMs * 2, 5000);
    }
  }
}
