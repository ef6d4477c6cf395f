/* The MongoDB archive: writer, readers and the room-deletion consumer (archive.h).
 *
 * Sources followed: Redis streams (XREADGROUP, XACK, XAUTOCLAIM, XDEL: redis.io/commands,
 * Redis 7.0), hiredis 0.14 (blocking API, hiredis.h), libmongoc 1.23 (mongoc_client_pool_t is
 * the thread-safe way to share clients: "mongoc_client_pool_t" and "Connection Pooling" in its
 * manual; createIndexes and update are database commands, docs.mongodb.com/manual/reference/
 * command/). Every Redis and MongoDB call here may block: none runs on the lws thread. */
#include "archive.h"

#include "chat.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>
#include <libwebsockets.h>
#include <mongoc/mongoc.h>

#include "cm_alloc.h"
#include "cm_log.h"
#include "cm_resolve.h"

#define ARCHIVE_READERS 2          /* reader threads (each holds one pooled client at a time) */
#define ARCHIVE_BLOCK_MS 500       /* XREADGROUP BLOCK: also how fast the threads see a stop */
#define ARCHIVE_BACKOFF_MIN_MS 100 /* reconnect / retry backoff, doubled up to the max */
#define ARCHIVE_BACKOFF_MAX_MS 5000
#define ARCHIVE_DELETE_BATCH 16     /* room deletions read at once */
#define ARCHIVE_SCAN_COUNT 1000     /* SCAN COUNT (keys looked at per call) when deleting */
#define ARCHIVE_DELETE_WAIT_MS 1000 /* retry period while the outbox still holds older entries */
/* libmongoc's defaults would let one call hang for 30 s (server selection) or 5 min (socket):
 * unless the URI says otherwise, fail fast and retry (history requests answer `unavailable`). */
#define ARCHIVE_MONGO_SELECT_MS 3000
#define ARCHIVE_MONGO_CONNECT_MS 2000
#define ARCHIVE_MONGO_SOCKET_MS 10000
#define ARCHIVE_COLLECTION "messages"
/* Largest frame archived: its document holds it twice (frame and text), under BSON's 16 MiB;
 * frames are bounded far below by CHAT_MAX_MESSAGE_BYTES anyway. */
#define ARCHIVE_FRAME_MAX (4u << 20)

struct archive_req {
    struct archive_req *next;
    uint64_t tag, from, to;
    int64_t rid;
    unsigned limit;
    bool max_only;
};

/* A result with its queue link; r is first, so &node->r is the address malloc returned. */
struct archive_res {
    struct chat_archive_result r;
    struct archive_res *next;
};

struct chat_archive {
    const struct chat_config *cfg;
    mongoc_client_pool_t *pool;
    char consumer[128]; /* this process's consumer name in both groups */

    pthread_mutex_t mu; /* guards the request queue and `stopping` */
    pthread_cond_t req_cv, stop_cv;
    struct archive_req *rq_head, *rq_tail;
    size_t rq_len;
    bool stopping;

    pthread_mutex_t res_mu; /* guards the result queue and the waker */
    struct archive_res *res_head, *res_tail;
    struct lws_context *waker;

    pthread_t writer, deleter, readers[ARCHIVE_READERS];
    bool writer_up, deleter_up;
    int nreaders;

    _Atomic uint64_t archived, write_errors, read_errors, queue_depth, lag_ms, rooms_deleted,
        claimed, dead, writes, write_ms_total, reads, read_ms_total;
};

/* ---- small helpers ---- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool stopping(struct chat_archive *a)
{
    pthread_mutex_lock(&a->mu);
    bool s = a->stopping;
    pthread_mutex_unlock(&a->mu);
    return s;
}

/* Sleeps ms, or less when the archive stops. Returns false when it is stopping. */
static bool nap(struct chat_archive *a, unsigned ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += ms / 1000;
    dl.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&a->mu);
    while (!a->stopping && pthread_cond_timedwait(&a->stop_cv, &a->mu, &dl) != ETIMEDOUT)
        ;
    bool s = a->stopping;
    pthread_mutex_unlock(&a->mu);
    return !s;
}

static unsigned backoff_next(unsigned b)
{
    return b >= ARCHIVE_BACKOFF_MAX_MS / 2 ? ARCHIVE_BACKOFF_MAX_MS : b * 2;
}

/* Parses a decimal integer in [min, max] from exactly len bytes (no sign, no spaces). */
static bool parse_u64(const char *s, size_t len, uint64_t min, uint64_t max, uint64_t *out)
{
    if (len == 0 || len > 20)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* A stream entry id "<ms>-<n>" as two numbers (for comparisons). */
static bool parse_id(const char *s, size_t len, uint64_t *ms, uint64_t *n)
{
    const char *dash = memchr(s, '-', len);
    if (!dash)
        return false;
    size_t l1 = (size_t)(dash - s);
    return parse_u64(s, l1, 0, UINT64_MAX, ms) &&
           parse_u64(dash + 1, len - l1 - 1, 0, UINT64_MAX, n);
}

/* ---- Redis (blocking hiredis, one connection per thread) ---- */

static struct timeval ms_tv(long long ms)
{
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

/* Runs one command; on a transport error frees the connection (*c = NULL) and returns NULL.
 * An error reply is returned (the caller checks REDIS_REPLY_ERROR and frees it). */
static redisReply *rcmd(redisContext **c, int argc, const char **argv, const size_t *lens)
{
    if (!*c)
        return NULL;
    redisReply *r = redisCommandArgv(*c, argc, argv, lens);
    if (!r) {
        cm_warn("archive: redis: %s", (*c)->errstr[0] ? (*c)->errstr : "connection lost");
        redisFree(*c);
        *c = NULL;
    }
    return r;
}

static bool reply_is_error(const redisReply *r, const char *prefix)
{
    return r && r->type == REDIS_REPLY_ERROR &&
           (!prefix || strncmp(r->str, prefix, strlen(prefix)) == 0);
}

/* Connects, AUTHs when a password is set, sets the command timeout (longer than BLOCK).
 * Returns NULL on failure; *was_down keeps the log to one line per outage. */
static redisContext *redis_open(struct chat_archive *a, const char *who, bool *was_down)
{
    const struct chat_config *cfg = a->cfg;
    char addr[CM_RESOLVE_ADDR_MAX];
    redisContext *c = NULL;
    if (!cm_resolve_wait(cfg->redis_host, addr, sizeof addr, cfg->redis_timeout_ms)) {
        if (!*was_down)
            cm_warn("archive %s: redis %s: no address yet (retrying)", who, cfg->redis_host);
        *was_down = true;
        return NULL;
    }
    c = redisConnectWithTimeout(addr, (int)cfg->redis_port, ms_tv(cfg->redis_timeout_ms));
    if (!c || c->err) {
        cm_resolve_refresh(cfg->redis_host);
        if (!*was_down)
            cm_warn("archive %s: redis %s:%lld: %s (retrying)", who, cfg->redis_host,
                    cfg->redis_port, c ? c->errstr : "out of memory");
        *was_down = true;
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, ms_tv(cfg->redis_timeout_ms + ARCHIVE_BLOCK_MS));
    redisEnableKeepAlive(c);
    if (cfg->redis_password && cfg->redis_password[0]) {
        const char *argv[2] = {"AUTH", cfg->redis_password};
        size_t lens[2] = {4, strlen(cfg->redis_password)};
        redisReply *r = rcmd(&c, 2, argv, lens);
        bool ok = r && r->type != REDIS_REPLY_ERROR;
        if (!ok && !*was_down) /* never log the password or Redis's reply to it */
            cm_warn("archive %s: redis AUTH refused (check CHAT_REDIS_PASSWORD)", who);
        if (r)
            freeReplyObject(r);
        if (!ok) {
            *was_down = true;
            if (c)
                redisFree(c);
            return NULL;
        }
    }
    if (*was_down)
        cm_info("archive %s: redis %s:%lld connected", who, cfg->redis_host, cfg->redis_port);
    *was_down = false;
    return c;
}

/* XGROUP CREATE key group 0 MKSTREAM: from 0, so entries added before the group existed are
 * archived too. BUSYGROUP (it exists) is success. */
static bool group_ensure(redisContext **c, const char *key, const char *group)
{
    const char *argv[6] = {"XGROUP", "CREATE", key, group, "0", "MKSTREAM"};
    size_t lens[6] = {6, 6, strlen(key), strlen(group), 1, 8};
    redisReply *r = rcmd(c, 6, argv, lens);
    if (!r)
        return false;
    bool ok = !reply_is_error(r, NULL) || reply_is_error(r, "BUSYGROUP");
    if (!ok)
        cm_warn("archive: XGROUP CREATE %s %s: %s", key, group, r->str);
    freeReplyObject(r);
    return ok;
}

/* A consumer thread's Redis connection with its group in place (group_ensure). NULL when
 * either step failed (e.g. LOADING: the caller starts over on a new connection). */
static redisContext *group_open(struct chat_archive *a, const char *who, const char *key,
                                const char *group, bool *was_down)
{
    redisContext *rc = redis_open(a, who, was_down);
    if (rc && !group_ensure(&rc, key, group)) {
        redisFree(rc);
        rc = NULL;
    }
    return rc;
}

/* A read of a consumer group failed (r: the error reply, or NULL when the connection broke;
 * freed here). NOGROUP means Redis lost the group (restarted without its data): it is
 * created again. what: named in the log for any other error, or NULL for no log. */
static void read_failed(redisContext **rc, redisReply *r, const char *key, const char *group,
                        const char *what)
{
    if (r && reply_is_error(r, "NOGROUP"))
        group_ensure(rc, key, group);
    else if (r && what)
        cm_warn("archive: %s read: %s", what, r->str);
    if (r)
        freeReplyObject(r);
}

/* A step failed: counted, then a pause that doubles up to ARCHIVE_BACKOFF_MAX_MS. */
static void retry_later(struct chat_archive *a, unsigned *backoff)
{
    atomic_fetch_add(&a->write_errors, 1);
    nap(a, *backoff);
    *backoff = backoff_next(*backoff);
}

/* XACK key group ids..., then XDEL key ids... (pipelined). The outbox is never trimmed by
 * MAXLEN: an entry leaves it only here, after its write was acknowledged. */
static bool ack_del(redisContext **c, const char *key, const char *group, char **ids, size_t n)
{
    if (n == 0)
        return true;
    if (!*c)
        return false;
    const char **argv = cm_xcalloc(n + 3, sizeof *argv);
    size_t *lens = cm_xcalloc(n + 3, sizeof *lens);
    argv[0] = "XACK";
    argv[1] = key;
    argv[2] = group;
    for (size_t i = 0; i < n; i++)
        argv[i + 3] = ids[i];
    for (size_t i = 0; i < n + 3; i++)
        lens[i] = strlen(argv[i]);
    bool ok = false;
    if (redisAppendCommandArgv(*c, (int)(n + 3), argv, lens) != REDIS_OK)
        goto out;
    argv[1] = "XDEL";
    argv[2] = key;
    lens[1] = 4;
    lens[2] = strlen(key);
    if (redisAppendCommandArgv(*c, (int)(n + 2), argv + 1, lens + 1) != REDIS_OK)
        goto out;
    ok = true;
    for (int i = 0; i < 2; i++) {
        void *rp = NULL;
        if (redisGetReply(*c, &rp) != REDIS_OK || !rp) {
            cm_warn("archive: redis: %s", (*c)->errstr[0] ? (*c)->errstr : "connection lost");
            redisFree(*c);
            *c = NULL;
            ok = false;
            break;
        }
        redisReply *r = rp;
        if (r->type == REDIS_REPLY_ERROR) {
            cm_warn("archive: %s: %s", i == 0 ? "XACK" : "XDEL", r->str);
            ok = false;
        }
        freeReplyObject(r);
    }
out:
    if (!ok && *c && (*c)->err) {
        redisFree(*c);
        *c = NULL;
    }
    free(argv);
    free(lens);
    return ok;
}

/* ---- the entries of one read ---- */

struct entry {
    char *id;    /* stream entry id */
    int64_t rid; /* 0: unusable entry (acked and dropped, logged) */
    int64_t seq;
    const char *frame; /* borrowed from the reply */
    size_t frame_len;
    char *dead; /* MongoDB refused this one document (why): it goes to the dead-letter stream */
};

struct batch {
    struct entry *e;
    size_t n, cap;
    uint64_t oldest_ms; /* id time of the oldest entry */
};

static void batch_reset(struct batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->e[i].id);
        free(b->e[i].dead);
    }
    b->n = 0;
    b->oldest_ms = UINT64_MAX;
}

static const redisReply *field(const redisReply *kv, const char *name)
{
    if (!kv || kv->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < kv->elements; i += 2) {
        const redisReply *k = kv->element[i];
        if (k->type == REDIS_REPLY_STRING && k->len == strlen(name) &&
            memcmp(k->str, name, k->len) == 0)
            return kv->element[i + 1]->type == REDIS_REPLY_STRING ? kv->element[i + 1] : NULL;
    }
    return NULL;
}

/* Adds the entries of an array of [id, [field, value, ...]] (XREADGROUP's per-stream list,
 * XAUTOCLAIM's second element). An entry without fields (deleted while pending) or with bad
 * fields is kept with rid 0: it is acked and dropped, never retried forever. */
static void batch_add(struct batch *b, const redisReply *list, const char *want_field)
{
    if (!list || list->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i < list->elements; i++) {
        const redisReply *en = list->element[i];
        if (en->type != REDIS_REPLY_ARRAY || en->elements < 1 ||
            en->element[0]->type != REDIS_REPLY_STRING)
            continue;
        if (b->n == b->cap) {
            b->cap = b->cap ? b->cap * 2 : 64;
            b->e = cm_xrealloc(b->e, b->cap * sizeof *b->e);
        }
        struct entry *e = &b->e[b->n++];
        memset(e, 0, sizeof *e);
        e->id = cm_xstrndup(en->element[0]->str, en->element[0]->len);
        uint64_t ms, sq;
        if (parse_id(en->element[0]->str, en->element[0]->len, &ms, &sq) && ms < b->oldest_ms)
            b->oldest_ms = ms;
        const redisReply *kv = en->elements > 1 ? en->element[1] : NULL;
        const redisReply *rid = field(kv, "rid");
        uint64_t v;
        if (!rid || !parse_u64(rid->str, rid->len, 1, CHAT_ARCHIVE_RID_MAX, &v))
            continue;
        e->rid = (int64_t)v;
        if (!want_field)
            continue;
        const redisReply *seq = field(kv, "seq"), *m = field(kv, want_field);
        if (!seq || !m || !parse_u64(seq->str, seq->len, 1, INT64_MAX, &v) || m->len == 0) {
            e->rid = 0;
            continue;
        }
        e->seq = (int64_t)v;
        e->frame = m->str;
        e->frame_len = m->len;
    }
}

/* XREADGROUP's reply: [[stream, entries]] or nil. */
static void batch_add_read(struct batch *b, const redisReply *r, const char *want_field)
{
    if (!r || r->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *s = r->element[i];
        if (s->type == REDIS_REPLY_ARRAY && s->elements == 2)
            batch_add(b, s->element[1], want_field);
    }
}

/* ---- MongoDB ---- */

static void log_mongo(const char *what, const bson_error_t *err, bool *was_down)
{
    if (!*was_down)
        cm_warn("archive: mongodb %s: %s (retrying)", what, err->message);
    *was_down = true;
}

/* createIndexes {rid: 1, seq: 1} unique (libmongoc 1.23 has no index model: the command).
 * Idempotent: the same index again is a no-op. */
static bool indexes_ensure(struct chat_archive *a, bool *was_down)
{
    mongoc_client_t *mc = mongoc_client_pool_pop(a->pool);
    mongoc_database_t *db = mongoc_client_get_database(mc, a->cfg->mongo_db);
    bson_t *cmd = BCON_NEW("createIndexes", BCON_UTF8(ARCHIVE_COLLECTION), "indexes", "[", "{",
                           "key", "{", "rid", BCON_INT32(1), "seq", BCON_INT32(1), "}", "name",
                           BCON_UTF8("rid_1_seq_1"), "unique", BCON_BOOL(true), "}", "]");
    bson_error_t err;
    bool ok = mongoc_database_write_command_with_opts(db, cmd, NULL, NULL, &err);
    if (!ok)
        log_mongo("createIndexes", &err, was_down);
    else
        cm_info("archive: mongodb %s.%s: index rid_1_seq_1 ready", a->cfg->mongo_db,
                ARCHIVE_COLLECTION);
    bson_destroy(cmd);
    mongoc_database_destroy(db);
    mongoc_client_pool_push(a->pool, mc);
    return ok;
}

static void append_json_str(bson_t *d, const char *key, const cJSON *j)
{
    /* cJSON decodes \u escapes without judging them: a lone surrogate is not UTF-8 */
    if (cJSON_IsString(j) && bson_utf8_validate(j->valuestring, strlen(j->valuestring), false))
        bson_append_utf8(d, key, -1, j->valuestring, -1);
}

/* The fields of one message besides the key {rid, seq} (which the upsert copies from its
 * filter): {id, user: {id, name}, text, ts, client_id?, frame} (docs/database.md). All but
 * frame are parsed from it for queries and tools, and left out when the frame lacks them;
 * frame is what clients get back. */
static void message_doc(bson_t *d, const struct entry *e)
{
    cJSON *j = cJSON_ParseWithLength(e->frame, e->frame_len);
    if (j) {
        append_json_str(d, "id", cJSON_GetObjectItemCaseSensitive(j, "id"));
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "user");
        if (cJSON_IsObject(u)) {
            bson_t ud;
            BSON_APPEND_DOCUMENT_BEGIN(d, "user", &ud);
            append_json_str(&ud, "id", cJSON_GetObjectItemCaseSensitive(u, "id"));
            append_json_str(&ud, "name", cJSON_GetObjectItemCaseSensitive(u, "name"));
            bson_append_document_end(d, &ud);
        }
        append_json_str(d, "text", cJSON_GetObjectItemCaseSensitive(j, "text"));
        const cJSON *ts = cJSON_GetObjectItemCaseSensitive(j, "ts");
        if (cJSON_IsNumber(ts) && ts->valuedouble >= 0 && ts->valuedouble < 9.0e15)
            BSON_APPEND_INT64(d, "ts", (int64_t)ts->valuedouble);
        append_json_str(d, "client_id", cJSON_GetObjectItemCaseSensitive(j, "client_id"));
        cJSON_Delete(j);
    }
    bson_append_utf8(d, "frame", -1, e->frame, (int)e->frame_len);
}

/* After a failed bulk: did the server answer, refusing only single documents? Then each
 * refused entry (map[k] = batch index of operation k) is marked dead, except duplicate keys
 * (11000: the document exists, which is what an idempotent write wants; MongoDB can report
 * it for concurrent upserts), and the batch counts as written. Anything else (no answer,
 * a write concern error) means: retry the whole batch. */
static bool refused_documents_only(const bson_t *reply, const size_t *map, size_t nmap,
                                   struct batch *b)
{
    bson_iter_t it, arr;
    if (bson_iter_init_find(&it, reply, "writeConcernErrors") && BSON_ITER_HOLDS_ARRAY(&it)) {
        uint32_t len;
        const uint8_t *data;
        bson_iter_array(&it, &len, &data);
        if (len > 5) /* a non-empty array */
            return false;
    }
    if (!bson_iter_init_find(&it, reply, "writeErrors") || !BSON_ITER_HOLDS_ARRAY(&it) ||
        !bson_iter_recurse(&it, &arr))
        return false;
    bool any = false;
    while (bson_iter_next(&arr)) {
        bson_iter_t doc;
        int64_t index = -1, code = 0;
        const char *msg = "refused";
        if (!BSON_ITER_HOLDS_DOCUMENT(&arr) || !bson_iter_recurse(&arr, &doc))
            return false;
        while (bson_iter_next(&doc)) {
            const char *k = bson_iter_key(&doc);
            if (strcmp(k, "index") == 0)
                index = bson_iter_as_int64(&doc);
            else if (strcmp(k, "code") == 0)
                code = bson_iter_as_int64(&doc);
            else if (strcmp(k, "errmsg") == 0 && BSON_ITER_HOLDS_UTF8(&doc))
                msg = bson_iter_utf8(&doc, NULL);
        }
        if (index < 0 || (uint64_t)index >= nmap)
            return false;
        any = true;
        if (code != 11000) {
            struct entry *e = &b->e[map[index]];
            free(e->dead);
            e->dead = cm_xstrndup(msg, 200);
        }
    }
    return any;
}

/* A server error worth retrying as it is (failover, shutdown, timeouts, write concern): the
 * driver's RetryableWriteError label, or the codes of the MongoDB retryable-writes spec. */
static bool transient(const bson_t *reply, const bson_error_t *err)
{
    static const uint32_t codes[] = {6,     7,     89,    91,    189,   262, 9001,
                                     10107, 11600, 11602, 13435, 13436, 64,  50};
    if (mongoc_error_has_label(reply, "RetryableWriteError"))
        return true;
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (err->code == codes[i])
            return true;
    return false;
}

/* One unordered bulk of upserts: update {rid, seq} {$setOnInsert: doc} upsert: a second
 * delivery of an entry matches the stored document and changes nothing. Keyed by the natural
 * key with its unique index rather than a string _id "<rid>:<seq>": the stand-in only stores
 * ObjectId _ids, and MongoDB retries an upsert that races another on a unique index whose
 * fields the filter matches by equality (and a duplicate key error counts as done here).
 * Returns true when MongoDB acknowledged every entry (with the URI's write concern) or refused
 * single ones for good (marked dead: too large, invalid UTF-8, a server-side validation).
 * *refused: the server refused the command itself, not for a transient reason. */
static bool archive_write(struct chat_archive *a, struct batch *b, bool *was_down, bool *refused)
{
    size_t *map = cm_xcalloc(b->n ? b->n : 1, sizeof *map), nmap = 0;
    mongoc_client_t *mc = mongoc_client_pool_pop(a->pool);
    mongoc_collection_t *coll =
        mongoc_client_get_collection(mc, a->cfg->mongo_db, ARCHIVE_COLLECTION);
    bson_t *bopts = BCON_NEW("ordered", BCON_BOOL(false));
    mongoc_bulk_operation_t *bulk = mongoc_collection_create_bulk_operation_with_opts(coll, bopts);
    bson_t *uopts = BCON_NEW("upsert", BCON_BOOL(true));
    bson_error_t err;
    for (size_t i = 0; i < b->n; i++) {
        struct entry *e = &b->e[i];
        if (!e->frame)
            continue;
        if (e->frame_len > ARCHIVE_FRAME_MAX) { /* its document could pass BSON's 16 MiB */
            e->dead = cm_xstrdup("frame larger than ARCHIVE_FRAME_MAX");
            continue;
        }
        if (!bson_utf8_validate(e->frame, e->frame_len, false)) { /* BSON strings are UTF-8 */
            e->dead = cm_xstrdup("frame is not valid UTF-8");
            continue;
        }
        bson_t sel = BSON_INITIALIZER, upd = BSON_INITIALIZER, doc;
        BSON_APPEND_INT64(&sel, "rid", e->rid);
        BSON_APPEND_INT64(&sel, "seq", e->seq);
        BSON_APPEND_DOCUMENT_BEGIN(&upd, "$setOnInsert", &doc);
        message_doc(&doc, e);
        bson_append_document_end(&upd, &doc);
        bson_error_t derr;
        /* refused before sending (libmongoc validates, e.g. UTF-8): this document only */
        if (mongoc_bulk_operation_update_one_with_opts(bulk, &sel, &upd, uopts, &derr))
            map[nmap++] = i;
        else
            e->dead = cm_xstrndup(derr.message, 200);
        bson_destroy(&sel);
        bson_destroy(&upd);
    }
    bool ok = true;
    *refused = false;
    if (nmap > 0) {
        bson_t reply;
        int64_t t0 = mono_ms();
        ok = mongoc_bulk_operation_execute(bulk, &reply, &err) != 0;
        atomic_fetch_add(&a->writes, 1);
        atomic_fetch_add(&a->write_ms_total, (uint64_t)(mono_ms() - t0));
        if (!ok && refused_documents_only(&reply, map, nmap, b))
            ok = true;
        else if (!ok && err.domain == MONGOC_ERROR_SERVER && !transient(&reply, &err)) {
            /* the server refused the whole command: one of its documents, probably. Alone,
             * the document is dead; in a batch, the writer retries one entry at a time */
            *refused = true;
            if (nmap == 1) {
                b->e[map[0]].dead = cm_xstrndup(err.message, 200);
                ok = true;
            }
        }
        bson_destroy(&reply);
    }
    if (!ok) {
        log_mongo("write", &err, was_down);
        for (size_t i = 0; i < b->n; i++) { /* all again, the verdicts too */
            free(b->e[i].dead);
            b->e[i].dead = NULL;
        }
    } else if (*was_down) {
        cm_info("archive: mongodb writes succeed again");
        *was_down = false;
    }
    bson_destroy(uopts);
    bson_destroy(bopts);
    mongoc_bulk_operation_destroy(bulk);
    mongoc_collection_destroy(coll);
    mongoc_client_pool_push(a->pool, mc);
    free(map);
    return ok;
}

/* XADD parley:outbox:dead * rid seq m error for each entry MongoDB refused for good: kept
 * for an operator (docs/database.md) instead of blocking the outbox forever or vanishing. */
static bool dead_letter(struct chat_archive *a, redisContext **c, const struct batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        const struct entry *e = &b->e[i];
        if (!e->dead)
            continue;
        char rid[24], seq[24];
        snprintf(rid, sizeof rid, "%" PRId64, e->rid);
        snprintf(seq, sizeof seq, "%" PRId64, e->seq);
        cm_error("archive: room %s seq %s cannot be archived (%s): moved to %s", rid, seq, e->dead,
                 CHAT_ARCHIVE_DEAD);
        const char *argv[11] = {"XADD", CHAT_ARCHIVE_DEAD, "*",     "rid",  rid, "seq", seq,
                                "m",    e->frame,          "error", e->dead};
        size_t lens[11];
        for (int k = 0; k < 11; k++)
            lens[k] = k == 8 ? e->frame_len : strlen(argv[k]);
        redisReply *r = rcmd(c, 11, argv, lens);
        bool ok = r && r->type == REDIS_REPLY_STRING;
        if (r)
            freeReplyObject(r);
        if (!ok)
            return false;
        atomic_fetch_add(&a->dead, 1);
    }
    return true;
}

/* ---- the writer thread ---- */

/* XAUTOCLAIM outbox archivers me min-idle cursor COUNT n: takes over entries that another
 * consumer (a dead daemon) read and never acked. Updates *cursor ("0-0" = full pass done). */
static redisReply *claim(struct chat_archive *a, redisContext **c, char *cursor, size_t cursor_sz,
                         struct batch *b)
{
    char idle[24], count[24];
    snprintf(idle, sizeof idle, "%lld", a->cfg->archive_claim_ms);
    snprintf(count, sizeof count, "%lld", a->cfg->archive_batch);
    const char *argv[8] = {
        "XAUTOCLAIM", CHAT_ARCHIVE_OUTBOX, CHAT_ARCHIVE_GROUP, a->consumer, idle, cursor, "COUNT",
        count};
    size_t lens[8];
    for (int i = 0; i < 8; i++)
        lens[i] = strlen(argv[i]);
    redisReply *r = rcmd(c, 8, argv, lens);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 2)
        return r;
    const redisReply *next = r->element[0];
    if (next->type == REDIS_REPLY_STRING && next->len < cursor_sz)
        snprintf(cursor, cursor_sz, "%.*s", (int)next->len, next->str);
    else
        snprintf(cursor, cursor_sz, "0-0");
    batch_add(b, r->element[1], "m");
    return r;
}

/* Forgets consumers of a group that hold nothing and have not read for 10 x
 * CHAT_ARCHIVE_CLAIM_MS (a daemon that restarted under a new name): each would otherwise stay
 * in the group forever. A live consumer reads every ARCHIVE_BLOCK_MS, which resets its idle
 * time; one with pending entries is left until its entries were claimed. */
static void reap_consumers(struct chat_archive *a, redisContext **c, const char *key,
                           const char *group)
{
    const char *argv[4] = {"XINFO", "CONSUMERS", key, group};
    size_t lens[4];
    for (int i = 0; i < 4; i++)
        lens[i] = strlen(argv[i]);
    redisReply *r = rcmd(c, 4, argv, lens);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r)
            freeReplyObject(r);
        return;
    }
    long long dead_ms = a->cfg->archive_claim_ms * 10;
    for (size_t i = 0; i < r->elements && *c; i++) {
        const redisReply *cons = r->element[i];
        const char *name = NULL;
        size_t name_len = 0;
        long long pending = -1, idle = -1;
        for (size_t j = 0; cons->type == REDIS_REPLY_ARRAY && j + 1 < cons->elements; j += 2) {
            const redisReply *k = cons->element[j], *v = cons->element[j + 1];
            if (k->type != REDIS_REPLY_STRING)
                continue;
            if (strcmp(k->str, "name") == 0 && v->type == REDIS_REPLY_STRING) {
                name = v->str;
                name_len = v->len;
            } else if (strcmp(k->str, "pending") == 0 && v->type == REDIS_REPLY_INTEGER)
                pending = v->integer;
            else if (strcmp(k->str, "idle") == 0 && v->type == REDIS_REPLY_INTEGER)
                idle = v->integer;
        }
        if (!name || pending != 0 || idle < dead_ms ||
            (name_len == strlen(a->consumer) && memcmp(name, a->consumer, name_len) == 0))
            continue;
        const char *dv[5] = {"XGROUP", "DELCONSUMER", key, group, name};
        size_t dl[5] = {6, 11, strlen(key), strlen(group), name_len};
        redisReply *d = rcmd(c, 5, dv, dl);
        if (d && d->type != REDIS_REPLY_ERROR)
            cm_info("archive: consumer %.*s of %s left group %s (idle %lld ms, nothing pending)",
                    (int)name_len, name, key, group, idle);
        if (d)
            freeReplyObject(d);
    }
    freeReplyObject(r);
}

static redisReply *read_group(struct chat_archive *a, redisContext **c, const char *key,
                              const char *group, long long count, bool pending, bool block)
{
    char cnt[24], blk[24];
    snprintf(cnt, sizeof cnt, "%lld", count);
    snprintf(blk, sizeof blk, "%d", ARCHIVE_BLOCK_MS);
    const char *argv[11];
    int n = 0;
    argv[n++] = "XREADGROUP";
    argv[n++] = "GROUP";
    argv[n++] = group;
    argv[n++] = a->consumer;
    argv[n++] = "COUNT";
    argv[n++] = cnt;
    if (block) {
        argv[n++] = "BLOCK";
        argv[n++] = blk;
    }
    argv[n++] = "STREAMS";
    argv[n++] = key;
    argv[n++] = pending ? "0" : ">"; /* 0: our own pending entries (after a failure) */
    size_t lens[11];
    for (int i = 0; i < n; i++)
        lens[i] = strlen(argv[i]);
    return rcmd(c, n, argv, lens);
}

static void *writer_main(void *arg)
{
    struct chat_archive *a = arg;
    redisContext *rc = NULL;
    bool redis_down = false, mongo_down = false, indexed = false, pending = true, single = false;
    unsigned backoff = ARCHIVE_BACKOFF_MIN_MS;
    char cursor[64] = "0-0";
    int64_t claim_due = 0;
    struct batch b = {.oldest_ms = UINT64_MAX};

    while (!stopping(a)) {
        if (!rc) {
            rc = group_open(a, "writer", CHAT_ARCHIVE_OUTBOX, CHAT_ARCHIVE_GROUP, &redis_down);
            if (!rc) {
                retry_later(a, &backoff);
                continue;
            }
            pending = true;
        }
        if (!indexed && !(indexed = indexes_ensure(a, &mongo_down))) {
            retry_later(a, &backoff);
            continue;
        }
        batch_reset(&b);
        redisReply *r;
        bool claiming = false;
        if (pending) {
            r = read_group(a, &rc, CHAT_ARCHIVE_OUTBOX, CHAT_ARCHIVE_GROUP,
                           single ? 1 : a->cfg->archive_batch, true, false);
            if (r && r->type != REDIS_REPLY_ERROR)
                batch_add_read(&b, r, "m");
        } else if (now_ms() >= claim_due) {
            claiming = true;
            r = claim(a, &rc, cursor, sizeof cursor, &b);
            if (r && r->type != REDIS_REPLY_ERROR && strcmp(cursor, "0-0") == 0) {
                claim_due = now_ms() + a->cfg->archive_claim_ms / 2;
                reap_consumers(a, &rc, CHAT_ARCHIVE_OUTBOX, CHAT_ARCHIVE_GROUP);
                reap_consumers(a, &rc, CHAT_ARCHIVE_DELETIONS, CHAT_ARCHIVE_DELETERS);
            }
        } else {
            r = read_group(a, &rc, CHAT_ARCHIVE_OUTBOX, CHAT_ARCHIVE_GROUP, a->cfg->archive_batch,
                           false, true);
            if (r && r->type != REDIS_REPLY_ERROR)
                batch_add_read(&b, r, "m");
        }
        if (!r || r->type == REDIS_REPLY_ERROR) {
            read_failed(&rc, r, CHAT_ARCHIVE_OUTBOX, CHAT_ARCHIVE_GROUP, "outbox");
            retry_later(a, &backoff);
            continue;
        }
        if (b.n == 0) {
            freeReplyObject(r);
            if (!claiming)
                atomic_store(&a->lag_ms, 0);
            if (pending)
                single = false; /* our pending list is drained: batches again */
            pending = false;
            continue;
        }
        for (size_t i = 0; i < b.n; i++)
            if (!b.e[i].frame)
                cm_warn("archive: outbox entry %s has no valid rid/seq/m: dropped", b.e[i].id);
        bool refused = false;
        bool wrote = archive_write(a, &b, &mongo_down, &refused) && dead_letter(a, &rc, &b);
        if (refused && !wrote)
            single = true;  /* find the one document the server refuses */
        freeReplyObject(r); /* the frames borrowed from it are no longer needed */
        if (!wrote) {
            pending = true; /* the same entries again, from our pending list */
            retry_later(a, &backoff);
            continue;
        }
        char **ids = cm_xcalloc(b.n, sizeof *ids);
        for (size_t i = 0; i < b.n; i++)
            ids[i] = b.e[i].id;
        size_t nw = 0;
        for (size_t i = 0; i < b.n; i++)
            nw += b.e[i].frame != NULL && !b.e[i].dead;
        if (ack_del(&rc, CHAT_ARCHIVE_OUTBOX, CHAT_ARCHIVE_GROUP, ids, b.n)) {
            atomic_fetch_add(&a->archived, nw);
            if (claiming)
                atomic_fetch_add(&a->claimed, nw);
            int64_t lag = b.oldest_ms == UINT64_MAX ? 0 : now_ms() - (int64_t)b.oldest_ms;
            atomic_store(&a->lag_ms, lag > 0 ? (uint64_t)lag : 0);
            backoff = ARCHIVE_BACKOFF_MIN_MS;
            /* a short batch: let the outbox fill a little before the next write (one bulk
             * of many upserts costs MongoDB far less than many bulks of one: make bench
             * showed the stand-in at a quarter of a core for 300 msg/s written 1-3 at a
             * time). The entries wait in Redis's outbox, durably; clients never wait. */
            if (!pending && !claiming && b.n < (size_t)a->cfg->archive_batch)
                nap(a, (unsigned)a->cfg->archive_linger_ms);
        } else {
            /* written but not acked: they come back (pending or claimed) and the upsert
             * makes the second write a no-op */
            atomic_fetch_add(&a->write_errors, 1);
            pending = true;
        }
        free(ids);
    }
    batch_reset(&b);
    free(b.e);
    if (rc)
        redisFree(rc);
    return NULL;
}

/* ---- the room-deletion consumer ---- */

/* Is the outbox free of entries older than the deletion (id ms/n)? A message published
 * before the room was deleted may still wait for the writer; deleting the documents before it
 * is archived would leave it behind. Returns 1 yes, 0 not yet, -1 Redis error. */
static int outbox_past(redisContext **c, uint64_t ms, uint64_t n)
{
    const char *argv[6] = {"XRANGE", CHAT_ARCHIVE_OUTBOX, "-", "+", "COUNT", "1"};
    size_t lens[6];
    for (int i = 0; i < 6; i++)
        lens[i] = strlen(argv[i]);
    redisReply *r = rcmd(c, 6, argv, lens);
    if (!r)
        return -1;
    int res = 1;
    if (r->type == REDIS_REPLY_ERROR)
        res = -1;
    else if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
        const redisReply *en = r->element[0];
        uint64_t ems, en2;
        if (en->type == REDIS_REPLY_ARRAY && en->elements > 0 &&
            en->element[0]->type == REDIS_REPLY_STRING &&
            parse_id(en->element[0]->str, en->element[0]->len, &ems, &en2) &&
            (ems < ms || (ems == ms && en2 < n)))
            res = 0;
    }
    freeReplyObject(r);
    return res;
}

/* Deletes every key of the room: SCAN MATCH "parley:{r<rid>}:*" (the room's hash tag; rid is
 * digits, so the pattern has no glob characters besides the final *), UNLINK each batch; then
 * sets the tombstone parley:{r<rid>}:deleted (kept: a script that publishes to the room can
 * refuse a deleted room's messages with one EXISTS under the same hash tag). */
static bool delete_keys(redisContext **c, int64_t rid)
{
    char match[64], tomb[64], count[16], cursor[32] = "0";
    snprintf(match, sizeof match, "parley:{r%" PRId64 "}:*", rid);
    snprintf(tomb, sizeof tomb, "parley:{r%" PRId64 "}:deleted", rid);
    snprintf(count, sizeof count, "%d", ARCHIVE_SCAN_COUNT);
    do {
        const char *argv[6] = {"SCAN", cursor, "MATCH", match, "COUNT", count};
        size_t lens[6];
        for (int i = 0; i < 6; i++)
            lens[i] = strlen(argv[i]);
        redisReply *r = rcmd(c, 6, argv, lens);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len >= sizeof cursor ||
            r->element[1]->type != REDIS_REPLY_ARRAY) {
            if (r)
                freeReplyObject(r);
            return false;
        }
        snprintf(cursor, sizeof cursor, "%.*s", (int)r->element[0]->len, r->element[0]->str);
        const redisReply *keys = r->element[1];
        const char **kv = cm_xcalloc(keys->elements + 1, sizeof *kv);
        size_t *kl = cm_xcalloc(keys->elements + 1, sizeof *kl);
        int nk = 0;
        kv[nk] = "UNLINK";
        kl[nk++] = 6;
        for (size_t i = 0; i < keys->elements; i++) {
            const redisReply *k = keys->element[i];
            if (k->type != REDIS_REPLY_STRING ||
                (k->len == strlen(tomb) && memcmp(k->str, tomb, k->len) == 0))
                continue;
            kv[nk] = k->str;
            kl[nk++] = k->len;
        }
        bool ok = true;
        if (nk > 1) {
            redisReply *u = rcmd(c, nk, kv, kl);
            ok = u && u->type != REDIS_REPLY_ERROR;
            if (u)
                freeReplyObject(u);
        }
        free(kv);
        free(kl);
        freeReplyObject(r);
        if (!ok)
            return false;
    } while (strcmp(cursor, "0") != 0);
    const char *sv[3] = {"SET", tomb, "1"};
    size_t sl[3] = {3, strlen(tomb), 1};
    redisReply *r = rcmd(c, 3, sv, sl);
    bool ok = r && r->type != REDIS_REPLY_ERROR;
    if (r)
        freeReplyObject(r);
    return ok;
}

static bool delete_docs(struct chat_archive *a, int64_t rid, bool *was_down)
{
    mongoc_client_t *mc = mongoc_client_pool_pop(a->pool);
    mongoc_collection_t *coll =
        mongoc_client_get_collection(mc, a->cfg->mongo_db, ARCHIVE_COLLECTION);
    bson_t *filter = BCON_NEW("rid", BCON_INT64(rid));
    bson_t reply;
    bson_error_t err;
    bool ok = mongoc_collection_delete_many(coll, filter, NULL, &reply, &err);
    if (!ok)
        log_mongo("delete_many", &err, was_down);
    else {
        bson_iter_t it;
        int64_t n = bson_iter_init_find(&it, &reply, "deletedCount") ? bson_iter_as_int64(&it) : 0;
        cm_info("archive: room %" PRId64 " deleted: %" PRId64 " archived messages removed", rid, n);
        *was_down = false;
    }
    bson_destroy(&reply);
    bson_destroy(filter);
    mongoc_collection_destroy(coll);
    mongoc_client_pool_push(a->pool, mc);
    return ok;
}

static void *deleter_main(void *arg)
{
    struct chat_archive *a = arg;
    redisContext *rc = NULL;
    bool redis_down = false, mongo_down = false, pending = true;
    unsigned backoff = ARCHIVE_BACKOFF_MIN_MS;
    struct batch b = {.oldest_ms = UINT64_MAX};

    while (!stopping(a)) {
        if (!rc) {
            rc = group_open(a, "deleter", CHAT_ARCHIVE_DELETIONS, CHAT_ARCHIVE_DELETERS,
                            &redis_down);
            if (!rc) {
                retry_later(a, &backoff);
                continue;
            }
            pending = true;
        }
        batch_reset(&b);
        redisReply *r = read_group(a, &rc, CHAT_ARCHIVE_DELETIONS, CHAT_ARCHIVE_DELETERS,
                                   ARCHIVE_DELETE_BATCH, pending, !pending);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            read_failed(&rc, r, CHAT_ARCHIVE_DELETIONS, CHAT_ARCHIVE_DELETERS, NULL);
            retry_later(a, &backoff);
            continue;
        }
        batch_add_read(&b, r, NULL);
        freeReplyObject(r);
        if (b.n == 0) {
            pending = false;
            continue;
        }
        /* one at a time, in order; stop at the first that cannot be done now */
        size_t done = 0;
        bool wait = false, failed = false;
        for (; done < b.n && !failed && !wait; done++) {
            const struct entry *e = &b.e[done];
            if (e->rid == 0) {
                cm_warn("archive: room deletion %s has no valid rid: dropped", e->id);
                continue;
            }
            uint64_t ms, n;
            int past = parse_id(e->id, strlen(e->id), &ms, &n) ? outbox_past(&rc, ms, n) : 1;
            if (past <= 0) {
                wait = past == 0;
                failed = past < 0;
                break;
            }
            if (!delete_docs(a, e->rid, &mongo_down) || !delete_keys(&rc, e->rid)) {
                failed = true;
                break;
            }
            atomic_fetch_add(&a->rooms_deleted, 1);
        }
        if (rc && done > 0) {
            char **ids = cm_xcalloc(done, sizeof *ids);
            for (size_t i = 0; i < done; i++)
                ids[i] = b.e[i].id;
            if (!ack_del(&rc, CHAT_ARCHIVE_DELETIONS, CHAT_ARCHIVE_DELETERS, ids, done))
                failed = true;
            free(ids);
        }
        if (failed || wait) {
            if (failed)
                atomic_fetch_add(&a->write_errors, 1);
            pending = true;
            nap(a, wait ? ARCHIVE_DELETE_WAIT_MS : backoff);
            if (failed)
                backoff = backoff_next(backoff);
            continue;
        }
        backoff = ARCHIVE_BACKOFF_MIN_MS;
        pending = pending && done > 0; /* drain our pending list, then new entries */
    }
    batch_reset(&b);
    free(b.e);
    if (rc)
        redisFree(rc);
    return NULL;
}

/* ---- readers ---- */

static void post_result(struct chat_archive *a, struct archive_res *res)
{
    pthread_mutex_lock(&a->res_mu);
    res->next = NULL;
    if (a->res_tail)
        a->res_tail->next = res;
    else
        a->res_head = res;
    a->res_tail = res;
    struct lws_context *ctx = a->waker;
    if (ctx) /* lws_cancel_service is the one lws call other threads may make */
        lws_cancel_service(ctx);
    pthread_mutex_unlock(&a->res_mu);
}

static int64_t clamp_i64(uint64_t v)
{
    return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
}

/* Runs one request against MongoDB into res (status 0, or -1 on any error). */
static void run_query(struct chat_archive *a, const struct archive_req *q,
                      struct chat_archive_result *res)
{
    res->tag = q->tag;
    res->status = -1;
    mongoc_client_t *mc = mongoc_client_pool_pop(a->pool);
    mongoc_collection_t *coll =
        mongoc_client_get_collection(mc, a->cfg->mongo_db, ARCHIVE_COLLECTION);
    bson_t *filter, *opts;
    if (q->max_only) {
        filter = BCON_NEW("rid", BCON_INT64(q->rid));
        opts = BCON_NEW("sort", "{", "seq", BCON_INT32(-1), "}", "limit", BCON_INT64(1),
                        "projection", "{", "_id", BCON_INT32(0), "seq", BCON_INT32(1), "}");
    } else {
        filter =
            BCON_NEW("rid", BCON_INT64(q->rid), "seq", "{", "$gte", BCON_INT64(clamp_i64(q->from)),
                     "$lte", BCON_INT64(clamp_i64(q->to)), "}");
        opts = BCON_NEW("sort", "{", "seq", BCON_INT32(1), "}", "limit",
                        BCON_INT64((int64_t)q->limit), "projection", "{", "_id", BCON_INT32(0),
                        "seq", BCON_INT32(1), "frame", BCON_INT32(1), "}");
    }
    int64_t t0 = mono_ms();
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
    const bson_t *doc;
    size_t cap = 0;
    int64_t last = 0;
    while (mongoc_cursor_next(cur, &doc)) {
        bson_iter_t it;
        if (!bson_iter_init_find(&it, doc, "seq"))
            continue;
        int64_t seq = bson_iter_as_int64(&it);
        if (seq <= last) /* strictly ascending: a duplicate never reaches a client */
            continue;
        last = seq;
        if (q->max_only)
            break;
        uint32_t len;
        const char *frame;
        if (!bson_iter_init_find(&it, doc, "frame") || !BSON_ITER_HOLDS_UTF8(&it) ||
            !(frame = bson_iter_utf8(&it, &len)))
            continue;
        if (res->n == cap) {
            cap = cap ? cap * 2 : 16;
            res->frames = cm_xrealloc(res->frames, cap * sizeof *res->frames);
            res->lens = cm_xrealloc(res->lens, cap * sizeof *res->lens);
        }
        res->frames[res->n] = cm_xstrndup(frame, len);
        res->lens[res->n++] = len;
        if (res->n >= q->limit)
            break;
    }
    bson_error_t err;
    if (mongoc_cursor_error(cur, &err)) {
        cm_warn("archive: mongodb query (room %" PRId64 "): %s", q->rid, err.message);
        for (size_t i = 0; i < res->n; i++)
            free(res->frames[i]);
        res->n = 0;
        atomic_fetch_add(&a->read_errors, 1);
    } else {
        res->status = 0;
        res->max_seq = (uint64_t)last;
    }
    mongoc_cursor_destroy(cur);
    atomic_fetch_add(&a->reads, 1);
    atomic_fetch_add(&a->read_ms_total, (uint64_t)(mono_ms() - t0));
    bson_destroy(opts);
    bson_destroy(filter);
    mongoc_collection_destroy(coll);
    mongoc_client_pool_push(a->pool, mc);
}

static void *reader_main(void *arg)
{
    struct chat_archive *a = arg;
    for (;;) {
        pthread_mutex_lock(&a->mu);
        while (!a->rq_head && !a->stopping)
            pthread_cond_wait(&a->req_cv, &a->mu);
        if (a->stopping) {
            pthread_mutex_unlock(&a->mu);
            break;
        }
        struct archive_req *q = a->rq_head;
        a->rq_head = q->next;
        if (!a->rq_head)
            a->rq_tail = NULL;
        a->rq_len--;
        atomic_store(&a->queue_depth, a->rq_len);
        pthread_mutex_unlock(&a->mu);

        struct archive_res *res = cm_xcalloc(1, sizeof *res);
        run_query(a, q, &res->r);
        free(q);
        post_result(a, res);
    }
    return NULL;
}

static int enqueue(struct chat_archive *a, struct archive_req *q)
{
    pthread_mutex_lock(&a->mu);
    if (a->stopping || a->rq_len >= (size_t)a->cfg->history_queue) {
        pthread_mutex_unlock(&a->mu);
        free(q);
        return -1;
    }
    q->next = NULL;
    if (a->rq_tail)
        a->rq_tail->next = q;
    else
        a->rq_head = q;
    a->rq_tail = q;
    a->rq_len++;
    atomic_store(&a->queue_depth, a->rq_len);
    pthread_cond_signal(&a->req_cv);
    pthread_mutex_unlock(&a->mu);
    return 0;
}

int chat_archive_query(struct chat_archive *a, uint64_t tag, int64_t rid, uint64_t from,
                       uint64_t to, unsigned limit)
{
    struct archive_req *q = cm_xcalloc(1, sizeof *q);
    q->tag = tag;
    q->rid = rid;
    q->from = from;
    q->to = to;
    q->limit = limit == 0 ? 1 : limit > CHAT_ARCHIVE_QUERY_MAX ? CHAT_ARCHIVE_QUERY_MAX : limit;
    return enqueue(a, q);
}

int chat_archive_max_seq(struct chat_archive *a, uint64_t tag, int64_t rid)
{
    struct archive_req *q = cm_xcalloc(1, sizeof *q);
    q->tag = tag;
    q->rid = rid;
    q->max_only = true;
    q->limit = 1;
    return enqueue(a, q);
}

void chat_archive_drain(struct chat_archive *a, void (*cb)(void *ud, struct chat_archive_result *r),
                        void *ud)
{
    pthread_mutex_lock(&a->res_mu);
    struct archive_res *list = a->res_head;
    a->res_head = a->res_tail = NULL;
    pthread_mutex_unlock(&a->res_mu);
    while (list) {
        struct archive_res *next = list->next;
        cb(ud, &list->r);
        list = next;
    }
}

void chat_archive_set_waker(struct chat_archive *a, struct lws_context *ctx)
{
    pthread_mutex_lock(&a->res_mu);
    a->waker = ctx;
    pthread_mutex_unlock(&a->res_mu);
}

void chat_archive_result_free(struct chat_archive_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        free(r->frames[i]);
    free(r->frames);
    free(r->lens);
    free(r); /* r is the first member of its struct archive_res */
}

void chat_archive_stats(const struct chat_archive *a, struct chat_archive_stats *out)
{
    struct chat_archive *m = (struct chat_archive *)a; /* atomics only: loads need non-const */
    out->archived = atomic_load(&m->archived);
    out->write_errors = atomic_load(&m->write_errors);
    out->read_errors = atomic_load(&m->read_errors);
    out->queue_depth = atomic_load(&m->queue_depth);
    out->lag_ms = atomic_load(&m->lag_ms);
    out->rooms_deleted = atomic_load(&m->rooms_deleted);
    out->claimed = atomic_load(&m->claimed);
    out->dead = atomic_load(&m->dead);
    out->writes = atomic_load(&m->writes);
    out->write_ms_total = atomic_load(&m->write_ms_total);
    out->reads = atomic_load(&m->reads);
    out->read_ms_total = atomic_load(&m->read_ms_total);
}

/* ---- life cycle ---- */

static pthread_once_t mongo_once = PTHREAD_ONCE_INIT;

/* libmongoc's own log lines (its default handler prints even debug lines to stdout). */
static void mongo_log(mongoc_log_level_t level, const char *domain, const char *message, void *ud)
{
    (void)ud;
    enum cm_log_level lv = level <= MONGOC_LOG_LEVEL_WARNING ? CM_LOG_WARN : CM_LOG_DEBUG;
    cm_log(lv, "mongoc %s: %s", domain, message);
}

static void mongo_init_once(void)
{
    mongoc_log_set_handler(mongo_log, NULL);
    mongoc_init();
    atexit(mongoc_cleanup);
}

static void uri_default(mongoc_uri_t *uri, const char *opt, int32_t v)
{
    if (!mongoc_uri_has_option(uri, opt))
        mongoc_uri_set_option_as_int32(uri, opt, v);
}

/* A consumer name unique per process and readable in XINFO: "<host>-<pid>". */
static void consumer_name(char *out, size_t outsz)
{
    char host[64] = "";
    if (gethostname(host, sizeof host - 1) != 0 || !host[0])
        snprintf(host, sizeof host, "chat");
    for (char *p = host; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '.'))
            *p = '_';
    snprintf(out, outsz, "%s-%ld", host, (long)getpid());
}

struct chat_archive *chat_archive_new(const struct chat_config *cfg)
{
    pthread_once(&mongo_once, mongo_init_once);
    bson_error_t err;
    mongoc_uri_t *uri = mongoc_uri_new_with_error(cfg->mongo_uri, &err);
    if (!uri) { /* err.message quotes no credentials; the URI itself is never logged */
        cm_error("archive: CHAT_MONGO_URI does not parse: %s", err.message);
        return NULL;
    }
    uri_default(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, ARCHIVE_MONGO_SELECT_MS);
    uri_default(uri, MONGOC_URI_CONNECTTIMEOUTMS, ARCHIVE_MONGO_CONNECT_MS);
    uri_default(uri, MONGOC_URI_SOCKETTIMEOUTMS, ARCHIVE_MONGO_SOCKET_MS);

    struct chat_archive *a = cm_xcalloc(1, sizeof *a);
    a->cfg = cfg;
    a->pool = mongoc_client_pool_new(uri);
    mongoc_uri_destroy(uri);
    if (!a->pool) {
        cm_error("archive: cannot create the MongoDB client pool");
        free(a);
        return NULL;
    }
    mongoc_client_pool_set_error_api(a->pool, MONGOC_ERROR_API_VERSION_2);
    consumer_name(a->consumer, sizeof a->consumer);

    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&a->mu, NULL);
    pthread_mutex_init(&a->res_mu, NULL);
    pthread_cond_init(&a->req_cv, NULL);
    pthread_cond_init(&a->stop_cv, &ca);
    pthread_condattr_destroy(&ca);

    bool ok = pthread_create(&a->writer, NULL, writer_main, a) == 0;
    a->writer_up = ok;
    if (ok)
        ok = a->deleter_up = pthread_create(&a->deleter, NULL, deleter_main, a) == 0;
    for (int i = 0; ok && i < ARCHIVE_READERS; i++)
        if ((ok = pthread_create(&a->readers[i], NULL, reader_main, a) == 0))
            a->nreaders++;
    if (!ok) {
        cm_error("archive: cannot start its threads");
        chat_archive_free(a);
        return NULL;
    }
    cm_info("archive: consumer %s; mongodb database %s; batch %lld, claim after %lld ms",
            a->consumer, cfg->mongo_db, cfg->archive_batch, cfg->archive_claim_ms);
    return a;
}

void chat_archive_free(struct chat_archive *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->mu);
    a->stopping = true;
    pthread_cond_broadcast(&a->req_cv);
    pthread_cond_broadcast(&a->stop_cv);
    pthread_mutex_unlock(&a->mu);
    if (a->writer_up)
        pthread_join(a->writer, NULL);
    if (a->deleter_up)
        pthread_join(a->deleter, NULL);
    for (int i = 0; i < a->nreaders; i++)
        pthread_join(a->readers[i], NULL);
    while (a->rq_head) {
        struct archive_req *q = a->rq_head;
        a->rq_head = q->next;
        free(q);
    }
    while (a->res_head) {
        struct archive_res *r = a->res_head;
        a->res_head = r->next;
        chat_archive_result_free(&r->r);
    }
    mongoc_client_pool_destroy(a->pool);
    pthread_cond_destroy(&a->req_cv);
    pthread_cond_destroy(&a->stop_cv);
    pthread_mutex_destroy(&a->mu);
    pthread_mutex_destroy(&a->res_mu);
    free(a);
}
