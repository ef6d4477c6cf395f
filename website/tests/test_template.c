/* Unit tests: the escaping template writer and the compiled-in templates. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "cm_log.h"
#include "cm_buf.h"
#include "template.h"

#include <string.h>

static int render(struct cm_buf *b, const char *t, const struct web_var *v, size_t n)
{
    cm_buf_free(b);
    cm_buf_init(b);
    return web_tpl_render_text(b, t, strlen(t), v, n);
}

static void test_escapes_by_default(void **state)
{
    (void)state;
    struct cm_buf b;
    cm_buf_init(&b);
    struct web_var v[] = {WEB_VAR("x", "<script>alert('x')</script> & \"q\"")};
    assert_int_equal(render(&b, "<p title=\"{{x}}\">{{x}}</p>", v, 1), 0);
    assert_null(strstr(b.data, "<script>"));
    assert_null(strstr(b.data, "'x'"));
    assert_non_null(strstr(b.data, "&lt;script&gt;"));
    assert_non_null(strstr(b.data, "&amp;"));
    assert_non_null(strstr(b.data, "&quot;q&quot;"));
    cm_buf_free(&b);
}

static void test_raw_must_be_explicit(void **state)
{
    (void)state;
    struct cm_buf b;
    cm_buf_init(&b);
    struct web_var esc[] = {WEB_VAR("x", "<b>")};
    struct web_var raw[] = {WEB_RAW("x", "<b>")};
    /* raw in the template but an escaped value in code: refused */
    assert_int_equal(render(&b, "{{&x}}", esc, 1), -1);
    /* escaped in the template but a raw value in code: refused */
    assert_int_equal(render(&b, "{{x}}", raw, 1), -1);
    assert_int_equal(render(&b, "[{{&x}}]", raw, 1), 0);
    assert_string_equal(b.data, "[<b>]");
    cm_buf_free(&b);
}

static void test_errors(void **state)
{
    (void)state;
    struct cm_buf b;
    cm_buf_init(&b);
    struct web_var v[] = {WEB_VAR("x", "1")};
    assert_int_equal(render(&b, "{{y}}", v, 1), -1);
    assert_int_equal(render(&b, "abc {{x", v, 1), -1);
    assert_int_equal(render(&b, "abc {{", v, 1), -1);
    assert_int_equal(render(&b, "abc {", v, 1), 0);
    assert_string_equal(b.data, "abc {");
    assert_int_equal(render(&b, "no vars", NULL, 0), 0);
    assert_string_equal(b.data, "no vars");
    cm_buf_free(&b);
}

static void test_lengths_and_null(void **state)
{
    (void)state;
    struct cm_buf b;
    cm_buf_init(&b);
    struct web_var v[] = {WEB_VARN("x", "abcdef", 3), WEB_VAR("n", NULL)};
    assert_int_equal(render(&b, "{{x}}|{{n}}|{{x}}", v, 2), 0);
    assert_string_equal(b.data, "abc||abc");
    cm_buf_free(&b);
}

static void test_compiled_templates(void **state)
{
    (void)state;
    size_t len;
    const char *room = web_tpl_get("room.html", &len);
    assert_non_null(room);
    assert_non_null(strstr(room, "<main id=\"chat\""));
    assert_null(web_tpl_get("nope.html", &len));
    /* No template may carry inline script or style (the CSP forbids both). */
    const char *names[] = {"layout.html",     "room.html",         "room_head.html",
                           "rooms.html",      "register.html",     "login.html",
                           "admin.html",      "room_info.html",    "room_edit.html",
                           "room_owner.html", "invite.html",       "invite_created.html",
                           "rooms_head.html", "room_activity.html"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *t = web_tpl_get(names[i], &len);
        assert_non_null(t);
        assert_null(strstr(t, "style="));
        assert_null(strstr(t, "<script>"));
        assert_null(strstr(t, "onclick"));
    }
    struct cm_buf b;
    cm_buf_init(&b);
    struct web_var v[] = {WEB_VAR("room", "lobby"),      WEB_VAR("room_title", "<i>x</i>"),
                          WEB_VAR("user_id", "0b7e-u1"), WEB_VAR("user_name", "\"A\""),
                          WEB_VAR("csrf", "t"),          WEB_RAW("info", "")};
    assert_int_equal(web_tpl_render(&b, "room.html", v, 6), 0);
    assert_non_null(strstr(b.data, "data-room=\"lobby\""));
    assert_non_null(strstr(b.data, "data-room-title=\"&lt;i&gt;x&lt;/i&gt;\""));
    assert_non_null(strstr(b.data, "data-user-name=\"&quot;A&quot;\""));
    cm_buf_free(&b);
}

int main(void)
{
    cm_log_init("test", CM_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escapes_by_default),
        cmocka_unit_test(test_raw_must_be_explicit),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_lengths_and_null),
        cmocka_unit_test(test_compiled_templates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
