// Mall ids go into host names and scopes into Cafe24's consent page: both are parsed strictly
// (docs/contract.md §1), and the base URL may only put a mall id where it stays one label.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { InvalidMallId, isMallId, mallUrl, parseMallId, parseScopes } from '../auth/ids.js';
import { ConfigError, loadSettings } from '../auth/settings.js';
import { testEnv } from './support/harness.js';

// The contract's rule, as a regular expression (§1).
const CONTRACT = /^[a-z0-9][a-z0-9_-]?$|^[a-z0-9][a-z0-9_-]([a-z0-9_][a-z0-9_-]{0,47}|-([a-z0-9_][a-z0-9_-]{0,46})?)$/;

describe('mall ids (contract §1)', () => {
  it('accepts what Cafe24 issues', () => {
    for (const id of ['shop1', 'sandboxmall', '0mall', 'my-mall_2', 'a', 'ab', 'a--b', 'abc--', 'x'.repeat(50)]) {
      assert.equal(parseMallId(id), id);
      assert.ok(isMallId(id) && CONTRACT.test(id), id);
    }
  });

  it('refuses anything that could leave its host label', () => {
    for (const id of [
      '',
      'Shop1',
      'shop.example',
      'evil.com/',
      'a@b',
      '..',
      '%2e',
      '-shop',
      '_shop',
      'shop 1',
      'shop\n',
      'mäll',
      'xn--mll-hoa',
      'xn---',
      'ab--cd',
      'x'.repeat(51),
    ]) {
      assert.throws(() => parseMallId(id), InvalidMallId, JSON.stringify(id));
      assert.ok(!isMallId(id) && !CONTRACT.test(id), JSON.stringify(id));
    }
  });

  it('never repeats the value in its reason', () => {
    assert.throws(
      () => parseMallId('Evil.Example'),
      (error) => error instanceof Error && !error.message.includes('Evil'),
    );
  });

  it('is checked before a URL is built', () => {
    assert.equal(
      mallUrl('https://{mall_id}.cafe24api.com', 'shop1', '/api/v2/oauth/token'),
      'https://shop1.cafe24api.com/api/v2/oauth/token',
    );
    assert.throws(() => mallUrl('https://{mall_id}.cafe24api.com', 'evil.com#', '/x'), InvalidMallId);
  });
});

describe('scopes (contract §1)', () => {
  it('split on commas, spaces or tabs, without duplicates, in order', () => {
    assert.deepEqual(parseScopes('mall.read_product, mall.read_store\tmall.read_product'), [
      'mall.read_product',
      'mall.read_store',
    ]);
  });

  it('are mall.read_X or mall.write_X', () => {
    for (const raw of ['', ' , ', 'mall.delete_product', 'admin', 'mall.read_', `mall.read_${'x'.repeat(41)}`]) {
      assert.throws(() => parseScopes(raw), Error, raw);
    }
  });
});

describe('CAFE24_BASE_URL', () => {
  const env = testEnv({ databaseUrl: 'postgres://x@127.0.0.1:1/x' });

  it('holds {mall_id} as a whole host label or in the path', () => {
    for (const base of [
      'https://{mall_id}.cafe24api.com/',
      'https://api.example.com/malls/{mall_id}',
      'http://127.0.0.1:9024/malls/{mall_id}',
      'https://{mall_id}.example.com:8443',
    ]) {
      assert.equal(loadSettings({ ...env, CAFE24_BASE_URL: base }).baseUrl, base.replace(/\/$/, ''));
    }
  });

  it('refuses {mall_id} inside a label, in the port or twice', () => {
    for (const base of [
      'https://api-{mall_id}.example.com',
      'https://{mall_id}x.example.com',
      'https://example.com:{mall_id}/',
      'https://{mall_id}.{mall_id}.com',
    ]) {
      assert.throws(
        () => loadSettings({ ...env, CAFE24_BASE_URL: base }),
        (error) => error instanceof ConfigError && error.variable === 'CAFE24_BASE_URL',
        base,
      );
    }
  });
});
