/* Indexes of the established connections: by connection id (so an event from another
 * thread or process can name one connection) and by user (the token's uid: every
 * connection of one user, in any room, and what they hold together). Hash maps with
 * chaining that double when they fill, so lookups are O(1) on average. Service thread
 * only; nothing here is thread-safe. */
#ifndef CHAT_INDEX_H
#define CHAT_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "cm_token.h"
#include "ratelimit.h"

struct chat_conn;

/* One user (uid) with at least one established connection, or with budget still held.
 * Owned by the index; freed when its last connection leaves. */
struct chat_user {
    struct chat_user *hnext;
    struct chat_conn *conns; /* linked through conn->unext / uprev */
    uint32_t nconns;
    size_t rx_bytes;            /* reassembly bytes held by all of the user's connections */
    struct chat_bucket msg;     /* message frames (CHAT_RATE_PER_SEC / CHAT_RATE_BURST) */
    struct chat_bucket typing;  /* typing frames (CHAT_TYPING_PER_SEC / CHAT_TYPING_BURST) */
    struct chat_bucket control; /* ping/pong/close (CHAT_CONTROL_PER_SEC / _BURST) */
    char uid[CM_UID_MAX + 1];
};

struct chat_index {
    struct chat_conn **conn_buckets;
    size_t conn_nbuckets, nconns;
    struct chat_user **user_buckets;
    size_t user_nbuckets, nusers;
    uint64_t seed; /* of the uid hash */
};

void chat_index_init(struct chat_index *ix);
/* Frees the users still held; connections are not owned and are not touched. */
void chat_index_free(struct chat_index *ix);

/* Adds c (c->id set, unique, not yet indexed) under its id and to the connections of user
 * uid (1..CM_UID_MAX bytes), creating the user when it has none. *is_new says whether the
 * user was created (its budgets are then for the caller to initialise). Sets c->user. */
struct chat_user *chat_index_add(struct chat_index *ix, struct chat_conn *c, const char *uid,
                                 bool *is_new);
/* Removes c from both indexes (no-op if it is not indexed); frees its user when that was
 * the user's last connection. Clears c->user. */
void chat_index_remove(struct chat_index *ix, struct chat_conn *c);
/* Borrowed connection with that id, or NULL. */
struct chat_conn *chat_index_conn(const struct chat_index *ix, uint64_t id);
/* Borrowed user, or NULL when uid has no connection. */
struct chat_user *chat_index_user(const struct chat_index *ix, const char *uid);

#endif
