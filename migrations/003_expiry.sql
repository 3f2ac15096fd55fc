-- Expiry and purge. `expires_at` now holds when an undelivered message stops being offered (from
-- its MessageSent), and the new `expired_at` holds when its MessageExpired was written; until now
-- `expires_at` held the latter.

ALTER TABLE messages ADD COLUMN expired_at TIMESTAMPTZ;

-- Rows projected before expiry existed get what a rebuild gives their events: a MessageSent
-- without expires_at expires 30 days after acceptance (src/expiry/lifetime.ts).
UPDATE messages SET expired_at = CASE WHEN expired THEN expires_at END,
                    expires_at = accepted_at + interval '30 days';

ALTER TABLE messages ALTER COLUMN expires_at SET NOT NULL;

-- The expiry role's question: which undelivered messages are due.
CREATE INDEX messages_due ON messages (expires_at) WHERE NOT delivered AND NOT expired;

-- The purge's question: which messages were settled (delivered or expired) before a cut-off.
CREATE INDEX messages_settled ON messages ((COALESCE(delivered_at, expired_at))) WHERE delivered OR expired;
