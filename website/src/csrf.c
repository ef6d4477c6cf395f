#include "csrf.h"

#include "config.h"
#include "cookie.h"
#include "cm_util.h"
#include "session.h"

#include <string.h>

static bool is_token(const char *s, size_t len)
{
    if (len != WEB_CSRF_LEN)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* The pre-login cookie's value if it is well-formed, else "". */
static const char *anon_cookie(struct web_req *r)
{
    if (!r->csrf_anon[0]) {
        const char *h = web_req_header(r, "Cookie");
        size_t vlen;
        const char *v = h ? web_cookie_find(h, strlen(h), WEB_CSRF_COOKIE, &vlen) : NULL;
        if (v && is_token(v, vlen)) {
            memcpy(r->csrf_anon, v, vlen);
            r->csrf_anon[vlen] = '\0';
        }
    }
    return r->csrf_anon;
}

const char *web_csrf_token(struct web_req *r)
{
    if (r->has_sess)
        return r->sess->csrf;
    if (!anon_cookie(r)[0]) {
        unsigned char raw[32];
        cm_random_bytes(raw, sizeof raw);
        cm_hex_encode(raw, sizeof raw, r->csrf_anon);
        web_resp_header(r, "Set-Cookie", "%s=%s; Path=/; HttpOnly; SameSite=Lax%s", WEB_CSRF_COOKIE,
                        r->csrf_anon, web_cfg.cookie_secure ? "; Secure" : "");
    }
    return r->csrf_anon;
}

bool web_csrf_ok(struct web_req *r, const char *tok, size_t len)
{
    const char *want = r->has_sess ? r->sess->csrf : anon_cookie(r);
    if (!tok || !is_token(want, strlen(want)) || !is_token(tok, len))
        return false;
    return cm_ct_equal(want, WEB_CSRF_LEN, tok, len);
}
