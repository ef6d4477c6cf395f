/* Redis from the lws service thread, never blocking it: hiredis 0.14's async API (async.h)
 * driven by the lws event loop. Each hiredis socket is watched through a dup() of its fd
 * adopted as an lws raw file (lws_adopt_descriptor_vhost(LWS_ADOPT_RAW_FILE_DESC), lws
 * v4.1.6 minimal-examples/raw/minimal-raw-file): LWS_CALLBACK_RAW_RX_FILE calls
 * redisAsyncHandleRead, LWS_CALLBACK_RAW_WRITEABLE_FILE redisAsyncHandleWrite, and hiredis's
 * addWrite hook asks lws for a writeable callback (the hooks of hiredis adapters: adapters/libev.h
 * and the like). lws closes only its dup; hiredis owns and closes its own fd.
 *
 * Two connections: one for commands (with AUTH and SCRIPT LOAD of the caller's script after
 * every connect) and one in SUBSCRIBE mode. hiredis 0.14 has no async timeouts: every command
 * carries a deadline (CHAT_REDIS_TIMEOUT_MS), one lws timer checks the oldest, and a command
 * that is late drops the connection, which fails every pending command (callback with
 * reply NULL). Lost connections are reopened with backoff (100 ms doubling to 5 s).
 * Service thread only; nothing here is thread-safe. */
#ifndef CHAT_REDIS_H
#define CHAT_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include <libwebsockets.h>

struct chat_redis;

/* The lws protocol name the caller registers with chat_redis_lws_callback (per-session data
 * size 0) on the vhost given to chat_redis_new. */
#define CHAT_REDIS_PROTOCOL "parley-redis"

/* Reply of one command: reply is borrowed for the call (hiredis frees it afterwards); NULL
 * when the command failed without an answer (connection lost, timed out, shutting down).
 * An error reply (REDIS_REPLY_ERROR) is a reply. */
typedef void (*chat_redis_fn)(struct chat_redis *r, const redisReply *reply, void *ud);

struct chat_redis_hooks {
    void *ud;
    /* The command connection is ready (connected, authenticated, script loaded: sha is its
     * SHA1 hex) or is lost (ready false). */
    void (*on_ready)(void *ud, bool ready);
    /* The subscriber connection is (re)connected: subscribe again to everything wanted.
     * Subscriptions of a lost connection are gone. */
    void (*on_sub_connected)(void *ud);
    /* SUBSCRIBE of channel confirmed (kind 's'), a message on it ('m'), or its UNSUBSCRIBE
     * confirmed ('u'). channel and payload are borrowed for the call. */
    void (*on_sub)(void *ud, char kind, const char *channel, size_t chlen, const char *payload,
                   size_t len);
};

struct chat_redis_opts {
    const char *host;     /* borrowed; must outlive the client */
    int port;             /* 1..65535 */
    const char *password; /* NULL or "" = no AUTH; borrowed */
    int64_t timeout_ms;   /* of connecting; and how long commands may wait while Redis
                           * answers nothing at all (a long queue that Redis keeps
                           * answering is not timed out) */
    size_t max_pending;   /* commands in flight on the command connection, at most */
    const char *script;   /* Lua text loaded with SCRIPT LOAD after every connect; borrowed */
};

/* Starts connecting both connections (in the background: neither needs Redis up). Borrows
 * ctx, vh, opts' strings and hooks. Free with chat_redis_free. */
struct chat_redis *chat_redis_new(struct lws_context *ctx, struct lws_vhost *vh,
                                  const struct chat_redis_opts *opts,
                                  const struct chat_redis_hooks *hooks);
/* Fails every pending command (callbacks with NULL), closes both connections. NULL ok. */
void chat_redis_free(struct chat_redis *r);

/* The lws callback of protocol CHAT_REDIS_PROTOCOL. */
int chat_redis_lws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                            size_t len);

/* Writes what the commands of this service round queued, at once (call after every
 * lws_service round): one write per round instead of waiting for a writeable event. */
void chat_redis_flush(struct chat_redis *r);
/* The hooks' ud given to chat_redis_new. */
void *chat_redis_user(const struct chat_redis *r);
/* True when commands can be sent (connected, script loaded). */
bool chat_redis_ready(const struct chat_redis *r);
/* SHA1 of the loaded script (40 hex digits), "" when not ready. */
const char *chat_redis_script_sha(const struct chat_redis *r);
/* Commands in flight on the command connection. */
size_t chat_redis_pending(const struct chat_redis *r);

/* Sends one command (argv[i] of argvlen[i] bytes, binary safe). fn(ud) is called exactly
 * once later (never from inside this call) with the reply or NULL. Returns 0, or -1 when not
 * ready or max_pending commands are in flight: fn is then never called. */
int chat_redis_command(struct chat_redis *r, chat_redis_fn fn, void *ud, int argc,
                       const char **argv, const size_t *argvlen);

/* SUBSCRIBE / UNSUBSCRIBE channel on the subscriber connection. Return -1 when it is not
 * connected (chat_redis_hooks.on_sub_connected asks again later). */
int chat_redis_subscribe(struct chat_redis *r, const char *channel, size_t len);
int chat_redis_unsubscribe(struct chat_redis *r, const char *channel, size_t len);
bool chat_redis_sub_connected(const struct chat_redis *r);

/* Asks for the script to be loaded again (after a NOSCRIPT error). */
void chat_redis_reload_script(struct chat_redis *r);

/* Counters for /metrics. Latency buckets are upper bounds in ms (chat_redis_latency_le);
 * the last bucket is +Inf. */
#define CHAT_REDIS_LAT_BUCKETS 10
extern const double chat_redis_latency_le[CHAT_REDIS_LAT_BUCKETS - 1];
struct chat_redis_stats {
    uint64_t commands, errors, timeouts, failed, reconnects, sub_reconnects;
    uint64_t lat_bucket[CHAT_REDIS_LAT_BUCKETS]; /* cumulative: count with latency <= le */
    double lat_sum_ms;
};
void chat_redis_stats(const struct chat_redis *r, struct chat_redis_stats *out);

#endif
