// GET /install (the App URL) and GET /oauth/callback (docs/contract.md §3.2-3.3).
//
// /install verifies Cafe24's launch hmac over the raw query (required unless
// CAFE24_LAUNCH_HMAC_REQUIRED is false), validates the mall and sends the browser to Cafe24's
// consent page with a fresh signed state. /oauth/callback verifies the state and stores the code
// (once per state) for the exchange worker, which it wakes; nothing is stored unless the state
// is valid, no call to Cafe24 is made on this path, and every answer carries
// Cache-Control: no-store.

import express from 'express';

import { isUnavailable } from './database.js';
import { HttpError, methodNotAllowed, renderPage, sendError, wantsHtml } from './errors.js';
import { InvalidMallId, mallUrl, parseMallId } from './ids.js';
import { LaunchError, LaunchHmacMissing, LaunchStale, LaunchBadTimestamp, hasHmac, verifyLaunch } from './launch.js';
import { errorName } from './logger.js';
import { ExpiredState, StateError } from './state.js';

/** @import { Request } from 'express' */
/** @import { Cafe24 } from './runtime.js' */
/** @import { Settings } from './settings.js' */

const MAX_CODE_BYTES = 512;
const PRINTABLE_ASCII = /^[\x21-\x7e]+$/;

/** A callback refusal and the outcome it is counted as. */
class Refusal extends Error {
  /**
   * @param {string} outcome
   * @param {HttpError} answer
   */
  constructor(outcome, answer) {
    super(outcome);
    this.outcome = outcome;
    this.answer = answer;
  }
}

/**
 * The query string exactly as received: still percent-encoded, in its order.
 * @param {Request} req
 */
export function rawQuery(req) {
  const mark = req.originalUrl.indexOf('?');
  return mark < 0 ? '' : req.originalUrl.slice(mark + 1);
}

/**
 * The one value of `name`, form-decoded; a repeated parameter is refused, an empty one is absent.
 * @param {URLSearchParams} params
 * @param {string} name
 * @returns {string | null}
 */
export function singleParam(params, name) {
  const values = params.getAll(name);
  if (values.length > 1)
    throw HttpError.badRequest('duplicate_parameter', `The parameter ${name} appears more than once.`);
  return values[0] || null;
}

/**
 * Cafe24's consent page for the mall, the scopes comma-separated, form-urlencoded in the
 * runtime's order (§3.2).
 * @param {Settings} settings
 * @param {string} mallId
 * @param {string} state
 */
export function authorizeUrl(settings, mallId, state) {
  const query = new URLSearchParams([
    ['response_type', 'code'],
    ['client_id', settings.clientId],
    ['state', state],
    ['redirect_uri', settings.redirectUri],
    ['scope', settings.scopes.join(',')],
  ]);
  return `${mallUrl(settings.baseUrl, mallId, '/api/v2/oauth/authorize')}?${query}`;
}

/** @param {LaunchError} error */
function launchRefusal(error) {
  if (error instanceof LaunchHmacMissing)
    return new HttpError(403, error.code, 'This app must be opened from the Cafe24 admin.');
  if (error instanceof LaunchStale)
    return new HttpError(403, error.code, 'This launch link has expired; open the app again from Cafe24.');
  if (error instanceof LaunchBadTimestamp)
    return new HttpError(403, error.code, 'The launch request has no valid timestamp.');
  return new HttpError(403, error.code, 'The launch request signature is invalid.');
}

/**
 * The install and callback routes.
 * @param {Cafe24} cafe24
 */
export function oauthRouter(cafe24) {
  const { settings, logger } = cafe24;
  const router = express.Router();

  router
    .route('/install')
    .get((req, res) => {
      const query = rawQuery(req);
      const now = cafe24.tokens.now();
      if (hasHmac(query)) {
        try {
          verifyLaunch(query, { secret: settings.clientSecret, now, windowSecs: settings.launchWindowSecs });
        } catch (error) {
          if (!(error instanceof LaunchError)) throw error;
          logger.warn({ reason: error.name }, 'launch refused');
          throw launchRefusal(error);
        }
      } else if (settings.launchHmacRequired) {
        throw launchRefusal(new LaunchHmacMissing());
      }
      const raw = singleParam(new URLSearchParams(query), 'mall_id');
      if (raw === null) throw HttpError.badRequest('missing_parameter', 'mall_id is required.');
      let mallId;
      try {
        mallId = parseMallId(raw);
      } catch (error) {
        if (!(error instanceof InvalidMallId)) throw error;
        throw HttpError.badRequest('invalid_mall_id', `Invalid mall_id: ${error.message}.`);
      }
      const location = authorizeUrl(settings, mallId, cafe24.signer.issue(mallId, now));
      logger.info({ mallId }, 'install redirect issued');
      res.status(302).set({ Location: location, 'Cache-Control': 'no-store' }).end();
    })
    .all(methodNotAllowed);

  /**
   * Steps 1-5 of §3.3; any refusal is thrown as a Refusal.
   * @param {Request} req
   * @returns {Promise<{ id: number, mallId: string }>}
   */
  async function receiveCode(req) {
    const params = new URLSearchParams(rawQuery(req));
    /** @param {string} name */
    const param = (name) => {
      try {
        return singleParam(params, name);
      } catch (error) {
        throw error instanceof HttpError ? new Refusal('bad_request', error) : error;
      }
    };
    const denied = param('error');
    if (denied !== null) {
      const reason = /^[a-z_]{1,64}$/.test(denied) ? denied : 'authorization_error';
      const message = `The app was not authorized by the mall (${reason}). Start the install again to retry.`;
      throw new Refusal('denied', new HttpError(403, 'access_denied', message));
    }
    const code = param('code');
    const state = param('state');
    if (code === null || state === null) {
      throw new Refusal(
        'missing_parameter',
        HttpError.badRequest('missing_parameter', 'Both code and state are required.'),
      );
    }
    if (Buffer.byteLength(code) > MAX_CODE_BYTES || !PRINTABLE_ASCII.test(code)) {
      throw new Refusal('invalid_code', HttpError.badRequest('invalid_parameter', 'The code is malformed.'));
    }
    let mallId;
    try {
      ({ mallId } = cafe24.signer.verify(state, cafe24.tokens.now()));
    } catch (error) {
      if (error instanceof ExpiredState) {
        const message = 'This authorization took too long; start the install again.';
        throw new Refusal('state_expired', HttpError.badRequest('state_expired', message));
      }
      if (error instanceof StateError) {
        const message = 'The state parameter is not one this server issued.';
        throw new Refusal('invalid_state', HttpError.badRequest('invalid_state', message));
      }
      throw error;
    }
    let stored;
    try {
      stored = await cafe24.store.insertCode({ code, state, mallId, maxPending: settings.maxPendingCodesPerMall });
    } catch (error) {
      if (isUnavailable(error)) {
        logger.error({ error: errorName(error) }, 'database unreachable while storing a code');
        throw new Refusal('database_unavailable', HttpError.unavailable());
      }
      throw error;
    }
    if (stored.outcome === 'state_already_used') {
      throw new Refusal(
        'state_replayed',
        new HttpError(409, 'state_already_used', 'This authorization was already completed.'),
      );
    }
    if (stored.outcome === 'too_many_pending') {
      logger.warn({ mallId }, 'too many codes waiting for this mall; refused');
      const message = 'Too many installs of this mall are in progress; try again in a minute.';
      throw new Refusal('too_many_pending', new HttpError(429, 'too_many_pending', message));
    }
    return { id: stored.id, mallId };
  }

  router
    .route('/oauth/callback')
    .get(async (req, res) => {
      // Every answer concerns a one-time code: no browser or proxy may keep it.
      res.set({ 'Cache-Control': 'no-store', Pragma: 'no-cache' });
      try {
        const { id, mallId } = await receiveCode(req);
        cafe24.metrics.callbackOutcome('saved');
        cafe24.exchanger.wake();
        logger.info({ codeId: id, mallId }, 'authorization code stored');
        if (wantsHtml(req)) {
          const message = 'The authorization was received: the app is being installed. You can close this window.';
          res.type('html').send(renderPage({ ok: true, status: 200, message }));
        } else {
          res.json({ ok: true, message: 'Saved', id });
        }
      } catch (error) {
        if (error instanceof Refusal) {
          cafe24.metrics.callbackOutcome(error.outcome);
          logger.info({ outcome: error.outcome, status: error.answer.status }, 'callback refused');
          return sendError(req, res, error.answer);
        }
        cafe24.metrics.callbackOutcome('internal_error');
        logger.error({ error: errorName(error) }, 'callback failed');
        sendError(req, res, HttpError.internal());
      }
    })
    .all(methodNotAllowed);

  return router;
}
