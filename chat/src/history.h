/* The message pipeline (issue 10; docs/protocol.md "History", docs/database.md "Redis"):
 * a client message is stored and published by one Lua script in Redis (sequence number,
 * idempotency key, the room's capped stream, the archive outbox, PUBLISH), and every
 * replica, this one too, delivers it from its subscription of the room's channel, in seq
 * order, filling gaps from the stream (XRANGE). Joining connections get welcome.last_seq and
 * one history frame consistent with the live stream; paging reads the stream and, for what
 * it no longer holds, the archive (archive.h). Service thread only. */
#ifndef CHAT_HISTORY_H
#define CHAT_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct chat_server;
struct chat_conn;
struct chat_room;
struct chat_req;
struct chat_archive;
struct cm_buf;
struct lws_vhost;

/* Largest `since` / `before` / `after` (2^53 - 1, exact in every JSON parser). */
#define CHAT_SEQ_MAX 9007199254740991ULL
/* Messages in the history frame right after welcome, without and with since. */
#define CHAT_HISTORY_INITIAL 50u
#define CHAT_HISTORY_RESUME_MAX 500u
/* Paging: limit range and default. */
#define CHAT_HISTORY_PAGE_MAX 100u
#define CHAT_HISTORY_PAGE_DEFAULT 50u
/* Entries fetched per XRANGE when a room fills a gap in its live stream. */
#define CHAT_HISTORY_GAP_FETCH 500u

struct chat_history;

/* The publish script (docs/database.md), for tests and SCRIPT LOAD. */
extern const char chat_history_script[];

/* Starts the Redis client (redis.h) with srv->cfg on vhost vh. archive may be NULL (no
 * archive: older pages and counter reseeding then only use Redis). Borrows srv and archive. */
struct chat_history *chat_history_new(struct chat_server *srv, struct lws_vhost *vh,
                                      struct chat_archive *archive);
/* Closes Redis (pending requests fail quietly). Call before the rooms are freed. NULL ok. */
void chat_history_free(struct chat_history *h);

/* True while messages can be stored and delivered (both Redis connections up, script
 * loaded): upgrades are refused with 503 otherwise. */
bool chat_history_available(const struct chat_history *h);

/* c has just joined c->room (ESTABLISHED; c->rid, c->uid, c->since set): c is held (no
 * output) until its welcome (with last_seq) and history frame are queued, first of all its
 * frames. Returns -1 when the room's id does not match the room's (c must be closed). */
int chat_history_join(struct chat_server *srv, struct chat_conn *c);
/* The room is about to be freed (its last connection left): unsubscribes. */
void chat_history_room_gone(struct chat_server *srv, struct chat_room *room);

/* A validated `message` from c: publishes it. Answers c only on failure (`unavailable`) or
 * for a retry of a stored client_id (the stored frame). */
void chat_history_publish(struct chat_server *srv, struct chat_conn *c, const struct chat_req *req);
/* A validated `history` paging request from c. */
void chat_history_page(struct chat_server *srv, struct chat_conn *c, const struct chat_req *req);

/* Hands finished archive answers to their requests (LWS_CALLBACK_EVENT_WAIT_CANCELLED). */
void chat_history_drain(struct chat_server *srv);

/* After every lws_service round: sends the Redis commands queued in it. */
void chat_history_flush(struct chat_history *h);

/* The Redis client (for presence.c: the same two connections). */
struct chat_redis;
struct chat_redis *chat_history_redis(const struct chat_history *h);

/* Prometheus text for /metrics. */
void chat_history_metrics(const struct chat_history *h, struct cm_buf *b);

/* Parses a handshake `since` value: 1..16 decimal digits, at most CHAT_SEQ_MAX. */
int chat_history_parse_since(const char *s, size_t len, uint64_t *out);

#endif
