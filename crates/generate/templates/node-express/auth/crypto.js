// Tokens at rest (docs/contract.md §7): AES-256-GCM under the first key of
// TOKEN_ENCRYPTION_KEYS, stored as `0x01 ‖ nonce(12) ‖ ciphertext ‖ tag(16)` with
// `cafe24-oauth/v1/{mall_id}/{kind}` as associated data, so ciphertext moved to another mall's
// row, or swapped between access and refresh, does not decrypt. Byte for byte what the Rust
// runtime writes: any implementation sharing the key ring reads it.

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/** @typedef {'access' | 'refresh'} TokenKind */

const FORMAT = 0x01;
const NONCE_LENGTH = 12;
const TAG_LENGTH = 16;
const KEY_LENGTH = 32;
const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const DOES_NOT_DECRYPT = 'stored ciphertext does not decrypt (wrong key, wrong mall, or tampered)';
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** TOKEN_ENCRYPTION_KEYS is malformed; the message never holds key material. */
export class KeyRingError extends Error {
  name = 'KeyRingError';
}

/** Stored ciphertext does not decrypt; nothing about the key or the plaintext is said. */
export class DecryptError extends Error {
  name = 'DecryptError';
}

/** Ordered keys with unique ids: the first encrypts, every one decrypts (by the row's key id). */
export class KeyRing {
  /** @type {Map<string, Buffer>} */
  #keys;

  /** @param {Map<string, Buffer>} keys */
  constructor(keys) {
    if (keys.size === 0) throw new KeyRingError('no keys given');
    this.#keys = keys;
  }

  /**
   * `id1:BASE64[,id2:BASE64…]`: each key is exactly 32 bytes in standard base64.
   * @param {string} raw
   * @returns {KeyRing}
   */
  static parse(raw) {
    /** @type {Map<string, Buffer>} */
    const keys = new Map();
    const entries = raw
      .split(',')
      .map((entry) => entry.trim())
      .filter((entry) => entry !== '');
    for (const [index, entry] of entries.entries()) {
      const colon = entry.indexOf(':');
      if (colon < 0) throw new KeyRingError(`entry ${index + 1} must look like id:BASE64`);
      const id = entry.slice(0, colon);
      const encoded = entry.slice(colon + 1);
      if (!KEY_ID.test(id)) {
        throw new KeyRingError(`entry ${index + 1}: the key id must be 1-32 letters, digits, '-' or '_'`);
      }
      if (!BASE64.test(encoded)) throw new KeyRingError(`key ${id}: not valid base64`);
      const key = Buffer.from(encoded, 'base64');
      if (key.length !== KEY_LENGTH) {
        throw new KeyRingError(`key ${id}: must decode to ${KEY_LENGTH} bytes, not ${key.length}`);
      }
      if (keys.has(id)) throw new KeyRingError(`key id ${id} appears twice`);
      keys.set(id, key);
    }
    return new KeyRing(keys);
  }

  /** The id of the key that encrypts. */
  get currentId() {
    return /** @type {string} */ (this.#keys.keys().next().value);
  }

  get ids() {
    return [...this.#keys.keys()];
  }

  /** @param {string} id */
  key(id) {
    return this.#keys.get(id);
  }

  toJSON() {
    return `KeyRing(${this.ids.join(',')})`;
  }
}

/**
 * A fresh TOKEN_ENCRYPTION_KEYS entry, like `cafe24-oauth keygen`.
 * @param {string} [id]
 */
export function generateKeyEntry(id = 'k1') {
  return `${id}:${randomBytes(KEY_LENGTH).toString('base64')}`;
}

/**
 * @param {string} mallId
 * @param {TokenKind} kind
 */
function associatedData(mallId, kind) {
  return Buffer.from(`cafe24-oauth/v1/${mallId}/${kind}`, 'ascii');
}

/** Seals and opens tokens with a key ring. */
export class Sealer {
  /** @type {KeyRing} */
  #ring;

  /** @param {KeyRing} ring */
  constructor(ring) {
    this.#ring = ring;
  }

  get currentKeyId() {
    return this.#ring.currentId;
  }

  /**
   * Encrypts under the current key.
   * @param {string} mallId
   * @param {TokenKind} kind
   * @param {string} plaintext
   * @param {Buffer} [nonce] for test vectors only: a nonce must never repeat under one key
   * @returns {Buffer}
   */
  seal(mallId, kind, plaintext, nonce = randomBytes(NONCE_LENGTH)) {
    if (nonce.length !== NONCE_LENGTH) throw new RangeError(`a nonce is ${NONCE_LENGTH} bytes`);
    const key = /** @type {Buffer} */ (this.#ring.key(this.#ring.currentId));
    const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_LENGTH });
    cipher.setAAD(associatedData(mallId, kind));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return Buffer.concat([Buffer.of(FORMAT), nonce, body, cipher.getAuthTag()]);
  }

  /**
   * @param {string} mallId
   * @param {TokenKind} kind
   * @param {string} keyId the row's key_id
   * @param {Buffer} sealed
   * @returns {string}
   * @throws {DecryptError}
   */
  open(mallId, kind, keyId, sealed) {
    const key = this.#ring.key(keyId);
    if (key === undefined) {
      throw new DecryptError(`no key with id ${JSON.stringify(keyId)} is configured in TOKEN_ENCRYPTION_KEYS`);
    }
    if (sealed.length < 1 + NONCE_LENGTH + TAG_LENGTH || sealed[0] !== FORMAT) {
      throw new DecryptError(DOES_NOT_DECRYPT);
    }
    const nonce = sealed.subarray(1, 1 + NONCE_LENGTH);
    const body = sealed.subarray(1 + NONCE_LENGTH, sealed.length - TAG_LENGTH);
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_LENGTH });
      decipher.setAAD(associatedData(mallId, kind));
      decipher.setAuthTag(sealed.subarray(sealed.length - TAG_LENGTH));
      return strictUtf8.decode(Buffer.concat([decipher.update(body), decipher.final()]));
    } catch {
      throw new DecryptError(DOES_NOT_DECRYPT);
    }
  }
}
