/* One HTTP request as the handlers see it: what came in, the response being built, and the
 * request-scoped state (database connection, session). http.c adapts libmicrohttpd to this
 * and frees everything the request owned in one place when MHD reports it completed; the
 * response helpers here only fill fields. */
#ifndef WEB_REQ_H
#define WEB_REQ_H

#include "cm_buf.h"

#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WEB_MAX_RESP_HEADERS 8
#define WEB_IP_MAX 64
#define WEB_RETRY_AFTER_S 5 /* Retry-After of a 503 (busy, database down) */
#define WEB_CSRF_LEN 64     /* hex characters: 256 random bits */

struct web_resp_header {
    const char *name; /* static string */
    char *value;      /* owned */
};

struct web_db_conn;
struct web_session;
struct web_hash_job;

struct web_req {
    struct MHD_Connection *conn;
    const char *method;
    const char *path; /* decoded by MHD, NUL-terminated, without the query */
    bool is_head;
    const char *param; /* the router's captured path segment (e.g. a room name) */
    size_t param_len;
    char ip[WEB_IP_MAX];
    int64_t start_ms;

    struct cm_buf body;
    bool too_large;
    uint64_t discarded; /* body bytes dropped after too_large */

    struct web_db_conn *db; /* acquired on the first query, released at completion */
    bool db_failed;         /* a query found the database down: answer 503 */

    bool sess_loaded;
    bool has_sess;                    /* then sess is set */
    struct web_session *sess;         /* owned (session.c fills it, completion frees it), or NULL */
    char csrf_anon[WEB_CSRF_LEN + 1]; /* pre-login CSRF cookie value, "" if none yet */

    /* Work handed off the worker thread (web_req_hash): http.c suspends the connection until
     * the hash pool is done with `hash`, then calls `then`. */
    struct web_hash_job *hash; /* owned */
    void (*then)(struct web_req *r);
    bool hash_pending; /* set by web_req_hash, cleared by http.c when it hands the job off */
    bool suspended;
    void *ctx; /* the handler's state across the hand-off, freed with ctx_free at completion */
    void (*ctx_free)(void *ctx);

    /* response */
    unsigned status;
    struct cm_buf out;
    const char *ctype;
    struct web_resp_header hdr[WEB_MAX_RESP_HEADERS];
    size_t nhdr;
    int fd; /* a static file to send instead of out, or -1 */
    uint64_t fd_size;
    bool cacheable; /* static files: allow caching; everything else is no-store */
};

/* Request accessors: borrowed strings valid until the request completes, NULL if absent. */
const char *web_req_header(struct web_req *r, const char *name);
const char *web_req_arg(struct web_req *r, const char *name);

/* Hands job (owned from now on by the request) to the hash pool: when the handler returns,
 * http.c suspends the connection (the worker thread serves others meanwhile) and, once the
 * job is done, expired or failed, calls then(r) on a worker thread; then reads
 * r->hash and sets the response. ctx (may be NULL) is the handler's state, freed with
 * ctx_free when the request completes. */
void web_req_hash(struct web_req *r, struct web_hash_job *job, void (*then)(struct web_req *r),
                  void *ctx, void (*ctx_free)(void *ctx));

/* Adds a response header (value formatted, owned by the request). */
void web_resp_header(struct web_req *r, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* 303 See Other to a local path. */
void web_redirect(struct web_req *r, const char *location);
/* JSON response; takes ownership of obj. */
void web_json(struct web_req *r, unsigned status, cJSON *obj);
/* {"error": code, "message": message} */
void web_json_error(struct web_req *r, unsigned status, const char *code, const char *message);
/* Plain-text response (used for 405/413 before any page machinery). */
void web_text(struct web_req *r, unsigned status, const char *text);

#endif
