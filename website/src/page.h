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

/* For pages that need a signed-in user: loads the session; returns true if there is a
 * non-banned user, otherwise sets the response (303 to /login, 403 banned, 503 database
 * down) and returns false. */
bool web_page_user(struct web_req *r);

/* For form POSTs: parses the urlencoded body into f and checks its csrf_token. Returns
 * true, or sets the response (400 malformed, 415 wrong type, 403 bad token, 503) and
 * returns false (f is then empty). Loads the session first. */
bool web_page_form(struct web_req *r, struct web_form *f);

/* Maps a failed database call to its page: 503 when down, 500 otherwise. */
void web_page_db_error(struct web_req *r, int rc);

#endif
