// Settings of the Cafe24 OAuth module, named and validated as docs/contract.md §2 says.
//
// Values come from the environment over an optional flat TOML file named by CAFE24_CONFIG_FILE
// (the environment wins). Every value is trimmed and an empty one counts as unset. A missing or
// malformed value throws a ConfigError whose message is `VARIABLE: reason`, never the value.
// Read once at start-up (server.js) and passed in; nothing else reads process.env.

import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';

import { parse as parseToml } from 'smol-toml';
import { z } from 'zod';

import { KeyRing, KeyRingError } from './crypto.js';
import { parseScopes } from './ids.js';
import { Secret } from './secret.js';

export const DEFAULT_BASE_URL = 'https://{mall_id}.cafe24api.com';
const CONFIG_FILE = 'CAFE24_CONFIG_FILE';
const PG_VARIABLES = ['PGHOST', 'PGPORT', 'PGUSER', 'PGPASSWORD', 'PGDATABASE'];
const SSL_MODES = /** @type {const} */ (['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']);

/** A setting is missing or malformed: `VARIABLE: reason`, never the value. */
export class ConfigError extends Error {
  name = 'ConfigError';

  /**
   * @param {string} variable
   * @param {string} reason
   */
  constructor(variable, reason) {
    super(`${variable}: ${reason}`);
    this.variable = variable;
    this.reason = reason;
  }
}

/**
 * A string schema whose value `parse` turns into the setting, or rejects by throwing an Error
 * whose message is the reason.
 * @template T
 * @param {(value: string) => T} parse
 */
export function parsed(parse) {
  return z.string().transform((value, ctx) => {
    try {
      return parse(value);
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: error instanceof Error ? error.message : String(error) });
      return z.NEVER;
    }
  });
}

/**
 * An unsigned decimal integer within [low, high]: out of range is an error, not a clamp.
 * @param {number} low
 * @param {number} high
 */
export function wholeNumber(low, high) {
  return parsed((value) => {
    const number = /^[0-9]+$/.test(value) ? Number(value) : Number.NaN;
    if (!(number >= low && number <= high)) throw new Error(`must be a whole number from ${low} to ${high}`);
    return number;
  });
}

/**
 * A decimal number above 0 and at most `high`.
 * @param {number} high
 * @param {string} unit
 */
function rate(high, unit) {
  return parsed((value) => {
    const number = /^[0-9]*\.?[0-9]+$/.test(value) ? Number(value) : Number.NaN;
    if (!(number > 0 && number <= high)) throw new Error(`must be a number of ${unit}, above 0 and at most ${high}`);
    return number;
  });
}

const flag = parsed((value) => {
  const lower = value.toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(lower)) return true;
  if (['0', 'false', 'no', 'off'].includes(lower)) return false;
  throw new Error('must be true or false');
});

/**
 * A secret of at least `minimum` bytes.
 * @param {number} minimum
 * @param {string} [hint]
 */
export function secret(minimum, hint = ' (try: openssl rand -hex 32)') {
  return parsed((value) => {
    if (Buffer.byteLength(value, 'utf8') < minimum) {
      throw new Error(`must be at least ${minimum} characters${hint}`);
    }
    return new Secret(value);
  });
}

/** @param {string} host */
function isLoopback(host) {
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  if (bare === 'localhost') return true;
  if (isIP(bare) === 4) return bare.startsWith('127.');
  return isIP(bare) === 6 && /^(?:0{0,4}:){2,7}0{0,3}1$|^::1$/.test(bare);
}

/** @param {string} raw */
function redirectUri(raw) {
  let url;
  try {
    url = new URL(raw);
  } catch {
    throw new Error('is not an absolute URL');
  }
  if (raw.includes('#')) throw new Error('must not have a #fragment');
  const loopback = ['127.0.0.1', '[::1]', 'localhost'].includes(url.hostname);
  if (url.protocol === 'https:' || (url.protocol === 'http:' && loopback)) return raw;
  throw new Error('must be https (http only for 127.0.0.1, [::1] or localhost)');
}

/** @param {string} raw */
function baseUrl(raw) {
  const template = raw.replace(/\/+$/, '');
  if (template.split('{mall_id}').length !== 2) throw new Error('must contain {mall_id} exactly once');
  const authority = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(template)?.[1] ?? '';
  const host = authority.replace(/^.*@/, '').replace(/:[^:\]]*$/, '');
  if (authority.includes('{mall_id}') && !host.split('.').includes('{mall_id}')) {
    throw new Error('must hold {mall_id} in the host only as a whole label ({mall_id}.example.com), or in the path');
  }
  let url;
  try {
    url = new URL(template.replace('{mall_id}', 'mall'));
  } catch {
    throw new Error('is not a valid URL');
  }
  if (template.includes('?') || template.includes('#') || url.username || url.password) {
    throw new Error('must not carry a query, a fragment or credentials');
  }
  if (!(url.protocol === 'https:' || (url.protocol === 'http:' && isLoopback(url.hostname)))) {
    throw new Error('must use https (http is allowed only for loopback hosts)');
  }
  return template;
}

/** @param {string} raw */
function calendarDate(raw) {
  const date = new Date(`${raw}T00:00:00Z`);
  if (!/^\d{4}-\d{2}-\d{2}$/.test(raw) || Number.isNaN(date.getTime()) || date.toISOString().slice(0, 10) !== raw) {
    throw new Error('must be a date like 2025-12-01');
  }
  return raw;
}

/** @param {string} raw */
function databaseUrl(raw) {
  if (/^sqlite:/i.test(raw)) throw new Error('SQLite is not supported by this module; use a postgres:// URL');
  if (!/^postgres(?:ql)?:\/\//.test(raw)) throw new Error('must start with postgres:// or postgresql://');
  try {
    new URL(raw);
  } catch {
    throw new Error('is not a valid postgres:// URL');
  }
  return new Secret(raw);
}

/** @param {string} raw */
function listenAddr(raw) {
  const match = /^\[([^\]]+)\]:([0-9]{1,5})$/.exec(raw) ?? /^([^:]+):([0-9]{1,5})$/.exec(raw);
  const port = Number(match?.[2]);
  if (match === null || isIP(match[1]) === 0 || port > 65_535) throw new Error('must be an address like 0.0.0.0:8080');
  return { host: match[1], port };
}

const schema = z.object({
  // The app and Cafe24.
  CAFE24_CLIENT_ID: z
    .string()
    .regex(/^[\x21-\x7e]{1,128}$/, 'must be printable ASCII without spaces, at most 128 bytes'),
  CAFE24_CLIENT_SECRET: parsed((value) => new Secret(value)),
  CAFE24_REDIRECT_URI: parsed(redirectUri),
  CAFE24_SCOPES: parsed(parseScopes),
  CAFE24_BASE_URL: parsed(baseUrl).default(DEFAULT_BASE_URL),
  CAFE24_API_VERSION: parsed(calendarDate).optional(),
  // State and launch.
  EXPECTED_STATE_SECRET: secret(32),
  CAFE24_STATE_TTL_SECS: wholeNumber(30, 3600).default(600),
  CAFE24_LAUNCH_HMAC_REQUIRED: flag.default(true),
  CAFE24_LAUNCH_WINDOW_SECS: wholeNumber(10, 86_400).default(600),
  CAFE24_MAX_PENDING_CODES_PER_MALL: wholeNumber(1, 1000).default(5),
  // Database (PostgreSQL only).
  DATABASE_URL: parsed(databaseUrl).optional(),
  PGHOST: z.string().optional(),
  PGPORT: wholeNumber(0, 65_535).optional(),
  PGUSER: z.string().optional(),
  PGPASSWORD: parsed((value) => new Secret(value)).optional(),
  PGDATABASE: z.string().optional(),
  PGSSLMODE: z.enum(SSL_MODES, { error: `must be one of ${SSL_MODES.join(', ')}` }).optional(),
  DATABASE_MAX_CONNECTIONS: wholeNumber(1, 1000).default(10),
  DATABASE_RESERVED_CONNECTIONS: wholeNumber(0, 999).optional(),
  DATABASE_LOCK_CONNECTIONS: wholeNumber(1, 1000).default(4),
  DATABASE_ACQUIRE_TIMEOUT_SECS: wholeNumber(1, 120).default(5),
  // HTTP.
  LISTEN_ADDR: parsed(listenAddr).optional(),
  PORT: wholeNumber(0, 65_535).optional(),
  HTTP_REQUEST_TIMEOUT_SECS: wholeNumber(1, 300).default(10),
  HTTP_MAX_BODY_BYTES: wholeNumber(1024, 16_777_216).default(65_536),
  // Token lifecycle.
  TOKEN_ENCRYPTION_KEYS: parsed((value) => {
    try {
      return KeyRing.parse(value);
    } catch (error) {
      // Only KeyRingError is expected; anything else must not leak a value through its text.
      throw error instanceof KeyRingError ? error : new Error('is not a valid key ring');
    }
  }),
  CAFE24_REFRESH_MARGIN_SECS: wholeNumber(0, 3600).default(300),
  CAFE24_CODE_LIFETIME_SECS: wholeNumber(5, 600).default(60),
  CAFE24_HTTP_TIMEOUT_SECS: wholeNumber(1, 120).default(15),
  CAFE24_KEEPALIVE_WINDOW_SECS: wholeNumber(0, 1_123_200).default(259_200),
  CAFE24_KEEPALIVE_INTERVAL_SECS: wholeNumber(1, 86_400).default(3600),
  CAFE24_KEEPALIVE_CONCURRENCY: wholeNumber(1, 256).default(4),
  CAFE24_KEEPALIVE_RATE: rate(10_000, 'refreshes per second').default(5),
  CAFE24_REFRESH_LOCK_WAIT_SECS: wholeNumber(1, 600).default(30),
  // Admin API client and proxy (docs/client.md).
  CAFE24_API_TIMEOUT_SECS: wholeNumber(1, 300).default(30),
  CAFE24_API_MAX_ATTEMPTS: wholeNumber(1, 20).default(6),
  CAFE24_API_DEADLINE_SECS: wholeNumber(1, 3600).default(120),
  CAFE24_API_BACKOFF_MS: wholeNumber(1, 60_000).default(500),
  CAFE24_API_BACKOFF_MAX_MS: wholeNumber(1, 600_000).default(30_000),
  CAFE24_API_BUCKET_SIZE: wholeNumber(1, 100_000).default(40),
  CAFE24_API_DRAIN_PER_SEC: rate(100_000, 'calls per second').default(2),
  CAFE24_ADMIN_TOKEN: secret(32).optional(),
});

/**
 * @typedef {{ url: Secret }
 *   | { host: string, port: number, user: string, password: Secret | null, database: string,
 *       sslMode: (typeof SSL_MODES)[number] | null }} DatabaseTarget
 */

/**
 * @typedef {object} Settings
 * @property {string} clientId
 * @property {Secret} clientSecret also the key of the launch hmac
 * @property {string} redirectUri
 * @property {string[]} scopes
 * @property {string} baseUrl template with `{mall_id}`, no trailing slash
 * @property {string | null} apiVersion sent as X-Cafe24-Api-Version
 * @property {Secret} stateSecret
 * @property {number} stateTtlSecs
 * @property {boolean} launchHmacRequired
 * @property {number} launchWindowSecs
 * @property {number} maxPendingCodesPerMall
 * @property {DatabaseTarget} database
 * @property {number} dbMaxConnections
 * @property {number} dbReservedConnections connections only the request path may take
 * @property {number} dbLockConnections sessions that hold per-mall advisory locks
 * @property {number} dbAcquireTimeoutSecs
 * @property {{ host: string, port: number }} listen LISTEN_ADDR, else PORT on 0.0.0.0, else 127.0.0.1:8080
 * @property {number} httpRequestTimeoutSecs
 * @property {number} httpMaxBodyBytes
 * @property {KeyRing} keyRing
 * @property {number} refreshMarginSecs
 * @property {number} codeLifetimeSecs
 * @property {number} httpTimeoutSecs one token-endpoint call; also sizes the journal fence
 * @property {number} keepaliveWindowSecs
 * @property {number} keepaliveIntervalSecs
 * @property {number} keepaliveConcurrency
 * @property {number} keepaliveRate refreshes started per second
 * @property {number} refreshLockWaitSecs
 * @property {number} apiTimeoutSecs
 * @property {number} apiMaxAttempts
 * @property {number} apiDeadlineSecs
 * @property {number} apiBackoffMs
 * @property {number} apiBackoffMaxMs
 * @property {number} apiBucketSize
 * @property {number} apiDrainPerSec
 * @property {Secret | null} adminToken turns the admin proxy on
 */

/**
 * The raw values: the TOML file named by CAFE24_CONFIG_FILE under the environment, every value
 * trimmed, empty ones dropped.
 * @param {NodeJS.ProcessEnv} env
 * @returns {Record<string, string>}
 */
export function readSources(env) {
  /** @type {Record<string, string>} */
  const values = {};
  const file = env[CONFIG_FILE]?.trim();
  if (file) {
    let table;
    try {
      table = parseToml(readFileSync(file, 'utf8'));
    } catch (error) {
      const why = /** @type {NodeJS.ErrnoException} */ (error).code ? 'cannot be read' : 'is not valid TOML';
      throw new ConfigError(CONFIG_FILE, `${file} ${why}`);
    }
    for (const [key, value] of Object.entries(table)) {
      let text;
      if (typeof value === 'string' || typeof value === 'boolean') text = String(value);
      else if (typeof value === 'number' || typeof value === 'bigint') text = String(value);
      else if (Array.isArray(value) && value.every((item) => typeof item === 'string')) text = value.join(',');
      else throw new ConfigError(CONFIG_FILE, `${key}: expected a string, number, boolean or list of strings`);
      values[key.toUpperCase()] = text;
    }
  }
  for (const [key, value] of Object.entries(env)) {
    if (value !== undefined) values[key] = value;
  }
  for (const [key, value] of Object.entries(values)) {
    const trimmed = value.trim();
    if (trimmed === '') delete values[key];
    else values[key] = trimmed;
  }
  return values;
}

/**
 * Parses raw values with a schema whose keys are the variable names; the first problem becomes
 * one ConfigError naming its variable (zod's own message could show the value; it never leaves).
 * @template {z.ZodType} S
 * @param {S} shape
 * @param {Record<string, string>} values
 * @returns {z.output<S>}
 */
export function parseVariables(shape, values) {
  const result = shape.safeParse(values);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const variable = String(issue.path[0] ?? 'configuration');
  if (values[variable] === undefined) throw new ConfigError(variable, 'is not set (required)');
  throw new ConfigError(
    variable,
    issue.code === 'custom' || issue.code === 'invalid_format' || issue.code === 'invalid_value'
      ? issue.message
      : 'is malformed',
  );
}

/**
 * Reads and validates the settings.
 * @param {NodeJS.ProcessEnv} [env] defaults to process.env
 * @returns {Settings}
 * @throws {ConfigError}
 */
export function loadSettings(env = process.env) {
  const values = readSources(env);
  const v = parseVariables(schema, values);
  /** @type {DatabaseTarget} */
  let database;
  if (v.DATABASE_URL !== undefined) {
    database = { url: v.DATABASE_URL };
  } else if (PG_VARIABLES.some((name) => values[name] !== undefined)) {
    const user = v.PGUSER ?? 'postgres';
    database = {
      host: v.PGHOST ?? 'localhost',
      port: v.PGPORT ?? 5432,
      user,
      password: v.PGPASSWORD ?? null,
      database: v.PGDATABASE ?? user,
      sslMode: v.PGSSLMODE ?? null,
    };
  } else {
    throw new ConfigError(
      'DATABASE_URL',
      'is not set (nor PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE); this module needs PostgreSQL, SQLite is not supported',
    );
  }
  const reserved = v.DATABASE_RESERVED_CONNECTIONS ?? Math.max(Math.floor(v.DATABASE_MAX_CONNECTIONS / 4), 1);
  if (v.DATABASE_MAX_CONNECTIONS > 1 && reserved >= v.DATABASE_MAX_CONNECTIONS) {
    throw new ConfigError(
      'DATABASE_RESERVED_CONNECTIONS',
      'must be less than DATABASE_MAX_CONNECTIONS (background work needs one)',
    );
  }
  if (v.CAFE24_API_BACKOFF_MAX_MS < v.CAFE24_API_BACKOFF_MS) {
    throw new ConfigError('CAFE24_API_BACKOFF_MAX_MS', 'must not be below CAFE24_API_BACKOFF_MS');
  }
  const listen =
    v.LISTEN_ADDR ?? (v.PORT !== undefined ? { host: '0.0.0.0', port: v.PORT } : { host: '127.0.0.1', port: 8080 });
  return Object.freeze({
    clientId: v.CAFE24_CLIENT_ID,
    clientSecret: v.CAFE24_CLIENT_SECRET,
    redirectUri: v.CAFE24_REDIRECT_URI,
    scopes: v.CAFE24_SCOPES,
    baseUrl: v.CAFE24_BASE_URL,
    apiVersion: v.CAFE24_API_VERSION ?? null,
    stateSecret: v.EXPECTED_STATE_SECRET,
    stateTtlSecs: v.CAFE24_STATE_TTL_SECS,
    launchHmacRequired: v.CAFE24_LAUNCH_HMAC_REQUIRED,
    launchWindowSecs: v.CAFE24_LAUNCH_WINDOW_SECS,
    maxPendingCodesPerMall: v.CAFE24_MAX_PENDING_CODES_PER_MALL,
    database,
    dbMaxConnections: v.DATABASE_MAX_CONNECTIONS,
    dbReservedConnections: reserved,
    dbLockConnections: v.DATABASE_LOCK_CONNECTIONS,
    dbAcquireTimeoutSecs: v.DATABASE_ACQUIRE_TIMEOUT_SECS,
    listen,
    httpRequestTimeoutSecs: v.HTTP_REQUEST_TIMEOUT_SECS,
    httpMaxBodyBytes: v.HTTP_MAX_BODY_BYTES,
    keyRing: v.TOKEN_ENCRYPTION_KEYS,
    refreshMarginSecs: v.CAFE24_REFRESH_MARGIN_SECS,
    codeLifetimeSecs: v.CAFE24_CODE_LIFETIME_SECS,
    httpTimeoutSecs: v.CAFE24_HTTP_TIMEOUT_SECS,
    keepaliveWindowSecs: v.CAFE24_KEEPALIVE_WINDOW_SECS,
    keepaliveIntervalSecs: v.CAFE24_KEEPALIVE_INTERVAL_SECS,
    keepaliveConcurrency: v.CAFE24_KEEPALIVE_CONCURRENCY,
    keepaliveRate: v.CAFE24_KEEPALIVE_RATE,
    refreshLockWaitSecs: v.CAFE24_REFRESH_LOCK_WAIT_SECS,
    apiTimeoutSecs: v.CAFE24_API_TIMEOUT_SECS,
    apiMaxAttempts: v.CAFE24_API_MAX_ATTEMPTS,
    apiDeadlineSecs: v.CAFE24_API_DEADLINE_SECS,
    apiBackoffMs: v.CAFE24_API_BACKOFF_MS,
    apiBackoffMaxMs: v.CAFE24_API_BACKOFF_MAX_MS,
    apiBucketSize: v.CAFE24_API_BUCKET_SIZE,
    apiDrainPerSec: v.CAFE24_API_DRAIN_PER_SEC,
    adminToken: v.CAFE24_ADMIN_TOKEN ?? null,
  });
}
