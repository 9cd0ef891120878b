// Cafe24's token endpoint: instants in Korea time (docs/contract.md §11.1), the response parsed
// or salvaged (§8.3), errors classified and scrubbed (§8.2), and the request Cafe24 expects —
// against a local stand-in for Cafe24.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { after, before, describe, it } from 'node:test';

import { Agent } from 'undici';

import { Secret } from '../auth/secret.js';
import {
  OAuthError,
  TokenEndpoint,
  TokenParseError,
  classify,
  parseCafe24Instant,
  parseTokenResponse,
} from '../auth/token-endpoint.js';
import { loadSettings } from '../auth/settings.js';
import { testEnv } from './support/harness.js';

const NOW = new Date('2021-03-01T03:00:00Z');
const RESPONSE = {
  access_token: 'A-token',
  expires_at: '2021-03-01T14:00:00.000',
  refresh_token: 'R-token',
  refresh_token_expires_at: '2021-03-15T12:00:00.000',
  client_id: 'client',
  mall_id: 'yourmall',
  user_id: 'test',
  scopes: ['mall.read_order', 'mall.read_product'],
  issued_at: '2021-03-01T12:00:00.000',
  shop_no: '1',
  token_type: 'Bearer',
};

describe('Cafe24 instants (contract §11.1)', () => {
  it('reads a time without an offset as Korea time, never as UTC or local time', () => {
    assert.equal(parseCafe24Instant('2021-03-01T14:00:00.000').toISOString(), '2021-03-01T05:00:00.000Z');
    assert.equal(parseCafe24Instant('2026-01-01T08:59:59.999').toISOString(), '2025-12-31T23:59:59.999Z');
    assert.equal(parseCafe24Instant('2021-03-01T14:00:00').toISOString(), '2021-03-01T05:00:00.000Z');
    assert.equal(parseCafe24Instant('2021-03-01 14:00:00.1').toISOString(), '2021-03-01T05:00:00.100Z');
  });

  it('honours an explicit offset', () => {
    assert.equal(parseCafe24Instant('2021-03-01T14:00:00+09:00').toISOString(), '2021-03-01T05:00:00.000Z');
    assert.equal(parseCafe24Instant('2021-03-01T05:00:00Z').toISOString(), '2021-03-01T05:00:00.000Z');
    assert.equal(parseCafe24Instant('2021-03-01T00:00:00.123456-05:00').toISOString(), '2021-03-01T05:00:00.123Z');
  });

  it('refuses what is not a date', () => {
    for (const bad of ['2021-02-30T00:00:00', '2021-03-01', 'yesterday', '2021-03-01T25:00:00']) {
      assert.throws(() => parseCafe24Instant(bad), TokenParseError, bad);
    }
  });
});

describe('token responses (contract §8.3)', () => {
  it('parses what Cafe24 sends, with no expires_in', () => {
    const set = parseTokenResponse(JSON.stringify(RESPONSE), NOW);
    assert.equal(set.accessToken.expose(), 'A-token');
    assert.equal(set.refreshToken.expose(), 'R-token');
    assert.equal(set.accessExpiresAt.toISOString(), '2021-03-01T05:00:00.000Z');
    assert.equal(set.refreshExpiresAt.toISOString(), '2021-03-15T03:00:00.000Z');
    assert.deepEqual(set.scopes, ['mall.read_order', 'mall.read_product']);
    assert.equal(set.shopNo, '1');
    assert.equal(set.incomplete, null);
  });

  it('accepts scopes as a string and shop_no as a number', () => {
    const set = parseTokenResponse(JSON.stringify({ ...RESPONSE, scopes: 'a,b c', shop_no: 2 }), NOW);
    assert.deepEqual(set.scopes, ['a', 'b', 'c']);
    assert.equal(set.shopNo, '2');
  });

  it('salvages both tokens with conservative expiries when the rest does not parse', () => {
    const set = parseTokenResponse(
      JSON.stringify({ ...RESPONSE, expires_at: 'soon', refresh_token_expires_at: 7 }),
      NOW,
    );
    assert.equal(set.accessToken.expose(), 'A-token');
    assert.equal(set.accessExpiresAt.getTime(), NOW.getTime() + 3600_000);
    assert.equal(set.refreshExpiresAt.getTime(), NOW.getTime() + 7 * 86_400_000);
    assert.match(/** @type {string} */ (set.incomplete), /refresh_token_expires_at|expires_at|timestamp/);
  });

  it('refuses a body without both tokens', () => {
    assert.throws(() => parseTokenResponse(JSON.stringify({ ...RESPONSE, refresh_token: '' }), NOW), TokenParseError);
    assert.throws(() => parseTokenResponse('<html>', NOW), TokenParseError);
  });

  it('never shows a token when printed', () => {
    const set = parseTokenResponse(JSON.stringify(RESPONSE), NOW);
    assert.doesNotMatch(JSON.stringify(set) + String(set.accessToken), /A-token|R-token/);
  });
});

describe('error classes (contract §8.2)', () => {
  it('declares a grant dead only on invalid_grant with 400 or 401', () => {
    assert.equal(classify(401, '{"error":"invalid_grant"}', []).kind, 'dead_grant');
    assert.equal(classify(400, '{"error":"invalid_grant"}', []).kind, 'dead_grant');
    assert.equal(classify(403, '{"error":"invalid_grant"}', []).kind, 'rejected');
    assert.equal(classify(401, '{"error":"invalid_client"}', []).kind, 'rejected');
    assert.equal(classify(429, '', []).retryable, true);
    assert.equal(classify(503, '', []).retryable, true);
  });

  it('scrubs every secret that was sent and cuts the text', () => {
    const error = classify(
      400,
      JSON.stringify({ error: 'invalid_request', error_description: `bad R-token ${'x'.repeat(300)}` }),
      ['R-token'],
    );
    assert.doesNotMatch(error.message, /R-token/);
    assert.match(error.message, /\[redacted\]/);
    assert.ok(error.message.length < 300);
  });
});

describe('the token endpoint over HTTP', () => {
  /** @type {Array<{ path: string, authorization: string | undefined, type: string | undefined, form: URLSearchParams }>} */
  const seen = [];
  /** @type {Array<(res: import('node:http').ServerResponse) => void>} */
  const answers = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      seen.push({
        path: req.url ?? '',
        authorization: req.headers.authorization,
        type: req.headers['content-type'],
        form: new URLSearchParams(body),
      });
      const answer = answers.shift();
      if (answer) answer(res);
      else res.writeHead(500).end();
    });
  });
  const dispatcher = new Agent();
  /** @type {TokenEndpoint} */
  let endpoint;

  before(async () => {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
    const settings = loadSettings({
      ...testEnv({ databaseUrl: 'postgres://x@127.0.0.1:1/x' }),
      CAFE24_BASE_URL: `http://127.0.0.1:${port}/m/{mall_id}`,
      CAFE24_HTTP_TIMEOUT_SECS: '1',
    });
    endpoint = new TokenEndpoint({ dispatcher, settings, clock: () => NOW });
  });
  after(async () => {
    await dispatcher.close();
    server.close();
  });

  it('sends a form with Basic client authentication to the mall', async () => {
    answers.push((res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(RESPONSE)));
    const set = await endpoint.refresh('shop1', new Secret('R-token'));
    assert.equal(set.accessToken.expose(), 'A-token');
    const request = /** @type {(typeof seen)[number]} */ (seen.at(-1));
    assert.equal(request.path, '/m/shop1/api/v2/oauth/token');
    assert.equal(
      request.authorization,
      `Basic ${Buffer.from('sandbox-client-id:sandbox-client-secret').toString('base64')}`,
    );
    assert.equal(request.type, 'application/x-www-form-urlencoded');
    assert.deepEqual(Object.fromEntries(request.form), { grant_type: 'refresh_token', refresh_token: 'R-token' });
  });

  it("revokes with Cafe24's token_hint", async () => {
    answers.push((res) => res.writeHead(200).end());
    await endpoint.revoke('shop1', new Secret('A-token'), 'access_token');
    assert.deepEqual(Object.fromEntries(/** @type {(typeof seen)[number]} */ (seen.at(-1)).form), {
      token: 'A-token',
      token_hint: 'access_token',
    });
  });

  it('turns a lost answer into a retryable transport error without the token', async () => {
    answers.push((res) => res.socket?.destroy());
    const error = await endpoint.exchange('shop1', new Secret('the-code')).catch((e) => e);
    assert.ok(error instanceof OAuthError && error.kind === 'transport' && error.retryable, String(error));
    assert.doesNotMatch(error.message, /the-code/);
  });

  it('gives up after CAFE24_HTTP_TIMEOUT_SECS', async () => {
    answers.push(() => {});
    const started = Date.now();
    const error = await endpoint.exchange('shop1', new Secret('slow')).catch((e) => e);
    assert.ok(error instanceof OAuthError && error.kind === 'transport', String(error));
    assert.match(error.message, /timed out/);
    assert.ok(Date.now() - started < 5000);
  });

  it('refuses a mall id that could steer the host before sending anything', async () => {
    const count = seen.length;
    await assert.rejects(endpoint.refresh('evil.com/x', new Secret('R')), { name: 'InvalidMallId' });
    assert.equal(seen.length, count);
  });
});
