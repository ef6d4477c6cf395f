#include "cookie.h"

#include <string.h>

static int is_ws(char c)
{
    return c == ' ' || c == '\t';
}

const char *web_cookie_find(const char *h, size_t len, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    if (!h || len > WEB_COOKIE_HEADER_MAX || nl == 0)
        return NULL;
    size_t pos = 0;
    while (pos < len) {
        const char *semi = memchr(h + pos, ';', len - pos);
        size_t end = semi ? (size_t)(semi - h) : len;
        size_t a = pos, b = end;
        while (a < b && is_ws(h[a]))
            a++;
        while (b > a && is_ws(h[b - 1]))
            b--;
        const char *eq = memchr(h + a, '=', b - a);
        if (eq) {
            size_t ne = (size_t)(eq - h);
            size_t k = ne;
            while (k > a && is_ws(h[k - 1]))
                k--;
            if (k - a == nl && memcmp(h + a, name, nl) == 0) {
                size_t va = ne + 1, vb = b;
                while (va < vb && is_ws(h[va]))
                    va++;
                if (vb - va >= 2 && h[va] == '"' && h[vb - 1] == '"') {
                    va++;
                    vb--;
                }
                *vlen = vb - va;
                return h + va;
            }
        }
        if (!semi)
            break;
        pos = end + 1;
    }
    return NULL;
}
