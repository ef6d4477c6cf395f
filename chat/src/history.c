/* The message pipeline on Redis (history.h). How a message travels:
 *   client `message` -> EVALSHA of chat_history_script (seq = INCR, XADD to the room's stream
 *   and to the archive outbox, idempotency key, PUBLISH) -> every replica's subscriber
 *   connection -> on_message: in seq order into the room's ring (gaps filled by XRANGE)
 *   -> each connection of the room.
 * The script's reply confirms to nobody: the sender sees its message like everyone else,
 * from the subscription, so all connections of a room see one order.
 *
 * Joining: the room's delivery cursor (room->delivered, the last seq put into its ring) is
 * the connection's welcome.last_seq; the connection is linked to the ring at that moment, so
 * its live messages are exactly those after last_seq, and its history frame is read from the
 * stream (and the archive) for seqs <= last_seq. Until the history frame is ready the
 * connection is held (conn.c writes nothing), so the welcome and history come first. */
#include "history.h"
#include "chat.h"
#include "fanout.h"
#include "presence.h"
#include "protocol.h"
#include "redis.h"
#include "room.h"

#include "archive.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm_alloc.h"
#include "cm_buf.h"
#include "cm_log.h"
#include "cm_util.h"

/* KEYS: 1 seq, 2 stream, 3 outbox, 4 the room's deletion tombstone (set by the archive's
 * deleter), 5 idem (only when the message has a client_id).
 * ARGV: 1-3 the frame in three parts (frame = p1..seq..p2..seq..p3: the id and the seq
 * field), 4 stream cap (MAXLEN ~), 5 idem TTL s, 6 outbox cap, 7 rid, 8 channel.
 * Returns {1, seq} stored and published; {0, seq, frame} a retry of a stored client_id
 * ({0, seq} if the stream no longer holds it); {2} the room's counter is missing (the caller
 * reseeds it from the archive with SET NX first, so a lost counter never restarts at 1);
 * error UNAVAILABLE while the outbox holds the cap (nothing dropped: the sender retries);
 * error GONE once the room was deleted. */
const char chat_history_script[] =
    "if redis.call('EXISTS', KEYS[4]) == 1 then return redis.error_reply('GONE room deleted') end\n"
    "local idem = KEYS[5]\n"
    "if idem then\n"
    "  local s = redis.call('GET', idem)\n"
    "  if s then\n"
    "    local e = redis.call('XRANGE', KEYS[2], s .. '-1', s .. '-1')\n"
    "    if #e > 0 then return {0, tonumber(s), e[1][2][2]} end\n"
    "    return {0, tonumber(s)}\n"
    "  end\n"
    "end\n"
    "if redis.call('EXISTS', KEYS[1]) == 0 then return {2} end\n"
    "if redis.call('XLEN', KEYS[3]) >= tonumber(ARGV[6]) then\n"
    "  return redis.error_reply('UNAVAILABLE archive outbox full')\n"
    "end\n"
    "local seq = string.format('%d', redis.call('INCR', KEYS[1]))\n"
    "local frame = ARGV[1] .. seq .. ARGV[2] .. seq .. ARGV[3]\n"
    "redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], seq .. '-1', 'm', frame)\n"
    "redis.call('XADD', KEYS[3], '*', 'rid', ARGV[7], 'seq', seq, 'm', frame)\n"
    "if idem then redis.call('SET', idem, seq, 'EX', ARGV[5]) end\n"
    "redis.call('PUBLISH', ARGV[8], frame)\n"
    "return {1, tonumber(seq)}\n";

#define RID_BUCKETS 1024
/* RFC 6455 §7.4.1 "Try Again Later": the client did nothing wrong, it reconnects (with since) */
#define CHAT_CLOSE_TRY_AGAIN ((enum lws_close_status)1013)
#define KEY_MAX 256

enum hstate { H_NEW = 0, H_SUBSCRIBING, H_SUBSCRIBED };

enum fetch_kind { F_INITIAL, F_PAGE, F_GAP, F_DUP, F_SEED, F_SYNC, F_PRIME };

/* One read of a seq range [lo, hi] (stream first, then the archive for what the stream no
 * longer holds), or an archive-only lookup (F_SEED, F_SYNC: the room's max seq). F_PRIME
 * reads a newly synced room's latest messages into room->recent, once for all its joiners. */
struct fetch {
    struct fetch *next; /* waiting for the archive */
    struct chat_history *h;
    enum fetch_kind kind;
    int64_t rid;
    uint64_t gen; /* room generation (F_GAP, F_SYNC, F_PRIME) */
    uint64_t conn_id;
    uint64_t lo, hi;
    char dir; /* F_PAGE: 'b' or 'a'; F_INITIAL: 's' with since, 0 without */
    uint64_t cursor;
    bool more;
    struct chat_stored_msg *items;
    size_t n, cap;
    uint64_t tag;
    struct pub *pub; /* F_DUP, F_SEED: the publish it serves */
};

/* One publish in flight. */
struct pub {
    struct pub *next; /* in a seed queue */
    struct chat_history *h;
    uint64_t conn_id;
    int64_t rid;
    bool seeded;    /* the counter was reseeded once already */
    bool probe;     /* the room's first publish: its answer releases the room's queue */
    uint64_t order; /* arrival order at this daemon (chat_history_publish) */
    char *cid;      /* copy, NULL if none */
    size_t cidlen;
    char *parts[3];
    size_t plen[3];
    char uid[CM_UID_MAX + 1];
};

/* A room whose publishes must wait, in arrival order, so one sender's messages keep their
 * order. Two reasons (state):
 * - Q_PROBING: nobody here knows yet that the room's counter exists in Redis (the room is
 *   new here, or the command connection was lost since). One publish, the probe, goes
 *   alone; the others wait for its answer. Without this, a sender's first publish could
 *   come back {2} (no counter) while its next, already in Redis's pipeline, found the
 *   counter another replica had seeded meanwhile and was stored first (found in CI:
 *   "s2-2, s2-0, s2-1").
 * - Q_SEEDING: the counter is being reseeded from the archive. Publishes that were in
 *   Redis's pipeline and come back {2} join, and new ones that arrive meanwhile; an early
 *   publish's {2} can come back after a later one was queued, so the queue is kept sorted
 *   by pub.order (arrival), not by when each joined it. */
enum seedq_state { Q_PROBING, Q_SEEDING };

struct seedq {
    struct seedq *next;
    int64_t rid;
    enum seedq_state state;
    struct pub *head, *tail;
};

struct hist_stats {
    uint64_t published, dup, unavailable, gaps, gap_fetches, unfillable, archive_reads, reseeds,
        history_sent, history_failed, resubscribes, history_from_memory;
};

struct chat_history {
    struct chat_server *srv;
    struct chat_redis *redis;
    struct chat_archive *archive;
    struct chat_room *rooms[RID_BUCKETS]; /* rooms by rid (room->rid_next chains) */
    uint64_t gen;
    uint64_t next_tag;
    uint64_t next_order;   /* pub.order */
    struct fetch *waiting; /* fetches waiting for the archive */
    struct seedq *seeding; /* rooms whose publishes wait (probe or reseed) */
    bool freeing;          /* chat_history_free: no publish is started any more */
    size_t npub;           /* publishes in flight */
    struct hist_stats st;
};

/* ---- keys, lookups --------------------------------------------------------------------- */

static size_t key(char *out, int64_t rid, const char *suffix)
{
    int n = snprintf(out, KEY_MAX, "parley:{r%" PRId64 "}:%s", rid, suffix);
    return n < 0 ? 0 : (size_t)n;
}

static struct chat_room *room_by_rid(struct chat_history *h, int64_t rid)
{
    for (struct chat_room *r = h->rooms[(uint64_t)rid % RID_BUCKETS]; r; r = r->rid_next)
        if (r->rid == rid)
            return r;
    return NULL;
}

/* The connection an answer is for, if it is still here and still in that room. */
static struct chat_conn *conn_by_id(struct chat_history *h, int64_t rid, uint64_t id)
{
    struct chat_conn *c = chat_index_conn(&h->srv->index, id);
    if (!c || !c->established || c->closing || c->culled || c->rid != rid)
        return NULL;
    return c;
}

/* seq of a stored frame: it starts {"type":"message","id":"<rid>-<seq>","seq":<seq>, (our
 * own encoding, before any user text), so the first "seq": is the field. */
static uint64_t frame_seq(const char *m, size_t len)
{
    static const char pat[] = "\"seq\":";
    size_t lim = len < 96 ? len : 96;
    for (size_t i = 0; i + sizeof pat - 1 < lim; i++) {
        if (memcmp(m + i, pat, sizeof pat - 1) != 0)
            continue;
        uint64_t v = 0;
        size_t j = i + sizeof pat - 1;
        if (j >= len || m[j] < '0' || m[j] > '9')
            return 0;
        for (; j < len && m[j] >= '0' && m[j] <= '9' && v <= CHAT_SEQ_MAX; j++)
            v = v * 10 + (uint64_t)(m[j] - '0');
        return v <= CHAT_SEQ_MAX ? v : 0;
    }
    return 0;
}

static uint64_t id_seq(const char *s, size_t len)
{
    uint64_t v = 0;
    size_t i = 0;
    for (; i < len && s[i] >= '0' && s[i] <= '9' && v <= CHAT_SEQ_MAX; i++)
        v = v * 10 + (uint64_t)(s[i] - '0');
    return i && i < len && s[i] == '-' ? v : 0;
}

int chat_history_parse_since(const char *s, size_t len, uint64_t *out)
{
    if (len < 1 || len > 16)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > CHAT_SEQ_MAX)
        return -1;
    *out = v;
    return 0;
}

static void send_error(struct chat_server *srv, struct chat_conn *c, const char *code,
                       const char *msg, const char *cid, size_t cidlen)
{
    if (chat_conn_send_private(srv, c, chat_proto_error(code, msg, cid, cidlen)) < 0)
        chat_conn_close(srv, c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "too many pending replies");
}

/* ---- fetches --------------------------------------------------------------------------- */

static struct fetch *fetch_new(struct chat_history *h, enum fetch_kind kind, int64_t rid)
{
    struct fetch *f = cm_xcalloc(1, sizeof *f);
    f->h = h;
    f->kind = kind;
    f->rid = rid;
    return f;
}

static void fetch_free(struct fetch *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++)
        free(f->items[i].m);
    free(f->items);
    free(f);
}

static void item_add(struct fetch *f, uint64_t seq, const char *m, size_t len)
{
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 16;
        f->items = cm_xrealloc(f->items, f->cap * sizeof *f->items);
    }
    f->items[f->n].seq = seq;
    f->items[f->n].m = cm_xstrndup(m, len);
    f->items[f->n].len = len;
    f->n++;
}

static void fetch_done(struct fetch *f, bool ok);
static void gap_fetch(struct chat_history *h, struct chat_room *room);
static void pub_free(struct pub *p);
static void pub_unavailable(struct pub *p);
static void on_seeded(struct chat_redis *r, const redisReply *rep, void *ud);
static void seedq_finish(struct chat_history *h, int64_t rid, bool ok);
static bool pub_send(struct pub *p);
static void room_synced(struct chat_history *h, struct chat_room *room, bool ok, uint64_t seq);
static void room_ready(struct chat_history *h, struct chat_room *room, uint64_t seq);

static int archive_ask(struct fetch *f, uint64_t lo, uint64_t hi, bool max_only)
{
    struct chat_history *h = f->h;
    if (!h->archive)
        return -1;
    f->tag = ++h->next_tag;
    int rc = max_only
                 ? chat_archive_max_seq(h->archive, f->tag, f->rid)
                 : chat_archive_query(h->archive, f->tag, f->rid, lo, hi, (unsigned)(hi - lo + 1));
    if (rc < 0)
        return -1;
    h->st.archive_reads++;
    f->next = h->waiting;
    h->waiting = f;
    return 0;
}

static void on_archive(void *ud, struct chat_archive_result *res)
{
    struct chat_history *h = ud;
    struct fetch **pp = &h->waiting, *f = NULL;
    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->tag == res->tag) {
            f = *pp;
            *pp = f->next;
            break;
        }
    if (!f) {
        chat_archive_result_free(res);
        return;
    }
    bool ok = res->status == 0;
    if (ok && (f->kind == F_SEED || f->kind == F_SYNC)) {
        f->cursor = res->max_seq;
    } else if (ok) {
        /* archive part first: it holds the older seqs [lo, first stream seq - 1] */
        struct chat_stored_msg *stream = f->items;
        size_t ns = f->n;
        f->items = NULL;
        f->n = f->cap = 0;
        for (size_t i = 0; i < res->n; i++) {
            uint64_t s = frame_seq(res->frames[i], res->lens[i]);
            if (s >= f->lo && s <= f->hi && (!ns || s < stream[0].seq))
                item_add(f, s, res->frames[i], res->lens[i]);
        }
        for (size_t i = 0; i < ns; i++) {
            if (f->n == f->cap) {
                f->cap = f->cap ? f->cap * 2 : 16;
                f->items = cm_xrealloc(f->items, f->cap * sizeof *f->items);
            }
            f->items[f->n++] = stream[i];
        }
        free(stream);
    }
    chat_archive_result_free(res);
    fetch_done(f, ok);
}

void chat_history_drain(struct chat_server *srv)
{
    struct chat_history *h = srv->hist;
    if (h && h->archive)
        chat_archive_drain(h->archive, on_archive, h);
}

static void on_xrange(struct chat_redis *r, const redisReply *rep, void *ud)
{
    (void)r;
    struct fetch *f = ud;
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        if (rep)
            cm_warn("redis: XRANGE failed: %.*s",
                    rep->type == REDIS_REPLY_ERROR ? (int)rep->len : 0,
                    rep->type == REDIS_REPLY_ERROR ? rep->str : "");
        fetch_done(f, false);
        return;
    }
    /* each entry: [id, [field, value, ...]]; ours have exactly "m" */
    for (size_t i = 0; i < rep->elements; i++) {
        const redisReply *e = rep->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_ARRAY)
            continue;
        const redisReply *fields = e->element[1];
        uint64_t seq = id_seq(e->element[0]->str, e->element[0]->len);
        for (size_t j = 0; seq && j + 1 < fields->elements; j += 2) {
            const redisReply *k = fields->element[j], *v = fields->element[j + 1];
            if (k->type == REDIS_REPLY_STRING && k->len == 1 && k->str[0] == 'm' &&
                v->type == REDIS_REPLY_STRING) {
                item_add(f, seq, v->str, v->len);
                break;
            }
        }
    }
    /* what the stream no longer holds (trimmed to CHAT_STREAM_LEN) comes from the archive;
     * a live gap fill never waits for the archive (see gap_done) */
    if (f->kind != F_GAP && f->hi >= f->lo && (!f->n || f->items[0].seq > f->lo)) {
        uint64_t top = f->n ? f->items[0].seq - 1 : f->hi;
        if (archive_ask(f, f->lo, top, false) == 0)
            return;
    }
    fetch_done(f, true);
}

static int xrange(struct chat_history *h, struct fetch *f, uint64_t lo, uint64_t hi, unsigned count)
{
    char k[KEY_MAX], a[32], b[32], n[16];
    size_t kl = key(k, f->rid, "stream");
    int al = snprintf(a, sizeof a, "%" PRIu64 "-1", lo);
    int bl =
        hi == UINT64_MAX ? snprintf(b, sizeof b, "+") : snprintf(b, sizeof b, "%" PRIu64 "-1", hi);
    int nl = snprintf(n, sizeof n, "%u", count);
    const char *argv[6] = {"XRANGE", k, a, b, "COUNT", n};
    size_t lens[6] = {6, kl, (size_t)al, (size_t)bl, 5, (size_t)nl};
    return chat_redis_command(h->redis, on_xrange, f, 6, argv, lens);
}

/* The history frame: {"type":"history"[,"before"|"after":S],"messages":[...],"more":b}, of
 * items[0..n) (f gives the kind, cursor and more). */
static struct chat_frame *history_frame(const struct fetch *f, const struct chat_stored_msg *items,
                                        size_t n)
{
    struct cm_buf b;
    size_t total = 64;
    for (size_t i = 0; i < n; i++)
        total += items[i].len + 1;
    cm_buf_init(&b);
    cm_buf_reserve(&b, total);
    cm_buf_puts(&b, "{\"type\":\"history\"");
    if (f->kind == F_PAGE)
        cm_buf_printf(&b, ",\"%s\":%" PRIu64, f->dir == 'b' ? "before" : "after", f->cursor);
    cm_buf_puts(&b, ",\"messages\":[");
    uint64_t prev = 0;
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        if (items[i].seq <= prev)
            continue; /* never a duplicate, always ascending */
        prev = items[i].seq;
        if (!first)
            cm_buf_puts(&b, ",");
        first = false;
        cm_buf_append(&b, items[i].m, items[i].len);
    }
    cm_buf_printf(&b, "],\"more\":%s}", f->more ? "true" : "false");
    struct chat_frame *fr = chat_frame_new(b.data, b.len, CHAT_FRAME_EVENT);
    cm_buf_free(&b);
    return fr;
}

/* welcome as conn.c/protocol.c build it, with "last_seq" added as its last member. */
static struct chat_frame *welcome_frame(const struct chat_conn *c, uint64_t last_seq)
{
    struct chat_frame *w = chat_conn_welcome(c);
    struct cm_buf b;
    cm_buf_init(&b);
    cm_buf_append(&b, w->payload, w->len - 1); /* without the closing brace */
    cm_buf_printf(&b, ",\"last_seq\":%" PRIu64 "}", last_seq);
    struct chat_frame *fr = chat_frame_new(b.data, b.len, CHAT_FRAME_EVENT);
    cm_buf_free(&b);
    free(w);
    return fr;
}

/* Sends a connection its history: with the welcome for F_INITIAL (which releases it), alone
 * for F_PAGE. */
static void send_history(struct chat_history *h, struct chat_conn *c, const struct fetch *f,
                         const struct chat_stored_msg *items, size_t n)
{
    struct chat_server *srv = h->srv;
    h->st.history_sent++;
    if (f->kind == F_INITIAL)
        chat_conn_release(srv, c, welcome_frame(c, c->last_seq), history_frame(f, items, n));
    else if (chat_conn_send_private(srv, c, history_frame(f, items, n)) < 0)
        chat_conn_close(srv, c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "too many pending replies");
}

/* ---- the room's window of recent messages ----------------------------------------------
 * room->recent holds the room's latest CHAT_HISTORY_INITIAL messages as delivered here
 * (ascending, gap-free). It is read once when the room is synced (F_PRIME) and then kept up
 * by every delivery, so a joiner's history and a short resume are served from memory: a
 * crowd joining a room costs one read instead of one each, and the publishes behind it on
 * the command connection do not wait for fifty history reads (found by make bench: 1000
 * joins made publishes wait 1-2 s). */

static void recent_init(struct chat_room *room, uint64_t top)
{
    for (uint32_t i = 0; i < room->recent_n; i++)
        free(room->recent[i].m);
    if (!room->recent)
        room->recent = cm_xcalloc(CHAT_HISTORY_INITIAL, sizeof *room->recent);
    room->recent_n = 0;
    room->recent_top = top;
}

/* A message delivered to the room: the window moves on (starts again after a jump). */
static void recent_append(struct chat_room *room, uint64_t seq, const char *m, size_t len)
{
    if (!room->recent)
        return;
    if (seq != room->recent_top + 1)
        recent_init(room, seq - 1);
    if (room->recent_n == CHAT_HISTORY_INITIAL) {
        free(room->recent[0].m);
        memmove(room->recent, room->recent + 1, (CHAT_HISTORY_INITIAL - 1) * sizeof *room->recent);
        room->recent_n--;
    }
    room->recent[room->recent_n++] = (struct chat_stored_msg){seq, cm_xstrndup(m, len), len};
    room->recent_top = seq;
}

/* Serves the read [lo, hi] (lo <= hi) of f from the window if it holds all of it. */
static bool recent_serve(struct chat_history *h, struct chat_conn *c, const struct fetch *f)
{
    const struct chat_room *room = c->room;
    if (!room->recent || f->hi > room->recent_top ||
        f->lo + room->recent_n <= room->recent_top) /* lo < top - n + 1 */
        return false;
    size_t first = (size_t)(room->recent_n - (room->recent_top - f->lo + 1));
    h->st.history_from_memory++;
    send_history(h, c, f, room->recent + first, (size_t)(f->hi - f->lo + 1));
    return true;
}

/* A message for the room's connections, in seq order. */
static void deliver(struct chat_history *h, struct chat_room *room, uint64_t seq, const char *m,
                    size_t len)
{
    room->delivered = seq;
    recent_append(room, seq, m, len);
    chat_fanout_room(h->srv, room, chat_frame_new(m, len, CHAT_FRAME_MESSAGE));
}

static void fetch_done(struct fetch *f, bool ok)
{
    struct chat_history *h = f->h;
    struct chat_server *srv = h->srv;
    switch (f->kind) {
    case F_INITIAL:
    case F_PAGE: {
        struct chat_conn *c = conn_by_id(h, f->rid, f->conn_id);
        if (c && c->hist_inflight)
            c->hist_inflight--;
        if (!c)
            break;
        if (!ok) {
            h->st.history_failed++;
            if (f->kind == F_INITIAL)
                chat_conn_close(srv, c, CHAT_CLOSE_TRY_AGAIN, "history unavailable");
            else
                send_error(srv, c, "unavailable", "history cannot be read now; ask again", NULL, 0);
            break;
        }
        send_history(h, c, f, f->items, f->n);
        break;
    }
    case F_PRIME: {
        struct chat_room *room = room_by_rid(h, f->rid);
        if (!room || room->hgen != f->gen)
            break;
        /* what was read (all of lo..hi, or the newest part of it without a hole) is where the
         * room's window starts; failed or short, joiners read for themselves as before */
        size_t k = f->n;
        while (ok && k > 0 && f->n - k < CHAT_HISTORY_INITIAL &&
               f->items[k - 1].seq == f->hi - (f->n - k))
            k--;
        for (size_t i = ok ? k : f->n; i < f->n; i++) {
            room->recent[room->recent_n++] = f->items[i];
            f->items[i].m = NULL; /* the room owns it now */
        }
        room_ready(h, room, f->cursor);
        break;
    }
    case F_GAP: {
        struct chat_room *room = room_by_rid(h, f->rid);
        if (!room || room->hgen != f->gen)
            break;
        room->fetching = false;
        if (!ok)
            break; /* the next message or the subscriber's reconnect asks again */
        h->st.gap_fetches++;
        for (size_t i = 0; i < f->n; i++) {
            struct chat_stored_msg *it = &f->items[i];
            if (it->seq <= room->delivered)
                continue;
            if (it->seq != room->delivered + 1) {
                /* the stream no longer holds what this room missed (it lagged by more than
                 * CHAT_STREAM_LEN): its connections cannot get a gap-free live stream, so they
                 * are closed 1013 and come back with since= (served from the archive) */
                h->st.unfillable++;
                cm_warn("room rid=%" PRId64 ": seqs %" PRIu64 "..%" PRIu64
                        " left the stream before delivery; reconnecting its clients",
                        room->rid, room->delivered + 1, it->seq - 1);
                for (struct chat_conn *c = room->conns; c; c = c->rnext)
                    chat_conn_close(srv, c, CHAT_CLOSE_TRY_AGAIN, "fell behind the stream");
            }
            deliver(h, room, it->seq, it->m, it->len);
        }
        if (f->n == CHAT_HISTORY_GAP_FETCH || room->seen_max > room->delivered)
            gap_fetch(h, room);
        break;
    }
    case F_DUP: {
        struct pub *p = f->pub;
        struct chat_conn *c = conn_by_id(h, p->rid, p->conn_id);
        if (c && ok && f->n)
            (void)chat_conn_send_private(
                srv, c, chat_frame_new(f->items[0].m, f->items[0].len, CHAT_FRAME_MESSAGE));
        else if (c)
            pub_unavailable(p);
        pub_free(p);
        break;
    }
    case F_SEED: {
        if (!ok) {
            seedq_finish(h, f->rid, false);
            break;
        }
        /* SET NX: if another replica seeded (or published) meanwhile, its value stands */
        char k[KEY_MAX], v[24];
        size_t kl = key(k, f->rid, "seq");
        int vl = snprintf(v, sizeof v, "%" PRIu64, f->cursor);
        const char *argv[4] = {"SET", k, v, "NX"};
        size_t lens[4] = {3, kl, (size_t)vl, 2};
        h->st.reseeds++;
        int64_t *rid = cm_xmalloc(sizeof *rid);
        *rid = f->rid;
        if (chat_redis_command(h->redis, on_seeded, rid, 4, argv, lens) < 0) {
            free(rid);
            seedq_finish(h, f->rid, false);
        }
        break;
    }
    case F_SYNC: {
        struct chat_room *room = room_by_rid(h, f->rid);
        if (!room || room->hgen != f->gen)
            break;
        /* no counter in Redis and no answer from the archive: the room starts at 0 here
         * (joins work); its first publish needs the archive to reseed the counter, so no
         * seq can be given out twice (the room then catches up through gap filling) */
        if (!ok)
            cm_warn("room rid=%" PRId64 ": no counter in Redis and the archive does not answer; "
                    "joining at seq 0",
                    room->rid);
        room_synced(h, room, true, ok ? f->cursor : 0);
        break;
    }
    }
    fetch_free(f);
}

/* Starts reading [lo, hi] for a connection's history frame. */
static void conn_fetch(struct chat_history *h, struct chat_conn *c, enum fetch_kind kind, char dir,
                       uint64_t cursor, uint64_t lo, uint64_t hi, bool more)
{
    struct fetch *f = fetch_new(h, kind, c->rid);
    f->conn_id = c->id;
    f->dir = dir;
    f->cursor = cursor;
    f->lo = lo;
    f->hi = hi;
    f->more = more;
    c->hist_inflight++;
    if (hi < lo) {
        fetch_done(f, true); /* nothing to read */
        return;
    }
    if (recent_serve(h, c, f)) {
        c->hist_inflight--;
        fetch_free(f);
        return;
    }
    if (xrange(h, f, lo, hi, (unsigned)(hi - lo + 1)) < 0)
        fetch_done(f, false);
}

/* ---- the room's live stream ------------------------------------------------------------ */

static void gap_fetch(struct chat_history *h, struct chat_room *room)
{
    if (room->fetching || !room->synced)
        return;
    struct fetch *f = fetch_new(h, F_GAP, room->rid);
    f->gen = room->hgen;
    f->lo = room->delivered + 1;
    f->hi = UINT64_MAX;
    room->fetching = true;
    h->st.gaps++;
    if (xrange(h, f, f->lo, UINT64_MAX, CHAT_HISTORY_GAP_FETCH) < 0) {
        room->fetching = false;
        fetch_free(f);
    }
}

/* A message from the room's channel. */
static void on_message(struct chat_history *h, struct chat_room *room, const char *m, size_t len)
{
    uint64_t seq = frame_seq(m, len);
    if (!seq)
        return;
    if (seq > room->seen_max)
        room->seen_max = seq;
    if (!room->synced || room->fetching || seq <= room->delivered)
        return; /* not yet synced / the fetch in flight covers it / a duplicate */
    if (seq != room->delivered + 1) {
        gap_fetch(h, room);
        return;
    }
    deliver(h, room, seq, m, len);
}

/* Starts a connection's history: its last_seq is the room's cursor now. */
static void conn_start(struct chat_history *h, struct chat_conn *c)
{
    struct chat_room *room = c->room;
    uint64_t last = room->delivered;
    c->waiting = false;
    c->last_seq = last;
    if (c->has_since) {
        uint64_t s = c->since;
        if (s >= last)
            conn_fetch(h, c, F_INITIAL, 's', s, 1, 0, false);
        else
            conn_fetch(h, c, F_INITIAL, 's', s, s + 1,
                       last - s > CHAT_HISTORY_RESUME_MAX ? s + CHAT_HISTORY_RESUME_MAX : last,
                       last - s > CHAT_HISTORY_RESUME_MAX);
    } else {
        uint64_t lo = last > CHAT_HISTORY_INITIAL ? last - CHAT_HISTORY_INITIAL + 1 : 1;
        conn_fetch(h, c, F_INITIAL, 0, 0, lo, last, lo > 1);
    }
}

/* The room's cursor is seq and its window is read: deliveries start, joiners are served. */
static void room_ready(struct chat_history *h, struct chat_room *room, uint64_t seq)
{
    room->syncing = false;
    room->synced = true;
    room->delivered = seq;
    for (struct chat_conn *c = room->conns; c; c = c->rnext)
        if (c->waiting)
            conn_start(h, c);
    if (room->seen_max > room->delivered)
        gap_fetch(h, room);
}

/* The room's counter is read (ok: seq) or could not be. Before the room counts as synced,
 * its latest messages are read into its window (F_PRIME); until then it delivers nothing
 * (as while its counter is read) and its joiners wait, so none gets a message twice. */
static void room_synced(struct chat_history *h, struct chat_room *room, bool ok, uint64_t seq)
{
    if (ok) {
        recent_init(room, seq);
        if (seq == 0) {
            room_ready(h, room, 0);
            return;
        }
        struct fetch *f = fetch_new(h, F_PRIME, room->rid);
        f->gen = room->hgen;
        f->cursor = seq;
        f->hi = seq;
        f->lo = seq > CHAT_HISTORY_INITIAL ? seq - CHAT_HISTORY_INITIAL + 1 : 1;
        if (xrange(h, f, f->lo, f->hi, (unsigned)(f->hi - f->lo + 1)) < 0) {
            fetch_free(f);
            room_ready(h, room, seq);
        }
        return;
    }
    room->syncing = false;
    /* the waiting connections cannot learn last_seq: they come back later */
    for (struct chat_conn *c = room->conns; c; c = c->rnext)
        if (c->waiting)
            chat_conn_close(h->srv, c, CHAT_CLOSE_TRY_AGAIN, "history unavailable");
}

static void on_get_seq(struct chat_redis *r, const redisReply *rep, void *ud)
{
    (void)r;
    struct fetch *f = ud;
    struct chat_history *h = f->h;
    struct chat_room *room = room_by_rid(h, f->rid);
    if (!room || room->hgen != f->gen) {
        fetch_free(f);
        return;
    }
    if (rep && rep->type == REDIS_REPLY_NIL) {
        /* no counter: a new room, or Redis lost it; the archive knows which */
        if (!h->archive) {
            fetch_free(f);
            room_synced(h, room, true, 0);
            return;
        }
        if (archive_ask(f, 0, 0, true) < 0) {
            fetch_free(f);
            room_synced(h, room, true, 0); /* as F_SYNC without an answer */
        }
        return;
    }
    uint64_t v = 0;
    bool ok = rep && rep->type == REDIS_REPLY_STRING &&
              chat_history_parse_since(rep->str, rep->len, &v) == 0;
    fetch_free(f);
    if (ok)
        room->counter_known = true; /* the room's first publish here needs no probe */
    room_synced(h, room, ok, v);
}

/* The room's channel is subscribed: learn its cursor (first time) or catch up (after the
 * subscriber reconnected: everything after the last delivered seq). */
static void room_subscribed(struct chat_history *h, struct chat_room *room)
{
    room->hstate = H_SUBSCRIBED;
    /* first: its answer (same connection, in order) comes before the counter's, so the
     * welcome lists the members of every replica */
    chat_presence_room_subscribed(h->srv, room);
    if (room->synced) {
        h->st.resubscribes++;
        gap_fetch(h, room);
        return;
    }
    if (room->syncing)
        return;
    struct fetch *f = fetch_new(h, F_SYNC, room->rid);
    f->gen = room->hgen;
    char k[KEY_MAX];
    size_t kl = key(k, room->rid, "seq");
    const char *argv[2] = {"GET", k};
    size_t lens[2] = {3, kl};
    room->syncing = true;
    if (chat_redis_command(h->redis, on_get_seq, f, 2, argv, lens) < 0) {
        fetch_free(f);
        room_synced(h, room, false, 0);
    }
}

static void subscribe_room(struct chat_history *h, struct chat_room *room)
{
    char ch[KEY_MAX];
    size_t n = key(ch, room->rid, "pub");
    if (chat_redis_subscribe(h->redis, ch, n) == 0)
        room->hstate = H_SUBSCRIBING;
    else
        room->hstate = H_NEW; /* on_sub_connected subscribes it */
}

static void hook_sub_connected(void *ud)
{
    struct chat_history *h = ud;
    for (size_t b = 0; b < RID_BUCKETS; b++)
        for (struct chat_room *r = h->rooms[b]; r; r = r->rid_next)
            subscribe_room(h, r);
}

static void hook_sub(void *ud, char kind, const char *channel, size_t chlen, const char *payload,
                     size_t len)
{
    struct chat_history *h = ud;
    /* "parley:{r<rid>}:pub" */
    static const char pre[] = "parley:{r";
    if (chlen < sizeof pre || memcmp(channel, pre, sizeof pre - 1) != 0)
        return;
    int64_t rid = 0;
    size_t i = sizeof pre - 1;
    for (; i < chlen && channel[i] >= '0' && channel[i] <= '9' && rid < CM_TOKEN_RID_MAX; i++)
        rid = rid * 10 + (channel[i] - '0');
    struct chat_room *room = room_by_rid(h, rid);
    if (!room)
        return;
    if (kind == 's')
        room_subscribed(h, room);
    else if (kind == 'm' && len && (payload[0] == 'P' || payload[0] == 'T'))
        chat_presence_on_event(h->srv, room, payload, len); /* presence, never a message */
    else if (kind == 'm' && room->hstate == H_SUBSCRIBED)
        on_message(h, room, payload, len);
}

/* The command connection is back: what failed while it was down is asked again (a gap
 * fill whose XRANGE failed, a room whose counter could not be read). */
static void hook_ready(void *ud, bool ready)
{
    struct chat_history *h = ud;
    chat_presence_on_ready(h->srv, ready);
    if (!ready) {
        /* Redis may come back without the counters (restarted without its data): the
         * next publish of each room probes again */
        for (size_t b = 0; b < RID_BUCKETS; b++)
            for (struct chat_room *r = h->rooms[b]; r; r = r->rid_next)
                r->counter_known = false;
        return;
    }
    for (size_t b = 0; b < RID_BUCKETS; b++)
        for (struct chat_room *r = h->rooms[b]; r; r = r->rid_next) {
            if (r->synced && r->seen_max > r->delivered)
                gap_fetch(h, r);
            else if (!r->synced && !r->syncing && r->hstate == H_SUBSCRIBED)
                room_subscribed(h, r);
        }
}

/* ---- joining and leaving --------------------------------------------------------------- */

int chat_history_join(struct chat_server *srv, struct chat_conn *c)
{
    struct chat_history *h = srv->hist;
    struct chat_room *room = c->room;
    c->held = true;
    if (!room->rid) {
        room->rid = c->rid;
        room->hgen = ++h->gen;
        size_t b = (uint64_t)room->rid % RID_BUCKETS;
        room->rid_next = h->rooms[b];
        h->rooms[b] = room;
        subscribe_room(h, room);
    } else if (room->rid != c->rid) {
        return -1; /* the room was deleted and its name taken again while we hold the old one */
    }
    if (room->synced) {
        conn_start(h, c);
        return 0;
    }
    c->waiting = true;
    if (room->hstate == H_SUBSCRIBED && !room->syncing)
        room_subscribed(h, room); /* a failed sync: try again */
    return 0;
}

void chat_history_room_gone(struct chat_server *srv, struct chat_room *room)
{
    struct chat_history *h = srv->hist;
    if (!h || !room->rid)
        return;
    struct chat_room **pp = &h->rooms[(uint64_t)room->rid % RID_BUCKETS];
    for (; *pp; pp = &(*pp)->rid_next)
        if (*pp == room) {
            *pp = room->rid_next;
            break;
        }
    char ch[KEY_MAX];
    size_t n = key(ch, room->rid, "pub");
    if (room->hstate != H_NEW)
        (void)chat_redis_unsubscribe(h->redis, ch, n);
    chat_presence_room_gone(srv, room);
    room->rid = 0;
}

/* ---- publishing ------------------------------------------------------------------------ */

static void pub_free(struct pub *p)
{
    if (!p)
        return;
    p->h->npub--;
    free(p->cid);
    for (int i = 0; i < 3; i++)
        free(p->parts[i]);
    free(p);
}

static void pub_unavailable(struct pub *p)
{
    struct chat_history *h = p->h;
    h->st.unavailable++;
    struct chat_conn *c = conn_by_id(h, p->rid, p->conn_id);
    if (c)
        send_error(h->srv, c, "unavailable", "the message could not be stored now; send it again",
                   p->cid, p->cidlen);
}

static struct seedq *seedq_of(struct chat_history *h, int64_t rid)
{
    for (struct seedq *q = h->seeding; q; q = q->next)
        if (q->rid == rid)
            return q;
    return NULL;
}

static void seedq_push(struct seedq *q, struct pub *p)
{
    p->next = NULL;
    if (!q->tail || q->tail->order < p->order) {
        if (q->tail)
            q->tail->next = p;
        else
            q->head = p;
        q->tail = p;
        return;
    }
    /* an earlier arrival (its {2} came back late): before every later one */
    struct pub **pp = &q->head;
    while (*pp && (*pp)->order < p->order)
        pp = &(*pp)->next;
    p->next = *pp;
    *pp = p;
}

static void mark_counter_known(struct chat_history *h, int64_t rid)
{
    struct chat_room *room = room_by_rid(h, rid);
    if (room)
        room->counter_known = true;
}

/* The room's counter exists (ok: seeded, or the probe was stored) or could not be had:
 * send (or refuse) what waited. */
static void seedq_finish(struct chat_history *h, int64_t rid, bool ok)
{
    struct seedq **pp = &h->seeding, *q = NULL;
    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->rid == rid) {
            q = *pp;
            *pp = q->next;
            break;
        }
    if (!q)
        return;
    if (ok)
        mark_counter_known(h, rid);
    for (struct pub *p = q->head, *next; p; p = next) {
        next = p->next;
        p->next = NULL;
        if (ok && !h->freeing) {
            (void)pub_send(p);
        } else {
            pub_unavailable(p);
            pub_free(p);
        }
    }
    free(q);
}

/* The probe's answer did not show the counter (a retry, an error): the next waiting
 * publish goes alone as the new probe; none left, the queue is gone. */
static void probe_next(struct chat_history *h, int64_t rid)
{
    struct seedq *q = seedq_of(h, rid);
    if (!q || q->state != Q_PROBING)
        return;
    while (q->head && !h->freeing) {
        struct pub *p = q->head;
        q->head = p->next;
        if (!q->head)
            q->tail = NULL;
        p->next = NULL;
        p->probe = true;
        if (pub_send(p))
            return;
    }
    seedq_finish(h, rid, false); /* empty, or shutting down: what is left is refused */
}

static void publish_answered(struct chat_redis *r, const redisReply *rep, struct pub *p);

static void on_published(struct chat_redis *r, const redisReply *rep, void *ud)
{
    struct pub *p = ud;
    struct chat_history *h = p->h;
    int64_t rid = p->rid;
    if (!p->probe) {
        publish_answered(r, rep, p);
        return;
    }
    p->probe = false;
    if (!rep) { /* the connection is gone: nothing waiting can be sent on it */
        pub_unavailable(p);
        pub_free(p);
        seedq_finish(h, rid, false);
        return;
    }
    bool stored = rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1 &&
                  rep->element[0]->type == REDIS_REPLY_INTEGER && rep->element[0]->integer == 1;
    publish_answered(r, rep, p); /* p is freed, or queued for a reseed ({2}: Q_SEEDING now) */
    struct seedq *q = seedq_of(h, rid);
    if (!q || q->state != Q_PROBING) {
        if (stored)
            mark_counter_known(h, rid);
        return;
    }
    if (stored)
        seedq_finish(h, rid, true);
    else
        probe_next(h, rid);
}

static void publish_answered(struct chat_redis *r, const redisReply *rep, struct pub *p)
{
    struct chat_history *h = p->h;
    if (!rep) {
        pub_unavailable(p);
        pub_free(p);
        return;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        if (rep->len >= 4 && !memcmp(rep->str, "GONE", 4)) {
            /* the room was deleted: this connection has nowhere to talk any more */
            struct chat_conn *c = conn_by_id(h, p->rid, p->conn_id);
            if (c) {
                send_error(h->srv, c, "room_deleted", "this room was deleted", p->cid, p->cidlen);
                chat_conn_close(h->srv, c, LWS_CLOSE_STATUS_NORMAL, "room deleted");
            }
            pub_free(p);
            return;
        }
        if (rep->len >= 8 && !memcmp(rep->str, "NOSCRIPT", 8))
            chat_redis_reload_script(r);
        else if (!(rep->len >= 11 && !memcmp(rep->str, "UNAVAILABLE", 11)))
            cm_warn("redis: publish failed: %.*s", (int)rep->len, rep->str);
        pub_unavailable(p);
        pub_free(p);
        return;
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
        rep->element[0]->type != REDIS_REPLY_INTEGER) {
        pub_unavailable(p);
        pub_free(p);
        return;
    }
    long long code = rep->element[0]->integer;
    if (code == 1) {
        h->st.published++;
        pub_free(p);
        return;
    }
    if (code == 0 && rep->elements >= 2 && rep->element[1]->type == REDIS_REPLY_INTEGER) {
        /* a retry of a stored client_id: the sender gets the stored frame again */
        h->st.dup++;
        struct chat_conn *c = conn_by_id(h, p->rid, p->conn_id);
        if (rep->elements >= 3 && rep->element[2]->type == REDIS_REPLY_STRING) {
            if (c)
                (void)chat_conn_send_private(
                    h->srv, c,
                    chat_frame_new(rep->element[2]->str, rep->element[2]->len, CHAT_FRAME_MESSAGE));
            pub_free(p);
            return;
        }
        uint64_t seq = (uint64_t)rep->element[1]->integer;
        struct fetch *f = fetch_new(h, F_DUP, p->rid);
        f->pub = p;
        f->lo = f->hi = seq;
        if (archive_ask(f, seq, seq, false) < 0) {
            f->pub = NULL;
            fetch_free(f);
            pub_unavailable(p);
            pub_free(p);
        }
        return;
    }
    if (code == 2 && !p->seeded) {
        /* the room's counter is missing: reseed it from the archive's max(seq), once for
         * all the room's publishes that come back like this one (a probing queue becomes
         * the reseed's: what waited for the probe now waits for the counter) */
        p->seeded = true;
        struct seedq *q = seedq_of(h, p->rid);
        if (q && q->state == Q_SEEDING) {
            seedq_push(q, p);
            return;
        }
        if (!q) {
            q = cm_xcalloc(1, sizeof *q);
            q->rid = p->rid;
            q->next = h->seeding;
            h->seeding = q;
        }
        q->state = Q_SEEDING;
        seedq_push(q, p);
        struct fetch *f = fetch_new(h, F_SEED, p->rid);
        if (!h->archive) {
            f->cursor = 0;
            fetch_done(f, true);
        } else if (archive_ask(f, 0, 0, true) < 0) {
            fetch_free(f);
            seedq_finish(h, p->rid, false);
        }
        return;
    }
    pub_unavailable(p);
    pub_free(p);
}

static void on_seeded(struct chat_redis *r, const redisReply *rep, void *ud)
{
    struct chat_history *h = chat_redis_user(r);
    int64_t rid = *(int64_t *)ud;
    free(ud);
    seedq_finish(h, rid, rep && rep->type != REDIS_REPLY_ERROR);
}

/* Sends p's EVALSHA; false if it could not be sent (p was refused and freed). */
static bool pub_send(struct pub *p)
{
    struct chat_history *h = p->h;
    const struct chat_config *cfg = h->srv->cfg;
    char kseq[KEY_MAX], kstream[KEY_MAX], kidem[KEY_MAX * 2], ch[KEY_MAX];
    char cap[24], ttl[24], ocap[24], rid[24];
    size_t lseq = key(kseq, p->rid, "seq"), lstream = key(kstream, p->rid, "stream");
    size_t lch = key(ch, p->rid, "pub");
    size_t lidem = 0;
    if (p->cid) {
        int n = snprintf(kidem, KEY_MAX, "parley:{r%" PRId64 "}:idem:%s:", p->rid, p->uid);
        lidem = n < 0 ? 0 : (size_t)n;
        memcpy(kidem + lidem, p->cid, p->cidlen); /* client_id <= 256 bytes: fits */
        lidem += p->cidlen;
    }
    int lcap = snprintf(cap, sizeof cap, "%lld", cfg->stream_len);
    int lttl = snprintf(ttl, sizeof ttl, "%lld", cfg->idempotency_ttl);
    int locap = snprintf(ocap, sizeof ocap, "%lld", cfg->outbox_max);
    int lrid = snprintf(rid, sizeof rid, "%" PRId64, p->rid);
    const char *sha = chat_redis_script_sha(h->redis);
    char kdel[KEY_MAX];
    size_t ldel = key(kdel, p->rid, "deleted");
    int nkeys = p->cid ? 5 : 4;
    const char *argv[16];
    size_t lens[16];
    int n = 0;
    argv[n] = "EVALSHA", lens[n++] = 7;
    argv[n] = sha, lens[n++] = strlen(sha);
    argv[n] = nkeys == 5 ? "5" : "4", lens[n++] = 1;
    argv[n] = kseq, lens[n++] = lseq;
    argv[n] = kstream, lens[n++] = lstream;
    argv[n] = "parley:outbox", lens[n++] = 13;
    argv[n] = kdel, lens[n++] = ldel;
    if (p->cid)
        argv[n] = kidem, lens[n++] = lidem;
    for (int i = 0; i < 3; i++)
        argv[n] = p->parts[i], lens[n++] = p->plen[i];
    argv[n] = cap, lens[n++] = (size_t)lcap;
    argv[n] = ttl, lens[n++] = (size_t)lttl;
    argv[n] = ocap, lens[n++] = (size_t)locap;
    argv[n] = rid, lens[n++] = (size_t)lrid;
    argv[n] = ch, lens[n++] = lch;
    if (chat_redis_command(h->redis, on_published, p, n, argv, lens) < 0) {
        pub_unavailable(p);
        pub_free(p);
        return false;
    }
    return true;
}

void chat_history_publish(struct chat_server *srv, struct chat_conn *c, const struct chat_req *req)
{
    struct chat_history *h = srv->hist;
    if (!chat_redis_ready(h->redis) || h->npub >= (size_t)srv->cfg->redis_max_pending) {
        h->st.unavailable++;
        send_error(srv, c, "unavailable", "the message could not be stored now; send it again",
                   req->client_id, req->client_id_len);
        return;
    }
    struct pub *p = cm_xcalloc(1, sizeof *p);
    h->npub++;
    p->h = h;
    p->order = ++h->next_order;
    p->conn_id = c->id;
    p->rid = c->rid;
    memcpy(p->uid, c->uid, sizeof p->uid);
    if (req->client_id) {
        p->cid = cm_xstrndup(req->client_id, req->client_id_len);
        p->cidlen = req->client_id_len;
    }
    /* frame = p1 seq p2 seq p3: {"type":"message","id":"<rid>-<seq>","seq":<seq>,...} */
    struct cm_buf b;
    cm_buf_init(&b);
    cm_buf_printf(&b, "{\"type\":\"message\",\"id\":\"%" PRId64 "-", c->rid);
    p->parts[0] = cm_buf_take(&b, &p->plen[0]);
    p->parts[1] = cm_xstrdup("\",\"seq\":");
    p->plen[1] = strlen(p->parts[1]);
    p->parts[2] = chat_proto_message_tail(req->client_id, req->client_id_len, c->room->name, c->uid,
                                          c->member->name, req->text, req->text_len, cm_now_ms(),
                                          &p->plen[2]);
    struct seedq *q = seedq_of(h, p->rid);
    if (q) {
        /* waits behind what came before: for the probe's answer, or for the reseeded
         * counter (then a second {2} is not reseeded again) */
        p->seeded = q->state == Q_SEEDING;
        seedq_push(q, p);
        return;
    }
    if (!c->room->counter_known) {
        q = cm_xcalloc(1, sizeof *q);
        q->rid = p->rid;
        q->state = Q_PROBING;
        q->next = h->seeding;
        h->seeding = q;
        p->probe = true;
        if (!pub_send(p))
            probe_next(h, q->rid);
        return;
    }
    (void)pub_send(p);
}

/* ---- paging ---------------------------------------------------------------------------- */

void chat_history_page(struct chat_server *srv, struct chat_conn *c, const struct chat_req *req)
{
    struct chat_history *h = srv->hist;
    if (c->hist_inflight) {
        send_error(srv, c, "rate_limited", "one history request at a time", NULL, 0);
        return;
    }
    uint64_t top = c->room->delivered, s = req->hist_cursor, n = req->hist_limit;
    if (req->hist_dir == 'b') {
        uint64_t hi = s - 1 < top ? s - 1 : top;
        uint64_t lo = hi > n ? hi - n + 1 : 1;
        conn_fetch(h, c, F_PAGE, 'b', s, lo, hi, hi && lo > 1);
    } else {
        uint64_t hi = s + n < top ? s + n : top;
        conn_fetch(h, c, F_PAGE, 'a', s, s + 1, hi, hi < top);
    }
}

/* ---- life cycle, metrics --------------------------------------------------------------- */

struct chat_history *chat_history_new(struct chat_server *srv, struct lws_vhost *vh,
                                      struct chat_archive *archive)
{
    const struct chat_config *cfg = srv->cfg;
    struct chat_history *h = cm_xcalloc(1, sizeof *h);
    h->srv = srv;
    h->archive = archive;
    if (archive)
        chat_archive_set_waker(archive, srv->ctx);
    struct chat_redis_opts o = {
        .host = cfg->redis_host,
        .port = (int)cfg->redis_port,
        .password = cfg->redis_password,
        .timeout_ms = cfg->redis_timeout_ms,
        .max_pending = (size_t)cfg->redis_max_pending + 64, /* + reads besides publishes */
        .script = chat_history_script,
    };
    struct chat_redis_hooks hk = {
        .ud = h,
        .on_ready = hook_ready,
        .on_sub_connected = hook_sub_connected,
        .on_sub = hook_sub,
    };
    h->redis = chat_redis_new(srv->ctx, vh, &o, &hk);
    return h;
}

void chat_history_free(struct chat_history *h)
{
    if (!h)
        return;
    h->freeing = true;
    chat_redis_free(h->redis); /* fails what is in flight: their callbacks free them */
    while (h->seeding) {
        struct seedq *q = h->seeding;
        h->seeding = q->next;
        for (struct pub *p = q->head, *next; p; p = next) {
            next = p->next;
            pub_free(p);
        }
        free(q);
    }
    while (h->waiting) {
        struct fetch *f = h->waiting;
        h->waiting = f->next;
        if (f->pub)
            pub_free(f->pub);
        fetch_free(f);
    }
    free(h);
}

void chat_history_flush(struct chat_history *h)
{
    if (h)
        chat_redis_flush(h->redis);
}

struct chat_redis *chat_history_redis(const struct chat_history *h)
{
    return h->redis;
}

bool chat_history_available(const struct chat_history *h)
{
    /* both connections: without the subscriber a joining connection would wait for its
     * room's channel (and its welcome) until the subscriber is back */
    return h && chat_redis_ready(h->redis) && chat_redis_sub_connected(h->redis);
}

void chat_history_metrics(const struct chat_history *h, struct cm_buf *b)
{
    struct chat_redis_stats rs;
    chat_redis_stats(h->redis, &rs);
    const struct hist_stats *s = &h->st;
    cm_buf_printf(
        b,
        "# HELP chat_redis_up 1 while the command connection is ready (script loaded).\n"
        "# TYPE chat_redis_up gauge\nchat_redis_up %d\n"
        "# HELP chat_redis_subscriber_up 1 while the subscriber connection is up.\n"
        "# TYPE chat_redis_subscriber_up gauge\nchat_redis_subscriber_up %d\n"
        "# HELP chat_redis_commands_total Commands sent on the command connection.\n"
        "# TYPE chat_redis_commands_total counter\nchat_redis_commands_total %" PRIu64 "\n"
        "# HELP chat_redis_errors_total Error replies.\n"
        "# TYPE chat_redis_errors_total counter\nchat_redis_errors_total %" PRIu64 "\n"
        "# HELP chat_redis_failed_total Commands without an answer (connection lost, timeout).\n"
        "# TYPE chat_redis_failed_total counter\nchat_redis_failed_total %" PRIu64 "\n"
        "# HELP chat_redis_timeouts_total Connections dropped because Redis answered nothing "
        "for CHAT_REDIS_TIMEOUT_MS while a command waited.\n"
        "# TYPE chat_redis_timeouts_total counter\nchat_redis_timeouts_total %" PRIu64 "\n"
        "# HELP chat_redis_reconnects_total Reconnects of the command / subscriber connection.\n"
        "# TYPE chat_redis_reconnects_total counter\n"
        "chat_redis_reconnects_total{conn=\"command\"} %" PRIu64 "\n"
        "chat_redis_reconnects_total{conn=\"subscriber\"} %" PRIu64 "\n"
        "# HELP chat_redis_pending Commands in flight.\n"
        "# TYPE chat_redis_pending gauge\nchat_redis_pending %zu\n"
        "# HELP chat_publishes_pending Messages sent to Redis and not yet answered.\n"
        "# TYPE chat_publishes_pending gauge\nchat_publishes_pending %zu\n"
        "# HELP chat_messages_stored_total Messages stored and published by this daemon.\n"
        "# TYPE chat_messages_stored_total counter\nchat_messages_stored_total %" PRIu64 "\n"
        "# HELP chat_messages_duplicate_total Retries of a stored client_id (not stored again).\n"
        "# TYPE chat_messages_duplicate_total counter\nchat_messages_duplicate_total %" PRIu64 "\n"
        "# HELP chat_messages_unavailable_total Messages answered unavailable.\n"
        "# TYPE chat_messages_unavailable_total counter\nchat_messages_unavailable_total %" PRIu64
        "\n"
        "# HELP chat_subscriber_gap_fetches_total Gaps in a room's live stream filled by XRANGE.\n"
        "# TYPE chat_subscriber_gap_fetches_total counter\nchat_subscriber_gap_fetches_total "
        "%" PRIu64 "\n"
        "# HELP chat_subscriber_gaps_unfillable_total Gaps the stream no longer held (clients "
        "reconnected).\n"
        "# TYPE chat_subscriber_gaps_unfillable_total counter\n"
        "chat_subscriber_gaps_unfillable_total %" PRIu64 "\n"
        "# HELP chat_history_frames_total History frames sent (join and paging).\n"
        "# TYPE chat_history_frames_total counter\nchat_history_frames_total %" PRIu64 "\n"
        "# HELP chat_history_from_memory_total History frames served from the room's window of "
        "recent messages (no read).\n"
        "# TYPE chat_history_from_memory_total counter\nchat_history_from_memory_total %" PRIu64
        "\n"
        "# HELP chat_history_failed_total History reads that failed.\n"
        "# TYPE chat_history_failed_total counter\nchat_history_failed_total %" PRIu64 "\n"
        "# HELP chat_history_archive_reads_total Reads sent to the archive.\n"
        "# TYPE chat_history_archive_reads_total counter\nchat_history_archive_reads_total %" PRIu64
        "\n"
        "# HELP chat_seq_reseeds_total Room counters reseeded from the archive.\n"
        "# TYPE chat_seq_reseeds_total counter\nchat_seq_reseeds_total %" PRIu64 "\n",
        chat_redis_ready(h->redis) ? 1 : 0, chat_redis_sub_connected(h->redis) ? 1 : 0, rs.commands,
        rs.errors, rs.failed, rs.timeouts, rs.reconnects, rs.sub_reconnects,
        chat_redis_pending(h->redis), h->npub, s->published, s->dup, s->unavailable, s->gap_fetches,
        s->unfillable, s->history_sent, s->history_from_memory, s->history_failed, s->archive_reads,
        s->reseeds);
    cm_buf_puts(b, "# HELP chat_redis_latency_ms Command round trips.\n"
                   "# TYPE chat_redis_latency_ms histogram\n");
    for (int i = 0; i < CHAT_REDIS_LAT_BUCKETS; i++) {
        if (i < CHAT_REDIS_LAT_BUCKETS - 1)
            cm_buf_printf(b, "chat_redis_latency_ms_bucket{le=\"%g\"} %" PRIu64 "\n",
                          chat_redis_latency_le[i], rs.lat_bucket[i]);
        else
            cm_buf_printf(b, "chat_redis_latency_ms_bucket{le=\"+Inf\"} %" PRIu64 "\n",
                          rs.lat_bucket[i]);
    }
    uint64_t count = rs.lat_bucket[CHAT_REDIS_LAT_BUCKETS - 1];
    cm_buf_printf(b, "chat_redis_latency_ms_sum %.3f\nchat_redis_latency_ms_count %" PRIu64 "\n",
                  rs.lat_sum_ms, count);
    if (h->archive) {
        struct chat_archive_stats as;
        chat_archive_stats(h->archive, &as);
        cm_buf_printf(
            b,
            "# HELP chat_archive_archived_total Messages written to MongoDB.\n"
            "# TYPE chat_archive_archived_total counter\nchat_archive_archived_total %" PRIu64 "\n"
            "# HELP chat_archive_write_errors_total Failed archive writes.\n"
            "# TYPE chat_archive_write_errors_total counter\n"
            "chat_archive_write_errors_total %" PRIu64 "\n"
            "# HELP chat_archive_read_errors_total Failed archive reads.\n"
            "# TYPE chat_archive_read_errors_total counter\n"
            "chat_archive_read_errors_total %" PRIu64 "\n"
            "# HELP chat_archive_queue_depth Archive reads waiting.\n"
            "# TYPE chat_archive_queue_depth gauge\nchat_archive_queue_depth %" PRIu64 "\n"
            "# HELP chat_archive_lag_ms Age of the oldest entry of the last archived batch.\n"
            "# TYPE chat_archive_lag_ms gauge\nchat_archive_lag_ms %" PRIu64 "\n",
            as.archived, as.write_errors, as.read_errors, as.queue_depth, as.lag_ms);
    }
}
