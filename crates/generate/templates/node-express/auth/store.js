// The `cafe24` schema's statements for codes, tokens, mall events, the per-mall lock and the
// fleet-wide Admin API budget, exactly as docs/contract.md §6 and §9 write them, so any mix of
// implementations on one database agrees.

import { errorName, silentLogger } from './logger.js';

/** @import pg from 'pg' */
/** @import { Database } from './database.js' */
/** @import { Logger } from './logger.js' */

/** @typedef {'active' | 'needs_reauth' | 'revoked'} MallStatus */

/**
 * One row of cafe24.tokens; the tokens are ciphertext (auth/crypto.js).
 * @typedef {object} TokenRow
 * @property {string} mallId
 * @property {string | null} shopNo
 * @property {string | null} userId
 * @property {string} clientId
 * @property {string} scopes
 * @property {string} keyId
 * @property {Buffer} accessToken
 * @property {Date} accessExpiresAt
 * @property {Buffer} refreshToken
 * @property {Date} refreshExpiresAt
 * @property {Date | null} issuedAt
 * @property {MallStatus} status
 * @property {number} version
 * @property {Date | null} refreshStartedAt
 * @property {Date | null} lastRefreshedAt
 * @property {string | null} lastError
 * @property {Date} installedAt
 */

/**
 * A sealed pair to write.
 * @typedef {object} NewTokens
 * @property {string} mallId
 * @property {string | null} shopNo
 * @property {string | null} userId
 * @property {string} clientId
 * @property {string[]} scopes
 * @property {string} keyId
 * @property {Buffer} accessToken
 * @property {Date} accessExpiresAt
 * @property {Buffer} refreshToken
 * @property {Date} refreshExpiresAt
 * @property {Date | null} issuedAt
 * @property {string | null} note the row's last_error: a note about an incomplete response
 */

/** @typedef {{ id: number, code: string, mallId: string, ageSecs: number, attempts: number }} ClaimedCode */

/**
 * One call taken from a mall's budget (§6.8): wait `waitSecs`, then send; `level` is the calls in
 * the bucket when it goes, itself included. `waitSecs` is -1 when the wait would pass the
 * longest one accepted (nothing was charged).
 * @typedef {{ waitSecs: number, level: number }} BudgetTake
 */

const TOKEN_COLUMNS = `mall_id, shop_no, user_id, client_id, scopes, key_id, access_token, access_expires_at,
    refresh_token, refresh_expires_at, issued_at, status, version, refresh_started_at,
    last_refreshed_at, last_error, installed_at`;
const LOCK = "SELECT pg_advisory_lock(hashtextextended('cafe24.mall:' || $1, 0))";
const UNLOCK = "SELECT pg_advisory_unlock(hashtextextended('cafe24.mall:' || $1, 0)) AS released";
const LOCK_NOT_AVAILABLE = '55P03';
const TAKE_API_CALL = 'SELECT wait_secs, level FROM cafe24.take_api_call($1, $2, $3, $4)';
const OBSERVE_API_LIMIT = 'SELECT cafe24.observe_api_limit($1, $2, $3, $4)';

const INSERT_CODE = `
WITH waiting AS (
    SELECT count(*) AS n FROM cafe24.authorization_codes
    WHERE mall_id = $3 AND status IN ('pending', 'processing')
      AND created_at > now() - interval '120 seconds'
)
INSERT INTO cafe24.authorization_codes (code, state, mall_id)
SELECT $1, $2, $3 FROM waiting WHERE n < $4
ON CONFLICT (state) DO NOTHING RETURNING id`;
const EXPIRE_CODES = `
UPDATE cafe24.authorization_codes
SET status = 'expired', code = '', processed_at = now(),
    last_error = 'not exchanged within the code lifetime'
WHERE status IN ('pending', 'processing') AND created_at < now() - make_interval(secs => $1)`;
const CLAIM_CODES = `
UPDATE cafe24.authorization_codes AS c
SET status = 'processing', attempts = c.attempts + 1, claimed_at = now()
FROM (SELECT id FROM cafe24.authorization_codes
      WHERE mall_id IS NOT NULL
        AND created_at >= now() - make_interval(secs => $1)
        AND (status = 'pending'
             OR (status = 'processing' AND claimed_at < now() - make_interval(secs => $2)))
      ORDER BY created_at DESC, id DESC LIMIT $3
      FOR UPDATE SKIP LOCKED) AS picked
WHERE c.id = picked.id
RETURNING c.id, c.code, c.mall_id, EXTRACT(EPOCH FROM (now() - c.created_at))::float8 AS age, c.attempts`;
const FINISH_CODE = `
UPDATE cafe24.authorization_codes
SET status = $3, code = '', last_error = $4, processed_at = now()
WHERE id = $1 AND attempts = $2 AND status = 'processing'`;
const RETRY_CODE = `
UPDATE cafe24.authorization_codes SET status = 'pending', claimed_at = NULL, last_error = $3
WHERE id = $1 AND attempts = $2 AND status = 'processing'`;
const INSTALL = `
INSERT INTO cafe24.tokens (mall_id, shop_no, user_id, client_id, scopes, key_id, access_token,
    access_expires_at, refresh_token, refresh_expires_at, issued_at, status, version, updated_at,
    installed_at, last_error)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'active', 1, now(), now(), $12)
ON CONFLICT (mall_id) DO UPDATE SET
    shop_no = EXCLUDED.shop_no, user_id = EXCLUDED.user_id, client_id = EXCLUDED.client_id,
    scopes = EXCLUDED.scopes, key_id = EXCLUDED.key_id, access_token = EXCLUDED.access_token,
    access_expires_at = EXCLUDED.access_expires_at, refresh_token = EXCLUDED.refresh_token,
    refresh_expires_at = EXCLUDED.refresh_expires_at, issued_at = EXCLUDED.issued_at,
    status = 'active', version = cafe24.tokens.version + 1, refresh_started_at = NULL,
    last_error = EXCLUDED.last_error, updated_at = now(), installed_at = now()
RETURNING version`;
const CODE_EXCHANGED = `
UPDATE cafe24.authorization_codes
SET status = 'exchanged', code = '', last_error = NULL, processed_at = now()
WHERE id = $1 AND attempts = $2`;
const REPLACE_TOKENS = `
UPDATE cafe24.tokens SET
    shop_no = COALESCE($3, shop_no), user_id = COALESCE($4, user_id), scopes = $5, key_id = $6,
    access_token = $7, access_expires_at = $8, refresh_token = $9, refresh_expires_at = $10,
    issued_at = $11, version = version + 1, refresh_started_at = NULL, last_refreshed_at = $12,
    last_error = $13, status = 'active', updated_at = now()
WHERE mall_id = $1 AND version = $2 AND status <> 'revoked'`;
const SET_STATUS = `
UPDATE cafe24.tokens SET status = $2, last_error = $3, refresh_started_at = NULL, updated_at = now(),
    access_token = CASE WHEN $2 = 'revoked' THEN ''::bytea ELSE access_token END,
    refresh_token = CASE WHEN $2 = 'revoked' THEN ''::bytea ELSE refresh_token END
WHERE mall_id = $1 AND version = $4`;
const NOTE_ERROR = `
UPDATE cafe24.tokens SET last_error = $2, refresh_started_at = CASE WHEN $3 THEN NULL ELSE refresh_started_at END
WHERE mall_id = $1`;

/** The mall's refresh lock was not free within CAFE24_REFRESH_LOCK_WAIT_SECS. */
export class LockTimeout extends Error {
  name = 'LockTimeout';
}

/**
 * @param {Record<string, any>} row
 * @returns {TokenRow}
 */
function tokenRow(row) {
  return {
    mallId: row.mall_id,
    shopNo: row.shop_no,
    userId: row.user_id,
    clientId: row.client_id,
    scopes: row.scopes,
    keyId: row.key_id,
    accessToken: row.access_token,
    accessExpiresAt: row.access_expires_at,
    refreshToken: row.refresh_token,
    refreshExpiresAt: row.refresh_expires_at,
    issuedAt: row.issued_at,
    status: row.status,
    version: Number(row.version),
    refreshStartedAt: row.refresh_started_at,
    lastRefreshedAt: row.last_refreshed_at,
    lastError: row.last_error,
    installedAt: row.installed_at,
  };
}

/**
 * @param {NewTokens} t
 * @param {number} version
 * @param {Date} at
 */
function replaceParams(t, version, at) {
  return [
    t.mallId,
    version,
    t.shopNo,
    t.userId,
    t.scopes.join(','),
    t.keyId,
    t.accessToken,
    t.accessExpiresAt,
    t.refreshToken,
    t.refreshExpiresAt,
    t.issuedAt,
    at,
    t.note,
  ];
}

/** @typedef {{ query(text: string, params: unknown[]): Promise<pg.QueryResult<any>> }} Queryable */

/**
 * @param {Queryable} db
 * @param {string} mallId
 * @returns {Promise<TokenRow | null>}
 */
async function readTokens(db, mallId) {
  const { rows } = await db.query(`SELECT ${TOKEN_COLUMNS} FROM cafe24.tokens WHERE mall_id = $1`, [mallId]);
  return rows.length ? tokenRow(rows[0]) : null;
}

/** A session holding the mall's advisory lock; every statement here runs on it. */
export class MallLock {
  /** @type {pg.PoolClient} */
  #client;

  /**
   * @param {pg.PoolClient} client
   * @param {string} mallId
   */
  constructor(client, mallId) {
    this.#client = client;
    this.mallId = mallId;
  }

  current() {
    return readTokens(this.#client, this.mallId);
  }

  /**
   * The journal: a refresh token of this row may be at Cafe24 from `at` on (§9.4).
   * @param {Date} at
   */
  async journal(at) {
    await this.#client.query('UPDATE cafe24.tokens SET refresh_started_at = $2 WHERE mall_id = $1', [this.mallId, at]);
  }

  /**
   * The compare-and-swap of §9.5: true when the row was still at `version`.
   * @param {number} version
   * @param {NewTokens} tokens
   * @param {Date} at
   */
  async replaceTokens(version, tokens, at) {
    const result = await this.#client.query(REPLACE_TOKENS, replaceParams(tokens, version, at));
    return result.rowCount === 1;
  }

  /**
   * The status statement of §9.6, fenced by `version`; `revoked` also wipes both ciphertexts.
   * @param {'needs_reauth' | 'revoked'} status
   * @param {string} reason
   * @param {number} version
   */
  async setStatus(status, reason, version) {
    const result = await this.#client.query(SET_STATUS, [this.mallId, status, reason, version]);
    return result.rowCount === 1;
  }

  /**
   * @param {string} error
   * @param {boolean} attemptOver true clears the journal (Cafe24 refused the request as a whole)
   */
  async noteError(error, attemptOver) {
    await this.#client.query(NOTE_ERROR, [this.mallId, error, attemptOver]);
  }
}

/** Statements on the shared pool. Request-path methods may use the reserved connections. */
export class Store {
  /** @type {Logger} */
  #logger;

  /**
   * @param {Database} db
   * @param {{ logger?: Logger }} [options]
   */
  constructor(db, { logger = silentLogger } = {}) {
    this.db = db;
    this.#logger = logger;
  }

  async ping() {
    await this.db.query('SELECT 1');
  }

  /**
   * The callback's insert (§6.3): stored once per state, under the per-mall pending cap.
   * @param {{ code: string, state: string, mallId: string, maxPending: number }} input
   * @returns {Promise<{ outcome: 'stored', id: number } | { outcome: 'state_already_used' } | { outcome: 'too_many_pending' }>}
   */
  async insertCode({ code, state, mallId, maxPending }) {
    const { rows } = await this.db.query(INSERT_CODE, [code, state, mallId, maxPending]);
    if (rows.length) return { outcome: 'stored', id: Number(rows[0].id) };
    const replay = await this.db.query(
      'SELECT EXISTS (SELECT 1 FROM cafe24.authorization_codes WHERE state = $1) AS used',
      [state],
    );
    return replay.rows[0].used ? { outcome: 'state_already_used' } : { outcome: 'too_many_pending' };
  }

  /** @param {number} lifetimeSecs */
  async expireCodes(lifetimeSecs) {
    const result = await this.db.query(EXPIRE_CODES, [lifetimeSecs], { background: true });
    return result.rowCount ?? 0;
  }

  /**
   * @param {{ lifetimeSecs: number, leaseSecs: number, batch: number }} options
   * @returns {Promise<ClaimedCode[]>}
   */
  async claimCodes({ lifetimeSecs, leaseSecs, batch }) {
    const { rows } = await this.db.query(CLAIM_CODES, [lifetimeSecs, leaseSecs, batch], { background: true });
    return rows.map((r) => ({
      id: Number(r.id),
      code: r.code,
      mallId: r.mall_id,
      ageSecs: r.age,
      attempts: r.attempts,
    }));
  }

  /**
   * @param {ClaimedCode} code
   * @param {'expired' | 'failed'} outcome
   * @param {string} error
   */
  async finishCode(code, outcome, error) {
    const result = await this.db.query(FINISH_CODE, [code.id, code.attempts, outcome, error], { background: true });
    return result.rowCount === 1;
  }

  /**
   * @param {ClaimedCode} code
   * @param {string} error
   */
  async retryCode(code, error) {
    const result = await this.db.query(RETRY_CODE, [code.id, code.attempts, error], { background: true });
    return result.rowCount === 1;
  }

  /**
   * Stores a new grant (replacing whatever the mall had), closes the claim and records the
   * install, in one transaction. Takes no mall lock: a new grant wins over everything.
   * @param {ClaimedCode} code
   * @param {NewTokens} t
   * @returns {Promise<number>} the row's version
   */
  completeExchange(code, t) {
    return this.db.transaction(
      async (client) => {
        const { rows } = await client.query(INSTALL, [
          t.mallId,
          t.shopNo,
          t.userId,
          t.clientId,
          t.scopes.join(','),
          t.keyId,
          t.accessToken,
          t.accessExpiresAt,
          t.refreshToken,
          t.refreshExpiresAt,
          t.issuedAt,
          t.note,
        ]);
        await client.query(CODE_EXCHANGED, [code.id, code.attempts]);
        await client.query("INSERT INTO cafe24.mall_events (mall_id, kind) VALUES ($1, 'installed')", [t.mallId]);
        return Number(rows[0].version);
      },
      { background: true },
    );
  }

  /** @param {string} mallId */
  readTokens(mallId) {
    return readTokens({ query: (text, params) => this.db.query(text, params, { background: true }) }, mallId);
  }

  /**
   * The compare-and-swap of §9.5 on a fresh connection (the lock session failed).
   * @param {number} version
   * @param {NewTokens} tokens
   * @param {Date} at
   */
  async replaceTokens(version, tokens, at) {
    const result = await this.db.query(REPLACE_TOKENS, replaceParams(tokens, version, at), { background: true });
    return result.rowCount === 1;
  }

  /**
   * @param {string} mallId
   * @param {string} kind
   * @param {string} [detail]
   */
  async recordEvent(mallId, kind, detail = '') {
    await this.db.query(
      'INSERT INTO cafe24.mall_events (mall_id, kind, detail) VALUES ($1, $2, $3)',
      [mallId, kind, detail],
      {
        background: true,
      },
    );
  }

  /**
   * Keep-alive candidates (§6.4): active malls whose refresh token expires before `before`.
   * @param {Date} before
   * @param {number} limit
   * @returns {Promise<string[]>}
   */
  async mallsDue(before, limit) {
    const { rows } = await this.db.query(
      "SELECT mall_id FROM cafe24.tokens WHERE status = 'active' AND refresh_expires_at < $1 ORDER BY refresh_expires_at LIMIT $2",
      [before, limit],
      { background: true },
    );
    return rows.map((row) => String(row.mall_id));
  }

  /**
   * Takes one Admin API call from the mall's fleet-wide budget (§6.8): one short statement on
   * the request path's connections, and no lock outlives it.
   * @param {string} mallId
   * @param {{ size: number, drainPerSec: number, maxWaitSecs: number }} budget `size`: calls that
   *   may be in the bucket when this one goes, itself included
   * @returns {Promise<BudgetTake>}
   */
  async takeApiCall(mallId, { size, drainPerSec, maxWaitSecs }) {
    const { rows } = await this.db.query(TAKE_API_CALL, [mallId, size, drainPerSec, maxWaitSecs]);
    const waitSecs = Number(rows[0]?.wait_secs);
    const level = Number(rows[0]?.level);
    if (!Number.isFinite(waitSecs) || !Number.isFinite(level))
      throw new Error('cafe24.take_api_call gave no usable answer');
    return { waitSecs, level };
  }

  /**
   * Corrects the mall's budget with what Cafe24 answered (§6.8); never lowers it.
   * @param {string} mallId
   * @param {{ used: number | null, drainPerSec: number, pauseSecs: number | null }} report
   *   `used`: calls Cafe24 says are in the bucket; `pauseSecs`: how long no call may go
   */
  async observeApiLimit(mallId, { used, drainPerSec, pauseSecs }) {
    await this.db.query(OBSERVE_API_LIMIT, [mallId, used, drainPerSec, pauseSecs]);
  }

  /**
   * Runs `fn` holding `pg_advisory_lock(hashtextextended('cafe24.mall:' || mall_id, 0))` on a
   * session of the lock pool (§9.2). A wait that times out closes its session (abandoning the
   * wait), and so does a failed unlock: a pooled session never keeps a lock.
   * @template T
   * @param {string} mallId
   * @param {number} waitMs
   * @param {(lock: MallLock) => Promise<T>} fn
   * @returns {Promise<T>}
   */
  async withMallLock(mallId, waitMs, fn) {
    const timedOut = () => new LockTimeout(`the refresh lock of mall ${mallId} was not free in time`);
    const started = Date.now();
    /** @type {pg.PoolClient} */
    let client;
    try {
      client = await this.db.lockPool.connect();
    } catch (error) {
      if (error instanceof Error && /timeout exceeded/i.test(error.message)) throw timedOut();
      throw error;
    }
    /** @param {Error} error */
    const onError = (error) =>
      this.#logger.warn({ mallId, error: errorName(error) }, 'the lock session of a mall failed');
    client.on('error', onError);
    const waitLeft = Math.max(waitMs - (Date.now() - started), 1);
    /** @type {NodeJS.Timeout | undefined} */
    let timer;
    try {
      // The server gives up the wait itself; the timer covers a server that does not answer.
      await client.query(`SET lock_timeout = ${Math.ceil(waitLeft)}`);
      const locking = client.query(LOCK, [mallId]);
      locking.catch(() => {}); // settled by the race below, or abandoned with its session
      const late = new Promise((_, reject) => {
        timer = setTimeout(() => reject(timedOut()), waitLeft + 1000);
      });
      await Promise.race([locking, late]);
    } catch (error) {
      client.off('error', onError);
      client.release(true);
      if (error instanceof LockTimeout) throw error;
      if (/** @type {{ code?: unknown }} */ (error).code === LOCK_NOT_AVAILABLE) throw timedOut();
      throw error;
    } finally {
      clearTimeout(timer);
    }
    try {
      return await fn(new MallLock(client, mallId));
    } finally {
      let released = false;
      try {
        const { rows } = await client.query(UNLOCK, [mallId]);
        released = rows[0]?.released === true;
      } catch (error) {
        this.#logger.warn(
          { mallId, error: errorName(error) },
          'releasing the lock of a mall failed; closing its session',
        );
      }
      client.off('error', onError);
      client.release(!released);
    }
  }
}
