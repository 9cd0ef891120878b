// The Admin API client and the admin proxy (docs/client.md, docs/contract.md §3.8) against the
// real sandbox and its real bucket (40 deep, draining 2 per second), with tokens and the mall's
// shared call budget (§6.8) from a real PostgreSQL.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { Client } from 'undici';

import { Cafe24Refused } from '../auth/cafe24-client.js';
import { createTestDatabase } from './support/database.js';
import { SANDBOX_FLAGS, TestClock, installedMall, startTestApp, testEnv } from './support/harness.js';
import { startSandbox } from './support/sandbox.js';

/** @import { TestApp } from './support/harness.js' */
/** @import { Sandbox } from './support/sandbox.js' */

const ADMIN_TOKEN = 'admin-token-0123456789abcdef-0123456789';
/** @type {Sandbox} */
let sandbox;
/** @type {{ url: string, drop(): Promise<void> }} */
let database;
/** @type {TestApp} */
let app;
/** @type {TestClock} */
let clock;

before(async () => {
  // Each is assigned as soon as it exists, so `after` stops what started even if the other failed.
  await Promise.all([
    startSandbox([...SANDBOX_FLAGS, '--products', '250']).then((started) => (sandbox = started)),
    createTestDatabase().then((created) => (database = created)),
  ]);
  clock = new TestClock(sandbox);
  const env = testEnv({ sandbox, databaseUrl: database.url, CAFE24_ADMIN_TOKEN: ADMIN_TOKEN });
  app = await startTestApp({ env, clock, runWorker: false });
  await Promise.all(
    ['catalog', 'busy', 'expired', 'proxied', 'abandoned'].map((mallId) => installedMall({ app, sandbox, mallId })),
  );
});
after(async () => {
  await app?.close();
  await Promise.all([sandbox?.stop(), database?.drop()]);
});

describe('the Admin API client against the sandbox', () => {
  it('reads every product, page by page, in ascending order', async () => {
    const shop = app.cafe24.client.mall('catalog');
    assert.equal(await shop.productsCount(), 250);
    /** @type {number[]} */
    const numbers = [];
    for await (const page of shop.productPages()) numbers.push(...page.map((p) => p.product_no));
    assert.equal(numbers.length, 250);
    assert.ok(
      numbers.every((no, i) => i === 0 || no > numbers[i - 1]),
      'ascending, no duplicates',
    );
    const product = await shop.product(numbers[0]);
    assert.equal(product.product_no, numbers[0]);
    assert.equal(typeof product.product_code, 'string');
  });

  it('updates a variant and reads the store', async () => {
    const shop = app.cafe24.client.mall('catalog');
    const [product] = await shop.products({ limit: 1 });
    const [variant] = await shop.variants(product.product_no);
    const updated = await shop.updateVariant(product.product_no, variant.variant_code, { quantity: 7 });
    assert.equal(updated.inventories?.quantity, 7);
    const reread = (await shop.variants(product.product_no)).find((v) => v.variant_code === variant.variant_code);
    assert.equal(reread?.quantity, 7);
    assert.equal(typeof (await shop.store()).shop_name, 'string');
  });

  it('paces a burst past the bucket without a single 429', async () => {
    const shop = app.cafe24.client.mall('busy');
    const paced = () => app.cafe24.metrics.value('cafe24_api_paced', { budget: 'shared' });
    const before = paced();
    const started = performance.now();
    const counts = await Promise.all(Array.from({ length: 44 }, () => shop.productsCount()));
    const elapsedMs = performance.now() - started;
    assert.ok(counts.every((n) => n === 250));
    // 40 fit the bucket at once; the other 4 wait for it to drain at 2 per second.
    assert.ok(elapsedMs >= 2000, `calls past the bucket waited for it to drain: ${Math.round(elapsedMs)} ms`);
    assert.equal(paced() - before, 44, "every attempt drew from the mall's shared budget");
    const stats = await sandbox.stats('busy');
    assert.equal(stats.rate_limited, 0);
    assert.equal(stats.api_calls, 44);
  });

  it('refreshes once when Cafe24 refuses the access token, and retries the call once', async () => {
    // Cafe24's clock alone moves past the access token's expiry: the module still thinks it fresh.
    await sandbox.control('POST', '/clock', { advance_secs: 7300 });
    try {
      assert.equal(await app.cafe24.client.mall('expired').productsCount(), 250);
      const stats = await sandbox.stats('expired');
      assert.equal(stats.refresh_grants, 1);
      assert.equal(stats.refresh_tokens_rejected, 0);
    } finally {
      await sandbox.control('POST', '/clock', { advance_secs: -7300 });
    }
  });

  it("keeps Cafe24's refusal: status, code and message", async () => {
    const refused = await app.cafe24.client
      .mall('catalog')
      .product(99_999_999)
      .catch((e) => e);
    assert.ok(refused instanceof Cafe24Refused, String(refused));
    assert.equal(refused.status, 404);
    assert.equal(refused.attempts, 1);
  });
});

describe('the admin proxy (contract §3.8)', () => {
  /**
   * @param {string} path
   * @param {RequestInit & { token?: string | null }} [init]
   */
  const call = (path, { token = ADMIN_TOKEN, ...init } = {}) =>
    fetch(`${app.url}${path}`, {
      ...init,
      headers: { ...(token === null ? {} : { authorization: `Bearer ${token}` }), ...init.headers },
    });

  /** @param {Response} response */
  const refusal = async (response) => [response.status, /** @type {{ error: string }} */ (await response.json()).error];

  it('forwards with the mall token and gives back Cafe24 status and body', async () => {
    const response = await call('/internal/malls/proxied/api/v2/admin/products/count?display=T');
    assert.equal(response.status, 200);
    assert.equal(typeof (/** @type {{ count: number }} */ (await response.json()).count), 'number');
    const missing = await call('/internal/malls/proxied/api/v2/admin/products/99999999');
    assert.equal(missing.status, 404);
    assert.ok(/** @type {{ error: { code: number } }} */ (await missing.json()).error.code);
  });

  it('refuses in the contract order', async () => {
    const unauthorized = await call('/internal/malls/proxied/api/v2/admin/products', { token: null });
    assert.equal(unauthorized.headers.get('www-authenticate'), 'Bearer');
    assert.deepEqual(await refusal(unauthorized), [401, 'unauthorized']);
    assert.deepEqual(
      await refusal(await call('/internal/malls/proxied/api/v2/admin/products', { token: `${ADMIN_TOKEN}x` })),
      [403, 'forbidden'],
    );
    // Sent as is: a URL parser would resolve %2e%2e to .. before it left the test.
    const raw = new Client(app.url);
    const encoded = await raw.request({
      method: 'GET',
      path: '/internal/malls/proxied/api/v2/admin/products/%2e%2e/x',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    assert.equal(encoded.statusCode, 400);
    assert.equal(/** @type {{ error: string }} */ (await encoded.body.json()).error, 'invalid_path');
    await raw.close();
    assert.deepEqual(await refusal(await call('/internal/malls/Bad.Mall/api/v2/admin/products')), [
      400,
      'invalid_mall_id',
    ]);
    assert.deepEqual(await refusal(await call('/internal/malls/proxied/api/v2/oauth/token', { method: 'POST' })), [
      404,
      'not_found',
    ]);
    assert.deepEqual(await refusal(await call('/internal/malls/proxied/api/v2/admin/products', { method: 'PATCH' })), [
      405,
      'method_not_allowed',
    ]);
    assert.deepEqual(await refusal(await call('/internal/malls/proxied/api/v2/admin/a//b')), [400, 'invalid_path']);
    assert.deepEqual(
      await refusal(await call('/internal/malls/proxied/api/v2/admin/products', { method: 'POST', body: '{nope' })),
      [400, 'invalid_json'],
    );
    assert.deepEqual(await refusal(await call('/internal/malls/nobody/api/v2/admin/products')), [404, 'not_installed']);
  });

  it('finishes the refresh a caller started when the caller hangs up', async () => {
    await clock.advance(2 * 3600_000);
    await sandbox.setFault('token', { mall_id: 'abandoned', response_delay_ms: 1500, response_delay_next: 1 });
    try {
      const hungUp = call('/internal/malls/abandoned/api/v2/admin/products/count', {
        signal: AbortSignal.timeout(300),
      });
      await assert.rejects(hungUp, { name: 'TimeoutError' });
      assert.equal(await app.cafe24.work.drain(10_000), true);
      const row = await app.cafe24.store.readTokens('abandoned');
      assert.equal(row?.version, 2, 'the rotated pair was stored');
      const stats = await sandbox.stats('abandoned');
      assert.equal(stats.refresh_grants, 1);
      assert.equal(stats.api_calls, 0, 'the call itself was dropped with its caller');
    } finally {
      await sandbox.clearFaults();
    }
  });
});
