/* parley-chat: configuration, signals, the lws context and the service loop. */
#include "archive.h"
#include "chat.h"
#include "history.h"
#include "moderation.h"
#include "presence.h"
#include "rawguard.h"
#include "redis.h"
#include "room.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <ev.h>

#include "cm_alloc.h"
#include "cm_log.h"
#include "cm_resolve.h"
#include "cm_util.h"

#define CHAT_ROOM_BUCKETS 1024
#define CHAT_SHUTDOWN_TICK_MS 100 /* how often the shutdown loop re-checks its deadline */
#define CHAT_GUARD_FDS_MAX (1 << 20)

static volatile sig_atomic_t stop_requested;
static struct lws_context *volatile the_ctx;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
    /* only wakes the service loop (a write to lws's event pipe): async-signal-safe */
    if (the_ctx)
        lws_cancel_service(the_ctx);
}

static void lws_log_emit(int level, const char *line)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    /* lws warns for every handshake our filter refuses; we log those ourselves */
    enum cm_log_level lv = level == LLL_ERR ? CM_LOG_ERROR : CM_LOG_WARN;
    /* never a credential in a log: a JWT starts with "eyJ" (base64url of '{"'); CHAT_LWS_DEBUG
     * leaves out lws's parser and header levels, which dump request bytes one by one */
    if (strstr(line, "eyJ")) {
        cm_log(lv, "lws: (a line that may hold a token, withheld)");
        return;
    }
    if (strstr(line, "User code denied connection"))
        lv = CM_LOG_DEBUG;
    else if (strstr(line, "Ran out of header data space"))
        lv = CM_LOG_WARN; /* a client's oversized request head, not our error */
    cm_log(lv, "lws: %.*s", (int)n, line);
}

/* One turn of the event loop: waits for at least one event (socket, lws timer, the wake-up
 * pipe of lws_cancel_service) and handles what is ready, as lws_service(ctx, 0) does on lws's
 * own loop (libev(3), ev_run with EVRUN_ONCE). */
static void service_once(struct ev_loop *loop)
{
    (void)ev_run(loop, EVRUN_ONCE);
}

static lws_sorted_usec_list_t tick;
static void on_tick(lws_sorted_usec_list_t *sul)
{
    (void)sul; /* nothing to do: the wake-up alone lets the loop check its deadline */
    lws_sul_schedule(the_ctx, 0, &tick, on_tick, CHAT_SHUTDOWN_TICK_MS * LWS_US_PER_MS);
}

int main(void)
{
    static struct chat_config cfg;
    static struct chat_server srv;
    char err[512];

    cm_log_init("chat", CM_LOG_INFO);
    cm_alloc_init_cjson();
    if (chat_config_load(&cfg, err, sizeof err) < 0) {
        cm_error("configuration: %s", err);
        chat_config_free();
        return 2;
    }
    cm_log_set_level((enum cm_log_level)cm_log_level_parse(cfg.log_level));
    chat_config_log();

    cm_signals_install(on_signal);

    /* the archive's threads connect to Redis and MongoDB in the background (neither needs to
     * be up); it fails only on a CHAT_MONGO_URI that does not parse */
    struct chat_archive *archive = chat_archive_new(&cfg);
    if (!archive) {
        chat_config_free();
        return 2;
    }

    /* Descriptors: lws sizes its tables by RLIMIT_NOFILE and then finds a descriptor's
     * connection by index. (A smaller info.fd_limit_per_thread would make lws 4.1.6 look up
     * every descriptor by a linear search instead, lib/plat/unix/unix-fds.c wsi_from_fd:
     * 63% of the daemon's CPU at 5,000 connections, 4 ms per handshake at 17,000.) So the soft
     * limit is raised to what CHAT_MAX_CONNECTIONS needs when the hard limit allows it. */
    struct rlimit rl;
    size_t guard_fds = 4096;
    rlim_t need = (rlim_t)(cfg.max_connections + cfg.max_pending_handshakes + 64);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
            struct rlimit up = rl;
            up.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > need ? need : rl.rlim_max;
            if (setrlimit(RLIMIT_NOFILE, &up) == 0)
                rl = up;
            if (rl.rlim_cur < need)
                cm_warn("open files limit %llu is below the %llu CHAT_MAX_CONNECTIONS needs: "
                        "connections beyond it fail (raise ulimit -n)",
                        (unsigned long long)rl.rlim_cur, (unsigned long long)need);
        }
        if (rl.rlim_cur != RLIM_INFINITY)
            guard_fds = (size_t)rl.rlim_cur;
    }
    if (guard_fds > CHAT_GUARD_FDS_MAX)
        guard_fds = CHAT_GUARD_FDS_MAX;
    chat_rawguard_init(guard_fds);

    lws_set_log_level(getenv("CHAT_LWS_DEBUG")
                          ? (LLL_ERR | LLL_WARN | LLL_NOTICE | LLL_INFO | LLL_DEBUG | LLL_USER)
                          : (LLL_ERR | LLL_WARN),
                      lws_log_emit);

    srv.cfg = &cfg;
    srv.rooms = chat_rooms_new(CHAT_ROOM_BUCKETS, (uint32_t)cfg.ring_size);
    chat_index_init(&srv.index);
    chat_inbox_init(&srv.inbox);

    static const struct lws_protocols proto_template = {
        "parley-chat", chat_http_callback, sizeof(struct chat_conn), 0, 0, NULL, 0};
    struct lws_protocols protocols[3];
    memset(protocols, 0, sizeof protocols);
    protocols[0] = proto_template;
    /* Redis's sockets, adopted as raw files (redis.c) */
    protocols[1].name = CHAT_REDIS_PROTOCOL;
    protocols[1].callback = chat_redis_lws_callback;
    protocols[0].rx_buffer_size = (size_t)cfg.rx_buffer;
    /* lws_issue_raw sends at most tx_packet_size (else rx_buffer_size) + LWS_PRE + 4 bytes
     * per write and buffers the rest: let a batch of frames go out in one send() */
    protocols[0].tx_packet_size = CHAT_TX_BATCH_BYTES;

    /* no lws validity (ping / hangup) timers: a vhost policy with secs_since_valid_hangup 0
     * makes lws 4.1.6 skip them (_lws_validity_confirmed_role), whereas no policy at all
     * would give every wsi the context default (300 s / 310 s). Each of those timers is a
     * sorted insertion into one list, O(n) per handshake; conn.c's sweep does the job with
     * one timer (CHAT_PING_INTERVAL / CHAT_IDLE_TIMEOUT). */
    static lws_retry_bo_t retry;
    retry.secs_since_valid_ping = 0;
    retry.secs_since_valid_hangup = 0;

    /* The event loop is libev's on epoll, given to lws as a foreign loop (its evlib plugin,
     * Debian's libwebsockets-evlib-ev; lws 4.1.6 READMEs/README.event-libs.md). lws's own
     * loop is poll(): every turn costs the kernel a pass over every descriptor. Measured here
     * with 15,000 idle connections: 38% of a core doing nothing but poll() (sock_poll, fdget,
     * tcp_poll in perf), against 1% on epoll. (At ~1000 connections epoll costs a little more
     * per delivery: an epoll_ctl whenever a socket starts or stops waiting to write.) */
    struct lws_context *ctx = NULL;
    struct ev_loop *loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
    if (!loop) {
        cm_error("cannot create the event loop (libev, epoll)");
        goto fail;
    }
    void *foreign_loops[1] = {loop};

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.foreign_loops = foreign_loops;
    info.port = (int)cfg.port;
    info.iface = cfg.listen_addr;
    info.protocols = protocols;
    info.user = &srv;
    info.vhost_name = "parley-chat";
    /* RFC 6455 §8.1: lws closes with 1007 on invalid UTF-8 in text frames only if asked */
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8 | LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND |
                   LWS_SERVER_OPTION_LIBEV;
    if (!strchr(cfg.listen_addr, ':'))
        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    info.max_http_header_data = (unsigned short)cfg.max_header_bytes;
    info.max_http_header_pool = (unsigned short)cfg.max_pending_handshakes;
    info.timeout_secs = (unsigned int)cfg.handshake_timeout;
    info.timeout_secs_ah_idle = (unsigned int)cfg.handshake_timeout; /* slowloris */
    info.retry_and_idle_policy = &retry;
    info.ka_time = 0;

    ctx = lws_create_context(&info);
    if (!ctx) {
        cm_error("cannot listen on %s:%lld (address in use or not local?), or lws's libev "
                 "plugin (package libwebsockets-evlib-ev) is missing",
                 cfg.listen_addr, cfg.port);
        goto fail;
    }
    if (!chat_http_admin_listen(ctx, &info, &cfg)) {
        cm_error("cannot listen on %s:%lld (CHAT_ADMIN_ADDR:CHAT_ADMIN_PORT)", cfg.admin_addr,
                 cfg.admin_port);
        goto fail;
    }
    srv.ctx = ctx;
    the_ctx = ctx;
    chat_inbox_set_context(&srv.inbox, ctx);
    cm_info("listening on %s:%lld (WebSocket at /ws), admin on %s:%lld (/healthz, /metrics)",
            cfg.listen_addr, cfg.port, cfg.admin_addr, cfg.admin_port);
    /* A first answer for Redis's name before the loop, which only reads the cache: the first
     * connection then goes out at once (cm_resolve.h; no answer yet: it retries). */
    char redis_addr[CM_RESOLVE_ADDR_MAX];
    if (!cm_resolve_wait(cfg.redis_host, redis_addr, sizeof redis_addr, cfg.redis_timeout_ms))
        cm_warn("redis: %s has no address yet (retrying in the background)", cfg.redis_host);
    srv.hist = chat_history_new(&srv, lws_get_vhost_by_name(ctx, "parley-chat"), archive);
    srv.mod = chat_mod_new(&srv, lws_get_vhost_by_name(ctx, "parley-chat"));
    srv.pres = chat_presence_new(&srv, chat_history_redis(srv.hist));
    chat_conn_sweep_start(&srv);

    while (!stop_requested) {
        service_once(loop);
        chat_history_flush(srv.hist);
        chat_mod_flush(srv.mod);
    }

    /* SIGTERM: refuse new upgrades, send every client a 1001 close, give them
     * CHAT_SHUTDOWN_GRACE_MS to be written, then tear the rest down */
    cm_info("shutting down: closing %zu connections", srv.nconns);
    srv.stopping = true;
    chat_conn_shutdown_all(&srv);
    int64_t deadline = cm_mono_ms() + cfg.shutdown_grace_ms;
    lws_sul_schedule(ctx, 0, &tick, on_tick, CHAT_SHUTDOWN_TICK_MS * LWS_US_PER_MS);
    while (srv.nconns > 0 && cm_mono_ms() < deadline) {
        service_once(loop);
        chat_history_flush(srv.hist); /* the leaves of the connections just closed */
    }
    /* the other replicas: this one is gone (they remove what is left of its presence at their
     * next heartbeat instead of after CHAT_PRESENCE_TTL_MS); let the last commands reach Redis */
    chat_presence_goodbye(srv.pres);
    int64_t bye = cm_mono_ms() + CHAT_GOODBYE_MS;
    while (chat_redis_pending(chat_history_redis(srv.hist)) > 0 && cm_mono_ms() < bye) {
        chat_history_flush(srv.hist);
        service_once(loop);
    }
    lws_sul_cancel(&tick);
    chat_conn_sweep_stop(&srv);
    if (srv.nconns)
        cm_warn("%zu connections did not close in time", srv.nconns);
    chat_history_free(srv.hist); /* fails presence's commands in flight: before it goes */
    srv.hist = NULL;
    chat_mod_free(srv.mod);
    srv.mod = NULL;
    chat_presence_free(srv.pres);
    srv.pres = NULL;
    chat_archive_free(archive); /* before the context: its threads wake it */
    the_ctx = NULL;
    chat_inbox_set_context(&srv.inbox, NULL);
    lws_context_destroy(ctx);
    ev_loop_destroy(loop);
    chat_inbox_free(&srv.inbox);
    chat_index_free(&srv.index);
    chat_rooms_free(srv.rooms);
    chat_rawguard_free();
    cm_resolve_stop(); /* after every thread that asks it */
    chat_config_free();
    cm_info("stopped");
    return 0;

fail: /* before the loop ran: nothing but what was set up so far */
    if (ctx)
        lws_context_destroy(ctx);
    if (loop)
        ev_loop_destroy(loop);
    chat_rooms_free(srv.rooms);
    chat_index_free(&srv.index);
    chat_inbox_free(&srv.inbox);
    chat_rawguard_free();
    chat_archive_free(archive);
    chat_config_free();
    return 1;
}
