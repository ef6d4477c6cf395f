/* Accounts: landing page, registration, login, logout. */
#include "cm_alloc.h"
#include "cm_log.h"
#include "config.h"
#include "db.h"
#include "hash.h"
#include "page.h"
#include "password.h"
#include "handlers.h"
#include "session.h"
#include "validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void web_h_home(struct web_req *r)
{
    enum web_db_rc rc = web_session_load(r);
    if (rc == WEB_DB_OK && r->has_sess && !r->sess->user.banned) {
        web_redirect(r, "/rooms");
        return;
    }
    web_page(r, 200, "Welcome", NULL, "home.html", NULL, 0);
}

static const char *login_next(const char *s, size_t len, char *buf, size_t size);

/* "?next=<next>" for the link between the login and registration pages, or "" (next was
 * checked with web_valid_next: its characters need no encoding). */
static const char *next_query(const char *next, char q[sizeof "?next=" + WEB_NEXT_MAX])
{
    q[0] = '\0';
    if (next && next[0])
        snprintf(q, sizeof "?next=" + WEB_NEXT_MAX, "?next=%s", next);
    return q;
}

/* next: where to go after registering (web_valid_next), or "" / NULL. */
static void register_form(struct web_req *r, unsigned status, const char *email, size_t email_len,
                          const char *name, size_t name_len, const char *err_email,
                          const char *err_name, const char *err_password, const char *err_form,
                          const char *next)
{
    char q[sizeof "?next=" + WEB_NEXT_MAX];
    struct web_var v[] = {
        WEB_VARN("email", email, email_len),
        WEB_VARN("name", name, name_len),
        WEB_VAR("err_email", err_email),
        WEB_VAR("err_name", err_name),
        WEB_VAR("err_password", err_password),
        WEB_VAR("err_form", err_form),
        WEB_VAR("next", next),
        WEB_VAR("next_q", next_query(next, q)),
    };
    web_page(r, status, "Register", NULL, "register.html", v, 8);
}

void web_h_register_get(struct web_req *r)
{
    (void)web_session_load(r);
    char nb[WEB_NEXT_MAX];
    const char *arg = web_req_arg(r, "next");
    register_form(r, 200, "", 0, "", 0, NULL, NULL, NULL, NULL,
                  login_next(arg, arg ? strlen(arg) : 0, nb, sizeof nb));
}

/* What register and login keep across the hand-off to the hash pool (hash.h). */
struct acct_ctx {
    char email[WEB_EMAIL_MAX + 1]; /* normalised */
    char typed[WEB_EMAIL_MAX + 1]; /* as typed, to show again in the form; "" if too long */
    size_t typed_len;
    char name[WEB_NAME_BYTES + 1];
    long long id; /* login: the account found, 0 if none */
    bool banned;
    char next[WEB_NEXT_MAX]; /* where to go after it (web_valid_next), or "" */
};

static struct acct_ctx *acct_ctx_new(const char *typed, size_t typed_len)
{
    struct acct_ctx *c = cm_xcalloc(1, sizeof *c);
    if (typed_len <= WEB_EMAIL_MAX) {
        memcpy(c->typed, typed, typed_len);
        c->typed_len = typed_len;
    }
    return c;
}

/* The pool refused the job (queue full) or gave up on it (deadline): 503 with Retry-After. */
static bool hash_refused(struct web_req *r)
{
    enum web_hash_state st = r->hash ? web_hash_job_state(r->hash) : WEB_HASH_EXPIRED;
    if (st == WEB_HASH_DONE)
        return false;
    web_page_busy(r, "Too many sign-ups and logins are being handled right now. Try again in a "
                     "few seconds.");
    return true;
}

static void register_hashed(struct web_req *r);

void web_h_register_post(struct web_req *r)
{
    struct web_form f;
    if (!web_page_begin(r, WEB_NEED_FORM, &f))
        return;
    size_t el = 0, nl = 0, pl = 0;
    const char *email = web_form_get(&f, "email", &el);
    const char *name = web_form_get(&f, "name", &nl);
    const char *pw = web_form_get(&f, "password", &pl);
    if (!email)
        email = "";
    if (!name)
        name = "";
    if (!pw)
        pw = "";
    web_trim(&email, &el);
    struct acct_ctx *c = acct_ctx_new(email, el);
    size_t xl = 0;
    const char *xs = web_form_get(&f, "next", &xl);
    (void)login_next(xs, xl, c->next, sizeof c->next);
    const char *ee = web_valid_email(email, el, c->email);
    const char *ne = web_valid_name(name, nl, c->name);
    const char *pe = web_valid_password(pw, pl);
    if (ee || ne || pe) {
        /* The user's input goes back into the form (escaped), except the password. Invalid
         * UTF-8 never gets here: the form parser refused it. */
        web_trim(&name, &nl);
        register_form(r, 400, email, el, name, nl, ee, ne, pe, NULL, c->next);
        free(c);
        goto out;
    }
    struct web_hash_job *job = web_hash_job_new(false, pw, pl, NULL);
    if (!job) {
        free(c);
        (void)hash_refused(r);
        goto out;
    }
    web_req_hash(r, job, register_hashed, c, free);
out:
    web_form_free(&f);
}

/* Registration, after the hash pool made the password's hash. */
static void register_hashed(struct web_req *r)
{
    struct acct_ctx *c = r->ctx;
    if (hash_refused(r))
        return;
    const char *p[3] = {c->email, c->name, web_hash_job_hash(r->hash)};
    PGresult *res;
    enum web_db_rc rc = web_db_query(
        r, &res, "INSERT INTO users (email, name, password_hash) VALUES ($1, $2, $3) RETURNING id",
        3, p);
    if (rc == WEB_DB_CONFLICT) {
        register_form(r, 409, c->typed, c->typed_len, c->name, strlen(c->name),
                      "An account with this email already exists.", NULL, NULL, NULL, c->next);
        return;
    }
    if (rc != WEB_DB_OK) {
        web_page_db_error(r, rc);
        return;
    }
    long long id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    cm_info("user %lld registered", id);
    if (r->has_sess)
        (void)web_session_destroy(r, false); /* as on login: the old session in this browser ends */
    rc = web_session_create(r, id);
    if (rc != WEB_DB_OK) {
        web_page_db_error(r, rc);
        return;
    }
    web_redirect(r, c->next[0] ? c->next : "/rooms");
}

/* next: a page to go to after the login, already checked with web_valid_next, or "" / NULL. */
static void login_form(struct web_req *r, unsigned status, const char *email, size_t email_len,
                       const char *err_form, const char *next)
{
    char q[sizeof "?next=" + WEB_NEXT_MAX];
    struct web_var v[] = {WEB_VARN("email", email, email_len), WEB_VAR("err_form", err_form),
                          WEB_VAR("next", next), WEB_VAR("next_q", next_query(next, q))};
    web_page(r, status, "Log in", NULL, "login.html", v, 4);
}

/* Copies the ?next= of the login page or the "next" field of its form into buf (size bytes)
 * if it is a safe target (web_valid_next); else buf is "". Returns buf. */
static const char *login_next(const char *s, size_t len, char *buf, size_t size)
{
    buf[0] = '\0';
    if (s && len < size && web_valid_next(s, len)) {
        memcpy(buf, s, len);
        buf[len] = '\0';
    }
    return buf;
}

void web_h_login_get(struct web_req *r)
{
    char nb[WEB_NEXT_MAX];
    const char *arg = web_req_arg(r, "next");
    const char *next = login_next(arg, arg ? strlen(arg) : 0, nb, sizeof nb);
    enum web_db_rc rc = web_session_load(r);
    if (rc == WEB_DB_OK && r->has_sess && !r->sess->user.banned) {
        web_redirect(r, next[0] ? next : "/rooms");
        return;
    }
    login_form(r, 200, "", 0, NULL, next);
}

/* One message for every failure, so the page does not tell whether the email exists. */
static const char login_wrong[] = "The email or password is wrong.";

static void login_verified(struct web_req *r);

void web_h_login_post(struct web_req *r)
{
    struct web_form f;
    if (!web_page_begin(r, WEB_NEED_FORM, &f))
        return;
    size_t el = 0, pl = 0;
    const char *email = web_form_get(&f, "email", &el);
    const char *pw = web_form_get(&f, "password", &pl);
    if (!email)
        email = "";
    if (!pw)
        pw = "";
    web_trim(&email, &el);
    struct acct_ctx *c = acct_ctx_new(email, el);
    size_t xl = 0;
    const char *xs = web_form_get(&f, "next", &xl);
    (void)login_next(xs, xl, c->next, sizeof c->next);
    PGresult *res = NULL;
    /* A malformed email or password is verified against the dummy all the same: the answer
     * takes as long as for a real account. */
    if (!web_valid_email(email, el, c->email) && pl > 0 && pl <= WEB_PASSWORD_MAX) {
        const char *p[1] = {c->email};
        enum web_db_rc rc = web_db_query(
            r, &res, "SELECT id, password_hash, banned_at IS NOT NULL FROM users WHERE email = $1",
            1, p);
        if (rc != WEB_DB_OK) {
            web_page_db_error(r, rc);
            free(c);
            goto out;
        }
    }
    bool found = res && PQntuples(res) == 1;
    if (found) {
        c->id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        c->banned = PQgetvalue(res, 0, 2)[0] == 't';
    }
    struct web_hash_job *job = web_hash_job_new(true, pw, pl, found ? PQgetvalue(res, 0, 1) : NULL);
    PQclear(res);
    if (!job) {
        free(c);
        (void)hash_refused(r);
        goto out;
    }
    web_req_hash(r, job, login_verified, c, free);
out:
    web_form_free(&f);
}

/* Login, after the hash pool verified the password. */
static void login_verified(struct web_req *r)
{
    struct acct_ctx *c = r->ctx;
    if (hash_refused(r))
        return;
    if (!web_hash_job_ok(r->hash) || c->id == 0) {
        cm_info("login failed");
        login_form(r, 401, c->typed, c->typed_len, login_wrong, c->next);
        return;
    }
    if (c->banned) {
        /* Only after the right password: a banned account is not revealed to guessers. */
        cm_info("login refused: user %lld is banned", c->id);
        web_page_error(r, 403, "This account is banned.");
        return;
    }
    if (r->has_sess)
        (void)web_session_destroy(r, false); /* the old session in this browser ends */
    enum web_db_rc rc = web_session_create(r, c->id);
    if (rc != WEB_DB_OK) {
        web_page_db_error(r, rc);
        return;
    }
    cm_info("user %lld logged in", c->id);
    web_redirect(r, c->next[0] ? c->next : "/rooms");
}

void web_h_logout_post(struct web_req *r)
{
    struct web_form f;
    if (!web_page_begin(r, WEB_NEED_FORM, &f))
        return;
    web_form_free(&f);
    enum web_db_rc rc = web_session_destroy(r, true);
    if (rc != WEB_DB_OK) {
        web_page_db_error(r, rc);
        return;
    }
    web_redirect(r, "/login");
}
