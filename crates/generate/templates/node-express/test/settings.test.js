// Settings (docs/contract.md §2): a missing or malformed value stops start-up with one error
// naming the variable, never showing the value; empty counts as unset; the environment wins
// over CAFE24_CONFIG_FILE.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { describe, it } from 'node:test';

import { ConfigError, loadSettings } from '../auth/settings.js';
import { KEY_RING, STATE_SECRET, testEnv } from './support/harness.js';

const VALID = testEnv({ databaseUrl: 'postgres://app:db-password-1@127.0.0.1:5432/app' });

/**
 * The ConfigError loading `env` throws.
 * @param {Record<string, string | undefined>} env
 * @returns {ConfigError}
 */
function refusal(env) {
  try {
    loadSettings(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  assert.fail('the settings were accepted');
}

describe('settings', () => {
  it('reads a minimal environment, with the contract defaults', () => {
    const s = loadSettings(VALID);
    assert.deepEqual(s.scopes, ['mall.read_product', 'mall.write_product', 'mall.read_store']);
    assert.equal(s.stateTtlSecs, 600);
    assert.equal(s.launchHmacRequired, true);
    assert.equal(s.httpTimeoutSecs, 15);
    assert.equal(s.dbReservedConnections, 2);
    assert.equal(s.keepaliveRate, 5);
    assert.deepEqual(s.listen, { host: '127.0.0.1', port: 8080 });
    assert.equal(s.keyRing.currentId, 'k1');
  });

  for (const variable of [
    'CAFE24_CLIENT_ID',
    'CAFE24_CLIENT_SECRET',
    'CAFE24_REDIRECT_URI',
    'CAFE24_SCOPES',
    'EXPECTED_STATE_SECRET',
    'TOKEN_ENCRYPTION_KEYS',
  ]) {
    it(`names ${variable} when it is missing or empty`, () => {
      for (const value of [undefined, '', '   ']) {
        const error = refusal({ ...VALID, [variable]: value });
        assert.equal(error.message, `${variable}: is not set (required)`);
      }
    });
  }

  const malformed = /** @type {Array<[string, string, RegExp]>} */ ([
    ['CAFE24_CLIENT_ID', 'has space', /printable ASCII/],
    ['CAFE24_REDIRECT_URI', 'http://app.example.com/cb', /https/],
    ['CAFE24_REDIRECT_URI', 'https://app.example.com/cb#frag', /fragment/],
    ['CAFE24_REDIRECT_URI', 'not a url', /absolute URL/],
    ['CAFE24_SCOPES', 'mall.read_product,admin', /mall\.read_X/],
    ['CAFE24_BASE_URL', 'https://cafe24api.com', /\{mall_id\} exactly once/],
    ['CAFE24_BASE_URL', 'http://{mall_id}.cafe24api.com', /https/],
    ['CAFE24_BASE_URL', 'https://{mall_id}.cafe24api.com?x=1', /query/],
    ['CAFE24_API_VERSION', '2025-02-30', /date/],
    ['EXPECTED_STATE_SECRET', 'short-secret-value', /at least 32 characters/],
    ['CAFE24_STATE_TTL_SECS', '3601', /30 to 3600/],
    ['CAFE24_STATE_TTL_SECS', '-5', /30 to 3600/],
    ['CAFE24_LAUNCH_HMAC_REQUIRED', 'maybe', /true or false/],
    ['DATABASE_URL', 'sqlite:cafe24.sqlite3', /SQLite is not supported/],
    ['DATABASE_URL', 'mysql://db/app', /postgres:\/\//],
    ['PGSSLMODE', 'sometimes', /one of disable/],
    ['LISTEN_ADDR', 'localhost:80', /address like/],
    ['TOKEN_ENCRYPTION_KEYS', 'k1:c2hvcnQ=', /32 bytes/],
    ['CAFE24_KEEPALIVE_RATE', 'fast', /above 0/],
    ['CAFE24_API_DRAIN_PER_SEC', '-2', /above 0/],
    ['CAFE24_ADMIN_TOKEN', 'too-short-admin-token', /at least 32/],
  ]);
  for (const [variable, value, reason] of malformed) {
    it(`names ${variable}=${value} without showing it`, () => {
      const error = refusal({ ...VALID, [variable]: value });
      assert.equal(error.variable, variable);
      assert.match(error.message, new RegExp(`^${variable}: `));
      assert.match(error.reason, reason);
      assert.ok(!error.message.includes(value), error.message);
    });
  }

  it('needs PostgreSQL: no DATABASE_URL nor PG* variable names DATABASE_URL', () => {
    const error = refusal({ ...VALID, DATABASE_URL: undefined });
    assert.match(error.message, /^DATABASE_URL: is not set \(nor PGHOST, .*SQLite is not supported/);
  });

  it('builds the database target from the libpq variables', () => {
    const s = loadSettings({ ...VALID, DATABASE_URL: undefined, PGHOST: 'db', PGUSER: 'app', PGPASSWORD: 'pw-1234' });
    assert.deepEqual(
      { ...s.database, password: String(/** @type {any} */ (s.database).password) },
      {
        host: 'db',
        port: 5432,
        user: 'app',
        password: '[redacted]',
        database: 'app',
        sslMode: null,
      },
    );
  });

  it('keeps reserved connections below the maximum', () => {
    assert.equal(
      refusal({ ...VALID, DATABASE_MAX_CONNECTIONS: '4', DATABASE_RESERVED_CONNECTIONS: '4' }).variable,
      'DATABASE_RESERVED_CONNECTIONS',
    );
  });

  it('trims values', () => {
    assert.equal(loadSettings({ ...VALID, CAFE24_STATE_TTL_SECS: ' 60 ' }).stateTtlSecs, 60);
  });

  it('takes PORT when LISTEN_ADDR is unset, and LISTEN_ADDR when both are', () => {
    assert.deepEqual(loadSettings({ ...VALID, PORT: '3000' }).listen, { host: '0.0.0.0', port: 3000 });
    assert.deepEqual(loadSettings({ ...VALID, PORT: '3000', LISTEN_ADDR: '[::1]:0' }).listen, { host: '::1', port: 0 });
  });

  it('reads CAFE24_CONFIG_FILE under the environment', (t) => {
    const directory = mkdtempSync(join(tmpdir(), 'cafe24-settings-'));
    t.after(() => rmSync(directory, { recursive: true, force: true }));
    const file = join(directory, 'cafe24.toml');
    writeFileSync(
      file,
      'cafe24_state_ttl_secs = 120\nCAFE24_LAUNCH_HMAC_REQUIRED = false\nCAFE24_SCOPES = ["mall.read_store", "mall.read_product"]\n',
    );
    const s = loadSettings({
      ...VALID,
      CAFE24_CONFIG_FILE: file,
      CAFE24_SCOPES: undefined,
      CAFE24_LAUNCH_HMAC_REQUIRED: 'true',
    });
    assert.equal(s.stateTtlSecs, 120);
    assert.equal(s.launchHmacRequired, true);
    assert.deepEqual(s.scopes, ['mall.read_store', 'mall.read_product']);
    writeFileSync(file, 'this is = = not toml');
    assert.equal(refusal({ ...VALID, CAFE24_CONFIG_FILE: file }).variable, 'CAFE24_CONFIG_FILE');
  });

  it('never prints a secret', () => {
    const s = loadSettings({ ...VALID, CAFE24_ADMIN_TOKEN: 'admin-token-0123456789abcdef0123456789' });
    const printed = inspect(s, { depth: 5 }) + JSON.stringify(s);
    for (const secret of [
      'sandbox-client-secret',
      STATE_SECRET,
      KEY_RING.slice(3),
      'db-password-1',
      'admin-token-0123456789',
    ]) {
      assert.ok(!printed.includes(secret), `printed: ${secret}`);
    }
  });
});
