// Per-mall pacing (docs/client.md): a client-side mirror of Cafe24's leaky bucket (40 deep,
// draining 2 calls per second), raised by every `X-Api-Call-Limit: used/size` answer and paused
// for the seconds `X-Cafe24-Call-Remain` / `X-Cafe24-Time-Remain` say (at most 10 minutes).
// Calls wait for room in arrival order; nothing is refused. Malls never wait for each other.
// The module's client paces on the mall's fleet-wide budget in PostgreSQL (contract §6.8) and
// uses this mirror, scaled to a quarter of the bucket, only while that budget does not answer
// (auth/cafe24-client.js); a client without a shared budget paces on it alone.

import { performance } from 'node:perf_hooks';

import { sleep } from './concurrency.js';

export const MAX_PAUSE_MS = 600_000;
const EPSILON = 1e-9;

/**
 * Monotonic time in milliseconds, and sleeping; tests pass a virtual one that jumps.
 * @typedef {{ now(): number, sleep(ms: number, signal?: AbortSignal): Promise<void> }} Timer
 */

/** @type {Timer} */
export const systemTimer = { now: () => performance.now(), sleep };

/** No room in the mall's budget before the call's deadline. */
export class PastDeadline extends Error {
  name = 'PastDeadline';
}

/**
 * What one answer said about the bucket.
 * @typedef {{ callLimit: { used: number, size: number } | null, remainMs: number | null }} LimitReport
 */

/**
 * @param {Record<string, string | string[] | undefined>} headers lowercase names
 * @returns {LimitReport}
 */
export function limitReport(headers) {
  /** @param {string} name */
  const header = (name) => {
    const value = headers[name];
    return Array.isArray(value) ? value[0] : value;
  };
  const match = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(header('x-api-call-limit') ?? '');
  const callLimit = match ? { used: Number(match[1]), size: Number(match[2]) } : null;
  const remains = ['x-cafe24-call-remain', 'x-cafe24-time-remain']
    .map((name) => Number(header(name)?.trim() || Number.NaN))
    .filter((seconds) => Number.isFinite(seconds) && seconds > 0)
    .map((seconds) => Math.ceil(Math.min(seconds * 1000, MAX_PAUSE_MS)));
  return { callLimit, remainMs: remains.length ? Math.max(...remains) : null };
}

/** One mall's bucket mirror. */
export class MallPacer {
  #size;
  #drainPerMs;
  #timer;
  #level = 0;
  #at;
  #pausedUntil = 0;
  /** @type {Promise<void>} */
  #turn = Promise.resolve();
  stats = { granted: 0, delayed: 0, waitedMs: 0, corrections: 0, pauses: 0 };

  /** @param {{ size: number, drainPerSec: number, timer: Timer }} options */
  constructor({ size, drainPerSec, timer }) {
    this.#size = size;
    this.#drainPerMs = drainPerSec / 1000;
    this.#timer = timer;
    this.#at = timer.now();
  }

  get level() {
    this.#drainTo(this.#timer.now());
    return this.#level;
  }

  /** @param {number} now */
  #drainTo(now) {
    if (now > this.#at) {
      this.#level = Math.max(this.#level - (now - this.#at) * this.#drainPerMs, 0);
      this.#at = now;
    }
  }

  /**
   * Waits until one more call fits and no pause holds, then charges it. Callers are served in
   * arrival order.
   * @param {{ deadline?: number, signal?: AbortSignal }} [options] deadline on the timer's clock
   * @throws {PastDeadline}
   */
  async acquire({ deadline, signal } = {}) {
    const previous = this.#turn;
    /** @type {() => void} */
    let release = () => {};
    this.#turn = new Promise((resolve) => {
      release = resolve;
    });
    await previous;
    try {
      const started = this.#timer.now();
      let waited = false;
      for (;;) {
        const now = this.#timer.now();
        this.#drainTo(now);
        let wake;
        if (this.#pausedUntil > now) {
          wake = this.#pausedUntil;
        } else if (this.#level + 1 <= this.#size + EPSILON) {
          this.#level += 1;
          this.stats.granted += 1;
          if (waited) {
            this.stats.delayed += 1;
            this.stats.waitedMs += now - started;
          }
          return;
        } else {
          wake = now + (this.#level + 1 - this.#size) / this.#drainPerMs;
        }
        if (deadline !== undefined && wake > deadline)
          throw new PastDeadline('no room in the bucket before the deadline');
        await this.#timer.sleep(wake - now, signal);
        waited = true;
      }
    } finally {
      release();
    }
  }

  /**
   * Never below what Cafe24 reports: other processes share the bucket.
   * @param {LimitReport} report
   */
  observe(report) {
    const now = this.#timer.now();
    this.#drainTo(now);
    if (report.callLimit !== null) {
      const used = Math.min(report.callLimit.used, this.#size);
      if (used > Math.ceil(this.#level)) this.stats.corrections += 1;
      this.#level = Math.max(this.#level, used);
    }
    if (report.remainMs !== null) this.#pause(now, report.remainMs);
  }

  /**
   * A 429: the bucket is full whatever the mirror thought; pause the whole mall.
   * @param {number} atLeastMs
   */
  limited(atLeastMs) {
    const now = this.#timer.now();
    this.#drainTo(now);
    this.#level = Math.max(this.#level, this.#size);
    this.#pause(now, atLeastMs);
  }

  /**
   * @param {number} now
   * @param {number} ms
   */
  #pause(now, ms) {
    const until = now + Math.min(Math.max(ms, 0), MAX_PAUSE_MS);
    if (until > this.#pausedUntil) {
      this.#pausedUntil = until;
      this.stats.pauses += 1;
    }
  }
}

/** Every mall's pacer, created on first use; one registry per process. */
export class Pacers {
  /** @type {Map<string, MallPacer>} */
  #malls = new Map();

  /** @param {{ size: number, drainPerSec: number, timer: Timer }} options */
  constructor(options) {
    this.options = options;
  }

  get timer() {
    return this.options.timer;
  }

  /** @param {string} mallId */
  mall(mallId) {
    let pacer = this.#malls.get(mallId);
    if (pacer === undefined) {
      pacer = new MallPacer(this.options);
      this.#malls.set(mallId, pacer);
    }
    return pacer;
  }
}
