-- Exchange queue: a claimed code carries its claim time, so a crashed worker's claim expires.
ALTER TABLE cafe24.authorization_codes ADD COLUMN claimed_at timestamptz;

-- Wake exchange workers (LISTEN cafe24_authorization_codes) as soon as a code is stored.
CREATE FUNCTION cafe24.notify_authorization_code() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('cafe24_authorization_codes', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER authorization_codes_notify AFTER INSERT ON cafe24.authorization_codes
    FOR EACH STATEMENT EXECUTE FUNCTION cafe24.notify_authorization_code();

-- What happened to a mall (installed, refreshed, needs_reauth, revoked), for hooks and
-- forwarders in any process.
CREATE TABLE cafe24.mall_events (
    id          bigserial PRIMARY KEY,
    mall_id     text NOT NULL,
    kind        text NOT NULL,
    detail      text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mall_events_mall_idx ON cafe24.mall_events (mall_id, id);
