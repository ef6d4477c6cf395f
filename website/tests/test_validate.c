/* Unit tests: validation of emails, names, passwords, room fields. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "validate.h"

#include <string.h>

static const char *email(const char *s, char *out)
{
    return web_valid_email(s, strlen(s), out);
}

static void test_email(void **state)
{
    (void)state;
    char out[WEB_EMAIL_MAX + 1];
    assert_null(email("Ann.Lee+x@Example.COM", out));
    assert_string_equal(out, "ann.lee+x@example.com");
    assert_null(email("a@b.co", out));
    const char *bad[] = {"",          "plain",     "@example.com", "a@",
                         "a@b",       "a@@b.com",  "a@b@c.com",    "a b@c.com",
                         "a@b..com",  "a@.b.com",  "a@b.com.",     "<a>@b.com",
                         "a@b.com\n", "a\"@b.com", "a@-b.com",     "\xc3\xa9@b.com"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_non_null(email(bad[i], out));
    char longer[300];
    memset(longer, 'a', sizeof longer);
    memcpy(longer + 250, "@b.com", 7);
    assert_non_null(email(longer, out)); /* 256 bytes */
    char local65[80];
    memset(local65, 'a', 65);
    strcpy(local65 + 65, "@b.com");
    assert_non_null(email(local65, out));
}

static void test_name(void **state)
{
    (void)state;
    assert_null(web_valid_name("Ann", 3));
    assert_null(web_valid_name("J\xc3\xbcrgen", 7));
    assert_null(web_valid_name("<script>alert(1)</script>", 25)); /* allowed, shown escaped */
    assert_non_null(web_valid_name("", 0));
    assert_non_null(web_valid_name("a\nb", 3));
    assert_non_null(web_valid_name("a\x7f", 2));
    assert_non_null(web_valid_name("a\xc2\x85", 3)); /* C1 NEL */
    assert_non_null(web_valid_name("\xff", 1));
    char s[65 * 2];
    memset(s, 'x', 64);
    assert_null(web_valid_name(s, 64));
    assert_non_null(web_valid_name(s, 65));
    /* 64 two-byte characters are fine: the limit counts characters, not bytes */
    for (int i = 0; i < 64; i++)
        memcpy(s + 2 * i, "\xc3\xa9", 2);
    assert_null(web_valid_name(s, 128));
}

static void test_password(void **state)
{
    (void)state;
    assert_non_null(web_valid_password("1234567", 7));
    assert_null(web_valid_password("12345678", 8));
    static char big[WEB_PASSWORD_MAX + 1];
    memset(big, 'p', sizeof big);
    assert_null(web_valid_password(big, WEB_PASSWORD_MAX));
    assert_non_null(web_valid_password(big, WEB_PASSWORD_MAX + 1));
}

static void test_room(void **state)
{
    (void)state;
    assert_null(web_valid_room_name("abc", 3));
    assert_null(web_valid_room_name("room-42", 7));
    const char *bad[] = {"",     "ab",         "-abc",
                         "Abc",  "a_b",        "a b",
                         "abc/", "r\xc3\xa9s", "abcdefghijklmnopqrstuvwxyz0123456"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_non_null(web_valid_room_name(bad[i], strlen(bad[i])));
    assert_null(web_valid_title("Robert'); DROP TABLE rooms;--", 29));
    assert_non_null(web_valid_title("", 0));
    assert_non_null(web_valid_title("a\tb", 3));
    char t[1002];
    memset(t, 't', sizeof t);
    assert_null(web_valid_title(t, 100));
    assert_non_null(web_valid_title(t, 101));
    assert_null(web_valid_description("", 0));
    assert_null(web_valid_description("line one\r\nline two\ttab", 22));
    assert_null(web_valid_description(t, 1000));
    assert_non_null(web_valid_description(t, 1001));
    assert_non_null(web_valid_description("a\x01", 2));
}

static void test_next(void **state)
{
    (void)state;
    const char *good[] = {"/rooms", "/rooms/abc", "/rooms/room-42",
                          "/rooms/abcdefghijklmnopqrstuvwxyz012345"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(web_valid_next(good[i], strlen(good[i])));
    const char *bad[] = {"",
                         "/",
                         "//evil.example",
                         "https://evil.example/rooms/abc",
                         "/\\evil.example",
                         "\\evil",
                         "/rooms/",
                         "/rooms//evil.example",
                         "/rooms/../admin",
                         "/rooms/abc/",
                         "/rooms/abc?x=1",
                         "/rooms/abc#x",
                         "/rooms/ABC",
                         "/rooms/ab",
                         "/rooms/%61bc",
                         "/roomsabc",
                         "/rooms/abc\r\nSet-Cookie: a=b",
                         "/admin",
                         "javascript:alert(1)",
                         "/rooms/abcdefghijklmnopqrstuvwxyz0123456"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(web_valid_next(bad[i], strlen(bad[i])));
    /* a NUL inside: the length counts, not the C string */
    assert_false(web_valid_next("/rooms/abc\0/x", 13));
    assert_false(web_valid_next(NULL, 0));
}

static void test_trim(void **state)
{
    (void)state;
    const char *s = "  \t hi there \r\n";
    size_t n = strlen(s);
    web_trim(&s, &n);
    assert_int_equal(n, 8);
    assert_memory_equal(s, "hi there", 8);
    s = "   ";
    n = 3;
    web_trim(&s, &n);
    assert_int_equal(n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_email), cmocka_unit_test(test_name), cmocka_unit_test(test_password),
        cmocka_unit_test(test_room),  cmocka_unit_test(test_next), cmocka_unit_test(test_trim),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
