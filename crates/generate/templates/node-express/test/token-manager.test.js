// The refresh protocol (docs/contract.md §9-10) against a real PostgreSQL and the real sandbox,
// whose counters are exact: one refresh per rotation however many callers and processes ask; a
// caller that gives up never loses a rotation; a lost rotation is flagged, never silent. Expiry
// is decided by a test clock, so nothing waits two hours.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { keepAlivePass } from '../auth/keepalive.js';
import { startCafe24 } from '../auth/runtime.js';
import { NeedsReauth, Revoked, TokenUnavailable } from '../auth/token-manager.js';
import { loadSettings } from '../auth/settings.js';
import { createTestDatabase } from './support/database.js';
import { SANDBOX_FLAGS, TestClock, installedMall, startTestApp, testEnv } from './support/harness.js';
import { startSandbox } from './support/sandbox.js';

/** @import { Cafe24 } from '../auth/runtime.js' */
/** @import { TestApp } from './support/harness.js' */
/** @import { Sandbox } from './support/sandbox.js' */

const HOURS = 3600_000;
const HTTP_TIMEOUT_SECS = 3;
/** @type {TestClock} */
let clock;
/** @type {Sandbox} */
let sandbox;
/** @type {{ url: string, drop(): Promise<void> }} */
let database;
/** @type {Record<string, string>} */
let env;
/** The first process: the app, with its worker off (exchanges are drained by the tests). @type {TestApp} */
let app;
/** A second process on the same database: its own pools, its own in-memory single flight. @type {Cafe24} */
let other;

/** @param {string} mallId */
const row = async (mallId) => {
  const found = await app.cafe24.store.readTokens(mallId);
  assert.ok(found, `a token row for ${mallId}`);
  return found;
};

/** @param {string} mallId */
const events = async (mallId) =>
  (await app.cafe24.db.query('SELECT kind FROM cafe24.mall_events WHERE mall_id = $1 ORDER BY id', [mallId])).rows.map(
    (r) => r.kind,
  );

before(async () => {
  // Each is assigned as soon as it exists, so `after` stops what started even if the other failed.
  await Promise.all([
    startSandbox(SANDBOX_FLAGS).then((started) => (sandbox = started)),
    createTestDatabase().then((created) => (database = created)),
  ]);
  clock = new TestClock(sandbox);
  env = testEnv({ sandbox, databaseUrl: database.url, CAFE24_HTTP_TIMEOUT_SECS: String(HTTP_TIMEOUT_SECS) });
  app = await startTestApp({ env, clock, runWorker: false });
  // The second process gives up on a held mall lock after one second.
  const impatient = loadSettings({ ...env, CAFE24_REFRESH_LOCK_WAIT_SECS: '1' });
  other = await startCafe24(impatient, { clock: clock.now, runWorker: false, migrate: false });
});
after(async () => {
  await other?.close();
  await app?.close();
  await Promise.all([sandbox?.stop(), database?.drop()]);
});

describe('access tokens (contract §9)', () => {
  it('hands out the stored token while it is fresh, without calling Cafe24', async () => {
    const installed = await installedMall({ app, sandbox, mallId: 'fresh' });
    const token = await app.cafe24.tokens.accessToken('fresh');
    assert.equal(
      token.expose(),
      app.cafe24.tokens.sealer.open('fresh', 'access', installed.keyId, installed.accessToken),
    );
    assert.equal((await sandbox.stats('fresh')).refresh_grants, 0);
  });

  it('refreshes once for 40 concurrent callers in two processes', async () => {
    await installedMall({ app, sandbox, mallId: 'crowd' });
    await clock.advance(2 * HOURS);
    const callers = Array.from({ length: 40 }, (_, i) => (i % 2 ? other : app.cafe24).tokens.accessToken('crowd'));
    const tokens = new Set((await Promise.all(callers)).map((t) => t.expose()));
    assert.equal(tokens.size, 1, 'every caller got the one new token');
    const stats = await sandbox.stats('crowd');
    assert.equal(stats.refresh_grants, 1);
    assert.equal(stats.refresh_tokens_rejected, 0);
    const refreshed = await row('crowd');
    assert.equal(refreshed.version, 2);
    assert.equal(refreshed.refreshStartedAt, null, 'the journal is cleared by the stored refresh');
    assert.ok(refreshed.accessExpiresAt.getTime() > Date.now() + 1.9 * HOURS);
  });

  it('stores the pair of a refresh whose caller gave up while Cafe24 was answering', async () => {
    await installedMall({ app, sandbox, mallId: 'impatient' });
    await clock.advance(2 * HOURS);
    await sandbox.setFault('token', { mall_id: 'impatient', response_delay_ms: 1500, response_delay_next: 1 });
    const gaveUp = app.cafe24.tokens.accessToken('impatient', { signal: AbortSignal.timeout(200) });
    await assert.rejects(gaveUp, { name: 'TimeoutError' });
    assert.equal((await row('impatient')).version, 1, 'the answer is still on its way');
    assert.equal(await app.cafe24.work.drain(10_000), true);
    assert.equal((await row('impatient')).version, 2, 'the rotated pair was stored without its caller');
    assert.equal((await sandbox.stats('impatient')).refresh_grants, 1);
    // The stored refresh token is the live one: the next rotation is accepted.
    await clock.advance(2 * HOURS);
    await app.cafe24.tokens.accessToken('impatient');
    const stats = await sandbox.stats('impatient');
    assert.equal(stats.refresh_grants, 2);
    assert.equal(stats.refresh_tokens_rejected, 0);
    await sandbox.clearFaults();
  });

  it('flags a mall needs_reauth after its rotated answer was lost, and never sends while the journal is young', async () => {
    await installedMall({ app, sandbox, mallId: 'unlucky' });
    await clock.advance(2 * HOURS);
    await sandbox.setFault('token', { mall_id: 'unlucky', lose_response_next: 1 });
    await assert.rejects(app.cafe24.tokens.accessToken('unlucky'), TokenUnavailable);
    const journaled = await row('unlucky');
    assert.ok(journaled.refreshStartedAt, 'the journal is kept: the lost answer may have carried a rotated pair');
    assert.ok(journaled.lastError);
    assert.equal((await sandbox.stats('unlucky')).responses_lost, 1);

    // Within the fence (CAFE24_HTTP_TIMEOUT_SECS + 2 s) nobody sends the refresh token again.
    const waiting = other.tokens.accessToken('unlucky');
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert.equal((await sandbox.stats('unlucky')).refresh_grants, 1);
    await clock.advance((HTTP_TIMEOUT_SECS + 3) * 1000);
    await assert.rejects(waiting, NeedsReauth);

    const flagged = await row('unlucky');
    assert.equal(flagged.status, 'needs_reauth');
    assert.equal(flagged.refreshStartedAt, null);
    assert.deepEqual(await events('unlucky'), ['installed', 'needs_reauth']);
    assert.equal((await sandbox.stats('unlucky')).refresh_tokens_rejected, 1);
    await assert.rejects(app.cafe24.tokens.accessToken('unlucky'), NeedsReauth);
    await sandbox.clearFaults();
  });

  it('revives a flagged mall with a new install', async () => {
    await installedMall({ app, sandbox, mallId: 'unlucky' });
    const revived = await row('unlucky');
    assert.equal(revived.status, 'active');
    assert.equal(revived.version, 2);
    assert.ok(await app.cafe24.tokens.accessToken('unlucky'));
  });

  it('skips a forced refresh when another caller refreshed meanwhile', async () => {
    await installedMall({ app, sandbox, mallId: 'forced' });
    const stale = await app.cafe24.tokens.accessToken('forced');
    await clock.advance(60_000);
    const first = await app.cafe24.tokens.refreshRejected('forced', stale);
    const second = await other.tokens.refreshRejected('forced', stale);
    assert.equal(second.expose(), first.expose());
    assert.equal((await sandbox.stats('forced')).refresh_grants, 1);
  });

  it('gives up on a lock held elsewhere after CAFE24_REFRESH_LOCK_WAIT_SECS, and the abandoned wait never takes it', async () => {
    await installedMall({ app, sandbox, mallId: 'locked' });
    await clock.advance(2 * HOURS);
    const holder = await app.cafe24.db.connect();
    const key = "hashtextextended('cafe24.mall:' || 'locked', 0)";
    try {
      await holder.query(`SELECT pg_advisory_lock(${key})`);
      const started = Date.now();
      await assert.rejects(other.tokens.accessToken('locked'), TokenUnavailable);
      assert.ok(Date.now() - started < 5000);
      await holder.query(`SELECT pg_advisory_unlock(${key})`);
      await new Promise((resolve) => setTimeout(resolve, 200));
      const held = await holder.query(
        `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND granted`,
      );
      assert.equal(held.rows[0].n, 0, 'no session kept or later took the lock');
    } finally {
      await holder.end();
    }
    assert.equal((await sandbox.stats('locked')).refresh_grants, 0, 'nothing was sent while the lock was held');
    assert.ok(await other.tokens.accessToken('locked'));
    assert.equal((await sandbox.stats('locked')).refresh_grants, 1);
  });

  it('keeps a mall alive before its refresh token expires', async () => {
    await installedMall({ app, sandbox, mallId: 'dormant' });
    assert.equal(await app.cafe24.tokens.keepAlive('dormant', 3 * 24 * HOURS), false, 'not due yet');
    assert.equal(await app.cafe24.tokens.keepAlive('dormant', 14 * 24 * HOURS), true);
    assert.equal((await sandbox.stats('dormant')).refresh_grants, 1);
  });
});

describe('revoke (contract §10.1)', () => {
  it('revokes both tokens at Cafe24, wipes them and refuses the mall afterwards', async () => {
    await installedMall({ app, sandbox, mallId: 'leaving' });
    await app.cafe24.tokens.revoke('leaving');
    assert.equal((await sandbox.stats('leaving')).revokes, 2);
    const revoked = await row('leaving');
    assert.equal(revoked.status, 'revoked');
    assert.equal(revoked.accessToken.length, 0);
    assert.equal(revoked.refreshToken.length, 0);
    assert.deepEqual(await events('leaving'), ['installed', 'revoked']);
    await assert.rejects(app.cafe24.tokens.accessToken('leaving'), Revoked);
    await app.cafe24.tokens.revoke('leaving');
    assert.equal((await sandbox.stats('leaving')).revokes, 2, 'revoking twice sends nothing');
  });

  it('ignores an uninstall older than the grant it would revoke (contract §10.2)', async () => {
    await installedMall({ app, sandbox, mallId: 'reinstalled' });
    const late = await app.cafe24.tokens.uninstalled('reinstalled', {
      reason: 'app deleted (event 90077)',
      occurredAt: new Date(Date.now() - HOURS),
    });
    assert.equal(late, false);
    assert.equal((await row('reinstalled')).status, 'active');
    assert.equal(
      await app.cafe24.tokens.uninstalled('reinstalled', {
        reason: 'app deleted (event 90077)',
        occurredAt: new Date(),
      }),
      true,
    );
    assert.equal((await row('reinstalled')).status, 'revoked');
  });
});

describe('keep-alive (contract §10.3)', () => {
  it('refreshes every active mall whose refresh token expires within the window, and only those', async () => {
    await clock.advance(2 * 24 * HOURS);
    const { tokens, store, settings } = app.cafe24;
    const window = { ...settings, keepaliveWindowSecs: 13 * 24 * 3600, keepaliveRate: 1000 };
    const due = await store.mallsDue(new Date(clock.now().getTime() + 13 * 24 * HOURS), 100);
    assert.ok(due.length >= 5, `${due.length} malls due`);
    const grants = async () => Promise.all(due.map(async (mallId) => (await sandbox.stats(mallId)).refresh_grants));
    const before = await grants();
    assert.deepEqual(await keepAlivePass({ tokens, store, settings: window }), {
      due: due.length,
      refreshed: due.length,
      skipped: 0,
      failed: 0,
    });
    assert.deepEqual(
      await grants(),
      before.map((n) => n + 1),
    );
    const soon = { ...settings, keepaliveWindowSecs: 3 * 24 * 3600 };
    assert.equal((await keepAlivePass({ tokens, store, settings: soon })).due, 0);
  });
});
