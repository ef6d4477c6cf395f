/* HTML templates (website/templates/NAME.html, compiled in) rendered through a writer that
 * escapes by default. In a template, {{key}} inserts an escaped value and {{&key}} a raw
 * fragment. A raw fragment must be supplied with WEB_RAW and is only ever HTML this program
 * rendered itself (another template): user data cannot reach the output unescaped, because
 * {{key}} with a WEB_RAW value, or {{&key}} with a WEB_VAR value, is refused. */
#ifndef WEB_TEMPLATE_H
#define WEB_TEMPLATE_H

#include "cm_util.h"
#include "cm_buf.h"

#include <stdbool.h>
#include <stddef.h>

#define WEB_TPL_KEY_MAX 32

struct web_var {
    const char *key;
    const char *val; /* NULL renders as empty */
    size_t len;      /* (size_t)-1: val is NUL-terminated */
    bool raw;
};

#define WEB_VAR(k, v) ((struct web_var){(k), (v), (size_t)-1, false})
#define WEB_VARN(k, v, n) ((struct web_var){(k), (v), (n), false})
#define WEB_RAW(k, v) ((struct web_var){(k), (v), (size_t)-1, true})

/* Renders the template text [tpl, tpl+len) into b. Returns 0, or -1 (with b holding what was
 * rendered so far) on an unknown key, a raw/escaped mismatch or an unterminated {{. */
int web_tpl_render_text(struct cm_buf *b, const char *tpl, size_t len, const struct web_var *vars,
                        size_t n);

/* Renders the compiled-in template `name` (e.g. "login.html"). Returns -1 also if unknown. */
int web_tpl_render(struct cm_buf *b, const char *name, const struct web_var *vars, size_t n);

/* Returns the compiled-in template `name` or NULL. */
const char *web_tpl_get(const char *name, size_t *len);

#endif
