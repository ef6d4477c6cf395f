/* The frame guard: its tracker (RFC 6455 §5.1 where lws 4.1.6 does not enforce it, and
 * request heads as lws parses them) and its registry of accepted sockets. */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "rawguard.h"

static const char head[] = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n";

static void test_masked_frames_pass(void **state)
{
    (void)state;
    struct chat_wsscan s;
    chat_wsscan_reset(&s);
    assert_false(chat_wsscan_feed(&s, (const unsigned char *)head, strlen(head)));
    /* masked text "hi", then a masked 300-byte frame (16-bit length) fed byte by byte */
    unsigned char f1[] = {0x81, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2};
    assert_false(chat_wsscan_feed(&s, f1, sizeof f1));
    unsigned char f2[4 + 4 + 300];
    memset(f2, 0, sizeof f2);
    f2[0] = 0x81;
    f2[1] = 0x80 | 126;
    f2[2] = 300 >> 8;
    f2[3] = 300 & 0xff;
    for (size_t i = 0; i < sizeof f2; i++)
        assert_false(chat_wsscan_feed(&s, &f2[i], 1));
    /* masked empty ping */
    unsigned char f3[] = {0x89, 0x80, 0, 0, 0, 0};
    assert_false(chat_wsscan_feed(&s, f3, sizeof f3));
}

static void test_unmasked_frame_detected(void **state)
{
    (void)state;
    struct chat_wsscan s;
    chat_wsscan_reset(&s);
    unsigned char f1[] = {0x81, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2};
    unsigned char bad[] = {0x81, 0x02, 'h', 'i'};
    /* handshake and frames in one read, split mid-header */
    unsigned char all[sizeof head - 1 + sizeof f1 + sizeof bad];
    memcpy(all, head, sizeof head - 1);
    memcpy(all + sizeof head - 1, f1, sizeof f1);
    memcpy(all + sizeof head - 1 + sizeof f1, bad, sizeof bad);
    size_t cut = sizeof head - 1 + sizeof f1 + 1;
    assert_false(chat_wsscan_feed(&s, all, cut));
    assert_true(chat_wsscan_feed(&s, all + cut, sizeof all - cut));
    assert_true(chat_wsscan_feed(&s, f1, sizeof f1)); /* sticky */
}

static void test_payload_that_looks_like_header(void **state)
{
    (void)state;
    struct chat_wsscan s;
    chat_wsscan_reset(&s);
    assert_false(chat_wsscan_feed(&s, (const unsigned char *)head, strlen(head)));
    /* payload bytes 0x81 0x02 must not be mistaken for an unmasked header */
    unsigned char f[] = {0x81, 0x84, 0, 0, 0, 0, 0x81, 0x02, 'h', 'i'};
    assert_false(chat_wsscan_feed(&s, f, sizeof f));
}

static void test_oversized_control_frame_detected(void **state)
{
    (void)state;
    struct chat_wsscan s;
    chat_wsscan_reset(&s);
    assert_false(chat_wsscan_feed(&s, (const unsigned char *)head, strlen(head)));
    unsigned char ping[] = {0x89, 0x80 | 126, 0, 126};
    assert_true(chat_wsscan_feed(&s, ping, sizeof ping));
    assert_string_equal(s.violation, "control frame over 125 bytes");

    chat_wsscan_reset(&s);
    assert_false(chat_wsscan_feed(&s, (const unsigned char *)head, strlen(head)));
    unsigned char huge[] = {0x81, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1};
    assert_true(chat_wsscan_feed(&s, huge, sizeof huge));
    assert_string_equal(s.violation, "frame length with bit 63 set");
}

/* Plain requests on a keep-alive connection, pipelined in one read with the upgrade and an
 * unmasked frame: the frame is still found (the scanner used to take the second request
 * head for frames and stop, so the unmasked frame went through). */
static void test_heads_before_the_upgrade(void **state)
{
    (void)state;
    static const char plain[] =
        "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n";
    struct chat_wsscan s;
    chat_wsscan_reset(&s);
    assert_false(chat_wsscan_feed(&s, (const unsigned char *)plain, strlen(plain)));
    assert_int_equal(s.phase, 0);
    static const char up[] = "GET /ws?access_token=x HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                             "UPGRADE:   WebSocket\r\nSec-WebSocket-Version: 13\r\n\r\n";
    unsigned char bad[] = {0x81, 0x02, 'h', 'i'};
    unsigned char all[sizeof up - 1 + sizeof bad];
    memcpy(all, up, sizeof up - 1);
    memcpy(all + sizeof up - 1, bad, sizeof bad);
    assert_true(chat_wsscan_feed(&s, all, sizeof all));
    assert_string_equal(s.violation, "unmasked client frame");

    /* all of it in one read, byte by byte too */
    chat_wsscan_reset(&s);
    for (size_t i = 0; i < strlen(plain); i++)
        assert_false(chat_wsscan_feed(&s, (const unsigned char *)plain + i, 1));
    bool hit = false;
    for (size_t i = 0; i < sizeof all; i++)
        hit = chat_wsscan_feed(&s, all + i, 1);
    assert_true(hit);
}

/* lws accepts bare LF line ends ("broken peer"): the head still ends at the empty line. */
static void test_head_line_ends(void **state)
{
    (void)state;
    static const char lf[] = "GET /ws HTTP/1.1\nHost: x\nUpgrade: websocket\n\n";
    struct chat_wsscan s;
    chat_wsscan_reset(&s);
    assert_false(chat_wsscan_feed(&s, (const unsigned char *)lf, strlen(lf)));
    assert_int_equal(s.phase, 1);
    unsigned char bad[] = {0x81, 0x02, 'h', 'i'};
    assert_true(chat_wsscan_feed(&s, bad, sizeof bad));
}

/* Heads lws would read differently from the way they look are refused (fail closed); the
 * differential test (test_rawguard_lws.c) checks each against the real lws. */
static void test_hostile_heads_refused(void **state)
{
    (void)state;
    static const struct {
        const char *head, *why;
    } cases[] = {
        {"GET / HTTP/1.1\r\n\r\r\n", "CR not followed by LF"},
        {"GET / HTTP/1.1\r\nA-B: c\rd\r\n\r\n", "CR not followed by LF"},
        {"GET / HTTP/1.1\r\nA-B: c\r\n d\r\n\r\n", "folded header line (obs-fold)"},
        {"GET / HTTP/1.1\r\nHos: x\r\n\r\n", "header name is a prefix of one lws knows"},
        {"GET / HTTP/1.1\r\nPutty: x\r\n\r\n", "header name lws reads as a method"},
        {"GET / HTTP/1.1\r\nX-Upgrade: websocket\r\nUpgrade: h2c\r\n\r\n",
         "Upgrade other than websocket"},
        {"GET / HTTP/1.1\r\nUpgrade: h2c, websocket\r\n\r\n", "Upgrade other than websocket"},
        {"GET / HTTP/1.1\r\nUpgrade: websocket\r\nUpgrade: websocket\r\n\r\n",
         "two Upgrade headers"},
        {"GET /%0a HTTP/1.1\r\n\r\n", "control byte %-escaped in the request target"},
        {"GET / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
         "request body (Content-Length) before the upgrade"},
        {"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
         "Transfer-Encoding in a request head"},
        {"CONNECT x:1 HTTP/1.1\r\n\r\n", "CONNECT (lws switches to a raw socket)"},
        {"BREW / HTTP/1.1\r\n\r\n", "unknown method"},
        {"GET / HTTP/1.1\r\nAb-C: b\0c\r\n\r\n", "control byte in a header value"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct chat_wsscan s;
        chat_wsscan_reset(&s);
        /* strlen stops at the NUL of the last case: feed through its end explicitly */
        size_t n = strlen(cases[i].head);
        if (i == sizeof cases / sizeof cases[0] - 1)
            n = sizeof "GET / HTTP/1.1\r\nAb-C: b\0c\r\n\r\n" - 1;
        assert_true(chat_wsscan_feed(&s, (const unsigned char *)cases[i].head, n));
        assert_string_equal(s.violation, cases[i].why);
    }
}

/* Frame headers the tracker cannot reconcile are violations, never skipped. */
static void test_unreconcilable_frames(void **state)
{
    (void)state;
    static const struct {
        unsigned char b[10];
        size_t n;
        const char *why;
    } cases[] = {
        {{0xc1, 0x80}, 2, "RSV bits set (no extension negotiated)"},
        {{0x83, 0x80}, 2, "reserved opcode"},
        {{0x8b, 0x80}, 2, "reserved opcode"},
        {{0x09, 0x80}, 2, "fragmented control frame"},
        {{0x82, 0xff, 0, 0, 0, 0, 0x01, 0, 0, 1}, 10, "frame longer than CHAT_WSSCAN_MAX_FRAME"},
        {{0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
         10,
         "frame longer than CHAT_WSSCAN_MAX_FRAME"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct chat_wsscan s;
        chat_wsscan_reset(&s);
        assert_false(chat_wsscan_feed(&s, (const unsigned char *)head, strlen(head)));
        assert_true(chat_wsscan_feed(&s, cases[i].b, cases[i].n));
        assert_string_equal(s.violation, cases[i].why);
    }
    /* a 64 KiB frame (the largest message) is fine */
    struct chat_wsscan s;
    chat_wsscan_reset(&s);
    assert_false(chat_wsscan_feed(&s, (const unsigned char *)head, strlen(head)));
    unsigned char big[] = {0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4};
    assert_false(chat_wsscan_feed(&s, big, sizeof big));
    assert_int_equal(s.remain, 65536);
}

/* ---- the registry: only sockets lws accepted, on the lws thread, are judged ---------- */

/* An upgrade head with an unmasked frame glued to it: a violation on a guarded socket. */
static const unsigned char evil[] = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n"
                                    "\x81\x05hello";

static void expect_untouched(int rfd, int wfd)
{
    unsigned char buf[256];
    assert_int_equal(send(wfd, evil, sizeof evil - 1, 0), (ssize_t)(sizeof evil - 1));
    ssize_t r = recv(rfd, buf, sizeof buf, 0);
    assert_int_equal(r, (ssize_t)(sizeof evil - 1));
    assert_memory_equal(buf, evil, sizeof evil - 1);
    assert_false(chat_rawguard_registered(rfd));
}

static void test_registered_socket_is_judged(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    chat_rawguard_reset(sv[0]);
    assert_true(chat_rawguard_registered(sv[0]));
    unsigned char buf[256];
    assert_int_equal(send(sv[1], evil, sizeof evil - 1, 0), (ssize_t)(sizeof evil - 1));
    /* lws gets the head, never the unmasked frame: then the read fails */
    size_t headlen = sizeof evil - 1 - 7;
    assert_int_equal(recv(sv[0], buf, sizeof buf, 0), (ssize_t)headlen);
    assert_memory_equal(buf, evil, headlen);
    assert_true(chat_rawguard_violated(sv[0]));
    /* and the input side is shut, so lws reads again at once and ends the connection */
    (void)send(sv[1], "more", 4, MSG_NOSIGNAL);
    assert_true(recv(sv[0], buf, sizeof buf, 0) <= 0);
    close(sv[0]);
    close(sv[1]);
    assert_false(chat_rawguard_registered(sv[0]));
    assert_true(chat_rawguard_violated(sv[0])); /* still readable for the teardown's count */
}

static void test_unregistered_socket_passes(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    expect_untouched(sv[0], sv[1]);
    close(sv[0]);
    close(sv[1]);
}

/* An accepted socket is registered, closed, and its number goes to a client socket (as a
 * Redis connection would get it): that socket is not judged. */
static void test_recycled_fd_number_passes(void **state)
{
    (void)state;
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(ls >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(ls, 4), 0);
    socklen_t al = sizeof a;
    assert_int_equal(getsockname(ls, (struct sockaddr *)&a, &al), 0);

    int c1 = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(c1, (struct sockaddr *)&a, sizeof a), 0);
    int acc = accept(ls, NULL, NULL);
    assert_true(acc >= 0);
    chat_rawguard_reset(acc); /* what http.c does at NEW_CLIENT_INSTANTIATED */
    close(acc);

    int client = socket(AF_INET, SOCK_STREAM, 0); /* lowest free number: acc's */
    assert_int_equal(client, acc);
    close(c1);
    assert_int_equal(connect(client, (struct sockaddr *)&a, sizeof a), 0);
    int peer = accept(ls, NULL, NULL);
    assert_true(peer >= 0);
    assert_false(chat_rawguard_registered(client));
    expect_untouched(client, peer);
    assert_false(chat_rawguard_violated(client)); /* its bytes were not even scanned */
    close(client);
    close(peer);
    close(ls);
}

struct other {
    int fd_registered; /* a number registered on the lws thread */
    int ok;
};

static void *other_thread(void *arg)
{
    struct other *o = arg;
    int sv[2];
    unsigned char buf[256];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return NULL;
    /* its own socket */
    if (send(sv[1], evil, sizeof evil - 1, 0) == (ssize_t)(sizeof evil - 1) &&
        recv(sv[0], buf, sizeof buf, 0) == (ssize_t)(sizeof evil - 1) &&
        !memcmp(buf, evil, sizeof evil - 1))
        o->ok++;
    close(sv[0]);
    close(sv[1]);
    /* even the registered number, read from this thread, is not judged (nor unregistered
     * by a close here) */
    if (recv(o->fd_registered, buf, sizeof buf, 0) == (ssize_t)(sizeof evil - 1) &&
        !memcmp(buf, evil, sizeof evil - 1))
        o->ok++;
    return NULL;
}

static void test_other_threads_pass(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    chat_rawguard_reset(sv[0]);
    assert_int_equal(send(sv[1], evil, sizeof evil - 1, 0), (ssize_t)(sizeof evil - 1));
    struct other o = {sv[0], 0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, other_thread, &o), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(o.ok, 2);
    assert_false(chat_rawguard_violated(sv[0]));
    assert_true(chat_rawguard_registered(sv[0]));
    close(sv[0]);
    close(sv[1]);
}

/* A socket whose number the registry cannot hold is refused, not let through. */
static void test_fd_beyond_the_registry_is_refused(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int big = dup2(sv[0], 1500); /* setup() sized the registry for 1024 */
    assert_int_equal(big, 1500);
    chat_rawguard_reset(big);
    assert_false(chat_rawguard_registered(big));
    assert_true(chat_rawguard_violated(big));
    close(big);
    close(sv[0]);
    close(sv[1]);
}

static int setup(void **state)
{
    (void)state;
    chat_rawguard_init(1024); /* aborts if recv() is not interposed */
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    chat_rawguard_free();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heads_before_the_upgrade),
        cmocka_unit_test(test_head_line_ends),
        cmocka_unit_test(test_masked_frames_pass),
        cmocka_unit_test(test_unmasked_frame_detected),
        cmocka_unit_test(test_payload_that_looks_like_header),
        cmocka_unit_test(test_oversized_control_frame_detected),
        cmocka_unit_test(test_hostile_heads_refused),
        cmocka_unit_test(test_unreconcilable_frames),
        cmocka_unit_test(test_registered_socket_is_judged),
        cmocka_unit_test(test_unregistered_socket_passes),
        cmocka_unit_test(test_recycled_fd_number_passes),
        cmocka_unit_test(test_other_threads_pass),
        cmocka_unit_test(test_fd_beyond_the_registry_is_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
