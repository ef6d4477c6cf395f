/* Unit tests for common helpers: base64url, UTF-8, HTML escaping, buffers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cm_util.h"
#include "cm_buf.h"

static void base64url(void **state)
{
    (void)state;
    unsigned char out[16];
    assert_int_equal(cm_base64url_decode("aGk", 3, out, sizeof out), 2);
    assert_memory_equal(out, "hi", 2);
    assert_int_equal(cm_base64url_decode("_-8", 3, out, sizeof out), 2);
    assert_int_equal(cm_base64url_decode("aGk=", 4, out, sizeof out), -1);    /* padding */
    assert_int_equal(cm_base64url_decode("a+k", 3, out, sizeof out), -1);     /* std alphabet */
    assert_int_equal(cm_base64url_decode("a", 1, out, sizeof out), -1);       /* impossible */
    assert_int_equal(cm_base64url_decode("aGl", 3, out, sizeof out), -1);     /* dirty bits */
    assert_int_equal(cm_base64url_decode("aGVsbG8gd29ybGQ", 15, out, 4), -1); /* too small */
}

static void utf8(void **state)
{
    (void)state;
    assert_true(cm_utf8_valid("", 0));
    assert_true(cm_utf8_valid("héllo", strlen("héllo")));
    assert_true(cm_utf8_valid("\xf0\x9f\x98\x80", 4)); /* U+1F600 */
    assert_int_equal(cm_utf8_count("h\xc3\xa9\xf0\x9f\x98\x80", 7), 3);
    assert_false(cm_utf8_valid("\xc0\xaf", 2));         /* overlong '/' */
    assert_false(cm_utf8_valid("\xe0\x80\xaf", 3));     /* overlong */
    assert_false(cm_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
    assert_false(cm_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    assert_false(cm_utf8_valid("\xc3", 1));             /* truncated */
    assert_false(cm_utf8_valid("\xe2\x82", 2));         /* truncated */
    assert_false(cm_utf8_valid("\x80", 1));             /* lone continuation */
    assert_false(cm_utf8_valid("\xff", 1));
    assert_true(cm_utf8_valid("a\0b", 3)); /* NUL is valid UTF-8; callers bound it */
}

static void html_escape(void **state)
{
    (void)state;
    struct cm_buf b;
    cm_buf_init(&b);
    const char *s = "<script>alert(\"x\")</script> & 'q'";
    cm_buf_append_html(&b, s, strlen(s));
    assert_string_equal(b.data,
                        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39;");
    cm_buf_free(&b);
}

static void buffer_growth(void **state)
{
    (void)state;
    struct cm_buf b;
    cm_buf_init(&b);
    for (int i = 0; i < 1000; i++)
        cm_buf_printf(&b, "%d,", i);
    assert_int_equal(b.len, strlen(b.data));
    assert_memory_equal(b.data, "0,1,2,", 6);
    size_t len;
    char *p = cm_buf_take(&b, &len);
    assert_null(b.data);
    assert_int_equal(len, strlen(p));
    free(p);
    char hex[9];
    cm_hex_encode((const unsigned char *)"\x01\xab\xff\x00", 4, hex);
    assert_string_equal(hex, "01abff00");
    assert_true(cm_ct_equal("abc", 3, "abc", 3));
    assert_false(cm_ct_equal("abc", 3, "abd", 3));
    assert_false(cm_ct_equal("abc", 3, "ab", 2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(base64url),
        cmocka_unit_test(utf8),
        cmocka_unit_test(html_escape),
        cmocka_unit_test(buffer_growth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
