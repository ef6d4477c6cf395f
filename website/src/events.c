/* The outbox sender (events.h): room deletions and moderation events. Sources: hiredis 0.14
 * blocking API (hiredis.h: redisConnectWithTimeout, redisSetTimeout, redisCommandArgv); Redis XADD
 * (redis.io/commands/xadd); PostgreSQL SELECT ... FOR UPDATE SKIP LOCKED (queue pattern, docs
 * "The Locking Clause"). */
#include "events.h"

#include "cm_alloc.h"
#include "cm_log.h"
#include "cm_resolve.h"
#include "cm_util.h"
#include "config.h"
#include "db.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static pthread_t sender;
static bool started, stopping, kicked;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv;

static struct timeval ms_tv(long long ms)
{
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

/* Connects and AUTHs. NULL on failure; *down keeps the log to one line per outage. */
static redisContext *redis_open(bool *down)
{
    char addr[CM_RESOLVE_ADDR_MAX];
    redisContext *c = NULL;
    if (!cm_resolve_wait(web_cfg.redis_host, addr, sizeof addr, web_cfg.redis_timeout_ms)) {
        if (!*down)
            cm_warn("events: redis %s: no address yet (room deletions wait in room_deletions, "
                    "moderation events in moderation_events)",
                    web_cfg.redis_host);
        *down = true;
        return NULL;
    }
    c = redisConnectWithTimeout(addr, (int)web_cfg.redis_port, ms_tv(web_cfg.redis_timeout_ms));
    if (!c || c->err) {
        cm_resolve_refresh(web_cfg.redis_host);
        if (!*down)
            cm_warn("events: redis %s:%lld: %s (room deletions wait in room_deletions, moderation "
                    "events in moderation_events)",
                    web_cfg.redis_host, web_cfg.redis_port, c ? c->errstr : "out of memory");
        *down = true;
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, ms_tv(web_cfg.redis_timeout_ms));
    if (web_cfg.redis_password[0]) {
        const char *argv[2] = {"AUTH", web_cfg.redis_password};
        size_t lens[2] = {4, strlen(web_cfg.redis_password)};
        redisReply *r = redisCommandArgv(c, 2, argv, lens);
        bool ok = r && r->type != REDIS_REPLY_ERROR;
        freeReplyObject(r);
        if (!ok) { /* never log the password or Redis's answer to it */
            if (!*down)
                cm_warn("events: redis AUTH refused (check WEB_REDIS_PASSWORD)");
            *down = true;
            redisFree(c);
            return NULL;
        }
    }
    if (*down)
        cm_info("events: redis %s:%lld connected", web_cfg.redis_host, web_cfg.redis_port);
    *down = false;
    return c;
}

/* XADD of argv[2..] to stream argv[1] (argv[0] = "XADD"). False on any error (the connection
 * is dropped). */
static bool xadd(redisContext **c, int argc, const char **argv)
{
    size_t lens[16];
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    redisReply *r = redisCommandArgv(*c, argc, argv, lens);
    bool ok = r && r->type == REDIS_REPLY_STRING;
    if (!r)
        cm_warn("events: redis: %s (room deletions wait in room_deletions, moderation events in "
                "moderation_events)",
                (*c)->errstr[0] ? (*c)->errstr : "connection lost");
    else if (!ok)
        cm_warn("events: XADD %s: %s", argv[1],
                r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    freeReplyObject(r);
    if (!ok) {
        redisFree(*c);
        *c = NULL;
    }
    return ok;
}

/* XADD parley:moderation MINID ~ <now - keep> * kind K [uid U] [rid R] [sid S] at_ms T: the
 * stream keeps WEB_EVENTS_MODERATION_KEEP_S of events, however many (a chat daemon rebuilds its
 * revocations from them). Empty fields are left out. */
static bool xadd_moderation(redisContext **c, const char *kind, const char *uid, const char *rid,
                            const char *sid, const char *at_ms)
{
    char minid[32];
    long long keep_ms = (long long)WEB_EVENTS_MODERATION_KEEP_S * 1000;
    snprintf(minid, sizeof minid, "%lld", (long long)cm_now_ms() - keep_ms);
    const char *argv[16] = {"XADD", WEB_EVENTS_MODERATION, "MINID", "~", minid, "*", "kind", kind};
    int n = 8;
    const char *names[3] = {"uid", "rid", "sid"}, *vals[3] = {uid, rid, sid};
    for (int i = 0; i < 3; i++)
        if (vals[i] && vals[i][0]) {
            argv[n++] = names[i];
            argv[n++] = vals[i];
        }
    argv[n++] = "at_ms";
    argv[n++] = at_ms;
    return xadd(c, n, argv);
}

/* Sends row i of a room_deletions result (id, rid, at_ms): to the archive's stream, then to
 * every chat daemon's moderation stream. */
static bool send_room_deletion(redisContext **c, PGresult *res, int i)
{
    const char *argv[5] = {"XADD", WEB_EVENTS_ROOM_DELETIONS, "*", "rid", PQgetvalue(res, i, 1)};
    return xadd(c, 5, argv) && xadd_moderation(c, "room_deleted", NULL, PQgetvalue(res, i, 1), NULL,
                                               PQgetvalue(res, i, 2));
}

/* Row i of a moderation_events result (id, kind, uid, rid, sid, at_ms). */
static bool send_moderation(redisContext **c, PGresult *res, int i)
{
    return xadd_moderation(c, PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
                           PQgetvalue(res, i, 4), PQgetvalue(res, i, 5));
}

/* One outbox table: its rows (first column the id), how a row is sent, how they are deleted. */
struct outbox {
    const char *name;
    const char *select_sql; /* $1 = the batch size */
    const char *delete_sql; /* $1 = the ids sent, as a bigint[] */
    bool (*send)(redisContext **c, PGresult *res, int i);
};

static const struct outbox outboxes[] = {
    {"room deletion(s)",
     "SELECT id, rid, (extract(epoch FROM deleted_at) * 1000)::bigint FROM room_deletions "
     "ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
     "DELETE FROM room_deletions WHERE id = ANY($1::bigint[])", send_room_deletion},
    {"moderation event(s)",
     "SELECT id, kind, uid, coalesce(rid::text, ''), coalesce(sid, ''), at_ms "
     "FROM moderation_events ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
     "DELETE FROM moderation_events WHERE id = ANY($1::bigint[])", send_moderation},
};

/* One statement with the database deadline. False on any error; a NULL result (connection
 * failed or timed out: its state is unknown) also closes the connection (*pg = NULL). */
static bool run(PGconn **pg, PGresult **out, const char *sql, int n, const char *const *params)
{
    PGresult *res = web_db_exec(*pg, sql, n, params);
    if (!res) {
        cm_warn("events: database: %s", "connection failed or timed out");
        PQfinish(*pg);
        *pg = NULL;
        return false;
    }
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        const char *m = PQresultErrorMessage(res);
        cm_warn("events: database: %.*s", (int)strcspn(m, "\n"), m);
        PQclear(res);
        return false;
    }
    if (out)
        *out = res;
    else
        PQclear(res);
    return true;
}

static void rollback(PGconn **pg)
{
    if (*pg && !run(pg, NULL, "ROLLBACK", 0, NULL) && *pg) {
        PQfinish(*pg); /* a connection that cannot even roll back is not reused */
        *pg = NULL;
    }
}

/* One transaction on outbox ob: up to WEB_EVENTS_BATCH rows, XADD each, delete those Redis
 * took. Returns the number of rows sent, or -1 when something failed (retry later). */
static int flush_once(const struct outbox *ob, PGconn **pg, redisContext **rc, bool *redis_down)
{
    if (!run(pg, NULL, "BEGIN", 0, NULL)) {
        rollback(pg);
        return -1;
    }
    char limit[16];
    snprintf(limit, sizeof limit, "%d", WEB_EVENTS_BATCH);
    const char *lp[1] = {limit};
    PGresult *res;
    if (!run(pg, &res, ob->select_sql, 1, lp)) {
        rollback(pg);
        return -1;
    }
    int n = PQntuples(res), sent = 0;
    /* the ids Redis took, as a PostgreSQL array literal "{1,2,...}" (digits and commas) */
    size_t cap = (size_t)n * 21 + 3, len = 0;
    char *ids = cm_xmalloc(cap);
    ids[len++] = '{';
    if (n > 0 && !*rc)
        *rc = redis_open(redis_down);
    for (int i = 0; i < n && *rc; i++) {
        if (!ob->send(rc, res, i))
            break;
        len +=
            (size_t)snprintf(ids + len, cap - len, "%s%s", sent ? "," : "", PQgetvalue(res, i, 0));
        sent++;
    }
    ids[len++] = '}';
    ids[len] = '\0';
    PQclear(res);
    if (sent > 0) {
        const char *dp[1] = {ids};
        if (!run(pg, NULL, ob->delete_sql, 1, dp)) {
            /* sent again later: harmless (deleting a deleted room deletes nothing, a
             * revocation recorded twice is the same revocation) */
            free(ids);
            rollback(pg);
            return -1;
        }
    }
    free(ids);
    if (!run(pg, NULL, "COMMIT", 0, NULL)) {
        rollback(pg);
        return -1;
    }
    if (sent > 0)
        cm_info("events: %d %s sent", sent, ob->name);
    return sent == n ? sent : -1;
}

static void *sender_main(void *arg)
{
    (void)arg;
    PGconn *pg = NULL;
    redisContext *rc = NULL;
    bool redis_down = false;
    pthread_mutex_lock(&mu);
    while (!stopping) {
        kicked = false;
        pthread_mutex_unlock(&mu);
        int got;
        do {
            if (pg && PQstatus(pg) != CONNECTION_OK) {
                PQfinish(pg);
                pg = NULL;
            }
            if (!pg)
                pg = web_db_connect();
            got = 0;
            for (size_t i = 0; i < sizeof outboxes / sizeof outboxes[0]; i++) {
                int n = pg ? flush_once(&outboxes[i], &pg, &rc, &redis_down) : -1;
                if (n < 0) {
                    got = -1;
                    break;
                }
                if (n == WEB_EVENTS_BATCH)
                    got = WEB_EVENTS_BATCH; /* more may wait: another round at once */
            }
        } while (got == WEB_EVENTS_BATCH);
        pthread_mutex_lock(&mu);
        if (stopping || kicked)
            continue;
        struct timespec dl;
        clock_gettime(CLOCK_MONOTONIC, &dl);
        dl.tv_sec += WEB_EVENTS_RETRY_MS / 1000;
        while (!stopping && !kicked && pthread_cond_timedwait(&cv, &mu, &dl) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&mu);
    if (pg)
        PQfinish(pg);
    redisFree(rc);
    return NULL;
}

int web_events_start(void)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&cv, &ca);
    pthread_condattr_destroy(&ca);
    stopping = false;
    if (pthread_create(&sender, NULL, sender_main, NULL) != 0) {
        cm_error("events: cannot start the sender thread");
        return -1;
    }
    started = true;
    return 0;
}

void web_events_stop(void)
{
    if (!started)
        return;
    pthread_mutex_lock(&mu);
    stopping = true;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
    pthread_join(sender, NULL);
    pthread_cond_destroy(&cv);
    started = false;
}

void web_events_room_deleted(int64_t rid)
{
    cm_debug("events: room %" PRId64 " deleted: waking the sender", rid);
    web_events_wake();
}

void web_events_wake(void)
{
    pthread_mutex_lock(&mu);
    kicked = true;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
}
