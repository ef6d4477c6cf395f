/* application/x-www-form-urlencoded bodies (and query strings) as (pointer, length). */
#ifndef WEB_FORM_H
#define WEB_FORM_H

#include <stddef.h>

#define WEB_FORM_MAX_FIELDS 32 /* more pairs than any of our forms has: malformed */
#define WEB_FORM_NAME_MAX 64   /* longest field name accepted */

struct web_field {
    const char *name; /* decoded, NUL-terminated, inside web_form.mem */
    size_t name_len;
    const char *value; /* decoded, NUL-terminated, valid UTF-8 without NUL bytes */
    size_t value_len;
};

struct web_form {
    size_t n;
    struct web_field f[WEB_FORM_MAX_FIELDS];
    char *mem; /* owns every name and value */
};

/* Parses [s, s+len). '+' is a space and %XX a byte. Rejects (returns -1, form left empty):
 * a bad or truncated %-escape, a decoded NUL, invalid UTF-8 (so no later code sees
 * malformed text), an empty or over-long name, a repeated name (parameter pollution: which
 * copy would win?), more than WEB_FORM_MAX_FIELDS pairs. Empty pairs ("a=1&&b=2") are
 * skipped. Returns 0 on success; free with web_form_free (also after a failure). */
int web_form_parse(const char *s, size_t len, struct web_form *form);

/* The value of field `name`, or NULL if absent; *len gets its length when non-NULL. */
const char *web_form_get(const struct web_form *form, const char *name, size_t *len);

void web_form_free(struct web_form *form);

#endif
