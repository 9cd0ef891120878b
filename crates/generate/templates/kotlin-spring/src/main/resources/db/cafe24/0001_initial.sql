-- The public callback stores codes here. The first four columns are exactly the serverless
-- spec's table; the rest are what the exchange worker needs.
CREATE TABLE cafe24.authorization_codes (
    id           bigserial PRIMARY KEY,
    code         text NOT NULL,
    state        text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    mall_id      text,
    status       text NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'processing', 'exchanged', 'expired', 'failed')),
    attempts     integer NOT NULL DEFAULT 0,
    last_error   text,
    processed_at timestamptz
);
-- A state is accepted once: this index makes a replay fail even across processes.
CREATE UNIQUE INDEX authorization_codes_state_key ON cafe24.authorization_codes (state);
CREATE INDEX authorization_codes_pending_idx ON cafe24.authorization_codes (created_at)
    WHERE status IN ('pending', 'processing');

-- One row per mall; tokens are AES-256-GCM ciphertext under the key named by key_id.
CREATE TABLE cafe24.tokens (
    mall_id                  text PRIMARY KEY,
    shop_no                  text,
    user_id                  text,
    client_id                text NOT NULL,
    scopes                   text NOT NULL DEFAULT '',
    key_id                   text NOT NULL,
    access_token             bytea NOT NULL,
    access_expires_at        timestamptz NOT NULL,
    refresh_token            bytea NOT NULL,
    refresh_expires_at       timestamptz NOT NULL,
    issued_at                timestamptz,
    status                   text NOT NULL DEFAULT 'active'
                             CHECK (status IN ('active', 'needs_reauth', 'revoked')),
    version                  bigint NOT NULL DEFAULT 1,
    refresh_started_at       timestamptz,
    last_refreshed_at        timestamptz,
    last_error               text,
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tokens_refresh_expiry_idx ON cafe24.tokens (refresh_expires_at) WHERE status = 'active';

-- Webhook deliveries, stored before they are answered; dedupe_key makes retries idempotent.
CREATE TABLE cafe24.webhook_events (
    id            bigserial PRIMARY KEY,
    dedupe_key    text NOT NULL UNIQUE,
    mall_id       text NOT NULL,
    event_no      integer NOT NULL,
    trace_id      text,
    body          text NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    status        text NOT NULL DEFAULT 'received',
    attempts      integer NOT NULL DEFAULT 0,
    last_error    text,
    confirmed_at  timestamptz
);
CREATE INDEX webhook_events_status_idx ON cafe24.webhook_events (status, received_at);
