/* See lwsdiff.h. The server mirrors the chat daemon's lws settings that shape parsing
 * (max_http_header_data, no extensions, a default protocol) and answers plain requests
 * with an empty 404, keeping the connection alive like the daemon's http.c. */
#define _GNU_SOURCE
#include "lwsdiff.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libwebsockets.h>

static const char marker[] = "UNMASKED-MARKER";

static struct lws_context *ctx;
static int port;
static struct lws *cur_wsi;
static bool cur_gone;
static struct lwsdiff_obs *cur;
static unsigned char rxacc[256];
static size_t rxlen;

static int cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    switch (reason) {
    case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
        cur_wsi = wsi;
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        if (wsi == cur_wsi)
            cur_gone = true;
        return 0;
    case LWS_CALLBACK_ESTABLISHED:
        if (cur)
            cur->established = true;
        rxlen = 0;
        return 0;
    case LWS_CALLBACK_RECEIVE:
        if (!cur)
            return 0;
        if (rxlen + len <= sizeof rxacc) {
            memcpy(rxacc + rxlen, in, len);
            rxlen += len;
        }
        if (lws_remaining_packet_payload(wsi) == 0) {
            cur->frames++;
            if (rxlen == sizeof marker - 1 && !memcmp(rxacc, marker, rxlen))
                cur->marker = true;
            rxlen = 0;
        }
        return 0;
    case LWS_CALLBACK_HTTP: {
        static const char resp[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        unsigned char buf[LWS_PRE + sizeof resp];
        if (cur)
            cur->http++;
        memcpy(buf + LWS_PRE, resp, sizeof resp - 1);
        if (lws_write(wsi, buf + LWS_PRE, sizeof resp - 1, LWS_WRITE_HTTP) < 0)
            return -1;
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

int lwsdiff_start(void)
{
    static const struct lws_protocols protocols[] = {
        {"lwsdiff", cb, 0, 4096, 0, NULL, 0},
        {NULL, NULL, 0, 0, 0, NULL, 0},
    };
    static lws_retry_bo_t retry;
    struct lws_context_creation_info info;

    lws_set_log_level(getenv("LWSDIFF_DEBUG") ? 0x7ff : 0, NULL);
    memset(&info, 0, sizeof info);
    info.port = 0; /* the kernel picks one */
    info.iface = "127.0.0.1";
    info.protocols = protocols;
    info.vhost_name = "lwsdiff";
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8 | LWS_SERVER_OPTION_DISABLE_IPV6;
    info.max_http_header_data = 8192; /* CHAT_MAX_HEADER_BYTES' default */
    info.max_http_header_pool = 4;
    info.timeout_secs = 10;
    info.retry_and_idle_policy = &retry;
    ctx = lws_create_context(&info);
    if (!ctx)
        return -1;
    port = lws_get_vhost_listen_port(lws_get_vhost_by_name(ctx, "lwsdiff"));
    return port > 0 ? 0 : -1;
}

void lwsdiff_stop(void)
{
    if (ctx)
        lws_context_destroy(ctx);
    ctx = NULL;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Services lws until cond() or the deadline; returns cond(). */
static bool service_until(bool (*cond)(void), int fd, int64_t deadline)
{
    while (!cond() && now_ms() < deadline) {
        unsigned char sink[4096];
        while (recv(fd, sink, sizeof sink, 0) > 0) /* lws's replies: discarded */
            ;
        struct pollfd pf = {fd, POLLIN, 0};
        (void)poll(&pf, 1, 1);
        lws_service(ctx, -1);
    }
    return cond();
}

static bool gone(void)
{
    return cur_wsi && cur_gone;
}

static bool settled(void)
{
    return gone() || (cur && cur->established);
}

static bool never(void)
{
    return gone();
}

static int client_fd = -1;

/* lws has read every byte sent so far (its socket's receive queue and ours' send queue
 * are empty): being single-threaded, it has then parsed them too */
static bool drained(void)
{
    int inq = 0, outq = 0;
    if (settled())
        return true;
    if (!cur_wsi || ioctl(client_fd, SIOCOUTQ, &outq) < 0 || outq)
        return false;
    int sfd = (int)lws_get_socket_fd(cur_wsi);
    return sfd >= 0 && ioctl(sfd, FIONREAD, &inq) == 0 && !inq;
}

static bool send_all(int fd, const unsigned char *p, size_t n)
{
    size_t sent = 0;
    int64_t deadline = now_ms() + 5000;
    while (sent < n && now_ms() < deadline) {
        ssize_t w = send(fd, p + sent, n - sent, MSG_NOSIGNAL);
        if (w > 0)
            sent += (size_t)w;
        else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOTCONN)
            return false; /* lws already closed it */
        else
            (void)service_until(never, fd, now_ms() + 1);
    }
    return true;
}

int lwsdiff_lws(const unsigned char *p, size_t n, size_t split, struct lwsdiff_obs *o)
{
    memset(o, 0, sizeof *o);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    cur = o;
    cur_wsi = NULL;
    cur_gone = false;
    rxlen = 0;
    /* bounds, not measurements: lws answers at once on 127.0.0.1, and closes at EOF */
    if (split > n)
        split = n;
    if (send_all(fd, p, split) && split < n) {
        /* let lws read and parse the head first, so that the rest arrives in a later read */
        client_fd = fd;
        if (service_until(drained, fd, now_ms() + 5000))
            for (int i = 0; i < 3; i++) /* and what it queued for itself (buflist) */
                lws_service(ctx, -1);
        (void)send_all(fd, p + split, n - split);
    }
    if (!gone())
        (void)shutdown(fd, SHUT_WR); /* EOF: lws finishes what it has, then closes */
    o->closed = service_until(gone, fd, now_ms() + 5000);
    cur = NULL;
    close(fd);
    return 0;
}

bool lwsdiff_scan(const unsigned char *p, size_t n, struct chat_wsscan *out, char *why,
                  size_t whylen)
{
    struct chat_wsscan one, each;
    chat_wsscan_reset(&one);
    chat_wsscan_reset(&each);
    (void)chat_wsscan_feed(&one, p, n);
    for (size_t i = 0; i < n; i++)
        if (chat_wsscan_feed(&each, p + i, 1))
            break;
    *out = one;
    if (one.phase != each.phase || one.frames != each.frames || one.heads != each.heads ||
        (one.phase == 2 && (one.viol_at != each.viol_at || one.violation != each.violation))) {
        snprintf(why, whylen,
                 "tracker depends on read boundaries: phase %u/%u frames %llu/%llu heads "
                 "%u/%u at %llu/%llu",
                 one.phase, each.phase, (unsigned long long)one.frames,
                 (unsigned long long)each.frames, one.heads, each.heads,
                 (unsigned long long)one.viol_at, (unsigned long long)each.viol_at);
        return false;
    }
    return true;
}

/* A masked client frame (RFC 6455 §5.2) of opcode 1 into out; returns its length. */
static size_t frame(unsigned char *out, const char *payload, bool masked)
{
    static const unsigned char key[4] = {0x37, 0xfa, 0x21, 0x3d};
    size_t l = strlen(payload), o = 0;
    out[o++] = 0x81;
    out[o++] = (unsigned char)((masked ? 0x80 : 0) | l);
    if (masked) {
        memcpy(out + o, key, 4);
        o += 4;
    }
    for (size_t i = 0; i < l; i++)
        out[o++] = (unsigned char)((unsigned char)payload[i] ^ (masked ? key[i & 3] : 0));
    return o;
}

bool lwsdiff_check(const unsigned char *head, size_t n, bool strict, bool *refused, char *why,
                   size_t whylen)
{
    size_t cap = n + 128;
    unsigned char *a = malloc(cap), *b = malloc(cap);
    bool ok = false;
    if (!a || !b) {
        snprintf(why, whylen, "out of memory");
        goto out;
    }
    memcpy(a, head, n);
    memcpy(b, head, n);
    size_t an = n, bn = n;
    an += frame(a + an, "frame-one", true);
    an += frame(a + an, "frame-two", true);
    bn += frame(b + bn, "frame-one", true);
    bn += frame(b + bn, marker, false);
    size_t marker_end = bn;
    bn += frame(b + bn, "frame-two", true);

    struct chat_wsscan sa, sb;
    struct lwsdiff_obs la, lb;
    if (!lwsdiff_scan(a, an, &sa, why, whylen) || !lwsdiff_scan(b, bn, &sb, why, whylen))
        goto out;
    if (refused)
        *refused = sa.phase == 2;
    /* (A) and (B) with the head in its own read(s), (B) also glued to the head in one
     * send: lws 4.1.6 writes its 101 reply into the buffer that still holds the bytes
     * after the head (pt->serv_buf, handshake_0405), so frames glued to a head of about
     * 383..512 bytes are replaced by reply text (which it then refuses: RSV bits) */
    struct lwsdiff_obs lb2;
    if (lwsdiff_lws(a, an, n, &la) < 0 || lwsdiff_lws(b, bn, n, &lb) < 0 ||
        lwsdiff_lws(b, bn, bn, &lb2) < 0) {
        snprintf(why, whylen, "cannot reach the lws server");
        goto out;
    }
    if (!la.closed || !lb.closed || !lb2.closed) {
        snprintf(why, whylen, "lws did not close the connection after EOF");
        goto out;
    }
    lb.marker = lb.marker || lb2.marker;
    if (lb.marker && !(sb.phase == 2 && sb.viol_at < marker_end)) {
        snprintf(why, whylen,
                 "lws parsed the unmasked frame but the tracker %s (phase %u, violation at "
                 "%llu, frame ends at %zu)",
                 sb.phase == 2 ? "refused too late" : "let it through", sb.phase,
                 (unsigned long long)sb.viol_at, marker_end);
        goto out;
    }
    if (sa.phase != 2) {
        if (la.established && sa.phase != 1) {
            snprintf(why, whylen, "lws upgraded, the tracker still reads a request head");
            goto out;
        }
        if (la.established && sa.frames != la.frames) {
            snprintf(why, whylen, "frames: tracker %llu, lws %u", (unsigned long long)sa.frames,
                     la.frames);
            goto out;
        }
    }
    if (strict) {
        if (sa.phase == 2) {
            snprintf(why, whylen, "tracker refused a good head: %s at %llu", sa.violation,
                     (unsigned long long)sa.viol_at);
            goto out;
        }
        if ((sa.phase == 1) != la.established || (la.established && la.frames != 2)) {
            snprintf(why, whylen, "upgrade: tracker %s, lws %s (%u frames)",
                     sa.phase == 1 ? "yes" : "no", la.established ? "yes" : "no", la.frames);
            goto out;
        }
        unsigned plain = sa.heads - (sa.phase == 1 ? 1u : 0u);
        if (la.http != plain) {
            snprintf(why, whylen, "plain requests: tracker %u, lws %u", plain, la.http);
            goto out;
        }
    }
    ok = true;
out:
    free(a);
    free(b);
    return ok;
}
