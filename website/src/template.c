#include "template.h"

#include "cm_log.h"
#include "cm_buf.h"
#include "embedded.h"

#include <string.h>

const char *web_tpl_get(const char *name, size_t *len)
{
    for (const struct web_embedded *e = web_templates; e->name; e++) {
        if (strcmp(e->name, name) == 0) {
            *len = e->len;
            return e->data;
        }
    }
    return NULL;
}

static const struct web_var *find_var(const struct web_var *vars, size_t n, const char *k,
                                      size_t klen)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(vars[i].key) == klen && memcmp(vars[i].key, k, klen) == 0)
            return &vars[i];
    return NULL;
}

int web_tpl_render_text(struct cm_buf *b, const char *tpl, size_t len, const struct web_var *vars,
                        size_t n)
{
    size_t pos = 0;
    while (pos < len) {
        const char *open = NULL;
        for (size_t i = pos; i + 1 < len; i++) {
            if (tpl[i] == '{' && tpl[i + 1] == '{') {
                open = tpl + i;
                break;
            }
        }
        if (!open) {
            cm_buf_append(b, tpl + pos, len - pos);
            return 0;
        }
        cm_buf_append(b, tpl + pos, (size_t)(open - (tpl + pos)));
        size_t kstart = (size_t)(open - tpl) + 2;
        bool raw = kstart < len && tpl[kstart] == '&';
        if (raw)
            kstart++;
        size_t kend = kstart;
        while (kend + 1 < len && !(tpl[kend] == '}' && tpl[kend + 1] == '}') &&
               kend - kstart <= WEB_TPL_KEY_MAX)
            kend++;
        if (kend + 1 >= len || tpl[kend] != '}' || tpl[kend + 1] != '}') {
            cm_error("template: unterminated {{ at offset %zu", (size_t)(open - tpl));
            return -1;
        }
        const struct web_var *v = find_var(vars, n, tpl + kstart, kend - kstart);
        if (!v) {
            cm_error("template: no value for key '%.*s'", (int)(kend - kstart), tpl + kstart);
            return -1;
        }
        if (v->raw != raw) {
            cm_error("template: key '%s' is %s in the template but %s in the code", v->key,
                     raw ? "raw" : "escaped", v->raw ? "raw" : "escaped");
            return -1;
        }
        if (v->val) {
            size_t vl = v->len == (size_t)-1 ? strlen(v->val) : v->len;
            if (raw)
                cm_buf_append(b, v->val, vl);
            else
                cm_buf_append_html(b, v->val, vl);
        }
        pos = kend + 2;
    }
    return 0;
}

int web_tpl_render(struct cm_buf *b, const char *name, const struct web_var *vars, size_t n)
{
    size_t len;
    const char *t = web_tpl_get(name, &len);
    if (!t) {
        cm_error("template: unknown template %s", name);
        return -1;
    }
    return web_tpl_render_text(b, t, len, vars, n);
}
