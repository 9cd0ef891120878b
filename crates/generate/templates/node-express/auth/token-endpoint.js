// Cafe24's token and revoke endpoints (docs/contract.md §8, CAFE24.md §2-3): form-encoded, HTTP
// Basic client authentication, absolute expiry instants in Korea time without an offset, and no
// `expires_in`. Errors keep the status and Cafe24's error code, never a token or a secret.

import { request } from 'undici';

import { mallUrl } from './ids.js';
import { Secret } from './secret.js';

/** @import { Dispatcher } from 'undici' */
/** @import { Settings } from './settings.js' */

const KST_OFFSET_MINUTES = 9 * 60;
const SALVAGED_ACCESS_LIFETIME_MS = 3600_000;
const SALVAGED_REFRESH_LIFETIME_MS = 7 * 24 * 3600_000;
const MAX_ERROR_TEXT = 200;
const INSTANT = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|z|[+-]\d{2}:\d{2})?$/;

/** A token response is not what Cafe24 sends; the message never holds a value. */
export class TokenParseError extends Error {
  name = 'TokenParseError';
}

/**
 * A Cafe24 timestamp as an instant. Without an offset it is Korea time (+09:00) — read as UTC
 * or as local time, tokens would look valid for hours too long. An explicit offset is honoured.
 * @param {string} raw e.g. `2021-03-01T14:00:00.000`
 * @returns {Date}
 * @throws {TokenParseError}
 */
export function parseCafe24Instant(raw) {
  const match = INSTANT.exec(raw.trim());
  if (match === null) throw new TokenParseError('unreadable timestamp');
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number);
  const millis = Number((match[7] ?? '0').slice(0, 3).padEnd(3, '0'));
  const zone = match[8];
  let offsetMinutes = KST_OFFSET_MINUTES;
  if (zone === 'Z' || zone === 'z') offsetMinutes = 0;
  else if (zone !== undefined)
    offsetMinutes = (zone[0] === '-' ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)));
  const wall = new Date(Date.UTC(year, month - 1, day, hour, minute, second, millis));
  // Date.UTC rolls 2021-02-30 over to March: a value that does not round-trip is not a date.
  if (wall.getUTCMonth() !== month - 1 || wall.getUTCDate() !== day || wall.getUTCHours() !== hour || second > 59) {
    throw new TokenParseError('unreadable timestamp');
  }
  return new Date(wall.getTime() - offsetMinutes * 60_000);
}

/**
 * A successful token response. The tokens are Secrets.
 * @typedef {object} TokenSet
 * @property {Secret} accessToken
 * @property {Secret} refreshToken
 * @property {Date} accessExpiresAt
 * @property {Date} refreshExpiresAt
 * @property {Date | null} issuedAt
 * @property {string[]} scopes
 * @property {string | null} mallId
 * @property {string | null} userId
 * @property {string | null} clientId
 * @property {string | null} shopNo
 * @property {string | null} tokenType
 * @property {string | null} incomplete what did not parse, when the set was salvaged
 */

/**
 * @param {unknown} value
 * @returns {string[] | null}
 */
function scopesOf(value) {
  if (Array.isArray(value) && value.every((item) => typeof item === 'string')) return value;
  if (typeof value === 'string') return value.split(/[, ]/).filter(Boolean);
  return null;
}

/**
 * @param {unknown} value
 * @returns {string | null}
 */
function shopNoOf(value) {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return null;
}

/**
 * @param {Record<string, unknown>} data
 * @returns {TokenSet}
 */
function parseStrict(data) {
  for (const name of [
    'issued_at',
    'mall_id',
    'user_id',
    'client_id',
    'token_type',
    'access_token',
    'refresh_token',
    'expires_at',
    'refresh_token_expires_at',
  ]) {
    if (data[name] != null && typeof data[name] !== 'string')
      throw new TokenParseError(`token response has a non-text ${name}`);
  }
  /** @param {string} name */
  const required = (name) => {
    const value = data[name];
    if (typeof value !== 'string' || value === '') throw new TokenParseError(`token response lacks ${name}`);
    return value;
  };
  /** @param {string} name */
  const optional = (name) => (typeof data[name] === 'string' ? /** @type {string} */ (data[name]) : null);
  const scopes = data.scopes == null ? [] : scopesOf(data.scopes);
  const shopNo = data.shop_no == null ? null : shopNoOf(data.shop_no);
  if (scopes === null || (data.shop_no != null && shopNo === null)) {
    throw new TokenParseError('token response has unexpected scopes or shop_no');
  }
  const issued = optional('issued_at');
  return {
    accessToken: new Secret(required('access_token')),
    refreshToken: new Secret(required('refresh_token')),
    accessExpiresAt: parseCafe24Instant(required('expires_at')),
    refreshExpiresAt: parseCafe24Instant(required('refresh_token_expires_at')),
    issuedAt: issued === null ? null : parseCafe24Instant(issued),
    scopes,
    mallId: optional('mall_id'),
    userId: optional('user_id'),
    clientId: optional('client_id'),
    shopNo,
    tokenType: optional('token_type'),
    incomplete: null,
  };
}

/**
 * The token response. When it does not fully parse but is a JSON object carrying both tokens,
 * a set salvaged from it with conservative expiries: Cafe24 has already rotated, so dropping
 * the tokens would lose the mall (§8.3).
 * @param {string} body
 * @param {Date} now
 * @returns {TokenSet}
 * @throws {TokenParseError}
 */
export function parseTokenResponse(body, now) {
  let data;
  try {
    data = JSON.parse(body);
  } catch {
    throw new TokenParseError('token response is not JSON');
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data))
    throw new TokenParseError('token response is not a JSON object');
  /** @type {Record<string, unknown>} */
  const fields = data;
  try {
    return parseStrict(fields);
  } catch (problem) {
    if (!(problem instanceof TokenParseError)) throw problem;
    /** @param {string} name */
    const text = (name) =>
      typeof fields[name] === 'string' && fields[name] !== '' ? /** @type {string} */ (fields[name]) : null;
    /** @param {string} name */
    const instant = (name) => {
      const raw = text(name);
      try {
        return raw === null ? null : parseCafe24Instant(raw);
      } catch {
        return null;
      }
    };
    const access = text('access_token');
    const refresh = text('refresh_token');
    if (access === null || refresh === null) throw problem;
    return {
      accessToken: new Secret(access),
      refreshToken: new Secret(refresh),
      accessExpiresAt: instant('expires_at') ?? new Date(now.getTime() + SALVAGED_ACCESS_LIFETIME_MS),
      refreshExpiresAt: instant('refresh_token_expires_at') ?? new Date(now.getTime() + SALVAGED_REFRESH_LIFETIME_MS),
      issuedAt: instant('issued_at'),
      scopes: scopesOf(fields.scopes) ?? [],
      mallId: text('mall_id'),
      userId: text('user_id'),
      clientId: text('client_id'),
      shopNo: shopNoOf(fields.shop_no),
      tokenType: text('token_type'),
      incomplete: problem.message,
    };
  }
}

/** @typedef {'transport' | 'unavailable' | 'dead_grant' | 'rejected' | 'malformed'} OAuthErrorKind */

/** A call to Cafe24's token or revoke endpoint failed (§8.2). */
export class OAuthError extends Error {
  name = 'OAuthError';

  /**
   * @param {OAuthErrorKind} kind
   * @param {string} message scrubbed of every secret that was sent
   * @param {{ status?: number | null, error?: string }} [details]
   */
  constructor(kind, message, { status = null, error = '' } = {}) {
    super(message);
    this.kind = kind;
    this.status = status;
    this.error = error;
  }

  /** The request may not have been processed: worth sending again. */
  get retryable() {
    return this.kind === 'transport' || this.kind === 'unavailable';
  }

  /** The code or refresh token is dead (`invalid_grant` on 400/401). */
  get deadGrant() {
    return this.kind === 'dead_grant';
  }

  /** Cafe24 refused the request as a whole, so it rotated nothing. */
  get grantUntouched() {
    return this.kind === 'rejected';
  }

  /** A revoke refused because Cafe24 no longer knows the token (`invalid_token`). */
  get tokenAlreadyDead() {
    return this.kind === 'rejected' && (this.status === 400 || this.status === 401) && this.error === 'invalid_token';
  }
}

/**
 * Maps an error answer; every secret that was sent is scrubbed from Cafe24's text, then cut.
 * @param {number} status
 * @param {string} body
 * @param {string[]} sentSecrets
 * @returns {OAuthError}
 */
export function classify(status, body, sentSecrets) {
  if (status === 429 || status >= 500) return new OAuthError('unavailable', `Cafe24 answered ${status}`, { status });
  /** @param {string} text */
  const scrub = (text) =>
    sentSecrets
      .filter(Boolean)
      .reduce((out, s) => out.split(s).join('[redacted]'), text)
      .slice(0, MAX_ERROR_TEXT);
  let parsed;
  try {
    parsed = JSON.parse(body);
  } catch {
    parsed = null;
  }
  let error = 'unknown';
  let description = '';
  if (parsed !== null && typeof parsed === 'object' && typeof parsed.error === 'string') {
    error = scrub(parsed.error);
    if (typeof parsed.error_description === 'string') description = scrub(parsed.error_description);
  }
  if ((status === 400 || status === 401) && error === 'invalid_grant') {
    return new OAuthError('dead_grant', `Cafe24 refused the grant (${status} ${error}: ${description})`, {
      status,
      error,
    });
  }
  return new OAuthError('rejected', `Cafe24 refused the request (${status} ${error}: ${description})`, {
    status,
    error,
  });
}

/**
 * A transport failure in a few words, without its URL or request.
 * @param {unknown} error
 */
export function describeTransportError(error) {
  const err = /** @type {{ name?: string, code?: string, cause?: { code?: string } }} */ (error ?? {});
  const code = err.code ?? err.cause?.code ?? '';
  if (err.name === 'TimeoutError' || err.name === 'AbortError' || /TIMEOUT/.test(code)) return 'timed out';
  if (['ECONNREFUSED', 'UND_ERR_CONNECT', 'ENOTFOUND', 'EHOSTUNREACH', 'EAI_AGAIN'].includes(code))
    return 'connection failed';
  if (['UND_ERR_SOCKET', 'ECONNRESET', 'UND_ERR_CLOSED', 'EPIPE'].includes(code)) {
    return 'the connection was closed without a complete answer';
  }
  return err.name ?? 'unknown error';
}

/** Calls Cafe24's OAuth endpoints over the app's one shared connection pool. */
export class TokenEndpoint {
  /** @type {Dispatcher} */
  #dispatcher;
  /** @type {Settings} */
  #settings;
  /** @type {() => Date} */
  #clock;

  /** @param {{ dispatcher: Dispatcher, settings: Settings, clock?: () => Date }} options */
  constructor({ dispatcher, settings, clock = () => new Date() }) {
    this.#dispatcher = dispatcher;
    this.#settings = settings;
    this.#clock = clock;
  }

  /**
   * `grant_type=authorization_code`: Cafe24 consumes the code whatever it answers.
   * @param {string} mallId
   * @param {Secret} code
   */
  exchange(mallId, code) {
    const form = { grant_type: 'authorization_code', code: code.expose(), redirect_uri: this.#settings.redirectUri };
    return this.#tokenCall(mallId, form, code);
  }

  /**
   * `grant_type=refresh_token`: Cafe24 rotates; the token passed in dies on success.
   * @param {string} mallId
   * @param {Secret} refreshToken
   */
  refresh(mallId, refreshToken) {
    return this.#tokenCall(mallId, { grant_type: 'refresh_token', refresh_token: refreshToken.expose() }, refreshToken);
  }

  /**
   * Cafe24's revoke, with `token_hint` (not RFC 7009's `token_type_hint`).
   * @param {string} mallId
   * @param {Secret} token
   * @param {'access_token' | 'refresh_token'} hint
   */
  async revoke(mallId, token, hint) {
    const { status, body } = await this.#post(mallId, '/api/v2/oauth/revoke', {
      token: token.expose(),
      token_hint: hint,
    });
    if (status < 200 || status >= 300) throw classify(status, body, this.#secrets(token));
  }

  /**
   * @param {string} mallId
   * @param {Record<string, string>} form
   * @param {Secret} sent
   * @returns {Promise<TokenSet>}
   */
  async #tokenCall(mallId, form, sent) {
    const { status, body } = await this.#post(mallId, '/api/v2/oauth/token', form);
    if (status !== 200) throw classify(status, body, this.#secrets(sent));
    try {
      return parseTokenResponse(body, this.#clock());
    } catch (problem) {
      const why = problem instanceof TokenParseError ? problem.message : 'unreadable';
      throw new OAuthError('malformed', `Cafe24's answer was unreadable: ${why}`, { status });
    }
  }

  /**
   * @param {string} mallId
   * @param {string} path
   * @param {Record<string, string>} form
   * @returns {Promise<{ status: number, body: string }>}
   */
  async #post(mallId, path, form) {
    const s = this.#settings;
    const url = mallUrl(s.baseUrl, mallId, path);
    const basic = Buffer.from(`${s.clientId}:${s.clientSecret.expose()}`, 'utf8').toString('base64');
    try {
      const response = await request(url, {
        dispatcher: this.#dispatcher,
        method: 'POST',
        headers: {
          authorization: `Basic ${basic}`,
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
        },
        body: new URLSearchParams(form).toString(),
        // The module's own bound, never a caller's signal: a sent grant is always read.
        signal: AbortSignal.timeout(s.httpTimeoutSecs * 1000),
      });
      return { status: response.statusCode, body: await response.body.text() };
    } catch (error) {
      throw new OAuthError('transport', `could not reach Cafe24: ${describeTransportError(error)}`);
    }
  }

  /** @param {Secret} sent */
  #secrets(sent) {
    return [sent.expose(), this.#settings.clientSecret.expose()];
  }
}
