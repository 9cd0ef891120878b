// The signed state and the authorize URL are byte for byte the contract's (docs/contract.md §3.2,
// §4.4), so states issued here verify in any implementation sharing the secret, and back.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { authorizeUrl } from '../auth/oauth.js';
import { Secret } from '../auth/secret.js';
import { BadSignature, ExpiredState, MalformedState, StateSigner } from '../auth/state.js';
import { loadSettings } from '../auth/settings.js';

const SECRET = new Secret('contract-v1-state-secret-0123456789abcdef');
const NONCE = Buffer.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
const STATE = 'v1.shop1.1700000000.AAECAwQFBgcICQoLDA0ODw.2NL05bicw6SL95A58ZZBHTYz1dEloq6P4aycexPbTFo';
const FOREIGN = 'v1.shop1.1700000000.AAECAwQFBgcICQoLDA0ODw.OxvlaqEW1lH6qWl12p3gcLldzHIjM3jlccyEjrYb-Fo';

/** @param {number} seconds */
const at = (seconds) => new Date(seconds * 1000);
const signer = new StateSigner({ secret: SECRET, ttlSecs: 600 });

describe('signed state (contract §4)', () => {
  it('is exactly the documented string for the documented inputs', () => {
    assert.equal(signer.issue('shop1', at(1_700_000_000), NONCE), STATE);
  });

  it('verifies up to age 600 and down to age -60, both bounds included', () => {
    for (const now of [1_700_000_000, 1_700_000_600, 1_699_999_940]) {
      assert.deepEqual(signer.verify(STATE, at(now)), { mallId: 'shop1', issuedAt: 1_700_000_000 }, `at ${now}`);
    }
  });

  it('is expired at age 601 and at age -61', () => {
    assert.throws(() => signer.verify(STATE, at(1_700_000_601)), ExpiredState);
    assert.throws(() => signer.verify(STATE, at(1_699_999_939)), ExpiredState);
  });

  it('signed with another secret is a bad signature at any time', () => {
    const other = new StateSigner({ secret: new Secret('contract-v1-another-secret-0123456789abcd'), ttlSecs: 600 });
    assert.equal(other.issue('shop1', at(1_700_000_000), NONCE), FOREIGN);
    assert.throws(() => signer.verify(FOREIGN, at(1_700_000_000)), BadSignature);
  });

  it('refuses a padded, truncated, non-ASCII or oversized state as malformed', () => {
    for (const bad of [`${STATE}=`, STATE.slice(0, -1), 'no-dot-at-all', `${STATE}é`, `v1.${'a'.repeat(300)}`]) {
      assert.throws(() => signer.verify(bad, at(1_700_000_000)), MalformedState, bad);
    }
  });

  it('checks the MAC before trusting any field', () => {
    // A well-formed body with an invalid mall id, correctly signed, is malformed only after the MAC.
    const forged = STATE.replace('shop1', 'SHOP1');
    assert.throws(() => signer.verify(forged, at(1_700_000_000)), BadSignature);
  });

  it('gives two states of one mall and second different nonces', () => {
    const now = at(1_700_000_000);
    assert.notEqual(signer.issue('shop1', now), signer.issue('shop1', now));
  });
});

describe('authorize URL (contract §3.2)', () => {
  it('is exactly the documented one', () => {
    const settings = loadSettings({
      CAFE24_CLIENT_ID: 'contract-client',
      CAFE24_CLIENT_SECRET: 'contract-v1-client-secret',
      CAFE24_REDIRECT_URI: 'https://app.example.com/oauth/callback',
      CAFE24_SCOPES: 'mall.read_product,mall.read_store',
      EXPECTED_STATE_SECRET: SECRET.expose(),
      TOKEN_ENCRYPTION_KEYS: 'k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=',
      DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none',
    });
    assert.equal(
      authorizeUrl(settings, 'shop1', STATE),
      'https://shop1.cafe24api.com/api/v2/oauth/authorize?response_type=code&client_id=contract-client' +
        `&state=${STATE}&redirect_uri=https%3A%2F%2Fapp.example.com%2Foauth%2Fcallback&scope=mall.read_product%2Cmall.read_store`,
    );
  });
});
