// A value that must never reach a log line, an error body or a debug print: client secrets,
// tokens, codes, keys. `expose()` is the one greppable way to the value.

import { inspect } from 'node:util';

const REDACTED = '[redacted]';

export class Secret {
  /** @type {string} */
  #value;

  /** @param {string} value */
  constructor(value) {
    this.#value = value;
  }

  /** The value itself; call it only where the value is sent or compared. */
  expose() {
    return this.#value;
  }

  toString() {
    return REDACTED;
  }

  toJSON() {
    return REDACTED;
  }

  [inspect.custom]() {
    return `Secret(${REDACTED})`;
  }
}
