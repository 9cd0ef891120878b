// A valid access token for a mall, whatever the number of processes and callers asking, and
// whatever happens to whoever asked (docs/contract.md §9-10).
//
// One refresh per mall at a time in a process (callers queue in memory, then usually find the
// work done); across processes and implementations the refresh holds the mall's PostgreSQL
// advisory lock across the call to Cafe24, re-reads the row under it, journals the attempt
// (refresh_started_at) before sending, waits instead of sending while a young journal says a
// refresh may be in flight elsewhere, and writes with compare-and-swap on `version`. A refused
// refresh token flags the mall needs_reauth, fenced by the version so a reinstall is never
// flagged. Decided work runs detached (TrackedWork): a caller's AbortSignal only ends its wait.

import { KeyedMutex, sleep, untilAborted } from './concurrency.js';
import { persist } from './database.js';
import { errorName, silentLogger } from './logger.js';
import { OAuthError } from './token-endpoint.js';
import { Secret } from './secret.js';

/** @import { TrackedWork } from './concurrency.js' */
/** @import { Sealer } from './crypto.js' */
/** @import { Logger } from './logger.js' */
/** @import { MallLock, NewTokens, Store, TokenRow } from './store.js' */
/** @import { TokenEndpoint, TokenSet } from './token-endpoint.js' */
/** @import { Settings } from './settings.js' */

export const JOURNAL_SLACK_MS = 2000;
export const FORCED_REFRESH_FLOOR_MS = 30_000;
const JOURNAL_POLL_MS = 250;
const UNINSTALL_TRIES = 3;

/**
 * Why a token is wanted (§9.1); re-evaluated on the row read under the lock.
 * @typedef {{ kind: 'expiring', seenVersion: number }
 *   | { kind: 'forced', seenVersion: number }
 *   | { kind: 'keep_alive', windowMs: number }} Need
 */

/** @typedef {{ token: Secret, refreshed: boolean }} Outcome */

/** No token can be handed out for the mall. */
export class TokenError extends Error {
  name = 'TokenError';

  /**
   * @param {string} mallId
   * @param {string} message
   * @param {ErrorOptions} [options]
   */
  constructor(mallId, message, options) {
    super(message, options);
    this.mallId = mallId;
  }
}

export class NotInstalled extends TokenError {
  name = 'NotInstalled';

  /** @param {string} mallId */
  constructor(mallId) {
    super(mallId, `mall ${mallId} has not installed the app`);
  }
}

export class NeedsReauth extends TokenError {
  name = 'NeedsReauth';

  /** @param {string} mallId */
  constructor(mallId) {
    super(mallId, `mall ${mallId} must install the app again: its grant is dead`);
  }
}

export class Revoked extends TokenError {
  name = 'Revoked';

  /** @param {string} mallId */
  constructor(mallId) {
    super(mallId, `mall ${mallId} was revoked`);
  }
}

/** No token now (lock timeout, database or Cafe24 unreachable); asking again later may work. */
export class TokenUnavailable extends TokenError {
  name = 'TokenUnavailable';
}

/**
 * @param {TokenRow | null} row
 * @param {string} mallId
 * @returns {TokenRow}
 */
function active(row, mallId) {
  if (row === null) throw new NotInstalled(mallId);
  if (row.status === 'needs_reauth') throw new NeedsReauth(mallId);
  if (row.status === 'revoked') throw new Revoked(mallId);
  return row;
}

/**
 * A token response, encrypted into a row to store.
 * @param {Sealer} sealer
 * @param {string} mallId
 * @param {TokenSet} tokens
 * @param {string} clientId the configured one, when the response names none
 * @returns {NewTokens}
 */
export function sealedPair(sealer, mallId, tokens, clientId) {
  return {
    mallId,
    shopNo: tokens.shopNo,
    userId: tokens.userId,
    clientId: tokens.clientId ?? clientId,
    scopes: tokens.scopes,
    keyId: sealer.currentKeyId,
    accessToken: sealer.seal(mallId, 'access', tokens.accessToken.expose()),
    accessExpiresAt: tokens.accessExpiresAt,
    refreshToken: sealer.seal(mallId, 'refresh', tokens.refreshToken.expose()),
    refreshExpiresAt: tokens.refreshExpiresAt,
    issuedAt: tokens.issuedAt,
    note:
      tokens.incomplete === null
        ? null
        : `Cafe24's token response did not fully parse (${tokens.incomplete}); expiries are conservative guesses`,
  };
}

/** The token lifecycle of every mall: one per process, created by startCafe24(). */
export class TokenManager {
  #store;
  #endpoint;
  #sealer;
  #settings;
  #work;
  #clock;
  #logger;
  #flights = new KeyedMutex();

  /**
   * @param {{ store: Store, endpoint: TokenEndpoint, sealer: Sealer, settings: Settings,
   *   work: TrackedWork, clock?: () => Date, logger?: Logger }} options
   */
  constructor({ store, endpoint, sealer, settings, work, clock = () => new Date(), logger = silentLogger }) {
    this.#store = store;
    this.#endpoint = endpoint;
    this.#sealer = sealer;
    this.#settings = settings;
    this.#work = work;
    this.#clock = clock;
    this.#logger = logger;
  }

  get sealer() {
    return this.#sealer;
  }

  /** The clock expiry is decided by (a parameter, so tests move time instead of sleeping). */
  now() {
    return this.#clock();
  }

  /**
   * A valid access token, refreshed first when it expires within CAFE24_REFRESH_MARGIN_SECS.
   * @param {string} mallId
   * @param {{ signal?: AbortSignal }} [options] aborting ends this wait, never a refresh
   * @returns {Promise<Secret>}
   */
  async accessToken(mallId, { signal } = {}) {
    const row = await this.#readActive(mallId);
    const need = /** @type {Need} */ ({ kind: 'expiring', seenVersion: row.version });
    if (!this.#needs(need, row)) return this.#openAccess(row);
    return (await this.#refresh(mallId, need, signal)).token;
  }

  /**
   * Refreshes now, unless someone refreshed since the stored token was read.
   * @param {string} mallId
   * @param {{ signal?: AbortSignal }} [options]
   * @returns {Promise<Secret>}
   */
  async forceRefresh(mallId, { signal } = {}) {
    const row = await this.#readActive(mallId);
    return (await this.#refresh(mallId, { kind: 'forced', seenVersion: row.version }, signal)).token;
  }

  /**
   * Cafe24 answered 401 to `rejected`: refresh, unless the stored token is already another one
   * (another caller or process refreshed meanwhile).
   * @param {string} mallId
   * @param {Secret} rejected
   * @param {{ signal?: AbortSignal }} [options]
   * @returns {Promise<Secret>}
   */
  async refreshRejected(mallId, rejected, { signal } = {}) {
    const row = await this.#readActive(mallId);
    const current = this.#openAccess(row);
    if (current.expose() !== rejected.expose()) return current;
    return (await this.#refresh(mallId, { kind: 'forced', seenVersion: row.version }, signal)).token;
  }

  /**
   * Refreshes when the refresh token expires within `windowMs` (§10.3).
   * @param {string} mallId
   * @param {number} windowMs
   * @returns {Promise<boolean>} whether it refreshed
   */
  async keepAlive(mallId, windowMs) {
    return (await this.#refresh(mallId, { kind: 'keep_alive', windowMs })).refreshed;
  }

  /**
   * Revokes both tokens at Cafe24, then marks the mall revoked and wipes them (§10.1). A token
   * Cafe24 no longer knows counts as revoked; any other refusal changes nothing.
   * @param {string} mallId
   * @returns {Promise<void>}
   */
  revoke(mallId) {
    return this.#detached(mallId, () => this.#locked(mallId, (lock) => this.#revokeLocked(lock)));
  }

  /**
   * Cafe24 dropped the grant (webhook 90077/90078, §10.2): mark the mall revoked, unless the
   * event is older than the grant now stored.
   * @param {string} mallId
   * @param {{ reason: string, occurredAt: Date }} event
   * @returns {Promise<boolean>} whether the mall was revoked now
   */
  uninstalled(mallId, { reason, occurredAt }) {
    return this.#detached(mallId, () =>
      this.#locked(mallId, (lock) => this.#uninstallLocked(lock, reason, occurredAt)),
    );
  }

  /**
   * A token response that did not fully parse was kept with conservative expiries: say so.
   * @param {string} mallId
   * @param {TokenSet} tokens
   */
  async flagIncomplete(mallId, tokens) {
    if (tokens.incomplete === null) return;
    this.#logger.warn({ mallId }, "Cafe24's token response did not fully parse; kept with conservative expiries");
    try {
      await this.#store.recordEvent(mallId, 'token_response_incomplete', tokens.incomplete);
    } catch (error) {
      this.#logger.warn({ mallId, error: errorName(error) }, 'recording an incomplete token response failed');
    }
  }

  /**
   * @param {string} mallId
   * @param {Need} need
   * @param {AbortSignal} [signal]
   * @returns {Promise<Outcome>}
   */
  #refresh(mallId, need, signal) {
    return untilAborted(
      this.#detached(mallId, () => this.#flights.run(mallId, () => this.#refreshFlight(mallId, need))),
      signal,
    );
  }

  /**
   * Runs decided work detached from the caller; failures other than TokenErrors become
   * TokenUnavailable (their cause kept, their text never a secret).
   * @template T
   * @param {string} mallId
   * @param {() => Promise<T>} work
   * @returns {Promise<T>}
   */
  async #detached(mallId, work) {
    try {
      return await this.#work.run(work);
    } catch (error) {
      throw this.#unavailable(mallId, error);
    }
  }

  /**
   * @param {string} mallId
   * @param {unknown} error
   * @returns {TokenError}
   */
  #unavailable(mallId, error) {
    if (error instanceof TokenError) return error;
    const why = error instanceof OAuthError ? error.message : errorName(error);
    return new TokenUnavailable(mallId, `no token for mall ${mallId} now (${why})`, { cause: error });
  }

  /**
   * @template T
   * @param {string} mallId
   * @param {(lock: MallLock) => Promise<T>} fn
   * @returns {Promise<T>}
   */
  #locked(mallId, fn) {
    const waitMs = this.#settings.refreshLockWaitSecs * 1000;
    return this.#flights.run(mallId, () => this.#store.withMallLock(mallId, waitMs, fn));
  }

  /** @param {string} mallId */
  async #readActive(mallId) {
    try {
      return active(await this.#store.readTokens(mallId), mallId);
    } catch (error) {
      throw this.#unavailable(mallId, error);
    }
  }

  /**
   * @param {Need} need
   * @param {TokenRow} row
   */
  #needs(need, row) {
    const now = this.#clock().getTime();
    switch (need.kind) {
      case 'expiring':
        if (row.version !== need.seenVersion) return row.accessExpiresAt.getTime() <= now;
        return row.accessExpiresAt.getTime() - this.#settings.refreshMarginSecs * 1000 <= now;
      case 'forced':
        return (
          row.version === need.seenVersion &&
          (row.lastRefreshedAt === null || now - row.lastRefreshedAt.getTime() >= FORCED_REFRESH_FLOOR_MS)
        );
      case 'keep_alive':
        return row.refreshExpiresAt.getTime() - need.windowMs <= now;
    }
  }

  /**
   * Milliseconds a journaled refresh may still be in flight elsewhere; null once it cannot.
   * @param {TokenRow} row
   */
  #inFlightElsewhereMs(row) {
    if (row.refreshStartedAt === null) return null;
    const fence = row.refreshStartedAt.getTime() + this.#settings.httpTimeoutSecs * 1000 + JOURNAL_SLACK_MS;
    const left = fence - this.#clock().getTime();
    return left > 0 ? left : null;
  }

  /** @param {TokenRow} row */
  #openAccess(row) {
    return new Secret(this.#sealer.open(row.mallId, 'access', row.keyId, row.accessToken));
  }

  /**
   * @param {string} mallId
   * @param {Need} need
   * @returns {Promise<Outcome>}
   */
  async #refreshFlight(mallId, need) {
    // Callers that queued behind a refresh usually find the work done.
    const row = active(await this.#store.readTokens(mallId), mallId);
    if (!this.#needs(need, row)) return { token: this.#openAccess(row), refreshed: false };
    const waitMs = this.#settings.refreshLockWaitSecs * 1000;
    return this.#store.withMallLock(mallId, waitMs, (lock) => this.#refreshLocked(lock, need));
  }

  /**
   * §9.3: re-read, decide, fence on the journal, journal, send, record.
   * @param {MallLock} lock
   * @param {Need} need
   * @returns {Promise<Outcome>}
   */
  async #refreshLocked(lock, need) {
    const { mallId } = lock;
    let row = active(await lock.current(), mallId);
    for (;;) {
      if (!this.#needs(need, row)) return { token: this.#openAccess(row), refreshed: false };
      const waitMs = this.#inFlightElsewhereMs(row);
      if (waitMs === null) break;
      this.#logger.info({ mallId, waitMs }, 'a refresh of this mall may be in flight elsewhere; waiting');
      await sleep(Math.min(waitMs, JOURNAL_POLL_MS));
      row = active(await lock.current(), mallId);
    }
    const refreshToken = new Secret(this.#sealer.open(mallId, 'refresh', row.keyId, row.refreshToken));
    await lock.journal(this.#clock());
    let tokens;
    try {
      tokens = await this.#endpoint.refresh(mallId, refreshToken);
    } catch (error) {
      if (!(error instanceof OAuthError)) throw error;
      if (error.deadGrant) return this.#declareDead(lock, row, error);
      this.#logger.warn({ mallId, error: error.message }, 'refresh failed; it will be retried');
      // A lost answer may have carried a rotated pair: only a refusal clears the journal.
      await lock.noteError(error.message, error.grantUntouched);
      throw error;
    }
    return this.#storeRefreshed(lock, row, tokens);
  }

  /**
   * §9.5: compare-and-swap on the lock session; if that session fails, on fresh connections for
   * up to 60 s — Cafe24 has already rotated, this pair is the only one that works.
   * @param {MallLock} lock
   * @param {TokenRow} row
   * @param {TokenSet} tokens
   * @returns {Promise<Outcome>}
   */
  async #storeRefreshed(lock, row, tokens) {
    const { mallId } = row;
    const fresh = sealedPair(this.#sealer, mallId, tokens, row.clientId);
    const at = this.#clock();
    let written;
    try {
      written = await lock.replaceTokens(row.version, fresh, at);
    } catch (error) {
      this.#logger.warn(
        { mallId, error: errorName(error) },
        'storing the refreshed pair failed; retrying on fresh connections',
      );
      written = await persist(() => this.#store.replaceTokens(row.version, fresh, at), {
        what: 'the refreshed pair',
        mallId,
        logger: this.#logger,
      });
    }
    if (written) {
      await this.flagIncomplete(mallId, tokens);
      this.#logger.info({ mallId, version: row.version + 1 }, 'tokens refreshed');
      return { token: tokens.accessToken, refreshed: true };
    }
    this.#logger.error({ mallId }, 'a newer token pair was stored during the refresh; keeping it');
    return { token: this.#openAccess(active(await this.#store.readTokens(mallId), mallId)), refreshed: false };
  }

  /**
   * §9.6: the refresh token is dead. Flag the mall, unless a newer grant landed meanwhile.
   * @param {MallLock} lock
   * @param {TokenRow} row
   * @param {OAuthError} error
   * @returns {Promise<Outcome>}
   */
  async #declareDead(lock, row, error) {
    const { mallId } = row;
    if (!(await lock.setStatus('needs_reauth', error.message, row.version))) {
      // A reinstall landed between read and write: never flag it.
      return { token: this.#openAccess(active(await lock.current(), mallId)), refreshed: false };
    }
    await this.#store.recordEvent(mallId, 'needs_reauth', error.message);
    this.#logger.warn({ mallId }, 'the refresh token was refused: the mall needs a new install');
    throw new NeedsReauth(mallId);
  }

  /** @param {MallLock} lock */
  async #revokeLocked(lock) {
    const { mallId } = lock;
    const row = await lock.current();
    if (row === null) throw new NotInstalled(mallId);
    if (row.status === 'revoked') return;
    for (const [kind, sealed] of /** @type {const} */ ([
      ['refresh', row.refreshToken],
      ['access', row.accessToken],
    ])) {
      const token = new Secret(this.#sealer.open(mallId, kind, row.keyId, sealed));
      try {
        await this.#endpoint.revoke(mallId, token, kind === 'refresh' ? 'refresh_token' : 'access_token');
      } catch (error) {
        if (!(error instanceof OAuthError && error.tokenAlreadyDead)) throw error;
        this.#logger.info({ mallId, kind }, 'Cafe24 no longer knows this token; counted as revoked');
      }
    }
    if (!(await this.#markRevoked(lock, row.version, 'revoked by the app'))) {
      this.#logger.warn({ mallId }, 'a new grant landed during the revoke; it is kept');
    }
  }

  /**
   * @param {MallLock} lock
   * @param {string} reason
   * @param {Date} occurredAt
   */
  async #uninstallLocked(lock, reason, occurredAt) {
    const { mallId } = lock;
    // An exchange takes no lock: a new grant can land between read and write.
    for (let attempt = 0; attempt < UNINSTALL_TRIES; attempt += 1) {
      const row = await lock.current();
      if (row === null || row.status === 'revoked') return false;
      if (occurredAt < row.installedAt) {
        this.#logger.info({ mallId }, 'an uninstall older than the current grant; ignored');
        return false;
      }
      if (await this.#markRevoked(lock, row.version, reason)) return true;
    }
    throw new TokenUnavailable(mallId, `new grants of mall ${mallId} kept landing during the uninstall`);
  }

  /**
   * @param {MallLock} lock
   * @param {number} version
   * @param {string} reason
   */
  async #markRevoked(lock, version, reason) {
    if (!(await lock.setStatus('revoked', reason, version))) return false;
    await this.#store.recordEvent(lock.mallId, 'revoked', reason);
    this.#logger.info({ mallId: lock.mallId, reason }, 'mall revoked');
    return true;
  }
}
