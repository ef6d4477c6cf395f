/* Cookie, Origin and query parsing of the WebSocket handshake (see handshake.h). */
#include "handshake.h"
#include "history.h"

#include <string.h>
#include <strings.h>

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

enum chat_cookie_rc chat_cookie_find(const char *h, size_t len, const char *name, size_t nlen,
                                     const char **val, size_t *vlen)
{
    enum chat_cookie_rc rc = CHAT_COOKIE_ABSENT;
    if (!h || nlen == 0)
        return rc;
    size_t pos = 0;
    while (pos < len) {
        const char *semi = memchr(h + pos, ';', len - pos);
        size_t end = semi ? (size_t)(semi - h) : len;
        size_t a = pos, b = end;
        while (a < b && is_ows(h[a]))
            a++;
        while (b > a && is_ows(h[b - 1]))
            b--;
        const char *eq = memchr(h + a, '=', b - a);
        if (eq) {
            size_t ne = (size_t)(eq - h), k = ne;
            while (k > a && is_ows(h[k - 1]))
                k--;
            if (k - a == nlen && memcmp(h + a, name, nlen) == 0) {
                size_t va = ne + 1, vb = b;
                while (va < vb && is_ows(h[va]))
                    va++;
                if (vb - va >= 2 && h[va] == '"' && h[vb - 1] == '"') {
                    va++;
                    vb--;
                }
                if (rc == CHAT_COOKIE_ABSENT) {
                    *val = h + va;
                    *vlen = vb - va;
                    rc = CHAT_COOKIE_FOUND;
                } else if (*vlen != vb - va || memcmp(*val, h + va, *vlen) != 0) {
                    return CHAT_COOKIE_AMBIGUOUS;
                }
            }
        }
        if (!semi)
            break;
        pos = end + 1;
    }
    return rc;
}

/* Splits a serialised origin into scheme length (4 = http, 5 = https), host and port (0 if
 * none). Returns false if it is not one (see chat_origin_valid). */
static bool origin_parse(const char *s, size_t len, size_t *schemelen, const char **host,
                         size_t *hostlen, unsigned *port)
{
    size_t p;
    if (len > CHAT_ORIGIN_MAX)
        return false;
    if (len >= 7 && !memcmp(s, "http://", 7)) {
        *schemelen = 4;
        p = 7;
    } else if (len >= 8 && !memcmp(s, "https://", 8)) {
        *schemelen = 5;
        p = 8;
    } else {
        return false;
    }
    size_t h0 = p;
    if (p < len && s[p] == '[') { /* IPv6 literal (RFC 3986 §3.2.2) */
        p++;
        while (p < len && s[p] != ']') {
            char c = s[p];
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == ':' || c == '.'))
                return false;
            p++;
        }
        if (p >= len || p == h0 + 1)
            return false;
        p++; /* the ']' */
    } else {
        while (p < len && s[p] != ':') {
            char c = s[p];
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '.' || c == '-'))
                return false;
            p++;
        }
        if (p == h0)
            return false;
    }
    *host = s + h0;
    *hostlen = p - h0;
    *port = 0;
    if (p == len)
        return true;
    if (s[p] != ':')
        return false;
    p++;
    if (p == len || len - p > 5 || s[p] == '0')
        return false;
    unsigned v = 0;
    for (; p < len; p++) {
        if (s[p] < '0' || s[p] > '9')
            return false;
        v = v * 10 + (unsigned)(s[p] - '0');
    }
    if (v > 65535)
        return false;
    *port = v;
    return true;
}

bool chat_origin_valid(const char *s, size_t len)
{
    size_t sl, hl;
    const char *h;
    unsigned port;
    return s && origin_parse(s, len, &sl, &h, &hl, &port);
}

/* Calls fn on each trimmed comma-separated entry of [s, s+len) until it returns true.
 * Returns true if one did; empty entries are passed too (so a list can reject them). */
static bool list_any(const char *s, size_t len, bool (*fn)(const char *, size_t, const void *),
                     const void *arg)
{
    size_t pos = 0;
    for (;;) {
        const char *comma = memchr(s + pos, ',', len - pos);
        size_t end = comma ? (size_t)(comma - s) : len;
        size_t a = pos, b = end;
        while (a < b && is_ows(s[a]))
            a++;
        while (b > a && is_ows(s[b - 1]))
            b--;
        if (fn(s + a, b - a, arg))
            return true;
        if (!comma)
            return false;
        pos = end + 1;
    }
}

static bool entry_invalid(const char *e, size_t n, const void *arg)
{
    (void)arg;
    return !chat_origin_valid(e, n);
}

bool chat_origin_list_valid(const char *s, size_t len)
{
    if (!s || len == 0 || len > CHAT_ALLOWED_ORIGINS_MAX)
        return false;
    return !list_any(s, len, entry_invalid, NULL);
}

struct span {
    const char *p;
    size_t n;
};

static bool entry_equals(const char *e, size_t n, const void *arg)
{
    const struct span *o = arg;
    return n == o->n && memcmp(e, o->p, n) == 0;
}

/* Splits a Host header value into host and port (0 if none) with the same character rules
 * as an origin's host, but case-insensitive (RFC 9110 §4.2.3: the host is case-insensitive;
 * browsers lowercase it in Origin, not necessarily in Host). */
static bool host_parse(const char *s, size_t len, char *lower, const char **host, size_t *hostlen,
                       unsigned *port)
{
    static const char scheme[] = "http://";
    if (len == 0 || len + sizeof scheme - 1 > CHAT_ORIGIN_MAX)
        return false;
    memcpy(lower, scheme, sizeof scheme - 1);
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        lower[sizeof scheme - 1 + i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    size_t sl;
    return origin_parse(lower, sizeof scheme - 1 + len, &sl, host, hostlen, port);
}

bool chat_origin_allowed(const char *origin, size_t olen, const char *host, size_t hlen,
                         const char *allow, size_t alen)
{
    size_t sl, ohl;
    const char *oh;
    unsigned oport;
    if (!origin || !origin_parse(origin, olen, &sl, &oh, &ohl, &oport))
        return false;
    if (allow && alen) {
        struct span o = {origin, olen};
        return list_any(allow, alen, entry_equals, &o);
    }
    char lower[CHAT_ORIGIN_MAX + 1];
    const char *hh;
    size_t hhl;
    unsigned hport;
    if (!host || !host_parse(host, hlen, lower, &hh, &hhl, &hport))
        return false;
    unsigned def = sl == 4 ? 80 : 443;
    if (!oport)
        oport = def;
    if (!hport)
        hport = def;
    return ohl == hhl && memcmp(oh, hh, ohl) == 0 && oport == hport;
}

enum chat_query_rc chat_query_arg(const char *a, size_t len, struct chat_query *q)
{
    static const char tok[] = "access_token";
    static const char rn[] = "room=";
    static const char since[] = "since=";
    const char *eq = memchr(a, '=', len);
    size_t nl = eq ? (size_t)(eq - a) : len;
    if (nl == sizeof tok - 1 && !strncasecmp(a, tok, nl))
        return CHAT_QUERY_TOKEN;
    if (len >= sizeof since - 1 && !memcmp(a, since, sizeof since - 1)) {
        if (q->has_since ||
            chat_history_parse_since(a + sizeof since - 1, len - (sizeof since - 1), &q->since) < 0)
            return CHAT_QUERY_BAD;
        q->has_since = true;
        return CHAT_QUERY_OK;
    }
    if (len < sizeof rn - 1 || memcmp(a, rn, sizeof rn - 1) != 0 || q->has_room)
        return CHAT_QUERY_BAD;
    const char *v = a + sizeof rn - 1;
    size_t vl = len - (sizeof rn - 1);
    if (!cm_room_name_valid(v, vl))
        return CHAT_QUERY_BAD;
    memcpy(q->room, v, vl);
    q->room[vl] = '\0';
    q->has_room = true;
    return CHAT_QUERY_OK;
}
