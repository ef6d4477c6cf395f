/* The frame guard's request-head tracker against the real libwebsockets 4.1.6 parser
 * (lwsdiff.c runs an lws server in this process and sends it the same bytes): good heads
 * are followed exactly, hostile heads are either followed exactly or refused, and an
 * unmasked frame lws would parse is never let through. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lwsdiff.h"

#define KEY "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
#define UP                                                                                         \
    "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" KEY

struct tcase {
    const char *name;
    const char *bytes;
    size_t len; /* 0: strlen */
};

#define C(n, s)                                                                                    \
    {                                                                                              \
        n, s, sizeof s - 1                                                                         \
    }

/* Heads real clients send: the tracker must follow them exactly (no refusal). */
static const struct tcase good[] = {
    C("plain upgrade", UP "\r\n"),
    C("browser", "GET /ws?access_token=eyJ.x.y HTTP/1.1\r\nHost: localhost:8080\r\n"
                 "Connection: Upgrade\r\nPragma: no-cache\r\nCache-Control: no-cache\r\n"
                 "User-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/120\r\nUpgrade: websocket\r\n"
                 "Origin: http://localhost:8080\r\nSec-WebSocket-Version: 13\r\n"
                 "Accept-Encoding: gzip, deflate, br\r\nAccept-Language: en-US,en;q=0.9\r\n"
                 "Cookie: a=b; c=d\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"),
    C("nginx", "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
               "Host: 127.0.0.1\r\nX-Real-IP: 10.0.0.1\r\nX-Forwarded-For: 10.0.0.1\r\n"
               "X-Forwarded-Proto: http\r\nAuthorization: Bearer abc.def.ghi\r\n" KEY "\r\n"),
    C("bare LF line ends", "GET /ws HTTP/1.1\nHost: x\nUpgrade: websocket\nConnection: Upgrade\n"
                           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\n"
                           "Sec-WebSocket-Version: 13\n\n"),
    C("mixed LF and CRLF", "GET /ws HTTP/1.1\r\nHost: x\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\n" KEY "\n"),
    C("lower-case names", "GET /ws HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\n"
                          "connection: upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                          "sec-websocket-version: 13\r\n\r\n"),
    C("upper-case names and value", "GET /ws HTTP/1.1\r\nHOST: x\r\nUPGRADE: WebSocket\r\n"
                                    "CONNECTION: UPGRADE\r\n"
                                    "SEC-WEBSOCKET-KEY: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                    "SEC-WEBSOCKET-VERSION: 13\r\n\r\n"),
    C("spaces before the value", "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade:    websocket\r\n"
                                 "Connection:Upgrade\r\n" KEY "\r\n"),
    C("pipelined plain heads first",
      "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n"
      "Connection: keep-alive\r\n\r\n" UP "\r\n"),
    C("escapes and query", "GET /w%73?access_token=a%2Bb&x=%C3%A9+y HTTP/1.1\r\nHost: x\r\n"
                           "Upgrade: websocket\r\nConnection: Upgrade\r\n" KEY "\r\n"),
    C("Content-Length: 0", UP "Content-Length: 0\r\n\r\n"),
    C("HTTP/1.0",
      "GET /ws HTTP/1.0\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" KEY "\r\n"),
    C("unknown headers",
      UP "X-Forwarded-Host: a\r\nDNT: 1\r\nSec-Fetch-Mode: websocket\r\n"
         "Upgrade-Insecure-Requests: 1\r\nHosts: y\r\nAccept-Charset: utf-8\r\n\r\n"),
    C("tab in a value", UP "X-Tab: a\tb\r\n\r\n"),
};

/* Hostile heads: each must be refused by the tracker (and lws must not have parsed the
 * unmasked frame unseen, which lwsdiff_check checks for every case). */
static const struct tcase bad[] = {
    /* the issue's example: an empty line "\r\r\n", which lws reads as the start of a header
     * name, then bytes that look like a frame header announcing ~2^63 bytes */
    C("issue 9: \\r\\r\\n line", UP "\r\r\n\x81\xff\x7f\xff\xff\xff\xff\xff\xff\xff"
                                    "X-Y: z\r\n\r\n"),
    C("\\r\\r\\n line, plain", UP "\r\r\nX-Y: z\r\n\r\n"),
    C("value line ending \\r\\r\\n", UP "X-A: b\r\r\n\r\n"),
    C("CR-only line ends", "GET /ws HTTP/1.1\rHost: x\rUpgrade: websocket\rConnection: Upgrade\r"
                           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\rSec-WebSocket-Version: 13"
                           "\r\r\nX: y\r\n\r\n"),
    C("CR in a value", UP "X-A: b\rc\r\n\r\n"),
    C("obs-fold", UP "X-A: a\r\n b: c\r\n\r\n"),
    C("obs-fold with tab", UP "X-A: a\r\n\tb\r\n\r\n"),
    C("name prefix of a known one", UP "Hos: x\r\n\r\nX-Z: 1\r\n\r\n"),
    C("one-letter name", UP "X: 1\r\n\r\nY-Z: 2\r\n\r\n"),
    C("name prefix of a method", UP "Get: 1\r\n\r\nA-B: c\r\n\r\n"),
    C("name lws reads as PUT", UP "Put: x\r\n\r\n"),
    C("name lws reads as PATCH", UP "Patchwork%0a: x\r\n\r\n"),
    C("name lws reads as DELETE", UP "Delete-Me: 1\r\n\r\n"),
    C("Upgrade: h2c, websocket", "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: h2c, websocket\r\n"
                                 "Connection: Upgrade, HTTP2-Settings\r\n"
                                 "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n" KEY "\r\n"),
    C("Upgrade: websocket, h2c", "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket, h2c\r\n"
                                 "Connection: Upgrade\r\n" KEY "\r\n"),
    C("Upgrade: h2c", "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\n"
                      "Connection: Upgrade, HTTP2-Settings\r\n"
                      "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"),
    C("two Upgrade headers", UP "Upgrade: websocket\r\n\r\n"),
    C("Upgrade after another",
      "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: foo\r\nUpgrade: websocket\r\n"
      "Connection: Upgrade\r\n" KEY "\r\n"),
    C("Upgrade with a tab", "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade:\twebsocket\r\n"
                            "Connection: Upgrade\r\n" KEY "\r\n"),
    C("Upgrade with a trailing space", "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket \r\n"
                                       "Connection: Upgrade\r\n" KEY "\r\n"),
    C("empty Upgrade", "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade:\r\n" KEY "\r\n"),
    C("space before colon", "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade : websocket\r\n" KEY "\r\n"),
    C("%0A in the target", "GET /ws%0a HTTP/1.1\r\n\r\nX-Y: z\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\n" KEY "\r\n"),
    C("%0D in the target", "GET /ws%0d HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\n" KEY "\r\n"),
    C("%00 in the target", "GET /ws%00 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\n" KEY "\r\n"),
    C("bad escape", "GET /ws%zz HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\n" KEY "\r\n"),
    C("body before the upgrade", UP "Content-Length: 4\r\n\r\nabcd"),
    C("Transfer-Encoding", UP "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    C("CONNECT", "CONNECT 127.0.0.1:80 HTTP/1.1\r\nHost: x\r\n\r\n"),
    C("lower-case method", "get /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\n" KEY "\r\n"),
    C("unknown method", "FOO /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\n" KEY "\r\n"),
    C("empty line first", "\r\n" UP "\r\n"),
    C("header before the request line", "Host: x\r\nGET /ws HTTP/1.1\r\nUpgrade: websocket\r\n"
                                        "Connection: Upgrade\r\n" KEY "\r\n"),
    C("second request line", UP "GET /x HTTP/1.1\r\n\r\n"),
    C("NUL in a value", UP "X-A: a\0b\r\n\r\n"),
    C("NUL ending Upgrade", "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\0x\r\n"
                            "Connection: Upgrade\r\n" KEY "\r\n"),
    C("bad version", "GET /ws HTTP/2.0\r\nHost: x\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\n" KEY "\r\n"),
    C("h2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
    C("frame bytes in a name", UP "\x81\x85: x\r\n\r\n"),
};

static void check(const char *name, const unsigned char *p, size_t n, bool strict, bool must_refuse)
{
    char why[256];
    bool refused = false;
    if (!lwsdiff_check(p, n, strict, &refused, why, sizeof why))
        fail_msg("%s: %s", name, why);
    if (must_refuse && !refused)
        fail_msg("%s: the tracker did not refuse it", name);
}

static void test_good_heads_followed_exactly(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        check(good[i].name, (const unsigned char *)good[i].bytes, good[i].len, true, false);
}

static void test_hostile_heads_refused(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        check(bad[i].name, (const unsigned char *)bad[i].bytes, bad[i].len, false, true);
}

/* Long lines: lws keeps at most max_http_header_data (8192) bytes of a head and fails the
 * connection beyond; the tracker must agree or refuse either way. */
static void test_long_lines(void **state)
{
    (void)state;
    size_t sizes[] = {100, 4000, 8100, 8300, 20000};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        char *h = malloc(sizeof UP + n + 64);
        assert_non_null(h);
        /* a long unknown value, then a long unknown name, then long spaces lws skips */
        int l = snprintf(h, sizeof UP + 16, "%sX-Long: ", UP);
        memset(h + l, 'a', n);
        l += (int)n;
        memcpy(h + l, "\r\n\r\n", 4);
        check("long value", (unsigned char *)h, (size_t)l + 4, n < 8000, false);
        l = snprintf(h, sizeof UP + 16, "%s", UP);
        memset(h + l, 'n', n);
        l += (int)n;
        memcpy(h + l, ": v\r\n\r\n", 7);
        check("long name", (unsigned char *)h, (size_t)l + 7, n < 4000, false);
        l = snprintf(h, sizeof UP + 16, "%sHost:", UP);
        memset(h + l, ' ', n);
        l += (int)n;
        memcpy(h + l, "x\r\n\r\n", 5);
        check("long spaces", (unsigned char *)h, (size_t)l + 5, false, false);
        free(h);
    }
}

/* The tracker's result does not depend on where reads split the stream: every cut of the
 * issue's example and of good heads into two reads gives what one read gives. */
static void test_every_split(void **state)
{
    (void)state;
    const struct tcase *cases[] = {&bad[0], &bad[1], &good[0], &good[8], &good[3]};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const unsigned char *p = (const unsigned char *)cases[k]->bytes;
        size_t n = cases[k]->len;
        struct chat_wsscan whole;
        chat_wsscan_reset(&whole);
        (void)chat_wsscan_feed(&whole, p, n);
        for (size_t cut = 0; cut <= n; cut++) {
            struct chat_wsscan s;
            chat_wsscan_reset(&s);
            (void)chat_wsscan_feed(&s, p, cut);
            (void)chat_wsscan_feed(&s, p + cut, n - cut);
            assert_int_equal(s.phase, whole.phase);
            assert_int_equal(s.heads, whole.heads);
            assert_int_equal(s.viol_at, whole.viol_at);
        }
    }
}

/* Deterministic mutations of good heads (bytes that steer parsers: CR, LF, SP, HTAB, ':',
 * '%', NUL, frame-like bytes), each compared with lws. */
static void test_mutations_agree(void **state)
{
    (void)state;
    static const unsigned char alphabet[] = {'\r', '\n', ' ', '\t', ':',  '%',  '0', 'a',
                                             'A',  '/',  '?', 0,    0x81, 0xff, 'x', '-'};
    uint32_t rnd = 0x9e3779b9u;
    unsigned refused = 0, total = 0;
    int rounds = getenv("PARLEY_ASAN") ? 150 : 600;
    for (int r = 0; r < rounds; r++) {
        const struct tcase *g = &good[(size_t)r % (sizeof good / sizeof good[0])];
        unsigned char buf[1024];
        size_t n = g->len < sizeof buf - 8 ? g->len : sizeof buf - 8;
        memcpy(buf, g->bytes, n);
        int edits = 1 + (int)(r % 3);
        for (int e = 0; e < edits; e++) {
            rnd = rnd * 1664525u + 1013904223u;
            size_t at = (rnd >> 8) % n;
            unsigned char c = alphabet[(rnd >> 4) % sizeof alphabet];
            if ((rnd >> 28) & 1) { /* insert */
                memmove(buf + at + 1, buf + at, n - at);
                n++;
            }
            buf[at] = c;
        }
        char why[256];
        bool ref = false;
        if (!lwsdiff_check(buf, n, false, &ref, why, sizeof why))
            fail_msg("mutation %d: %s", r, why);
        refused += ref;
        total++;
    }
    print_message("%u of %u mutated heads refused, the rest followed as lws does\n", refused,
                  total);
}

/* The issue's example is a real hole: lws 4.1.6 reads on past "\r\r\n", upgrades, and
 * hands the unmasked frame that follows to the application; a tracker that took the
 * "\r\r\n" for the end of the head (as the old one did) never sees that frame. */
static void test_issue_example_is_parsed_by_lws(void **state)
{
    (void)state;
    static const char ex[] = UP "\r\r\n\x81\xff\x7f\xff\xff\xff\xff\xff\xff\xff"
                                "X-Y: z\r\n\r\n\x81\x0fUNMASKED-MARKER";
    struct lwsdiff_obs o;
    assert_int_equal(lwsdiff_lws((const unsigned char *)ex, sizeof ex - 1, sizeof ex - 1, &o), 0);
    assert_true(o.established);
    assert_true(o.marker);
    struct chat_wsscan s;
    char why[128];
    assert_true(lwsdiff_scan((const unsigned char *)ex, sizeof ex - 1, &s, why, sizeof why));
    assert_int_equal(s.phase, 2);
    assert_string_equal(s.violation, "CR not followed by LF");
    assert_int_equal(s.viol_at, sizeof UP); /* the second CR of the "\r\r\n" line */
}

static int setup(void **state)
{
    (void)state;
    return lwsdiff_start();
}

static int teardown(void **state)
{
    (void)state;
    lwsdiff_stop();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_issue_example_is_parsed_by_lws),
        cmocka_unit_test(test_good_heads_followed_exactly),
        cmocka_unit_test(test_hostile_heads_refused),
        cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_every_split),
        cmocka_unit_test(test_mutations_agree),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
