/* Ring of shared frames: sequence numbers, bounds, eviction of the oldest frame. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "chat.h"
#include "ring.h"

static struct chat_frame *mk(const char *s)
{
    return chat_frame_new(s, strlen(s), CHAT_FRAME_EVENT);
}

static void test_push_get_in_order(void **state)
{
    (void)state;
    struct chat_ring r;
    chat_ring_init(&r, 4);
    assert_int_equal(chat_ring_push(&r, mk("a")), 1);
    assert_int_equal(chat_ring_push(&r, mk("bb")), 2);
    assert_null(chat_ring_get(&r, 0));
    assert_null(chat_ring_get(&r, 3)); /* not yet pushed */
    const struct chat_frame *f = chat_ring_get(&r, 2);
    assert_non_null(f);
    assert_int_equal(f->len, 2);
    assert_memory_equal(f->payload, "bb", 2);
    chat_ring_free(&r);
}

static void test_full_and_drop_oldest(void **state)
{
    (void)state;
    struct chat_ring r;
    chat_ring_init(&r, 3);
    for (int i = 0; i < 3; i++)
        chat_ring_push(&r, mk("x"));
    assert_true(chat_ring_full(&r));
    assert_int_equal(chat_ring_oldest(&r), 1);
    chat_ring_drop_oldest(&r);
    assert_false(chat_ring_full(&r));
    assert_null(chat_ring_get(&r, 1)); /* gone: a tail still at 1 would have been culled */
    assert_int_equal(chat_ring_push(&r, mk("y")), 4);
    assert_memory_equal(chat_ring_get(&r, 4)->payload, "y", 1);
    assert_memory_equal(chat_ring_get(&r, 2)->payload, "x", 1);
    /* wrap around many times: memory stays at cap frames */
    for (int i = 0; i < 1000; i++) {
        chat_ring_drop_oldest(&r);
        chat_ring_push(&r, mk("z"));
    }
    assert_int_equal(r.count, 3);
    assert_int_equal(chat_ring_oldest(&r), r.head - 3);
    chat_ring_free(&r);
}

static void test_shared_frame_has_headroom(void **state)
{
    (void)state;
    struct chat_frame *f = mk("hello");
    /* lws_write needs LWS_PRE writable bytes right before the payload */
    assert_ptr_equal(f->payload - LWS_PRE, f->pre);
    free(f);
}

static void test_grow_keeps_frames_and_bytes(void **state)
{
    (void)state;
    struct chat_ring r;
    chat_ring_init(&r, 4);
    for (int i = 0; i < 4; i++)
        chat_ring_push(&r, mk("abc"));
    chat_ring_drop_oldest(&r); /* oldest is now 2, and the slots wrap */
    chat_ring_push(&r, mk("de"));
    assert_true(chat_ring_full(&r));
    assert_int_equal(r.bytes, 3 * 3 + 2);
    chat_ring_grow(&r, 16);
    assert_false(chat_ring_full(&r));
    assert_int_equal(chat_ring_oldest(&r), 2);
    for (uint64_t s = 2; s <= 4; s++)
        assert_memory_equal(chat_ring_get(&r, s)->payload, "abc", 3);
    assert_memory_equal(chat_ring_get(&r, 5)->payload, "de", 2);
    for (int i = 0; i < 12; i++)
        chat_ring_push(&r, mk("f"));
    assert_true(chat_ring_full(&r));
    assert_int_equal(chat_ring_get(&r, 17)->seq, 17);
    assert_int_equal(r.bytes, 3 * 3 + 2 + 12);
    chat_ring_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_push_get_in_order),
        cmocka_unit_test(test_full_and_drop_oldest),
        cmocka_unit_test(test_shared_frame_has_headroom),
        cmocka_unit_test(test_grow_keeps_frames_and_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
