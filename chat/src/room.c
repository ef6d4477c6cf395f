#include "room.h"
#include "chat.h"

#include <stdlib.h>
#include <string.h>

#include "cm_log.h"
#include "cm_alloc.h"

static size_t hash_name(const char *s)
{
    size_t h = 5381; /* djb2: room names are short and validated, no adversarial flooding
                        is possible since each room needs a website-signed token */
    for (; *s; s++)
        h = h * 33 + (unsigned char)*s;
    return h;
}

struct chat_rooms *chat_rooms_new(size_t nbuckets, uint32_t ring_size)
{
    struct chat_rooms *reg = cm_xcalloc(1, sizeof *reg);
    reg->buckets = cm_xcalloc(nbuckets, sizeof *reg->buckets);
    reg->nbuckets = nbuckets;
    reg->ring_size = ring_size;
    return reg;
}

static void room_free(struct chat_room *room)
{
    struct chat_member *m = room->members;
    while (m) {
        struct chat_member *next = m->next;
        chat_member_free(m);
        m = next;
    }
    chat_ring_free(&room->ring);
    for (uint32_t i = 0; i < room->recent_n; i++)
        free(room->recent[i].m);
    free(room->recent);
    free(room);
}

void chat_rooms_free(struct chat_rooms *reg)
{
    if (!reg)
        return;
    for (size_t i = 0; i < reg->nbuckets; i++) {
        struct chat_room *r = reg->buckets[i];
        while (r) {
            struct chat_room *next = r->hnext;
            room_free(r);
            r = next;
        }
    }
    free(reg->buckets);
    free(reg);
}

struct chat_room *chat_rooms_find(struct chat_rooms *reg, const char *name)
{
    struct chat_room *r = reg->buckets[hash_name(name) % reg->nbuckets];
    for (; r; r = r->hnext)
        if (!strcmp(r->name, name))
            return r;
    return NULL;
}

struct chat_room *chat_rooms_get(struct chat_rooms *reg, const char *name)
{
    struct chat_room *r = chat_rooms_find(reg, name);
    if (r)
        return r;
    size_t n = strlen(name);
    if (n > CM_ROOM_MAX)
        return NULL;
    r = cm_xcalloc(1, sizeof *r);
    memcpy(r->name, name, n + 1);
    chat_ring_init(&r->ring, reg->ring_size);
    size_t b = hash_name(name) % reg->nbuckets;
    r->hnext = reg->buckets[b];
    reg->buckets[b] = r;
    reg->count++;
    return r;
}

bool chat_rooms_release(struct chat_rooms *reg, struct chat_room *room)
{
    if (room->nconns || room->nmembers)
        return false;
    struct chat_room **pp = &reg->buckets[hash_name(room->name) % reg->nbuckets];
    for (; *pp; pp = &(*pp)->hnext) {
        if (*pp == room) {
            *pp = room->hnext;
            reg->count--;
            room_free(room);
            return true;
        }
    }
    return false;
}

struct chat_member *chat_room_member_add(struct chat_room *room, const char *uid, const char *name,
                                         bool *is_new)
{
    for (struct chat_member *m = room->members; m; m = m->next) {
        if (!strcmp(m->uid, uid)) {
            m->tabs++;
            *is_new = false;
            return m;
        }
    }
    struct chat_member *m = cm_xcalloc(1, sizeof *m);
    m->uid = cm_xstrdup(uid);
    m->name = cm_xstrdup(name);
    m->tabs = 1;
    /* append, so the welcome lists members in the order they joined */
    struct chat_member **pp = &room->members;
    while (*pp)
        pp = &(*pp)->next;
    *pp = m;
    room->nmembers++;
    *is_new = true;
    return m;
}

bool chat_room_member_release(struct chat_room *room, struct chat_member *m)
{
    if (m->tabs > 1) {
        m->tabs--;
        return false;
    }
    for (struct chat_member **pp = &room->members; *pp; pp = &(*pp)->next) {
        if (*pp == m) {
            *pp = m->next;
            m->next = NULL;
            room->nmembers--;
            break;
        }
    }
    m->tabs = 0;
    return true;
}

void chat_member_free(struct chat_member *m)
{
    if (!m)
        return;
    free(m->uid);
    free(m->name);
    free(m);
}

void chat_room_link(struct chat_room *room, struct chat_conn *c)
{
    c->rprev = NULL;
    c->rnext = room->conns;
    if (room->conns)
        room->conns->rprev = c;
    room->conns = c;
    room->nconns++;
    c->room = room;
}

void chat_room_unlink(struct chat_room *room, struct chat_conn *c)
{
    if (c->rprev)
        c->rprev->rnext = c->rnext;
    else
        room->conns = c->rnext;
    if (c->rnext)
        c->rnext->rprev = c->rprev;
    c->rprev = c->rnext = NULL;
    room->nconns--;
}
