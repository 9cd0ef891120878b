// Tokens at rest are byte for byte the contract's ciphertext (docs/contract.md §7.4), so any
// implementation sharing TOKEN_ENCRYPTION_KEYS reads what this one writes.

import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { describe, it } from 'node:test';

import { DecryptError, KeyRing, KeyRingError, Sealer, generateKeyEntry } from '../auth/crypto.js';

const RING = 'k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=';
const NONCE = Buffer.from('a0a1a2a3a4a5a6a7a8a9aaab', 'hex');
const ACCESS = '01a0a1a2a3a4a5a6a7a8a9aaab877b1f4836b82fcb0d0ee2bd2a4b2095e3dfa17cfc429f9ceb615dcc0e2a';
const REFRESH = '01a0a1a2a3a4a5a6a7a8a9aaab947d1a5f20b86a92160aecb66957f1126e634206794df784e5094c62e690a8';
const sealer = new Sealer(KeyRing.parse(RING));

describe('token ciphertext (contract §7)', () => {
  it('is exactly the documented bytes', () => {
    const access = sealer.seal('shop1', 'access', 'access-token-1', NONCE);
    assert.equal(access.toString('hex'), ACCESS);
    assert.equal(access.toString('base64'), 'AaChoqOkpaanqKmqq4d7H0g2uC/LDQ7ivSpLIJXj36F8/EKfnOthXcwOKg==');
    assert.equal(sealer.seal('shop1', 'refresh', 'refresh-token-1', NONCE).toString('hex'), REFRESH);
  });

  it('opens the documented bytes', () => {
    assert.equal(sealer.open('shop1', 'access', 'k1', Buffer.from(ACCESS, 'hex')), 'access-token-1');
    assert.equal(sealer.open('shop1', 'refresh', 'k1', Buffer.from(REFRESH, 'hex')), 'refresh-token-1');
  });

  it('does not open as another mall, as the other kind, or with another format byte', () => {
    const access = Buffer.from(ACCESS, 'hex');
    assert.throws(() => sealer.open('shop2', 'access', 'k1', access), DecryptError);
    assert.throws(() => sealer.open('shop1', 'refresh', 'k1', access), DecryptError);
    assert.throws(
      () => sealer.open('shop1', 'access', 'k1', Buffer.concat([Buffer.of(2), access.subarray(1)])),
      DecryptError,
    );
    assert.throws(() => sealer.open('shop1', 'access', 'k1', access.subarray(0, 28)), DecryptError);
  });

  it('names an unknown key id instead of guessing', () => {
    assert.throws(() => sealer.open('shop1', 'access', 'k9', Buffer.from(ACCESS, 'hex')), /no key with id "k9"/);
  });

  it('draws a fresh nonce for every value', () => {
    assert.notDeepEqual(sealer.seal('shop1', 'access', 'same'), sealer.seal('shop1', 'access', 'same'));
  });
});

describe('key ring TOKEN_ENCRYPTION_KEYS (contract §7.1)', () => {
  it('encrypts with the first key and decrypts with every key', () => {
    const old = new Sealer(KeyRing.parse(RING));
    const sealed = old.seal('shop1', 'access', 'token');
    const rotated = new Sealer(KeyRing.parse(` ${generateKeyEntry('k2')} , ,${RING}`));
    assert.equal(rotated.currentKeyId, 'k2');
    assert.equal(rotated.open('shop1', 'access', 'k1', sealed), 'token');
  });

  it('refuses malformed rings without showing key material', () => {
    const short = Buffer.alloc(31, 1).toString('base64');
    for (const [raw, reason] of [
      ['', /no keys/],
      ['k1', /entry 1 must look like id:BASE64/],
      ['bad id:AAAA', /key id must be/],
      [`k1:${short}`, /must decode to 32 bytes, not 31/],
      ['k1:%%%%', /not valid base64/],
      [`${RING},${RING}`, /appears twice/],
    ]) {
      assert.throws(
        () => KeyRing.parse(/** @type {string} */ (raw)),
        (error) =>
          error instanceof KeyRingError &&
          reason instanceof RegExp &&
          reason.test(error.message) &&
          !error.message.includes(short),
        String(raw),
      );
    }
  });

  it('never prints its keys', () => {
    const ring = KeyRing.parse(RING);
    assert.doesNotMatch(inspect(ring) + JSON.stringify(ring), /AAECAwQF/);
  });
});
