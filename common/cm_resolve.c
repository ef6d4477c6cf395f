/* Host-name resolution off the callers' threads (cm_resolve.h). Sources: getaddrinfo(3),
 * inet_ntop(3), inet_pton(3) (POSIX); glibc sorts getaddrinfo's answers by RFC 6724. */
#include "cm_resolve.h"

#include "cm_log.h"
#include "cm_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

struct entry {
    char name[CM_RESOLVE_NAME_MAX];
    char addr[CM_RESOLVE_ADDR_MAX]; /* "" until a first answer */
    bool wanted;                    /* look it up at the next turn */
    bool failing;                   /* the last lookup failed (logged once per outage) */
    int64_t next_ms;                /* monotonic time of the next periodic lookup */
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work_cv = PTHREAD_COND_INITIALIZER; /* a name is wanted, or stopping */
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER; /* an answer came */
static struct entry hosts[CM_RESOLVE_MAX_HOSTS];
static size_t nhosts;
static bool running, stopping;
static pthread_t thread;

static bool is_literal(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* The absolute time ms from now on the clock pthread_cond_timedwait uses by default
 * (CLOCK_REALTIME: the condition variables here have default attributes). */
static struct timespec deadline_in(int64_t ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += (time_t)(ms / 1000);
    dl.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    return dl;
}

/* One blocking lookup, outside the lock. False with a reason when there is no answer. */
static bool lookup(const char *name, char out[CM_RESOLVE_ADDR_MAX], const char **why)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(name, NULL, &hints, &res);
    if (rc != 0) {
        *why = rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc);
        return false;
    }
    bool ok = false;
    for (struct addrinfo *a = res; a && !ok; a = a->ai_next) {
        const void *p = a->ai_family == AF_INET
                            ? (const void *)&((struct sockaddr_in *)a->ai_addr)->sin_addr
                        : a->ai_family == AF_INET6
                            ? (const void *)&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr
                            : NULL;
        ok = p && inet_ntop(a->ai_family, p, out, CM_RESOLVE_ADDR_MAX) != NULL;
    }
    freeaddrinfo(res);
    if (!ok)
        *why = "no IPv4 or IPv6 address";
    return ok;
}

static void *resolver_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    while (!stopping) {
        int64_t now = cm_mono_ms(), next = now + CM_RESOLVE_REFRESH_MS;
        struct entry *e = NULL;
        for (size_t i = 0; i < nhosts && !e; i++)
            if (hosts[i].wanted || hosts[i].next_ms <= now)
                e = &hosts[i];
        if (!e) {
            for (size_t i = 0; i < nhosts; i++)
                if (hosts[i].next_ms < next)
                    next = hosts[i].next_ms;
            struct timespec dl = deadline_in(next - now);
            pthread_cond_timedwait(&work_cv, &mu, &dl);
            continue;
        }
        char name[CM_RESOLVE_NAME_MAX], addr[CM_RESOLVE_ADDR_MAX];
        memcpy(name, e->name, sizeof name);
        e->wanted = false;
        e->next_ms = now + CM_RESOLVE_REFRESH_MS;
        pthread_mutex_unlock(&mu);
        const char *why = NULL;
        bool ok = lookup(name, addr, &why);
        pthread_mutex_lock(&mu);
        /* the table only grows while the thread runs: e still names this host */
        if (ok) {
            if (e->failing || strcmp(e->addr, addr) != 0)
                cm_info("resolve: %s is %s", name, addr);
            memcpy(e->addr, addr, sizeof addr);
            e->failing = false;
        } else if (!e->failing) {
            cm_warn("resolve: %s: %s%s", name, why,
                    e->addr[0] ? " (its last address stays in use)" : "");
            e->failing = true;
        }
        pthread_cond_broadcast(&done_cv);
    }
    pthread_mutex_unlock(&mu);
    return NULL;
}

/* Under mu: the entry of name, registered (and wanted) when new. NULL when full. */
static struct entry *entry_locked(const char *name)
{
    for (size_t i = 0; i < nhosts; i++)
        if (strcmp(hosts[i].name, name) == 0)
            return &hosts[i];
    if (nhosts == CM_RESOLVE_MAX_HOSTS) {
        cm_error("resolve: more than %d host names; %s is not looked up", CM_RESOLVE_MAX_HOSTS,
                 name);
        return NULL;
    }
    if (!running) {
        stopping = false;
        if (pthread_create(&thread, NULL, resolver_main, NULL) != 0) {
            cm_error("resolve: cannot start the resolver thread");
            return NULL;
        }
        running = true;
    }
    struct entry *e = &hosts[nhosts++];
    memset(e, 0, sizeof *e);
    memcpy(e->name, name, strlen(name) + 1);
    e->wanted = true;
    pthread_cond_signal(&work_cv);
    return e;
}

static bool get(const char *host, char *out, size_t outlen, long timeout_ms)
{
    if (!host || !out || outlen < CM_RESOLVE_ADDR_MAX)
        return false;
    size_t n = strlen(host);
    if (n == 0 || n >= CM_RESOLVE_NAME_MAX)
        return false;
    if (is_literal(host)) {
        memcpy(out, host, n + 1);
        return true;
    }
    if (timeout_ms < 0)
        timeout_ms = 0;
    if (timeout_ms > 600000)
        timeout_ms = 600000;
    int64_t until = cm_mono_ms() + timeout_ms;
    pthread_mutex_lock(&mu);
    struct entry *e = entry_locked(host);
    while (e && !e->addr[0] && !stopping) {
        int64_t left = until - cm_mono_ms();
        if (left <= 0)
            break;
        e->wanted = true;
        pthread_cond_signal(&work_cv);
        struct timespec dl = deadline_in(left);
        pthread_cond_timedwait(&done_cv, &mu, &dl);
    }
    bool ok = e && e->addr[0];
    if (ok)
        memcpy(out, e->addr, CM_RESOLVE_ADDR_MAX);
    else if (e) {
        e->wanted = true; /* not known yet: as soon as the thread is free */
        pthread_cond_signal(&work_cv);
    }
    pthread_mutex_unlock(&mu);
    return ok;
}

bool cm_resolve_numeric(const char *host, char *out, size_t outlen)
{
    return get(host, out, outlen, 0);
}

bool cm_resolve_wait(const char *host, char *out, size_t outlen, long timeout_ms)
{
    return get(host, out, outlen, timeout_ms);
}

void cm_resolve_refresh(const char *host)
{
    if (!host || is_literal(host))
        return;
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < nhosts; i++)
        if (strcmp(hosts[i].name, host) == 0) {
            hosts[i].wanted = true;
            pthread_cond_signal(&work_cv);
        }
    pthread_mutex_unlock(&mu);
}

void cm_resolve_stop(void)
{
    pthread_mutex_lock(&mu);
    bool was = running;
    stopping = true;
    pthread_cond_broadcast(&work_cv);
    pthread_cond_broadcast(&done_cv);
    pthread_mutex_unlock(&mu);
    if (was)
        pthread_join(thread, NULL);
    pthread_mutex_lock(&mu);
    running = false;
    nhosts = 0;
    pthread_mutex_unlock(&mu);
}
