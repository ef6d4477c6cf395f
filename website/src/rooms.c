/* Rooms: list with search, create, the chat page shell, delete. */
#include "rooms.h"

#include "cm_log.h"
#include "cm_buf.h"
#include "cm_alloc.h"
#include "config.h"
#include "db.h"
#include "events.h"
#include "page.h"
#include "handlers.h"
#include "session.h"
#include "validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *web_like_escape(const char *s, size_t len)
{
    struct cm_buf b;
    cm_buf_init(&b);
    cm_buf_reserve(&b, 2 * len + 1);
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\\' || s[i] == '%' || s[i] == '_')
            cm_buf_append(&b, "\\", 1);
        cm_buf_append(&b, &s[i], 1);
    }
    cm_buf_append(&b, "", 0); /* NUL-terminates even when s is empty */
    return cm_buf_take(&b, NULL);
}

const char *web_rooms_query_check(const char *q, size_t len)
{
    if (!web_text_clean(q, len, 0) || cm_utf8_count(q, len) > WEB_SEARCH_MAX)
        return "The search text is too long or contains characters that are not allowed.";
    /* Fewer than 3 characters hold no trigram: the index could not help and every room
     * would be read. */
    if (len > 0 && cm_utf8_count(q, len) < WEB_SEARCH_MIN)
        return "Type at least 3 characters to search.";
    return NULL;
}

enum web_db_rc web_rooms_search(struct web_req *r, const char *q, size_t len, PGresult **res)
{
    char limit[16];
    snprintf(limit, sizeof limit, "%d", WEB_ROOMS_LIST_MAX);
    if (len == 0) {
        const char *p[1] = {limit};
        return web_db_query(r, res,
                            "SELECT r.name, r.title, r.description, u.name, r.owner_id "
                            "FROM rooms r JOIN users u ON u.id = r.owner_id "
                            "ORDER BY r.name LIMIT $1::int",
                            1, p);
    }
    /* rooms_search (migration 003) reads the trigram index rooms_search_trgm_idx at every
     * table size. The pattern is a parameter with LIKE's wildcards escaped: the user's % and
     * _ are literal, and it holds no line feed (web_rooms_query_check), so a match never
     * spans two columns. */
    char *pat = web_like_escape(q, len);
    const char *p[2] = {pat, limit};
    enum web_db_rc rc = web_db_query(r, res, "SELECT * FROM rooms_search($1, $2::int)", 2, p);
    free(pat);
    return rc;
}

struct room_form {
    const char *name, *title, *description;
    size_t name_len, title_len, description_len;
    const char *err_name, *err_title, *err_description, *err_form;
};

static void rooms_page(struct web_req *r, unsigned status, const struct room_form *fm)
{
    const char *q = web_req_arg(r, "q");
    if (!q)
        q = "";
    size_t ql = strlen(q);
    const char *qerr = web_rooms_query_check(q, ql);
    if (qerr) {
        web_page_error(r, 400, qerr);
        return;
    }
    PGresult *res;
    enum web_db_rc rc = web_rooms_search(r, q, ql, &res);
    if (rc != WEB_DB_OK) {
        web_page_db_error(r, rc);
        return;
    }
    /* The csrf token for the per-room delete forms. */
    const char *csrf = r->sess->csrf;
    struct cm_buf items, actions;
    cm_buf_init(&items);
    int trc = 0;
    int n = PQntuples(res);
    for (int i = 0; i < n; i++) {
        cm_buf_init(&actions);
        long long owner = strtoll(PQgetvalue(res, i, WEB_ROOM_OWNER_ID), NULL, 10);
        if (owner == r->sess->user.id || r->sess->user.is_admin) {
            struct web_var dv[] = {WEB_VAR("name", PQgetvalue(res, i, WEB_ROOM_NAME)),
                                   WEB_VAR("csrf", csrf)};
            trc |= web_tpl_render(&actions, "room_delete_form.html", dv, 2);
        }
        struct web_var iv[] = {
            WEB_VAR("name", PQgetvalue(res, i, WEB_ROOM_NAME)),
            WEB_VAR("title", PQgetvalue(res, i, WEB_ROOM_TITLE)),
            WEB_VAR("description", PQgetvalue(res, i, WEB_ROOM_DESCRIPTION)),
            WEB_VAR("owner", PQgetvalue(res, i, WEB_ROOM_OWNER_NAME)),
            WEB_RAW("actions", actions.data),
        };
        trc |= web_tpl_render(&items, "room_item.html", iv, 5);
        cm_buf_free(&actions);
    }
    if (n == 0)
        trc |= web_tpl_render(&items, q[0] ? "rooms_none_found.html" : "rooms_none.html", NULL, 0);
    PQclear(res);
    char count[32];
    snprintf(count, sizeof count, "%d", n);
    struct room_form empty = {"", "", "", 0, 0, 0, NULL, NULL, NULL, NULL};
    if (!fm)
        fm = &empty;
    struct web_var v[] = {
        WEB_VAR("q", q),
        WEB_VAR("count", count),
        WEB_RAW("rooms", items.data),
        WEB_VARN("name", fm->name, fm->name_len),
        WEB_VARN("title", fm->title, fm->title_len),
        WEB_VARN("description", fm->description, fm->description_len),
        WEB_VAR("err_name", fm->err_name),
        WEB_VAR("err_title", fm->err_title),
        WEB_VAR("err_description", fm->err_description),
        WEB_VAR("err_form", fm->err_form),
    };
    if (trc != 0)
        web_text(r, 500, "Internal error\n");
    else
        web_page(r, status, "Rooms", NULL, "rooms.html", v, 10);
    cm_buf_free(&items);
}

void web_h_rooms_get(struct web_req *r)
{
    if (!web_page_begin(r, WEB_NEED_USER, NULL))
        return;
    rooms_page(r, 200, NULL);
}

void web_h_rooms_post(struct web_req *r)
{
    struct web_form f;
    if (!web_page_begin(r, WEB_NEED_FORM | WEB_NEED_USER, &f))
        return;
    struct room_form fm = {0};
    fm.name = web_form_get(&f, "name", &fm.name_len);
    fm.title = web_form_get(&f, "title", &fm.title_len);
    fm.description = web_form_get(&f, "description", &fm.description_len);
    if (!fm.name)
        fm.name = "";
    if (!fm.title)
        fm.title = "";
    if (!fm.description)
        fm.description = "";
    web_trim(&fm.name, &fm.name_len);
    web_trim(&fm.title, &fm.title_len);
    web_trim(&fm.description, &fm.description_len);
    fm.err_name = web_valid_room_name(fm.name, fm.name_len);
    fm.err_title = web_valid_title(fm.title, fm.title_len);
    fm.err_description = web_valid_description(fm.description, fm.description_len);
    if (fm.err_name || fm.err_title || fm.err_description) {
        rooms_page(r, 400, &fm);
        goto out;
    }
    /* Trimmed values are not NUL-terminated where they end: copy them for libpq. */
    char *name = cm_xstrndup(fm.name, fm.name_len);
    char *title = cm_xstrndup(fm.title, fm.title_len);
    char *desc = cm_xstrndup(fm.description, fm.description_len);
    char owner[24], quota[24];
    snprintf(owner, sizeof owner, "%lld", r->sess->user.id);
    snprintf(quota, sizeof quota, "%lld", web_cfg.rooms_per_hour);
    const char *p[5] = {name, title, desc, owner, quota};
    /* One statement takes a place in the user's hourly quota (room_quota, locked by ON
     * CONFLICT DO UPDATE, so concurrent requests and other replicas count as one) and
     * inserts the room. No row back: the quota is used up, nothing was inserted. A name
     * conflict fails the whole statement, quota update included. */
    PGresult *res;
    enum web_db_rc rc = web_db_query(
        r, &res,
        "WITH q AS (INSERT INTO room_quota AS q (user_id, window_start, used) "
        "VALUES ($4, now(), 1) ON CONFLICT (user_id) DO UPDATE SET "
        "window_start = CASE WHEN q.window_start <= now() - interval '1 hour' THEN now() "
        "ELSE q.window_start END, "
        "used = CASE WHEN q.window_start <= now() - interval '1 hour' THEN 1 "
        "ELSE q.used + 1 END "
        "WHERE q.window_start <= now() - interval '1 hour' OR q.used < $5::int "
        "RETURNING user_id) "
        "INSERT INTO rooms (name, title, description, owner_id) "
        "SELECT $1, $2, $3, user_id FROM q RETURNING id",
        5, p);
    int inserted = rc == WEB_DB_OK ? PQntuples(res) : 0;
    if (rc == WEB_DB_OK)
        PQclear(res);
    if (rc == WEB_DB_CONFLICT) {
        fm.err_name = "A room with this name already exists.";
        rooms_page(r, 409, &fm);
    } else if (rc != WEB_DB_OK) {
        web_page_db_error(r, rc);
    } else if (inserted == 0) {
        cm_info("user %lld: room quota used up", r->sess->user.id);
        char msg[160];
        snprintf(msg, sizeof msg,
                 "You have created %lld rooms within the last hour, the most allowed. Try "
                 "again later.",
                 web_cfg.rooms_per_hour);
        fm.err_form = msg;
        web_resp_header(r, "Retry-After", "%d", 600);
        rooms_page(r, 429, &fm);
    } else {
        cm_info("user %lld created room %s", r->sess->user.id, name);
        char loc[64];
        snprintf(loc, sizeof loc, "/rooms/%s", name);
        web_redirect(r, loc);
    }
    free(name);
    free(title);
    free(desc);
out:
    web_form_free(&f);
}

/* Copies the room name from the path into name (NUL-terminated). A name that cannot exist
 * (not [a-z0-9][a-z0-9-]{2,31}) gets the 404 page here, before any query; returns false then. */
static bool room_param(struct web_req *r, char name[CM_ROOM_MAX + 1])
{
    if (!cm_room_name_valid(r->param, r->param_len)) {
        web_page_error(r, 404, "There is no room with this name.");
        return false;
    }
    memcpy(name, r->param, r->param_len);
    name[r->param_len] = '\0';
    return true;
}

void web_h_room_get(struct web_req *r)
{
    char name[CM_ROOM_MAX + 1];
    if (!room_param(r, name))
        return;
    if (!web_page_begin(r, WEB_NEED_USER, NULL))
        return;
    const char *p[1] = {name};
    PGresult *res;
    enum web_db_rc rc = web_db_query(r, &res, "SELECT title FROM rooms WHERE name = $1", 1, p);
    if (rc != WEB_DB_OK) {
        web_page_db_error(r, rc);
        return;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        web_page_error(r, 404, "There is no room with this name.");
        return;
    }
    struct web_var v[] = {
        WEB_VAR("room", name),
        WEB_VAR("room_title", PQgetvalue(res, 0, 0)),
        WEB_VAR("user_id", r->sess->user.public_id),
        WEB_VAR("user_name", r->sess->user.name),
    };
    web_page(r, 200, PQgetvalue(res, 0, 0), "room_head.html", "room.html", v, 4);
    PQclear(res);
}

void web_rooms_delete(struct web_req *r, bool admin_only, const char *back)
{
    struct web_form f;
    if (!web_page_begin(r, WEB_NEED_FORM | (admin_only ? WEB_NEED_ADMIN : WEB_NEED_USER), &f))
        return;
    web_form_free(&f);
    char name[CM_ROOM_MAX + 1];
    if (!room_param(r, name))
        return;
    const char *p[1] = {name};
    PGresult *res;
    enum web_db_rc rc =
        web_db_query(r, &res, "SELECT owner_id, id FROM rooms WHERE name = $1", 1, p);
    if (rc != WEB_DB_OK) {
        web_page_db_error(r, rc);
        return;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        web_page_error(r, 404, "There is no room with this name.");
        return;
    }
    long long owner = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    char id[24];
    snprintf(id, sizeof id, "%s", PQgetvalue(res, 0, 1));
    PQclear(res);
    if (owner != r->sess->user.id && !r->sess->user.is_admin) {
        web_page_error(r, 403, "Only the room's owner or an admin can delete it.");
        return;
    }
    /* Delete the room that was checked, by id: if it was deleted and its name taken again by
     * someone else in between, the new room is not touched. */
    const char *pid[1] = {id};
    rc = web_db_query(r, NULL, WEB_EVENTS_DELETE_ROOM_SQL, 1, pid); /* + its outbox row */
    if (rc != WEB_DB_OK) {
        web_page_db_error(r, rc);
        return;
    }
    web_events_room_deleted(strtoll(id, NULL, 10)); /* the archive deletes its history */
    cm_info("user %lld deleted room %s", r->sess->user.id, name);
    web_redirect(r, back);
}

void web_h_room_delete_post(struct web_req *r)
{
    web_rooms_delete(r, false, "/rooms");
}
