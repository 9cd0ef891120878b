// The app as tests run it: settings from an explicit environment, the module started against a
// fresh database and the sandbox, the app factory listening on port 0 — and the browser's part
// of an install (launch → consent → callback) done over real HTTP.

import assert from 'node:assert/strict';
import { once } from 'node:events';

import { createApp } from '../../app.js';
import { startCafe24 } from '../../auth/runtime.js';
import { loadSettings } from '../../auth/settings.js';

/** @import { Cafe24 } from '../../auth/runtime.js' */
/** @import { Logger } from '../../auth/logger.js' */
/** @import { Sandbox } from './sandbox.js' */

export const KEY_RING = `k1:${Buffer.alloc(32, 7).toString('base64')}`;
export const STATE_SECRET = 'test-state-secret-0123456789abcdef-0123456789';
export const SCOPES = 'mall.read_product,mall.write_product,mall.read_store';
/** The sandbox as the tests run it: consent is given at once, any mall id exists. */
export const SANDBOX_FLAGS = ['--auto-approve', '--auto-create-malls'];

/**
 * Settings for the sandbox's default app, on a test database.
 * @param {{ sandbox?: Sandbox, databaseUrl?: string } & Record<string, string | Sandbox | undefined>} options
 * @returns {Record<string, string>}
 */
export function testEnv({ sandbox, databaseUrl, ...overrides }) {
  /** @type {Record<string, string>} */
  const env = {
    CAFE24_CLIENT_ID: 'sandbox-client-id',
    CAFE24_CLIENT_SECRET: 'sandbox-client-secret',
    CAFE24_REDIRECT_URI: 'http://127.0.0.1:8080/oauth/callback',
    CAFE24_SCOPES: SCOPES,
    CAFE24_BASE_URL: sandbox?.baseUrl ?? 'http://127.0.0.1:9/malls/{mall_id}',
    EXPECTED_STATE_SECRET: STATE_SECRET,
    TOKEN_ENCRYPTION_KEYS: KEY_RING,
  };
  if (databaseUrl !== undefined) env.DATABASE_URL = databaseUrl;
  for (const [name, value] of Object.entries(overrides)) if (typeof value === 'string') env[name] = value;
  return env;
}

/**
 * Real time plus an offset the test moves: expiry is decided by it, so nothing sleeps. The
 * sandbox's clock moves along, so Cafe24's idea of expiry agrees with the module's.
 */
export class TestClock {
  offsetMs = 0;
  now = () => new Date(Date.now() + this.offsetMs);

  /** @param {Sandbox} [sandbox] */
  constructor(sandbox) {
    this.sandbox = sandbox;
  }

  /** @param {number} ms */
  async advance(ms) {
    this.offsetMs += ms;
    await this.sandbox?.control('POST', '/clock', { advance_secs: ms / 1000 });
  }
}

/** A logger that keeps every line, to prove what never appears in one. */
export function recordingLogger() {
  /** @type {string[]} */
  const lines = [];
  /** @param {string} level */
  const log = (level) => /** @param {object | string} obj @param {string} [message] */ (obj, message) => {
    lines.push(`${level} ${JSON.stringify(obj)} ${message ?? ''}`);
  };
  /** @type {Logger & { lines: string[] }} */
  const logger = { lines, debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
  return logger;
}

/**
 * @typedef {object} TestApp
 * @property {Cafe24} cafe24
 * @property {string} url the app's origin
 * @property {() => Promise<void>} close stops the server, then the module
 */

/**
 * Starts the module and the app on port 0.
 * @param {{ env: Record<string, string>, clock?: TestClock, runWorker?: boolean, logger?: Logger,
 *   mount?: (cafe24: Cafe24) => { deps: Partial<Parameters<typeof createApp>[0]>, close?: () => Promise<void> } }} options
 * @returns {Promise<TestApp>}
 */
export async function startTestApp({ env, clock, runWorker = true, logger, mount }) {
  const cafe24 = await startCafe24(loadSettings(env), { clock: clock?.now, runWorker, logger });
  const extra = mount?.(cafe24);
  const server = createApp({ ...extra?.deps, cafe24 }).listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = /** @type {import('node:net').AddressInfo} */ (server.address());
  return {
    cafe24,
    url: `http://127.0.0.1:${address.port}`,
    async close() {
      const closed = once(server, 'close');
      server.close();
      server.closeAllConnections();
      await closed;
      await extra?.close?.();
      await cafe24.close();
    },
  };
}

/**
 * The merchant's browser: opens the sandbox's launch link on the app, follows /install to the
 * (auto-approving) consent page, and brings the code back to the app's callback.
 * @param {{ app: TestApp, sandbox: Sandbox, mallId: string, clientId?: string }} options
 * @returns {Promise<Response>} the callback's answer
 */
export async function installMall({ app, sandbox, mallId, clientId }) {
  const launch = await sandbox.launchUrl(mallId, { clientId });
  const install = await fetch(`${app.url}/install${launch.search}`, { redirect: 'manual' });
  assert.equal(install.status, 302, await install.text());
  const consent = await fetch(/** @type {string} */ (install.headers.get('location')), { redirect: 'manual' });
  assert.equal(consent.status, 302, await consent.text());
  const back = new URL(/** @type {string} */ (consent.headers.get('location')));
  return fetch(`${app.url}/oauth/callback${back.search}`, { headers: { accept: 'application/json' } });
}

/**
 * Polls `probe` until it returns something other than undefined, or fails after `timeoutMs`.
 * @template T
 * @param {() => Promise<T | undefined>} probe
 * @param {{ timeoutMs?: number, what?: string }} [options]
 * @returns {Promise<T>}
 */
export async function eventually(probe, { timeoutMs = 10_000, what = 'the condition' } = {}) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * Installs a mall and waits until its tokens are stored.
 * @param {{ app: TestApp, sandbox: Sandbox, mallId: string, clientId?: string }} options
 */
export async function installedMall(options) {
  const { app, mallId } = options;
  const answer = await installMall(options);
  assert.equal(answer.status, 200, await answer.clone().text());
  await app.cafe24.exchanger.drain();
  return eventually(async () => (await app.cafe24.store.readTokens(mallId)) ?? undefined, {
    what: `the install of ${mallId}`,
  });
}
