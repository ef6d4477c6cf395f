/* CSRF tokens. Logged in: the token stored with the session. Before login (register and
 * login forms): a double-submit token in the HttpOnly `csrf` cookie, echoed by the form.
 * Either way a cross-site page can neither read the token nor set the cookie. */
#ifndef WEB_CSRF_H
#define WEB_CSRF_H

#include "req.h"

#include <stdbool.h>
#include <stddef.h>

#define WEB_CSRF_COOKIE "csrf"

/* The token to put in this response's forms (creating the pre-login cookie if needed).
 * Call web_session_load first. Borrowed from r. */
const char *web_csrf_token(struct web_req *r);

/* True if [tok, tok+len) is this request's expected token (constant-time comparison). */
bool web_csrf_ok(struct web_req *r, const char *tok, size_t len);

#endif
