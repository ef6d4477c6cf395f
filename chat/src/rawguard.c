/* recv() interposition: the executable's definition of recv wins over libc's for calls
 * made from libwebsockets.so (ELF symbol interposition); we forward to the next recv in
 * the lookup order (libasan's interceptor under ASan, else libc) and scan what was read.
 * close() is interposed the same way, only to unregister a socket before its number can
 * be reused.
 *
 * The head tracker below is written from a reading of lws 4.1.6 (lib/roles/http/parsers.c
 * lws_parse(), lib/roles/http/server/server.c lws_handshake_server(),
 * lib/roles/ws/server-ws.c lws_process_ws_upgrade()); no lws code is copied. What lws does,
 * and so what the tracker must mirror or refuse:
 *  - lws lower-cases a line's first bytes and walks them through a table of known names
 *    (lextable-strings.h). At a line start, LF or CR LF ends the head; a CR followed by
 *    anything else starts an unknown header *name*, in which CR and LF are plain name bytes
 *    until the next ':' (the "\r\r\n" hole: lws read on while the old tracker took the rest
 *    for frames). -> a CR not followed by LF is refused.
 *  - A name that is a proper prefix of a known one ("Hos:", "X:", "Get:") makes lws swallow
 *    the ':' as a name byte and read on, again across line ends, to the next ':'. A name
 *    that starts with "put", "patch", "delete" or "uri-args" switches lws into a method or
 *    URI state mid-line. -> both refused (names are matched against the same table).
 *  - Unknown names (LWS_WITH_CUSTOM_HEADERS) run to ':' and their values to LF; known values
 *    run to CR or LF; a value, the URI and the version all end at LF or CR (then LF).
 *    -> lines are tokens, ':' and a value of visible bytes, SP, HTAB, obs-text; a line that
 *    starts with SP/HTAB (obs-fold: lws reads it as a name) and control bytes are refused.
 *  - In the URI lws decodes %XX before it looks for the line end, so %0A ends the line in
 *    the middle, and %00 fails the request. -> escapes decoding below 0x20 or to 0x7f are
 *    refused; a bad escape is refused (lws answers 403).
 *  - lws upgrades to WebSocket only when the first Upgrade header's value, leading spaces
 *    skipped, is "websocket" (strcasecmp); "h2c" switches to HTTP/2; CONNECT switches to a
 *    raw socket; Content-Length makes the next bytes a body. -> any other Upgrade value, a
 *    second Upgrade header, CONNECT, an unknown method, Transfer-Encoding and a non-zero
 *    Content-Length are refused. A head that lws might refuse to upgrade for other reasons
 *    (Connection, Sec-WebSocket-Key/Version, our filter) is still taken as an upgrade: lws
 *    then closes the connection, or, if it served HTTP on, its next request head reads as an
 *    unmasked frame and the connection is refused: both fail closed.
 * Everything refused is input no browser, `ws` client or nginx sends. */
#define _GNU_SOURCE
#include "rawguard.h"
#include "chat.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <lws_config.h>

#include "cm_alloc.h"
#include "cm_log.h"

/* What this file and conn.c were written against. The head tracker mirrors lws 4.1.6's
 * parser, including its table of known header names, which depends on these build options;
 * the registry assumes one service thread. conn.c relies on the same version: its batched
 * writes (chat_conn_writeable: several frames encoded by protocol.c and written as one
 * LWS_WRITE_RAW, sized by tx_packet_size in main.c) and close_soon()'s reasoning about
 * lws_parse_ws state are 4.1.6 behaviour. Another lws must be re-read, not just rebuilt. */
#if LWS_LIBRARY_VERSION_MAJOR != 4 || LWS_LIBRARY_VERSION_MINOR != 1 ||                            \
    LWS_LIBRARY_VERSION_PATCH != 6
#error "rawguard.c and conn.c are written for libwebsockets 4.1.6: re-read its parser"
#endif
_Static_assert(LWS_MAX_SMP == 1, "rawguard's registry and conn.c assume one lws service thread");
#if !defined(LWS_WITH_CUSTOM_HEADERS) || !defined(LWS_ROLE_WS) || !defined(LWS_ROLE_H2) ||         \
    !defined(LWS_WITH_HTTP_UNCOMMON_HEADERS)
#error "the head tracker mirrors lws built with CUSTOM_HEADERS, ROLE_WS, ROLE_H2, UNCOMMON_HEADERS"
#endif

/* ---- the tracker ---------------------------------------------------------------------- */

enum { ST_B0, ST_B1, ST_EXT, ST_MASK, ST_PAYLOAD };

enum head_state {
    H_METHOD, /* request-line method (the stream's first byte starts here) */
    H_TARGET0,
    H_TARGET,
    H_VERSION,
    H_LF,     /* a CR was seen: LF must follow */
    H_LINE,   /* start of a header line */
    H_NAME,   /* header name */
    H_VALUE,  /* header value */
    H_END_LF, /* CR at a line start: LF must follow and ends the head */
};

enum hdr_kind { K_OTHER, K_UPGRADE, K_CLEN };

/* lws 4.1.6's known names as its parser matches them (lib/roles/http/lextable-strings.h with
 * ROLE_WS, ROLE_H2, HTTP_UNCOMMON_HEADERS, as Debian builds it), lower case, with the byte
 * that ends each. Only used to tell known, unknown and misread names apart. */
static const char *const known[] = {
    "get ",
    "post ",
    "options ",
    "host:",
    "connection:",
    "upgrade:",
    "origin:",
    "sec-websocket-draft:",
    "sec-websocket-extensions:",
    "sec-websocket-key1:",
    "sec-websocket-key2:",
    "sec-websocket-protocol:",
    "sec-websocket-accept:",
    "sec-websocket-nonce:",
    "http/1.1 ",
    "http2-settings:",
    "accept:",
    "access-control-request-headers:",
    "if-modified-since:",
    "if-none-match:",
    "accept-encoding:",
    "accept-language:",
    "pragma:",
    "cache-control:",
    "authorization:",
    "cookie:",
    "content-length:",
    "content-type:",
    "date:",
    "range:",
    "referer:",
    "sec-websocket-key:",
    "sec-websocket-version:",
    "sec-websocket-origin:",
    "accept-charset:",
    "accept-ranges:",
    "access-control-allow-origin:",
    "age:",
    "allow:",
    "content-disposition:",
    "content-encoding:",
    "content-language:",
    "content-location:",
    "content-range:",
    "etag:",
    "expect:",
    "expires:",
    "from:",
    "if-match:",
    "if-range:",
    "if-unmodified-since:",
    "last-modified:",
    "link:",
    "location:",
    "max-forwards:",
    "proxy-authenticate:",
    "proxy-authorization:",
    "refresh:",
    "retry-after:",
    "server:",
    "set-cookie:",
    "strict-transport-security:",
    "transfer-encoding:",
    "user-agent:",
    "vary:",
    "via:",
    "www-authenticate:",
    "patch",
    "put",
    "delete",
    "uri-args",
    "proxy ",
    "x-real-ip:",
    "http/1.0 ",
    "x-forwarded-for:",
    "connect ",
    "head ",
    "te:",
    "replay-nonce:",
    "x-auth-token:",
    /* h2 pseudo-headers (":authority" ...) cannot collide with a token name */
};
/* Entries that end without ':' on token bytes: lws leaves the name state as soon as a
 * name starts with one of them. */
static const char *const misread_prefix[] = {"put", "patch", "delete", "uri-args"};

void chat_wsscan_reset(struct chat_wsscan *s)
{
    memset(s, 0, sizeof *s);
}

static bool violate(struct chat_wsscan *s, const char *why)
{
    s->phase = 2;
    s->violation = why;
    s->viol_at = s->fed;
    return true;
}

static bool is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = lower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static void head_start(struct chat_wsscan *s)
{
    s->hs = H_METHOD;
    s->hn = 0;
    s->upgrade = false;
    s->upgrade_seen = false;
}

static void name_add(struct chat_wsscan *s, unsigned char c)
{
    if (s->hn < CHAT_WSSCAN_NAME_MAX)
        s->name[s->hn] = (char)lower(c);
    if (s->hn < UINT8_MAX)
        s->hn++;
}

/* The method before the first SP, as lws's table reads it. */
static bool method_end(struct chat_wsscan *s)
{
    static const char *const ok[] = {"get", "post", "options", "head", "put", "patch", "delete"};
    size_t n = s->hn;
    if (n >= CHAT_WSSCAN_NAME_MAX)
        return violate(s, "unknown method");
    if (n == 7 && !memcmp(s->name, "connect", 7))
        return violate(s, "CONNECT (lws switches to a raw socket)");
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (strlen(ok[i]) == n && !memcmp(s->name, ok[i], n)) {
            s->hs = H_TARGET0;
            s->hn = 0;
            return false;
        }
    return violate(s, "unknown method");
}

/* A header name ended at ':': classify it the way lws's table would. */
static bool name_end(struct chat_wsscan *s)
{
    size_t n = s->hn;
    size_t kept = n < CHAT_WSSCAN_NAME_MAX ? n : CHAT_WSSCAN_NAME_MAX;

    for (size_t i = 0; i < sizeof misread_prefix / sizeof misread_prefix[0]; i++) {
        size_t l = strlen(misread_prefix[i]);
        if (kept >= l && !memcmp(s->name, misread_prefix[i], l))
            return violate(s, "header name lws reads as a method");
    }
    s->hkind = K_OTHER;
    s->hval = 0;
    s->hs = H_VALUE;
    if (n >= CHAT_WSSCAN_NAME_MAX)
        return false; /* longer than every known name: an unknown header */
    bool prefix = false;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        size_t l = strlen(known[i]);
        if (l == n + 1 && !memcmp(known[i], s->name, n) && known[i][n] == ':') {
            if (n == 7 && !memcmp(s->name, "upgrade", 7))
                s->hkind = K_UPGRADE;
            else if (n == 14 && !memcmp(s->name, "content-length", 14))
                s->hkind = K_CLEN;
            else if (n == 17 && !memcmp(s->name, "transfer-encoding", 17))
                return violate(s, "Transfer-Encoding in a request head");
            return false;
        }
        if (l > n && !memcmp(known[i], s->name, n))
            prefix = true;
    }
    if (prefix) /* lws would take the ':' as part of the name and read on past the line */
        return violate(s, "header name is a prefix of one lws knows");
    return false;
}

static void value_byte(struct chat_wsscan *s, unsigned char c)
{
    static const char ws[] = "websocket";
    if (s->hval == UINT8_MAX)
        return;
    if (s->hkind == K_UPGRADE) {
        if (s->hval == 0 && c == ' ')
            return; /* lws skips leading spaces (not tabs) of a known header's value */
        if (s->hval < sizeof ws - 1 && lower(c) == (unsigned char)ws[s->hval])
            s->hval++;
        else
            s->hval = UINT8_MAX;
    } else if (s->hkind == K_CLEN) {
        if (s->hval == 0 && c == ' ')
            return;
        if (c >= '0' && c <= '9')
            s->hval = c == '0' && s->hval != 2 ? 1 : 2;
        else
            s->hval = UINT8_MAX;
    }
}

static bool value_end(struct chat_wsscan *s)
{
    if (s->hkind == K_UPGRADE) {
        if (s->upgrade_seen)
            return violate(s, "two Upgrade headers");
        s->upgrade_seen = true;
        if (s->hval != 9)
            return violate(s, "Upgrade other than websocket");
        s->upgrade = true;
    } else if (s->hkind == K_CLEN && s->hval != 1) {
        return violate(s, "request body (Content-Length) before the upgrade");
    }
    s->hkind = K_OTHER;
    return false;
}

static void head_end(struct chat_wsscan *s)
{
    s->heads++;
    if (s->upgrade) {
        s->phase = 1;
        s->st = ST_B0;
    } else {
        head_start(s); /* a keep-alive connection may send another head */
    }
}

/* One byte of a request head; returns true on a violation. */
static bool head_byte(struct chat_wsscan *s, unsigned char c)
{
    switch ((enum head_state)s->hs) {
    case H_METHOD:
        if (c == ' ')
            return method_end(s);
        if (c < 'A' || c > 'Z')
            return violate(s, "bad request line");
        name_add(s, c);
        return false;
    case H_TARGET0:
        if (c != '/')
            return violate(s, "request target does not start with /");
        s->hs = H_TARGET;
        s->pct = 0;
        return false;
    case H_TARGET:
        if (s->pct) { /* 1: saw '%'; 0x10 | h: saw the first digit h */
            int h = hexval(c);
            if (h < 0)
                return violate(s, "bad %-escape in the request target");
            if (s->pct == 1) {
                s->pct = (uint8_t)(0x10 | h);
                return false;
            }
            int v = ((s->pct & 0x0f) << 4) | h;
            s->pct = 0;
            if (v < 0x20 || v == 0x7f) /* lws decodes before it looks for the line end */
                return violate(s, "control byte %-escaped in the request target");
            return false;
        }
        if (c == ' ') {
            s->hs = H_VERSION;
            s->hn = 0;
            return false;
        }
        if (c < 0x21 || c > 0x7e)
            return violate(s, "bad byte in the request target");
        if (c == '%')
            s->pct = 1;
        return false;
    case H_VERSION: {
        static const char v[] = "HTTP/1.1";
        if (s->hn == 8 && (c == '\r' || c == '\n')) {
            s->hs = c == '\r' ? H_LF : H_LINE;
            return false;
        }
        if (s->hn >= 8 || !(c == (unsigned char)v[s->hn] || (s->hn == 7 && c == '0')))
            return violate(s, "bad HTTP version");
        s->hn++;
        return false;
    }
    case H_LF:
        if (c != '\n')
            return violate(s, "CR not followed by LF");
        s->hs = H_LINE;
        return false;
    case H_LINE:
        if (c == '\r') {
            s->hs = H_END_LF;
            return false;
        }
        if (c == '\n') {
            head_end(s);
            return false;
        }
        if (c == ' ' || c == '\t')
            return violate(s, "folded header line (obs-fold)");
        if (!is_tchar(c))
            return violate(s, "bad header name");
        s->hs = H_NAME;
        s->hn = 0;
        name_add(s, c);
        return false;
    case H_NAME:
        if (c == ':')
            return name_end(s);
        if (!is_tchar(c))
            return violate(s, "bad header name");
        name_add(s, c);
        return false;
    case H_VALUE:
        if (c == '\r' || c == '\n') {
            if (value_end(s))
                return true;
            s->hs = c == '\r' ? H_LF : H_LINE;
            return false;
        }
        if (c != '\t' && (c < 0x20 || c == 0x7f))
            return violate(s, "control byte in a header value");
        value_byte(s, c);
        return false;
    case H_END_LF:
        if (c != '\n')
            return violate(s, "CR not followed by LF");
        head_end(s);
        return false;
    }
    return violate(s, "head parser state");
}

/* A frame broke a rule: the violation is placed at the frame's first byte, so that no
 * byte of it reaches lws. */
static bool violate_frame(struct chat_wsscan *s, const char *why)
{
    violate(s, why);
    s->viol_at = s->frame_at;
    return true;
}

/* The frame byte at p[*i]; returns true on a violation. RFC 6455 §5.2. */
static bool frame_byte(struct chat_wsscan *s, const unsigned char *p, size_t n, size_t *i)
{
    unsigned char c = p[*i];
    switch (s->st) {
    case ST_B0:
        s->frame_at = s->fed;
        if (c & 0x70) /* §5.2: RSV1-3 MUST be 0 unless an extension says otherwise */
            return violate_frame(s, "RSV bits set (no extension negotiated)");
        s->opcode = c & 0x0f;
        if ((s->opcode > 2 && s->opcode < 8) || s->opcode > 10)
            return violate_frame(s, "reserved opcode");
        if (s->opcode & 8 && s->controls < UINT16_MAX)
            s->controls++; /* ping, pong, close: counted against the sender's budget */
        if ((s->opcode & 8) && !(c & 0x80)) /* §5.5: control frames MUST NOT be fragmented */
            return violate_frame(s, "fragmented control frame");
        s->st = ST_B1;
        break;
    case ST_B1:
        if (!(c & 0x80)) /* §5.1: client frames must be masked */
            return violate_frame(s, "unmasked client frame");
        if ((s->opcode & 8) && (c & 0x7f) > 125) /* §5.5: at most 125 bytes */
            return violate_frame(s, "control frame over 125 bytes");
        s->remain = c & 0x7f;
        s->need = s->remain == 126 ? 2 : s->remain == 127 ? 8 : 0;
        if (s->need) {
            s->remain = 0;
            s->st = ST_EXT;
        } else {
            s->st = ST_MASK;
            s->need = 4;
        }
        break;
    case ST_EXT:
        if (s->need == 8 && (c & 0x80)) /* §5.2: the top bit of a 64-bit length is 0 */
            return violate_frame(s, "frame length with bit 63 set");
        s->remain = (s->remain << 8) | c;
        if (s->remain > CHAT_WSSCAN_MAX_FRAME)
            return violate_frame(s, "frame longer than CHAT_WSSCAN_MAX_FRAME");
        if (--s->need == 0) {
            s->st = ST_MASK;
            s->need = 4;
        }
        break;
    case ST_MASK:
        if (--s->need == 0) {
            s->st = s->remain ? ST_PAYLOAD : ST_B0;
            if (!s->remain)
                s->frames++;
        }
        break;
    case ST_PAYLOAD: {
        size_t take = n - *i;
        if ((uint64_t)take > s->remain)
            take = (size_t)s->remain;
        s->remain -= take;
        s->fed += take;
        *i += take;
        if (!s->remain) {
            s->st = ST_B0;
            s->frames++;
        }
        return false;
    }
    default:
        return violate_frame(s, "frame parser state");
    }
    s->fed++;
    (*i)++;
    return false;
}

bool chat_wsscan_feed(struct chat_wsscan *s, const unsigned char *p, size_t n)
{
    size_t i = 0;

    while (i < n && s->phase == 0) {
        if (head_byte(s, p[i]))
            return true;
        s->fed++;
        i++;
    }
    while (i < n && s->phase == 1)
        if (frame_byte(s, p, n, &i))
            return true;
    return s->phase == 2;
}

/* ---- the registry and the interposers --------------------------------------------------- */

struct guard {
    struct chat_wsscan scan;
    struct chat_conn *conn;
    bool armed; /* registered by chat_rawguard_reset and not closed since */
};

/* Written by init/free on the lws thread; read only on that thread (on_lws_thread is false
 * everywhere else, and is checked first), so the registry needs no lock or atomics. */
static struct guard *guards;
static size_t nguards;
static _Thread_local bool on_lws_thread;

typedef ssize_t (*recv_fn)(int, void *, size_t, int);
typedef int (*close_fn)(int);
static recv_fn real_recv;
static close_fn real_close;
static pthread_once_t resolve_once = PTHREAD_ONCE_INIT;

static void resolve(void)
{
    void *r = dlsym(RTLD_NEXT, "recv");
    void *c = dlsym(RTLD_NEXT, "close");
    if (!r || !c) {
        /* cannot forward: nothing sane to do (this may run before logging is set up) */
        static const char msg[] = "rawguard: dlsym(RTLD_NEXT, recv/close) failed\n";
        (void)!write(2, msg, sizeof msg - 1);
        abort();
    }
    memcpy(&real_recv, &r, sizeof real_recv);
    memcpy(&real_close, &c, sizeof real_close);
}

void chat_rawguard_init(size_t max_fds)
{
    (void)pthread_once(&resolve_once, resolve);
    /* The guard only works if lws's calls reach our recv: the executable must export it
     * (ld does so because libwebsockets.so references recv) and come first in the lookup. */
    void *first = dlsym(RTLD_DEFAULT, "recv");
    recv_fn ours = recv;
    void *ours_p;
    memcpy(&ours_p, &ours, sizeof ours_p);
    if (first != ours_p) {
        cm_error("rawguard: recv() is not interposed (dlsym gives %p, ours is %p): unmasked "
                 "frames would not be refused",
                 first, ours_p);
        abort();
    }
    guards = cm_xcalloc(max_fds ? max_fds : 1, sizeof *guards);
    nguards = max_fds;
    on_lws_thread = true;
}

void chat_rawguard_free(void)
{
    free(guards);
    guards = NULL;
    nguards = 0;
    on_lws_thread = false;
}

static struct guard *guard_of(int fd)
{
    if (!on_lws_thread || fd < 0 || !guards || (size_t)fd >= nguards)
        return NULL;
    return &guards[fd];
}

void chat_rawguard_reset(int fd)
{
    struct guard *g = guard_of(fd);
    if (!g) {
        if (on_lws_thread && fd >= 0)
            cm_warn("rawguard: fd %d is beyond the %zu the guard covers: its upgrade is refused",
                    fd, nguards);
        return;
    }
    memset(g, 0, sizeof *g);
    g->armed = true;
}

void chat_rawguard_attach(int fd, void *conn)
{
    struct guard *g = guard_of(fd);
    if (g && g->armed)
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
    if (on_lws_thread && fd >= 0 && (size_t)fd >= nguards)
        return true; /* a socket the guard cannot cover is refused, not let through */
    struct guard *g = guard_of(fd);
    return g && g->scan.phase == 2;
}

bool chat_rawguard_registered(int fd)
{
    struct guard *g = guard_of(fd);
    return g && g->armed;
}

int close(int fd)
{
    (void)pthread_once(&resolve_once, resolve);
    struct guard *g = guard_of(fd);
    if (g) { /* before the number is free again: whatever gets it next is not ours */
        g->armed = false;
        g->conn = NULL;
    }
    return real_close(fd);
}

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
    (void)pthread_once(&resolve_once, resolve);
    ssize_t r = real_recv(fd, buf, len, flags);
    struct guard *g = guard_of(fd);
    if (r <= 0 || !g || !g->armed || (flags & MSG_PEEK))
        return r;
    if (g->scan.phase != 2) {
        if (g->conn)
            ((struct chat_conn *)g->conn)->rx_seen = true; /* any input is liveness */
        uint64_t before = g->scan.fed;
        bool bad = chat_wsscan_feed(&g->scan, buf, (size_t)r);
        if (g->conn && g->scan.controls) /* every frame kind has a budget (conn.c) */
            chat_conn_on_control_frames(g->conn, g->scan.controls);
        g->scan.controls = 0;
        if (!bad)
            return r;
        if (!g->conn) {
            /* a request head (or a frame before ESTABLISHED) broke a rule: lws gets the bytes
             * before the offending one (a plain request pipelined in front is still
             * answered; an upgrade is refused at ESTABLISHED, conn.c), never that byte or
             * any after it; the next read fails */
            cm_info("connection refused before the upgrade: %s", g->scan.violation);
            uint64_t good = g->scan.viol_at - before;
            if (good > 0 && good < (uint64_t)r) {
                /* lws may wait for more of the head: end the input side so that it reads
                 * again at once (and gets the failure) instead of at its timeout */
                (void)shutdown(fd, SHUT_RD);
                return (ssize_t)good;
            }
            errno = ECONNRESET;
            return -1;
        }
        /* An established WebSocket broke the framing rules. lws would process an unmasked
         * frame, and drops an oversized control frame without a close frame; instead we
         * send a 1002 close ourselves (only when lws has nothing half-written, so the
         * stream stays well-framed) and fail the read, which makes lws close the socket. */
        struct chat_conn *c = g->conn;
        c->why = g->scan.violation;
        /* an endpoint sends one close frame: not when ours is already out (close_soon
         * hands it to lws at WRITEABLE and clears close_code) or lws answered the client's */
        bool close_sent = (c->closing && !c->close_code) || c->peer_code;
        if (c->wsi && !close_sent && !lws_partial_buffered(c->wsi)) {
            static const unsigned char close1002[] = {0x88, 0x02, 0x03, 0xea};
            (void)send(fd, close1002, sizeof close1002, MSG_NOSIGNAL | MSG_DONTWAIT);
        }
    }
    errno = ECONNRESET; /* sticky: never hand lws bytes after a violation */
    return -1;
}
