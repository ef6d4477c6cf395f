/* The password-hashing pool: Argon2id (password.c) on threads of its own, so that a burst of
 * logins cannot take the HTTP worker threads that serve every other page. A request hands
 * its hash or verification to the pool and its connection is suspended (MHD_suspend_connection,
 * libmicrohttpd.texi "Suspend and resume"); a pool thread does the work and resumes it.
 *
 * Bounds: at most WEB_HASH_QUEUE jobs wait or run at once (web_hash_job_new refuses more:
 * the request answers 503 at once), and a job not started within WEB_HASH_TIMEOUT_MS of its
 * submission is dropped unstarted (the request answers 503). A dropped job is noticed when a
 * pool thread next looks at the queue, so a request learns it at most one hash later. */
#ifndef WEB_HASH_H
#define WEB_HASH_H

#include "password.h"

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

enum web_hash_state {
    WEB_HASH_PENDING = 0, /* queued or running */
    WEB_HASH_DONE,        /* made (out) or verified (ok) */
    WEB_HASH_EXPIRED,     /* not started before its deadline, or the pool is stopping: 503 */
    WEB_HASH_FAILED,      /* libsodium failed (out of memory): 503 */
};

struct web_hash_job;

/* Threads (PWHASH_CONCURRENCY) and queue. 0 on success. */
int web_hash_pool_start(void);
/* Drops every queued job (EXPIRED, resuming its connection), waits for the running ones and
 * joins the threads. Call before MHD_stop_daemon: MHD must not stop with a connection
 * suspended. */
void web_hash_pool_stop(void);

/* A job that hashes [pw, pw+len) (verify == false) or verifies it against hash (verify ==
 * true; hash NULL verifies against the dummy, which always fails, costing as much as a real
 * verification). The password is copied (and wiped by web_hash_job_free). Takes a place in
 * the queue: returns NULL, taking nothing, when WEB_HASH_QUEUE jobs are already queued or
 * running. len is at most WEB_PASSWORD_MAX (validate.h). */
struct web_hash_job *web_hash_job_new(bool verify, const char *pw, size_t len, const char *hash);

/* Queues the job; its deadline starts now. When it leaves PENDING, conn is resumed (conn
 * must have been suspended by the caller, in the access handler, before this call). */
void web_hash_job_start(struct web_hash_job *j, struct MHD_Connection *conn);

/* Queues the job and waits until it leaves PENDING (for MHD's thread-per-connection mode,
 * where a connection's own thread may block and suspending is not available). */
void web_hash_job_wait(struct web_hash_job *j);

/* Results, valid once the job left PENDING. */
enum web_hash_state web_hash_job_state(const struct web_hash_job *j);
bool web_hash_job_ok(const struct web_hash_job *j);          /* verify: matched */
const char *web_hash_job_hash(const struct web_hash_job *j); /* hash: the string made */

/* Frees a job that is not PENDING (accepts NULL), wiping the password. */
void web_hash_job_free(struct web_hash_job *j);

#endif
