/* Events the website hands to the chat side through Redis streams:
 * * a room was deleted (stream `parley:room-deletions`, field `rid`, read by the chat daemon's
 *   archive with consumer group `deleters`, which deletes the room's history: docs/database.md);
 * * moderation events (stream `parley:moderation`, read by every chat daemon, which closes the
 *   affected connections and refuses the affected tokens: chat/src/moderation.h): kind ban,
 *   member_removed, logout from the table moderation_events (migration 006), and kind
 *   room_deleted for each room_deletions row. Fields: kind, uid, rid, sid, at_ms (text).
 *   The stream is trimmed by time (XADD MINID ~ now - WEB_EVENTS_MODERATION_KEEP_S), never by
 *   count, so every event a chat daemon needs to rebuild its revocations at start is there.
 *
 * A deletion is never lost when Redis is down: the DELETE of the room and the insert of its
 * row in the table room_deletions are one statement (WEB_EVENTS_DELETE_ROOM_SQL), so the
 * outbox row exists exactly when the room is gone. A sender thread (own PostgreSQL connection,
 * own synchronous hiredis connection with connect and command timeouts) XADDs the rows and
 * deletes them once Redis has answered; it retries every WEB_EVENTS_RETRY_MS and is woken at
 * once by web_events_room_deleted(). Several website replicas share the table safely (FOR
 * UPDATE SKIP LOCKED); an event sent twice (a crash between XADD and COMMIT) is harmless:
 * deleting a deleted room's history again deletes nothing. */
#ifndef WEB_EVENTS_H
#define WEB_EVENTS_H

#include <stdint.h>

#include "cm_token.h"

#define WEB_EVENTS_ROOM_DELETIONS "parley:room-deletions"
#define WEB_EVENTS_MODERATION "parley:moderation"
/* events older than this are trimmed from parley:moderation: twice the longest token life */
#define WEB_EVENTS_MODERATION_KEEP_S (2 * CM_TOKEN_TTL_MAX)
#define WEB_EVENTS_RETRY_MS 5000 /* outbox poll and retry period */
#define WEB_EVENTS_BATCH 100     /* outbox rows sent per transaction */

/* Deletes the room with id $1 and records the deletion in the outbox, atomically; returns the
 * rid (one row) or nothing when the room was already gone. */
#define WEB_EVENTS_DELETE_ROOM_SQL                                                                 \
    "WITH d AS (DELETE FROM rooms WHERE id = $1 RETURNING id) "                                    \
    "INSERT INTO room_deletions (rid) SELECT id FROM d RETURNING rid"

/* Starts the sender thread (reads web_cfg: DB_* and WEB_REDIS_*). 0 or -1 (logged). */
int web_events_start(void);
/* Stops and joins it (an outstanding Redis or PostgreSQL call ends within its timeout).
 * Safe when it was never started. */
void web_events_stop(void);
/* The room rid was deleted by WEB_EVENTS_DELETE_ROOM_SQL: wakes the sender now. Never blocks
 * on Redis or PostgreSQL; any thread. */
void web_events_room_deleted(int64_t rid);
/* A moderation_events row was committed: wakes the sender now (same rules). */
void web_events_wake(void);

#endif
