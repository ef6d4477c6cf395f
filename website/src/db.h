/* PostgreSQL through libpq: a fixed pool of connections that reconnect by themselves, and the
 * one function handlers query through (parameterised statements only). */
#ifndef WEB_DB_H
#define WEB_DB_H

#include "req.h"

#include <libpq-fe.h>
#include <signal.h>
#include <stdbool.h>

enum web_db_rc {
    WEB_DB_OK = 0,   /* PGRES_TUPLES_OK or PGRES_COMMAND_OK */
    WEB_DB_CONFLICT, /* unique violation (SQLSTATE 23505) */
    WEB_DB_DOWN,     /* no connection: the request answers 503 */
    WEB_DB_ERROR,    /* any other error (logged): the request answers 500 */
};

int web_db_init(void);
void web_db_shutdown(void);

/* Waits up to web_cfg.db_start_wait seconds for the database to answer and the migrations to
 * apply. Returns true when ready; false means the site starts anyway and answers 503 until
 * the database comes (migrations then run on the first request that reaches it). Returns
 * early when *stop becomes non-zero (a signal). */
bool web_db_wait_ready(volatile sig_atomic_t *stop);

/* Runs sql with n text parameters on the request's connection (acquired on first use).
 * On WEB_DB_OK, *res (if res is non-NULL) holds the result, which the caller PQclear()s;
 * on any other return *res is NULL and nothing needs clearing. */
enum web_db_rc web_db_query(struct web_req *r, PGresult **res, const char *sql, int n,
                            const char *const *params);

/* A new connection outside the pool (a background thread's own), or NULL (logged). The
 * caller PQfinish()es it. */
PGconn *web_db_connect(void);

/* Runs sql on such a connection within WEB_DB_TIMEOUT_MS (as web_db_query does). Returns the
 * result (the caller PQclear()s it and checks its status), or NULL when the connection failed
 * or timed out: then its state is unknown and the caller PQfinish()es it. */
PGresult *web_db_exec(PGconn *pg, const char *sql, int n, const char *const *params);

/* Returns the request's connection to the pool (http.c calls this at completion). */
void web_db_release(struct web_req *r);

/* "SELECT 1" on a pooled connection: the /healthz probe. */
bool web_db_ping(struct web_req *r);

#endif
