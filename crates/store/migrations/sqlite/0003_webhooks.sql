-- See migrations/postgres/0003. SQLite cannot add a column with a computed default, so an
-- empty next_attempt_at means "due now" (it sorts before every instant).
ALTER TABLE webhook_events ADD COLUMN source TEXT NOT NULL DEFAULT 'received';
ALTER TABLE webhook_events ADD COLUMN next_attempt_at TEXT NOT NULL DEFAULT '';
ALTER TABLE webhook_events ADD COLUMN claimed_at TEXT;
ALTER TABLE webhook_events ADD COLUMN dispatched_at TEXT;
CREATE INDEX webhook_events_due_idx ON webhook_events (status, next_attempt_at);
