/* Unit tests: Cookie header parsing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "cookie.h"

#include <stdlib.h>
#include <string.h>

static const char *find(const char *h, const char *name, size_t *vlen)
{
    return web_cookie_find(h, strlen(h), name, vlen);
}

static void expect(const char *h, const char *name, const char *want)
{
    size_t vl = 0;
    const char *v = find(h, name, &vl);
    if (!want) {
        assert_null(v);
        return;
    }
    assert_non_null(v);
    assert_int_equal(vl, strlen(want));
    assert_memory_equal(v, want, vl);
}

static void test_basic(void **state)
{
    (void)state;
    expect("sid=abc", "sid", "abc");
    expect("a=1; sid=abc; b=2", "sid", "abc");
    expect("a=1;sid=abc;b=2", "sid", "abc");
    expect("  sid = abc  ", "sid", "abc");
    expect("sid=\"abc\"", "sid", "abc");
    expect("sid=", "sid", "");
    expect("sid=abc; sid=def", "sid", "abc");
}

static void test_not_found(void **state)
{
    (void)state;
    expect("", "sid", NULL);
    expect("xsid=abc", "sid", NULL);
    expect("sidx=abc", "sid", NULL);
    expect("sid", "sid", NULL);
    expect(";;;", "sid", NULL);
    expect("a=sid=abc", "sid", NULL);
    expect("csrf=1", "sid", NULL);
}

static void test_length_respected(void **state)
{
    (void)state;
    const char h[] = "a=1; sid=abcdef";
    size_t vl;
    const char *v = web_cookie_find(h, 12, "sid", &vl); /* "a=1; sid=abc" */
    assert_non_null(v);
    assert_int_equal(vl, 3);
    assert_null(web_cookie_find(h, 6, "sid", &vl));
}

static void test_huge_header_ignored(void **state)
{
    (void)state;
    size_t n = WEB_COOKIE_HEADER_MAX + 10;
    char *h = malloc(n + 1);
    memset(h, 'x', n);
    memcpy(h, "sid=abc;", 8);
    h[n] = '\0';
    size_t vl;
    assert_null(web_cookie_find(h, n, "sid", &vl));
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_length_respected),
        cmocka_unit_test(test_huge_header_ignored),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
