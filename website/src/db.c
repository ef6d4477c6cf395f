#include "db.h"

#include "cm_log.h"
#include "cm_alloc.h"
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WEB_DB_RETRY_MS 500 /* pause between start-up connection attempts */

struct web_db_conn {
    PGconn *pg;
    unsigned long epoch; /* the pool epoch this connection was opened in */
    bool busy;
};

static struct web_db_conn *pool;
static size_t npool;
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_cv = PTHREAD_COND_INITIALIZER;
/* Bumped whenever a connection is found broken: every idle connection opened before is then
 * presumed dead too (the server restarted) and is reopened before use instead of failing a
 * request. */
static unsigned long pool_epoch = 1;

static pthread_mutex_t mig_mu = PTHREAD_MUTEX_INITIALIZER;
static bool migrated;

int web_db_init(void)
{
    npool = (size_t)web_cfg.db_pool_size;
    pool = cm_xcalloc(npool, sizeof *pool);
    return 0;
}

void web_db_shutdown(void)
{
    for (size_t i = 0; i < npool; i++)
        if (pool[i].pg)
            PQfinish(pool[i].pg);
    free(pool);
    pool = NULL;
    npool = 0;
}

/* First line of libpq's message, for a log line (libpq never puts the password in it). */
static void first_line(const char *msg, char *out, size_t cap)
{
    size_t i = 0;
    for (; msg && msg[i] && msg[i] != '\n' && i + 1 < cap; i++)
        out[i] = msg[i];
    out[i] = '\0';
}

PGconn *web_db_connect(void)
{
    char port[16], timeout[16];
    snprintf(port, sizeof port, "%lld", web_cfg.db_port);
    snprintf(timeout, sizeof timeout, "%lld", web_cfg.db_connect_timeout);
    const char *keys[] = {
        "host", "port", "dbname", "user", "password", "connect_timeout", "application_name", NULL};
    const char *vals[] = {web_cfg.db_host,     port,    web_cfg.db_name,  web_cfg.db_user,
                          web_cfg.db_password, timeout, "parley-website", NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 0);
    if (PQstatus(c) != CONNECTION_OK) {
        char msg[256];
        first_line(PQerrorMessage(c), msg, sizeof msg);
        cm_warn("database: cannot connect to %s:%lld/%s: %s", web_cfg.db_host, web_cfg.db_port,
                web_cfg.db_name, msg);
        PQfinish(c);
        return NULL;
    }
    return c;
}

/* Applies migrations once per process, on the first connection that reaches the database. */
static bool ensure_migrated(PGconn *c)
{
    pthread_mutex_lock(&mig_mu);
    bool ok = migrated;
    if (!ok && web_migrate(c) == 0 && web_admin_bootstrap(c) == 0) {
        migrated = ok = true;
        cm_info("database: ready (migrations applied)");
    }
    pthread_mutex_unlock(&mig_mu);
    return ok;
}

static struct web_db_conn *acquire(void)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    long long ms = web_cfg.db_acquire_timeout;
    until.tv_sec += (time_t)(ms / 1000);
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    struct web_db_conn *slot = NULL;
    unsigned long epoch;
    pthread_mutex_lock(&pool_mu);
    for (;;) {
        for (size_t i = 0; i < npool && !slot; i++)
            if (!pool[i].busy && pool[i].pg)
                slot = &pool[i]; /* prefer an open connection */
        for (size_t i = 0; i < npool && !slot; i++)
            if (!pool[i].busy)
                slot = &pool[i];
        if (slot)
            break;
        if (pthread_cond_timedwait(&pool_cv, &pool_mu, &until) != 0)
            break;
    }
    if (slot)
        slot->busy = true;
    epoch = pool_epoch;
    pthread_mutex_unlock(&pool_mu);
    if (!slot) {
        cm_warn("database: no free connection within %lld ms", ms);
        return NULL;
    }
    if (slot->pg && (slot->epoch != epoch || PQstatus(slot->pg) != CONNECTION_OK)) {
        PQfinish(slot->pg);
        slot->pg = NULL;
    }
    if (!slot->pg) {
        slot->pg = web_db_connect();
        slot->epoch = epoch;
    }
    if (!slot->pg || !ensure_migrated(slot->pg)) {
        pthread_mutex_lock(&pool_mu);
        slot->busy = false;
        pthread_cond_signal(&pool_cv);
        pthread_mutex_unlock(&pool_mu);
        return NULL;
    }
    return slot;
}

static void release(struct web_db_conn *slot)
{
    pthread_mutex_lock(&pool_mu);
    slot->busy = false;
    pthread_cond_signal(&pool_cv);
    pthread_mutex_unlock(&pool_mu);
}

void web_db_release(struct web_req *r)
{
    if (r->db) {
        release(r->db);
        r->db = NULL;
    }
}

static void mark_broken(struct web_db_conn *slot)
{
    PQfinish(slot->pg);
    slot->pg = NULL;
    pthread_mutex_lock(&pool_mu);
    pool_epoch++;
    slot->epoch = pool_epoch;
    pthread_mutex_unlock(&pool_mu);
}

enum web_db_rc web_db_query(struct web_req *r, PGresult **res, const char *sql, int n,
                            const char *const *params)
{
    if (res)
        *res = NULL;
    if (r->db_failed)
        return WEB_DB_DOWN;
    /* A read may be retried once on a fresh connection when the old one turns out dead
     * (the database restarted while it sat idle): nothing was changed by the failed try. */
    bool retry = strncmp(sql, "SELECT", 6) == 0;
    for (;;) {
        if (!r->db)
            r->db = acquire();
        if (!r->db) {
            r->db_failed = true;
            return WEB_DB_DOWN;
        }
        PGresult *pr = PQexecParams(r->db->pg, sql, n, NULL, params, NULL, NULL, 0);
        ExecStatusType st = PQresultStatus(pr);
        if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
            if (res)
                *res = pr;
            else
                PQclear(pr);
            return WEB_DB_OK;
        }
        if (PQstatus(r->db->pg) != CONNECTION_OK) {
            PQclear(pr);
            cm_warn("database: connection lost");
            mark_broken(r->db);
            release(r->db);
            r->db = NULL;
            if (retry) {
                retry = false;
                continue;
            }
            r->db_failed = true;
            return WEB_DB_DOWN;
        }
        const char *state = PQresultErrorField(pr, PG_DIAG_SQLSTATE);
        if (state && strcmp(state, "23505") == 0) {
            PQclear(pr);
            return WEB_DB_CONFLICT;
        }
        char msg[256];
        first_line(PQresultErrorMessage(pr), msg, sizeof msg);
        cm_error("database: query failed (%s): %s", state ? state : "?", msg);
        PQclear(pr);
        return WEB_DB_ERROR;
    }
}

bool web_db_ping(struct web_req *r)
{
    return web_db_query(r, NULL, "SELECT 1", 0, NULL) == WEB_DB_OK;
}

bool web_db_wait_ready(volatile sig_atomic_t *stop)
{
    int64_t deadline = cm_mono_ms() + web_cfg.db_start_wait * 1000;
    for (;;) {
        struct web_db_conn *c = acquire();
        if (c) {
            release(c);
            return true;
        }
        if (cm_mono_ms() >= deadline || *stop)
            return false;
        struct timespec ts = {0, WEB_DB_RETRY_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
}
