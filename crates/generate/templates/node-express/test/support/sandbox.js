// The real Cafe24 emulator (`cafe24-oauth sandbox`, docs/sandbox.md) as a child process on a free
// loopback port, with its control API. Found through CAFE24_SANDBOX_BIN or PATH.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { createInterface } from 'node:readline';

const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 5_000;

/** The cafe24-oauth binary, or a failure that says how to get one. */
export function sandboxBinary() {
  const named = process.env.CAFE24_SANDBOX_BIN;
  const candidates = named
    ? [named]
    : (process.env.PATH ?? '').split(delimiter).map((dir) => join(dir, 'cafe24-oauth'));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not this one
    }
  }
  throw new Error(
    named
      ? `CAFE24_SANDBOX_BIN=${named} is not an executable file`
      : 'the cafe24-oauth binary (the Cafe24 sandbox) was not found: build it (cargo build -p cafe24-cli --bin cafe24-oauth, ' +
          'giving target/debug/cafe24-oauth) and set CAFE24_SANDBOX_BIN to it, or put cafe24-oauth on PATH',
  );
}

export class Sandbox {
  /**
   * @param {import('node:child_process').ChildProcess} child
   * @param {string} url
   */
  constructor(child, url) {
    this.child = child;
    this.url = url;
    /** CAFE24_BASE_URL pointing at the sandbox. */
    this.baseUrl = `${url}/malls/{mall_id}`;
  }

  /**
   * A call to the control API (`/_sandbox/…`).
   * @param {string} method
   * @param {string} path
   * @param {unknown} [body]
   * @returns {Promise<any>}
   */
  async control(method, path, body) {
    const response = await fetch(`${this.url}/_sandbox${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`sandbox ${method} ${path}: ${response.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }

  /**
   * One mall's exact counters (refresh_grants, responses_lost, …).
   * @param {string} mallId
   * @returns {Promise<Record<string, number>>}
   */
  stats(mallId) {
    return this.control('GET', `/stats/${mallId}`);
  }

  /**
   * @param {string} endpoint `token`, `admin`, `products`, …
   * @param {Record<string, unknown>} fault
   */
  setFault(endpoint, fault) {
    return this.control('PUT', `/faults/${endpoint}`, fault);
  }

  clearFaults() {
    return this.control('DELETE', '/faults');
  }

  /**
   * A launch URL (App URL + signed query) for a mall, as Cafe24 would open it.
   * @param {string} mallId
   * @param {{ clientId?: string }} [options] the app (default: the sandbox's first)
   * @returns {Promise<URL>}
   */
  async launchUrl(mallId, { clientId } = {}) {
    const query = new URLSearchParams({ mall_id: mallId, ...(clientId ? { client_id: clientId } : {}) });
    const { url } = await this.control('GET', `/launch-url?${query}`);
    return new URL(url);
  }

  async stop() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = once(this.child, 'exit');
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  }
}

/**
 * Starts a sandbox on a free port. Its settings are command-line flags (`--auto-approve`, …);
 * what has no flag is changed at run time through the control API.
 * @param {string[]} [flags]
 * @returns {Promise<Sandbox>}
 */
export async function startSandbox(flags = []) {
  const child = spawn(sandboxBinary(), ['sandbox', '--listen', '127.0.0.1:0', ...flags], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  const lines = createInterface({ input: /** @type {import('node:stream').Readable} */ (child.stdout) });
  const timeout = AbortSignal.timeout(START_TIMEOUT_MS);
  try {
    const url = await new Promise((resolve, reject) => {
      lines.on('line', (line) => {
        const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(line);
        if (match) resolve(match[1]);
      });
      child.once('exit', (code) => reject(new Error(`the sandbox exited (${code}) before listening: ${stderr}`)));
      child.once('error', reject);
      timeout.addEventListener('abort', () =>
        reject(new Error(`the sandbox did not start in ${START_TIMEOUT_MS} ms: ${stderr}`)),
      );
    });
    lines.removeAllListeners('line');
    child.stdout?.resume();
    return new Sandbox(child, url);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
}
