// GET /healthz (the process serves), GET /readyz (the database answers), GET /metrics.

import express from 'express';

import { HttpError, methodNotAllowed } from './errors.js';
import { errorName } from './logger.js';
import { CONTENT_TYPE } from './metrics.js';

/** @import { Cafe24 } from './runtime.js' */

/** @param {Cafe24} cafe24 */
export function healthRouter(cafe24) {
  const router = express.Router();

  router
    .route('/healthz')
    .get((_req, res) => {
      res.json({ ok: true });
    })
    .all(methodNotAllowed);

  router
    .route('/readyz')
    .get(async (_req, res) => {
      try {
        await cafe24.store.ping();
      } catch (error) {
        cafe24.logger.warn({ error: errorName(error) }, 'readiness check: the database does not answer');
        throw HttpError.unavailable();
      }
      res.json({ ok: true, database: 'up' });
    })
    .all(methodNotAllowed);

  router
    .route('/metrics')
    .get((_req, res) => {
      res.setHeader('Content-Type', CONTENT_TYPE);
      res.end(cafe24.metrics.render());
    })
    .all(methodNotAllowed);

  return router;
}
