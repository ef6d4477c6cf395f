/* Cookie (RFC 6265 §4.2.1), Origin (RFC 6454 §6.2) and query parsing of the handshake:
 * well-formed input, hostile input, and the bounds of each. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "handshake.h"

#define S(x) x, sizeof x - 1

static enum chat_cookie_rc find(const char *h, const char *name, char *out, size_t cap)
{
    const char *v = NULL;
    size_t vl = 0;
    /* a copy without a terminating NUL, so reading past the length is an ASan error */
    size_t n = strlen(h);
    char *copy = malloc(n ? n : 1);
    memcpy(copy, h, n);
    enum chat_cookie_rc rc = chat_cookie_find(copy, n, name, strlen(name), &v, &vl);
    if (rc == CHAT_COOKIE_FOUND) {
        assert_true(v >= copy && v + vl <= copy + n);
        assert_true(vl < cap);
        memcpy(out, v, vl);
        out[vl] = '\0';
    }
    free(copy);
    return rc;
}

static void test_cookie_pairs(void **state)
{
    (void)state;
    char v[64];
    assert_int_equal(find("parley_ws_lobby=abc.def.ghi", "parley_ws_lobby", v, sizeof v),
                     CHAT_COOKIE_FOUND);
    assert_string_equal(v, "abc.def.ghi");
    /* several cookies, RFC 6265 "; " and sloppier separators */
    assert_int_equal(
        find("sid=1; parley_ws_a-b=T1; parley_ws_other=T2", "parley_ws_a-b", v, sizeof v),
        CHAT_COOKIE_FOUND);
    assert_string_equal(v, "T1");
    assert_int_equal(
        find("sid=1;parley_ws_other=T2 ;\tparley_ws_abc = T3 ", "parley_ws_abc", v, sizeof v),
        CHAT_COOKIE_FOUND);
    assert_string_equal(v, "T3");
    assert_int_equal(find("sid=1; parley_ws_other=T2", "parley_ws_abc", v, sizeof v),
                     CHAT_COOKIE_ABSENT);
    /* quoted value (cookie-value = DQUOTE *cookie-octet DQUOTE) */
    assert_int_equal(find("x=1; parley_ws_abc=\"Q\"", "parley_ws_abc", v, sizeof v),
                     CHAT_COOKIE_FOUND);
    assert_string_equal(v, "Q");
    /* empty value is found, empty */
    assert_int_equal(find("parley_ws_abc=", "parley_ws_abc", v, sizeof v), CHAT_COOKIE_FOUND);
    assert_string_equal(v, "");
    /* the value may contain '=' (only the first one separates) */
    assert_int_equal(find("parley_ws_abc=a=b", "parley_ws_abc", v, sizeof v), CHAT_COOKIE_FOUND);
    assert_string_equal(v, "a=b");
}

static void test_cookie_names_are_exact(void **state)
{
    (void)state;
    char v[64];
    /* a prefix, a suffix, another case, or the name inside a value is not the cookie */
    assert_int_equal(find("parley_ws_abcd=X", "parley_ws_abc", v, sizeof v), CHAT_COOKIE_ABSENT);
    assert_int_equal(find("xparley_ws_abc=X", "parley_ws_abc", v, sizeof v), CHAT_COOKIE_ABSENT);
    assert_int_equal(find("PARLEY_WS_ABC=X", "parley_ws_abc", v, sizeof v), CHAT_COOKIE_ABSENT);
    assert_int_equal(find("a=parley_ws_abc=X", "parley_ws_abc", v, sizeof v), CHAT_COOKIE_ABSENT);
    /* a pair without '=' is skipped, the next one still counts */
    assert_int_equal(find("parley_ws_abc; parley_ws_abc=Y", "parley_ws_abc", v, sizeof v),
                     CHAT_COOKIE_FOUND);
    assert_string_equal(v, "Y");
}

static void test_cookie_duplicates(void **state)
{
    (void)state;
    char v[64];
    /* cookie tossing: a second cookie of the same name (another path or a parent domain)
     * with another value must not pick the token */
    assert_int_equal(find("parley_ws_abc=A; parley_ws_abc=B", "parley_ws_abc", v, sizeof v),
                     CHAT_COOKIE_AMBIGUOUS);
    assert_int_equal(find("parley_ws_abc=A; x=1; parley_ws_abc=", "parley_ws_abc", v, sizeof v),
                     CHAT_COOKIE_AMBIGUOUS);
    assert_int_equal(find("parley_ws_abc=A; parley_ws_abc=AB", "parley_ws_abc", v, sizeof v),
                     CHAT_COOKIE_AMBIGUOUS);
    /* the same value twice is harmless */
    assert_int_equal(find("parley_ws_abc=A; parley_ws_abc=\"A\"", "parley_ws_abc", v, sizeof v),
                     CHAT_COOKIE_FOUND);
    assert_string_equal(v, "A");
    /* other rooms' cookies are not duplicates */
    assert_int_equal(find("parley_ws_abc=A; parley_ws_xyz=B", "parley_ws_abc", v, sizeof v),
                     CHAT_COOKIE_FOUND);
}

static void test_cookie_hostile(void **state)
{
    (void)state;
    char v[64];
    static const char *const junk[] = {
        "",
        ";",
        ";;;;",
        "=",
        "==",
        " = ; = ",
        "\"",
        "parley_ws_abc",
        "parley_ws_abc\"=\"",
        "\t;\t",
        "a=\"",
        "a=\"\"",
    };
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        enum chat_cookie_rc rc = find(junk[i], "parley_ws_abc", v, sizeof v);
        assert_true(rc == CHAT_COOKIE_ABSENT || rc == CHAT_COOKIE_FOUND);
    }
    assert_int_equal(find("parley_ws_abc=\"", "parley_ws_abc", v, sizeof v), CHAT_COOKIE_FOUND);
    assert_string_equal(v, "\""); /* a lone quote is not a quoted value */
    /* no name, no header */
    const char *p = NULL;
    size_t pl = 0;
    assert_int_equal(chat_cookie_find(NULL, 0, S("a"), &p, &pl), CHAT_COOKIE_ABSENT);
    assert_int_equal(chat_cookie_find(S("a=1"), "", 0, &p, &pl), CHAT_COOKIE_ABSENT);
    /* a long header of many pairs: linear, bounded by its length */
    size_t n = 60000;
    char *big = malloc(n);
    for (size_t i = 0; i < n; i += 4)
        memcpy(big + i, "a=b;", 4);
    memcpy(big + n - 20, "parley_ws_abc=Z;xx=y", 20);
    assert_int_equal(chat_cookie_find(big, n, S("parley_ws_abc"), &p, &pl), CHAT_COOKIE_FOUND);
    assert_int_equal(pl, 1);
    assert_memory_equal(p, "Z", 1);
    free(big);
}

static bool ov(const char *s)
{
    size_t n = strlen(s);
    char *copy = malloc(n ? n : 1);
    memcpy(copy, s, n);
    bool r = chat_origin_valid(copy, n);
    free(copy);
    return r;
}

static void test_origin_syntax(void **state)
{
    (void)state;
    assert_true(ov("http://127.0.0.1:8080"));
    assert_true(ov("https://chat.example"));
    assert_true(ov("https://chat.example:8443"));
    assert_true(ov("http://[::1]:8080"));
    assert_true(ov("http://localhost"));
    assert_true(ov("http://a:65535"));
    static const char *const bad[] = {
        "",
        "null",
        "http://",
        "http://:80",
        "https://chat.example/",
        "https://chat.example/path",
        "HTTPS://chat.example",
        "https://Chat.Example",
        "ftp://chat.example",
        "ws://chat.example",
        "https:/chat.example",
        "https://user@chat.example",
        "https://chat.example:",
        "https://chat.example:0",
        "https://chat.example:080",
        "https://chat.example:65536",
        "https://chat.example:123456",
        "https://chat.example:8a",
        "https://chat.example?x",
        "https://chat.example#x",
        "https://chat example",
        "https://chat.example, https://other.example",
        "http://[]",
        "http://[::1",
        "http://[::g]",
        "http://[::1]x",
        "http://a\r\nb",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(ov(bad[i]));
    /* NUL inside is not a terminator */
    assert_false(chat_origin_valid("http://a\0b", 10));
    assert_false(chat_origin_valid(NULL, 0));
    /* longer than CHAT_ORIGIN_MAX */
    char lng[CHAT_ORIGIN_MAX + 10];
    memcpy(lng, "http://", 7);
    memset(lng + 7, 'a', sizeof lng - 7);
    assert_false(chat_origin_valid(lng, sizeof lng));
    assert_true(chat_origin_valid(lng, CHAT_ORIGIN_MAX));
}

static bool allowed(const char *origin, const char *host, const char *allow)
{
    return chat_origin_allowed(origin, origin ? strlen(origin) : 0, host, host ? strlen(host) : 0,
                               allow, allow ? strlen(allow) : 0);
}

static void test_origin_against_host(void **state)
{
    (void)state;
    assert_true(allowed("http://127.0.0.1:8080", "127.0.0.1:8080", NULL));
    assert_true(allowed("https://chat.example", "chat.example", NULL));
    assert_true(allowed("https://chat.example", "Chat.EXAMPLE", ""));
    /* default ports written or not */
    assert_true(allowed("https://chat.example", "chat.example:443", NULL));
    assert_true(allowed("http://chat.example:80", "chat.example", NULL));
    assert_true(allowed("http://[::1]:8080", "[::1]:8080", NULL));
    /* another host, port, or a look-alike */
    assert_false(allowed("http://evil.example", "chat.example", NULL));
    assert_false(allowed("http://127.0.0.1:8081", "127.0.0.1:8080", NULL));
    assert_false(allowed("http://127.0.0.1", "127.0.0.1:8080", NULL));
    assert_false(allowed("https://chat.example", "chat.example:80", NULL));
    assert_false(allowed("http://chat.example.evil.example", "chat.example", NULL));
    assert_false(allowed("http://chat.exampl", "chat.example", NULL));
    assert_false(allowed("http://chat.example", "chat.exampl", NULL));
    assert_false(allowed("http://evil.examplechat.example", "chat.example", NULL));
    /* missing or odd Origin, missing or odd Host */
    assert_false(allowed(NULL, "chat.example", NULL));
    assert_false(allowed("null", "chat.example", NULL));
    assert_false(allowed("", "chat.example", NULL));
    assert_false(allowed("http://chat.example", NULL, NULL));
    assert_false(allowed("http://chat.example", "", NULL));
    assert_false(allowed("http://chat.example", "chat.example,chat.example", NULL));
    assert_false(allowed("http://chat.example", "chat.example/x", NULL));
    assert_false(allowed("http://chat.example", "user@chat.example", NULL));
}

static void test_origin_allow_list(void **state)
{
    (void)state;
    const char *list = "http://127.0.0.1:8080, https://chat.example";
    assert_true(allowed("http://127.0.0.1:8080", "whatever", list));
    assert_true(allowed("https://chat.example", NULL, list));
    /* with a list, the Host no longer matters, and entries match exactly */
    assert_false(allowed("http://127.0.0.1:8081", "127.0.0.1:8081", list));
    assert_false(allowed("http://chat.example", "chat.example", list));
    assert_false(allowed("https://chat.example:443", "chat.example", list));
    assert_false(allowed("http://127.0.0.1", "127.0.0.1", list));
    assert_false(allowed("null", "x", list));
    /* list syntax (CHAT_ALLOWED_ORIGINS is checked at start-up) */
    assert_true(chat_origin_list_valid(S("http://127.0.0.1:8080")));
    assert_true(chat_origin_list_valid(S(" https://a.example ,https://b.example:8443 ")));
    assert_false(chat_origin_list_valid(S("")));
    assert_false(chat_origin_list_valid(S("https://a.example,")));
    assert_false(chat_origin_list_valid(S("https://a.example,,https://b.example")));
    assert_false(chat_origin_list_valid(S("https://a.example/")));
    assert_false(chat_origin_list_valid(S("*")));
    assert_false(chat_origin_list_valid(S("a.example")));
    assert_false(chat_origin_list_valid(NULL, 0));
}

static enum chat_query_rc q(const char *a, struct chat_query *cq)
{
    return chat_query_arg(a, strlen(a), cq);
}

static void test_query(void **state)
{
    (void)state;
    struct chat_query cq;
    memset(&cq, 0, sizeof cq);
    assert_int_equal(q("room=lobby", &cq), CHAT_QUERY_OK);
    assert_true(cq.has_room);
    assert_string_equal(cq.room, "lobby");
    /* a second room argument, even the same one, is refused */
    assert_int_equal(q("room=lobby", &cq), CHAT_QUERY_BAD);
    /* since= once, a decimal integer 0..2^53-1 */
    assert_int_equal(q("since=42", &cq), CHAT_QUERY_OK);
    assert_true(cq.has_since);
    assert_true(cq.since == 42);
    assert_int_equal(q("since=42", &cq), CHAT_QUERY_BAD);
    static const char *const bad_since[] = {"since=",    "since=-1",  "since=1.5",
                                            "since=abc", "since=1e3", "since=9007199254740992",
                                            "since= 1",  "since=+1",  "since=0x1"};
    for (size_t i = 0; i < sizeof bad_since / sizeof bad_since[0]; i++) {
        memset(&cq, 0, sizeof cq);
        assert_int_equal(q(bad_since[i], &cq), CHAT_QUERY_BAD);
    }
    memset(&cq, 0, sizeof cq);
    assert_int_equal(q("since=9007199254740991", &cq), CHAT_QUERY_OK);

    static const char *const tokens[] = {"access_token=eyJ.x.y", "access_token=", "access_token",
                                         "ACCESS_TOKEN=x", "Access_Token=x"};
    for (size_t i = 0; i < sizeof tokens / sizeof tokens[0]; i++) {
        memset(&cq, 0, sizeof cq);
        assert_int_equal(q(tokens[i], &cq), CHAT_QUERY_TOKEN);
        /* whatever came before */
        cq.has_room = cq.has_since = true;
        assert_int_equal(q(tokens[i], &cq), CHAT_QUERY_TOKEN);
    }
    static const char *const bad[] = {"room=",
                                      "room=ab",
                                      "room=Lobby",
                                      "room=../x",
                                      "room",
                                      "ROOM=lobby",
                                      "rooms=lobby",
                                      "token=x",
                                      "x=1",
                                      "room=abcdefghijabcdefghijabcdefghijabc",
                                      "access_tokens=x",
                                      "room=lobby x",
                                      "since",
                                      "SINCE=1",
                                      "jwt=eyJ.x.y"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&cq, 0, sizeof cq);
        assert_int_equal(q(bad[i], &cq), CHAT_QUERY_BAD);
        assert_false(cq.has_room);
    }
    /* a NUL in the argument (lws decodes %00) is not a terminator */
    memset(&cq, 0, sizeof cq);
    assert_int_equal(chat_query_arg("room=lobby\0x", 12, &cq), CHAT_QUERY_BAD);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cookie_pairs),      cmocka_unit_test(test_cookie_names_are_exact),
        cmocka_unit_test(test_cookie_duplicates), cmocka_unit_test(test_cookie_hostile),
        cmocka_unit_test(test_origin_syntax),     cmocka_unit_test(test_origin_against_host),
        cmocka_unit_test(test_origin_allow_list), cmocka_unit_test(test_query),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
