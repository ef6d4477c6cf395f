/* HTML pages: the shared layout around a page template, error pages, and the checks every
 * page handler starts with. */
#ifndef WEB_PAGE_H
#define WEB_PAGE_H

#include "form.h"
#include "req.h"
#include "template.h"

#define WEB_PAGE_MAX_VARS 24

/* Renders template tpl (with vars, plus "csrf" added automatically) inside layout.html and
 * sets the response. head_tpl (may be NULL) is a template rendered into <head>. */
void web_page(struct web_req *r, unsigned status, const char *title, const char *head_tpl,
              const char *tpl, const struct web_var *vars, size_t n);

/* An error page with a heading and a message. */
void web_page_error(struct web_req *r, unsigned status, const char *message);

/* What a handler needs before it does anything (web_page_begin's `need`). */
enum {
    WEB_NEED_FORM = 1 << 0,  /* a urlencoded POST body with this request's csrf_token */
    WEB_NEED_USER = 1 << 1,  /* a signed-in user who is not banned */
    WEB_NEED_ADMIN = 1 << 2, /* ... who is an admin (implies WEB_NEED_USER) */
};

/* The one preamble of every page handler: loads the session, then, as `need` asks, parses
 * the form into f and checks its csrf_token, and checks that the user is signed in, not
 * banned, an admin. Returns true when all hold (with WEB_NEED_FORM the caller then owns f
 * and web_form_free()s it). Otherwise sets the response (503/500 database, 415 wrong form
 * type, 400 malformed, 403 bad token, 303 to /login, 403 banned, 403 not an admin) and
 * returns false; f is then empty and needs no freeing. f may be NULL without
 * WEB_NEED_FORM. */
bool web_page_begin(struct web_req *r, unsigned need, struct web_form *f);

/* 503 with Retry-After: the server is too busy (or a dependency too slow) for this request
 * right now; message says what to do. */
void web_page_busy(struct web_req *r, const char *message);

/* Maps a failed database call to its page: 503 (with Retry-After) when down or too slow,
 * 500 otherwise. */
void web_page_db_error(struct web_req *r, int rc);

#endif
