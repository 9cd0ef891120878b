-- Webhook events become a dispatch queue: where each came from (received, or recovered from
-- Cafe24's delivery logs), when it may be tried next, who holds it, when it was dispatched.
ALTER TABLE cafe24.webhook_events
    ADD COLUMN source          text NOT NULL DEFAULT 'received',
    ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN claimed_at      timestamptz,
    ADD COLUMN dispatched_at   timestamptz;
CREATE INDEX webhook_events_due_idx ON cafe24.webhook_events (next_attempt_at)
    WHERE status IN ('received', 'retry');
