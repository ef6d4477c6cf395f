/* WebSocket frame headers (RFC 6455 §5.2): length encodings at their boundaries, the 64-bit
 * length's top bit, control frame rules, masks, and a round trip through encode/decode. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "wsframe.h"

static void roundtrip(uint64_t len, const uint8_t *mask, size_t want_hlen)
{
    unsigned char b[CHAT_WS_HEADER_MAX];
    size_t n = chat_wsframe_encode(b, true, CHAT_WS_OP_TEXT, len, mask);
    assert_int_equal(n, want_hlen);
    assert_int_equal(chat_wsframe_header_len(len, mask != NULL), want_hlen);
    struct chat_wsframe_hdr h;
    /* every shorter prefix asks for more bytes */
    for (size_t k = 0; k < n; k++)
        assert_int_equal(chat_wsframe_decode(b, k, &h), 0);
    assert_int_equal(chat_wsframe_decode(b, n, &h), (int)n);
    assert_true(h.fin);
    assert_int_equal(h.opcode, CHAT_WS_OP_TEXT);
    assert_int_equal(h.rsv, 0);
    assert_int_equal(h.payload_len, len);
    assert_int_equal(h.header_len, n);
    assert_int_equal(h.masked, mask != NULL);
    if (mask)
        assert_memory_equal(h.mask, mask, 4);
}

static void test_length_boundaries(void **state)
{
    (void)state;
    static const uint8_t m[4] = {1, 2, 3, 4};
    roundtrip(0, NULL, 2);
    roundtrip(125, NULL, 2);
    roundtrip(126, NULL, 4);
    roundtrip(65535, NULL, 4);
    roundtrip(65536, NULL, 10);
    roundtrip(CHAT_WS_LEN_MAX, NULL, 10);
    roundtrip(125, m, 6);
    roundtrip(126, m, 8);
    roundtrip(65535, m, 8);
    roundtrip(65536, m, 14);
}

static void test_exact_bytes(void **state)
{
    (void)state;
    unsigned char b[CHAT_WS_HEADER_MAX];
    assert_int_equal(chat_wsframe_encode(b, true, CHAT_WS_OP_TEXT, 125, NULL), 2);
    assert_memory_equal(b, "\x81\x7d", 2);
    assert_int_equal(chat_wsframe_encode(b, true, CHAT_WS_OP_TEXT, 126, NULL), 4);
    assert_memory_equal(b, "\x81\x7e\x00\x7e", 4);
    assert_int_equal(chat_wsframe_encode(b, true, CHAT_WS_OP_TEXT, 65535, NULL), 4);
    assert_memory_equal(b, "\x81\x7e\xff\xff", 4);
    assert_int_equal(chat_wsframe_encode(b, false, CHAT_WS_OP_CONT, 65536, NULL), 10);
    assert_memory_equal(b, "\x00\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10);
    static const uint8_t m[4] = {0xde, 0xad, 0xbe, 0xef};
    assert_int_equal(chat_wsframe_encode(b, true, CHAT_WS_OP_PING, 0, m), 6);
    assert_memory_equal(b, "\x89\x80\xde\xad\xbe\xef", 6);
}

static void test_top_bit_of_64bit_length(void **state)
{
    (void)state;
    unsigned char b[CHAT_WS_HEADER_MAX];
    assert_int_equal(chat_wsframe_encode(b, true, CHAT_WS_OP_TEXT, CHAT_WS_LEN_MAX + 1, NULL), 0);
    static const unsigned char bad[] = {0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4};
    struct chat_wsframe_hdr h;
    assert_int_equal(chat_wsframe_decode(bad, sizeof bad, &h), -1);
    /* already at the first length byte: no need to wait for the rest */
    assert_int_equal(chat_wsframe_decode(bad, 3, &h), 0); /* 10 bytes needed before judging */
}

static void test_control_frames(void **state)
{
    (void)state;
    struct chat_wsframe_hdr h;
    static const unsigned char ok[] = {0x89, 0xfd, 1, 2, 3, 4};          /* ping, 125 bytes */
    static const unsigned char big[] = {0x89, 0xfe, 0, 126, 1, 2, 3, 4}; /* ping, 126 */
    static const unsigned char frag[] = {0x08, 0x80, 1, 2, 3, 4};        /* close without FIN */
    assert_int_equal(chat_wsframe_decode(ok, sizeof ok, &h), 6);
    assert_int_equal(h.opcode, CHAT_WS_OP_PING);
    assert_int_equal(h.payload_len, 125);
    assert_int_equal(chat_wsframe_decode(big, sizeof big, &h), -1);
    assert_int_equal(chat_wsframe_decode(frag, sizeof frag, &h), -1);
    static const unsigned char rsv[] = {0xf1, 0x00};
    assert_int_equal(chat_wsframe_decode(rsv, sizeof rsv, &h), 2);
    assert_int_equal(h.rsv, 7);
    assert_false(h.masked);
}

static void test_mask_is_its_own_inverse_at_any_offset(void **state)
{
    (void)state;
    static const uint8_t m[4] = {0x37, 0xfa, 0x21, 0x3d}; /* RFC 6455 §5.7 example */
    unsigned char hello[] = "Hello";
    chat_wsframe_mask(hello, 5, m, 0);
    assert_memory_equal(hello, "\x7f\x9f\x4d\x51\x58", 5);
    /* masking in two pieces (a payload split across reads) equals masking at once */
    unsigned char a[] = "Hello", b2[] = "Hello";
    chat_wsframe_mask(a, 2, m, 0);
    chat_wsframe_mask(a + 2, 3, m, 2);
    chat_wsframe_mask(b2, 5, m, 0);
    assert_memory_equal(a, b2, 5);
    chat_wsframe_mask(a, 5, m, 0);
    assert_memory_equal(a, "Hello", 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_length_boundaries),
        cmocka_unit_test(test_exact_bytes),
        cmocka_unit_test(test_top_bit_of_64bit_length),
        cmocka_unit_test(test_control_frames),
        cmocka_unit_test(test_mask_is_its_own_inverse_at_any_offset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
