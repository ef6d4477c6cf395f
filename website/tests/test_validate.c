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

static char name_out[WEB_NAME_BYTES + 1];

static const char *nm(const char *s)
{
    return web_valid_name(s, strlen(s), name_out);
}

/* Refused, and the message says which rule (a fragment of it). */
static void refused(const char *s, const char *why)
{
    const char *m = nm(s);
    if (!m)
        fail_msg("accepted: %s", s);
    if (!strstr(m, why))
        fail_msg("'%s' refused with '%s', expected '%s'", s, m, why);
    assert_string_equal(name_out, "");
}

static void test_name(void **state)
{
    (void)state;
    assert_null(nm("Ann"));
    assert_string_equal(name_out, "Ann");
    assert_null(nm("J\xc3\xbcrgen"));
    assert_null(nm("<script>alert(1)</script>"));            /* allowed, shown escaped */
    assert_null(nm("\xe6\x9d\x8e\xe5\xb0\x8f\xe9\xbe\x99")); /* CJK */
    assert_null(nm("\xd8\xb9\xd9\x84\xd9\x8a"));             /* Arabic: RTL letters are fine */
    assert_null(nm("\xe2\x9d\xa4\xef\xb8\x8f Ann"));         /* heart + VS16 */
    assert_non_null(nm(""));
    assert_non_null(nm("   "));
    refused("a\nb", "control");
    refused("a\tb", "control");
    refused("a\x7f", "control");
    refused("a\xc2\x85", "control"); /* C1 NEL */
    assert_non_null(nm("\xff"));
    char s[65 * 2];
    memset(s, 'x', 64);
    assert_null(web_valid_name(s, 64, name_out));
    assert_non_null(web_valid_name(s, 65, name_out));
    /* 64 two-byte characters are fine: the limit counts characters, not bytes */
    for (int i = 0; i < 64; i++)
        memcpy(s + 2 * i, "\xc3\xa9", 2);
    assert_null(web_valid_name(s, 128, name_out));
}

/* The issue's example and every kind of invisible or reordering character (Cf). */
static void test_name_format_chars(void **state)
{
    (void)state;
    static const char *const cf[] = {
        "Dev\xe2\x80\xae", /* U+202E RIGHT-TO-LEFT OVERRIDE (the issue's example) */
        "Dev\xe2\x80\xad", /* U+202D LRO */
        "\xe2\x80\xaa"
        "Dev",            /* U+202A LRE */
        "\xe2\x80\xabx",  /* U+202B RLE */
        "x\xe2\x80\xac",  /* U+202C PDF */
        "x\xe2\x81\xa6y", /* U+2066 LRI */
        "x\xe2\x81\xa7y", /* U+2067 RLI */
        "x\xe2\x81\xa8y", /* U+2068 FSI */
        "x\xe2\x81\xa9y", /* U+2069 PDI */
        "x\xe2\x80\x8ey", /* U+200E LRM */
        "x\xe2\x80\x8fy", /* U+200F RLM */
        "x\xd8\x9cy",     /* U+061C ARABIC LETTER MARK */
        "A\xe2\x80\x8b"
        "dmin",              /* U+200B ZERO WIDTH SPACE */
        "x\xe2\x80\x8cy",    /* U+200C ZWNJ */
        "x\xe2\x80\x8dy",    /* U+200D ZWJ */
        "x\xe2\x81\xa0y",    /* U+2060 WORD JOINER */
        "\xef\xbb\xbfx",     /* U+FEFF BOM */
        "x\xc2\xady",        /* U+00AD SOFT HYPHEN */
        "x\xe1\xa0\x8ey",    /* U+180E MONGOLIAN VOWEL SEPARATOR */
        "\xe3\x85\xa4",      /* U+3164 HANGUL FILLER (Lo, but default-ignorable) */
        "x\xcd\x8fy",        /* U+034F COMBINING GRAPHEME JOINER */
        "x\xf3\xa0\x80\x81", /* U+E0001 LANGUAGE TAG */
    };
    for (size_t i = 0; i < sizeof cf / sizeof cf[0]; i++)
        refused(cf[i], "invisible");
}

static void test_name_unassigned_private(void **state)
{
    (void)state;
    refused("x\xee\x80\x80", "private-use");     /* U+E000 private use */
    refused("x\xf3\xb0\x80\x80", "private-use"); /* U+F0000 plane-15 private use */
    refused("x\xcd\xb8", "unassigned");          /* U+0378 unassigned */
    refused("x\xef\xb7\x90", "unassigned");      /* U+FDD0 noncharacter */
    refused("x\xef\xbf\xbf", "unassigned");      /* U+FFFF noncharacter */
    assert_non_null(nm("x\xed\xa0\x80"));        /* a surrogate is not UTF-8 at all */
}

static void test_name_separators_and_spaces(void **state)
{
    (void)state;
    refused("a\xe2\x80\xa8"
            "b",
            "line breaks"); /* U+2028 LINE SEPARATOR */
    refused("a\xe2\x80\xa9"
            "b",
            "line breaks"); /* U+2029 PARAGRAPH SEPARATOR */
    /* Runs of spaces (any Zs) collapse into one, and go at both ends. */
    assert_null(nm("  Ann \xc2\xa0\xe3\x80\x80  Lee\xc2\xa0"));
    assert_string_equal(name_out, "Ann Lee");
    /* Nothing but spaces and punctuation: no letter or digit. */
    refused("\xc2\xa0\xc2\xa0", "letter or digit");
    refused("!!!", "letter or digit");
    refused("\xe2\xa0\x80", "letter or digit"); /* U+2800 BRAILLE PATTERN BLANK */
    assert_null(nm("7"));
}

static void test_name_marks_and_nfc(void **state)
{
    (void)state;
    /* e + COMBINING ACUTE is stored precomposed (NFC). */
    assert_null(nm("Re\xcc\x81mi"));
    assert_string_equal(name_out, "R\xc3\xa9mi");
    assert_null(nm("a\xcc\x81\xcc\x82"));          /* two marks on one letter */
    refused("a\xcc\x81\xcc\x82\xcc\x83", "marks"); /* three */
    refused("Zalgo\xcc\x8d\xcc\x8e\xcc\x84\xcc\x85", "marks");
    refused("\xcc\x81"
            "abc",
            "marks");                /* a mark with no base */
    refused("ab \xcc\x81", "marks"); /* a mark on a space */
    /* 64 characters that normalise into more: NFC of U+0958 is two code points. */
    char s[64 * 3 + 1];
    for (int i = 0; i < 64; i++)
        memcpy(s + 3 * i, "\xe0\xa5\x98", 3);
    s[64 * 3] = '\0';
    assert_non_null(nm(s));
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
    /* The bidi and invisible characters are refused in titles and descriptions too. */
    assert_non_null(web_valid_title("News\xe2\x80\xae", 7));
    assert_non_null(web_valid_title("x\xe2\x81\xa6y", 5));
    assert_non_null(web_valid_title("x\xe2\x80\x8by", 5));
    assert_non_null(web_valid_title("x\xe2\x80\xa8y", 5));
    assert_non_null(web_valid_title("x\xee\x80\x80", 4));
    assert_non_null(web_valid_title("a\xcc\x81\xcc\x82\xcc\x83", 7));
    assert_null(web_valid_title("Caf\xc3\xa9 \xe2\x98\x95", 9));
    assert_non_null(web_valid_description("ok\n\xe2\x80\xaegnp.exe", 14));
    assert_non_null(web_valid_description("x\xef\xbb\xbf", 4));
    assert_null(web_valid_description("\xd8\xb9\xd9\x84\xd9\x8a\nline", 11));
}

static void test_next(void **state)
{
    (void)state;
    const char *good[] = {"/rooms",         "/rooms/abc",
                          "/rooms/room-42", "/rooms/abcdefghijklmnopqrstuvwxyz012345",
                          "/invite/a",      "/invite/Ab-_0123456789abcdefghijklmnopqrstuvwxyz0123"};
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
                         "/rooms/abcdefghijklmnopqrstuvwxyz0123456",
                         "/invite/",
                         "/invite//evil.example",
                         "/invite/a/b",
                         "/invite/a?b",
                         "/invite/a%2F",
                         "/invite/a\r\nX: y",
                         "/invite/Ab-_0123456789abcdefghijklmnopqrstuvwxyz012345678",
                         "/invitex/a"};
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
        cmocka_unit_test(test_email),
        cmocka_unit_test(test_name),
        cmocka_unit_test(test_name_format_chars),
        cmocka_unit_test(test_name_unassigned_private),
        cmocka_unit_test(test_name_separators_and_spaces),
        cmocka_unit_test(test_name_marks_and_nfc),
        cmocka_unit_test(test_password),
        cmocka_unit_test(test_room),
        cmocka_unit_test(test_next),
        cmocka_unit_test(test_trim),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
