#include "cm_buf.h"
#include "cm_alloc.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cm_buf_init(struct cm_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void cm_buf_reserve(struct cm_buf *b, size_t extra)
{
    if (extra > SIZE_MAX / 2 - b->len)
        cm_oom(extra);
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    b->data = cm_xrealloc(b->data, cap);
    b->cap = cap;
}

void cm_buf_append(struct cm_buf *b, const void *p, size_t n)
{
    cm_buf_reserve(b, n);
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void cm_buf_puts(struct cm_buf *b, const char *s)
{
    cm_buf_append(b, s, strlen(s));
}

void cm_buf_printf(struct cm_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    cm_buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void cm_buf_append_html(struct cm_buf *b, const char *s, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        const char *ent = NULL;
        switch (s[i]) {
        case '&':
            ent = "&amp;";
            break;
        case '<':
            ent = "&lt;";
            break;
        case '>':
            ent = "&gt;";
            break;
        case '"':
            ent = "&quot;";
            break;
        case '\'':
            ent = "&#39;";
            break;
        default:
            continue;
        }
        cm_buf_append(b, s + start, i - start);
        cm_buf_puts(b, ent);
        start = i + 1;
    }
    cm_buf_append(b, s + start, n - start);
}

char *cm_buf_take(struct cm_buf *b, size_t *len)
{
    if (!b->data) {
        cm_buf_reserve(b, 0);
        b->data[0] = '\0';
    }
    char *p = b->data;
    if (len)
        *len = b->len;
    cm_buf_init(b);
    return p;
}

void cm_buf_free(struct cm_buf *b)
{
    free(b->data);
    cm_buf_init(b);
}

void cm_buf_append_json(struct cm_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t start = 0;

    cm_buf_reserve(b, n + 2);
    cm_buf_append(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f)
            continue;
        cm_buf_append(b, s + start, i - start);
        start = i + 1;
        char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        if (c == '"' || c == '\\') {
            esc[1] = (char)c;
            cm_buf_append(b, esc, 2);
        } else if (c == '\n') {
            cm_buf_append(b, "\\n", 2);
        } else {
            cm_buf_append(b, esc, 6);
        }
    }
    cm_buf_append(b, s + start, n - start);
    cm_buf_append(b, "\"", 1);
}
