/* The unmasked-frame detector that backs RFC 6455 §5.1 where lws 4.1.6 does not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

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

/* lws accepts bare LF line ends ("broken peer"): the head still ends at the empty line; a
 * header merely containing "upgrade" is not an upgrade. */
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

    static const char notup[] = "GET / HTTP/1.1\r\nX-Upgrade: websocket\r\nUpgrade: h2c\r\n\r\n"
                                "GET /healthz HTTP/1.1\r\n\r\n";
    chat_wsscan_reset(&s);
    assert_false(chat_wsscan_feed(&s, (const unsigned char *)notup, strlen(notup)));
    assert_int_equal(s.phase, 0);
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
