/* Token bucket: burst, refill rate, cap, clock going backwards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ratelimit.h"

static void test_burst_then_refill(void **state)
{
    (void)state;
    struct chat_bucket b;
    chat_bucket_init(&b, 1000, 3);
    assert_true(chat_bucket_take(&b, 1000, 2, 3));
    assert_true(chat_bucket_take(&b, 1000, 2, 3));
    assert_true(chat_bucket_take(&b, 1000, 2, 3));
    assert_false(chat_bucket_take(&b, 1000, 2, 3)); /* burst spent */
    assert_false(chat_bucket_take(&b, 1499, 2, 3)); /* 2/s: 0.998 token after 499 ms */
    assert_true(chat_bucket_take(&b, 1500, 2, 3));  /* one token after 500 ms */
    assert_false(chat_bucket_take(&b, 1500, 2, 3));
}

static void test_capped_at_burst(void **state)
{
    (void)state;
    struct chat_bucket b;
    chat_bucket_init(&b, 0, 2);
    assert_true(chat_bucket_take(&b, 0, 1, 2));
    assert_true(chat_bucket_take(&b, 0, 1, 2));
    /* a year idle still gives only burst tokens, and no overflow */
    int64_t later = (int64_t)365 * 24 * 3600 * 1000;
    assert_true(chat_bucket_take(&b, later, 100000, 2));
    assert_true(chat_bucket_take(&b, later, 100000, 2));
    assert_false(chat_bucket_take(&b, later, 100000, 2));
}

static void test_clock_backwards(void **state)
{
    (void)state;
    struct chat_bucket b;
    chat_bucket_init(&b, 5000, 1);
    assert_true(chat_bucket_take(&b, 5000, 1, 1));
    assert_false(chat_bucket_take(&b, 1000, 1, 1)); /* earlier time refills nothing */
    assert_true(chat_bucket_take(&b, 6000, 1, 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_refill),
        cmocka_unit_test(test_capped_at_burst),
        cmocka_unit_test(test_clock_backwards),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
