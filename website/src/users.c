/* Accounts: landing page, registration, login, logout, and the first admin. */
#include "cm_log.h"
#include "config.h"
#include "db.h"
#include "page.h"
#include "password.h"
#include "router.h"
#include "session.h"
#include "validate.h"

#include <stdio.h>
#include <string.h>

void web_h_home(struct web_req *r)
{
    enum web_db_rc rc = web_session_load(r);
    if (rc == WEB_DB_OK && r->has_sess && !r->sess.user.banned) {
        web_redirect(r, "/rooms");
        return;
    }
    web_page(r, 200, "Welcome", NULL, "home.html", NULL, 0);
}

static void register_form(struct web_req *r, unsigned status, const char *email, size_t email_len,
                          const char *name, size_t name_len, const char *err_email,
                          const char *err_name, const char *err_password, const char *err_form)
{
    struct web_var v[] = {
        WEB_VARN("email", email, email_len),   WEB_VARN("name", name, name_len),
        WEB_VAR("err_email", err_email),       WEB_VAR("err_name", err_name),
        WEB_VAR("err_password", err_password), WEB_VAR("err_form", err_form),
    };
    web_page(r, status, "Register", NULL, "register.html", v, 6);
}

void web_h_register_get(struct web_req *r)
{
    (void)web_session_load(r);
    register_form(r, 200, "", 0, "", 0, NULL, NULL, NULL, NULL);
}

void web_h_register_post(struct web_req *r)
{
    struct web_form f;
    if (!web_page_form(r, &f))
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
    web_trim(&name, &nl);
    char norm[WEB_EMAIL_MAX + 1];
    const char *ee = web_valid_email(email, el, norm);
    const char *ne = web_valid_name(name, nl);
    const char *pe = web_valid_password(pw, pl);
    if (ee || ne || pe) {
        /* The user's input goes back into the form (escaped), except the password. Invalid
         * UTF-8 never gets here: the form parser refused it. */
        register_form(r, 400, email, el, name, nl, ee, ne, pe, NULL);
        goto out;
    }
    char hash[WEB_HASH_MAX];
    if (web_password_hash(pw, pl, hash) < 0) {
        web_page_error(r, 503, "The server is busy. Try again shortly.");
        goto out;
    }
    char namez[CM_NAME_MAX * 4 + 1];
    snprintf(namez, sizeof namez, "%.*s", (int)nl, name);
    const char *p[3] = {norm, namez, hash};
    PGresult *res;
    enum web_db_rc rc = web_db_query(
        r, &res, "INSERT INTO users (email, name, password_hash) VALUES ($1, $2, $3) RETURNING id",
        3, p);
    if (rc == WEB_DB_CONFLICT) {
        register_form(r, 409, email, el, name, nl, "An account with this email already exists.",
                      NULL, NULL, NULL);
        goto out;
    }
    if (rc != WEB_DB_OK) {
        web_page_db_error(r, rc);
        goto out;
    }
    long long id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    cm_info("user %lld registered", id);
    if (r->has_sess)
        (void)web_session_destroy(r, false); /* as on login: the old session in this browser ends */
    rc = web_session_create(r, id);
    if (rc != WEB_DB_OK) {
        web_page_db_error(r, rc);
        goto out;
    }
    web_redirect(r, "/rooms");
out:
    web_form_free(&f);
}

/* next: a page to go to after the login, already checked with web_valid_next, or NULL. */
static void login_form(struct web_req *r, unsigned status, const char *email, size_t email_len,
                       const char *err_form, const char *next)
{
    struct web_var v[] = {WEB_VARN("email", email, email_len), WEB_VAR("err_form", err_form),
                          WEB_VAR("next", next)};
    web_page(r, status, "Log in", NULL, "login.html", v, 3);
}

/* The ?next= of the login page or the "next" field of its form, if it is a safe target. */
static const char *login_next(const char *s, size_t len, char *buf, size_t size)
{
    if (!s || len >= size || !web_valid_next(s, len))
        return NULL;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return buf;
}

void web_h_login_get(struct web_req *r)
{
    char nb[sizeof "/rooms/" + CM_ROOM_MAX];
    const char *arg = web_req_arg(r, "next");
    const char *next = login_next(arg, arg ? strlen(arg) : 0, nb, sizeof nb);
    enum web_db_rc rc = web_session_load(r);
    if (rc == WEB_DB_OK && r->has_sess && !r->sess.user.banned) {
        web_redirect(r, next ? next : "/rooms");
        return;
    }
    login_form(r, 200, "", 0, NULL, next);
}

void web_h_login_post(struct web_req *r)
{
    struct web_form f;
    if (!web_page_form(r, &f))
        return;
    size_t el = 0, pl = 0, xl = 0;
    const char *email = web_form_get(&f, "email", &el);
    const char *pw = web_form_get(&f, "password", &pl);
    char nb[sizeof "/rooms/" + CM_ROOM_MAX];
    const char *xs = web_form_get(&f, "next", &xl);
    const char *next = login_next(xs, xl, nb, sizeof nb);
    if (!email)
        email = "";
    if (!pw)
        pw = "";
    web_trim(&email, &el);
    /* One message for every failure, so the page does not tell whether the email exists. */
    static const char wrong[] = "The email or password is wrong.";
    char norm[WEB_EMAIL_MAX + 1];
    if (web_valid_email(email, el, norm) || pl == 0 || pl > WEB_PASSWORD_MAX) {
        web_password_verify(NULL, pw, pl > WEB_PASSWORD_MAX ? WEB_PASSWORD_MAX : pl);
        login_form(r, 401, email, el, wrong, next);
        goto out;
    }
    const char *p[1] = {norm};
    PGresult *res;
    enum web_db_rc rc = web_db_query(
        r, &res, "SELECT id, password_hash, banned_at IS NOT NULL FROM users WHERE email = $1", 1,
        p);
    if (rc != WEB_DB_OK) {
        web_page_db_error(r, rc);
        goto out;
    }
    bool found = PQntuples(res) == 1;
    bool ok = web_password_verify(found ? PQgetvalue(res, 0, 1) : NULL, pw, pl);
    long long id = found ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    bool banned = found && PQgetvalue(res, 0, 2)[0] == 't';
    PQclear(res);
    if (!ok) {
        cm_info("login failed");
        login_form(r, 401, email, el, wrong, next);
        goto out;
    }
    if (banned) {
        /* Only after the right password: a banned account is not revealed to guessers. */
        cm_info("login refused: user %lld is banned", id);
        web_page_error(r, 403, "This account is banned.");
        goto out;
    }
    if (r->has_sess)
        (void)web_session_destroy(r, false); /* the old session in this browser ends */
    rc = web_session_create(r, id);
    if (rc != WEB_DB_OK) {
        web_page_db_error(r, rc);
        goto out;
    }
    cm_info("user %lld logged in", id);
    web_redirect(r, next ? next : "/rooms");
out:
    web_form_free(&f);
}

void web_h_logout_post(struct web_req *r)
{
    struct web_form f;
    if (!web_page_form(r, &f))
        return;
    web_form_free(&f);
    enum web_db_rc rc = web_session_destroy(r, true);
    if (rc != WEB_DB_OK) {
        web_page_db_error(r, rc);
        return;
    }
    web_redirect(r, "/login");
}

int web_admin_bootstrap(PGconn *c)
{
    if (!web_cfg.admin_email[0])
        return 0;
    const char *p1[1] = {web_cfg.admin_email};
    PGresult *res =
        PQexecParams(c, "SELECT 1 FROM users WHERE email = $1", 1, NULL, p1, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        cm_error("admin bootstrap: %s", PQresultErrorMessage(res));
        PQclear(res);
        return -1;
    }
    bool exists = PQntuples(res) > 0;
    PQclear(res);
    if (exists)
        return 0;
    char hash[WEB_HASH_MAX];
    if (web_password_hash(web_cfg.admin_password, strlen(web_cfg.admin_password), hash) < 0)
        return -1;
    const char *p[3] = {web_cfg.admin_email, "Admin", hash};
    res = PQexecParams(c,
                       "INSERT INTO users (email, name, password_hash, is_admin) "
                       "VALUES ($1, $2, $3, true) ON CONFLICT (email) DO NOTHING",
                       3, NULL, p, NULL, NULL, 0);
    int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;
    if (rc < 0)
        cm_error("admin bootstrap: %s", PQresultErrorMessage(res));
    else if (strcmp(PQcmdTuples(res), "1") == 0) /* 0: another replica was first */
        cm_info("admin bootstrap: created admin account %s", web_cfg.admin_email);
    PQclear(res);
    return rc;
}
