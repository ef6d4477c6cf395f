-- The outbox of room deletions (website/src/events.h): a row is inserted in the same statement
-- that deletes the room, so a deletion is recorded exactly when the room is gone, and removed
-- once Redis has the event (XADD parley:room-deletions rid <rid>), which the chat daemon's
-- archive consumes to delete the room's message history. Rows wait here while Redis is down.
-- No foreign key: the room row is gone by then (rid is rooms.id, an identity: never reused).
CREATE TABLE room_deletions (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rid        bigint NOT NULL,
    deleted_at timestamptz NOT NULL DEFAULT now()
);
