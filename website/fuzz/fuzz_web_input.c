/* libFuzzer target: the website's parsers of client input (urlencoded forms, Cookie headers,
 * field validation, LIKE escaping is in the daemon) must reject garbage without crashing,
 * reading out of bounds or leaking. Build with -DPARLEY_FUZZ=ON and clang (make fuzz). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cookie.h"
#include "form.h"
#include "validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    struct web_form f;
    if (web_form_parse(s, size, &f) == 0) {
        size_t len;
        const char *v = web_form_get(&f, "email", &len);
        char out[WEB_EMAIL_MAX + 1];
        if (v)
            (void)web_valid_email(v, len, out);
        for (size_t i = 0; i < f.n; i++) {
            char name[WEB_NAME_BYTES + 1];
            (void)web_valid_name(f.f[i].value, f.f[i].value_len, name);
            (void)web_valid_title(f.f[i].value, f.f[i].value_len);
            (void)web_valid_description(f.f[i].value, f.f[i].value_len);
            (void)web_valid_room_name(f.f[i].value, f.f[i].value_len);
        }
    }
    web_form_free(&f);
    size_t vl;
    (void)web_cookie_find(s, size, "sid", &vl);
    (void)web_cookie_find(s, size, "csrf", &vl);
    const char *t = s;
    size_t tl = size;
    web_trim(&t, &tl);
    char out[WEB_EMAIL_MAX + 1];
    (void)web_valid_email(s, size, out);
    return 0;
}
