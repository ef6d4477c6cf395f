/* parley-website: configuration, start-up, signal handling, orderly shutdown. */
#include "cm_alloc.h"
#include "cm_log.h"
#include "cm_resolve.h"
#include "cm_util.h"
#include "config.h"
#include "db.h"
#include "hash.h"
#include "events.h"
#include "seqs.h"
#include "http.h"
#include "password.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

int main(void)
{
    char err[512];
    cm_log_init("website", CM_LOG_INFO);
    cm_alloc_init_cjson();
    if (web_config_load(err, sizeof err) < 0) {
        cm_error("configuration: %s", err);
        web_config_free();
        return 2;
    }
    cm_log_set_level((enum cm_log_level)cm_log_level_parse(web_cfg.log_level));
    web_config_log();

    int rc = 1;
    cm_signals_install(on_signal);
    if (web_password_init() < 0)
        goto out_cfg;
    if (web_hash_pool_start() < 0)
        goto out_pw;
    web_db_init();
    if (!web_db_wait_ready(&stop_signal) && !stop_signal)
        cm_warn("database not ready after %lld s: serving 503 until it answers",
                web_cfg.db_start_wait);
    /* Block the stop signals in every thread but this one (MHD's threads inherit the mask),
     * then wait for one; a signal that came during start-up is already in stop_signal. */
    sigset_t stopset, old;
    sigemptyset(&stopset);
    sigaddset(&stopset, SIGTERM);
    sigaddset(&stopset, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stopset, &old);
    /* A first answer for Redis's name (unread counts), so the first pages have it; requests
     * themselves only read the resolver's cache (cm_resolve.h). */
    char redis_addr[CM_RESOLVE_ADDR_MAX];
    if (!stop_signal && !cm_resolve_wait(web_cfg.redis_host, redis_addr, sizeof redis_addr,
                                         web_cfg.redis_timeout_ms))
        cm_warn("redis: %s has no address yet (unread counts unknown until it has)",
                web_cfg.redis_host);
    web_events_start(); /* room deletions for the chat archive; retries by itself */
    if (!stop_signal && web_http_start() < 0)
        goto out_db;

    while (!stop_signal)
        sigsuspend(&old);
    cm_info("signal %d: shutting down", (int)stop_signal);
    rc = 0;
out_db:
    web_hash_pool_stop(); /* first: it resumes every connection waiting on a hash */
    web_http_stop();
    web_db_shutdown();
out_pw:
    web_password_shutdown();
out_cfg:
    web_events_stop();
    web_seqs_close();
    cm_resolve_stop(); /* after every thread that asks it */
    web_config_free();
    return rc;
}
