#include "page.h"

#include "cm_log.h"
#include "cm_buf.h"
#include "csrf.h"
#include "db.h"
#include "session.h"
#include "validate.h"

#include <stdio.h>
#include <string.h>

void web_page(struct web_req *r, unsigned status, const char *title, const char *head_tpl,
              const char *tpl, const struct web_var *vars, size_t n)
{
    if (!r->sess_loaded && !r->db_failed)
        (void)web_session_load(r); /* for the nav; a failure shows the signed-out nav */
    const char *csrf = web_csrf_token(r);
    struct web_var v[WEB_PAGE_MAX_VARS + 1];
    if (n > WEB_PAGE_MAX_VARS)
        n = WEB_PAGE_MAX_VARS;
    if (n)
        memcpy(v, vars, n * sizeof *v);
    v[n] = WEB_VAR("csrf", csrf);

    struct cm_buf content, nav, head, admin;
    cm_buf_init(&content);
    cm_buf_init(&nav);
    cm_buf_init(&head);
    cm_buf_init(&admin);
    int rc = web_tpl_render(&content, tpl, v, n + 1);
    if (head_tpl)
        rc |= web_tpl_render(&head, head_tpl, v, n + 1);
    if (r->has_sess && !r->sess->user.banned) {
        if (r->sess->user.is_admin)
            rc |= web_tpl_render(&admin, "nav_admin.html", NULL, 0);
        struct web_var nv[] = {WEB_VAR("name", r->sess->user.name), WEB_VAR("csrf", csrf),
                               WEB_RAW("admin", admin.data)};
        rc |= web_tpl_render(&nav, "nav_user.html", nv, 3);
    } else {
        rc |= web_tpl_render(&nav, "nav_anon.html", NULL, 0);
    }
    struct web_var lv[] = {WEB_VAR("title", title), WEB_VAR("csrf", csrf),
                           WEB_RAW("head", head.data), WEB_RAW("nav", nav.data),
                           WEB_RAW("content", content.data)};
    cm_buf_free(&r->out);
    rc |= web_tpl_render(&r->out, "layout.html", lv, 5);
    cm_buf_free(&content);
    cm_buf_free(&nav);
    cm_buf_free(&head);
    cm_buf_free(&admin);
    if (rc != 0) {
        /* a template bug: never send half a page */
        cm_buf_free(&r->out);
        web_text(r, 500, "Internal error\n");
        return;
    }
    r->status = status;
    r->ctype = "text/html; charset=utf-8";
}

static const char *status_title(unsigned status)
{
    switch (status) {
    case 400:
        return "Bad request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not found";
    case 405:
        return "Method not allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Request too large";
    case 415:
        return "Unsupported form encoding";
    case 429:
        return "Too many requests";
    case 503:
        return "Service unavailable";
    default:
        return "Error";
    }
}

void web_page_error(struct web_req *r, unsigned status, const char *message)
{
    const char *title = status_title(status);
    struct web_var v[] = {WEB_VAR("heading", title), WEB_VAR("message", message)};
    web_page(r, status, title, NULL, "error.html", v, 2);
}

void web_page_busy(struct web_req *r, const char *message)
{
    web_resp_header(r, "Retry-After", "%d", WEB_RETRY_AFTER_S);
    web_page_error(r, 503, message);
}

void web_page_db_error(struct web_req *r, int rc)
{
    if (rc == WEB_DB_DOWN)
        web_page_busy(r, "The database is not reachable right now. Try again in a few seconds.");
    else
        web_page_error(r, 500, "Something went wrong on our side.");
}

/* The form check: content type, syntax, CSRF token. */
static bool page_form(struct web_req *r, struct web_form *f)
{
    const char *ct = web_req_header(r, "Content-Type");
    static const char want[] = "application/x-www-form-urlencoded";
    if (r->body.len > 0 && (!ct || strncmp(ct, want, sizeof want - 1) != 0 ||
                            (ct[sizeof want - 1] != '\0' && ct[sizeof want - 1] != ';'))) {
        web_page_error(r, 415, "Forms must be sent as application/x-www-form-urlencoded.");
        return false;
    }
    if (web_form_parse(r->body.data, r->body.len, f) < 0) {
        web_page_error(r, 400, "The form data is malformed.");
        return false;
    }
    size_t tl;
    const char *tok = web_form_get(f, "csrf_token", &tl);
    if (!web_csrf_ok(r, tok, tok ? tl : 0)) {
        web_form_free(f);
        web_page_error(r, 403,
                       "The form has expired or did not come from this site. Reload "
                       "the page and try again.");
        return false;
    }
    return true;
}

/* To the login, and back to this page after it if it is one the login may return to (a
 * room's page, an invite link: web_valid_next). */
static void login_redirect(struct web_req *r)
{
    char to[sizeof "/login?next=" + WEB_NEXT_MAX];
    size_t pl = strlen(r->path);
    if (strcmp(r->method, "GET") == 0 && pl > sizeof "/rooms" - 1 && web_valid_next(r->path, pl)) {
        snprintf(to, sizeof to, "/login?next=%s", r->path);
        web_redirect(r, to);
    } else {
        web_redirect(r, "/login");
    }
}

bool web_page_begin(struct web_req *r, unsigned need, struct web_form *f)
{
    if (f)
        memset(f, 0, sizeof *f);
    enum web_db_rc rc = web_session_load(r);
    if (rc != WEB_DB_OK) {
        web_page_db_error(r, rc);
        return false;
    }
    if ((need & WEB_NEED_FORM) && !page_form(r, f))
        return false;
    if (need & (WEB_NEED_USER | WEB_NEED_ADMIN)) {
        const char *refusal = NULL;
        if (!r->has_sess)
            login_redirect(r);
        else if (r->sess->user.banned)
            refusal = "This account is banned.";
        else if ((need & WEB_NEED_ADMIN) && !r->sess->user.is_admin)
            refusal = "Only admins can do that.";
        if (!r->has_sess || refusal) {
            if (refusal)
                web_page_error(r, 403, refusal);
            if (need & WEB_NEED_FORM)
                web_form_free(f);
            return false;
        }
    }
    return true;
}
