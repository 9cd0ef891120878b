// The signed OAuth `state` (docs/contract.md §4): `v1.{mall_id}.{issued_at}.{nonce}.{mac}`, an
// HMAC-SHA256 under EXPECTED_STATE_SECRET over everything before the last dot. It proves the
// callback belongs to an install this app (or any implementation sharing the secret) started,
// names the mall and expires. Single use is the database's job (a unique index on `state`).

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

import { isMallId } from './ids.js';

/** @import { Secret } from './secret.js' */

const VERSION = 'v1';
const NONCE_BYTES = 16;
const MAX_STATE_LENGTH = 256;
const FUTURE_SKEW_SECS = 60;
const BASE64URL = /^[A-Za-z0-9_-]*$/;
const ISSUED_AT = /^[+-]?[0-9]+$/;

export class StateError extends Error {
  name = 'StateError';
}
export class MalformedState extends StateError {
  name = 'MalformedState';
}
export class BadSignature extends StateError {
  name = 'BadSignature';
}
export class ExpiredState extends StateError {
  name = 'ExpiredState';
}

/**
 * Strict base64url without padding: anything non-canonical is `null`.
 * @param {string} text
 * @returns {Buffer | null}
 */
export function decodeBase64Url(text) {
  if (!BASE64URL.test(text) || text.length % 4 === 1) return null;
  const bytes = Buffer.from(text, 'base64url');
  return bytes.toString('base64url') === text ? bytes : null;
}

export class StateSigner {
  /** @type {Buffer} */
  #key;
  /** @type {number} */
  #ttlSecs;

  /** @param {{ secret: Secret, ttlSecs: number }} options */
  constructor({ secret, ttlSecs }) {
    this.#key = Buffer.from(secret.expose(), 'utf8');
    this.#ttlSecs = ttlSecs;
  }

  /**
   * A fresh state for `mallId`, issued at `now`.
   * @param {string} mallId a valid mall id
   * @param {Date} now
   * @param {Buffer} [nonce] for test vectors only: leave it to the random default
   * @returns {string}
   */
  issue(mallId, now, nonce = randomBytes(NONCE_BYTES)) {
    const body = `${VERSION}.${mallId}.${Math.floor(now.getTime() / 1000)}.${nonce.toString('base64url')}`;
    return `${body}.${this.#mac(body).toString('base64url')}`;
  }

  /**
   * Checks shape, then the signature (constant time, before any field is trusted), then age.
   * @param {string} raw the state exactly as received (after query decoding)
   * @param {Date} now
   * @returns {{ mallId: string, issuedAt: number }}
   * @throws {StateError} MalformedState, BadSignature or ExpiredState
   */
  verify(raw, now) {
    if (raw.length > MAX_STATE_LENGTH || !/^[\x00-\x7f]*$/.test(raw)) throw new MalformedState();
    const dot = raw.lastIndexOf('.');
    if (dot < 0) throw new MalformedState();
    const body = raw.slice(0, dot);
    const tag = decodeBase64Url(raw.slice(dot + 1));
    if (tag === null) throw new MalformedState();
    const expected = this.#mac(body);
    if (tag.length !== expected.length || !timingSafeEqual(tag, expected)) throw new BadSignature();
    const fields = body.split('.');
    if (fields.length !== 4 || fields[0] !== VERSION || !isMallId(fields[1])) throw new MalformedState();
    if (!ISSUED_AT.test(fields[2])) throw new MalformedState();
    const issuedAt = Number(fields[2]);
    // Whole seconds, truncated toward zero as the runtime counts them.
    const age = Math.trunc(now.getTime() / 1000 - issuedAt);
    if (!Number.isSafeInteger(issuedAt) || age > this.#ttlSecs || age < -FUTURE_SKEW_SECS) {
      throw new ExpiredState();
    }
    return { mallId: fields[1], issuedAt };
  }

  /** @param {string} body */
  #mac(body) {
    return createHmac('sha256', this.#key).update(body, 'ascii').digest();
  }
}
