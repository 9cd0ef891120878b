-- The same tables as migrations/postgres, in SQLite's types. Instants are RFC 3339 text in UTC.
CREATE TABLE authorization_codes (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    code         TEXT NOT NULL,
    state        TEXT NOT NULL,
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    mall_id      TEXT,
    status       TEXT NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'processing', 'exchanged', 'expired', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    processed_at TEXT
);
CREATE UNIQUE INDEX authorization_codes_state_key ON authorization_codes (state);
CREATE INDEX authorization_codes_pending_idx ON authorization_codes (status, created_at);

CREATE TABLE tokens (
    mall_id                  TEXT PRIMARY KEY,
    shop_no                  TEXT,
    user_id                  TEXT,
    client_id                TEXT NOT NULL,
    scopes                   TEXT NOT NULL DEFAULT '',
    key_id                   TEXT NOT NULL,
    access_token             BLOB NOT NULL,
    access_expires_at        TEXT NOT NULL,
    refresh_token            BLOB NOT NULL,
    refresh_expires_at       TEXT NOT NULL,
    issued_at                TEXT,
    status                   TEXT NOT NULL DEFAULT 'active'
                             CHECK (status IN ('active', 'needs_reauth', 'revoked')),
    version                  INTEGER NOT NULL DEFAULT 1,
    refresh_started_at       TEXT,
    last_refreshed_at        TEXT,
    last_error               TEXT,
    created_at               TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at               TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX tokens_refresh_expiry_idx ON tokens (status, refresh_expires_at);

CREATE TABLE webhook_events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    dedupe_key    TEXT NOT NULL UNIQUE,
    mall_id       TEXT NOT NULL,
    event_no      INTEGER NOT NULL,
    trace_id      TEXT,
    body          TEXT NOT NULL,
    received_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    status        TEXT NOT NULL DEFAULT 'received',
    attempts      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT,
    confirmed_at  TEXT
);
CREATE INDEX webhook_events_status_idx ON webhook_events (status, received_at);
