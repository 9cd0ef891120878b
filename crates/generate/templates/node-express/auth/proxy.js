// /internal/malls/{mall_id}/api/v2/admin/… (docs/contract.md §3.8): forwards a call to Cafe24's
// Admin API with the mall's managed token, pacing and retries. Mounted only when
// CAFE24_ADMIN_TOKEN is set (otherwise the route does not exist: 404). Callers send
// `Authorization: Bearer …`, compared in constant time. Cafe24's status and JSON body come back
// as they are; a POST is retried after a 5xx only with `X-Retry-Post: safe`. Keep it internal:
// it is an admin surface.

import { timingSafeEqual } from 'node:crypto';

import express from 'express';

import {
  Cafe24ApiError,
  Cafe24Deadline,
  Cafe24Refused,
  Cafe24Unreachable,
  InvalidApiRequest,
  adminPath,
} from './cafe24-client.js';
import { HttpError } from './errors.js';
import { isMallId } from './ids.js';
import { errorName } from './logger.js';
import { rawQuery } from './oauth.js';
import { NeedsReauth, NotInstalled, Revoked, TokenError } from './token-manager.js';

/** @import { NextFunction, Request, Response } from 'express' */
/** @import { Cafe24 } from './runtime.js' */

const FORWARDED = new Set(['GET', 'POST', 'PUT', 'DELETE']);

/** @param {Request} req */
function bearer(req) {
  const match = /^bearer\s+(.+)$/i.exec(req.get('authorization') ?? '');
  return match ? match[1].trim() : null;
}

/**
 * @param {unknown} error
 * @returns {HttpError}
 */
function failure(error) {
  if (error instanceof Cafe24Unreachable) return new HttpError(502, 'bad_gateway', 'Cafe24 could not be reached.');
  if (error instanceof Cafe24Deadline)
    return new HttpError(504, 'deadline', 'Cafe24 did not answer successfully in time.');
  if (error instanceof InvalidApiRequest)
    return HttpError.badRequest('invalid_request', 'The request cannot be forwarded.');
  if (error instanceof Cafe24ApiError) return new HttpError(502, 'bad_gateway', "Cafe24's answer was unreadable.");
  if (error instanceof NotInstalled) return new HttpError(404, 'not_installed', 'The mall has not installed the app.');
  if (error instanceof NeedsReauth || error instanceof Revoked) {
    return new HttpError(409, 'needs_reauth', 'The mall must install the app again.');
  }
  return new HttpError(503, 'token_unavailable', 'No token could be obtained for the mall; retry shortly.');
}

/**
 * The admin proxy, or null when CAFE24_ADMIN_TOKEN is not set.
 * @param {Cafe24} cafe24
 */
export function proxyRouter(cafe24) {
  const { settings, logger } = cafe24;
  if (settings.adminToken === null) return null;
  const expected = Buffer.from(settings.adminToken.expose());
  const router = express.Router();

  /**
   * Who may call, and what may be forwarded: checked before any body is read.
   * @param {Request} req
   * @param {Response} res
   * @param {NextFunction} next
   */
  const authorize = (req, res, next) => {
    const presented = bearer(req);
    if (presented === null) {
      res.set('WWW-Authenticate', 'Bearer');
      throw new HttpError(401, 'unauthorized', 'Send the admin credential as Authorization: Bearer.');
    }
    const given = Buffer.from(presented);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new HttpError(403, 'forbidden', 'The admin credential is not valid.');
    }
    // Nothing percent-encoded is forwarded: an encoded dot could climb out of the Admin API.
    const path = req.originalUrl.split('?', 1)[0];
    if (path.includes('%'))
      throw HttpError.badRequest('invalid_path', 'The path must not contain percent-encoded characters.');
    const mallId = String(req.params.mallId);
    if (!isMallId(mallId)) throw HttpError.badRequest('invalid_mall_id', 'The mall id is not valid.');
    const rest = path.slice(`${req.baseUrl}/internal/malls/${mallId}/api/v2/`.length);
    if (!rest.startsWith('admin/'))
      throw new HttpError(404, 'not_found', 'Only the Admin API (/api/v2/admin/…) is forwarded.');
    if (!FORWARDED.has(req.method)) {
      throw new HttpError(405, 'method_not_allowed', 'Only GET, POST, PUT and DELETE are forwarded.');
    }
    try {
      res.locals.adminPath = adminPath(rest.slice('admin'.length));
    } catch (error) {
      if (!(error instanceof InvalidApiRequest)) throw error;
      throw HttpError.badRequest('invalid_path', `The path is refused: ${error.message}.`);
    }
    res.locals.mallId = mallId;
    next();
  };

  /**
   * @param {Request} req
   * @param {Response} res
   */
  const forward = async (req, res) => {
    /** @type {unknown} */
    let json;
    if (Buffer.isBuffer(req.body) && req.body.length > 0) {
      try {
        json = JSON.parse(req.body.toString('utf8'));
      } catch {
        throw HttpError.badRequest('invalid_json', 'The body is not JSON.');
      }
    }
    // Not decided work: a caller that leaves cancels the call (a refresh it started goes on).
    const left = new AbortController();
    res.once('close', () => left.abort());
    const query = /** @type {Array<[string, string]>} */ ([...new URLSearchParams(rawQuery(req))]);
    try {
      const answer = await cafe24.client.mall(res.locals.mallId).send(req.method, res.locals.adminPath, {
        query,
        json,
        retrySafe: req.get('x-retry-post')?.toLowerCase() === 'safe',
        signal: left.signal,
      });
      res.status(answer.status).json(answer.body);
    } catch (error) {
      if (left.signal.aborted) return;
      if (error instanceof Cafe24Refused && error.body !== null) return void res.status(error.status).json(error.body);
      if (!(error instanceof Cafe24ApiError || error instanceof TokenError)) throw error;
      logger.warn({ error: errorName(error) }, 'proxied call failed');
      throw failure(error);
    }
  };

  router.all(
    '/internal/malls/:mallId/api/v2/*rest',
    authorize,
    express.raw({ type: () => true, limit: settings.httpMaxBodyBytes }),
    forward,
  );
  return router;
}
