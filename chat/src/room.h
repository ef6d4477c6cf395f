/* Room registry: rooms exist while someone is connected to them (created on first join,
 * freed on last leave). Members are counted per user (the token's uid, never the email), so
 * several tabs of one user are one member with a tab count. */
#ifndef CHAT_ROOM_H
#define CHAT_ROOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm_token.h"
#include "ring.h"

struct chat_conn;
struct chat_presence_room;

struct chat_member {
    struct chat_member *next;
    char *uid; /* public user id (cm_uid_valid) */
    char *name;
    uint32_t tabs;
};

/* One stored message: its seq and its frame exactly as stored (heap copy, owned by whoever
 * holds the struct). */
struct chat_stored_msg {
    uint64_t seq;
    char *m;
    size_t len;
};

struct chat_room {
    struct chat_room *hnext;
    char name[CM_ROOM_MAX + 1];
    struct chat_member *members;
    size_t nmembers;
    struct chat_conn *conns;
    size_t nconns;
    struct chat_ring ring;
    /* history.c: the Redis subscription and the delivery cursor */
    struct chat_room *rid_next; /* history.c's index by rid */
    int64_t rid;                /* rooms.id, 0 until the first join */
    uint64_t hgen;              /* incarnation: answers for an older one are dropped */
    uint64_t delivered;         /* last seq put into the ring */
    uint64_t seen_max;          /* highest seq seen on the channel */
    uint8_t hstate;             /* history.c enum hstate */
    bool synced;                /* delivered is known */
    bool syncing;               /* GET of the counter in flight */
    bool fetching;              /* a gap fetch (XRANGE) in flight */
    bool counter_known;         /* its seq counter exists in Redis (since the last connect) */
    /* history.c: the room's latest messages as delivered here, ascending and gap-free: seqs
     * recent_top - recent_n + 1 .. recent_top, at most CHAT_HISTORY_INITIAL (copies owned by
     * the room, freed with it); NULL until the room is synced */
    struct chat_stored_msg *recent;
    uint32_t recent_n;
    uint64_t recent_top;
    /* presence.c: the users other replicas have in the room (NULL until the first join) */
    struct chat_presence_room *pres;
};

struct chat_rooms {
    struct chat_room **buckets;
    size_t nbuckets;
    size_t count;
    uint32_t ring_size;
};

struct chat_rooms *chat_rooms_new(size_t nbuckets, uint32_t ring_size);
/* Frees every room still registered (their rings included). Accepts NULL. */
void chat_rooms_free(struct chat_rooms *reg);
/* Existing room or NULL. */
struct chat_room *chat_rooms_find(struct chat_rooms *reg, const char *name);
/* Existing room, or a new empty one (name must fit CM_ROOM_MAX). */
struct chat_room *chat_rooms_get(struct chat_rooms *reg, const char *name);
/* Frees room if nobody is in it; returns true if it was freed. */
bool chat_rooms_release(struct chat_rooms *reg, struct chat_room *room);

/* Adds one tab of user uid (display name name); *is_new says whether the user was not yet a member.
 */
struct chat_member *chat_room_member_add(struct chat_room *room, const char *uid, const char *name,
                                         bool *is_new);
/* Removes one tab. Returns true when it was the user's last one: the member is then unlinked
 * and the caller announces the leave and frees it with chat_member_free. */
bool chat_room_member_release(struct chat_room *room, struct chat_member *m);
void chat_member_free(struct chat_member *m);

void chat_room_link(struct chat_room *room, struct chat_conn *c);
void chat_room_unlink(struct chat_room *room, struct chat_conn *c);

#endif
