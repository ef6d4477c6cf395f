/* Presence across replicas (presence.h). Per room, the users OTHER replicas have in it sit in
 * a small hash table of pres_user (uid -> the replicas that have the user); the local ones
 * are room->members. A change of either side that changes the union is told to the room's
 * local clients through chat_fanout_room, like any event. */
#include "presence.h"
#include "chat.h"
#include "fanout.h"
#include "protocol.h"
#include "redis.h"
#include "room.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm_alloc.h"
#include "cm_buf.h"
#include "cm_log.h"
#include "cm_util.h"

#define KEY_MAX 160
#define PR_BUCKETS 1024 /* presence rooms by rid */

/* KEYS: 1 pres hash, 2 the replica's uid set in the room, 3 pver. ARGV: 1 replica,
 * 2 channel, then uid, name pairs. A new (uid, replica) entry is published as a join. */
static const char join_script[] =
    "for i = 3, #ARGV, 2 do\n"
    "  if redis.call('HSETNX', KEYS[1], ARGV[i] .. '|' .. ARGV[1], ARGV[i+1]) == 1 then\n"
    "    redis.call('SADD', KEYS[2], ARGV[i])\n"
    "    local v = redis.call('INCR', KEYS[3])\n"
    "    redis.call('PUBLISH', ARGV[2], 'P' .. v .. ' J ' .. ARGV[1] .. ' ' .. ARGV[i] .. ' ' .. "
    "ARGV[i+1])\n"
    "  end\n"
    "end\n"
    "return 1\n";

/* Same KEYS; ARGV: 1 replica, 2 channel, then uids; with no uids: every uid the replica has
 * in the room (reaping a dead replica), and its set is deleted. */
static const char leave_script[] =
    "local u, from = ARGV, 3\n"
    "if #ARGV == 2 then u, from = redis.call('SMEMBERS', KEYS[2]), 1 end\n"
    "for i = from, #u do\n"
    "  local f = u[i] .. '|' .. ARGV[1]\n"
    "  local name = redis.call('HGET', KEYS[1], f)\n"
    "  if name then\n"
    "    redis.call('HDEL', KEYS[1], f)\n"
    "    redis.call('SREM', KEYS[2], u[i])\n"
    "    local v = redis.call('INCR', KEYS[3])\n"
    "    redis.call('PUBLISH', ARGV[2], 'P' .. v .. ' L ' .. ARGV[1] .. ' ' .. u[i] .. ' ' .. "
    "name)\n"
    "  end\n"
    "end\n"
    "if #ARGV == 2 then redis.call('DEL', KEYS[2]) end\n"
    "return 1\n";

/* KEYS: 1 pres hash, 2 pver. Returns {ver, {field, name, ...}} read at one instant. */
static const char snapshot_script[] = "local v = redis.call('GET', KEYS[2]) or '0'\n"
                                      "return {v, redis.call('HGETALL', KEYS[1])}\n";

/* KEYS: 1 alive zset. ARGV: 1 ttl ms, 2 this replica's id, 3 '1' if it was registered
 * before, 4 an older id of this replica kept alive meanwhile ('' none). Returns {lost, dead}:
 * lost 1 when the id had expired (the others may be reaping it: it is not refreshed), dead
 * up to 8 ids whose expiry has passed. */
static const char heartbeat_script[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local s = redis.call('ZSCORE', KEYS[1], ARGV[2])\n"
    "local lost = 0\n"
    "if ARGV[3] == '1' and ((not s) or tonumber(s) < now) then lost = 1 end\n"
    "if lost == 0 then\n"
    "  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[2])\n"
    "  if ARGV[4] ~= '' then redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[4]) end\n"
    "end\n"
    "return {lost, redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now, 'LIMIT', 0, 8)}\n";

/* KEYS: 1 alive zset, 2 the dead replica's room set. ARGV: 1 the dead id. Forgets it if it
 * is still expired and has no rooms left (a replica that came back is left alone). */
static const char forget_script[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local s = redis.call('ZSCORE', KEYS[1], ARGV[1])\n"
    "if s and tonumber(s) < now and redis.call('SCARD', KEYS[2]) == 0 then\n"
    "  redis.call('ZREM', KEYS[1], ARGV[1])\n"
    "  return 1\n"
    "end\n"
    "return 0\n";

static const char alive_key[] = "parley:{replicas}:alive";

struct pres_user {
    struct pres_user *next;
    char uid[CM_UID_MAX + 1];
    char *name;
    uint32_t nrep;
    char (*reps)[CHAT_REPLICA_ID_LEN + 1];
};

struct pev { /* a remote event kept while the room's snapshot loads */
    char *m;
    size_t len;
};

struct chat_presence_room {
    struct chat_presence_room *rid_next;
    struct chat_room *room;
    int64_t rid;
    uint64_t gen;
    struct pres_user **b;
    size_t nb, nusers;
    uint64_t ver;  /* highest version applied */
    bool loaded;   /* a snapshot was applied */
    bool loading;  /* a snapshot is in flight */
    bool overflow; /* events were dropped while loading: read the snapshot again */
    bool asserted; /* local members registered under the current replica id */
    bool indexed;  /* the room is in the replica's room set */
    struct pev *q;
    size_t nq;
};

struct reap {
    char id[CHAT_REPLICA_ID_LEN + 1];
    bool busy;
    unsigned inflight; /* leave scripts of this round */
};

struct pres_stats {
    uint64_t heartbeats, heartbeat_failures, reincarnations, reaped_replicas, reaped_rooms, events,
        joins_told, leaves_told, snapshots, commands_failed, typing;
};

struct chat_presence {
    struct chat_server *srv;
    struct chat_redis *redis;
    char id[CHAT_REPLICA_ID_LEN + 1];
    char old[CHAT_REPLICA_ID_LEN + 1]; /* previous id kept alive until re-registered, or "" */
    bool registered;                   /* a heartbeat of id succeeded */
    bool ever_ready;
    bool reincarnate; /* take a new id at the next tick */
    bool hb_inflight;
    bool reconnected;      /* the command connection was lost at least once */
    int64_t healthy_since; /* monotonic ms of the first heartbeat answered on this connection */
    uint64_t gen;
    struct chat_presence_room *rooms[PR_BUCKETS];
    struct reap reaps[CHAT_PRESENCE_REAPS];
    lws_sorted_usec_list_t tick;
    struct pres_stats st;
};

/* ---- small helpers --------------------------------------------------------------------- */

static struct chat_presence *P(struct chat_server *srv)
{
    return srv->pres;
}

static void new_id(char out[CHAT_REPLICA_ID_LEN + 1])
{
    unsigned char r[CHAT_REPLICA_ID_LEN / 2];
    static const char hex[] = "0123456789abcdef";
    cm_random_bytes(r, sizeof r);
    for (size_t i = 0; i < sizeof r; i++) {
        out[2 * i] = hex[r[i] >> 4];
        out[2 * i + 1] = hex[r[i] & 15];
    }
    out[CHAT_REPLICA_ID_LEN] = '\0';
}

static size_t room_key(char *out, int64_t rid, const char *suffix, const char *rep)
{
    int n = rep ? snprintf(out, KEY_MAX, "parley:{r%" PRId64 "}:%s:%s", rid, suffix, rep)
                : snprintf(out, KEY_MAX, "parley:{r%" PRId64 "}:%s", rid, suffix);
    return n < 0 ? 0 : (size_t)n;
}

static size_t rooms_key(char *out, const char *rep)
{
    int n = snprintf(out, KEY_MAX, "parley:{replicas}:rooms:%s", rep);
    return n < 0 ? 0 : (size_t)n;
}

static size_t hash_uid(const char *s)
{
    size_t h = 5381;
    for (; *s; s++)
        h = h * 33 + (unsigned char)*s;
    return h;
}

static bool local_has(const struct chat_room *room, const char *uid)
{
    for (const struct chat_member *m = room->members; m; m = m->next)
        if (!strcmp(m->uid, uid))
            return true;
    return false;
}

static struct pres_user *user_find(const struct chat_presence_room *pr, const char *uid)
{
    if (!pr || !pr->nb)
        return NULL;
    for (struct pres_user *u = pr->b[hash_uid(uid) % pr->nb]; u; u = u->next)
        if (!strcmp(u->uid, uid))
            return u;
    return NULL;
}

static void user_free(struct pres_user *u)
{
    free(u->name);
    free(u->reps);
    free(u);
}

static void table_free(struct pres_user **b, size_t nb)
{
    for (size_t i = 0; i < nb; i++)
        for (struct pres_user *u = b[i], *next; u; u = next) {
            next = u->next;
            user_free(u);
        }
    free(b);
}

static void table_grow(struct chat_presence_room *pr)
{
    size_t nb = pr->nb ? pr->nb * 4 : 16;
    struct pres_user **b = cm_xcalloc(nb, sizeof *b);
    for (size_t i = 0; i < pr->nb; i++)
        for (struct pres_user *u = pr->b[i], *next; u; u = next) {
            next = u->next;
            size_t k = hash_uid(u->uid) % nb;
            u->next = b[k];
            b[k] = u;
        }
    free(pr->b);
    pr->b = b;
    pr->nb = nb;
}

/* Adds replica rep to uid's entry; returns true when the user is new to the table. */
static bool user_add(struct chat_presence_room *pr, const char *uid, const char *name,
                     const char *rep)
{
    struct pres_user *u = user_find(pr, uid);
    bool is_new = !u;
    if (!u) {
        if (pr->nusers >= pr->nb * 2)
            table_grow(pr);
        u = cm_xcalloc(1, sizeof *u);
        snprintf(u->uid, sizeof u->uid, "%s", uid);
        u->name = cm_xstrdup(name);
        size_t k = hash_uid(uid) % pr->nb;
        u->next = pr->b[k];
        pr->b[k] = u;
        pr->nusers++;
    }
    for (uint32_t i = 0; i < u->nrep; i++)
        if (!strcmp(u->reps[i], rep))
            return is_new;
    u->reps = cm_xrealloc(u->reps, (u->nrep + 1) * sizeof *u->reps);
    snprintf(u->reps[u->nrep++], CHAT_REPLICA_ID_LEN + 1, "%s", rep);
    return is_new;
}

/* Removes replica rep from uid's entry; returns true when the user is gone from the table
 * (*name then gets the name, caller frees it). */
static bool user_del(struct chat_presence_room *pr, const char *uid, const char *rep, char **name)
{
    if (!pr->nb)
        return false;
    struct pres_user **pp = &pr->b[hash_uid(uid) % pr->nb];
    for (; *pp; pp = &(*pp)->next)
        if (!strcmp((*pp)->uid, uid))
            break;
    struct pres_user *u = *pp;
    if (!u)
        return false;
    for (uint32_t i = 0; i < u->nrep; i++)
        if (!strcmp(u->reps[i], rep)) {
            memcpy(u->reps[i], u->reps[u->nrep - 1], sizeof u->reps[i]);
            u->nrep--;
            break;
        }
    if (u->nrep)
        return false;
    *pp = u->next;
    pr->nusers--;
    *name = u->name;
    u->name = NULL;
    user_free(u);
    return true;
}

static void tell(struct chat_server *srv, struct chat_room *room, const char *type, const char *uid,
                 const char *name)
{
    struct chat_presence *p = P(srv);
    if (type[0] == 'j')
        p->st.joins_told++;
    else
        p->st.leaves_told++;
    chat_fanout_room(srv, room, chat_proto_user_event(type, uid, name));
}

static bool own_id(const struct chat_presence *p, const char *rep)
{
    return !strcmp(rep, p->id) || (p->old[0] && !strcmp(rep, p->old));
}

/* ---- rooms ----------------------------------------------------------------------------- */

static struct chat_presence_room *pr_by_rid(struct chat_presence *p, int64_t rid)
{
    for (struct chat_presence_room *r = p->rooms[(uint64_t)rid % PR_BUCKETS]; r; r = r->rid_next)
        if (r->rid == rid)
            return r;
    return NULL;
}

static struct chat_presence_room *pr_get(struct chat_presence *p, struct chat_room *room,
                                         int64_t rid)
{
    if (room->pres)
        return room->pres;
    struct chat_presence_room *pr = cm_xcalloc(1, sizeof *pr);
    pr->room = room;
    pr->rid = rid;
    pr->gen = ++p->gen;
    /* a new room's members go to Redis one by one from the start, unless the replica is
     * between two ids (then the next tick registers the room with the rest) */
    pr->asserted = !p->reincarnate && chat_redis_ready(p->redis);
    size_t k = (uint64_t)rid % PR_BUCKETS;
    pr->rid_next = p->rooms[k];
    p->rooms[k] = pr;
    room->pres = pr;
    return pr;
}

static void queue_free(struct chat_presence_room *pr)
{
    for (size_t i = 0; i < pr->nq; i++)
        free(pr->q[i].m);
    free(pr->q);
    pr->q = NULL;
    pr->nq = 0;
}

static void pr_free(struct chat_presence *p, struct chat_presence_room *pr)
{
    struct chat_presence_room **pp = &p->rooms[(uint64_t)pr->rid % PR_BUCKETS];
    for (; *pp; pp = &(*pp)->rid_next)
        if (*pp == pr) {
            *pp = pr->rid_next;
            break;
        }
    table_free(pr->b, pr->nb);
    queue_free(pr);
    if (pr->room)
        pr->room->pres = NULL;
    free(pr);
}

/* ---- commands -------------------------------------------------------------------------- */

enum cmd_kind { C_PLAIN, C_IGNORE, C_SNAPSHOT, C_HEARTBEAT, C_REAP_LIST, C_REAP_ROOM, C_FORGET };

struct cmd {
    struct chat_presence *p;
    enum cmd_kind kind;
    int64_t rid;
    uint64_t gen;
    int reap; /* index into p->reaps */
    char rep[CHAT_REPLICA_ID_LEN + 1];
};

static void on_reply(struct chat_redis *r, const redisReply *rep, void *ud);

/* Sends argv; a command that cannot be sent or fails makes this replica take a new id (its
 * state in Redis is then unknown). */
static int send_cmd(struct chat_presence *p, struct cmd *c, int argc, const char **argv,
                    const size_t *lens)
{
    if (chat_redis_command(p->redis, on_reply, c, argc, argv, lens) < 0) {
        p->st.commands_failed++;
        if (c->kind == C_PLAIN)
            p->reincarnate = true;
        else if (c->kind == C_HEARTBEAT)
            p->hb_inflight = false;
        else if (c->kind == C_SNAPSHOT) {
            struct chat_presence_room *pr = pr_by_rid(p, c->rid);
            if (pr && pr->gen == c->gen)
                pr->loading = false;
        } else if (c->kind == C_REAP_LIST || c->kind == C_FORGET) {
            p->reaps[c->reap].busy = false;
        }
        free(c);
        return -1;
    }
    return 0;
}

static struct cmd *cmd_new(struct chat_presence *p, enum cmd_kind kind)
{
    struct cmd *c = cm_xcalloc(1, sizeof *c);
    c->p = p;
    c->kind = kind;
    return c;
}

/* EVAL of join_script / leave_script for room rid and replica rep with n uid (+ name) args. */
static int eval_members(struct chat_presence *p, const char *script, int64_t rid, const char *rep,
                        const char **args, size_t nargs, struct cmd *c)
{
    char kh[KEY_MAX], ks[KEY_MAX], kv[KEY_MAX], ch[KEY_MAX];
    size_t lh = room_key(kh, rid, "pres", NULL), ls = room_key(ks, rid, "pres", rep);
    size_t lv = room_key(kv, rid, "pver", NULL), lc = room_key(ch, rid, "pub", NULL);
    size_t argc = 8 + nargs;
    const char **argv = cm_xmalloc(argc * sizeof *argv);
    size_t *lens = cm_xmalloc(argc * sizeof *lens);
    size_t n = 0;
    argv[n] = "EVAL", lens[n++] = 4;
    argv[n] = script, lens[n++] = strlen(script);
    argv[n] = "3", lens[n++] = 1;
    argv[n] = kh, lens[n++] = lh;
    argv[n] = ks, lens[n++] = ls;
    argv[n] = kv, lens[n++] = lv;
    argv[n] = rep, lens[n++] = strlen(rep);
    argv[n] = ch, lens[n++] = lc;
    for (size_t i = 0; i < nargs; i++)
        argv[n] = args[i], lens[n++] = strlen(args[i]);
    int rc = send_cmd(p, c, (int)n, argv, lens);
    free(argv);
    free(lens);
    return rc;
}

static void index_room(struct chat_presence *p, int64_t rid, bool add)
{
    char k[KEY_MAX], v[24];
    size_t kl = rooms_key(k, p->id);
    int vl = snprintf(v, sizeof v, "%" PRId64, rid);
    const char *argv[3] = {add ? "SADD" : "SREM", k, v};
    size_t lens[3] = {4, kl, (size_t)vl};
    (void)send_cmd(p, cmd_new(p, C_PLAIN), 3, argv, lens);
}

/* Registers all local members of pr under the current id (in batches). */
static void assert_room(struct chat_presence *p, struct chat_presence_room *pr)
{
    struct chat_room *room = pr->room;
    pr->asserted = true;
    if (!room || !room->members)
        return;
    index_room(p, pr->rid, true);
    pr->indexed = true;
    const char *args[2 * CHAT_PRESENCE_BATCH];
    size_t n = 0;
    for (const struct chat_member *m = room->members; m; m = m->next) {
        args[n++] = m->uid;
        args[n++] = m->name;
        if (n == 2 * CHAT_PRESENCE_BATCH || !m->next) {
            (void)eval_members(p, join_script, pr->rid, p->id, args, n, cmd_new(p, C_PLAIN));
            n = 0;
        }
    }
}

/* ---- snapshots and events -------------------------------------------------------------- */

/* Applies one event "P<ver> J|L <rep> <uid> <name>" to pr (loaded). */
static void apply_event(struct chat_presence *p, struct chat_presence_room *pr, uint64_t ver,
                        char kind, const char *rep, const char *uid, const char *name)
{
    if (ver && ver <= pr->ver)
        return; /* the snapshot already has it */
    if (ver > pr->ver)
        pr->ver = ver;
    if (own_id(p, rep) || !pr->room)
        return;
    struct chat_room *room = pr->room;
    if (kind == 'J') {
        if (user_add(pr, uid, name, rep) && !local_has(room, uid))
            tell(p->srv, room, "join", uid, name);
    } else {
        char *nm = NULL;
        if (user_del(pr, uid, rep, &nm) && !local_has(room, uid))
            tell(p->srv, room, "leave", uid, nm ? nm : name);
        free(nm);
    }
}

/* Parses "P<ver> <J|L> <rep> <uid> <name>" in place (m is NUL-terminated copy). */
static int parse_event(char *m, uint64_t *ver, char *kind, char **rep, char **uid, char **name)
{
    if (m[0] != 'P')
        return -1;
    char *s = m + 1, *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end != ' ' || (end[1] != 'J' && end[1] != 'L') || end[2] != ' ')
        return -1;
    *ver = v;
    *kind = end[1];
    *rep = end + 3;
    char *sp = strchr(*rep, ' ');
    if (!sp || sp - *rep != CHAT_REPLICA_ID_LEN)
        return -1;
    *sp = '\0';
    *uid = sp + 1;
    sp = strchr(*uid, ' ');
    if (!sp || !cm_uid_valid(*uid, (size_t)(sp - *uid)))
        return -1;
    *sp = '\0';
    *name = sp + 1;
    return 0;
}

static void handle_event(struct chat_presence *p, struct chat_presence_room *pr, const char *m,
                         size_t len)
{
    char *copy = cm_xstrndup(m, len);
    uint64_t ver;
    char kind, *rep, *uid, *name;
    if (parse_event(copy, &ver, &kind, &rep, &uid, &name) == 0)
        apply_event(p, pr, ver, kind, rep, uid, name);
    free(copy);
}

static void snapshot(struct chat_presence *p, struct chat_presence_room *pr)
{
    if (pr->loading || !chat_redis_ready(p->redis))
        return;
    char kh[KEY_MAX], kv[KEY_MAX];
    size_t lh = room_key(kh, pr->rid, "pres", NULL), lv = room_key(kv, pr->rid, "pver", NULL);
    const char *argv[5] = {"EVAL", snapshot_script, "2", kh, kv};
    size_t lens[5] = {4, strlen(snapshot_script), 1, lh, lv};
    struct cmd *c = cmd_new(p, C_SNAPSHOT);
    c->rid = pr->rid;
    c->gen = pr->gen;
    pr->loading = true;
    pr->overflow = false;
    (void)send_cmd(p, c, 5, argv, lens);
}

/* The snapshot's answer: the new table replaces the old one; who appears or disappears from
 * the union is told; events that came meanwhile and are newer are applied after it. */
static void on_snapshot(struct chat_presence *p, struct chat_presence_room *pr,
                        const redisReply *rep)
{
    pr->loading = false;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
        rep->element[0]->type != REDIS_REPLY_STRING || rep->element[1]->type != REDIS_REPLY_ARRAY)
        return; /* the next tick asks again */
    p->st.snapshots++;
    struct chat_presence_room nw = {0};
    const redisReply *h = rep->element[1];
    char field[CM_UID_MAX + CHAT_REPLICA_ID_LEN + 2];
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        const redisReply *f = h->element[i], *v = h->element[i + 1];
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
            f->len >= sizeof field)
            continue;
        memcpy(field, f->str, f->len);
        field[f->len] = '\0';
        char *bar = strchr(field, '|');
        if (!bar || strlen(bar + 1) != CHAT_REPLICA_ID_LEN)
            continue;
        *bar = '\0';
        if (!cm_uid_valid(field, strlen(field)) || own_id(p, bar + 1))
            continue;
        char *name = cm_xstrndup(v->str, v->len);
        (void)user_add(&nw, field, name, bar + 1);
        free(name);
    }
    struct chat_room *room = pr->room;
    /* the first snapshot of a room is news only to connections that already have their
     * welcome (it was built without it); the others find the users in their welcome */
    bool announce = pr->loaded;
    for (const struct chat_conn *c = room ? room->conns : NULL; c && !announce; c = c->rnext)
        announce = !c->held;
    if (pr->loaded && room) {
        for (size_t i = 0; i < pr->nb; i++)
            for (struct pres_user *u = pr->b[i]; u; u = u->next)
                if (!user_find(&nw, u->uid) && !local_has(room, u->uid))
                    tell(p->srv, room, "leave", u->uid, u->name);
    }
    if (room && announce)
        for (size_t i = 0; i < nw.nb; i++)
            for (struct pres_user *u = nw.b[i]; u; u = u->next)
                if (!user_find(pr, u->uid) && !local_has(room, u->uid))
                    tell(p->srv, room, "join", u->uid, u->name);
    table_free(pr->b, pr->nb);
    pr->b = nw.b;
    pr->nb = nw.nb;
    pr->nusers = nw.nusers;
    pr->ver = strtoull(rep->element[0]->str, NULL, 10);
    pr->loaded = true;
    struct pev *q = pr->q;
    size_t nq = pr->nq;
    pr->q = NULL;
    pr->nq = 0;
    for (size_t i = 0; i < nq; i++) {
        handle_event(p, pr, q[i].m, q[i].len);
        free(q[i].m);
    }
    free(q);
    if (pr->overflow)
        snapshot(p, pr);
}

/* ---- heartbeat and reaping ------------------------------------------------------------- */

static void reap_step(struct chat_presence *p, int i);

static void reap_start(struct chat_presence *p, const char *id)
{
    int freei = -1;
    for (int i = 0; i < CHAT_PRESENCE_REAPS; i++) {
        if (p->reaps[i].busy && !strcmp(p->reaps[i].id, id))
            return;
        if (!p->reaps[i].busy && freei < 0)
            freei = i;
    }
    if (freei < 0)
        return; /* the next heartbeat lists it again */
    struct reap *r = &p->reaps[freei];
    snprintf(r->id, sizeof r->id, "%s", id);
    r->busy = true;
    r->inflight = 0;
    cm_info("presence: replica %s missed its heartbeats; removing its members", id);
    reap_step(p, freei);
}

/* One round: up to CHAT_PRESENCE_REAP_ROOMS of the dead replica's rooms. */
static void reap_step(struct chat_presence *p, int i)
{
    struct reap *r = &p->reaps[i];
    char k[KEY_MAX], n[8];
    size_t kl = rooms_key(k, r->id);
    int nl = snprintf(n, sizeof n, "%d", CHAT_PRESENCE_REAP_ROOMS);
    const char *argv[3] = {"SRANDMEMBER", k, n};
    size_t lens[3] = {11, kl, (size_t)nl};
    struct cmd *c = cmd_new(p, C_REAP_LIST);
    c->reap = i;
    (void)send_cmd(p, c, 3, argv, lens);
}

static void reap_list(struct chat_presence *p, int i, const redisReply *rep)
{
    struct reap *r = &p->reaps[i];
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        r->busy = false;
        return;
    }
    if (rep->elements == 0) {
        char k[KEY_MAX];
        size_t kl = rooms_key(k, r->id);
        const char *argv[6] = {"EVAL", forget_script, "2", alive_key, k, r->id};
        size_t lens[6] = {4, strlen(forget_script), 1, strlen(alive_key), kl, strlen(r->id)};
        struct cmd *c = cmd_new(p, C_FORGET);
        c->reap = i;
        (void)send_cmd(p, c, 6, argv, lens);
        return;
    }
    for (size_t j = 0; j < rep->elements; j++) {
        const redisReply *e = rep->element[j];
        char buf[24];
        if (e->type != REDIS_REPLY_STRING || e->len == 0 || e->len >= sizeof buf)
            continue;
        memcpy(buf, e->str, e->len);
        buf[e->len] = '\0';
        char *end;
        long long rid = strtoll(buf, &end, 10);
        if (*end || rid <= 0)
            continue;
        struct cmd *c = cmd_new(p, C_REAP_ROOM);
        c->reap = i;
        c->rid = rid;
        if (eval_members(p, leave_script, rid, r->id, NULL, 0, c) < 0)
            break; /* the next heartbeat starts again */
        r->inflight++;
    }
    if (!r->inflight)
        r->busy = false;
}

static void reap_room_done(struct chat_presence *p, int i, int64_t rid, bool ok)
{
    struct reap *r = &p->reaps[i];
    if (ok) {
        p->st.reaped_rooms++;
        char k[KEY_MAX], v[24];
        size_t kl = rooms_key(k, r->id);
        int vl = snprintf(v, sizeof v, "%" PRId64, rid);
        const char *argv[3] = {"SREM", k, v};
        size_t lens[3] = {4, kl, (size_t)vl};
        (void)send_cmd(p, cmd_new(p, C_IGNORE), 3, argv, lens);
    }
    if (r->inflight && --r->inflight == 0) {
        if (ok)
            reap_step(p, i);
        else
            r->busy = false;
    }
}

static void heartbeat(struct chat_presence *p)
{
    if (p->hb_inflight)
        return;
    char ttl[24];
    int tl = snprintf(ttl, sizeof ttl, "%lld", p->srv->cfg->presence_ttl_ms);
    const char *argv[8] = {"EVAL", heartbeat_script,          "1",   alive_key, ttl,
                           p->id,  p->registered ? "1" : "0", p->old};
    size_t lens[8] = {4,          strlen(heartbeat_script),
                      1,          strlen(alive_key),
                      (size_t)tl, strlen(p->id),
                      1,          strlen(p->old)};
    p->hb_inflight = true;
    (void)send_cmd(p, cmd_new(p, C_HEARTBEAT), 8, argv, lens);
}

static void on_heartbeat(struct chat_presence *p, const redisReply *rep)
{
    p->hb_inflight = false;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
        rep->element[0]->type != REDIS_REPLY_INTEGER ||
        rep->element[1]->type != REDIS_REPLY_ARRAY) {
        p->st.heartbeat_failures++;
        return;
    }
    p->st.heartbeats++;
    if (rep->element[0]->integer == 1) {
        /* our entry expired (a stall longer than the TTL): the others may be removing our
         * members; come back under a new id */
        cm_warn("presence: replica id %s expired in Redis; registering again", p->id);
        p->old[0] = '\0';
        p->reincarnate = true;
        return;
    }
    p->registered = true;
    int64_t now = cm_mono_ms();
    if (!p->healthy_since)
        p->healthy_since = now;
    /* after a Redis outage every replica's expiry has passed: give the others the time to
     * reconnect (redis.c's backoff reaches CHAT_PRESENCE_RECONNECT_MS) and refresh before
     * calling anyone dead, or everybody would leave and join again */
    if (p->reconnected &&
        now - p->healthy_since < p->srv->cfg->presence_ttl_ms + CHAT_PRESENCE_RECONNECT_MS)
        return;
    const redisReply *dead = rep->element[1];
    for (size_t i = 0; i < dead->elements; i++) {
        const redisReply *e = dead->element[i];
        if (e->type != REDIS_REPLY_STRING || e->len != CHAT_REPLICA_ID_LEN)
            continue;
        char id[CHAT_REPLICA_ID_LEN + 1];
        memcpy(id, e->str, e->len);
        id[e->len] = '\0';
        if (!own_id(p, id))
            reap_start(p, id);
    }
}

static void on_reply(struct chat_redis *r, const redisReply *rep, void *ud)
{
    (void)r;
    struct cmd *c = ud;
    struct chat_presence *p = c->p;
    bool ok = rep && rep->type != REDIS_REPLY_ERROR;
    if (rep && rep->type == REDIS_REPLY_ERROR)
        cm_warn("presence: redis: %.*s", (int)rep->len, rep->str);
    switch (c->kind) {
    case C_IGNORE:
        break;
    case C_PLAIN:
        if (!ok) {
            p->st.commands_failed++;
            p->reincarnate = true;
        }
        break;
    case C_SNAPSHOT: {
        struct chat_presence_room *pr = pr_by_rid(p, c->rid);
        if (pr && pr->gen == c->gen)
            on_snapshot(p, pr, ok ? rep : NULL);
        break;
    }
    case C_HEARTBEAT:
        on_heartbeat(p, ok ? rep : NULL);
        break;
    case C_REAP_LIST:
        reap_list(p, c->reap, ok ? rep : NULL);
        break;
    case C_REAP_ROOM:
        reap_room_done(p, c->reap, c->rid, ok);
        break;
    case C_FORGET:
        if (ok && rep->type == REDIS_REPLY_INTEGER && rep->integer == 1) {
            p->st.reaped_replicas++;
            cm_info("presence: replica %s removed", p->reaps[c->reap].id);
        }
        p->reaps[c->reap].busy = false;
        break;
    }
    free(c);
}

static void on_tick(lws_sorted_usec_list_t *sul)
{
    struct chat_presence *p = lws_container_of(sul, struct chat_presence, tick);
    lws_sul_schedule(p->srv->ctx, 0, &p->tick, on_tick,
                     p->srv->cfg->presence_heartbeat_ms * LWS_US_PER_MS);
    if (!chat_redis_ready(p->redis))
        return;
    if (p->reincarnate) {
        p->reincarnate = false;
        p->st.reincarnations++;
        /* keep the previous id alive until the members are registered under the new one, so
         * the others see no one leave; an expired id is not kept (old cleared) */
        if (p->registered && !p->old[0])
            memcpy(p->old, p->id, sizeof p->old);
        new_id(p->id);
        p->registered = false;
        cm_info("presence: replica id %s (was %s)", p->id, p->old[0] ? p->old : "-");
        for (size_t b = 0; b < PR_BUCKETS; b++)
            for (struct chat_presence_room *pr = p->rooms[b]; pr; pr = pr->rid_next)
                pr->asserted = pr->indexed = false;
    }
    heartbeat(p);
    unsigned budget = CHAT_PRESENCE_ROOMS_PER_TICK;
    bool all = true;
    for (size_t b = 0; b < PR_BUCKETS; b++)
        for (struct chat_presence_room *pr = p->rooms[b]; pr; pr = pr->rid_next) {
            if (!pr->loaded && !pr->loading && pr->room && pr->room->rid &&
                chat_redis_sub_connected(p->redis))
                snapshot(p, pr);
            if (!pr->asserted) {
                if (budget) {
                    budget--;
                    assert_room(p, pr);
                } else {
                    all = false;
                }
            }
        }
    if (all && p->old[0] && !p->reincarnate) {
        /* everything is registered under the new id: let the old one expire now (it is
         * reaped like a dead replica's, which finds nothing the new id does not also have) */
        const char *argv[5] = {"ZADD", alive_key, "XX", "0", p->old};
        size_t lens[5] = {4, strlen(alive_key), 2, 1, strlen(p->old)};
        (void)send_cmd(p, cmd_new(p, C_PLAIN), 5, argv, lens);
        p->old[0] = '\0';
    }
}

/* ---- the hooks ------------------------------------------------------------------------- */

bool chat_presence_join(struct chat_server *srv, struct chat_room *room, int64_t rid,
                        const char *uid, const char *name)
{
    struct chat_presence *p = P(srv);
    if (!p)
        return true;
    if (room->pres && room->pres->rid != rid)
        return true; /* the room was replaced: this connection is closed right away */
    struct chat_presence_room *pr = pr_get(p, room, rid);
    if (pr->asserted && chat_redis_ready(p->redis)) {
        if (!pr->indexed) { /* the room's first member here: the reapers must find it */
            index_room(p, rid, true);
            pr->indexed = true;
        }
        const char *args[2] = {uid, name};
        (void)eval_members(p, join_script, rid, p->id, args, 2, cmd_new(p, C_PLAIN));
    } else if (pr->asserted) {
        p->reincarnate = true; /* Redis did not hear it: register everything again */
    }
    return !user_find(pr, uid);
}

bool chat_presence_leave(struct chat_server *srv, struct chat_room *room, const char *uid)
{
    struct chat_presence *p = P(srv);
    struct chat_presence_room *pr = room->pres;
    if (!p || !pr)
        return true;
    if (pr->asserted && chat_redis_ready(p->redis)) {
        const char *args[1] = {uid};
        (void)eval_members(p, leave_script, pr->rid, p->id, args, 1, cmd_new(p, C_PLAIN));
    } else if (pr->asserted) {
        p->reincarnate = true;
    }
    return !user_find(pr, uid);
}

void chat_presence_typing(struct chat_server *srv, struct chat_room *room, const char *uid,
                          const char *name)
{
    struct chat_presence *p = P(srv);
    struct chat_presence_room *pr = room->pres;
    if (!p || !pr || !chat_redis_ready(p->redis))
        return;
    char ch[KEY_MAX];
    size_t lc = room_key(ch, pr->rid, "pub", NULL);
    struct cm_buf b;
    cm_buf_init(&b);
    cm_buf_printf(&b, "T%s %s %s", p->id, uid, name);
    const char *argv[3] = {"PUBLISH", ch, b.data};
    size_t lens[3] = {7, lc, b.len};
    (void)send_cmd(p, cmd_new(p, C_IGNORE), 3, argv, lens); /* a hint: lost is fine */
    cm_buf_free(&b);
}

void chat_presence_room_subscribed(struct chat_server *srv, struct chat_room *room)
{
    struct chat_presence *p = P(srv);
    if (!p || !room->rid)
        return;
    struct chat_presence_room *pr = pr_get(p, room, room->rid);
    if (pr->loading)
        pr->overflow = true; /* an event may have been missed: read it once more */
    else
        snapshot(p, pr);
}

void chat_presence_on_event(struct chat_server *srv, struct chat_room *room, const char *m,
                            size_t len)
{
    struct chat_presence *p = P(srv);
    struct chat_presence_room *pr = room->pres;
    if (!p || !pr)
        return;
    if (m[0] == 'T') { /* "T<replica> <uid> <name>": typing on another replica */
        if (len < CHAT_REPLICA_ID_LEN + 3 || m[1 + CHAT_REPLICA_ID_LEN] != ' ')
            return;
        char rep[CHAT_REPLICA_ID_LEN + 1];
        memcpy(rep, m + 1, CHAT_REPLICA_ID_LEN);
        rep[CHAT_REPLICA_ID_LEN] = '\0';
        if (own_id(p, rep))
            return;
        char *copy = cm_xstrndup(m + 2 + CHAT_REPLICA_ID_LEN, len - 2 - CHAT_REPLICA_ID_LEN);
        char *sp = strchr(copy, ' ');
        if (sp && cm_uid_valid(copy, (size_t)(sp - copy))) {
            *sp = '\0';
            p->st.typing++;
            chat_fanout_room(srv, room, chat_proto_user_event("typing", copy, sp + 1));
        }
        free(copy);
        return;
    }
    p->st.events++;
    if (pr->loaded && !pr->loading) {
        handle_event(p, pr, m, len);
        return;
    }
    if (pr->nq >= CHAT_PRESENCE_QUEUE) {
        pr->overflow = true;
        return;
    }
    pr->q = cm_xrealloc(pr->q, (pr->nq + 1) * sizeof *pr->q);
    pr->q[pr->nq].m = cm_xstrndup(m, len);
    pr->q[pr->nq].len = len;
    pr->nq++;
}

void chat_presence_room_gone(struct chat_server *srv, struct chat_room *room)
{
    struct chat_presence *p = P(srv);
    struct chat_presence_room *pr = room->pres;
    if (!p || !pr)
        return;
    if (pr->indexed && chat_redis_ready(p->redis))
        index_room(p, pr->rid, false);
    pr_free(p, pr);
}

void chat_presence_on_ready(struct chat_server *srv, bool ready)
{
    struct chat_presence *p = P(srv);
    if (!p)
        return;
    p->healthy_since = 0;
    if (!ready) {
        p->reconnected = true;
        return;
    }
    /* a new command connection: what was sent on the old one may be lost */
    if (p->ever_ready)
        p->reincarnate = true;
    p->ever_ready = true;
    /* now, not at the next tick: the heartbeat (the id in the alive set, where the reapers
     * look) goes out on the new connection before any member is registered under the id */
    lws_sul_cancel(&p->tick);
    on_tick(&p->tick);
}

void chat_presence_welcome_members(const struct chat_room *room, struct cm_buf *b, bool *first)
{
    const struct chat_presence_room *pr = room->pres;
    if (!pr)
        return;
    for (size_t i = 0; i < pr->nb; i++)
        for (const struct pres_user *u = pr->b[i]; u; u = u->next) {
            if (local_has(room, u->uid))
                continue;
            cm_buf_puts(b, *first ? "{\"id\":" : ",{\"id\":");
            cm_buf_append_json(b, u->uid, strlen(u->uid));
            cm_buf_puts(b, ",\"name\":");
            cm_buf_append_json(b, u->name, strlen(u->name));
            cm_buf_puts(b, "}");
            *first = false;
        }
}

/* ---- life cycle ------------------------------------------------------------------------ */

struct chat_presence *chat_presence_new(struct chat_server *srv, struct chat_redis *redis)
{
    struct chat_presence *p = cm_xcalloc(1, sizeof *p);
    p->srv = srv;
    p->redis = redis;
    new_id(p->id);
    cm_info("presence: replica id %s (heartbeat %lld ms, expiry %lld ms)", p->id,
            srv->cfg->presence_heartbeat_ms, srv->cfg->presence_ttl_ms);
    lws_sul_schedule(srv->ctx, 0, &p->tick, on_tick,
                     srv->cfg->presence_heartbeat_ms * LWS_US_PER_MS);
    return p;
}

void chat_presence_free(struct chat_presence *p)
{
    if (!p)
        return;
    lws_sul_cancel(&p->tick);
    for (size_t b = 0; b < PR_BUCKETS; b++)
        while (p->rooms[b])
            pr_free(p, p->rooms[b]);
    free(p);
}

void chat_presence_goodbye(struct chat_presence *p)
{
    if (!p || !chat_redis_ready(p->redis))
        return;
    lws_sul_cancel(&p->tick); /* no heartbeat may revive the ids */
    const char *ids[2] = {p->id, p->old};
    for (int i = 0; i < 2; i++) {
        if (!ids[i][0])
            continue;
        const char *argv[5] = {"ZADD", alive_key, "XX", "0", ids[i]};
        size_t lens[5] = {4, strlen(alive_key), 2, 1, strlen(ids[i])};
        (void)send_cmd(p, cmd_new(p, C_IGNORE), 5, argv, lens);
    }
    cm_info("presence: replica id %s said goodbye", p->id);
}

const char *chat_presence_id(const struct chat_presence *p)
{
    return p->id;
}

void chat_presence_metrics(const struct chat_presence *p, struct cm_buf *b)
{
    if (!p)
        return;
    const struct pres_stats *s = &p->st;
    size_t remote = 0;
    for (size_t i = 0; i < PR_BUCKETS; i++)
        for (const struct chat_presence_room *pr = p->rooms[i]; pr; pr = pr->rid_next)
            remote += pr->nusers;
    cm_buf_printf(
        b,
        "# HELP chat_presence_heartbeats_total Heartbeats Redis answered.\n"
        "# TYPE chat_presence_heartbeats_total counter\nchat_presence_heartbeats_total %" PRIu64
        "\n"
        "# HELP chat_presence_heartbeat_failures_total Heartbeats without a valid answer.\n"
        "# TYPE chat_presence_heartbeat_failures_total counter\n"
        "chat_presence_heartbeat_failures_total %" PRIu64 "\n"
        "# HELP chat_presence_reincarnations_total New replica ids taken (Redis reconnects, "
        "expiry).\n"
        "# TYPE chat_presence_reincarnations_total counter\n"
        "chat_presence_reincarnations_total %" PRIu64 "\n"
        "# HELP chat_presence_reaped_replicas_total Dead replicas whose members this daemon "
        "removed.\n"
        "# TYPE chat_presence_reaped_replicas_total counter\n"
        "chat_presence_reaped_replicas_total %" PRIu64 "\n"
        "# HELP chat_presence_reaped_rooms_total Rooms of dead replicas cleaned.\n"
        "# TYPE chat_presence_reaped_rooms_total counter\n"
        "chat_presence_reaped_rooms_total %" PRIu64 "\n"
        "# HELP chat_presence_events_total Presence changes received from Redis.\n"
        "# TYPE chat_presence_events_total counter\nchat_presence_events_total %" PRIu64 "\n"
        "# HELP chat_presence_told_total join / leave frames fanned out to rooms.\n"
        "# TYPE chat_presence_told_total counter\n"
        "chat_presence_told_total{type=\"join\"} %" PRIu64 "\n"
        "chat_presence_told_total{type=\"leave\"} %" PRIu64 "\n"
        "# HELP chat_presence_snapshots_total Room presence snapshots read.\n"
        "# TYPE chat_presence_snapshots_total counter\nchat_presence_snapshots_total %" PRIu64 "\n"
        "# HELP chat_presence_typing_total Typing hints received from other replicas.\n"
        "# TYPE chat_presence_typing_total counter\nchat_presence_typing_total %" PRIu64 "\n"
        "# HELP chat_presence_commands_failed_total Presence commands not sent or failed.\n"
        "# TYPE chat_presence_commands_failed_total counter\n"
        "chat_presence_commands_failed_total %" PRIu64 "\n"
        "# HELP chat_presence_remote_users Users other replicas have in this daemon's rooms.\n"
        "# TYPE chat_presence_remote_users gauge\nchat_presence_remote_users %zu\n",
        s->heartbeats, s->heartbeat_failures, s->reincarnations, s->reaped_replicas,
        s->reaped_rooms, s->events, s->joins_told, s->leaves_told, s->snapshots, s->typing,
        s->commands_failed, remote);
}
