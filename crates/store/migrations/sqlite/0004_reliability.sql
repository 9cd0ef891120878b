-- See migrations/postgres/0004. SQLite cannot add a NOT NULL column without a constant default,
-- so an empty installed_at is filled from created_at here and written by every exchange.
ALTER TABLE tokens ADD COLUMN installed_at TEXT NOT NULL DEFAULT '';
UPDATE tokens SET installed_at = created_at;
ALTER TABLE webhook_events ADD COLUMN occurred_at TEXT;
CREATE INDEX authorization_codes_mall_pending_idx ON authorization_codes (mall_id, status, created_at);
