// Webhook verification (docs/contract.md §3.4): the sender allowlist (believing X-Forwarded-For
// only from trusted proxies), then the configured header — the shared key itself, or an
// HMAC-SHA256 of the raw body in hex (optionally `sha256=`) or base64 — compared in constant
// time with the length checked first. Unconfigured refuses everything.

import { createHmac, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';

/** @import { BlockList } from 'node:net' */
/** @import { WebhookSettings } from './settings.js' */

const HEX = /^(?:[0-9a-fA-F]{2})+$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** The delivery could not be verified; the reason is for logs only. */
export class WebhookRefused extends Error {
  name = 'WebhookRefused';
}

/**
 * An IP address and its family, IPv4-mapped IPv6 (`::ffff:1.2.3.4`) read as IPv4.
 * @param {string | undefined} text
 * @returns {{ address: string, type: 'ipv4' | 'ipv6' } | null}
 */
function ip(text) {
  const trimmed = (text ?? '').trim();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(trimmed);
  const address = mapped ? mapped[1] : trimmed;
  const family = isIP(address);
  return family === 0 ? null : { address, type: family === 4 ? 'ipv4' : 'ipv6' };
}

/**
 * @param {BlockList} list
 * @param {{ address: string, type: 'ipv4' | 'ipv6' }} ip
 */
function listed(list, { address, type }) {
  return list.check(address, type);
}

/**
 * Constant-time equality, the lengths checked first (that a length differs is no secret).
 * @param {Buffer} a
 * @param {Buffer} b
 */
function same(a, b) {
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * The hex HMAC-SHA256 of `body` under `key`: the `hmac-hex` header value (for tests and senders).
 * @param {string} key
 * @param {Buffer | string} body
 */
export function signHex(key, body) {
  return createHmac('sha256', key).update(body).digest('hex');
}

export class Verifier {
  #settings;

  /** @param {WebhookSettings} settings */
  constructor(settings) {
    this.#settings = settings;
  }

  /**
   * The TCP peer, or — when the peer is a trusted proxy — the right-most X-Forwarded-For hop
   * that is not one; a hop that is not an IP address makes the sender unknown (null).
   * @param {string | undefined} peer
   * @param {string | undefined} forwardedFor every header line, joined with `,`
   */
  sender(peer, forwardedFor) {
    const address = ip(peer);
    const proxies = this.#settings.trustedProxies;
    if (address === null || proxies === null || !listed(proxies, address) || !forwardedFor) return address;
    for (const hop of forwardedFor.split(',').reverse()) {
      const hopAddress = ip(hop);
      if (hopAddress === null) return null;
      if (!listed(proxies, hopAddress)) return hopAddress;
    }
    return address;
  }

  /**
   * Throws WebhookRefused unless the delivery is verified.
   * @param {{ peer: string | undefined, forwardedFor: string | undefined,
   *   header: (name: string) => string | undefined, body: Buffer }} delivery
   */
  check({ peer, forwardedFor, header, body }) {
    const s = this.#settings;
    if (s.auth === null) throw new WebhookRefused('webhook verification is not configured');
    if (s.allowedSenders !== null) {
      const sender = this.sender(peer, forwardedFor);
      if (sender === null || !listed(s.allowedSenders, sender))
        throw new WebhookRefused('sender address is not allowed');
    }
    if (s.auth === 'insecure-none') return;
    if (s.key === null) throw new WebhookRefused('webhook verification is not configured');
    const presented = header(s.header)?.trim();
    if (presented === undefined) throw new WebhookRefused('authentication header missing');
    const key = Buffer.from(s.key.expose(), 'utf8');
    let matches;
    if (s.auth === 'api-key') {
      matches = same(Buffer.from(presented, 'utf8'), key);
    } else {
      const expected = createHmac('sha256', key).update(body).digest();
      const hex = presented.replace(/^sha256=/, '');
      if (s.auth === 'hmac-hex') matches = HEX.test(hex) && same(Buffer.from(hex, 'hex'), expected);
      else matches = BASE64.test(presented) && same(Buffer.from(presented, 'base64'), expected);
    }
    if (!matches) throw new WebhookRefused('authentication header does not match');
  }
}
