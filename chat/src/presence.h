/* Presence across replicas (issue 11; docs/protocol.md "Presence", docs/operations.md
 * "Several chat daemons"): a room's members are the users with a connection to it on ANY
 * chat daemon sharing one Redis. Each daemon keeps its own connections (room.h: members with
 * a tab count) and a view of the users the other daemons have in the room; a client is told
 * `join` when a user appears in the union of both, `leave` when the user's last tab anywhere
 * is gone, and welcome.members lists the union.
 *
 * In Redis (docs/database.md "Redis keys"), every room key under the room's hash tag and the
 * replica keys under {replicas}, so every script touches one Redis Cluster slot:
 *   parley:{r<rid>}:pres          hash  "<uid>|<replica>" -> display name
 *   parley:{r<rid>}:pres:<replica> set  uids that replica has in the room (for reaping)
 *   parley:{r<rid>}:pver          counter, one step per change (orders events vs snapshots)
 *   parley:{replicas}:alive       zset  replica -> expiry (ms, Redis TIME), refreshed every
 *                                 CHAT_PRESENCE_HEARTBEAT_MS to now + CHAT_PRESENCE_TTL_MS
 *   parley:{replicas}:rooms:<replica> set of rids the replica has members in
 * Changes are published on the room's message channel as "P<ver> J|L <replica> <uid> <name>",
 * typing hints as "T<replica> <uid> <name>" (never JSON, so history.c cannot take them for a
 * message).
 *
 * A replica whose expiry passes is dead: every survivor's heartbeat sees it, removes its
 * entries room by room (publishing a leave for each) and finally its alive entry, so its
 * users leave within CHAT_PRESENCE_TTL_MS + 2 x CHAT_PRESENCE_HEARTBEAT_MS of its last
 * heartbeat. A replica that loses its command connection (or finds its own entry expired)
 * takes a new random replica id and registers its members again under it before the old id
 * is let go: what it did while Redis could not hear it cannot leave ghosts behind.
 * Service thread only; never blocks (hiredis async, redis.h). */
#ifndef CHAT_PRESENCE_H
#define CHAT_PRESENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct chat_server;
struct chat_room;
struct chat_redis;
struct cm_buf;

/* Replica ids: 16 lowercase hex digits (64 random bits, cm_random_bytes). */
#define CHAT_REPLICA_ID_LEN 16
/* Members per EVAL when a room's local members are registered at once. */
#define CHAT_PRESENCE_BATCH 128
/* Rooms (re)registered per heartbeat after a new replica id; rooms of a dead replica
 * handled per round trip; dead replicas reaped at once; remote events kept while a room's
 * snapshot is loading (beyond: the snapshot is read again). */
#define CHAT_PRESENCE_ROOMS_PER_TICK 256
#define CHAT_PRESENCE_REAP_ROOMS 64
#define CHAT_PRESENCE_REAPS 4
#define CHAT_PRESENCE_QUEUE 4096
/* After its command connection came back, a replica waits CHAT_PRESENCE_TTL_MS plus this
 * (redis.c's longest reconnect backoff) before it reaps anyone: after a Redis outage every
 * expiry has passed, and the others need the time to reconnect and refresh theirs. */
#define CHAT_PRESENCE_RECONNECT_MS 5000

struct chat_presence;

/* Starts the heartbeat on srv->ctx (every CHAT_PRESENCE_HEARTBEAT_MS) over redis (borrowed,
 * must outlive it). Free with chat_presence_free before the rooms are freed. */
struct chat_presence *chat_presence_new(struct chat_server *srv, struct chat_redis *redis);
void chat_presence_free(struct chat_presence *p);

/* The replica id in use now (CHAT_REPLICA_ID_LEN hex digits). */
const char *chat_presence_id(const struct chat_presence *p);

/* conn.c: user uid (name) got its first local tab in room (rid = the token's room id).
 * Registers it in Redis. Returns true when the room's local clients must be told `join`
 * (no other replica has the user in the room). */
bool chat_presence_join(struct chat_server *srv, struct chat_room *room, int64_t rid,
                        const char *uid, const char *name);
/* conn.c: uid's last local tab in room closed (already unlinked from room->members).
 * Returns true when `leave` must be told (no other replica has the user either). */
bool chat_presence_leave(struct chat_server *srv, struct chat_room *room, const char *uid);

/* conn.c: uid is typing in room: the other replicas' clients are told too (a PUBLISH of
 * "T<replica> <uid> <name>" on the room's channel; fire and forget). */
void chat_presence_typing(struct chat_server *srv, struct chat_room *room, const char *uid,
                          const char *name);

/* history.c hooks: the room's channel is (re)subscribed (call before anything else is asked
 * for the room: the snapshot's answer then comes before the welcome is built); a "P..."
 * payload arrived on it; the room is being freed; the command connection is up or lost. */
void chat_presence_room_subscribed(struct chat_server *srv, struct chat_room *room);
void chat_presence_on_event(struct chat_server *srv, struct chat_room *room, const char *m,
                            size_t len);
void chat_presence_room_gone(struct chat_server *srv, struct chat_room *room);
void chat_presence_on_ready(struct chat_server *srv, bool ready);

/* protocol.c: appends ",{"id":..,"name":..}" to b for every user other replicas have in the
 * room who is not a local member (welcome.members); *first says whether nothing was
 * written to the list yet and is updated. */
void chat_presence_welcome_members(const struct chat_room *room, struct cm_buf *b, bool *first);

/* SIGTERM, after the connections closed: marks this replica's ids expired in Redis, so the
 * others remove whatever of its presence is left at their next heartbeat. NULL ok. */
void chat_presence_goodbye(struct chat_presence *p);
/* How long main.c waits at shutdown for the last Redis commands (the leaves) to be answered. */
#define CHAT_GOODBYE_MS 1000

/* Prometheus text for /metrics. NULL p writes nothing. */
void chat_presence_metrics(const struct chat_presence *p, struct cm_buf *b);

#endif
