// `node server.js` as a deployment runs it (docs/contract.md §2.1, §10.5): one line naming a bad
// setting and exit code 2; exit code 1 when it cannot start; serve, then stop on SIGTERM.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';

import { createTestDatabase } from './support/database.js';
import { testEnv } from './support/harness.js';

const SERVER = fileURLToPath(new URL('../server.js', import.meta.url));
const EXIT_TIMEOUT_MS = 20_000;

/**
 * Runs server.js in an empty directory (so no stray .env is read) with exactly `env`.
 * @param {Record<string, string>} env
 * @param {{ dotenv?: string }} [options] a .env file to put in that directory
 */
function server(env, { dotenv } = {}) {
  const cwd = mkdtempSync(join(tmpdir(), 'cafe24-server-'));
  directories.push(cwd);
  if (dotenv !== undefined) writeFileSync(join(cwd, '.env'), dotenv);
  return spawn(process.execPath, [SERVER], {
    cwd,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/**
 * Waits for the process to end and returns its exit code and stderr.
 * @param {import('node:child_process').ChildProcess} child
 */
async function finished(child) {
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), EXIT_TIMEOUT_MS);
  const [code] = await once(child, 'exit');
  clearTimeout(timer);
  return { code, stderr };
}

/** The empty directories the servers ran in, removed at the end. @type {string[]} */
const directories = [];
/** @type {{ url: string, drop(): Promise<void> }} */
let database;
before(async () => {
  database = await createTestDatabase();
});
after(async () => {
  await database?.drop();
  for (const directory of directories) rmSync(directory, { recursive: true, force: true });
});

describe('node server.js', () => {
  it('stops at a missing setting with exit code 2 and one line naming it', async () => {
    const { CAFE24_CLIENT_ID: _, ...env } = testEnv({ databaseUrl: database.url });
    const { code, stderr } = await finished(server(env));
    assert.equal(code, 2);
    assert.equal(stderr, 'error: CAFE24_CLIENT_ID: is not set (required)\n');
  });

  it('names a malformed secret without showing it', async () => {
    const { code, stderr } = await finished(
      server({ ...testEnv({ databaseUrl: database.url }), EXPECTED_STATE_SECRET: 'hunter2-hunter2' }),
    );
    assert.equal(code, 2);
    assert.equal(stderr, 'error: EXPECTED_STATE_SECRET: must be at least 32 characters (try: openssl rand -hex 32)\n');
  });

  it('stops with exit code 1 when the database is unreachable', async () => {
    const env = testEnv({ databaseUrl: 'postgres://nobody@127.0.0.1:1/none', DATABASE_ACQUIRE_TIMEOUT_SECS: '2' });
    const { code, stderr } = await finished(server(env));
    assert.equal(code, 1);
    assert.match(stderr, /could not start/);
    assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
  });

  it('serves on LISTEN_ADDR with settings from .env, then drains and exits 0 on SIGTERM', async () => {
    const { TOKEN_ENCRYPTION_KEYS, ...env } = testEnv({ databaseUrl: database.url, LISTEN_ADDR: '127.0.0.1:0' });
    const child = server(env, { dotenv: `TOKEN_ENCRYPTION_KEYS=${TOKEN_ENCRYPTION_KEYS}\nLISTEN_ADDR=127.0.0.1:1\n` });
    const exit = finished(child);
    const lines = createInterface({ input: /** @type {import('node:stream').Readable} */ (child.stderr) });
    /** @type {string} */
    const address = await new Promise((resolve, reject) => {
      lines.on('line', (line) => {
        const record = JSON.parse(line);
        if (record.msg === 'listening') resolve(record.address);
      });
      child.once('exit', () => reject(new Error('server.js exited before listening')));
    });
    assert.deepEqual(await (await fetch(`http://${address}/healthz`)).json(), { ok: true });
    assert.deepEqual(await (await fetch(`http://${address}/readyz`)).json(), { ok: true, database: 'up' });
    child.kill('SIGTERM');
    const { code, stderr } = await exit;
    assert.equal(code, 0);
    assert.match(stderr, /"msg":"stopped"/);
  });
});
