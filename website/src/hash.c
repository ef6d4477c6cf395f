/* syscall(SYS_gettid): the per-thread nice value below is Linux's (setpriority(2) on a
 * thread id), which glibc only declares with _GNU_SOURCE. */
#define _GNU_SOURCE
#include "hash.h"

#include "cm_alloc.h"
#include "cm_log.h"
#include "cm_util.h"
#include "config.h"
#include "validate.h"

#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

struct web_hash_job {
    bool verify;
    bool has_hash;
    char pw[WEB_PASSWORD_MAX];
    size_t pw_len;
    char hash[WEB_HASH_MAX]; /* in: the hash to verify against; out: the hash made */
    int64_t deadline_ms;
    struct MHD_Connection *conn; /* resumed when done; NULL: a waiter (web_hash_job_wait) */
    enum web_hash_state state;   /* written under mu */
    bool ok;
    bool started;
    struct web_hash_job *next;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work_cv = PTHREAD_COND_INITIALIZER; /* a job was queued, or stopping */
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER; /* a job left PENDING */
static struct web_hash_job *head, *tail;
static size_t taken; /* jobs that hold a place: created and not yet finished */
static bool stopping;
static pthread_t *threads;
static size_t nthreads;

/* Under mu: the job leaves PENDING; its connection is resumed or its waiter woken. The
 * place in the queue is given back here, not at free: the bound counts work, not memory. */
static void finish_locked(struct web_hash_job *j, enum web_hash_state st)
{
    j->state = st;
    taken--;
    if (j->conn)
        MHD_resume_connection(j->conn);
    else
        pthread_cond_broadcast(&done_cv);
}

/* Hashing is CPU-bound and, in a storm, never idle: below the HTTP threads' priority it uses
 * only the CPU they leave, so pages stay fast on a small machine (Linux applies
 * setpriority(2) to one thread when given its thread id). Raising one's own nice value needs
 * no privilege; failing to is harmless. */
#define WEB_HASH_NICE 10

static void *worker(void *arg)
{
    (void)arg;
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), WEB_HASH_NICE) != 0)
        cm_debug("hash pool: cannot lower the thread's priority");
    pthread_mutex_lock(&mu);
    for (;;) {
        while (!head && !stopping)
            pthread_cond_wait(&work_cv, &mu);
        if (!head)
            break; /* stopping, nothing left */
        struct web_hash_job *j = head;
        head = j->next;
        if (!head)
            tail = NULL;
        /* Too late, or shutting down: the request answers 503 instead of waiting on. */
        if (stopping || cm_mono_ms() > j->deadline_ms) {
            finish_locked(j, WEB_HASH_EXPIRED);
            continue;
        }
        pthread_mutex_unlock(&mu);
        enum web_hash_state st = WEB_HASH_DONE;
        if (j->verify)
            j->ok = web_password_verify(j->has_hash ? j->hash : NULL, j->pw, j->pw_len);
        else if (web_password_hash(j->pw, j->pw_len, j->hash) < 0)
            st = WEB_HASH_FAILED;
        sodium_memzero(j->pw, sizeof j->pw);
        pthread_mutex_lock(&mu);
        finish_locked(j, st);
    }
    pthread_mutex_unlock(&mu);
    return NULL;
}

int web_hash_pool_start(void)
{
    nthreads = (size_t)web_cfg.pwhash_concurrency;
    threads = cm_xcalloc(nthreads, sizeof *threads);
    for (size_t i = 0; i < nthreads; i++) {
        if (pthread_create(&threads[i], NULL, worker, NULL) != 0) {
            cm_error("hash pool: cannot start a thread");
            nthreads = i;
            web_hash_pool_stop();
            return -1;
        }
    }
    return 0;
}

void web_hash_pool_stop(void)
{
    pthread_mutex_lock(&mu);
    stopping = true;
    pthread_cond_broadcast(&work_cv);
    pthread_mutex_unlock(&mu);
    for (size_t i = 0; i < nthreads; i++)
        pthread_join(threads[i], NULL);
    free(threads);
    threads = NULL;
    nthreads = 0;
}

struct web_hash_job *web_hash_job_new(bool verify, const char *pw, size_t len, const char *hash)
{
    if (len > WEB_PASSWORD_MAX)
        len = WEB_PASSWORD_MAX;
    pthread_mutex_lock(&mu);
    bool full = stopping || taken >= (size_t)web_cfg.hash_queue;
    if (!full)
        taken++;
    pthread_mutex_unlock(&mu);
    if (full)
        return NULL;
    struct web_hash_job *j = cm_xcalloc(1, sizeof *j);
    j->verify = verify;
    memcpy(j->pw, pw, len);
    j->pw_len = len;
    if (hash && strnlen(hash, WEB_HASH_MAX) < WEB_HASH_MAX) {
        memcpy(j->hash, hash, strlen(hash) + 1);
        j->has_hash = true;
    }
    return j;
}

static void enqueue_locked(struct web_hash_job *j, struct MHD_Connection *conn)
{
    j->started = true;
    j->conn = conn;
    j->deadline_ms = cm_mono_ms() + web_cfg.hash_timeout_ms;
    j->state = WEB_HASH_PENDING;
    j->next = NULL;
    if (stopping) {
        finish_locked(j, WEB_HASH_EXPIRED);
        return;
    }
    if (tail)
        tail->next = j;
    else
        head = j;
    tail = j;
    pthread_cond_signal(&work_cv);
}

void web_hash_job_start(struct web_hash_job *j, struct MHD_Connection *conn)
{
    pthread_mutex_lock(&mu);
    enqueue_locked(j, conn);
    pthread_mutex_unlock(&mu);
}

void web_hash_job_wait(struct web_hash_job *j)
{
    pthread_mutex_lock(&mu);
    enqueue_locked(j, NULL);
    while (j->state == WEB_HASH_PENDING)
        pthread_cond_wait(&done_cv, &mu);
    pthread_mutex_unlock(&mu);
}

enum web_hash_state web_hash_job_state(const struct web_hash_job *j)
{
    pthread_mutex_lock(&mu);
    enum web_hash_state st = j->state;
    pthread_mutex_unlock(&mu);
    return st;
}

bool web_hash_job_ok(const struct web_hash_job *j)
{
    return j->ok;
}

const char *web_hash_job_hash(const struct web_hash_job *j)
{
    return j->hash;
}

void web_hash_job_free(struct web_hash_job *j)
{
    if (!j)
        return;
    if (!j->started) { /* never queued: give its place back */
        pthread_mutex_lock(&mu);
        taken--;
        pthread_mutex_unlock(&mu);
    }
    sodium_memzero(j, sizeof *j);
    free(j);
}
