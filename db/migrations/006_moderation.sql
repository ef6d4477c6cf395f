-- Moderation reaching live connections (docs/database.md "moderation_events"). Idempotent.
--
-- sessions.public_id: a random, non-secret id of a session (32 hex digits), put into the chat
-- tokens issued to it (claim sid) so that a logout can revoke exactly that session's tokens.
-- It is neither the cookie nor its SHA-256 (sessions.id): knowing it lets nobody in.
ALTER TABLE sessions
    ADD COLUMN IF NOT EXISTS public_id text NOT NULL
        DEFAULT replace(gen_random_uuid()::text, '-', '');
CREATE UNIQUE INDEX IF NOT EXISTS sessions_public_id_idx ON sessions (public_id);

-- The outbox of moderation events: a row is written in the same statement as the change it
-- reports (a ban, a member's removal from a room, a logout), so it exists exactly when the
-- change was committed; the website's sender thread XADDs it to the Redis stream
-- parley:moderation (read by every chat daemon) and deletes it once Redis has it. Rows wait
-- here while Redis is down. Room deletions go through room_deletions (migration 004), whose
-- rows the sender also publishes on parley:moderation as kind room_deleted.
-- uid is users.public_id, rid rooms.id, sid sessions.public_id; at_ms is the website's clock
-- (Unix ms) when the change was made: chat tokens with iat * 1000 <= at_ms are refused.
-- No foreign keys: the user, room or session may be gone when the row is sent.
CREATE TABLE IF NOT EXISTS moderation_events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind       text NOT NULL,
    uid        text NOT NULL,
    rid        bigint,
    sid        text,
    at_ms      bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE moderation_events DROP CONSTRAINT IF EXISTS moderation_events_kind;
ALTER TABLE moderation_events ADD CONSTRAINT moderation_events_kind
    CHECK ((kind = 'ban' AND rid IS NULL AND sid IS NULL)
        OR (kind = 'member_removed' AND rid IS NOT NULL AND sid IS NULL)
        OR (kind = 'logout' AND rid IS NULL AND sid IS NOT NULL));
ALTER TABLE moderation_events DROP CONSTRAINT IF EXISTS moderation_events_shape;
ALTER TABLE moderation_events ADD CONSTRAINT moderation_events_shape
    CHECK (uid ~ '^[A-Za-z0-9_-]{1,64}$' AND (sid IS NULL OR sid ~ '^[A-Za-z0-9_-]{1,64}$')
        AND at_ms > 0 AND (rid IS NULL OR rid > 0));
