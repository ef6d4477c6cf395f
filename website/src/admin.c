/* The admin page and its actions: ban, unban, make admin, delete room. */
#include "cm_log.h"
#include "cm_buf.h"
#include "cm_util.h"
#include "db.h"
#include "events.h"
#include "page.h"
#include "rooms.h"
#include "handlers.h"
#include "session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WEB_ADMIN_LIST_MAX 500 /* users or rooms shown on the admin page */

void web_h_admin_get(struct web_req *r)
{
    if (!web_page_begin(r, WEB_NEED_ADMIN, NULL))
        return;
    char limit[16];
    snprintf(limit, sizeof limit, "%d", WEB_ADMIN_LIST_MAX);
    const char *p[1] = {limit};
    PGresult *users = NULL, *rooms = NULL;
    enum web_db_rc rc =
        web_db_query(r, &users,
                     "SELECT id, email, name, is_admin, banned_at IS NOT NULL, public_id "
                     "FROM users ORDER BY id LIMIT $1::int",
                     1, p);
    if (rc == WEB_DB_OK)
        rc = web_db_query(r, &rooms,
                          "SELECT r.name, r.title, u.email FROM rooms r "
                          "JOIN users u ON u.id = r.owner_id ORDER BY r.name LIMIT $1::int",
                          1, p);
    if (rc != WEB_DB_OK) {
        PQclear(users);
        web_page_db_error(r, rc);
        return;
    }
    const char *csrf = r->sess->csrf;
    struct cm_buf ub, rb, act;
    cm_buf_init(&ub);
    cm_buf_init(&rb);
    int trc = 0;
    for (int i = 0; i < PQntuples(users); i++) {
        const char *id = PQgetvalue(users, i, 0);
        bool admin = PQgetvalue(users, i, 3)[0] == 't';
        bool banned = PQgetvalue(users, i, 4)[0] == 't';
        bool self = strtoll(id, NULL, 10) == r->sess->user.id;
        cm_buf_init(&act);
        struct web_var fv[] = {WEB_VAR("id", id), WEB_VAR("csrf", csrf)};
        if (self)
            trc |= web_tpl_render(&act, "admin_self.html", NULL, 0);
        else if (!admin) /* admins cannot be banned (user_action): no button that must fail */
            trc |= web_tpl_render(&act, banned ? "admin_unban_form.html" : "admin_ban_form.html",
                                  fv, 2);
        if (!admin && !banned)
            trc |= web_tpl_render(&act, "admin_promote_form.html", fv, 2);
        struct web_var uv[] = {
            WEB_VAR("id", id),
            WEB_VAR("email", PQgetvalue(users, i, 1)),
            WEB_VAR("name", PQgetvalue(users, i, 2)),
            WEB_VAR("public_id", PQgetvalue(users, i, 5)),
            WEB_VAR("status", banned  ? "banned"
                              : admin ? "admin"
                                      : "member"),
            WEB_RAW("actions", act.data),
        };
        trc |= web_tpl_render(&ub, "admin_user_row.html", uv, 6);
        cm_buf_free(&act);
    }
    for (int i = 0; i < PQntuples(rooms); i++) {
        struct web_var rv[] = {
            WEB_VAR("name", PQgetvalue(rooms, i, 0)),
            WEB_VAR("title", PQgetvalue(rooms, i, 1)),
            WEB_VAR("owner", PQgetvalue(rooms, i, 2)),
            WEB_VAR("csrf", csrf),
        };
        trc |= web_tpl_render(&rb, "admin_room_row.html", rv, 4);
    }
    PQclear(users);
    PQclear(rooms);
    struct web_var v[] = {WEB_RAW("users", ub.data), WEB_RAW("rooms", rb.data)};
    if (trc != 0)
        web_text(r, 500, "Internal error\n");
    else
        web_page(r, 200, "Admin", NULL, "admin.html", v, 2);
    cm_buf_free(&ub);
    cm_buf_free(&rb);
}

enum admin_action { BAN, UNBAN, PROMOTE };

static void user_action(struct web_req *r, enum admin_action what)
{
    struct web_form f;
    if (!web_page_begin(r, WEB_NEED_FORM | WEB_NEED_ADMIN, &f))
        return;
    web_form_free(&f);
    /* The id is 1..18 digits: anything else names no user. */
    char id[24];
    if (r->param_len == 0 || r->param_len > 18) {
        web_page_error(r, 404, "There is no such user.");
        return;
    }
    for (size_t i = 0; i < r->param_len; i++) {
        if (r->param[i] < '0' || r->param[i] > '9') {
            web_page_error(r, 404, "There is no such user.");
            return;
        }
    }
    memcpy(id, r->param, r->param_len);
    id[r->param_len] = '\0';
    if (what == BAN && strtoll(id, NULL, 10) == r->sess->user.id) {
        web_page_error(r, 400, "You cannot ban yourself.");
        return;
    }
    /* Each statement locks the target's row (FOR UPDATE: a concurrent promote and ban of
     * the same user run one after the other), changes it only if the rule allows, and
     * reports what it found: rows found, rows changed, is_admin, banned. */
#define TARGET                                                                                     \
    "WITH t AS (SELECT id, is_admin, banned_at IS NOT NULL AS banned FROM users "                  \
    "WHERE id = $1 FOR UPDATE), "
#define REPORT                                                                                     \
    "SELECT (SELECT count(*) FROM t), (SELECT count(*) FROM u), "                                  \
    "coalesce((SELECT is_admin FROM t), false), coalesce((SELECT banned FROM t), false)"
    static const char *const sql[] = {
        /* Ban and revoke every session of the user in one statement (one transaction): no
         * window in which the banned user still has a working session. The rows are
         * revoked rather than deleted so the user's open pages learn they are banned (403)
         * instead of being told to log in; they never work again, even after an unban.
         * Never an admin: no admin can ban another, so the last admin cannot be banned
         * either, and the site always keeps one. */
        [BAN] = TARGET "u AS (UPDATE users SET banned_at = coalesce(banned_at, now()) "
                       "WHERE id IN (SELECT id FROM t WHERE NOT is_admin) RETURNING id), "
                       "s AS (UPDATE sessions SET revoked_at = coalesce(revoked_at, now()) "
                       "WHERE user_id IN (SELECT id FROM u)), "
                       /* the event for the chat daemons, in the same transaction: they
                        * close the user's connections (4003) and refuse older tokens */
                       "m AS (INSERT INTO moderation_events (kind, uid, at_ms) "
                       "SELECT 'ban', public_id, $2::bigint FROM users "
                       "WHERE id IN (SELECT id FROM u)) " REPORT,
        [UNBAN] = TARGET "u AS (UPDATE users SET banned_at = NULL "
                         "WHERE id IN (SELECT id FROM t) RETURNING id) " REPORT,
        /* A banned user is never made an admin (an admin cannot be banned: the ban would
         * be stuck for good). */
        [PROMOTE] = TARGET "u AS (UPDATE users SET is_admin = true "
                           "WHERE id IN (SELECT id FROM t WHERE NOT banned) RETURNING id) " REPORT,
    };
#undef TARGET
#undef REPORT
    static const char *const names[] = {
        [BAN] = "banned", [UNBAN] = "unbanned", [PROMOTE] = "promoted"};
    char at_ms[24];
    snprintf(at_ms, sizeof at_ms, "%lld", (long long)cm_now_ms());
    const char *p[2] = {id, at_ms};
    PGresult *res;
    enum web_db_rc rc = web_db_query(r, &res, sql[what], what == BAN ? 2 : 1, p);
    if (rc != WEB_DB_OK) {
        web_page_db_error(r, rc);
        return;
    }
    bool found = strcmp(PQgetvalue(res, 0, 0), "0") != 0;
    bool changed = strcmp(PQgetvalue(res, 0, 1), "0") != 0;
    bool target_admin = PQgetvalue(res, 0, 2)[0] == 't';
    PQclear(res);
    if (!found) {
        web_page_error(r, 404, "There is no such user.");
        return;
    }
    if (!changed && what == BAN && target_admin) {
        web_page_error(r, 403,
                       "Admins cannot be banned, not even by another admin: the site "
                       "must always keep an admin.");
        return;
    }
    if (!changed && what == PROMOTE) {
        web_page_error(r, 409,
                       "This user is banned and cannot be made an admin. Unban them "
                       "first.");
        return;
    }
    if (what == BAN && changed)
        web_events_wake(); /* the ban reaches open chats now, not at the next poll */
    cm_info("admin %lld %s user %s", r->sess->user.id, names[what], id);
    web_redirect(r, "/admin");
}

void web_h_admin_ban_post(struct web_req *r)
{
    user_action(r, BAN);
}

void web_h_admin_unban_post(struct web_req *r)
{
    user_action(r, UNBAN);
}

void web_h_admin_promote_post(struct web_req *r)
{
    user_action(r, PROMOTE);
}

void web_h_admin_room_delete_post(struct web_req *r)
{
    web_rooms_delete(r, true, "/admin");
}
