-- The grant's install time: a late uninstall event (90077/90078) older than the grant it would
-- revoke is ignored instead of destroying a reinstall.
ALTER TABLE cafe24.tokens ADD COLUMN installed_at timestamptz;
UPDATE cafe24.tokens SET installed_at = created_at;
ALTER TABLE cafe24.tokens ALTER COLUMN installed_at SET NOT NULL,
                          ALTER COLUMN installed_at SET DEFAULT now();

-- When the event happened at Cafe24, when known (a delivery log's requested_time); else the
-- time it was received.
ALTER TABLE cafe24.webhook_events ADD COLUMN occurred_at timestamptz;

-- Claims: newest first, per mall counts for the pending-code cap.
CREATE INDEX authorization_codes_mall_pending_idx ON cafe24.authorization_codes (mall_id, created_at)
    WHERE status IN ('pending', 'processing');
