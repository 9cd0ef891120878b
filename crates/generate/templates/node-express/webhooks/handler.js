// POST /webhooks/cafe24 (docs/contract.md §3.4): read the raw body, verify (fail closed: 403,
// nothing stored), validate (400), store once under the dedupe key, answer
// `200 {"ok":true,"id":N}` — fast, with no call to Cafe24 and no app logic on the request path.
// The dispatcher acts on stored events (webhooks/dispatch.js).

import { createHash } from 'node:crypto';

import express from 'express';

import { isUnavailable } from '../auth/database.js';
import { HttpError, methodNotAllowed } from '../auth/errors.js';
import { isMallId } from '../auth/ids.js';
import { errorName } from '../auth/logger.js';
import { Dispatcher } from './dispatch.js';
import { WebhookStore } from './store.js';
import { Verifier, WebhookRefused } from './verify.js';

/** @import { Cafe24 } from '../auth/runtime.js' */
/** @import { WebhookHandler } from './dispatch.js' */
/** @import { WebhookSettings } from './settings.js' */

const INT32_MAX = 2 ** 31 - 1;
const EVENT_NO = /^[+-]?[0-9]+$/;
const TRACE = /^[\x21-\x7e]{1,128}$/;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Webhook intake and dispatch while the app runs; built by startWebhooks(). */
export class Webhooks {
  /**
   * @param {{ settings: WebhookSettings, verifier: Verifier, store: WebhookStore, dispatcher: Dispatcher }} parts
   */
  constructor({ settings, verifier, store, dispatcher }) {
    this.settings = settings;
    this.verifier = verifier;
    this.store = store;
    this.dispatcher = dispatcher;
  }

  /** Stops dispatching; an uninstall already started is the token lifecycle's tracked work. */
  async close() {
    await this.dispatcher.stop();
  }
}

/**
 * Builds the intake and starts the dispatcher, inside a running Cafe24 module.
 * @param {Cafe24} cafe24
 * @param {WebhookSettings} settings
 * @param {{ handlers?: WebhookHandler[], dispatch?: boolean }} [options] `handlers` run for every
 *   stored event, off the request path; `dispatch: false` only stores (another process dispatches)
 * @returns {Webhooks}
 */
export function startWebhooks(cafe24, settings, { handlers = [], dispatch = true } = {}) {
  if (settings.auth === null)
    cafe24.logger.warn({}, 'CAFE24_WEBHOOK_AUTH is not set: every webhook delivery is refused (403)');
  if (settings.reconcileIntervalSecs > 0) {
    cafe24.logger.warn(
      {},
      'CAFE24_WEBHOOK_RECONCILE_INTERVAL_SECS is set, but this module does not reconcile; run the cafe24-oauth worker for that',
    );
  }
  const store = new WebhookStore(cafe24.db);
  const dispatcher = new Dispatcher({
    store,
    tokens: cafe24.tokens,
    settings,
    http: cafe24.dispatcher,
    handlers,
    logger: cafe24.logger,
  });
  if (dispatch) dispatcher.start();
  return new Webhooks({ settings, verifier: new Verifier(settings), store, dispatcher });
}

/**
 * `trace:{id}` when the trace header holds 1-128 printable ASCII bytes, else `sha256:` of the
 * decimal event number, `:` and the raw body — as every implementation computes it (§6.6).
 * @param {string | null} traceId
 * @param {number} eventNo
 * @param {Buffer} body
 */
export function dedupeKey(traceId, eventNo, body) {
  if (traceId !== null && TRACE.test(traceId)) return `trace:${traceId}`;
  return `sha256:${createHash('sha256').update(`${eventNo}:`, 'ascii').update(body).digest('hex')}`;
}

/**
 * The event number and mall of a delivery, or 400 invalid_event.
 * @param {Buffer} body
 * @returns {{ eventNo: number, mallId: string, text: string }}
 */
export function parseDelivery(body) {
  /** @param {string} reason */
  const invalid = (reason) => HttpError.badRequest('invalid_event', `Invalid event: ${reason}.`);
  let text;
  try {
    text = strictUtf8.decode(body);
  } catch {
    throw invalid('the body is not UTF-8');
  }
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    throw invalid('the body is not JSON');
  }
  const raw = value !== null && typeof value === 'object' ? value.event_no : undefined;
  const eventNo = Number.isInteger(raw)
    ? raw
    : typeof raw === 'string' && EVENT_NO.test(raw)
      ? Number(raw)
      : Number.NaN;
  if (!(eventNo > 0 && eventNo <= INT32_MAX)) throw invalid('event_no is missing or not a number');
  const mallId = value.resource !== null && typeof value.resource === 'object' ? value.resource.mall_id : undefined;
  if (!isMallId(mallId)) throw invalid('resource.mall_id is missing or not a valid mall id');
  return { eventNo, mallId, text };
}

/**
 * The webhook route.
 * @param {Cafe24} cafe24
 * @param {Webhooks} webhooks
 */
export function webhooksRouter(cafe24, webhooks) {
  const { logger } = cafe24;
  const router = express.Router();

  router
    .route('/webhooks/cafe24')
    .post(express.raw({ type: () => true, limit: cafe24.settings.httpMaxBodyBytes }), async (req, res) => {
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      try {
        webhooks.verifier.check({
          peer: req.socket.remoteAddress,
          forwardedFor: req.get('x-forwarded-for'),
          header: (name) => req.get(name),
          body,
        });
      } catch (error) {
        if (!(error instanceof WebhookRefused)) throw error;
        logger.warn({ reason: error.message }, 'webhook refused');
        throw new HttpError(403, 'forbidden', 'The delivery could not be verified.');
      }
      const { eventNo, mallId, text } = parseDelivery(body);
      const traceHeader = webhooks.settings.traceHeader;
      const traceId = traceHeader === null ? null : (req.get(traceHeader) ?? null);
      let stored;
      try {
        stored = await webhooks.store.insert({
          dedupeKey: dedupeKey(traceId, eventNo, body),
          mallId,
          eventNo,
          traceId,
          body: text,
        });
      } catch (error) {
        logger.error({ error: errorName(error) }, 'storing a webhook failed');
        throw isUnavailable(error) ? HttpError.unavailable() : HttpError.internal();
      }
      if (stored.duplicate) {
        logger.info({ eventId: stored.id, eventNo }, 'webhook delivered again; already stored');
        return void res.json({ ok: true, id: stored.id, duplicate: true });
      }
      logger.info({ eventId: stored.id, eventNo, mallId }, 'webhook stored');
      webhooks.dispatcher.wake();
      res.json({ ok: true, id: stored.id });
    })
    .all(methodNotAllowed);

  return router;
}
