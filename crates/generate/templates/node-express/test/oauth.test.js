// Install and callback (docs/contract.md §3.2-3.3, §6.3) over real HTTP: the app on port 0, a
// real PostgreSQL, the real sandbox as Cafe24 — from the launch link to tokens stored.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { signLaunchQuery } from '../auth/launch.js';
import { Secret } from '../auth/secret.js';
import { createTestDatabase } from './support/database.js';
import { SANDBOX_FLAGS, eventually, installMall, recordingLogger, startTestApp, testEnv } from './support/harness.js';
import { startSandbox } from './support/sandbox.js';

/** @import { TestApp } from './support/harness.js' */
/** @import { Sandbox } from './support/sandbox.js' */

const CLIENT_SECRET = new Secret('sandbox-client-secret');
const logger = recordingLogger();
/** @type {Sandbox} */
let sandbox;
/** @type {{ url: string, drop(): Promise<void> }} */
let database;
/** @type {TestApp} */
let app;

/**
 * A launch query signed as Cafe24 signs it.
 * @param {string} params without timestamp
 * @param {number} [timestamp] seconds
 */
const launch = (params, timestamp = Math.floor(Date.now() / 1000)) =>
  signLaunchQuery(`${params}&timestamp=${timestamp}`, CLIENT_SECRET);

/**
 * @param {string} path
 * @param {RequestInit} [init]
 */
const get = (path, init = {}) => fetch(`${app.url}${path}`, { redirect: 'manual', ...init });

/**
 * An error answer's status and code.
 * @param {Response} response
 */
async function refusal(response) {
  const body = /** @type {{ ok: boolean, error: string }} */ (await response.json());
  assert.equal(body.ok, false);
  assert.equal(Object.keys(body).sort().join(), 'error,message,ok');
  return [response.status, body.error];
}

before(async () => {
  // Each is assigned as soon as it exists, so `after` stops what started even if the other failed.
  await Promise.all([
    startSandbox(SANDBOX_FLAGS).then((started) => (sandbox = started)),
    createTestDatabase().then((created) => (database = created)),
  ]);
  app = await startTestApp({ env: testEnv({ sandbox, databaseUrl: database.url }), logger });
});
after(async () => {
  await app?.close();
  await Promise.all([sandbox?.stop(), database?.drop()]);
});

describe('GET /install (contract §3.2)', () => {
  it('redirects a genuine launch to the consent page with a signed state', async () => {
    const link = await sandbox.launchUrl('shop1');
    const response = await get(`/install${link.search}`);
    assert.equal(response.status, 302);
    assert.equal(response.headers.get('cache-control'), 'no-store');
    assert.equal(await response.text(), '');
    const location = new URL(/** @type {string} */ (response.headers.get('location')));
    assert.equal(`${location.origin}${location.pathname}`, `${sandbox.url}/malls/shop1/api/v2/oauth/authorize`);
    assert.deepEqual(
      [...location.searchParams.keys()],
      ['response_type', 'client_id', 'state', 'redirect_uri', 'scope'],
    );
    assert.equal(location.searchParams.get('scope'), 'mall.read_product,mall.write_product,mall.read_store');
    assert.match(location.search, /scope=mall\.read_product%2Cmall\.write_product%2Cmall\.read_store$/);
    const state = /** @type {string} */ (location.searchParams.get('state'));
    assert.equal(app.cafe24.signer.verify(state, new Date()).mallId, 'shop1');
  });

  it('refuses a tampered launch', async () => {
    const link = await sandbox.launchUrl('shop1');
    const tampered = link.search.replace('user_type=P', 'user_type=S');
    assert.deepEqual(await refusal(await get(`/install${tampered}`)), [403, 'launch_invalid']);
  });

  it('refuses a launch without hmac while it is required, and a stale one', async () => {
    assert.deepEqual(await refusal(await get('/install?mall_id=shop1')), [403, 'launch_hmac_required']);
    assert.deepEqual(await refusal(await get(`/install?${launch('mall_id=shop1', 1_700_000_000)}`)), [
      403,
      'launch_expired',
    ]);
  });

  it('refuses a missing, invalid or repeated mall_id', async () => {
    assert.deepEqual(await refusal(await get(`/install?${launch('shop_no=1')}`)), [400, 'missing_parameter']);
    assert.deepEqual(await refusal(await get(`/install?${launch('mall_id=Shop.1')}`)), [400, 'invalid_mall_id']);
    assert.deepEqual(await refusal(await get(`/install?${launch('mall_id=a&mall_id=b')}`)), [
      400,
      'duplicate_parameter',
    ]);
  });
});

describe('GET /oauth/callback (contract §3.3) and the exchange (§6.3)', () => {
  it('stores the code, answers the serverless JSON, and the worker exchanges it within a second', async () => {
    const started = Date.now();
    const response = await installMall({ app, sandbox, mallId: 'shop1' });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('cache-control'), 'no-store');
    assert.equal(response.headers.get('pragma'), 'no-cache');
    const body = /** @type {{ ok: boolean, message: string, id: number }} */ (await response.json());
    assert.deepEqual(Object.keys(body).sort(), ['id', 'message', 'ok']);
    assert.equal(body.ok, true);
    assert.equal(body.message, 'Saved');
    assert.equal(typeof body.id, 'number');

    const row = await eventually(async () => (await app.cafe24.store.readTokens('shop1')) ?? undefined, {
      timeoutMs: 3000,
      what: 'the exchange',
    });
    const exchangedMs = Date.now() - started;
    assert.ok(exchangedMs < 1000, `exchanged after ${exchangedMs} ms`);
    assert.equal(row.status, 'active');
    assert.equal(row.version, 1);
    assert.equal(row.keyId, 'k1');
    assert.equal(row.accessToken[0], 0x01, 'the access token is stored as ciphertext');
    // Cafe24's expires_at is Korea time: read as UTC, the token would seem to live 11 hours.
    const lifetimeMs = row.accessExpiresAt.getTime() - Date.now();
    assert.ok(lifetimeMs > 7000_000 && lifetimeMs <= 7200_000, `access token lives ${lifetimeMs} ms`);
    assert.equal((await sandbox.stats('shop1')).authorization_code_grants, 1);

    const code = await app.cafe24.db.query(
      'SELECT status, code, mall_id FROM cafe24.authorization_codes WHERE id = $1',
      [body.id],
    );
    assert.deepEqual(code.rows[0], { status: 'exchanged', code: '', mall_id: 'shop1' });
    const events = await app.cafe24.db.query("SELECT kind FROM cafe24.mall_events WHERE mall_id = 'shop1'");
    assert.deepEqual(events.rows, [{ kind: 'installed' }]);

    const access = app.cafe24.tokens.sealer.open('shop1', 'access', row.keyId, row.accessToken);
    for (const line of logger.lines) assert.ok(!line.includes(access) && !line.includes(CLIENT_SECRET.expose()), line);
  });

  it('refuses a replayed state with 409, even after the exchange', async () => {
    const link = await sandbox.launchUrl('shop2');
    const install = await get(`/install${link.search}`);
    const consent = await fetch(/** @type {string} */ (install.headers.get('location')), { redirect: 'manual' });
    const back = new URL(/** @type {string} */ (consent.headers.get('location')));
    assert.equal((await get(`/oauth/callback${back.search}`)).status, 200);
    const replay = await get(`/oauth/callback${back.search}`);
    assert.equal(replay.headers.get('cache-control'), 'no-store');
    assert.deepEqual(await refusal(replay), [409, 'state_already_used']);
  });

  it('stores nothing unless the state is valid', async () => {
    const before = await app.cafe24.db.query('SELECT count(*)::int AS n FROM cafe24.authorization_codes');
    const expired = app.cafe24.signer.issue('shop3', new Date(Date.now() - 601_000));
    const forged = `${app.cafe24.signer.issue('shop3', new Date()).slice(0, -2)}AA`;
    for (const [query, status, error] of /** @type {const} */ ([
      [`code=abc&state=${expired}`, 400, 'state_expired'],
      [`code=abc&state=${forged}`, 400, 'invalid_state'],
      ['code=abc&state=v1.nonsense', 400, 'invalid_state'],
      ['code=abc', 400, 'missing_parameter'],
      ['code=&state=x', 400, 'missing_parameter'],
      [`code=${'c'.repeat(513)}&state=x`, 400, 'invalid_parameter'],
      ['code=a&code=b&state=x', 400, 'duplicate_parameter'],
      ['error=access_denied&state=x', 403, 'access_denied'],
    ])) {
      const response = await get(`/oauth/callback?${query}`);
      assert.equal(response.headers.get('cache-control'), 'no-store', query);
      assert.deepEqual(await refusal(response), [status, error], query);
    }
    const after = await app.cafe24.db.query('SELECT count(*)::int AS n FROM cafe24.authorization_codes');
    assert.equal(after.rows[0].n, before.rows[0].n);
  });

  it('answers a browser with a small page, same status', async () => {
    const state = app.cafe24.signer.issue('shop4', new Date(Date.now() - 700_000));
    const response = await get(`/oauth/callback?code=abc&state=${state}`, {
      headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' },
    });
    assert.equal(response.status, 400);
    assert.match(/** @type {string} */ (response.headers.get('content-type')), /^text\/html; charset=utf-8/);
    assert.equal(response.headers.get('cache-control'), 'no-store');
    assert.match(
      await response.text(),
      /^<h1 id="result" class="fail" data-ok="false">This link did not work<\/h1><p id="message">/,
    );
  });

  it('caps the codes waiting per mall at CAFE24_MAX_PENDING_CODES_PER_MALL', async () => {
    await app.cafe24.exchanger.stop();
    try {
      const answers = [];
      for (let i = 0; i < 6; i += 1) {
        const state = app.cafe24.signer.issue('flooded', new Date());
        answers.push((await get(`/oauth/callback?code=code-${i}&state=${state}`)).status);
      }
      assert.deepEqual(answers, [200, 200, 200, 200, 200, 429]);
    } finally {
      await app.cafe24.db.query(
        "UPDATE cafe24.authorization_codes SET status = 'failed', code = '' WHERE mall_id = 'flooded'",
      );
      app.cafe24.exchanger.start();
    }
  });
});

describe('every other answer (contract §3.1, §3.5-3.7)', () => {
  it('serves health, readiness and metrics', async () => {
    assert.deepEqual(await (await get('/healthz')).json(), { ok: true });
    assert.deepEqual(await (await get('/readyz')).json(), { ok: true, database: 'up' });
    const metrics = await get('/metrics');
    assert.equal(metrics.headers.get('content-type'), 'application/openmetrics-text; version=1.0.0; charset=utf-8');
    const text = await metrics.text();
    assert.match(text, /cafe24_oauth_callback_outcomes_total\{outcome="saved"\} [1-9]/);
    assert.match(text, /cafe24_oauth_http_requests_total\{route="\/oauth\/callback",method="GET",status="200"\}/);
    assert.match(text, /# EOF\n$/);
  });

  it('answers JSON 404 and 405, 414 and 413, and hides the admin proxy while it is off', async () => {
    assert.deepEqual(await refusal(await get('/nowhere')), [404, 'not_found']);
    assert.deepEqual(await refusal(await get('/oauth/callback', { method: 'POST' })), [405, 'method_not_allowed']);
    assert.deepEqual(await refusal(await get(`/install?x=${'a'.repeat(9000)}`)), [414, 'uri_too_long']);
    assert.deepEqual(
      await refusal(
        await get('/oauth/callback', { method: 'POST', body: 'x'.repeat(70_000), headers: { accept: 'text/html' } }),
      ),
      [413, 'body_too_large'],
    );
    assert.deepEqual(await refusal(await get('/internal/malls/shop1/api/v2/admin/products')), [404, 'not_found']);
  });
});
