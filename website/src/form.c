#include "form.h"

#include "cm_log.h"
#include "cm_util.h"
#include "cm_alloc.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes [s, s+len) into out (which has room for len+1 bytes). Returns the decoded length
 * or -1 on a bad escape or a NUL byte. */
static long decode(const char *s, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            /* bounds first: "%4" at the end must not read past the input */
            if (i + 2 >= len)
                return -1;
            int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (c == '\0')
            return -1; /* a NUL would truncate the value for any C string code later */
        out[o++] = c;
    }
    out[o] = '\0';
    return (long)o;
}

int web_form_parse(const char *s, size_t len, struct web_form *form)
{
    memset(form, 0, sizeof *form);
    if (len == 0)
        return 0;
    /* Every decoded string is no longer than its source, plus one NUL per name and value. */
    form->mem = cm_xmalloc(len + 2 * WEB_FORM_MAX_FIELDS + 2);
    char *mem = form->mem;
    size_t pos = 0, used = 0;

    while (pos <= len) {
        const char *amp = memchr(s + pos, '&', len - pos);
        size_t end = amp ? (size_t)(amp - s) : len;
        size_t plen = end - pos;
        if (plen > 0) {
            if (form->n == WEB_FORM_MAX_FIELDS)
                goto bad;
            const char *p = s + pos;
            const char *eq = memchr(p, '=', plen);
            size_t nlen = eq ? (size_t)(eq - p) : plen;
            const char *v = eq ? eq + 1 : p + plen;
            size_t vlen = eq ? plen - nlen - 1 : 0;

            struct web_field *f = &form->f[form->n];
            long dn = decode(p, nlen, mem + used);
            if (dn <= 0 || dn > WEB_FORM_NAME_MAX)
                goto bad;
            f->name = mem + used;
            f->name_len = (size_t)dn;
            used += (size_t)dn + 1;
            long dv = decode(v, vlen, mem + used);
            if (dv < 0)
                goto bad;
            f->value = mem + used;
            f->value_len = (size_t)dv;
            used += (size_t)dv + 1;
            if (!cm_utf8_valid(f->name, f->name_len) || !cm_utf8_valid(f->value, f->value_len))
                goto bad;
            for (size_t i = 0; i < form->n; i++)
                if (form->f[i].name_len == f->name_len &&
                    memcmp(form->f[i].name, f->name, f->name_len) == 0)
                    goto bad;
            form->n++;
        }
        if (!amp)
            break;
        pos = end + 1;
    }
    return 0;
bad:
    web_form_free(form);
    return -1;
}

const char *web_form_get(const struct web_form *form, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < form->n; i++) {
        if (form->f[i].name_len == nl && memcmp(form->f[i].name, name, nl) == 0) {
            if (len)
                *len = form->f[i].value_len;
            return form->f[i].value;
        }
    }
    return NULL;
}

void web_form_free(struct web_form *form)
{
    if (!form)
        return;
    free(form->mem);
    memset(form, 0, sizeof *form);
}
