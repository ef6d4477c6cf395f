/* parley-loadgen: WebSocket fan-out load generator (libwebsockets client).
 *
 * Holds N connections over M rooms, split over P worker processes (fork), worker w binding
 * its sockets to source address 127.0.0.(B+w) so that no process nears the 20000-file limit
 * and no address runs out of ephemeral ports. Connection g (global index) joins room
 * "bench-(g % M)"; connections 0..S-1 are the senders.
 *
 * Every message is {"type":"message","text":"<seq> <sender> <send-ns> <padding>"}: seq
 * counts from 1 per sender, send-ns is CLOCK_MONOTONIC at lws_write (one machine, one
 * clock). Parley echoes the text inside its own JSON; the peers re-broadcast the frame as
 * received; one parser (find "text":") serves both. Each receiver records the latency in a
 * histogram and checks per sender that seq only grows (reorders) by exactly one (gaps).
 *
 * Phases are driven by the parent through a MAP_SHARED block: connect (handshakes/s), idle
 * (the caller samples the server's RSS), send for --duration at --rate messages/s in total
 * (or closed loop: each sender keeps at most --window messages in flight), drain until
 * every expected delivery arrived or --drain seconds passed. Workers report one JSON line
 * each on a pipe; the parent prints one aggregated JSON line on stdout. With --progress the
 * parent also prints live counts on stderr ("loadgen: connecting|ready|holding|sending ..."),
 * which bench/scale.mjs uses to sample every daemon's memory while all connections are held.
 *
 * --ports A,B,...: a cluster of servers; connection g talks to port (g / M) % count, so that
 * every room has members on every server. --socketio: the server is Socket.IO (Engine.IO 4,
 * Socket.IO protocol 5, WebSocket transport): the client sends "40" (connect to "/") and
 * counts as connected at the server's "40{...}", answers each ping "2" with "3", and sends
 * 42["m",{"text":"..."}]; the same parser finds "text". */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include "hist.h"

#include <cm_log.h>
#include <cm_token.h>

#include <ev.h>
#include <libwebsockets.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "cm_alloc.h"

#define LG_MAX_PROCS 64
#define LG_MAX_CONNS 200000
#define LG_MAX_TEXT 4000        /* the chat protocol's longest text */
#define LG_TICK_US 1000         /* pacing timer while connecting or sending */
#define LG_IDLE_TICK_US 20000   /* while idle or draining: only phase checks */
#define LG_FRAME_MAX (1u << 20) /* largest server frame we reassemble (welcome lists) */
#define LG_TOKEN_TTL 3600
#define LG_WORKER_FDS 15000 /* stay well under the 20000 open-files hard limit */
#define LG_LINE_MAX (64u * 1024u)
#define LG_ALSO_MAX 4  /* --also-pid processes */
#define LG_PORTS_MAX 8 /* --ports */

enum lg_phase { PH_CONNECT = 0, PH_SEND = 1, PH_STOP = 2 };

struct lg_opts {
    const char *host;
    int port;
    int ports[LG_PORTS_MAX]; /* --ports: a cluster, connection g on ports[(g / rooms) % n] */
    unsigned n_ports;
    bool socketio;
    const char *path;
    bool token; /* parley mode: Authorization: Bearer <jwt>; peer mode: ?room=NAME */
    unsigned conns, rooms, senders, procs;
    double rate; /* messages per second over all senders; 0 = closed loop */
    unsigned window;
    double duration, drain, idle, connect_timeout;
    unsigned size; /* text length in bytes */
    unsigned concurrency;
    const char *src_base; /* first source address, e.g. 127.0.0.2 */
    long server_pid;
    long also_pid[LG_ALSO_MAX]; /* processes whose CPU counts with the server's (Redis, ...) */
    unsigned n_also;
    const char *label;
    double progress; /* --progress SEC: a progress line on stderr this often (0: none) */
};

struct lg_shared {
    _Atomic int phase;
    _Atomic int ready;
    _Atomic int done_sending;
    _Atomic int64_t send_start_ns;
    _Atomic uint32_t n_connected; /* live totals over all workers, for progress lines */
    _Atomic uint32_t n_failed;
    _Atomic uint32_t n_closed_early;
    _Atomic uint64_t room_sent[]; /* messages sent into each room */
};

struct lg_conn {
    struct lws *wsi;
    uint32_t gid;
    uint32_t room;
    int32_t sender; /* global sender id or -1 */
    bool open, failed, closed;
    uint64_t seq;    /* last seq sent */
    uint64_t echoed; /* own messages received back */
    uint32_t *last;  /* per sender in this room: last seq seen */
    char *frag;      /* reassembly of fragmented frames */
    size_t fraglen;
    char *token;
    const char *ctl; /* socketio: a control packet to write next ("40", "3") */
};

struct lg_worker {
    const struct lg_opts *o;
    struct lg_shared *sh;
    struct lws_context *ctx;
    lws_sorted_usec_list_t sul;
    char src[64];
    int id;
    uint32_t lo, hi; /* global connection range */
    struct lg_conn *c;
    uint32_t next_connect, inflight, connected, failed, closed_early;
    int64_t connect_start, connect_end;
    bool reported_ready, send_done, finished;
    uint64_t sent, delivered, reorders, gaps, bad_frames;
    struct hist *h;
    uint64_t *my_members; /* per room: how many of my receivers are in it */
    char *txbuf;
};

static struct lg_worker *W; /* one worker per process */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static uint32_t senders_in_room(const struct lg_opts *o, uint32_t room)
{
    if (room >= o->senders)
        return 0;
    return (o->senders - room + o->rooms - 1u) / o->rooms;
}

static void room_name(char *out, size_t cap, uint32_t room)
{
    snprintf(out, cap, "bench-%" PRIu32, room);
}

/* ---- receiving ------------------------------------------------------------------------ */

static const char *find_bytes(const char *h, size_t hlen, const char *n, size_t nlen)
{
    for (size_t i = 0; i + nlen <= hlen; i++)
        if (h[i] == n[0] && !memcmp(h + i, n, nlen))
            return h + i;
    return NULL;
}

/* Finds "text":"<seq> <sender> <ns>" in a frame. Returns false for frames without it
 * (welcome, join, leave, typing) and for Parley's history frame, whose messages (from
 * before this connection joined, earlier runs included) are not live deliveries. */
static bool parse_text(const char *p, size_t len, uint64_t *seq, uint64_t *sender, int64_t *ts)
{
    static const char key[] = "\"text\"";
    static const char hist[] = "{\"type\":\"history\"";
    const char *end = p + len;
    if (len >= sizeof hist - 1u && !memcmp(p, hist, sizeof hist - 1u))
        return false;
    const char *k = find_bytes(p, len, key, sizeof key - 1u);
    if (!k)
        return false;
    k += sizeof key - 1u;
    while (k < end && (*k == ' ' || *k == ':'))
        k++;
    if (k >= end || *k != '"')
        return false;
    k++;
    char num[80];
    size_t n = 0;
    while (k < end && *k != '"' && n < sizeof num - 1u) {
        num[n++] = *k++;
    }
    num[n] = '\0';
    char *e;
    errno = 0;
    *seq = strtoull(num, &e, 10);
    if (*e != ' ')
        return false;
    *sender = strtoull(e + 1, &e, 10);
    if (*e != ' ')
        return false;
    *ts = strtoll(e + 1, &e, 10);
    return errno == 0 && (*e == ' ' || *e == '\0');
}

static void on_frame(struct lg_worker *w, struct lg_conn *c, const char *p, size_t len)
{
    uint64_t seq, sender;
    int64_t ts;
    if (w->o->socketio && len >= 1u && p[0] != '4') {
        if (len == 1u && p[0] == '2') { /* Engine.IO ping: pong */
            c->ctl = "3";
            lws_callback_on_writable(c->wsi);
        }
        return; /* "0{...}" open, "6" noop */
    }
    if (w->o->socketio && !c->open && len >= 2u && p[0] == '4' && p[1] == '0') {
        c->open = true; /* "40{"sid":...}": connected to the namespace */
        w->connected++;
        atomic_fetch_add(&w->sh->n_connected, 1);
        w->inflight--;
        return;
    }
    if (w->o->socketio && len >= 2u && p[0] == '4' && p[1] == '4') {
        w->bad_frames++; /* CONNECT_ERROR */
        return;
    }
    if (!parse_text(p, len, &seq, &sender, &ts)) {
        if (find_bytes(p, len, "\"error\"", 7) && ++w->bad_frames <= 3)
            fprintf(stderr, "loadgen: connection %u got %.*s\n", c->gid,
                    (int)(len < 300u ? len : 300u), p);
        return;
    }
    int64_t lat = now_ns() - ts;
    hist_record(w->h, lat > 0 ? (uint64_t)lat : 0);
    w->delivered++;
    if (sender >= w->o->senders || sender % w->o->rooms != c->room) {
        w->bad_frames++;
        return;
    }
    uint32_t *last = &c->last[sender / w->o->rooms];
    if (seq <= *last) {
        w->reorders++;
    } else {
        if (seq != *last + 1u)
            w->gaps += seq - *last - 1u;
        *last = (uint32_t)seq;
    }
    if (c->sender >= 0 && (uint64_t)c->sender == sender) {
        c->echoed++;
        if (w->o->rate <= 0 && !w->send_done)
            lws_callback_on_writable(c->wsi);
    }
}

/* ---- sending -------------------------------------------------------------------------- */

static bool sender_behind(struct lg_worker *w, struct lg_conn *c, int64_t now)
{
    const struct lg_opts *o = w->o;
    /* Only in the send phase: lws also calls WRITEABLE after it answered a server's ping
     * (rops_handle_POLLOUT_ws leaves POLLOUT on), and a connect phase longer than the
     * server's ping interval (30 s) would otherwise start the senders early, paced from a
     * send_start_ns of 0, i.e. flooding. */
    if (w->send_done || c->sender < 0 || !c->open || atomic_load(&w->sh->phase) != PH_SEND)
        return false;
    if (o->rate <= 0)
        return c->seq - c->echoed < o->window;
    /* Sender k of S starts k/S of an interval late, so that the senders are spread evenly
     * over time instead of all firing on the same tick (synchronised bursts would measure
     * the load generator's pacing, not the server). */
    double per = o->rate / (double)o->senders;
    double el = (double)(now - atomic_load(&w->sh->send_start_ns)) / 1e9;
    return (double)c->seq < el * per - (double)c->sender / (double)o->senders;
}

static void send_one(struct lg_worker *w, struct lg_conn *c)
{
    const struct lg_opts *o = w->o;
    char *t = w->txbuf + LWS_PRE;
    size_t cap = 64u + o->size;
    c->seq++;
    static const char plain[] = "{\"type\":\"message\",\"text\":\"";
    static const char sio[] = "42[\"m\",{\"text\":\"";
    const char *pre = o->socketio ? sio : plain;
    size_t prelen = o->socketio ? sizeof sio - 1u : sizeof plain - 1u;
    int n = snprintf(t, cap, "%s%" PRIu64 " %" PRId32 " %" PRId64 " ", pre, c->seq, c->sender,
                     now_ns());
    size_t len = (size_t)n;
    /* pad the text (from "<seq>" on) to o->size bytes */
    size_t textlen = len - prelen;
    while (textlen < o->size && len < cap - 3u) {
        t[len++] = 'x';
        textlen++;
    }
    memcpy(t + len, "\"}", 2);
    len += 2;
    if (o->socketio)
        t[len++] = ']';
    if (lws_write(c->wsi, (unsigned char *)t, len, LWS_WRITE_TEXT) < (int)len) {
        c->seq--;
        return;
    }
    w->sent++;
    atomic_fetch_add(&w->sh->room_sent[c->room], 1);
}

/* ---- connecting ----------------------------------------------------------------------- */

static void start_connect(struct lg_worker *w, struct lg_conn *c)
{
    const struct lg_opts *o = w->o;
    char path[512], rn[40];
    room_name(rn, sizeof rn, c->room);
    if (o->token)
        snprintf(path, sizeof path, "%s", o->path);
    else
        snprintf(path, sizeof path, "%s%sroom=%s", o->path, strchr(o->path, '?') ? "&" : "?", rn);
    struct lws_client_connect_info i;
    memset(&i, 0, sizeof i);
    i.context = w->ctx;
    i.address = o->host;
    i.port = o->n_ports ? o->ports[(c->gid / o->rooms) % o->n_ports] : o->port;
    i.path = path;
    i.host = o->host;
    i.origin = o->host;
    i.protocol = NULL;
    i.local_protocol_name = "lg";
    i.userdata = c;
    i.pwsi = &c->wsi;
    i.iface = w->src;
    w->inflight++;
    if (!lws_client_connect_via_info(&i) && !c->failed) {
        c->failed = true;
        w->failed++;
        atomic_fetch_add(&w->sh->n_failed, 1);
        w->inflight--;
    }
}

static uint64_t worker_expected(struct lg_worker *w)
{
    uint64_t e = 0;
    for (uint32_t r = 0; r < w->o->rooms; r++)
        if (w->my_members[r])
            e += w->my_members[r] * atomic_load(&w->sh->room_sent[r]);
    return e;
}

static void worker_report(struct lg_worker *w)
{
    printf("{\"worker\":%d,\"conns\":%u,\"connected\":%u,\"failed\":%u,\"closed_early\":%u,"
           "\"connect_start_ns\":%" PRId64 ",\"connect_end_ns\":%" PRId64 ",\"sent\":%" PRIu64
           ",\"expected\":%" PRIu64 ",\"delivered\":%" PRIu64 ",\"reorders\":%" PRIu64
           ",\"gaps\":%" PRIu64 ",\"bad_frames\":%" PRIu64 ",\"max_ns\":%" PRIu64 ",\"hist\":",
           w->id, w->hi - w->lo, w->connected, w->failed, w->closed_early, w->connect_start,
           w->connect_end, w->sent, worker_expected(w), w->delivered, w->reorders, w->gaps,
           w->bad_frames, w->h->max);
    hist_write_json(w->h, stdout);
    printf("}\n");
    fflush(stdout);
}

/* Runs on every tick: starts connections, paces senders, moves through the phases. */
static void tick(lws_sorted_usec_list_t *sul)
{
    struct lg_worker *w = lws_container_of(sul, struct lg_worker, sul);
    const struct lg_opts *o = w->o;
    int64_t now = now_ns();
    int phase = atomic_load(&w->sh->phase);

    while (w->next_connect < w->hi - w->lo && w->inflight < o->concurrency)
        start_connect(w, &w->c[w->next_connect++]);

    if (!w->reported_ready && w->connected + w->failed == w->hi - w->lo) {
        w->reported_ready = true;
        w->connect_end = now;
        atomic_fetch_add(&w->sh->ready, 1);
    }
    if (phase == PH_SEND && !w->send_done) {
        int64_t start = atomic_load(&w->sh->send_start_ns);
        if (now - start >= (int64_t)(o->duration * 1e9)) {
            w->send_done = true;
            atomic_fetch_add(&w->sh->done_sending, 1);
        } else {
            for (uint32_t i = 0; i < w->hi - w->lo; i++)
                if (sender_behind(w, &w->c[i], now))
                    lws_callback_on_writable(w->c[i].wsi);
        }
    }
    if (w->send_done && !w->finished && atomic_load(&w->sh->done_sending) == (int)o->procs) {
        static int64_t drain_start;
        if (!drain_start)
            drain_start = now;
        if (w->delivered >= worker_expected(w) || now - drain_start > (int64_t)(o->drain * 1e9)) {
            w->finished = true;
            worker_report(w);
        }
    }
    if (phase == PH_STOP) {
        lws_cancel_service(w->ctx);
        return;
    }
    /* Polling 15000 sockets every millisecond costs real CPU on a shared 2-core machine: tick
     * fast only while there is pacing to do. */
    bool busy = w->next_connect < w->hi - w->lo || !w->reported_ready ||
                (phase == PH_SEND && !w->send_done);
    lws_sul_schedule(w->ctx, 0, &w->sul, tick, busy ? LG_TICK_US : LG_IDLE_TICK_US);
}

static int callback_lg(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len)
{
    struct lg_worker *w = W;
    struct lg_conn *c = user;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
        if (c && c->token) {
            unsigned char **p = in, *end = *p + len;
            char v[CM_TOKEN_MAX_LEN + 16];
            int n = snprintf(v, sizeof v, "Bearer %s", c->token);
            if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, (unsigned char *)v,
                                             n, p, end))
                return -1;
        }
        break;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (w->o->socketio) { /* connected once the server answers the namespace connect */
            c->ctl = "40";
            lws_callback_on_writable(wsi);
            break;
        }
        c->open = true;
        w->connected++;
        atomic_fetch_add(&w->sh->n_connected, 1);
        w->inflight--;
        break;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (c && !c->failed && !c->open) {
            c->failed = true;
            w->failed++;
            atomic_fetch_add(&w->sh->n_failed, 1);
            w->inflight--;
            if (w->failed <= 3)
                fprintf(stderr, "loadgen: connection %u failed: %s\n", c->gid,
                        in ? (const char *)in : "?");
        }
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (lws_is_first_fragment(wsi) && lws_is_final_fragment(wsi) && !c->fraglen) {
            on_frame(w, c, in, len);
            break;
        }
        if (c->fraglen + len > LG_FRAME_MAX) {
            w->bad_frames++;
            return -1;
        }
        c->frag = cm_xrealloc(c->frag, c->fraglen + len + 1u);
        memcpy(c->frag + c->fraglen, in, len);
        c->fraglen += len;
        if (lws_is_final_fragment(wsi)) {
            on_frame(w, c, c->frag, c->fraglen);
            c->fraglen = 0;
        }
        break;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (c->ctl) {
            size_t n = strlen(c->ctl);
            memcpy(w->txbuf + LWS_PRE, c->ctl, n);
            c->ctl = NULL;
            if (lws_write(wsi, (unsigned char *)w->txbuf + LWS_PRE, n, LWS_WRITE_TEXT) < (int)n)
                return -1;
            if (sender_behind(w, c, now_ns()))
                lws_callback_on_writable(wsi);
            break;
        }
        if (sender_behind(w, c, now_ns())) {
            send_one(w, c);
            if (sender_behind(w, c, now_ns()))
                lws_callback_on_writable(wsi);
        }
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (c && c->open && !c->closed) {
            c->closed = true;
            c->open = false;
            if (atomic_load(&w->sh->phase) != PH_STOP) {
                w->closed_early++;
                atomic_fetch_add(&w->sh->n_closed_early, 1);
                if (w->closed_early <= 3)
                    fprintf(stderr, "loadgen: server closed connection %u\n", c->gid);
            }
        }
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols lg_protocols[] = {
    {"lg", callback_lg, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static int worker_main(const struct lg_opts *o, struct lg_shared *sh, int id, uint32_t lo,
                       uint32_t hi)
{
    struct lg_worker w;
    memset(&w, 0, sizeof w);
    W = &w;
    w.o = o;
    w.sh = sh;
    w.id = id;
    w.lo = lo;
    w.hi = hi;
    unsigned a, b, c3, d;
    if (sscanf(o->src_base, "%u.%u.%u.%u", &a, &b, &c3, &d) != 4 || d + (unsigned)id > 254u) {
        fprintf(stderr, "loadgen: bad --src %s\n", o->src_base);
        return 1;
    }
    snprintf(w.src, sizeof w.src, "%u.%u.%u.%u", a, b, c3, d + (unsigned)id);
    w.h = cm_xcalloc(1, sizeof *w.h);
    w.my_members = cm_xcalloc(o->rooms, sizeof *w.my_members);
    w.txbuf = cm_xmalloc(LWS_PRE + 64u + o->size + 8u);
    w.c = cm_xcalloc(hi - lo, sizeof *w.c);

    const char *secret = getenv("JWT_SECRET");
    for (uint32_t i = 0; i < hi - lo; i++) {
        struct lg_conn *c = &w.c[i];
        c->gid = lo + i;
        c->room = c->gid % o->rooms;
        c->sender = c->gid < o->senders ? (int32_t)c->gid : -1;
        c->last = cm_xcalloc(senders_in_room(o, c->room) + 1u, sizeof *c->last);
        w.my_members[c->room]++;
        if (o->token) {
            char sub[64], uid[32], name[32], rn[40];
            snprintf(sub, sizeof sub, "bench-%" PRIu32 "@bench.invalid", c->gid);
            snprintf(uid, sizeof uid, "bench-%" PRIu32, c->gid);
            snprintf(name, sizeof name, "Bench %" PRIu32, c->gid);
            room_name(rn, sizeof rn, c->room);
            struct cm_token_claims cl;
            if (cm_token_claims_init(&cl, sub, uid, name, rn, (int64_t)c->room + 1,
                                     (int64_t)time(NULL), LG_TOKEN_TTL) ||
                cm_token_sign(&cl, (const unsigned char *)secret, strlen(secret), &c->token) !=
                    CM_TOKEN_OK) {
                fprintf(stderr, "loadgen: cannot sign a token\n");
                return 1;
            }
        }
    }

    /* libev on epoll, as parley-chat (chat/src/main.c): with lws's poll() loop a worker of
     * 12,500 connections spent its time scanning them, and the load generator, not the
     * server, set the pace of a 50,000-connection run */
    struct ev_loop *loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
    if (!loop) {
        fprintf(stderr, "loadgen: cannot create the event loop (libev, epoll)\n");
        return 1;
    }
    void *foreign_loops[1] = {loop};
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.foreign_loops = foreign_loops;
    info.options = LWS_SERVER_OPTION_LIBEV;
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = lg_protocols;
    info.count_threads = 1;
    /* no fd_limit_per_thread: below RLIMIT_NOFILE it makes lws 4.1.6 find every descriptor
     * by a linear search (lib/plat/unix/unix-fds.c wsi_from_fd) */
    info.timeout_secs = (unsigned)o->connect_timeout;
    info.gid = -1;
    info.uid = -1;
    w.ctx = lws_create_context(&info);
    if (!w.ctx) {
        fprintf(stderr, "loadgen: lws_create_context failed\n");
        ev_loop_destroy(loop);
        return 1;
    }
    w.connect_start = now_ns();
    lws_sul_schedule(w.ctx, 0, &w.sul, tick, 1);
    while (atomic_load(&sh->phase) != PH_STOP)
        (void)ev_run(loop, EVRUN_ONCE);
    lws_context_destroy(w.ctx);
    ev_loop_destroy(loop);
    for (uint32_t i = 0; i < hi - lo; i++) {
        free(w.c[i].last);
        free(w.c[i].frag);
        free(w.c[i].token);
    }
    free(w.c);
    free(w.txbuf);
    free(w.my_members);
    free(w.h);
    return w.finished ? 0 : 1;
}

/* ---- parent --------------------------------------------------------------------------- */

static long read_proc_kb(long pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long v = -1;
    size_t fl = strlen(field);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, field, fl) && line[fl] == ':')
            v = strtol(line + fl + 1, NULL, 10);
    fclose(f);
    return v;
}

/* utime+stime of pid in seconds, -1 if unreadable. */
static double read_proc_cpu(long pid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1u, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    unsigned long ut = 0, st = 0;
    /* after ")": state(3) ... utime is field 14, stime 15 */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* read_proc_cpu() of each --also-pid process into out[0..n_also-1]. */
static void also_cpu(const struct lg_opts *o, double out[LG_ALSO_MAX])
{
    for (unsigned i = 0; i < o->n_also; i++)
        out[i] = read_proc_cpu(o->also_pid[i]);
}

static long long json_int(const char *line, const char *key)
{
    char k[64];
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *p = strstr(line, k);
    return p ? strtoll(p + strlen(k), NULL, 10) : 0;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) && errno == EINTR) {
    }
}

/* One line on stderr: "loadgen: <what> <connected> connected, <failed> failed, <closed>
 * closed early, <s> s" (seconds since the workers were forked). */
static void progress_line(const struct lg_opts *o, struct lg_shared *sh, const char *what,
                          int64_t t0)
{
    fprintf(stderr, "loadgen: %s %u connected, %u failed, %u closed early of %u, %.1f s\n", what,
            atomic_load(&sh->n_connected), atomic_load(&sh->n_failed),
            atomic_load(&sh->n_closed_early), o->conns, (double)(now_ns() - t0) / 1e9);
    fflush(stderr);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: parley-loadgen [options]\n"
            "  --host ADDR (127.0.0.1) --port N --path P (/ws)\n"
            "  --token | --no-token   parley: Bearer JWT from JWT_SECRET; peers: ?room=NAME\n"
            "  --conns N (100) --rooms M (10) --senders S (10) --procs P (auto)\n"
            "  --rate R   messages/s over all senders; 0 = closed loop with --window W (4)\n"
            "  --duration SEC (5) --drain SEC (10) --idle SEC (0) --size BYTES (64)\n"
            "  --concurrency N (200 handshakes in flight per process)\n"
            "  --src 127.0.0.2  first source address (process w uses +w)\n"
            "  --ports A,B,...    a cluster: connection g on port (g / rooms) mod count (up to 8)\n"
            "  --socketio         the servers speak Socket.IO 5 over Engine.IO 4 (WebSocket)\n"
            "  --server-pid PID   sample VmRSS and CPU time of the server\n"
            "  --also-pid PID     count this process's CPU time too (up to 4 times)\n"
            "  --label TEXT       copied into the JSON result\n"
            "  --connect-timeout SEC (60)  per handshake; the whole connect phase may take +30 s\n"
            "  --progress SEC     print live counts on stderr this often, and a line when every\n"
            "                     connection is up (\"loadgen: ready\") and when sending starts\n");
}

static int parse_opts(int argc, char **argv, struct lg_opts *o)
{
    static const struct option lo[] = {
        {"host", 1, 0, 'h'},     {"port", 1, 0, 'p'},
        {"path", 1, 0, 'P'},     {"token", 0, 0, 't'},
        {"no-token", 0, 0, 'T'}, {"conns", 1, 0, 'n'},
        {"rooms", 1, 0, 'm'},    {"senders", 1, 0, 's'},
        {"procs", 1, 0, 'j'},    {"rate", 1, 0, 'r'},
        {"window", 1, 0, 'w'},   {"duration", 1, 0, 'd'},
        {"drain", 1, 0, 'D'},    {"idle", 1, 0, 'i'},
        {"size", 1, 0, 'z'},     {"concurrency", 1, 0, 'c'},
        {"src", 1, 0, 'a'},      {"server-pid", 1, 0, 'k'},
        {"also-pid", 1, 0, 'A'}, {"ports", 1, 0, 'O'},
        {"socketio", 0, 0, 'S'}, {"label", 1, 0, 'l'},
        {"help", 0, 0, '?'},     {"connect-timeout", 1, 0, 'C'},
        {"progress", 1, 0, 'g'}, {0, 0, 0, 0},
    };
    *o = (struct lg_opts){.host = "127.0.0.1",
                          .port = 8082,
                          .path = "/ws",
                          .token = true,
                          .conns = 100,
                          .rooms = 10,
                          .senders = 10,
                          .procs = 0,
                          .rate = 0,
                          .window = 4,
                          .duration = 5,
                          .drain = 10,
                          .idle = 0,
                          .connect_timeout = 60,
                          .size = 64,
                          .concurrency = 200,
                          .src_base = "127.0.0.2",
                          .server_pid = 0,
                          .label = ""};
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'h':
            o->host = optarg;
            break;
        case 'p':
            o->port = atoi(optarg);
            break;
        case 'P':
            o->path = optarg;
            break;
        case 't':
            o->token = true;
            break;
        case 'T':
            o->token = false;
            break;
        case 'n':
            o->conns = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'm':
            o->rooms = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 's':
            o->senders = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'j':
            o->procs = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'r':
            o->rate = strtod(optarg, NULL);
            break;
        case 'w':
            o->window = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'd':
            o->duration = strtod(optarg, NULL);
            break;
        case 'D':
            o->drain = strtod(optarg, NULL);
            break;
        case 'i':
            o->idle = strtod(optarg, NULL);
            break;
        case 'z':
            o->size = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'c':
            o->concurrency = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'a':
            o->src_base = optarg;
            break;
        case 'k':
            o->server_pid = strtol(optarg, NULL, 10);
            break;
        case 'O': {
            char *e = optarg;
            while (*e && o->n_ports < LG_PORTS_MAX) {
                long v = strtol(e, &e, 10);
                if (v < 1 || v > 65535 || (*e && *e != ',')) {
                    fprintf(stderr, "loadgen: --ports: a list of 1..65535, comma-separated\n");
                    return -1;
                }
                o->ports[o->n_ports++] = (int)v;
                o->port = o->ports[0];
                if (*e == ',')
                    e++;
            }
            if (*e) {
                fprintf(stderr, "loadgen: --ports: at most %d\n", LG_PORTS_MAX);
                return -1;
            }
            break;
        }
        case 'S':
            o->socketio = true;
            break;
        case 'A':
            if (o->n_also == LG_ALSO_MAX) {
                fprintf(stderr, "loadgen: at most %d --also-pid\n", LG_ALSO_MAX);
                return -1;
            }
            o->also_pid[o->n_also++] = strtol(optarg, NULL, 10);
            break;
        case 'l':
            o->label = optarg;
            break;
        case 'C':
            o->connect_timeout = strtod(optarg, NULL);
            break;
        case 'g':
            o->progress = strtod(optarg, NULL);
            break;
        default:
            usage();
            return -1;
        }
    }
    if (!o->procs)
        o->procs = (o->conns + LG_WORKER_FDS - 1u) / LG_WORKER_FDS;
    if (o->procs < 1)
        o->procs = 1;
    const char *err = NULL;
    if (o->port < 1 || o->port > 65535)
        err = "--port must be 1..65535";
    else if (o->conns < 1 || o->conns > LG_MAX_CONNS)
        err = "--conns must be 1..200000";
    else if (o->rooms < 1 || o->rooms > o->conns)
        err = "--rooms must be 1..conns";
    else if (o->senders > o->conns)
        err = "--senders must be <= conns";
    else if (o->procs > LG_MAX_PROCS || o->procs > o->conns)
        err = "--procs must be 1..64 and <= conns";
    else if ((o->conns + o->procs - 1u) / o->procs > LG_WORKER_FDS)
        err = "too many connections per process (max 15000): raise --procs";
    else if (o->size < 24 || o->size > LG_MAX_TEXT)
        err = "--size must be 24..4000";
    else if (o->rate < 0 || (o->rate == 0 && o->window < 1))
        err = "--rate must be >= 0, and --window >= 1 when --rate is 0";
    else if (o->duration < 0 || o->drain < 0 || o->idle < 0 || o->progress < 0)
        err = "durations must be >= 0";
    else if (o->connect_timeout < 1 || o->connect_timeout > 3600)
        err = "--connect-timeout must be 1..3600";
    else if (o->concurrency < 1)
        err = "--concurrency must be >= 1";
    else if (o->token &&
             (!getenv("JWT_SECRET") || strlen(getenv("JWT_SECRET")) < CM_TOKEN_SECRET_MIN))
        err = "--token needs JWT_SECRET (>= 32 bytes) in the environment";
    if (err) {
        fprintf(stderr, "loadgen: %s\n", err);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct lg_opts o;
    if (parse_opts(argc, argv, &o))
        return 2;
    cm_log_init("loadgen", CM_LOG_WARN);
    lws_set_log_level(LLL_ERR, NULL);
    signal(SIGPIPE, SIG_IGN);

    size_t shsz = sizeof(struct lg_shared) + o.rooms * sizeof(_Atomic uint64_t);
    struct lg_shared *sh =
        mmap(NULL, shsz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    memset(sh, 0, shsz);

    long rss0 = o.server_pid ? read_proc_kb(o.server_pid, "VmRSS") : -1;
    double cpu0 = o.server_pid ? read_proc_cpu(o.server_pid) : -1;

    pid_t pids[LG_MAX_PROCS];
    FILE *pipes[LG_MAX_PROCS];
    uint32_t per = o.conns / o.procs, extra = o.conns % o.procs, lo = 0;
    for (unsigned i = 0; i < o.procs; i++) {
        uint32_t cnt = per + (i < extra ? 1u : 0u);
        int fd[2];
        if (pipe(fd)) {
            perror("pipe");
            return 1;
        }
        fflush(NULL);
        pids[i] = fork();
        if (pids[i] < 0) {
            perror("fork");
            return 1;
        }
        if (pids[i] == 0) {
            close(fd[0]);
            dup2(fd[1], STDOUT_FILENO);
            close(fd[1]);
            _exit(worker_main(&o, sh, (int)i, lo, lo + cnt));
        }
        close(fd[1]);
        pipes[i] = fdopen(fd[0], "r");
        lo += cnt;
    }

    int rc = 0;
    int64_t t0 = now_ns(), limit = (int64_t)((o.connect_timeout + 30) * 1e9);
    int64_t next_progress = t0 + (int64_t)(o.progress * 1e9);
    while (atomic_load(&sh->ready) < (int)o.procs) {
        if (o.progress > 0 && now_ns() >= next_progress) {
            progress_line(&o, sh, "connecting", t0);
            next_progress += (int64_t)(o.progress * 1e9);
        }
        if (now_ns() - t0 > limit) {
            fprintf(stderr, "loadgen: connect phase timed out\n");
            rc = 1;
            break;
        }
        int st;
        pid_t p = waitpid(-1, &st, WNOHANG);
        if (p > 0) {
            fprintf(stderr, "loadgen: a worker exited early\n");
            rc = 1;
            break;
        }
        sleep_s(0.005);
    }
    int64_t t_ready = now_ns();
    if (o.progress > 0)
        progress_line(&o, sh, "ready", t0);
    double cpu1 = o.server_pid ? read_proc_cpu(o.server_pid) : -1;
    double also1[LG_ALSO_MAX] = {0}, also2[LG_ALSO_MAX] = {0};
    also_cpu(&o, also1);
    memcpy(also2, also1, sizeof also2);
    if (!rc && o.idle > 0) {
        /* hold: every connection stays open and idle (the caller samples memory) */
        int64_t hold_end = now_ns() + (int64_t)(o.idle * 1e9);
        while (now_ns() < hold_end) {
            double left = (double)(hold_end - now_ns()) / 1e9;
            sleep_s(o.progress > 0 && o.progress < left ? o.progress : left);
            if (o.progress > 0)
                progress_line(&o, sh, "holding", t0);
        }
    }
    long rss1 = o.server_pid ? read_proc_kb(o.server_pid, "VmRSS") : -1;

    struct hist *h = cm_xcalloc(1, sizeof *h);
    unsigned long long conns_ok = 0, failed = 0, closed = 0, sent = 0, expected = 0, delivered = 0,
                       reorders = 0, gaps = 0, bad = 0, maxns = 0;
    long long cs_min = 0, ce_max = 0;
    int64_t t_send = 0, t_end = 0;
    double cpu2 = cpu1;
    if (!rc) {
        atomic_store(&sh->send_start_ns, now_ns());
        t_send = now_ns();
        atomic_store(&sh->phase, PH_SEND);
        if (o.progress > 0)
            progress_line(&o, sh, "sending", t0);
        char *line = cm_xmalloc(LG_LINE_MAX * 4);
        for (unsigned i = 0; i < o.procs; i++) {
            if (!fgets(line, (int)(LG_LINE_MAX * 4), pipes[i])) {
                fprintf(stderr, "loadgen: worker %u sent no result\n", i);
                rc = 1;
                continue;
            }
            conns_ok += (unsigned long long)json_int(line, "connected");
            failed += (unsigned long long)json_int(line, "failed");
            closed += (unsigned long long)json_int(line, "closed_early");
            sent += (unsigned long long)json_int(line, "sent");
            expected += (unsigned long long)json_int(line, "expected");
            delivered += (unsigned long long)json_int(line, "delivered");
            reorders += (unsigned long long)json_int(line, "reorders");
            gaps += (unsigned long long)json_int(line, "gaps");
            bad += (unsigned long long)json_int(line, "bad_frames");
            unsigned long long m = (unsigned long long)json_int(line, "max_ns");
            if (m > maxns)
                maxns = m;
            long long cs = json_int(line, "connect_start_ns"),
                      ce = json_int(line, "connect_end_ns");
            if (!cs_min || cs < cs_min)
                cs_min = cs;
            if (ce > ce_max)
                ce_max = ce;
            const char *hp = strstr(line, "\"hist\":");
            if (!hp || hist_merge_json(h, hp + 7)) {
                fprintf(stderr, "loadgen: bad histogram from worker %u\n", i);
                rc = 1;
            }
        }
        free(line);
        t_end = now_ns();
        cpu2 = o.server_pid ? read_proc_cpu(o.server_pid) : -1;
        also_cpu(&o, also2);
    }
    h->max = maxns;
    atomic_store(&sh->phase, PH_STOP);
    for (unsigned i = 0; i < o.procs; i++) {
        int st;
        waitpid(pids[i], &st, 0);
        fclose(pipes[i]);
    }

    double conn_s = (double)(ce_max - cs_min) / 1e9;
    double run_s = (double)(t_end - t_send) / 1e9;
    /* Deliveries over the sending window plus the drain; the drain ends as soon as the last
     * expected message arrived, so this is the rate the system sustained. */
    double cpu_conn = cpu1 - cpu0, cpu_run = cpu2 - cpu1;
    unsigned long long lost = expected > delivered ? expected - delivered : 0;
    printf("{\"label\":\"%s\",\"conns\":%u,\"rooms\":%u,\"senders\":%u,\"procs\":%u,"
           "\"rate\":%.1f,\"window\":%u,\"size\":%u,\"duration\":%.1f,"
           "\"connected\":%llu,\"failed\":%llu,\"closed_early\":%llu,"
           "\"connect_s\":%.4f,\"handshakes_per_s\":%.1f,\"server_cpu_connect_s\":%.3f,"
           "\"rss_before_kb\":%ld,\"rss_idle_kb\":%ld,"
           "\"sent\":%llu,\"expected\":%llu,\"delivered\":%llu,\"lost\":%llu,\"gaps\":%llu,"
           "\"reorders\":%llu,\"bad_frames\":%llu,\"run_s\":%.3f,\"deliveries_per_s\":%.1f,"
           "\"sent_per_s\":%.1f,\"server_cpu_run_s\":%.3f,\"deliveries_per_cpu_s\":%.1f,"
           "\"also_cpu_run_s\":[%.3f,%.3f,%.3f,%.3f],"
           "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f}\n",
           o.label, o.conns, o.rooms, o.senders, o.procs, o.rate, o.window, o.size, o.duration,
           conns_ok, failed, closed, conn_s, conn_s > 0 ? (double)conns_ok / conn_s : 0, cpu_conn,
           rss0, rss1, sent, expected, delivered, lost, gaps, reorders, bad, run_s,
           run_s > 0 ? (double)delivered / run_s : 0, run_s > 0 ? (double)sent / run_s : 0, cpu_run,
           cpu_run > 0 ? (double)delivered / cpu_run : 0, also2[0] - also1[0], also2[1] - also1[1],
           also2[2] - also1[2], also2[3] - also1[3], (double)hist_quantile(h, 0.5) / 1e6,
           (double)hist_quantile(h, 0.99) / 1e6, (double)hist_quantile(h, 0.999) / 1e6,
           (double)h->max / 1e6);
    fflush(stdout);
    (void)t_ready;
    free(h);
    munmap(sh, shsz);
    if (failed || closed || lost || reorders || gaps)
        rc = rc ? rc : 3;
    return rc;
}
