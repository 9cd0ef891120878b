ALTER TABLE authorization_codes ADD COLUMN claimed_at TEXT;
-- SQLite has no advisory locks: a refresh holds a lease on the row instead.
ALTER TABLE tokens ADD COLUMN lock_owner TEXT;
ALTER TABLE tokens ADD COLUMN lock_expires_at TEXT;

CREATE TABLE mall_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    mall_id     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX mall_events_mall_idx ON mall_events (mall_id, id);
