#include "db.h"

#include "cm_log.h"
#include "cm_resolve.h"
#include "cm_util.h"
#include "cm_alloc.h"
#include "config.h"
#include "migrate.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
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
static atomic_bool migrated;

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

/* Waits until fd is ready for events or deadline_ms passes. 1 ready, 0 timed out, -1 error. */
static int wait_fd(int fd, short events, int64_t deadline_ms)
{
    for (;;) {
        int64_t left = deadline_ms - cm_mono_ms();
        if (left <= 0)
            return 0;
        struct pollfd pfd = {.fd = fd, .events = events};
        int n = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (n > 0)
            return 1;
        if (n == 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

/* Opens a connection within DB_CONNECT_TIMEOUT, without blocking past it (PQconnectStartParams
 * and PQconnectPoll, libpq "Database Connection Control Functions"): a server that accepts the
 * TCP connection and then says nothing (a stopped postmaster) cannot hold the thread. Every
 * session gets statement_timeout and lock_timeout (WEB_DB_TIMEOUT_MS) so that a slow query
 * or a lock wait ends on the server too. The connection is left non-blocking (PQexecParams
 * still blocks: libpq does not honour nonblocking mode in PQexec*). */
PGconn *web_db_connect(void)
{
    char port[16], options[96];
    snprintf(port, sizeof port, "%lld", web_cfg.db_port);
    snprintf(options, sizeof options, "-c statement_timeout=%lld -c lock_timeout=%lld",
             web_cfg.db_timeout_ms, web_cfg.db_timeout_ms);
    /* libpq resolves a host name with a blocking getaddrinfo inside PQconnectPoll, which
     * the deadline below cannot bound: the address comes from the resolver's cache instead
     * and goes to libpq as hostaddr (host stays, for messages and password-file lookups;
     * libpq "Parameter Key Words"). A host starting with '/' is a Unix-socket directory. */
    char addr[CM_RESOLVE_ADDR_MAX] = "";
    bool by_socket = web_cfg.db_host[0] == '/';
    if (!by_socket && !cm_resolve_numeric(web_cfg.db_host, addr, sizeof addr)) {
        cm_warn("database: %s: its address is not known yet", web_cfg.db_host);
        return NULL;
    }
    const char *keys[] = {"host",     "port",    "dbname",           "user",
                          "password", "options", "application_name", by_socket ? NULL : "hostaddr",
                          NULL};
    const char *vals[] = {web_cfg.db_host,
                          port,
                          web_cfg.db_name,
                          web_cfg.db_user,
                          web_cfg.db_password,
                          options,
                          "parley-website",
                          addr,
                          NULL};
    int64_t deadline = cm_mono_ms() + web_cfg.db_connect_timeout * 1000;
    PGconn *c = PQconnectStartParams(keys, vals, 0);
    if (!c)
        cm_oom(0);
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    const char *why = NULL;
    while (PQstatus(c) != CONNECTION_BAD && st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
        short ev = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
        int w = wait_fd(PQsocket(c), ev, deadline);
        if (w <= 0) {
            why = w == 0 ? "timed out" : "poll failed";
            break;
        }
        st = PQconnectPoll(c);
    }
    if (why || PQstatus(c) != CONNECTION_OK) {
        char msg[256];
        first_line(why ? why : PQerrorMessage(c), msg, sizeof msg);
        cm_warn("database: cannot connect to %s:%lld/%s: %s", web_cfg.db_host, web_cfg.db_port,
                web_cfg.db_name, msg);
        if (!by_socket)
            cm_resolve_refresh(web_cfg.db_host); /* it may have moved */
        PQfinish(c);
        return NULL;
    }
    if (PQsetnonblocking(c, 1) != 0) {
        PQfinish(c);
        return NULL;
    }
    return c;
}

/* Applies migrations once per process, on the first connection that reaches the database. */
static bool ensure_migrated(PGconn *c)
{
    if (atomic_load(&migrated))
        return true;
    /* Another thread is migrating: this request answers 503 rather than queue behind it. */
    if (pthread_mutex_trylock(&mig_mu) != 0)
        return false;
    bool ok = atomic_load(&migrated);
    if (!ok && web_migrate(c) == 0 && web_admin_bootstrap(c) == 0) {
        atomic_store(&migrated, true);
        ok = true;
        cm_info("database: ready (migrations applied)");
    }
    pthread_mutex_unlock(&mig_mu);
    return ok;
}

/* After a timeout, until this time (cm_mono_ms) every request answers 503 at once instead of
 * each waiting out its own deadline on a server that is not answering (WEB_DB_RETRY_MS). */
static _Atomic int64_t down_until_ms;

static void note_timeout(void)
{
    atomic_store(&down_until_ms, cm_mono_ms() + web_cfg.db_retry_ms);
}

static struct web_db_conn *acquire(void)
{
    if (cm_mono_ms() < atomic_load(&down_until_ms))
        return NULL;
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
        if (!slot->pg)
            note_timeout(); /* refused or timed out: the next requests need not try again */
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

/* Runs one parameterised statement on a non-blocking connection and waits for its result no
 * longer than WEB_DB_TIMEOUT_MS (PQsendQueryParams, PQflush, PQconsumeInput, PQisBusy: libpq
 * "Asynchronous Command Processing"). statement_timeout alone does not do: a stopped or
 * unreachable server never sends the error. On a timeout *timed_out is set and NULL returned;
 * the caller then drops the connection (PQcancel is not used: it blocks on a stopped server,
 * and the server's statement_timeout ends the query there). Returns the last result, or NULL
 * when the connection failed. */
static PGresult *exec_deadline(PGconn *pg, const char *sql, int n, const char *const *params,
                               bool *timed_out)
{
    *timed_out = false;
    int64_t deadline = cm_mono_ms() + web_cfg.db_timeout_ms;
    if (!PQsendQueryParams(pg, sql, n, NULL, params, NULL, NULL, 0))
        return NULL;
    for (;;) {
        int f = PQflush(pg);
        if (f < 0)
            return NULL;
        if (f == 0)
            break;
        int w = wait_fd(PQsocket(pg), POLLOUT | POLLIN, deadline);
        if (w <= 0) {
            *timed_out = w == 0;
            return NULL;
        }
        if (!PQconsumeInput(pg))
            return NULL;
    }
    PGresult *last = NULL;
    for (;;) {
        while (PQisBusy(pg)) {
            int w = wait_fd(PQsocket(pg), POLLIN, deadline);
            if (w <= 0 || !PQconsumeInput(pg)) {
                *timed_out = w == 0;
                PQclear(last);
                return NULL;
            }
        }
        PGresult *pr = PQgetResult(pg);
        if (!pr)
            return last;
        PQclear(last);
        last = pr;
    }
}

PGresult *web_db_exec(PGconn *pg, const char *sql, int n, const char *const *params)
{
    bool timed_out;
    return exec_deadline(pg, sql, n, params, &timed_out);
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
        bool timed_out;
        PGresult *pr = exec_deadline(r->db->pg, sql, n, params, &timed_out);
        if (timed_out) {
            cm_warn("database: no answer within %lld ms (WEB_DB_TIMEOUT_MS)",
                    web_cfg.db_timeout_ms);
            note_timeout();
            mark_broken(r->db); /* its state is unknown: never reuse it */
            release(r->db);
            r->db = NULL;
            r->db_failed = true;
            return WEB_DB_DOWN;
        }
        ExecStatusType st = PQresultStatus(pr);
        if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
            if (res)
                *res = pr;
            else
                PQclear(pr);
            return WEB_DB_OK;
        }
        if (!pr || PQstatus(r->db->pg) != CONNECTION_OK) {
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
        /* The server ended it: statement_timeout (57014 query_canceled) or lock_timeout
         * (55P03 lock_not_available). The database is too slow for us: 503, not 500. */
        if (state && (strcmp(state, "57014") == 0 || strcmp(state, "55P03") == 0)) {
            cm_warn("database: query ended by the server's timeout (%s)", state);
            PQclear(pr);
            r->db_failed = true;
            return WEB_DB_DOWN;
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
