// Small concurrency tools the token lifecycle is built from.
//
// TrackedWork is docs/contract.md §10.4 in Node terms: Cafe24 rotates a refresh token (or
// consumes a code) the moment it answers, so decided work runs as a promise of its own that no
// caller's AbortSignal reaches; a caller that gives up only stops waiting (`untilAborted`), and
// shutdown awaits the work still in flight (`drain`).

import { setTimeout as delay } from 'node:timers/promises';

/**
 * Waits `ms` milliseconds, or rejects with the signal's reason once it aborts.
 * @param {number} ms
 * @param {AbortSignal} [signal]
 * @returns {Promise<void>}
 */
export function sleep(ms, signal) {
  return delay(Math.max(ms, 0), undefined, signal ? { signal } : undefined);
}

/**
 * The caller's view of `promise`: it settles with it, or rejects with `signal.reason` as soon as
 * the signal aborts. The work behind `promise` goes on either way.
 * @template T
 * @param {Promise<T>} promise
 * @param {AbortSignal} [signal]
 * @returns {Promise<T>}
 */
export function untilAborted(promise, signal) {
  if (signal === undefined) return promise;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const abort = () => reject(signal.reason);
    signal.addEventListener('abort', abort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', abort));
  });
}

/** A bounded wait ran out (`within`). */
export class TimedOut extends Error {
  name = 'TimedOut';
}

/**
 * The caller's view of `promise`: it settles with it, or rejects with TimedOut once `ms` pass
 * first. The work behind `promise` goes on either way (and its failure is not unhandled).
 * @template T
 * @param {Promise<T>} promise
 * @param {number} ms
 * @returns {Promise<T>}
 */
export function within(promise, ms) {
  /** @type {NodeJS.Timeout | undefined} */
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new TimedOut(`no answer within ${ms} ms`)), ms);
  });
  return /** @type {Promise<T>} */ (Promise.race([promise, late])).finally(() => clearTimeout(timer));
}

/** Work that must finish even if whoever asked for it stops waiting; shutdown drains it. */
export class TrackedWork {
  /** @type {Set<Promise<unknown>>} */
  #inFlight = new Set();

  get size() {
    return this.#inFlight.size;
  }

  /**
   * Starts `work` now, detached from any caller. The returned promise settles with the work; a
   * rejection nobody awaits is not an unhandled rejection (the work logs its own failures).
   * @template T
   * @param {() => Promise<T>} work
   * @returns {Promise<T>}
   */
  run(work) {
    const promise = (async () => work())();
    this.#inFlight.add(promise);
    const done = () => {
      this.#inFlight.delete(promise);
    };
    promise.then(done, done);
    return promise;
  }

  /**
   * Waits up to `boundMs` for the work in flight (and the work it starts) to settle.
   * @param {number} boundMs
   * @returns {Promise<boolean>} false when work was still running at the bound
   */
  async drain(boundMs) {
    const until = Date.now() + boundMs;
    while (this.#inFlight.size > 0) {
      const left = until - Date.now();
      if (left <= 0) return false;
      const timer = new AbortController();
      await Promise.race([
        Promise.allSettled([...this.#inFlight]),
        delay(left, undefined, { signal: timer.signal }).catch(() => {}),
      ]);
      timer.abort();
    }
    return true;
  }
}

/** At most `permits` holders at once; waiters are served in arrival order. */
export class Semaphore {
  #free;
  /** @type {Array<() => void>} */
  #waiters = [];

  /** @param {number} permits */
  constructor(permits) {
    this.#free = permits;
  }

  /** @returns {Promise<void>} */
  acquire() {
    if (this.#free > 0) {
      this.#free -= 1;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  release() {
    const next = this.#waiters.shift();
    if (next) next();
    else this.#free += 1;
  }

  /**
   * @template T
   * @param {() => Promise<T>} fn
   * @returns {Promise<T>}
   */
  async use(fn) {
    await this.acquire();
    try {
      return await fn();
    } finally {
      this.release();
    }
  }
}

/** One holder per key at a time (single flight per mall), in arrival order. */
export class KeyedMutex {
  /** @type {Map<string, Promise<void>>} */
  #tails = new Map();

  /**
   * @template T
   * @param {string} key
   * @param {() => Promise<T>} fn
   * @returns {Promise<T>}
   */
  async run(key, fn) {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    /** @type {() => void} */
    let release = () => {};
    const turn = new Promise((resolve) => {
      release = () => resolve(undefined);
    });
    const tail = previous.then(() => turn);
    this.#tails.set(key, tail);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }
}
