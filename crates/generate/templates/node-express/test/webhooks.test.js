// Webhooks (docs/contract.md §3.4, §6.6-6.7, §10.2): verified (fail closed), deduplicated,
// stored before the 200, acted on off the request path — with deliveries sent by the real
// sandbox to the app on port 0, and a real PostgreSQL.

import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';

import { request } from 'undici';

import { ConfigError } from '../auth/settings.js';
import { dedupeKey, startWebhooks } from '../webhooks/handler.js';
import { loadWebhookSettings } from '../webhooks/settings.js';
import { Verifier, WebhookRefused, signHex } from '../webhooks/verify.js';
import { createTestDatabase } from './support/database.js';
import { SANDBOX_FLAGS, SCOPES, eventually, installedMall, startTestApp, testEnv } from './support/harness.js';
import { startSandbox } from './support/sandbox.js';

/** @import { WebhookEvent } from '../webhooks/store.js' */
/** @import { TestApp } from './support/harness.js' */
/** @import { Sandbox } from './support/sandbox.js' */

const CLIENT_ID = 'webhook-client';
const CLIENT_SECRET = 'webhook-client-secret-0123456789';
const WEBHOOK_KEY = 'sandbox-webhook-key-0123456789';
const FAILING_EVENT = 90099;
const BODY = '{"event_no":90077,"resource":{"mall_id":"shop1","event_shop_no":"1"}}';

/** @type {Sandbox} */
let sandbox;
/** @type {{ url: string, drop(): Promise<void> }} */
let database;
/** @type {TestApp} */
let app;
/** @type {WebhookEvent[]} */
const handled = [];

/**
 * A delivery straight to the app.
 * @param {string | Buffer} body
 * @param {Record<string, string>} [headers]
 */
const deliver = (body, headers = { 'x-api-key': WEBHOOK_KEY }) =>
  fetch(`${app.url}/webhooks/cafe24`, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json', ...headers },
  });

/** @param {number} id */
const stored = async (id) =>
  (
    await app.cafe24.db.query(
      'SELECT dedupe_key, mall_id, event_no, status, attempts FROM cafe24.webhook_events WHERE id = $1',
      [id],
    )
  ).rows[0];

const count = async () =>
  Number((await app.cafe24.db.query('SELECT count(*) AS n FROM cafe24.webhook_events')).rows[0].n);

before(async () => {
  // Each is assigned as soon as it exists, so `after` stops what started even if the other failed.
  await Promise.all([
    startSandbox(SANDBOX_FLAGS).then((started) => (sandbox = started)),
    createTestDatabase().then((created) => (database = created)),
  ]);
  const env = testEnv({
    sandbox,
    databaseUrl: database.url,
    CAFE24_CLIENT_ID: CLIENT_ID,
    CAFE24_CLIENT_SECRET: CLIENT_SECRET,
    CAFE24_WEBHOOK_AUTH: 'api-key',
    CAFE24_WEBHOOK_KEY: WEBHOOK_KEY,
    CAFE24_WEBHOOK_TRACE_HEADER: 'X-Trace-Id',
    CAFE24_WEBHOOK_MAX_ATTEMPTS: '2',
  });
  app = await startTestApp({
    env,
    runWorker: false,
    mount: (cafe24) => {
      const handler = async (/** @type {WebhookEvent} */ event) => {
        if (event.eventNo === FAILING_EVENT) throw new Error('the app could not handle it');
        handled.push(event);
      };
      const webhooks = startWebhooks(cafe24, loadWebhookSettings(env), { handlers: [handler] });
      return { deps: { webhooks }, close: () => webhooks.close() };
    },
  });
  await sandbox.control('POST', '/apps', {
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    name: 'Webhook App',
    redirect_uris: ['http://127.0.0.1:8080/oauth/callback'],
    scopes: SCOPES.split(','),
    app_url: 'http://127.0.0.1:8080/install',
    webhook_url: `${app.url}/webhooks/cafe24`,
    webhook_auth: { header: 'X-Api-Key', key: WEBHOOK_KEY, scheme: 'api_key' },
  });
});
after(async () => {
  await app?.close();
  await Promise.all([sandbox?.stop(), database?.drop()]);
});

describe('POST /webhooks/cafe24 (contract §3.4)', () => {
  it('stores a verified delivery once, answers 200 fast, and hands it to the app off the request path', async () => {
    const report = await sandbox.control('POST', '/webhooks/fire', {
      mall_id: 'hooked',
      event_no: 90001,
      resource: { product_no: 12 },
      wait: true,
    });
    const [delivery] = report.deliveries;
    assert.equal(delivery.status, 'delivered');
    const event = await eventually(async () => handled.find((e) => e.traceId === delivery.trace_id), {
      what: 'the handler',
    });
    assert.equal(event.eventNo, 90001);
    assert.equal(event.mallId, 'hooked');
    assert.equal(event.dedupeKey, `trace:${delivery.trace_id}`);
    assert.equal(JSON.parse(event.body).resource.product_no, 12);
    await eventually(async () => ((await stored(event.id)).status === 'dispatched' ? true : undefined), {
      what: 'dispatched',
    });
  });

  it('answers a repeated delivery with the first id and duplicate: true', async () => {
    const body = '{"event_no":"90002","resource":{"mall_id":"hooked","product_no":"1,2"}}';
    const first = await deliver(body, { 'x-api-key': WEBHOOK_KEY, 'x-trace-id': 'trace-42' });
    const { id } = /** @type {{ id: number }} */ (await first.json());
    const again = await deliver(body, { 'x-api-key': WEBHOOK_KEY, 'x-trace-id': 'trace-42' });
    assert.deepEqual(await again.json(), { ok: true, id, duplicate: true });
    assert.equal((await stored(id)).dedupe_key, 'trace:trace-42');
  });

  it('refuses an unverified delivery with 403 and stores nothing', async () => {
    const before = await count();
    /** @type {Array<Record<string, string>>} */
    const attempts = [{}, { 'x-api-key': 'not-the-key-at-all-0123456789' }, { 'x-api-key': `${WEBHOOK_KEY}x` }];
    for (const headers of attempts) {
      const response = await deliver(BODY, headers);
      assert.equal(response.status, 403);
      assert.deepEqual(await response.json(), {
        ok: false,
        error: 'forbidden',
        message: 'The delivery could not be verified.',
      });
    }
    assert.equal(await count(), before);
  });

  it('refuses what is not a Cafe24 event with 400 invalid_event', async () => {
    const before = await count();
    for (const body of [
      'not json',
      '{"event_no":0,"resource":{"mall_id":"shop1"}}',
      '{"event_no":90001,"resource":{"mall_id":"Shop.1"}}',
      '{"event_no":90001}',
      Buffer.from([0x7b, 0xff, 0x7d]),
    ]) {
      const response = await deliver(body);
      assert.equal(response.status, 400, String(body));
      assert.equal(/** @type {{ error: string }} */ (await response.json()).error, 'invalid_event');
    }
    assert.equal(await count(), before);
  });

  it('refuses a body over HTTP_MAX_BODY_BYTES, declared or streamed, with 413', async () => {
    assert.equal((await deliver('x'.repeat(70_000))).status, 413);
    const streamed = await request(`${app.url}/webhooks/cafe24`, {
      method: 'POST',
      headers: { 'x-api-key': WEBHOOK_KEY },
      body: Readable.from(Array.from({ length: 80 }, () => Buffer.alloc(1024, 0x20))),
    });
    assert.equal(streamed.statusCode, 413);
    assert.equal(/** @type {{ error: string }} */ (await streamed.body.json()).error, 'body_too_large');
  });

  it('retries a failing app handler, then dead-letters the event', async () => {
    const response = await deliver(`{"event_no":${FAILING_EVENT},"resource":{"mall_id":"hooked"}}`);
    const { id } = /** @type {{ id: number }} */ (await response.json());
    const dead = await eventually(
      async () => {
        const row = await stored(id);
        return row.status === 'dead_letter' ? row : undefined;
      },
      { timeoutMs: 10_000, what: 'the dead letter' },
    );
    assert.equal(dead.attempts, 2);
  });
});

describe('uninstall (contract §10.2)', () => {
  it('revokes the mall when Cafe24 says the app was deleted', async () => {
    await installedMall({ app, sandbox, mallId: 'leaving', clientId: CLIENT_ID });
    await sandbox.control('POST', '/malls/leaving/uninstall', { client_id: CLIENT_ID });
    const revoked = await eventually(
      async () => {
        const row = await app.cafe24.store.readTokens('leaving');
        return row?.status === 'revoked' ? row : undefined;
      },
      { what: 'the revoke' },
    );
    assert.equal(revoked.lastError, 'app deleted (event 90077)');
    assert.equal(revoked.accessToken.length, 0);
    const kinds = await app.cafe24.db.query(
      "SELECT kind FROM cafe24.mall_events WHERE mall_id = 'leaving' ORDER BY id",
    );
    assert.deepEqual(
      kinds.rows.map((r) => r.kind),
      ['installed', 'revoked'],
    );
  });
});

describe('dedupe keys (contract §6.6)', () => {
  it('are exactly the documented ones', () => {
    const body = Buffer.from(BODY);
    const hashed = 'sha256:f43d7c88fea8aa0dade4f33906c40e0c8a5a8c56676bd057002df4b874b049a6';
    assert.equal(dedupeKey(null, 90077, body), hashed);
    assert.equal(dedupeKey('abc-123', 90077, body), 'trace:abc-123');
    for (const ignored of ['', 'has space', 'café', 't'.repeat(129)])
      assert.equal(dedupeKey(ignored, 90077, body), hashed, ignored);
  });
});

describe('verification (contract §3.4)', () => {
  const body = Buffer.from(BODY);
  const KEY = 'hmac-key-0123456789abcdef';
  /**
   * @param {Record<string, string>} env
   * @param {Record<string, string>} headers
   * @param {{ peer?: string, forwardedFor?: string }} [from]
   */
  const check = (env, headers, { peer = '203.0.113.9', forwardedFor } = {}) =>
    new Verifier(loadWebhookSettings(env)).check({ peer, forwardedFor, header: (name) => headers[name], body });

  it('refuses everything while CAFE24_WEBHOOK_AUTH is unset', () => {
    assert.throws(() => check({}, {}), WebhookRefused);
  });

  it('accepts an HMAC of the raw body in hex (with or without sha256=, either case) or base64', () => {
    const hex = signHex(KEY, body);
    const env = { CAFE24_WEBHOOK_AUTH: 'hmac-hex', CAFE24_WEBHOOK_KEY: KEY };
    for (const value of [hex, hex.toUpperCase(), `sha256=${hex}`, ` ${hex} `]) {
      assert.doesNotThrow(() => check(env, { 'X-Cafe24-Hmac-Sha256': value }), value);
    }
    assert.throws(() => check(env, { 'X-Cafe24-Hmac-Sha256': signHex(KEY, 'other body') }), WebhookRefused);
    assert.throws(() => check(env, { 'X-Cafe24-Hmac-Sha256': 'zz' }), WebhookRefused);
    const b64 = Buffer.from(hex, 'hex').toString('base64');
    assert.doesNotThrow(() =>
      check(
        { CAFE24_WEBHOOK_AUTH: 'hmac-base64', CAFE24_WEBHOOK_KEY: KEY, CAFE24_WEBHOOK_HEADER: 'X-Sig' },
        { 'X-Sig': b64 },
      ),
    );
  });

  it('checks the sender, believing X-Forwarded-For only from a trusted proxy', () => {
    const env = {
      CAFE24_WEBHOOK_AUTH: 'insecure-none',
      CAFE24_WEBHOOK_ALLOWED_SENDERS: '119.205.223.208/31, 203.245.45.182',
      CAFE24_TRUSTED_PROXIES: '10.0.0.0/8',
    };
    assert.doesNotThrow(() => check(env, {}, { peer: '119.205.223.209' }));
    assert.doesNotThrow(() => check(env, {}, { peer: '::ffff:203.245.45.182' }));
    assert.throws(() => check(env, {}, { peer: '198.51.100.1' }), WebhookRefused);
    assert.doesNotThrow(() =>
      check(env, {}, { peer: '10.1.2.3', forwardedFor: '198.51.100.1, 119.205.223.208, 10.9.9.9' }),
    );
    assert.throws(
      () => check(env, {}, { peer: '198.51.100.1', forwardedFor: '119.205.223.208' }),
      WebhookRefused,
      'untrusted peer',
    );
    assert.throws(
      () => check(env, {}, { peer: '10.1.2.3', forwardedFor: 'unknown, 10.9.9.9' }),
      WebhookRefused,
      'a hop that is not an IP',
    );
  });

  it('names the webhook setting that is wrong', () => {
    for (const [env, variable] of /** @type {Array<[Record<string, string>, string]>} */ ([
      [{ CAFE24_WEBHOOK_AUTH: 'signature' }, 'CAFE24_WEBHOOK_AUTH'],
      [{ CAFE24_WEBHOOK_AUTH: 'api-key' }, 'CAFE24_WEBHOOK_KEY'],
      [{ CAFE24_WEBHOOK_AUTH: 'api-key', CAFE24_WEBHOOK_KEY: 'short' }, 'CAFE24_WEBHOOK_KEY'],
      [{ CAFE24_WEBHOOK_ALLOWED_SENDERS: '10.0.0.0/33' }, 'CAFE24_WEBHOOK_ALLOWED_SENDERS'],
      [{ CAFE24_WEBHOOK_HEADER: 'X Api Key' }, 'CAFE24_WEBHOOK_HEADER'],
      [{ CAFE24_WEBHOOK_FORWARD_URL: 'https://hooks.example.com/in' }, 'CAFE24_WEBHOOK_FORWARD_SECRET'],
      [{ CAFE24_WEBHOOK_MAX_ATTEMPTS: '0' }, 'CAFE24_WEBHOOK_MAX_ATTEMPTS'],
    ])) {
      assert.throws(
        () => loadWebhookSettings(env),
        (error) => error instanceof ConfigError && error.variable === variable,
        variable,
      );
    }
  });
});
