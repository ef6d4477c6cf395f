/* Moderation reaching live connections (docs/protocol.md "Moderation", docs/architecture.md).
 *
 * The website writes each moderation event into its PostgreSQL outbox in the same transaction
 * as the change and its sender thread XADDs it to the Redis stream CHAT_MOD_STREAM. Every chat
 * daemon reads that stream on its own non-blocking hiredis connection (redis.c, on the lws
 * loop): XREAD from the last id it saw, BLOCK CHAT_MODERATION_BLOCK_MS once caught up, so an
 * event reaches every replica within one round trip. At start it reads the whole stream from
 * 0-0 (the website trims it by time, MINID, to about twice CM_TOKEN_TTL_MAX) and rebuilds an
 * in-memory revocation table; after a reconnect it goes on from the last id, so no event is
 * missed while Redis keeps its data.
 *
 * Entry fields (Redis stream entry, all text): kind = ban | room_deleted | member_removed |
 * logout; uid (ban, member_removed, logout), rid (room_deleted, member_removed), sid (logout),
 * at_ms (the website's clock, Unix ms, when the change was made).
 *
 * A token is refused (at ESTABLISHED: an error frame, then the kind's close code) when a
 * revocation matches it and token.iat * 1000 <= at_ms: ban by uid (4003), member_removed by
 * (uid, rid) (4005), logout by sid (4001); room_deleted by rid whatever its iat (4004: a
 * room id is never reused). iat has 1-second granularity: a token issued in the same second
 * as the revocation, also after it (an unban, a re-add), is refused too; the next second's
 * token works. Revocations are kept CM_TOKEN_TTL_MAX + CM_TOKEN_LEEWAY + 60 s past at_ms
 * (every token they match has expired by then). The table holds at most
 * CHAT_MODERATION_MAX_ENTRIES; beyond it the oldest entry is dropped and every token issued
 * at or before its time is refused with 1013 (fail closed: the client fetches a new token).
 *
 * Until the first catch-up read has finished (the daemon has not yet seen every event of the
 * last hour) every new connection is closed 1013 right after the upgrade.
 *
 * Service thread only; nothing here is thread-safe. */
#ifndef CHAT_MODERATION_H
#define CHAT_MODERATION_H

#include <stdbool.h>
#include <stdint.h>

#include <libwebsockets.h>

#define CHAT_MOD_STREAM "parley:moderation"

/* Close codes (docs/protocol.md "Close codes"). */
#define CHAT_CLOSE_LOGGED_OUT 4001
#define CHAT_CLOSE_BANNED 4003
#define CHAT_CLOSE_ROOM_DELETED 4004
#define CHAT_CLOSE_REMOVED 4005

struct chat_server;
struct chat_conn;
struct chat_mod;
struct cm_buf;

/* Starts reading CHAT_MOD_STREAM with its own Redis client (srv->cfg's CHAT_REDIS_* and
 * CHAT_MODERATION_*) on vhost vh (which must carry the CHAT_REDIS_PROTOCOL protocol). Borrows
 * srv. Never fails (Redis need not be up). Free with chat_mod_free. */
struct chat_mod *chat_mod_new(struct chat_server *srv, struct lws_vhost *vh);
void chat_mod_free(struct chat_mod *m); /* NULL ok */
/* Writes the commands this service round queued (after every lws_service round). */
void chat_mod_flush(struct chat_mod *m);

/* The verdict on connection c (its token's uid, rid, sid and iat are set): 0 = admitted, else
 * the close code to use (one of CHAT_CLOSE_* above, or 1013 while not caught up or below the
 * fail-closed floor), with *code_out / *message_out the error frame to send first (static
 * strings). */
int chat_mod_check(struct chat_mod *m, const struct chat_conn *c, const char **code_out,
                   const char **message_out);

/* True once the stream has been read up to its end at least once. */
bool chat_mod_synced(const struct chat_mod *m);

/* Appends the moderation metrics (Prometheus text) for GET /metrics. */
void chat_mod_metrics(const struct chat_mod *m, struct cm_buf *b);

#endif
