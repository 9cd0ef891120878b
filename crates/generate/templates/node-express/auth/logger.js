// The logger the module writes to: pino's interface (`logger.warn({ mallId }, 'message')`), so
// the app passes its own pino logger; any object with these four methods works. Nothing the
// module logs carries a token, code, secret or key.

/**
 * @callback LogFn
 * @param {object | string} objOrMessage
 * @param {string} [message]
 * @returns {void}
 */

/** @typedef {{ debug: LogFn, info: LogFn, warn: LogFn, error: LogFn }} Logger */

/** @type {LogFn} */
const discard = () => {};

/** Logs nothing: the default, and what tests use. */
export const silentLogger = Object.freeze({ debug: discard, info: discard, warn: discard, error: discard });

/**
 * The name of an error for a log line: never its message, which may quote a value.
 * @param {unknown} error
 */
export function errorName(error) {
  if (error instanceof Error) {
    const code = /** @type {{ code?: unknown }} */ (error).code;
    return typeof code === 'string' ? `${error.name} (${code})` : error.name;
  }
  return typeof error;
}
