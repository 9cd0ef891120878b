// Cafe24's launch hmac over the raw query (docs/contract.md §5.3).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  LaunchBadTimestamp,
  LaunchHmacMalformed,
  LaunchHmacMismatch,
  LaunchHmacMissing,
  LaunchStale,
  hasHmac,
  signLaunchQuery,
  verifyLaunch,
} from '../auth/launch.js';
import { Secret } from '../auth/secret.js';

const SECRET = new Secret('contract-v1-client-secret');
const SIGNED =
  'is_multi_shop=T&lang=ko_KR&mall_id=shop1&nation=KR&shop_no=1&timestamp=1700000000&user_id=admin' +
  '&user_name=%ED%99%8D%EA%B8%B8%EB%8F%99&user_type=P';
const HMAC = 'Gp4JWLWYKD4oqM9V6ucvMu9inJ%2Fa%2FltNG6GM8UKp5hY%3D';
const QUERY = `${SIGNED}&hmac=${HMAC}`;

/**
 * @param {string} query
 * @param {number} nowSecs
 */
const verify = (query, nowSecs) =>
  verifyLaunch(query, { secret: SECRET, now: new Date(nowSecs * 1000), windowSecs: 600 });

describe('launch hmac (contract §5)', () => {
  it('signs the documented query exactly as Cafe24 does', () => {
    assert.equal(signLaunchQuery(SIGNED, SECRET), QUERY);
  });

  it('is valid within the window, its bound included', () => {
    for (const now of [1_700_000_000, 1_700_000_600, 1_699_999_400])
      assert.doesNotThrow(() => verify(QUERY, now), `at ${now}`);
  });

  it('is stale one second past the window', () => {
    assert.throws(() => verify(QUERY, 1_700_000_601), LaunchStale);
  });

  it('covers the encoded bytes: a decoded user_name does not match', () => {
    const decoded = QUERY.replace('%ED%99%8D%EA%B8%B8%EB%8F%99', '홍길동');
    assert.throws(() => verify(decoded, 1_700_000_000), LaunchHmacMismatch);
  });

  it('must be the last parameter', () => {
    assert.throws(() => verify(`hmac=${HMAC}&${SIGNED}`, 1_700_000_000), LaunchHmacMissing);
    assert.throws(() => verify(SIGNED, 1_700_000_000), LaunchHmacMissing);
  });

  it('refuses a tampered parameter, a second hmac and a malformed value', () => {
    assert.throws(() => verify(QUERY.replace('user_id=admin', 'user_id=adm1n'), 1_700_000_000), LaunchHmacMismatch);
    assert.throws(() => verify(`hmac=x&${QUERY}`, 1_700_000_000), LaunchHmacMalformed);
    assert.throws(() => verify(`${SIGNED}&hmac=not*base64`, 1_700_000_000), LaunchHmacMalformed);
  });

  it('reads a timestamp in milliseconds too, and refuses one that is not a number', () => {
    const millis = signLaunchQuery('mall_id=shop1&timestamp=1700000000123', SECRET);
    assert.doesNotThrow(() => verify(millis, 1_700_000_000));
    assert.throws(
      () => verify(signLaunchQuery('mall_id=shop1&timestamp=soon', SECRET), 1_700_000_000),
      LaunchBadTimestamp,
    );
  });

  it('finds an hmac parameter anywhere in a raw query', () => {
    assert.equal(hasHmac(QUERY), true);
    assert.equal(hasHmac('hmac=1&mall_id=shop1'), true);
    assert.equal(hasHmac('mall_id=shop1&xhmac=1'), false);
  });
});
