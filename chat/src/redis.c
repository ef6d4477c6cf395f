/* hiredis 0.14 async on the lws event loop (see redis.h). hiredis's async.c semantics relied
 * on here (tag v0.14.1): redisAsyncFree runs every pending reply callback with a NULL reply,
 * then ev.cleanup, then onDisconnect (only if it had connected); called from inside a reply
 * callback it is deferred until that callback returns (REDIS_IN_CALLBACK); commands are
 * refused (REDIS_ERR) once the context is disconnecting or freeing; the connect callback runs
 * on the first read/write event after a non-blocking connect. */
#include "redis.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/async.h>
#include <hiredis/sds.h>
#include <libwebsockets.h>

#include "cm_alloc.h"
#include "cm_log.h"
#include "cm_resolve.h"
#include "cm_util.h"

#define TICK_MS 50         /* how often deadlines and reconnects are checked */
#define BACKOFF_MIN_MS 100 /* first reconnect delay, doubled per failure */
#define BACKOFF_MAX_MS 5000

const double chat_redis_latency_le[CHAT_REDIS_LAT_BUCKETS - 1] = {0.25, 0.5, 1,  2,  5,
                                                                  10,   25,  50, 100};

struct pend {
    struct pend *prev, *next;
    struct chat_redis *r;
    int64_t sent_ms;
    int64_t sent_us;
    chat_redis_fn fn;
    void *ud;
};

struct link {
    struct chat_redis *r;
    redisAsyncContext *ac;
    struct lws *wsi;
    const char *name; /* "command" or "subscriber", for the log */
    bool sub;
    bool connected;
    int64_t connect_deadline_ms; /* while connecting */
    int64_t retry_at_ms;         /* when not connected and ac is NULL: next attempt */
    int64_t backoff_ms;
    bool was_up; /* it had been connected: a new connect counts as a reconnect */
};

struct chat_redis {
    struct lws_context *ctx;
    struct lws_vhost *vh;
    struct chat_redis_opts o;
    struct chat_redis_hooks h;
    struct link cmd, sub;
    struct pend *head, *tail; /* commands in flight on cmd, oldest first */
    size_t npending;
    int64_t last_reply_ms; /* when cmd last answered anything (monotonic) */
    bool ready;
    bool stopping;
    bool reload_pending;
    char sha[41];
    lws_sorted_usec_list_t tick;
    struct chat_redis_stats st;
};

static void link_start(struct link *l);

/* ---- the lws side of a link ---------------------------------------------------------- */

static void ev_add_write(void *privdata)
{
    struct link *l = privdata;
    if (l->wsi)
        lws_callback_on_writable(l->wsi);
}

static void ev_noop(void *privdata)
{
    (void)privdata; /* reads: an adopted raw file is always polled for POLLIN */
}

/* hiredis frees the context: forget it, let lws close our dup of the fd, plan a reconnect. */
static void ev_cleanup(void *privdata)
{
    struct link *l = privdata;
    struct chat_redis *r = l->r;
    l->ac = NULL;
    if (l->wsi) {
        lws_set_opaque_user_data(l->wsi, NULL);
        lws_set_timeout(l->wsi, PENDING_TIMEOUT_USER_REASON_BASE, LWS_TO_KILL_ASYNC);
        l->wsi = NULL;
    }
    bool was_connected = l->connected;
    l->connected = false;
    if (!l->sub && r->ready) {
        r->ready = false;
        r->sha[0] = '\0';
        if (r->h.on_ready)
            r->h.on_ready(r->h.ud, false);
    }
    if (was_connected && !r->stopping)
        cm_warn("redis: %s connection to %s:%d lost", l->name, r->o.host, r->o.port);
    l->backoff_ms = l->backoff_ms ? l->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (l->backoff_ms > BACKOFF_MAX_MS)
        l->backoff_ms = BACKOFF_MAX_MS;
    l->retry_at_ms = cm_mono_ms() + (was_connected ? 0 : l->backoff_ms);
}

int chat_redis_lws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                            size_t len)
{
    (void)user;
    (void)in;
    (void)len;
    struct link *l = lws_get_opaque_user_data(wsi);
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
        if (l && l->ac)
            redisAsyncHandleRead(l->ac);
        return 0;
    case LWS_CALLBACK_RAW_WRITEABLE_FILE:
        if (l && l->ac)
            redisAsyncHandleWrite(l->ac);
        return 0;
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        /* lws gave up on our dup (hangup without data): hiredis must let go too */
        if (l) {
            lws_set_opaque_user_data(wsi, NULL);
            l->wsi = NULL;
            if (l->ac)
                redisAsyncFree(l->ac);
        }
        return 0;
    default:
        return 0;
    }
}

/* ---- commands ------------------------------------------------------------------------ */

static void pend_unlink(struct chat_redis *r, struct pend *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        r->head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        r->tail = p->prev;
    r->npending--;
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    struct pend *p = privdata;
    struct chat_redis *r = p->r;
    const redisReply *rep = reply;
    pend_unlink(r, p);
    if (rep) {
        r->last_reply_ms = cm_mono_ms();
        double ms = (double)(lws_now_usecs() - p->sent_us) / 1000.0;
        for (int i = 0; i < CHAT_REDIS_LAT_BUCKETS; i++)
            if (i == CHAT_REDIS_LAT_BUCKETS - 1 || ms <= chat_redis_latency_le[i])
                r->st.lat_bucket[i]++;
        r->st.lat_sum_ms += ms;
        if (rep->type == REDIS_REPLY_ERROR)
            r->st.errors++;
    } else {
        r->st.failed++;
    }
    chat_redis_fn fn = p->fn;
    void *ud = p->ud;
    free(p);
    fn(r, rep, ud);
}

static int send_cmd(struct chat_redis *r, chat_redis_fn fn, void *ud, int argc, const char **argv,
                    const size_t *argvlen)
{
    if (!r->cmd.ac || !r->cmd.connected || r->stopping)
        return -1;
    struct pend *p = cm_xcalloc(1, sizeof *p);
    p->r = r;
    p->fn = fn;
    p->ud = ud;
    p->sent_ms = cm_mono_ms();
    p->sent_us = lws_now_usecs();
    if (redisAsyncCommandArgv(r->cmd.ac, on_reply, p, argc, argv, argvlen) != REDIS_OK) {
        free(p);
        return -1;
    }
    p->prev = r->tail;
    if (r->tail)
        r->tail->next = p;
    else
        r->head = p;
    r->tail = p;
    r->npending++;
    r->st.commands++;
    return 0;
}

int chat_redis_command(struct chat_redis *r, chat_redis_fn fn, void *ud, int argc,
                       const char **argv, const size_t *argvlen)
{
    if (!r || !r->ready || r->npending >= r->o.max_pending)
        return -1;
    return send_cmd(r, fn, ud, argc, argv, argvlen);
}

static void drop(struct link *l, const char *why)
{
    if (!l->ac)
        return;
    cm_warn("redis: dropping the %s connection: %s", l->name, why);
    redisAsyncFree(l->ac); /* deferred by hiredis when inside one of its callbacks */
}

static void on_script_loaded(struct chat_redis *r, const redisReply *rep, void *ud)
{
    (void)ud;
    r->reload_pending = false;
    if (!rep)
        return;
    if (rep->type != REDIS_REPLY_STRING || rep->len != 40) {
        cm_error("redis: SCRIPT LOAD failed: %.*s",
                 rep->type == REDIS_REPLY_ERROR ? (int)rep->len : 0,
                 rep->type == REDIS_REPLY_ERROR ? rep->str : "");
        drop(&r->cmd, "script not loaded");
        return;
    }
    memcpy(r->sha, rep->str, 40);
    r->sha[40] = '\0';
    r->cmd.backoff_ms = 0;
    if (!r->ready) {
        r->ready = true;
        cm_info("redis: connected to %s:%d, publish script %s", r->o.host, r->o.port, r->sha);
        if (r->h.on_ready)
            r->h.on_ready(r->h.ud, true);
    }
}

static void load_script(struct chat_redis *r)
{
    const char *argv[3] = {"SCRIPT", "LOAD", r->o.script};
    size_t lens[3] = {6, 4, strlen(r->o.script)};
    if (send_cmd(r, on_script_loaded, NULL, 3, argv, lens) == 0)
        r->reload_pending = true;
}

void chat_redis_reload_script(struct chat_redis *r)
{
    if (r->reload_pending || !r->cmd.connected)
        return;
    load_script(r);
}

static void on_auth(struct chat_redis *r, const redisReply *rep, void *ud)
{
    (void)r;
    struct link *l = ud;
    if (rep && rep->type == REDIS_REPLY_ERROR) {
        /* never log the password; Redis's message only names the failure */
        cm_error("redis: AUTH refused on the %s connection: %.*s", l->name, (int)rep->len,
                 rep->str);
        drop(l, "AUTH refused");
    }
}

/* ---- subscriber ---------------------------------------------------------------------- */

static void on_sub_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct link *l = ac->data;
    struct chat_redis *r = l->r;
    const redisReply *rep = reply;
    (void)privdata;
    if (!rep || r->stopping)
        return;
    if (rep->type == REDIS_REPLY_ERROR) {
        cm_warn("redis: subscriber error: %.*s", (int)rep->len, rep->str);
        return;
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 3 ||
        rep->element[0]->type != REDIS_REPLY_STRING || rep->element[1]->type != REDIS_REPLY_STRING)
        return;
    const redisReply *k = rep->element[0], *ch = rep->element[1], *v = rep->element[2];
    char kind = 0;
    if (k->len == 7 && !memcmp(k->str, "message", 7) && v->type == REDIS_REPLY_STRING)
        kind = 'm';
    else if (k->len == 9 && !memcmp(k->str, "subscribe", 9))
        kind = 's';
    else if (k->len == 11 && !memcmp(k->str, "unsubscribe", 11))
        kind = 'u';
    if (kind && r->h.on_sub)
        r->h.on_sub(r->h.ud, kind, ch->str, ch->len, kind == 'm' ? v->str : NULL,
                    kind == 'm' ? v->len : 0);
}

static int sub_cmd(struct chat_redis *r, const char *verb, const char *channel, size_t len)
{
    struct link *l = &r->sub;
    if (!l->ac || !l->connected || r->stopping)
        return -1;
    const char *argv[2] = {verb, channel};
    size_t lens[2] = {strlen(verb), len};
    return redisAsyncCommandArgv(l->ac, on_sub_reply, NULL, 2, argv, lens) == REDIS_OK ? 0 : -1;
}

int chat_redis_subscribe(struct chat_redis *r, const char *channel, size_t len)
{
    return sub_cmd(r, "SUBSCRIBE", channel, len);
}

int chat_redis_unsubscribe(struct chat_redis *r, const char *channel, size_t len)
{
    return sub_cmd(r, "UNSUBSCRIBE", channel, len);
}

bool chat_redis_sub_connected(const struct chat_redis *r)
{
    return r && r->sub.connected;
}

/* AUTH on the subscriber goes through hiredis directly (no deadline: it is answered before
 * any SUBSCRIBE, and a silent server shows on the command connection). */
static void on_sub_auth(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)privdata;
    struct link *l = ac->data;
    const redisReply *rep = reply;
    if (rep && rep->type == REDIS_REPLY_ERROR) {
        cm_error("redis: AUTH refused on the subscriber connection: %.*s", (int)rep->len, rep->str);
        drop(l, "AUTH refused");
    }
}

/* ---- connecting ---------------------------------------------------------------------- */

static void on_connect(const redisAsyncContext *cac, int status)
{
    struct link *l = cac->data;
    struct chat_redis *r = l->r;
    if (status != REDIS_OK) {
        cm_debug("redis: %s connection to %s:%d failed: %s", l->name, r->o.host, r->o.port,
                 cac->errstr ? cac->errstr : "?");
        return; /* hiredis frees the context next: ev_cleanup plans the retry */
    }
    l->connected = true;
    if (l->was_up) {
        if (l->sub)
            r->st.sub_reconnects++;
        else
            r->st.reconnects++;
    }
    l->was_up = true;
    const char *pw = r->o.password;
    if (l->sub) {
        l->backoff_ms = 0;
        if (pw && *pw) {
            const char *argv[2] = {"AUTH", pw};
            size_t lens[2] = {4, strlen(pw)};
            redisAsyncCommandArgv(l->ac, on_sub_auth, NULL, 2, argv, lens);
        }
        cm_info("redis: subscriber connected to %s:%d", r->o.host, r->o.port);
        if (r->h.on_sub_connected)
            r->h.on_sub_connected(r->h.ud);
        return;
    }
    if (pw && *pw) {
        const char *argv[2] = {"AUTH", pw};
        size_t lens[2] = {4, strlen(pw)};
        (void)send_cmd(r, on_auth, l, 2, argv, lens);
    }
    load_script(r);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)ac;
    (void)status; /* ev_cleanup already did the bookkeeping */
}

static void link_start(struct link *l)
{
    struct chat_redis *r = l->r;
    /* redisAsyncConnect resolves a name with a blocking getaddrinfo: on this event loop only
     * an address from the resolver's cache is used (cm_resolve.h). */
    char addr[CM_RESOLVE_ADDR_MAX];
    redisAsyncContext *ac = NULL;
    if (!cm_resolve_numeric(r->o.host, addr, sizeof addr)) {
        cm_debug("redis: %s: address not known yet", r->o.host);
        goto retry;
    }
    ac = redisAsyncConnect(addr, r->o.port);
    if (!ac)
        cm_oom(sizeof(redisAsyncContext));
    if (ac->err) {
        cm_debug("redis: cannot connect the %s connection: %s", l->name, ac->errstr);
        redisAsyncFree(ac);
        cm_resolve_refresh(r->o.host);
        goto retry;
    }
    int fd = dup(ac->c.fd);
    lws_sock_file_fd_type u;
    u.filefd = fd;
    struct lws *wsi = fd < 0 ? NULL
                             : lws_adopt_descriptor_vhost(r->vh, LWS_ADOPT_RAW_FILE_DESC, u,
                                                          CHAT_REDIS_PROTOCOL, NULL);
    if (!wsi) {
        if (fd >= 0)
            close(fd);
        cm_error("redis: cannot watch the %s connection's socket", l->name);
        redisAsyncFree(ac);
        l->retry_at_ms = cm_mono_ms() + BACKOFF_MAX_MS;
        return;
    }
    lws_set_opaque_user_data(wsi, l);
    l->wsi = wsi;
    l->ac = ac;
    l->connected = false;
    l->connect_deadline_ms = cm_mono_ms() + r->o.timeout_ms;
    ac->data = l;
    ac->ev.data = l;
    ac->ev.addRead = ev_noop;
    ac->ev.delRead = ev_noop;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_noop;
    ac->ev.cleanup = ev_cleanup;
    redisAsyncSetConnectCallback(ac, on_connect); /* asks for a writeable event */
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    return;
retry:
    l->backoff_ms = l->backoff_ms ? l->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (l->backoff_ms > BACKOFF_MAX_MS)
        l->backoff_ms = BACKOFF_MAX_MS;
    l->retry_at_ms = cm_mono_ms() + l->backoff_ms;
}

/* How long the oldest command has waited without Redis answering anything: since it was sent,
 * or since the last reply, whichever is later. A queue of many commands (a crowd joining, each
 * reading its history) behind a Redis that keeps answering is busy, not dead: only a Redis
 * that answers nothing for the timeout is (a stopped or wedged server, a lost link). */
static int64_t silent_ms(const struct chat_redis *r, int64_t now)
{
    int64_t since = r->head->sent_ms > r->last_reply_ms ? r->head->sent_ms : r->last_reply_ms;
    return now - since;
}

static void tick(lws_sorted_usec_list_t *sul)
{
    struct chat_redis *r = lws_container_of(sul, struct chat_redis, tick);
    int64_t now = cm_mono_ms();
    if (r->head && silent_ms(r, now) > r->o.timeout_ms && r->cmd.ac) {
        /* the answer may be waiting in the socket while this round ran timers first (a busy
         * loop): read what is there before calling it a timeout */
        redisAsyncHandleRead(r->cmd.ac);
        if (r->head && silent_ms(r, cm_mono_ms()) > r->o.timeout_ms) {
            r->st.timeouts++;
            drop(&r->cmd, "a command timed out");
        }
    }
    struct link *links[2] = {&r->cmd, &r->sub};
    for (int i = 0; i < 2; i++) {
        struct link *l = links[i];
        if (l->ac && !l->connected && now > l->connect_deadline_ms)
            drop(l, "connect timed out");
        else if (!l->ac && now >= l->retry_at_ms)
            link_start(l);
    }
    lws_sul_schedule(r->ctx, 0, &r->tick, tick, TICK_MS * LWS_US_PER_MS);
}

struct chat_redis *chat_redis_new(struct lws_context *ctx, struct lws_vhost *vh,
                                  const struct chat_redis_opts *opts,
                                  const struct chat_redis_hooks *hooks)
{
    struct chat_redis *r = cm_xcalloc(1, sizeof *r);
    r->ctx = ctx;
    r->vh = vh;
    r->o = *opts;
    r->h = *hooks;
    r->cmd.r = r->sub.r = r;
    r->cmd.name = "command";
    r->sub.name = "subscriber";
    r->sub.sub = true;
    link_start(&r->cmd);
    link_start(&r->sub);
    lws_sul_schedule(ctx, 0, &r->tick, tick, TICK_MS * LWS_US_PER_MS);
    return r;
}

void chat_redis_free(struct chat_redis *r)
{
    if (!r)
        return;
    r->stopping = true;
    lws_sul_cancel(&r->tick);
    if (r->cmd.ac)
        redisAsyncFree(r->cmd.ac);
    if (r->sub.ac)
        redisAsyncFree(r->sub.ac);
    free(r);
}

void chat_redis_flush(struct chat_redis *r)
{
    if (!r || r->stopping)
        return;
    struct link *links[2] = {&r->cmd, &r->sub};
    for (int i = 0; i < 2; i++) {
        struct link *l = links[i];
        if (l->ac && l->connected && sdslen(l->ac->c.obuf))
            redisAsyncHandleWrite(l->ac); /* may free the context (ev_cleanup) on an error */
    }
}

void *chat_redis_user(const struct chat_redis *r)
{
    return r->h.ud;
}

bool chat_redis_ready(const struct chat_redis *r)
{
    return r && r->ready;
}

const char *chat_redis_script_sha(const struct chat_redis *r)
{
    return r->sha;
}

size_t chat_redis_pending(const struct chat_redis *r)
{
    return r ? r->npending : 0;
}

void chat_redis_stats(const struct chat_redis *r, struct chat_redis_stats *out)
{
    *out = r->st;
}
