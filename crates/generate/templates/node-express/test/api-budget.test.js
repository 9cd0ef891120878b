// The fleet-wide Admin API budget (docs/contract.md §6.8): independent clients — each with its
// own database pools, as separate processes have — share one mall's bucket through
// cafe24.take_api_call, and fall back to a quarter of the bucket each while the budget does not
// answer. Against the real sandbox with a small, fast bucket (10 deep, 10 per second) and a real
// PostgreSQL.

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import pg from 'pg';

import { startCafe24 } from '../auth/runtime.js';
import { loadSettings } from '../auth/settings.js';
import { createTestDatabase } from './support/database.js';
import { SANDBOX_FLAGS, installedMall, recordingLogger, startTestApp, testEnv } from './support/harness.js';
import { startSandbox } from './support/sandbox.js';

/** @import { Cafe24 } from '../auth/runtime.js' */
/** @import { TestApp } from './support/harness.js' */
/** @import { Sandbox } from './support/sandbox.js' */

const BUCKET = 10;
const DRAIN_PER_SEC = 10;
const TAKE_API_CALL = 'cafe24.take_api_call(text, double precision, double precision, double precision)';

/** @type {Sandbox} */
let sandbox;
/** @type {{ url: string, drop(): Promise<void> }} */
let database;
/** @type {string} */
let configDir;
/** @type {TestApp} */
let app;
/** The other "processes": runtimes of their own on the same database. @type {Cafe24[]} */
const others = [];
const logger = recordingLogger();

before(async () => {
  configDir = await mkdtemp(join(tmpdir(), 'cafe24-budget-'));
  const config = join(configDir, 'sandbox.toml');
  await writeFile(config, `[rate_limit]\nbucket_size = ${BUCKET}\ndrain_per_sec = ${DRAIN_PER_SEC}\n`);
  await Promise.all([
    startSandbox([...SANDBOX_FLAGS, '--config', config]).then((started) => (sandbox = started)),
    createTestDatabase().then((created) => (database = created)),
  ]);
  const env = testEnv({
    sandbox,
    databaseUrl: database.url,
    CAFE24_API_BUCKET_SIZE: String(BUCKET),
    CAFE24_API_DRAIN_PER_SEC: String(DRAIN_PER_SEC),
  });
  app = await startTestApp({ env, runWorker: false, logger });
  for (let i = 0; i < 2; i += 1) others.push(await startCafe24(loadSettings(env), { runWorker: false }));
  for (const mallId of ['fleet', 'fallback', 'slow']) await installedMall({ app, sandbox, mallId });
});
after(async () => {
  await Promise.all(others.map((cafe24) => cafe24.close()));
  await app?.close();
  await Promise.all([sandbox?.stop(), database?.drop()]);
  if (configDir) await rm(configDir, { recursive: true, force: true });
});

/** Every client of the test, one per "process". */
const fleet = () => [app.cafe24, ...others];

/** Attempts paced by each budget, over the whole fleet. */
function paced() {
  const count = (/** @type {'shared' | 'fallback'} */ budget) =>
    fleet().reduce((sum, cafe24) => sum + cafe24.metrics.value('cafe24_api_paced', { budget }), 0);
  return { shared: count('shared'), fallback: count('fallback') };
}

/**
 * One statement on the test database, on a session of its own.
 * @param {(client: pg.Client) => Promise<unknown>} fn
 */
async function withSession(fn) {
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  try {
    await fn(client);
  } finally {
    await client.end();
  }
}

describe('the fleet-wide Admin API budget (contract §6.8)', () => {
  it('keeps three clients hammering one mall within its one bucket', async () => {
    const perClient = 12;
    const calls = perClient * fleet().length;
    const before = paced();
    const started = performance.now();
    const counts = await Promise.all(
      fleet().flatMap((cafe24) => {
        const shop = cafe24.client.mall('fleet');
        return Array.from({ length: perClient }, () => shop.productsCount());
      }),
    );
    const elapsedMs = performance.now() - started;
    assert.equal(counts.length, calls);
    assert.ok(
      counts.every((n) => Number.isInteger(n)),
      'every call answered',
    );
    const stats = await sandbox.stats('fleet');
    assert.equal(stats.rate_limited, 0, 'no call met a 429');
    assert.equal(stats.api_calls, calls);
    // One bucket lets at most BUCKET + DRAIN_PER_SEC × t calls through in t seconds; three
    // separate buckets would have let them all through in a fraction of that.
    const oneBucketMs = ((calls - BUCKET) / DRAIN_PER_SEC) * 1000;
    assert.ok(elapsedMs >= oneBucketMs, `${calls} calls took ${Math.round(elapsedMs)} ms, under ${oneBucketMs} ms`);
    const after = paced();
    assert.equal(after.shared - before.shared, calls, 'every attempt paced by the shared budget');
    assert.equal(after.fallback - before.fallback, 0);
  });

  it('falls back to a quarter of the bucket per client while the budget is gone, and returns to it', async () => {
    const perClient = 4;
    const clients = fleet().slice(0, 2);
    const before = paced();
    const warned = logger.lines.length;
    await withSession((db) => db.query(`ALTER FUNCTION ${TAKE_API_CALL} RENAME TO take_api_call_away`));
    try {
      const counts = await Promise.all(
        clients.flatMap((cafe24) => {
          const shop = cafe24.client.mall('fallback');
          return Array.from({ length: perClient }, () => shop.productsCount());
        }),
      );
      assert.ok(counts.every((n) => Number.isInteger(n)));
    } finally {
      await withSession((db) =>
        db.query(
          'ALTER FUNCTION cafe24.take_api_call_away(text, double precision, double precision, double precision) RENAME TO take_api_call',
        ),
      );
    }
    const calls = perClient * clients.length;
    const stats = await sandbox.stats('fallback');
    assert.equal(stats.rate_limited, 0, 'two fallback shares stay within the bucket');
    assert.equal(stats.api_calls, calls);
    const during = paced();
    assert.equal(during.fallback - before.fallback, calls, 'every attempt paced by the fallback share');
    assert.equal(during.shared - before.shared, 0);
    const warnings = logger.lines.slice(warned).filter((line) => line.includes('shared API budget is unreachable'));
    assert.equal(warnings.length, perClient, 'one warning per attempt of the logged client');
    assert.ok(
      warnings.every((line) => !line.includes(database.url) && !/bearer|token/i.test(line)),
      warnings[0],
    );

    await app.cafe24.client.mall('fallback').productsCount();
    const back = paced();
    assert.equal(back.shared - during.shared, 1, 'the next call draws from the shared budget again');
    assert.equal(back.fallback, during.fallback);
  });

  it('paces on the fallback share when the budget does not answer within a second', async () => {
    const shop = app.cafe24.client.mall('slow');
    await shop.productsCount(); // the mall's row now exists
    const before = paced();
    const blocker = new pg.Client({ connectionString: database.url });
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query("SELECT 1 FROM cafe24.api_budgets WHERE mall_id = 'slow' FOR UPDATE");
      const started = performance.now();
      assert.ok(Number.isInteger(await shop.productsCount()));
      const elapsedMs = performance.now() - started;
      assert.ok(elapsedMs >= 1000 && elapsedMs < 5000, `${Math.round(elapsedMs)} ms`);
      const during = paced();
      assert.equal(during.fallback - before.fallback, 1);
      assert.equal(during.shared - before.shared, 0);
    } finally {
      await blocker.query('ROLLBACK').catch(() => {});
      await blocker.end();
    }
    await shop.productsCount();
    assert.equal(paced().shared - before.shared, 1, 'the budget paces again once it answers');
    const stats = await sandbox.stats('slow');
    assert.equal(stats.rate_limited, 0);
    assert.equal(stats.api_calls, 3);
  });

  it('counts the pacing on /metrics', async () => {
    const text = await (await fetch(`${app.url}/metrics`)).text();
    assert.match(text, /# TYPE cafe24_api_paced counter/);
    assert.match(text, /cafe24_api_paced_total\{budget="shared"\} [1-9]/);
    assert.match(text, /cafe24_api_paced_total\{budget="fallback"\} [1-9]/);
  });
});
