#include "index.h"
#include "chat.h"

#include <stdlib.h>
#include <string.h>

#include "cm_alloc.h"
#include "cm_util.h"

#define INDEX_MIN_BUCKETS 64

static size_t conn_slot(uint64_t id, size_t nb)
{
    /* Fibonacci hashing: ids are consecutive, the multiply spreads them */
    return (size_t)((id * 0x9e3779b97f4a7c15ull) >> 20) & (nb - 1);
}

static size_t user_slot(const struct chat_index *ix, const char *uid, size_t nb)
{
    uint64_t h = 0xcbf29ce484222325ull ^ ix->seed; /* FNV-1a, seeded per process */
    for (; *uid; uid++)
        h = (h ^ (unsigned char)*uid) * 0x100000001b3ull;
    return (size_t)(h ^ (h >> 29)) & (nb - 1);
}

void chat_index_init(struct chat_index *ix)
{
    memset(ix, 0, sizeof *ix);
    ix->conn_nbuckets = ix->user_nbuckets = INDEX_MIN_BUCKETS;
    ix->conn_buckets = cm_xcalloc(ix->conn_nbuckets, sizeof *ix->conn_buckets);
    ix->user_buckets = cm_xcalloc(ix->user_nbuckets, sizeof *ix->user_buckets);
    cm_random_bytes((unsigned char *)&ix->seed, sizeof ix->seed);
}

void chat_index_free(struct chat_index *ix)
{
    for (size_t i = 0; ix->user_buckets && i < ix->user_nbuckets; i++) {
        struct chat_user *u = ix->user_buckets[i];
        while (u) {
            struct chat_user *next = u->hnext;
            free(u);
            u = next;
        }
    }
    free(ix->user_buckets);
    free(ix->conn_buckets);
    memset(ix, 0, sizeof *ix);
}

static void conn_grow(struct chat_index *ix)
{
    size_t nb = ix->conn_nbuckets * 2;
    struct chat_conn **b = cm_xcalloc(nb, sizeof *b);
    for (size_t i = 0; i < ix->conn_nbuckets; i++) {
        struct chat_conn *c = ix->conn_buckets[i];
        while (c) {
            struct chat_conn *next = c->idnext;
            size_t s = conn_slot(c->id, nb);
            c->idnext = b[s];
            b[s] = c;
            c = next;
        }
    }
    free(ix->conn_buckets);
    ix->conn_buckets = b;
    ix->conn_nbuckets = nb;
}

static void user_grow(struct chat_index *ix)
{
    size_t nb = ix->user_nbuckets * 2;
    struct chat_user **b = cm_xcalloc(nb, sizeof *b);
    for (size_t i = 0; i < ix->user_nbuckets; i++) {
        struct chat_user *u = ix->user_buckets[i];
        while (u) {
            struct chat_user *next = u->hnext;
            size_t s = user_slot(ix, u->uid, nb);
            u->hnext = b[s];
            b[s] = u;
            u = next;
        }
    }
    free(ix->user_buckets);
    ix->user_buckets = b;
    ix->user_nbuckets = nb;
}

struct chat_conn *chat_index_conn(const struct chat_index *ix, uint64_t id)
{
    for (struct chat_conn *c = ix->conn_buckets[conn_slot(id, ix->conn_nbuckets)]; c; c = c->idnext)
        if (c->id == id)
            return c;
    return NULL;
}

struct chat_user *chat_index_user(const struct chat_index *ix, const char *uid)
{
    for (struct chat_user *u = ix->user_buckets[user_slot(ix, uid, ix->user_nbuckets)]; u;
         u = u->hnext)
        if (!strcmp(u->uid, uid))
            return u;
    return NULL;
}

struct chat_user *chat_index_add(struct chat_index *ix, struct chat_conn *c, const char *uid,
                                 bool *is_new)
{
    if (ix->nconns >= ix->conn_nbuckets)
        conn_grow(ix);
    size_t s = conn_slot(c->id, ix->conn_nbuckets);
    c->idnext = ix->conn_buckets[s];
    ix->conn_buckets[s] = c;
    ix->nconns++;

    struct chat_user *u = chat_index_user(ix, uid);
    *is_new = !u;
    if (!u) {
        if (ix->nusers >= ix->user_nbuckets)
            user_grow(ix);
        u = cm_xcalloc(1, sizeof *u);
        size_t n = strlen(uid);
        memcpy(u->uid, uid, n < CM_UID_MAX ? n : CM_UID_MAX);
        size_t us = user_slot(ix, u->uid, ix->user_nbuckets);
        u->hnext = ix->user_buckets[us];
        ix->user_buckets[us] = u;
        ix->nusers++;
    }
    c->uprev = NULL;
    c->unext = u->conns;
    if (u->conns)
        u->conns->uprev = c;
    u->conns = c;
    u->nconns++;
    c->user = u;
    return u;
}

void chat_index_remove(struct chat_index *ix, struct chat_conn *c)
{
    struct chat_user *u = c->user;
    if (!u)
        return;
    for (struct chat_conn **pp = &ix->conn_buckets[conn_slot(c->id, ix->conn_nbuckets)]; *pp;
         pp = &(*pp)->idnext) {
        if (*pp == c) {
            *pp = c->idnext;
            ix->nconns--;
            break;
        }
    }
    c->idnext = NULL;
    if (c->uprev)
        c->uprev->unext = c->unext;
    else
        u->conns = c->unext;
    if (c->unext)
        c->unext->uprev = c->uprev;
    c->uprev = c->unext = NULL;
    c->user = NULL;
    if (--u->nconns)
        return;
    for (struct chat_user **pp = &ix->user_buckets[user_slot(ix, u->uid, ix->user_nbuckets)]; *pp;
         pp = &(*pp)->hnext) {
        if (*pp == u) {
            *pp = u->hnext;
            ix->nusers--;
            break;
        }
    }
    free(u);
}
