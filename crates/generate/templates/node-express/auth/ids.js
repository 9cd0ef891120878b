// Mall ids and scopes, parsed strictly: a mall id is pasted into a host name
// (`https://{mall_id}.cafe24api.com`), so anything else could steer a request elsewhere.

export const MAX_MALL_ID_LENGTH = 50;

const MALL_ID = /^[a-z0-9][a-z0-9_-]*$/;
// DNS reserves '--' as the third and fourth characters for encoded international names
// (`xn--…`), which URL parsers decode, and refuse when invalid.
const RESERVED = /^..--/;
const SCOPE = /^mall\.(?:read|write)_[A-Za-z_]{1,40}$/;

export class InvalidMallId extends Error {
  name = 'InvalidMallId';
}

/**
 * Returns `raw` if it is a mall id (docs/contract.md §1): 1-50 lowercase ASCII letters, digits,
 * `-` or `_`, starting with a letter or a digit, without `--` as the third and fourth
 * characters. The error's message never repeats the value.
 * @param {string} raw
 * @returns {string}
 */
export function parseMallId(raw) {
  if (raw.length === 0) throw new InvalidMallId('mall id is empty');
  if (raw.length > MAX_MALL_ID_LENGTH) {
    throw new InvalidMallId(`mall id is longer than ${MAX_MALL_ID_LENGTH} characters`);
  }
  if (!MALL_ID.test(raw)) {
    if (/^[a-z0-9_-]+$/.test(raw)) {
      throw new InvalidMallId('mall id must start with a lowercase letter or a digit');
    }
    throw new InvalidMallId("mall id may contain only lowercase letters, digits, '-' and '_'");
  }
  if (RESERVED.test(raw)) throw new InvalidMallId("mall id must not have '--' as its third and fourth characters");
  return raw;
}

/**
 * @param {unknown} raw
 * @returns {raw is string}
 */
export function isMallId(raw) {
  return typeof raw === 'string' && raw.length <= MAX_MALL_ID_LENGTH && MALL_ID.test(raw) && !RESERVED.test(raw);
}

/**
 * Scopes separated by commas, spaces or tabs: duplicates dropped, order kept, at least one.
 * @param {string} raw
 * @returns {string[]}
 */
export function parseScopes(raw) {
  /** @type {string[]} */
  const scopes = [];
  for (const part of raw.split(/[, \t]/)) {
    if (part === '') continue;
    if (!SCOPE.test(part)) {
      throw new Error('every scope must look like mall.read_X or mall.write_X');
    }
    if (!scopes.includes(part)) scopes.push(part);
  }
  if (scopes.length === 0) throw new Error('no scope given: expected mall.read_X or mall.write_X');
  return scopes;
}

/**
 * `{base}{path}` for a mall; the mall id is validated first, because it goes into a host name.
 * @param {string} baseUrl CAFE24_BASE_URL, a template with `{mall_id}`
 * @param {string} mallId
 * @param {string} path starting with `/`
 */
export function mallUrl(baseUrl, mallId, path) {
  return baseUrl.replace('{mall_id}', parseMallId(mallId)) + path;
}
