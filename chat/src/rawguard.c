/* recv() interposition: the executable's definition of recv wins over libc's for calls
 * made from libwebsockets.so (ELF symbol interposition); we forward to the next recv in
 * the lookup order (libasan's interceptor under ASan, else libc) and scan what was read. */
#define _GNU_SOURCE
#include "rawguard.h"
#include "chat.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "cm_log.h"
#include "cm_alloc.h"

enum { ST_B0, ST_B1, ST_EXT, ST_MASK, ST_PAYLOAD };

void chat_wsscan_reset(struct chat_wsscan *s)
{
    memset(s, 0, sizeof *s);
}

/* One byte of an HTTP request head: notes an "Upgrade: ...websocket..." header line and,
 * at the empty line ending the head, switches to frames if the head asked for the upgrade
 * (lws upgrades only then; another head may follow on a keep-alive connection otherwise). */
static void head_byte(struct chat_wsscan *s, unsigned char c)
{
    static const char name[] = "upgrade:";
    static const char value[] = "websocket";

    if (c == '\r')
        return; /* lws ends lines at LF and ignores the CR before it */
    if (c == '\n') {
        if (s->linelen == 0) {
            if (s->upgrade) {
                s->phase = 1;
                s->st = ST_B0;
            }
            s->upgrade = false;
        }
        s->linelen = 0;
        s->hmatch = 0;
        s->vmatch = 0;
        return;
    }
    if (s->linelen < UINT8_MAX)
        s->linelen++;
    if (c >= 'A' && c <= 'Z')
        c = (unsigned char)(c - 'A' + 'a');
    if (s->hmatch == UINT8_MAX)
        return;
    if (s->hmatch < sizeof name - 1) {
        s->hmatch = c == (unsigned char)name[s->hmatch] ? (uint8_t)(s->hmatch + 1) : UINT8_MAX;
        return;
    }
    /* in the value of an Upgrade header: look for "websocket" ('w' occurs once in it, so
     * restarting the match at a mismatch misses nothing) */
    if (s->vmatch < sizeof value - 1) {
        if (c == (unsigned char)value[s->vmatch])
            s->vmatch++;
        else
            s->vmatch = c == (unsigned char)value[0] ? 1 : 0;
        if (s->vmatch == sizeof value - 1)
            s->upgrade = true;
    }
}

bool chat_wsscan_feed(struct chat_wsscan *s, const unsigned char *p, size_t n)
{
    size_t i = 0;

    while (i < n && s->phase == 0)
        head_byte(s, p[i++]);
    while (i < n && s->phase == 1) {
        unsigned char c = p[i];
        switch (s->st) {
        case ST_B0:
            s->opcode = c & 0x0f;
            s->controls += (c & 0x08) ? 1 : 0;
            s->st = ST_B1;
            i++;
            break;
        case ST_B1:
            if (!(c & 0x80)) {
                s->phase = 2; /* RFC 6455 §5.1: client frames must be masked */
                s->violation = "unmasked client frame";
                return true;
            }
            if ((s->opcode & 8) && (c & 0x7f) > 125) {
                s->phase = 2; /* §5.5: control frames carry at most 125 bytes */
                s->violation = "control frame over 125 bytes";
                return true;
            }
            s->remain = c & 0x7f;
            s->need = s->remain == 126 ? 2 : s->remain == 127 ? 8 : 0;
            if (s->need)
                s->remain = 0;
            s->st = s->need ? ST_EXT : ST_MASK;
            if (!s->need)
                s->need = 4;
            i++;
            break;
        case ST_EXT:
            if (s->need == 8 && (c & 0x80)) {
                s->phase = 2; /* §5.2: the most significant bit of a 64-bit length is 0 */
                s->violation = "frame length with bit 63 set";
                return true;
            }
            s->remain = (s->remain << 8) | c;
            i++;
            if (--s->need == 0) {
                s->st = ST_MASK;
                s->need = 4;
            }
            break;
        case ST_MASK:
            i++;
            if (--s->need == 0)
                s->st = s->remain ? ST_PAYLOAD : ST_B0;
            break;
        case ST_PAYLOAD: {
            size_t take = n - i;
            if ((uint64_t)take > s->remain)
                take = (size_t)s->remain;
            i += take;
            s->remain -= take;
            if (!s->remain)
                s->st = ST_B0;
            break;
        }
        default:
            s->phase = 2;
            s->violation = "frame parser state";
            return true;
        }
    }
    return s->phase == 2;
}

struct guard {
    struct chat_wsscan scan;
    struct chat_conn *conn;
};

static struct guard *guards;
static size_t nguards;

void chat_rawguard_init(size_t max_fds)
{
    guards = cm_xcalloc(max_fds, sizeof *guards);
    nguards = max_fds;
}

void chat_rawguard_free(void)
{
    free(guards);
    guards = NULL;
    nguards = 0;
}

static struct guard *guard_of(int fd)
{
    if (fd < 0 || !guards || (size_t)fd >= nguards)
        return NULL;
    return &guards[fd];
}

void chat_rawguard_reset(int fd)
{
    struct guard *g = guard_of(fd);
    if (g)
        memset(g, 0, sizeof *g);
}

void chat_rawguard_attach(int fd, void *conn)
{
    struct guard *g = guard_of(fd);
    if (g)
        g->conn = conn;
}

void chat_rawguard_detach(int fd)
{
    struct guard *g = guard_of(fd);
    if (g)
        g->conn = NULL;
}

bool chat_rawguard_violated(int fd)
{
    struct guard *g = guard_of(fd);
    return g && g->scan.phase == 2;
}

typedef ssize_t (*recv_fn)(int, void *, size_t, int);

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
    static recv_fn real;
    if (!real) {
        void *sym = dlsym(RTLD_NEXT, "recv");
        if (!sym)
            abort();
        memcpy(&real, &sym, sizeof real);
    }
    ssize_t r = real(fd, buf, len, flags);
    struct guard *g = guard_of(fd);
    if (r <= 0 || !g || (flags & MSG_PEEK) || g->scan.phase == 2)
        return r;
    if (g->conn)
        ((struct chat_conn *)g->conn)->rx_seen = true; /* any input is liveness */
    bool bad = chat_wsscan_feed(&g->scan, buf, (size_t)r);
    if (g->conn && g->scan.controls) /* every frame kind has a budget (conn.c) */
        chat_conn_on_control_frames(g->conn, g->scan.controls);
    g->scan.controls = 0;
    if (!bad || !g->conn)
        return r;
    /* An established WebSocket broke the framing rules. lws would process an unmasked
     * frame, and drops an oversized control frame without a close frame; instead we send a
     * 1002 close ourselves (only when lws has nothing half-written, so the stream stays
     * well-framed) and fail the read, which makes lws close the socket. */
    struct chat_conn *c = g->conn;
    c->why = g->scan.violation;
    /* an endpoint sends one close frame: not when ours is already out (close_soon hands it
     * to lws at WRITEABLE and clears close_code) or lws has answered the client's close */
    bool close_sent = (c->closing && !c->close_code) || c->peer_code;
    if (c->wsi && !close_sent && !lws_partial_buffered(c->wsi)) {
        static const unsigned char close1002[] = {0x88, 0x02, 0x03, 0xea};
        (void)send(fd, close1002, sizeof close1002, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    errno = ECONNRESET;
    return -1;
}
