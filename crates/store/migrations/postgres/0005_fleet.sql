-- Fleet-wide pacing of the Admin API: one budget per mall, shared by every process of every
-- implementation. A row mirrors Cafe24's leaky bucket as the instant it would be empty
-- (epoch seconds, by the database's clock), so a call costs one short statement and no lock
-- outlives it.
CREATE TABLE cafe24.api_budgets (
    mall_id       text PRIMARY KEY,
    empty_at      double precision NOT NULL,
    paused_until  double precision NOT NULL DEFAULT 0
);

-- Takes one call from the mall's budget. wait_secs: how long the caller waits before sending
-- (the call is charged); -1 when that would exceed p_max_wait (nothing is charged). level: the
-- calls in the bucket when the call goes, itself included (or now, when refused).
CREATE FUNCTION cafe24.take_api_call(p_mall text, p_size double precision,
    p_drain_per_sec double precision, p_max_wait double precision)
RETURNS TABLE (wait_secs double precision, level double precision)
LANGUAGE plpgsql AS $$
DECLARE
    now_s    double precision := extract(epoch FROM clock_timestamp());
    empty_s  double precision;
    paused_s double precision;
    go_s     double precision;
BEGIN
    SELECT b.empty_at, b.paused_until INTO empty_s, paused_s
        FROM cafe24.api_budgets b WHERE b.mall_id = p_mall FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO cafe24.api_budgets (mall_id, empty_at) VALUES (p_mall, now_s)
            ON CONFLICT (mall_id) DO NOTHING;
        SELECT b.empty_at, b.paused_until INTO empty_s, paused_s
            FROM cafe24.api_budgets b WHERE b.mall_id = p_mall FOR UPDATE;
    END IF;
    empty_s := greatest(empty_s, now_s);
    go_s := greatest(now_s, empty_s - (p_size - 1) / p_drain_per_sec, paused_s);
    IF go_s - now_s > p_max_wait THEN
        RETURN QUERY SELECT -1::double precision, (empty_s - now_s) * p_drain_per_sec;
        RETURN;
    END IF;
    empty_s := greatest(empty_s, go_s) + 1 / p_drain_per_sec;
    UPDATE cafe24.api_budgets SET empty_at = empty_s WHERE mall_id = p_mall;
    RETURN QUERY SELECT go_s - now_s, (empty_s - go_s) * p_drain_per_sec;
END
$$;

-- What Cafe24 said: the bucket holds at least p_used calls (X-Api-Call-Limit, or the size after
-- a 429), and no call goes for p_pause_secs (X-Cafe24-*-Remain, a 429). Never lowers either.
CREATE FUNCTION cafe24.observe_api_limit(p_mall text, p_used double precision,
    p_drain_per_sec double precision, p_pause_secs double precision)
RETURNS void
LANGUAGE sql AS $$
    INSERT INTO cafe24.api_budgets AS b (mall_id, empty_at, paused_until)
    VALUES (p_mall,
            extract(epoch FROM clock_timestamp()) + coalesce(p_used, 0) / p_drain_per_sec,
            extract(epoch FROM clock_timestamp()) + coalesce(p_pause_secs, 0))
    ON CONFLICT (mall_id) DO UPDATE SET
        empty_at = greatest(b.empty_at, EXCLUDED.empty_at),
        paused_until = greatest(b.paused_until, EXCLUDED.paused_until);
$$;

-- A session that sets cafe24.code_notify = 'deferred' wakes exchange workers itself, after
-- its insert commits and coalesced with other inserts; a per-insert pg_notify serialises
-- every commit. Every other session notifies from the trigger, as before.
CREATE OR REPLACE FUNCTION cafe24.notify_authorization_code() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('cafe24.code_notify', true) IS DISTINCT FROM 'deferred' THEN
        PERFORM pg_notify('cafe24_authorization_codes', '');
    END IF;
    RETURN NULL;
END
$$;
