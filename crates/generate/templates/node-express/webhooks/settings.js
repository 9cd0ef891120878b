// Webhook settings (docs/contract.md §2.2, "Webhooks"). Cafe24 does not document how deliveries
// are authenticated, so verification is configured, and unset means every delivery is refused.

import { BlockList, isIP } from 'node:net';

import { z } from 'zod';

import { ConfigError, parseVariables, parsed, readSources, secret, wholeNumber } from '../auth/settings.js';

const AUTH_SCHEMES = /** @type {const} */ (['api-key', 'hmac-hex', 'hmac-base64', 'insecure-none']);
const HEADER_NAME = /^[A-Za-z0-9_-]+$/;

/** @typedef {(typeof AUTH_SCHEMES)[number]} WebhookAuth */

/**
 * Comma-separated IP addresses or CIDR blocks.
 * @param {string} raw
 */
function networks(raw) {
  const list = new BlockList();
  for (const entry of raw
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)) {
    const [address, prefix, extra] = entry.split('/');
    const family = isIP(address);
    const bits = prefix === undefined ? null : /^[0-9]{1,3}$/.test(prefix) ? Number(prefix) : -1;
    if (family === 0 || extra !== undefined || (bits !== null && !(bits >= 0 && bits <= (family === 4 ? 32 : 128)))) {
      throw new Error('must be comma-separated IP addresses or CIDR blocks');
    }
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (bits === null) list.addAddress(address, type);
    else list.addSubnet(address, bits, type);
  }
  return list;
}

/** @param {string} raw */
function forwardUrl(raw) {
  let url;
  try {
    url = new URL(raw);
  } catch {
    throw new Error('is not a valid URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('must be an http(s) URL');
  return raw;
}

const headerName = z.string().regex(HEADER_NAME, 'must be a header name (letters, digits, - and _)');

const schema = z.object({
  CAFE24_WEBHOOK_AUTH: z.enum(AUTH_SCHEMES, { error: `must be one of ${AUTH_SCHEMES.join(', ')}` }).optional(),
  CAFE24_WEBHOOK_KEY: secret(16, '').optional(),
  CAFE24_WEBHOOK_HEADER: headerName.optional(),
  CAFE24_WEBHOOK_ALLOWED_SENDERS: parsed(networks).optional(),
  CAFE24_TRUSTED_PROXIES: parsed(networks).optional(),
  CAFE24_WEBHOOK_TRACE_HEADER: headerName.optional(),
  CAFE24_WEBHOOK_FORWARD_URL: parsed(forwardUrl).optional(),
  CAFE24_WEBHOOK_FORWARD_SECRET: secret(1, '').optional(),
  CAFE24_WEBHOOK_MAX_ATTEMPTS: wholeNumber(1, 100).default(8),
  CAFE24_WEBHOOK_RECONCILE_WINDOW_SECS: wholeNumber(60, 2_592_000).default(86_400),
  CAFE24_WEBHOOK_RECONCILE_INTERVAL_SECS: wholeNumber(0, 86_400).default(0),
});

/**
 * @typedef {object} WebhookSettings
 * @property {WebhookAuth | null} auth null: every delivery is refused
 * @property {import('../auth/secret.js').Secret | null} key
 * @property {string} header the header carrying the key or the MAC
 * @property {BlockList | null} allowedSenders null: any sender
 * @property {BlockList | null} trustedProxies whose X-Forwarded-For is believed
 * @property {string | null} traceHeader selects the dedupe key (§6.6)
 * @property {{ url: string, secret: import('../auth/secret.js').Secret } | null} forward
 * @property {number} maxAttempts
 * @property {number} reconcileIntervalSecs reconciliation is not done by this module
 */

/**
 * Reads and validates the webhook settings.
 * @param {NodeJS.ProcessEnv} [env] defaults to process.env
 * @returns {WebhookSettings}
 * @throws {ConfigError}
 */
export function loadWebhookSettings(env = process.env) {
  const v = parseVariables(schema, readSources(env));
  const auth = v.CAFE24_WEBHOOK_AUTH ?? null;
  if ((auth === 'api-key' || auth === 'hmac-hex' || auth === 'hmac-base64') && v.CAFE24_WEBHOOK_KEY === undefined) {
    throw new ConfigError('CAFE24_WEBHOOK_KEY', `is not set (required by CAFE24_WEBHOOK_AUTH=${auth})`);
  }
  if (v.CAFE24_WEBHOOK_FORWARD_URL !== undefined && v.CAFE24_WEBHOOK_FORWARD_SECRET === undefined) {
    throw new ConfigError('CAFE24_WEBHOOK_FORWARD_SECRET', 'is not set (required by CAFE24_WEBHOOK_FORWARD_URL)');
  }
  return Object.freeze({
    auth,
    key: v.CAFE24_WEBHOOK_KEY ?? null,
    header: v.CAFE24_WEBHOOK_HEADER ?? (auth === 'api-key' ? 'X-Api-Key' : 'X-Cafe24-Hmac-Sha256'),
    allowedSenders: v.CAFE24_WEBHOOK_ALLOWED_SENDERS ?? null,
    trustedProxies: v.CAFE24_TRUSTED_PROXIES ?? null,
    traceHeader: v.CAFE24_WEBHOOK_TRACE_HEADER ?? null,
    forward:
      v.CAFE24_WEBHOOK_FORWARD_URL !== undefined && v.CAFE24_WEBHOOK_FORWARD_SECRET !== undefined
        ? { url: v.CAFE24_WEBHOOK_FORWARD_URL, secret: v.CAFE24_WEBHOOK_FORWARD_SECRET }
        : null,
    maxAttempts: v.CAFE24_WEBHOOK_MAX_ATTEMPTS,
    reconcileIntervalSecs: v.CAFE24_WEBHOOK_RECONCILE_INTERVAL_SECS,
  });
}
