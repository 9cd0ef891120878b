// One error class for every route and one place that turns errors into answers (docs/contract.md
// §3.1): `{"ok":false,"error":…,"message":…}` as JSON, or a small HTML page when a browser
// prefers it. Messages never contain a submitted value or a secret; 5xx bodies are opaque and
// their causes are logged by name only.

import { errorName, silentLogger } from './logger.js';

/** @import { ErrorRequestHandler, Request, RequestHandler, Response } from 'express' */
/** @import { Logger } from './logger.js' */

const MAX_URI_BYTES = 8192;

/** An answer other than success: status, stable machine-readable code, human message. */
export class HttpError extends Error {
  name = 'HttpError';

  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message shown to the client: never a submitted value or a secret
   */
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }

  /**
   * @param {string} code
   * @param {string} message
   */
  static badRequest(code, message) {
    return new HttpError(400, code, message);
  }

  static unavailable() {
    return new HttpError(503, 'database_unavailable', 'The database is unreachable; please retry shortly.');
  }

  static internal() {
    return new HttpError(500, 'internal_error', 'Something went wrong on our side.');
  }
}

/**
 * `text/html` (or XHTML) listed before `application/json`, or JSON not listed at all.
 * @param {Request} req
 */
export function wantsHtml(req) {
  let html = -1;
  let json = -1;
  for (const [position, item] of (req.get('accept') ?? '').split(',').entries()) {
    const [media, ...params] = item.split(';').map((part) => part.trim().toLowerCase());
    if (params.some((p) => /^q=0(?:\.0{0,3})?$/.test(p.replaceAll(' ', '')))) continue;
    if ((media === 'text/html' || media === 'application/xhtml+xml') && html < 0) html = position;
    else if (media === 'application/json' && json < 0) json = position;
  }
  return html >= 0 && (json < 0 || html < json);
}

/** @param {string} text */
function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * The small page browsers get.
 * @param {{ ok: boolean, status: number, message: string }} page
 */
export function renderPage({ ok, status, message }) {
  const title = ok ? 'App installed' : status >= 500 ? 'Temporarily unavailable' : 'This link did not work';
  return (
    `<h1 id="result" class="${ok ? 'ok' : 'fail'}" data-ok="${ok}">${escapeHtml(title)}</h1>` +
    `<p id="message">${escapeHtml(message)}</p>`
  );
}

/**
 * @param {Request} req
 * @param {Response} res
 * @param {HttpError} error
 * @param {{ json?: boolean }} [options] `json` forces JSON (the 408, 414 and 413 answers)
 */
export function sendError(req, res, error, { json = false } = {}) {
  res.status(error.status);
  if (!json && wantsHtml(req)) {
    res.type('html').send(renderPage({ ok: false, status: error.status, message: error.message }));
  } else {
    res.json({ ok: false, error: error.code, message: error.message });
  }
}

/**
 * The fallback route: 404 not_found.
 * @param {Request} req
 * @param {Response} res
 */
export function notFound(req, res) {
  sendError(req, res, new HttpError(404, 'not_found', 'No such endpoint.'));
}

/**
 * For a known path asked with another method.
 * @param {Request} req
 * @param {Response} res
 */
export function methodNotAllowed(req, res) {
  sendError(req, res, new HttpError(405, 'method_not_allowed', 'This endpoint does not accept that method.'));
}

/**
 * The checks made before routing (§3.1): a URI over 8192 bytes → 414, a declared body over
 * HTTP_MAX_BODY_BYTES → 413, no answer within HTTP_REQUEST_TIMEOUT_SECS → 408. A timed-out
 * request's work goes on: decided refreshes and exchanges are never tied to a request.
 * @param {{ maxBodyBytes: number, timeoutMs: number }} limits
 * @returns {RequestHandler}
 */
export function requestLimits({ maxBodyBytes, timeoutMs }) {
  return (req, res, next) => {
    if (Buffer.byteLength(req.originalUrl) > MAX_URI_BYTES) {
      return sendError(req, res, new HttpError(414, 'uri_too_long', 'The request URI is too long.'), { json: true });
    }
    const declared = Number(req.get('content-length') ?? 0);
    if (declared > maxBodyBytes) {
      return sendError(req, res, new HttpError(413, 'body_too_large', 'The request body is too large.'), {
        json: true,
      });
    }
    const timer = setTimeout(() => {
      if (!res.headersSent) {
        sendError(req, res, new HttpError(408, 'timeout', 'The request took too long to answer.'), { json: true });
      }
    }, timeoutMs);
    res.once('close', () => clearTimeout(timer));
    next();
  };
}

/**
 * The one error middleware: HttpErrors become their answer, body-parser's refusals a 4xx,
 * anything else an opaque 500 whose cause is logged by name.
 * @param {{ logger?: Logger }} [options]
 * @returns {ErrorRequestHandler}
 */
export function errorHandler({ logger = silentLogger } = {}) {
  return (error, req, res, next) => {
    if (res.headersSent) {
      // Already answered (a 408, say): nothing more to send for this request.
      if (!res.writableEnded) next(error);
      return;
    }
    if (error instanceof HttpError) return sendError(req, res, error);
    const parserError = /** @type {{ type?: unknown, status?: unknown }} */ (error);
    if (parserError.type === 'entity.too.large') {
      return sendError(req, res, new HttpError(413, 'body_too_large', 'The request body is too large.'));
    }
    if (typeof parserError.status === 'number' && parserError.status >= 400 && parserError.status < 500) {
      return sendError(req, res, HttpError.badRequest('invalid_request', 'The request is malformed.'));
    }
    logger.error({ error: errorName(error), method: req.method, path: req.path }, 'unhandled error');
    sendError(req, res, HttpError.internal());
  };
}
