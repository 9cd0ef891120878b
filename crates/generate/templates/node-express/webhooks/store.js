// cafe24.webhook_events: intake (stored once per dedupe key) and the dispatch queue (claimed like
// the codes), with docs/contract.md §6.6-6.7's statements.

/** @import { Database } from '../auth/database.js' */

const INSERT = `
INSERT INTO cafe24.webhook_events (dedupe_key, mall_id, event_no, trace_id, body, occurred_at)
VALUES ($1, $2, $3, $4, $5, COALESCE($6, now())) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id`;
const CLAIM = `
UPDATE cafe24.webhook_events AS w SET claimed_at = now(), attempts = w.attempts + 1
FROM (SELECT id FROM cafe24.webhook_events
      WHERE status IN ('received', 'retry') AND next_attempt_at <= now()
        AND (claimed_at IS NULL OR claimed_at < now() - make_interval(secs => $1))
      ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED) AS picked
WHERE w.id = picked.id
RETURNING w.id, w.dedupe_key, w.mall_id, w.event_no, w.trace_id, w.body, w.attempts,
    COALESCE(w.occurred_at, w.received_at) AS occurred_at`;

/**
 * A stored delivery, as the app's handlers get it. `body` is the delivery's raw JSON:
 * `{"event_no":…,"resource":{"mall_id":…,…}}`.
 * @typedef {object} WebhookEvent
 * @property {number} id
 * @property {string} dedupeKey
 * @property {string} mallId
 * @property {number} eventNo
 * @property {string | null} traceId
 * @property {string} body
 * @property {number} attempts
 * @property {Date} occurredAt
 */

export class WebhookStore {
  /** @param {Database} db */
  constructor(db) {
    this.db = db;
  }

  /**
   * Stores a delivery unless its dedupe key is known; either way, its id.
   * @param {{ dedupeKey: string, mallId: string, eventNo: number, traceId: string | null, body: string }} event
   * @returns {Promise<{ id: number, duplicate: boolean }>}
   */
  async insert({ dedupeKey, mallId, eventNo, traceId, body }) {
    const { rows } = await this.db.query(INSERT, [dedupeKey, mallId, eventNo, traceId, body, null]);
    if (rows.length) return { id: Number(rows[0].id), duplicate: false };
    const existing = await this.db.query('SELECT id FROM cafe24.webhook_events WHERE dedupe_key = $1', [dedupeKey]);
    if (!existing.rows.length) throw new Error('a duplicate delivery vanished');
    return { id: Number(existing.rows[0].id), duplicate: true };
  }

  /**
   * @param {{ leaseSecs: number, batch: number }} options
   * @returns {Promise<WebhookEvent[]>}
   */
  async claim({ leaseSecs, batch }) {
    const { rows } = await this.db.query(CLAIM, [leaseSecs, batch], { background: true });
    return rows.map((r) => ({
      id: Number(r.id),
      dedupeKey: r.dedupe_key,
      mallId: r.mall_id,
      eventNo: r.event_no,
      traceId: r.trace_id,
      body: r.body,
      attempts: r.attempts,
      occurredAt: r.occurred_at,
    }));
  }

  /** @param {number} id */
  async dispatched(id) {
    await this.db.query(
      "UPDATE cafe24.webhook_events SET status = 'dispatched', dispatched_at = now(), claimed_at = NULL, last_error = NULL WHERE id = $1",
      [id],
      { background: true },
    );
  }

  /**
   * @param {number} id
   * @param {string} error
   * @param {Date} at
   */
  async retry(id, error, at) {
    await this.db.query(
      "UPDATE cafe24.webhook_events SET status = 'retry', next_attempt_at = $2, claimed_at = NULL, last_error = $3 WHERE id = $1",
      [id, at, error],
      { background: true },
    );
  }

  /**
   * @param {number} id
   * @param {string} error
   */
  async deadLetter(id, error) {
    await this.db.query(
      "UPDATE cafe24.webhook_events SET status = 'dead_letter', claimed_at = NULL, last_error = $2 WHERE id = $1",
      [id, error],
      { background: true },
    );
  }
}
