/* Latest seqs from Redis (seqs.h). */
#include "seqs.h"

#include "cm_log.h"
#include "cm_resolve.h"
#include "config.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static redisContext *ctx;  /* guarded by mu */
static int64_t down_until; /* monotonic ms; guarded by mu */
static bool logged_down;   /* one log line per outage; guarded by mu */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long timeout_ms(void)
{
    return web_cfg.redis_timeout_ms < WEB_SEQS_TIMEOUT_MS ? web_cfg.redis_timeout_ms
                                                          : WEB_SEQS_TIMEOUT_MS;
}

static void fail(const char *why)
{
    if (!logged_down)
        cm_warn("seqs: redis %s:%lld: %s (unread counts shown as unknown)", web_cfg.redis_host,
                web_cfg.redis_port, why);
    logged_down = true;
    redisFree(ctx);
    ctx = NULL;
    down_until = now_ms() + WEB_SEQS_RETRY_MS;
}

static bool open_locked(void)
{
    long long ms = timeout_ms();
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    /* The address comes from the resolver's cache: a slow DNS answer never holds a page
     * (cm_resolve.h). Not known yet: unknown counts now, the address soon. */
    char addr[CM_RESOLVE_ADDR_MAX];
    if (!cm_resolve_numeric(web_cfg.redis_host, addr, sizeof addr)) {
        fail("its address is not known yet");
        return false;
    }
    ctx = redisConnectWithTimeout(addr, (int)web_cfg.redis_port, tv);
    if (!ctx || ctx->err) {
        cm_resolve_refresh(web_cfg.redis_host); /* it may have moved */
        fail(ctx ? ctx->errstr : "out of memory");
        return false;
    }
    redisSetTimeout(ctx, tv);
    if (web_cfg.redis_password[0]) {
        const char *argv[2] = {"AUTH", web_cfg.redis_password};
        size_t lens[2] = {4, strlen(web_cfg.redis_password)};
        redisReply *r = redisCommandArgv(ctx, 2, argv, lens);
        bool ok = r && r->type == REDIS_REPLY_STATUS;
        freeReplyObject(r);
        if (!ok) { /* never log the password or Redis's answer to it */
            fail("AUTH refused (check WEB_REDIS_PASSWORD)");
            return false;
        }
    }
    if (logged_down)
        cm_info("seqs: redis %s:%lld reachable again", web_cfg.redis_host, web_cfg.redis_port);
    logged_down = false;
    return true;
}

int web_seqs_latest(const int64_t *rids, size_t n, long long *out)
{
    if (n == 0)
        return 0;
    if (n > WEB_SEQS_MAX)
        return -1;
    const char *argv[WEB_SEQS_MAX + 1];
    size_t lens[WEB_SEQS_MAX + 1];
    char keys[WEB_SEQS_MAX][40];
    argv[0] = "MGET";
    lens[0] = 4;
    for (size_t i = 0; i < n; i++) {
        int k = snprintf(keys[i], sizeof keys[i], "parley:{r%lld}:seq", (long long)rids[i]);
        argv[i + 1] = keys[i];
        lens[i + 1] = (size_t)k;
    }
    int rc = -1;
    pthread_mutex_lock(&mu);
    if (!ctx && now_ms() < down_until)
        goto out;
    if (!ctx && !open_locked())
        goto out;
    redisReply *r = redisCommandArgv(ctx, (int)n + 1, argv, lens);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != n) {
        fail(r ? "unexpected MGET reply" : ctx->errstr);
        freeReplyObject(r);
        goto out;
    }
    long long tmp[WEB_SEQS_MAX];
    rc = 0;
    for (size_t i = 0; i < n; i++) {
        redisReply *e = r->element[i];
        tmp[i] = 0;
        if (e->type == REDIS_REPLY_STRING) {
            char *end;
            long long v = strtoll(e->str, &end, 10);
            if (end == e->str || *end != '\0' || v < 0)
                rc = -1; /* not a seq: say unknown rather than a wrong number */
            tmp[i] = v;
        } else if (e->type != REDIS_REPLY_NIL) {
            rc = -1;
        }
    }
    freeReplyObject(r);
    if (rc == 0)
        memcpy(out, tmp, n * sizeof *out);
out:
    pthread_mutex_unlock(&mu);
    return rc;
}

void web_seqs_close(void)
{
    pthread_mutex_lock(&mu);
    redisFree(ctx);
    ctx = NULL;
    pthread_mutex_unlock(&mu);
}
