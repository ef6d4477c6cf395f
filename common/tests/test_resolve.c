/* cm_resolve: literals pass through, a name is answered from the background thread, a name
 * with no answer never blocks the caller and keeps failing, bounds are enforced. */
#include "cm_resolve.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

static void test_literals_pass_through(void **state)
{
    (void)state;
    char out[CM_RESOLVE_ADDR_MAX];
    assert_true(cm_resolve_numeric("127.0.0.1", out, sizeof out));
    assert_string_equal(out, "127.0.0.1");
    assert_true(cm_resolve_numeric("::1", out, sizeof out));
    assert_string_equal(out, "::1");
    assert_false(cm_resolve_numeric("", out, sizeof out));
    assert_false(cm_resolve_numeric("127.0.0.1", out, 8)); /* too small a buffer */
    char big[CM_RESOLVE_NAME_MAX + 1];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_false(cm_resolve_numeric(big, out, sizeof out));
}

static void test_name_is_answered_by_the_thread(void **state)
{
    (void)state;
    char out[CM_RESOLVE_ADDR_MAX] = "";
    /* localhost is in /etc/hosts: the thread answers quickly; the caller only waits here,
     * through cm_resolve_wait, never in cm_resolve_numeric. */
    assert_true(cm_resolve_wait("localhost", out, sizeof out, 10000));
    assert_true(strcmp(out, "127.0.0.1") == 0 || strcmp(out, "::1") == 0);
    char again[CM_RESOLVE_ADDR_MAX] = "";
    assert_true(cm_resolve_numeric("localhost", again, sizeof again)); /* from the cache */
    assert_string_equal(again, out);
    cm_resolve_refresh("localhost");
    assert_true(cm_resolve_numeric("localhost", again, sizeof again)); /* kept meanwhile */
}

static void test_unknown_name_fails_without_an_answer(void **state)
{
    (void)state;
    char out[CM_RESOLVE_ADDR_MAX] = "unchanged";
    /* RFC 6761: .invalid never resolves. */
    assert_false(cm_resolve_numeric("parley-test.invalid", out, sizeof out));
    assert_false(cm_resolve_wait("parley-test.invalid", out, sizeof out, 200));
    assert_false(cm_resolve_numeric("parley-test.invalid", out, sizeof out));
}

static void test_table_is_bounded(void **state)
{
    (void)state;
    char out[CM_RESOLVE_ADDR_MAX], name[64];
    cm_resolve_stop(); /* forget the names of the other tests */
    for (int i = 0; i < CM_RESOLVE_MAX_HOSTS; i++) {
        snprintf(name, sizeof name, "h%d.parley-test.invalid", i);
        (void)cm_resolve_numeric(name, out, sizeof out);
    }
    /* one more name is refused, but literals still work */
    assert_false(cm_resolve_wait("localhost", out, sizeof out, 200));
    assert_true(cm_resolve_numeric("10.0.0.1", out, sizeof out));
    cm_resolve_stop();
    assert_true(cm_resolve_wait("localhost", out, sizeof out, 10000)); /* after stop: anew */
    cm_resolve_stop();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literals_pass_through),
        cmocka_unit_test(test_name_is_answered_by_the_thread),
        cmocka_unit_test(test_unknown_name_fails_without_an_answer),
        cmocka_unit_test(test_table_is_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
