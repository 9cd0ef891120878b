// Cafe24's app launch `hmac` (docs/contract.md §5): base64(HMAC-SHA256(client secret, raw query
// before "&hmac=")) over the query exactly as received — still percent-encoded, in its order.
// The `timestamp` must lie within the window (seconds, or milliseconds when too large).

import { createHmac, timingSafeEqual } from 'node:crypto';

/** @import { Secret } from './secret.js' */

const MAX_LAUNCH_QUERY_LENGTH = 4096;
const TIMESTAMP = /^[+-]?[0-9]+$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const MILLIS_ABOVE = 100_000_000_000;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Why a launch request is refused; `code` is the HTTP error code of docs/contract.md §3.2. */
export class LaunchError extends Error {
  name = 'LaunchError';
  /** @type {'launch_invalid' | 'launch_hmac_required' | 'launch_expired'} */
  code = 'launch_invalid';
}
export class LaunchHmacMissing extends LaunchError {
  name = 'LaunchHmacMissing';
  /** @type {LaunchError['code']} */
  code = 'launch_hmac_required';
}
export class LaunchHmacMalformed extends LaunchError {
  name = 'LaunchHmacMalformed';
}
export class LaunchHmacMismatch extends LaunchError {
  name = 'LaunchHmacMismatch';
}
export class LaunchBadTimestamp extends LaunchError {
  name = 'LaunchBadTimestamp';
}
export class LaunchStale extends LaunchError {
  name = 'LaunchStale';
  /** @type {LaunchError['code']} */
  code = 'launch_expired';
}

/**
 * Whether the raw query carries a parameter named `hmac` anywhere.
 * @param {string} rawQuery
 */
export function hasHmac(rawQuery) {
  return rawQuery.split('&').some((part) => part.split('=', 1)[0] === 'hmac');
}

/**
 * `%XX` decoding only: a literal `+` stays `+` (it is base64, not a space).
 * @param {string} text
 * @returns {Buffer}
 */
function percentDecode(text) {
  const bytes = [];
  for (let i = 0; i < text.length; i += 1) {
    const hex = text.slice(i + 1, i + 3);
    if (text[i] === '%' && /^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(text[i], 'utf8'));
    }
  }
  return Buffer.from(bytes);
}

/**
 * @param {Secret} secret
 * @param {string} message
 */
function mac(secret, message) {
  // The query arrives as bytes; Node hands them over as latin1, so this is the bytes themselves.
  return createHmac('sha256', secret.expose()).update(message, 'latin1').digest();
}

/**
 * Throws a LaunchError unless `rawQuery` is a fresh, genuine Cafe24 launch.
 * @param {string} rawQuery the query string as received, without the `?`
 * @param {{ secret: Secret, now: Date, windowSecs: number }} options
 */
export function verifyLaunch(rawQuery, { secret, now, windowSecs }) {
  if (rawQuery.length > MAX_LAUNCH_QUERY_LENGTH) throw new LaunchHmacMalformed();
  const amp = rawQuery.lastIndexOf('&');
  const last = rawQuery.slice(amp + 1);
  if (amp < 0 || !last.startsWith('hmac=')) throw new LaunchHmacMissing();
  const signed = rawQuery.slice(0, amp);
  if (hasHmac(signed)) throw new LaunchHmacMalformed();
  let text;
  try {
    text = strictUtf8.decode(percentDecode(last.slice('hmac='.length)));
  } catch {
    throw new LaunchHmacMalformed();
  }
  if (!BASE64.test(text)) throw new LaunchHmacMalformed();
  const tag = Buffer.from(text, 'base64');
  const expected = mac(secret, signed);
  if (tag.length !== expected.length || !timingSafeEqual(tag, expected)) throw new LaunchHmacMismatch();
  const stamp = new URLSearchParams(signed).get('timestamp');
  if (stamp === null || !TIMESTAMP.test(stamp) || !Number.isSafeInteger(Number(stamp))) {
    throw new LaunchBadTimestamp();
  }
  const timestamp = Number(stamp);
  const seconds = timestamp > MILLIS_ABOVE ? Math.trunc(timestamp / 1000) : timestamp;
  if (Math.abs(Math.trunc(now.getTime() / 1000) - seconds) > windowSecs) throw new LaunchStale();
}

/**
 * Appends `&hmac=…` the way Cafe24 does (for tests and tools).
 * @param {string} query
 * @param {Secret} secret
 */
export function signLaunchQuery(query, secret) {
  return `${query}&hmac=${encodeURIComponent(mac(secret, query).toString('base64'))}`;
}
