/* Unit tests: urlencoded form parsing, including hostile input. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "form.h"

#include <stdio.h>
#include <string.h>

static int parse(const char *s, struct web_form *f)
{
    return web_form_parse(s, strlen(s), f);
}

static void test_basic(void **state)
{
    (void)state;
    struct web_form f;
    assert_int_equal(parse("email=a%40b.c&name=Ann+Lee&password=p%2Bq%25", &f), 0);
    assert_int_equal(f.n, 3);
    size_t len;
    assert_string_equal(web_form_get(&f, "email", &len), "a@b.c");
    assert_int_equal(len, 5);
    assert_string_equal(web_form_get(&f, "name", NULL), "Ann Lee");
    assert_string_equal(web_form_get(&f, "password", NULL), "p+q%");
    assert_null(web_form_get(&f, "missing", NULL));
    web_form_free(&f);
}

static void test_empty_and_odd_pairs(void **state)
{
    (void)state;
    struct web_form f;
    assert_int_equal(parse("", &f), 0);
    assert_int_equal(f.n, 0);
    web_form_free(&f);
    assert_int_equal(parse("a=1&&b=&c", &f), 0);
    assert_int_equal(f.n, 3);
    assert_string_equal(web_form_get(&f, "b", NULL), "");
    assert_string_equal(web_form_get(&f, "c", NULL), "");
    web_form_free(&f);
    assert_int_equal(parse("&&&", &f), 0);
    assert_int_equal(f.n, 0);
    web_form_free(&f);
    /* '=' inside a value is kept */
    assert_int_equal(parse("t=a=b", &f), 0);
    assert_string_equal(web_form_get(&f, "t", NULL), "a=b");
    web_form_free(&f);
}

static void test_malformed(void **state)
{
    (void)state;
    struct web_form f;
    const char *bad[] = {
        "a=%",      "a=%4",    "a=%zz", "a=%4g",    "a=%00",       "a%00=1",
        "=value",   "a=1&a=2", "a=%ff", "a=%c3%28", "a=%ed%a0%80", /* surrogate */
        "a=%e2%82", "%=1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(parse(bad[i], &f), -1);
        assert_int_equal(f.n, 0);
        assert_null(f.mem);
        web_form_free(&f);
    }
}

static void test_limits(void **state)
{
    (void)state;
    struct web_form f;
    char buf[1024] = "";
    for (int i = 0; i < WEB_FORM_MAX_FIELDS; i++) {
        char p[16];
        snprintf(p, sizeof p, "%sf%d=1", i ? "&" : "", i);
        strcat(buf, p);
    }
    assert_int_equal(parse(buf, &f), 0);
    assert_int_equal(f.n, WEB_FORM_MAX_FIELDS);
    web_form_free(&f);
    strcat(buf, "&one=more");
    assert_int_equal(parse(buf, &f), -1);
    web_form_free(&f);
    char name[WEB_FORM_NAME_MAX + 8];
    memset(name, 'n', sizeof name);
    name[WEB_FORM_NAME_MAX + 1] = '\0';
    snprintf(buf, sizeof buf, "%s=1", name);
    assert_int_equal(parse(buf, &f), -1);
    web_form_free(&f);
}

static void test_not_nul_terminated(void **state)
{
    (void)state;
    /* The parser must honour the length: the bytes after it are not part of the form. */
    const char s[] = "a=1&b=2%4";
    struct web_form f;
    assert_int_equal(web_form_parse(s, 7, &f), 0);
    assert_string_equal(web_form_get(&f, "b", NULL), "2");
    web_form_free(&f);
    assert_int_equal(web_form_parse(s, 8, &f), -1);
    web_form_free(&f);
}

static void test_utf8_values(void **state)
{
    (void)state;
    struct web_form f;
    assert_int_equal(parse("name=J%C3%BCrgen+%E2%9C%93", &f), 0);
    assert_string_equal(web_form_get(&f, "name", NULL), "J\xc3\xbcrgen \xe2\x9c\x93");
    web_form_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_empty_and_odd_pairs),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_not_nul_terminated),
        cmocka_unit_test(test_utf8_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
