/* Moderation events from the Redis stream CHAT_MOD_STREAM (see moderation.h). Sources: Redis
 * XREAD (redis.io/commands/xread: "BLOCK", "$" vs. an explicit last id, the reply shape
 * [[key, [[id, [field, value, ...]], ...]]], a nil reply when BLOCK timed out); stream ids
 * are "<ms>-<seq>" (redis.io/docs/data-types/streams). */
#include "moderation.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "cm_alloc.h"
#include "cm_buf.h"
#include "cm_log.h"
#include "cm_token.h"
#include "cm_util.h"
#include "redis.h"
#include "room.h"

#define TICK_MS 250 /* retry of a failed read, expiry of old revocations */
/* how long a revocation is kept after at_ms: every token it can match has expired by then */
#define KEEP_MS ((int64_t)(CM_TOKEN_TTL_MAX + CM_TOKEN_LEEWAY + 60) * 1000)
#define KEY_MAX (2 + 20 + 1 + CM_UID_MAX + 1) /* "m:<rid>:<uid>" and NUL, the longest key */
#define ID_MAX 48                             /* "<ms>-<seq>": two 20-digit numbers */

enum kind { K_BAN = 0, K_ROOM, K_MEMBER, K_LOGOUT, K_COUNT };
static const char *const kind_name[K_COUNT] = {"ban", "room_deleted", "member_removed", "logout"};
static const int kind_close[K_COUNT] = {CHAT_CLOSE_BANNED, CHAT_CLOSE_ROOM_DELETED,
                                        CHAT_CLOSE_REMOVED, CHAT_CLOSE_LOGGED_OUT};
static const char *const kind_code[K_COUNT] = {"banned", "room_deleted", "removed", "logged_out"};
static const char *const kind_msg[K_COUNT] = {"this account is banned", "this room was deleted",
                                              "you were removed from this room",
                                              "this session was logged out"};

/* One revocation, in the hash table (hnext) and in the age list (older / newer). */
struct rev {
    struct rev *hnext;
    struct rev *older, *newer;
    int64_t at_ms;
    char key[KEY_MAX];
};

struct chat_mod {
    struct chat_server *srv;
    struct chat_redis *redis;
    struct rev **buckets;
    size_t nbuckets, n;
    struct rev *oldest, *newest;
    int64_t floor_ms; /* tokens with iat * 1000 <= floor_ms are refused (entries dropped) */
    char last_id[ID_MAX];
    bool inflight, synced;
    lws_sorted_usec_list_t tick;
    uint64_t applied[K_COUNT], closed[K_COUNT], refused[K_COUNT];
    uint64_t invalid, dropped, read_errors, refused_unsynced, refused_floor;
};

static void read_more(struct chat_mod *m);

/* ---- the revocation table ------------------------------------------------------------- */

static size_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a: the keys come from our website */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (size_t)h;
}

static struct rev *find(const struct chat_mod *m, const char *key)
{
    for (struct rev *e = m->buckets[hash(key) & (m->nbuckets - 1)]; e; e = e->hnext)
        if (!strcmp(e->key, key))
            return e;
    return NULL;
}

static void age_unlink(struct chat_mod *m, struct rev *e)
{
    if (e->older)
        e->older->newer = e->newer;
    else
        m->oldest = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        m->newest = e->older;
    e->older = e->newer = NULL;
}

static void age_append(struct chat_mod *m, struct rev *e)
{
    e->older = m->newest;
    e->newer = NULL;
    if (m->newest)
        m->newest->newer = e;
    else
        m->oldest = e;
    m->newest = e;
}

static void rev_remove(struct chat_mod *m, struct rev *e)
{
    struct rev **pp = &m->buckets[hash(e->key) & (m->nbuckets - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    age_unlink(m, e);
    m->n--;
    free(e);
}

static void grow(struct chat_mod *m)
{
    size_t nb = m->nbuckets * 2;
    struct rev **b = cm_xcalloc(nb, sizeof *b);
    for (size_t i = 0; i < m->nbuckets; i++)
        for (struct rev *e = m->buckets[i], *next; e; e = next) {
            next = e->hnext;
            size_t j = hash(e->key) & (nb - 1);
            e->hnext = b[j];
            b[j] = e;
        }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = nb;
}

/* Records key revoked at at_ms (the later time wins: events may come twice). */
static void rev_put(struct chat_mod *m, const char *key, int64_t at_ms)
{
    struct rev *e = find(m, key);
    if (e) {
        if (at_ms > e->at_ms) {
            e->at_ms = at_ms;
            age_unlink(m, e);
            age_append(m, e);
        }
        return;
    }
    while (m->n >= (size_t)m->srv->cfg->mod_max_entries && m->oldest) {
        /* full: forget the oldest, but refuse every token as old as it (fail closed) */
        if (m->oldest->at_ms > m->floor_ms)
            m->floor_ms = m->oldest->at_ms;
        if (!m->dropped++)
            cm_warn("moderation: more than CHAT_MODERATION_MAX_ENTRIES=%lld revocations: "
                    "tokens issued before the oldest one dropped are refused",
                    m->srv->cfg->mod_max_entries);
        rev_remove(m, m->oldest);
    }
    if (m->n >= m->nbuckets)
        grow(m);
    e = cm_xcalloc(1, sizeof *e);
    snprintf(e->key, sizeof e->key, "%s", key);
    e->at_ms = at_ms;
    size_t j = hash(key) & (m->nbuckets - 1);
    e->hnext = m->buckets[j];
    m->buckets[j] = e;
    age_append(m, e);
    m->n++;
}

static void expire(struct chat_mod *m, int64_t now_ms)
{
    while (m->oldest && m->oldest->at_ms + KEEP_MS < now_ms)
        rev_remove(m, m->oldest);
}

static void key_of(char out[KEY_MAX], enum kind k, const char *uid, int64_t rid, const char *sid)
{
    switch (k) {
    case K_BAN:
        snprintf(out, KEY_MAX, "b:%s", uid);
        break;
    case K_ROOM:
        snprintf(out, KEY_MAX, "r:%" PRId64, rid);
        break;
    case K_MEMBER:
        snprintf(out, KEY_MAX, "m:%" PRId64 ":%s", rid, uid);
        break;
    default:
        snprintf(out, KEY_MAX, "s:%s", sid);
        break;
    }
}

/* at_ms of the revocation of key, or INT64_MIN. */
static int64_t rev_at(const struct chat_mod *m, const char *key)
{
    const struct rev *e = find(m, key);
    return e ? e->at_ms : INT64_MIN;
}

int chat_mod_check(struct chat_mod *m, const struct chat_conn *c, const char **code_out,
                   const char **message_out)
{
    *code_out = "unavailable";
    *message_out = "try again in a moment";
    if (!m->synced) {
        m->refused_unsynced++;
        return 1013;
    }
    char key[KEY_MAX];
    int64_t iat_ms = c->iat * 1000;
    key_of(key, K_ROOM, NULL, c->rid, NULL);
    enum kind hit = K_COUNT;
    if (rev_at(m, key) != INT64_MIN)
        hit = K_ROOM;
    key_of(key, K_BAN, c->uid, 0, NULL);
    if (hit == K_COUNT && iat_ms <= rev_at(m, key))
        hit = K_BAN;
    key_of(key, K_MEMBER, c->uid, c->rid, NULL);
    if (hit == K_COUNT && iat_ms <= rev_at(m, key))
        hit = K_MEMBER;
    if (hit == K_COUNT && c->sid[0]) {
        key_of(key, K_LOGOUT, NULL, 0, c->sid);
        if (iat_ms <= rev_at(m, key))
            hit = K_LOGOUT;
    }
    if (hit != K_COUNT) {
        m->refused[hit]++;
        *code_out = kind_code[hit];
        *message_out = kind_msg[hit];
        return kind_close[hit];
    }
    if (iat_ms <= m->floor_ms) {
        m->refused_floor++;
        *message_out = "token too old: get a new one";
        return 1013;
    }
    return 0;
}

bool chat_mod_synced(const struct chat_mod *m)
{
    return m && m->synced;
}

/* ---- acting on live connections ---------------------------------------------------------- */

static void close_conn(struct chat_mod *m, struct chat_conn *c, enum kind k)
{
    if (c->closing || c->culled)
        return;
    /* the reason first (the client shows it), then the close; a full reply queue still
     * gets the close */
    (void)chat_conn_send_private(m->srv, c, chat_proto_error(kind_code[k], kind_msg[k], NULL, 0));
    chat_conn_close(m->srv, c, (enum lws_close_status)kind_close[k], kind_msg[k]);
    m->closed[k]++;
    cm_info("moderation: closed room=%s user=%s code=%d (%s)", c->room ? c->room->name : "?",
            c->uid, kind_close[k], kind_name[k]);
}

static void act(struct chat_mod *m, enum kind k, const char *uid, int64_t rid, const char *sid,
                int64_t at_ms)
{
    struct chat_server *srv = m->srv;
    if (k == K_ROOM) {
        /* every room this daemon holds (a name can come back with a new rid): rare, O(rooms) */
        struct chat_rooms *reg = srv->rooms;
        for (size_t b = 0; b < reg->nbuckets; b++)
            for (struct chat_room *room = reg->buckets[b]; room; room = room->hnext)
                for (struct chat_conn *c = room->conns, *next; c; c = next) {
                    next = c->rnext;
                    if (c->rid == rid)
                        close_conn(m, c, k);
                }
        return;
    }
    struct chat_user *u = chat_index_user(&srv->index, uid);
    if (!u)
        return;
    for (struct chat_conn *c = u->conns, *next; c; c = next) {
        next = c->unext;
        if (c->iat * 1000 > at_ms)
            continue; /* a token issued after the event (after an unban, a re-add) */
        if ((k == K_BAN) || (k == K_MEMBER && c->rid == rid) ||
            (k == K_LOGOUT && c->sid[0] && !strcmp(c->sid, sid)))
            close_conn(m, c, k);
    }
}

/* ---- reading the stream ------------------------------------------------------------------ */

static bool str_eq(const redisReply *r, const char *s)
{
    return r->type == REDIS_REPLY_STRING && r->len == strlen(s) && !memcmp(r->str, s, r->len);
}

/* A decimal integer 1..max of a string reply. */
static bool parse_int(const redisReply *r, int64_t max, int64_t *out)
{
    if (r->type != REDIS_REPLY_STRING || r->len == 0 || r->len > 18) /* no overflow */
        return false;
    int64_t v = 0;
    for (size_t i = 0; i < r->len; i++) {
        if (r->str[i] < '0' || r->str[i] > '9')
            return false;
        v = v * 10 + (r->str[i] - '0');
    }
    if (v < 1 || v > max)
        return false;
    *out = v;
    return true;
}

static bool parse_id(const redisReply *r, char out[CM_UID_MAX + 1])
{
    if (r->type != REDIS_REPLY_STRING || !cm_uid_valid(r->str, r->len))
        return false;
    memcpy(out, r->str, r->len);
    out[r->len] = '\0';
    return true;
}

/* One entry's field list [f, v, f, v, ...]: validated, recorded, acted on. */
static void apply(struct chat_mod *m, const redisReply *fv, int64_t now_ms)
{
    enum kind k = K_COUNT;
    char uid[CM_UID_MAX + 1] = "", sid[CM_SID_MAX + 1] = "";
    int64_t rid = 0, at_ms = 0;
    bool ok = fv->type == REDIS_REPLY_ARRAY && fv->elements % 2 == 0;
    for (size_t i = 0; ok && i + 1 < fv->elements; i += 2) {
        const redisReply *f = fv->element[i], *v = fv->element[i + 1];
        if (str_eq(f, "kind")) {
            for (int j = 0; j < K_COUNT; j++)
                if (str_eq(v, kind_name[j]))
                    k = (enum kind)j;
            ok = k != K_COUNT;
        } else if (str_eq(f, "uid")) {
            ok = parse_id(v, uid);
        } else if (str_eq(f, "sid")) {
            ok = parse_id(v, sid);
        } else if (str_eq(f, "rid")) {
            ok = parse_int(v, CM_TOKEN_RID_MAX, &rid);
        } else if (str_eq(f, "at_ms")) {
            ok = parse_int(v, INT64_MAX / 2, &at_ms);
        } /* other fields: for later versions, ignored */
    }
    if (ok)
        ok = k != K_COUNT && at_ms > 0 &&
             (k == K_ROOM ? rid > 0
                          : uid[0] && (k != K_MEMBER || rid > 0) && (k != K_LOGOUT || sid[0]));
    if (!ok) {
        if (!m->invalid++)
            cm_warn("moderation: an entry of %s is not a valid event (ignored)", CHAT_MOD_STREAM);
        return;
    }
    m->applied[k]++;
    if (at_ms + KEEP_MS < now_ms)
        return; /* every token it could match has expired */
    char key[KEY_MAX];
    key_of(key, k, uid, rid, sid);
    rev_put(m, key, at_ms);
    cm_debug("moderation: %s uid=%s rid=%" PRId64 " at_ms=%" PRId64, kind_name[k], uid, rid, at_ms);
    act(m, k, uid, rid, sid, at_ms);
}

static void on_read(struct chat_redis *r, const redisReply *rep, void *ud)
{
    (void)r;
    struct chat_mod *m = ud;
    m->inflight = false;
    if (!rep) /* the connection is gone: read_more again once it is back (on_ready, tick) */
        return;
    if (rep->type == REDIS_REPLY_NIL) { /* BLOCK timed out (or nothing at all): caught up */
        if (!m->synced)
            cm_info("moderation: %zu revocation(s) in force, reading %s", m->n, CHAT_MOD_STREAM);
        m->synced = true;
        read_more(m);
        return;
    }
    /* [[key, [[id, [f, v, ...]], ...]]] */
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 1 ||
        rep->element[0]->type != REDIS_REPLY_ARRAY || rep->element[0]->elements != 2 ||
        rep->element[0]->element[1]->type != REDIS_REPLY_ARRAY) {
        if (!m->read_errors++ || rep->type == REDIS_REPLY_ERROR)
            cm_warn("moderation: XREAD %s: %.*s", CHAT_MOD_STREAM,
                    rep->type == REDIS_REPLY_ERROR ? (int)rep->len : 16,
                    rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
        return; /* the tick tries again */
    }
    const redisReply *entries = rep->element[0]->element[1];
    int64_t now = cm_now_ms();
    for (size_t i = 0; i < entries->elements; i++) {
        const redisReply *e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING || e->element[0]->len >= ID_MAX)
            continue;
        memcpy(m->last_id, e->element[0]->str, e->element[0]->len);
        m->last_id[e->element[0]->len] = '\0';
        apply(m, e->element[1], now);
    }
    if (!m->synced && entries->elements < (size_t)m->srv->cfg->mod_batch) {
        m->synced = true;
        cm_info("moderation: %zu revocation(s) in force, reading %s", m->n, CHAT_MOD_STREAM);
    }
    read_more(m);
}

/* XREAD COUNT <batch> [BLOCK <ms>] STREAMS parley:moderation <last id>: without BLOCK until
 * caught up the first time, so a start is not held up by an empty stream. */
static void read_more(struct chat_mod *m)
{
    if (m->inflight || !chat_redis_ready(m->redis))
        return;
    const struct chat_config *cfg = m->srv->cfg;
    char count[24], block[24];
    snprintf(count, sizeof count, "%lld", cfg->mod_batch);
    snprintf(block, sizeof block, "%lld", cfg->mod_block_ms);
    const char *argv[8];
    size_t lens[8];
    int n = 0;
    argv[n++] = "XREAD";
    argv[n++] = "COUNT";
    argv[n++] = count;
    if (m->synced) {
        argv[n++] = "BLOCK";
        argv[n++] = block;
    }
    argv[n++] = "STREAMS";
    argv[n++] = CHAT_MOD_STREAM;
    argv[n++] = m->last_id;
    for (int i = 0; i < n; i++)
        lens[i] = strlen(argv[i]);
    if (chat_redis_command(m->redis, on_read, m, n, argv, lens) == 0)
        m->inflight = true;
}

static void on_ready(void *ud, bool ready)
{
    struct chat_mod *m = ud;
    if (ready)
        read_more(m); /* from the last id seen: nothing is missed across a reconnect */
}

static void tick(lws_sorted_usec_list_t *sul)
{
    struct chat_mod *m = lws_container_of(sul, struct chat_mod, tick);
    expire(m, cm_now_ms());
    read_more(m);
    lws_sul_schedule(m->srv->ctx, 0, &m->tick, tick, TICK_MS * LWS_US_PER_MS);
}

/* ---- life cycle, metrics ----------------------------------------------------------------- */

struct chat_mod *chat_mod_new(struct chat_server *srv, struct lws_vhost *vh)
{
    const struct chat_config *cfg = srv->cfg;
    struct chat_mod *m = cm_xcalloc(1, sizeof *m);
    m->srv = srv;
    m->nbuckets = 1024;
    m->buckets = cm_xcalloc(m->nbuckets, sizeof *m->buckets);
    snprintf(m->last_id, sizeof m->last_id, "0-0");
    /* its own client: a blocked XREAD holds its connection; the deadline of a command
     * covers the BLOCK time plus CHAT_REDIS_TIMEOUT_MS */
    struct chat_redis_opts o = {
        .host = cfg->redis_host,
        .port = (int)cfg->redis_port,
        .password = cfg->redis_password,
        .timeout_ms = cfg->redis_timeout_ms + cfg->mod_block_ms,
        .max_pending = 4,
        .script = "return 1", /* redis.c loads a script on every connect; nothing to run */
    };
    struct chat_redis_hooks hk = {.ud = m, .on_ready = on_ready};
    m->redis = chat_redis_new(srv->ctx, vh, &o, &hk);
    lws_sul_schedule(srv->ctx, 0, &m->tick, tick, TICK_MS * LWS_US_PER_MS);
    return m;
}

void chat_mod_free(struct chat_mod *m)
{
    if (!m)
        return;
    lws_sul_cancel(&m->tick);
    chat_redis_free(m->redis); /* on_read with NULL for the read in flight */
    while (m->oldest)
        rev_remove(m, m->oldest);
    free(m->buckets);
    free(m);
}

void chat_mod_flush(struct chat_mod *m)
{
    if (m)
        chat_redis_flush(m->redis);
}

void chat_mod_metrics(const struct chat_mod *m, struct cm_buf *b)
{
    if (!m)
        return;
    cm_buf_printf(b,
                  "# HELP chat_moderation_synced 1 once the moderation stream was read to its end\n"
                  "# TYPE chat_moderation_synced gauge\nchat_moderation_synced %d\n"
                  "# HELP chat_moderation_revocations Revocations in force (in memory)\n"
                  "# TYPE chat_moderation_revocations gauge\nchat_moderation_revocations %zu\n"
                  "# HELP chat_moderation_invalid_total Stream entries that were no valid event\n"
                  "# TYPE chat_moderation_invalid_total counter\n"
                  "chat_moderation_invalid_total %" PRIu64 "\n"
                  "# HELP chat_moderation_dropped_total Revocations dropped over "
                  "CHAT_MODERATION_MAX_ENTRIES\n"
                  "# TYPE chat_moderation_dropped_total counter\n"
                  "chat_moderation_dropped_total %" PRIu64 "\n",
                  m->synced ? 1 : 0, m->n, m->invalid, m->dropped);
    cm_buf_puts(b, "# HELP chat_moderation_events_total Moderation events applied, by kind\n"
                   "# TYPE chat_moderation_events_total counter\n");
    for (int k = 0; k < K_COUNT; k++)
        cm_buf_printf(b, "chat_moderation_events_total{kind=\"%s\"} %" PRIu64 "\n", kind_name[k],
                      m->applied[k]);
    cm_buf_puts(b, "# HELP chat_moderation_closed_total Live connections closed, by kind\n"
                   "# TYPE chat_moderation_closed_total counter\n");
    for (int k = 0; k < K_COUNT; k++)
        cm_buf_printf(b, "chat_moderation_closed_total{kind=\"%s\"} %" PRIu64 "\n", kind_name[k],
                      m->closed[k]);
    cm_buf_puts(b, "# HELP chat_moderation_refused_total New connections refused, by reason\n"
                   "# TYPE chat_moderation_refused_total counter\n");
    for (int k = 0; k < K_COUNT; k++)
        cm_buf_printf(b, "chat_moderation_refused_total{kind=\"%s\"} %" PRIu64 "\n", kind_name[k],
                      m->refused[k]);
    cm_buf_printf(b,
                  "chat_moderation_refused_total{kind=\"not_synced\"} %" PRIu64 "\n"
                  "chat_moderation_refused_total{kind=\"too_old\"} %" PRIu64 "\n",
                  m->refused_unsynced, m->refused_floor);
}
