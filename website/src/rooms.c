/* Rooms: list with search, create, the chat page shell, delete. */
#include "rooms.h"

#include "cm_log.h"
#include "cm_buf.h"
#include "cm_alloc.h"
#include "config.h"
#include "db.h"
#include "events.h"
#include "seqs.h"
#include "page.h"
#include "handlers.h"
#include "session.h"
#include "validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

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
    char limit[16], uid[24];
    snprintf(limit, sizeof limit, "%d", WEB_ROOMS_LIST_MAX);
    snprintf(uid, sizeof uid, "%lld", r->sess->user.id);
    /* rooms_search (migrations 003, 005) reads the trigram index rooms_search_trgm_idx at
     * every table size. The pattern is a parameter with LIKE's wildcards escaped: the user's %
     * and _ are literal, and it holds no line feed (web_rooms_query_check), so a match never
     * spans two columns. An empty pattern lists every room the user may see. */
    char *pat = web_like_escape(q, len);
    const char *p[4] = {pat, limit, uid, r->sess->user.is_admin ? "true" : "false"};
    enum web_db_rc rc = web_db_query(
        r, res, "SELECT * FROM rooms_search($1, $2::int, $3::bigint, $4::boolean)", 4, p);
    free(pat);
    return rc;
}

void web_time_utc_text(const char *iso, char *out, size_t size)
{
    /* iso is "YYYY-MM-DDTHH:MM:SSZ" (rooms_search's to_char) */
    if (strlen(iso) < 16) {
        snprintf(out, size, "%s", iso);
        return;
    }
    snprintf(out, size, "%.10s %.5s UTC", iso, iso + 11);
}

/* The activity line of a room (time, place, places left) rendered into b, or nothing for a
 * room without a start time. Columns as web_rooms_search's (or the same order from
 * room_get's query). Returns web_tpl_render's result. */
static int render_activity(struct cm_buf *b, const char *starts, const char *ends,
                           const char *location, const char *capacity, const char *members)
{
    if (!starts || !starts[0])
        return 0;
    char su[40], eu[40], places[64];
    web_time_utc_text(starts, su, sizeof su);
    struct cm_buf endb, locb;
    cm_buf_init(&endb);
    cm_buf_init(&locb);
    cm_buf_append(&endb, "", 0);
    cm_buf_append(&locb, "", 0);
    int rc = 0;
    if (ends && ends[0]) {
        web_time_utc_text(ends, eu, sizeof eu);
        struct web_var ev[] = {WEB_VAR("ends_at", ends), WEB_VAR("ends_utc", eu)};
        rc |= web_tpl_render(&endb, "room_ends.html", ev, 2);
    }
    if (location && location[0]) {
        struct web_var lv[] = {WEB_VAR("location", location)};
        rc |= web_tpl_render(&locb, "room_location.html", lv, 1);
    }
    if (capacity && capacity[0]) {
        long long cap = strtoll(capacity, NULL, 10), n = strtoll(members, NULL, 10);
        long long left = cap > n ? cap - n : 0;
        if (left == 0)
            snprintf(places, sizeof places, "· Full (%lld places)", cap);
        else
            snprintf(places, sizeof places, "· %lld of %lld places left", left, cap);
    } else {
        snprintf(places, sizeof places, "· %s going", members);
    }
    struct web_var v[] = {WEB_VAR("starts_at", starts), WEB_VAR("starts_utc", su),
                          WEB_RAW("ends", endb.data), WEB_RAW("location", locb.data),
                          WEB_VAR("places", places)};
    rc |= web_tpl_render(b, "room_activity.html", v, 5);
    cm_buf_free(&endb);
    cm_buf_free(&locb);
    return rc;
}

static const char *col(PGresult *res, int i, int c)
{
    return PQgetisnull(res, i, c) ? NULL : PQgetvalue(res, i, c);
}

void web_rooms_unread(PGresult *res, long long *out)
{
    int n = PQntuples(res);
    int64_t rids[WEB_SEQS_MAX];
    int idx[WEB_SEQS_MAX];
    long long seqs[WEB_SEQS_MAX];
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        out[i] = WEB_UNREAD_NOT_MEMBER;
        if (strcmp(PQgetvalue(res, i, WEB_ROOM_JOINED), "t") == 0 && k < WEB_SEQS_MAX) {
            rids[k] = strtoll(PQgetvalue(res, i, WEB_ROOM_ID), NULL, 10);
            idx[k++] = i;
        }
    }
    bool ok = web_seqs_latest(rids, k, seqs) == 0;
    for (size_t j = 0; j < k; j++) {
        long long last = strtoll(PQgetvalue(res, idx[j], WEB_ROOM_LAST_READ), NULL, 10);
        out[idx[j]] = !ok ? WEB_UNREAD_UNKNOWN : seqs[j] > last ? seqs[j] - last : 0;
    }
}

struct room_form {
    const char *name, *title, *description;
    size_t name_len, title_len, description_len;
    const char *starts_at, *ends_at, *location, *capacity, *tz, *visibility;
    size_t starts_len, ends_len, location_len, capacity_len, tz_len, visibility_len;
    const char *err_name, *err_title, *err_description, *err_form;
    const char *err_starts, *err_ends, *err_location, *err_capacity, *err_visibility;
};

/* The item of one room in a list: title, activity line, badges, and the forms the user may
 * use on it (join or leave; delete for its owner and admins). */
static int render_item(struct web_req *r, struct cm_buf *items, PGresult *res, int i,
                       long long unread)
{
    const char *csrf = r->sess->csrf;
    const char *name = PQgetvalue(res, i, WEB_ROOM_NAME);
    struct cm_buf actions, act, badges;
    cm_buf_init(&actions);
    cm_buf_init(&act);
    cm_buf_init(&badges);
    cm_buf_append(&actions, "", 0);
    cm_buf_append(&act, "", 0);
    cm_buf_append(&badges, "", 0);
    int trc = 0;
    long long owner = strtoll(PQgetvalue(res, i, WEB_ROOM_OWNER_ID), NULL, 10);
    bool joined = strcmp(PQgetvalue(res, i, WEB_ROOM_JOINED), "t") == 0;
    struct web_var dv[] = {WEB_VAR("name", name), WEB_VAR("csrf", csrf)};
    if (!joined)
        trc |= web_tpl_render(&actions, "room_join_form.html", dv, 2);
    else if (owner != r->sess->user.id)
        trc |= web_tpl_render(&actions, "room_leave_form.html", dv, 2);
    if (owner == r->sess->user.id || r->sess->user.is_admin)
        trc |= web_tpl_render(&actions, "room_delete_form.html", dv, 2);
    if (strcmp(PQgetvalue(res, i, WEB_ROOM_VISIBILITY), "private") == 0)
        cm_buf_printf(&badges, " <span class=\"badge private\">private</span>");
    if (joined)
        cm_buf_printf(&badges, " <span class=\"badge joined\">member</span>");
    if (unread == WEB_UNREAD_UNKNOWN)
        cm_buf_printf(&badges, " <span class=\"badge unread unknown\" title=\"The chat's message "
                               "counter is not reachable right now\">unread: unknown</span>");
    else if (unread > 0)
        cm_buf_printf(&badges, " <span class=\"badge unread\">%lld unread</span>", unread);
    cm_buf_append(&badges, "", 0);
    trc |= render_activity(&act, col(res, i, WEB_ROOM_STARTS_AT), col(res, i, WEB_ROOM_ENDS_AT),
                           col(res, i, WEB_ROOM_LOCATION), col(res, i, WEB_ROOM_CAPACITY),
                           PQgetvalue(res, i, WEB_ROOM_MEMBERS));
    struct web_var iv[] = {
        WEB_VAR("name", name),
        WEB_VAR("title", PQgetvalue(res, i, WEB_ROOM_TITLE)),
        WEB_VAR("description", PQgetvalue(res, i, WEB_ROOM_DESCRIPTION)),
        WEB_VAR("owner", PQgetvalue(res, i, WEB_ROOM_OWNER_NAME)),
        WEB_RAW("actions", actions.data),
        WEB_RAW("activity", act.data),
        WEB_RAW("badges", badges.data),
    };
    trc |= web_tpl_render(items, "room_item.html", iv, 7);
    cm_buf_free(&actions);
    cm_buf_free(&act);
    cm_buf_free(&badges);
    return trc;
}

static const PGresult *sort_res; /* only inside qsort below, on one thread at a time */
static pthread_mutex_t sort_lock = PTHREAD_MUTEX_INITIALIZER;

static int by_start(const void *a, const void *b)
{
    /* ISO 8601 UTC strings of one format sort as the times they name */
    return strcmp(PQgetvalue(sort_res, *(const int *)a, WEB_ROOM_STARTS_AT),
                  PQgetvalue(sort_res, *(const int *)b, WEB_ROOM_STARTS_AT));
}

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
    struct cm_buf items, mine, upcoming;
    cm_buf_init(&items);
    cm_buf_init(&mine);
    cm_buf_init(&upcoming);
    cm_buf_append(&mine, "", 0);
    cm_buf_append(&upcoming, "", 0);
    int trc = 0;
    int n = PQntuples(res);
    int *up = cm_xmalloc(sizeof *up * (size_t)(n > 0 ? n : 1));
    long long *unread = cm_xmalloc(sizeof *unread * (size_t)(n > 0 ? n : 1));
    web_rooms_unread(res, unread);
    int nup = 0, nmine = 0;
    char now[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &tm);
    for (int i = 0; i < n; i++) {
        trc |= render_item(r, &items, res, i, WEB_UNREAD_NOT_MEMBER);
        if (strcmp(PQgetvalue(res, i, WEB_ROOM_JOINED), "t") == 0) {
            if (nmine++ == 0)
                cm_buf_printf(&mine, "<section class=\"my-rooms\"><h2>My rooms</h2><ul "
                                     "class=\"rooms\">\n");
            trc |= render_item(r, &mine, res, i, unread[i]);
        }
        const char *st = col(res, i, WEB_ROOM_STARTS_AT);
        if (st && strcmp(st, now) > 0)
            up[nup++] = i;
    }
    if (nmine > 0)
        cm_buf_printf(&mine, "</ul></section>\n");
    if (nup > 0) {
        pthread_mutex_lock(&sort_lock);
        sort_res = res;
        qsort(up, (size_t)nup, sizeof *up, by_start);
        pthread_mutex_unlock(&sort_lock);
        cm_buf_printf(&upcoming, "<section class=\"upcoming\"><h2>Upcoming activities</h2><ul "
                                 "class=\"rooms\">\n");
        for (int k = 0; k < nup; k++)
            trc |= render_item(r, &upcoming, res, up[k], WEB_UNREAD_NOT_MEMBER);
        cm_buf_printf(&upcoming, "</ul></section>\n");
    }
    free(up);
    free(unread);
    if (n == 0)
        trc |= web_tpl_render(&items, q[0] ? "rooms_none_found.html" : "rooms_none.html", NULL, 0);
    PQclear(res);
    char count[32];
    snprintf(count, sizeof count, "%d", n);
    struct room_form empty = {0};
    if (!fm)
        fm = &empty;
    bool open = fm->starts_len || fm->ends_len || fm->location_len || fm->capacity_len;
    bool priv = fm->visibility && strcmp(fm->visibility, "private") == 0;
    struct web_var v[] = {
        WEB_VAR("q", q),
        WEB_VAR("count", count),
        WEB_RAW("rooms", items.data),
        WEB_RAW("mine", mine.data),
        WEB_RAW("upcoming", upcoming.data),
        WEB_VARN("name", fm->name, fm->name_len),
        WEB_VARN("title", fm->title, fm->title_len),
        WEB_VARN("description", fm->description, fm->description_len),
        WEB_VARN("starts_at", fm->starts_at, fm->starts_len),
        WEB_VARN("ends_at", fm->ends_at, fm->ends_len),
        WEB_VARN("location", fm->location, fm->location_len),
        WEB_VARN("capacity", fm->capacity, fm->capacity_len),
        WEB_VAR("open", open ? " open" : ""),
        WEB_VAR("private_checked", priv ? " checked" : ""),
        WEB_VAR("err_name", fm->err_name),
        WEB_VAR("err_title", fm->err_title),
        WEB_VAR("err_description", fm->err_description),
        WEB_VAR("err_form", fm->err_form),
        WEB_VAR("err_starts", fm->err_starts),
        WEB_VAR("err_ends", fm->err_ends),
        WEB_VAR("err_location", fm->err_location),
        WEB_VAR("err_capacity", fm->err_capacity),
        WEB_VAR("err_visibility", fm->err_visibility),
    };
    if (trc != 0)
        web_text(r, 500, "Internal error\n");
    else
        web_page(r, status, "Rooms", "rooms_head.html", "rooms.html", v, 23);
    cm_buf_free(&items);
    cm_buf_free(&mine);
    cm_buf_free(&upcoming);
}

void web_h_rooms_get(struct web_req *r)
{
    if (!web_page_begin(r, WEB_NEED_USER, NULL))
        return;
    rooms_page(r, 200, NULL);
}

/* A form field, trimmed; "" when absent. */
static const char *field(const struct web_form *f, const char *name, size_t *len)
{
    const char *v = web_form_get(f, name, len);
    if (!v) {
        *len = 0;
        return "";
    }
    web_trim(&v, len);
    return v;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* The ISO 8601 shapes accepted (RFC 3339 section 5.6, seconds optional, as datetime-local
 * sends them): YYYY-MM-DDTHH:MM[:SS[.fff]] then optionally Z or +HH:MM / -HH:MM. Whether the
 * date exists is PostgreSQL's to say (parley_parse_time); this keeps out what PostgreSQL would
 * also read but a person did not mean ("now", "tomorrow", "infinity", "epoch"). */
static bool iso_shape(const char *s, size_t n)
{
    static const char tpl[] = "dddd-dd-ddTdd:dd";
    size_t k = sizeof tpl - 1;
    if (n < k || n > WEB_TIME_INPUT_MAX)
        return false;
    for (size_t i = 0; i < k; i++)
        if (tpl[i] == 'd' ? !is_digit(s[i]) : s[i] != tpl[i])
            return false;
    size_t i = k;
    if (i < n && s[i] == ':') {
        if (i + 3 > n || !is_digit(s[i + 1]) || !is_digit(s[i + 2]))
            return false;
        i += 3;
        if (i < n && s[i] == '.') {
            size_t j = ++i;
            while (i < n && is_digit(s[i]) && i - j < 6)
                i++;
            if (i == j)
                return false;
        }
    }
    if (i == n)
        return true;
    if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == n)
        return true;
    return (s[i] == '+' || s[i] == '-') && i + 6 == n && is_digit(s[i + 1]) && is_digit(s[i + 2]) &&
           s[i + 3] == ':' && is_digit(s[i + 4]) && is_digit(s[i + 5]);
}

/* An IANA zone name's characters (e.g. "Europe/Berlin", "America/Port-au-Prince",
 * "Etc/GMT+5"); whether it exists is checked against pg_timezone_names. */
static bool tz_shape(const char *s, size_t n)
{
    if (n < 1 || n > WEB_TZ_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) || c == '/' ||
              c == '_' || c == '-' || c == '+'))
            return false;
    }
    return true;
}

/* 1..WEB_CAPACITY_MAX written in decimal digits only; 0 otherwise. */
static long capacity_value(const char *s, size_t n)
{
    if (n < 1 || n > 5)
        return 0;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    return v >= 1 && v <= WEB_CAPACITY_MAX ? v : 0;
}

/* The activity fields of fm, checked (field errors set in fm) and read: on success
 * starts/ends get PostgreSQL's timestamptz text (malloc'd, NULL when not given), cap the
 * capacity text (or NULL), loc the location (malloc'd or NULL), priv the visibility. Returns
 * WEB_DB_OK also when a field is wrong (then some err_* is set); another value when the
 * database failed. future: starts must be after now (creation). */
static enum web_db_rc activity_fields(struct web_req *r, struct room_form *fm, bool future,
                                      char **starts, char **ends, char **loc, char **cap)
{
    *starts = *ends = *loc = *cap = NULL;
    if (fm->location_len) {
        if (cm_utf8_count(fm->location, fm->location_len) > WEB_LOCATION_MAX)
            fm->err_location = "The place can have at most 200 characters.";
        else if (web_valid_title(fm->location, fm->location_len))
            fm->err_location = "The place contains characters that are not allowed.";
    }
    if (fm->capacity_len && capacity_value(fm->capacity, fm->capacity_len) == 0)
        fm->err_capacity = "The number of places must be a whole number from 1 to 10000.";
    if (fm->visibility_len && !(fm->visibility_len == 6 && !memcmp(fm->visibility, "public", 6)) &&
        !(fm->visibility_len == 7 && !memcmp(fm->visibility, "private", 7)))
        fm->err_visibility = "Visibility must be public or private.";
    if (fm->starts_len && !iso_shape(fm->starts_at, fm->starts_len))
        fm->err_starts = "Give the start as a date and time, e.g. 2026-12-05T18:00 or "
                         "2026-12-05T18:00+01:00.";
    if (fm->ends_len && !iso_shape(fm->ends_at, fm->ends_len))
        fm->err_ends = "Give the end as a date and time, e.g. 2026-12-05T20:00.";
    if (fm->ends_len && !fm->starts_len && !fm->err_ends)
        fm->err_ends = "An activity with an end needs a start too.";
    if (fm->tz_len && !tz_shape(fm->tz, fm->tz_len))
        fm->err_starts = "Unknown time zone.";
    if (fm->err_location || fm->err_capacity || fm->err_visibility || fm->err_starts ||
        fm->err_ends)
        return WEB_DB_OK;
    if (fm->location_len)
        *loc = cm_xstrndup(fm->location, fm->location_len);
    if (fm->capacity_len)
        *cap = cm_xstrndup(fm->capacity, fm->capacity_len);
    if (!fm->starts_len)
        return WEB_DB_OK;
    char *st = cm_xstrndup(fm->starts_at, fm->starts_len);
    char *en = fm->ends_len ? cm_xstrndup(fm->ends_at, fm->ends_len) : NULL;
    char *tz = cm_xstrndup(fm->tz_len ? fm->tz : "UTC", fm->tz_len ? fm->tz_len : 3);
    const char *p[3] = {st, en, tz};
    PGresult *res;
    enum web_db_rc rc = web_db_query(r, &res,
                                     "SELECT parley_parse_time($1, $3), parley_parse_time($2, $3), "
                                     "EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $3), "
                                     "parley_parse_time($1, $3) > now()",
                                     3, p);
    free(st);
    free(en);
    free(tz);
    if (rc != WEB_DB_OK)
        return rc;
    bool tz_ok = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
    if (PQgetisnull(res, 0, 0))
        fm->err_starts = tz_ok ? "This start date or time does not exist."
                               : "Unknown time zone: give the start with an offset (e.g. "
                                 "+01:00) or a time zone like Europe/Berlin.";
    else if (future && strcmp(PQgetvalue(res, 0, 3), "t") != 0)
        fm->err_starts = "The start must be in the future.";
    if (fm->ends_len && PQgetisnull(res, 0, 1))
        fm->err_ends = tz_ok ? "This end date or time does not exist." : "Unknown time zone.";
    if (!fm->err_starts && !fm->err_ends) {
        *starts = cm_xstrdup(PQgetvalue(res, 0, 0));
        if (fm->ends_len)
            *ends = cm_xstrdup(PQgetvalue(res, 0, 1));
    }
    PQclear(res);
    if (!fm->err_starts && !fm->err_ends && *ends) {
        const char *q[2] = {*starts, *ends};
        rc = web_db_query(r, &res, "SELECT $2::timestamptz > $1::timestamptz", 2, q);
        if (rc != WEB_DB_OK)
            return rc;
        if (strcmp(PQgetvalue(res, 0, 0), "t") != 0)
            fm->err_ends = "The end must be after the start.";
        PQclear(res);
    }
    return WEB_DB_OK;
}

static void read_room_form(const struct web_form *f, struct room_form *fm)
{
    fm->name = field(f, "name", &fm->name_len);
    fm->title = field(f, "title", &fm->title_len);
    fm->description = field(f, "description", &fm->description_len);
    fm->starts_at = field(f, "starts_at", &fm->starts_len);
    fm->ends_at = field(f, "ends_at", &fm->ends_len);
    fm->location = field(f, "location", &fm->location_len);
    fm->capacity = field(f, "capacity", &fm->capacity_len);
    fm->tz = field(f, "tz", &fm->tz_len);
    fm->visibility = field(f, "visibility", &fm->visibility_len);
}

static bool form_has_errors(const struct room_form *fm)
{
    return fm->err_name || fm->err_title || fm->err_description || fm->err_starts || fm->err_ends ||
           fm->err_location || fm->err_capacity || fm->err_visibility;
}

void web_h_rooms_post(struct web_req *r)
{
    struct web_form f;
    if (!web_page_begin(r, WEB_NEED_FORM | WEB_NEED_USER, &f))
        return;
    struct room_form fm = {0};
    read_room_form(&f, &fm);
    fm.err_name = web_valid_room_name(fm.name, fm.name_len);
    fm.err_title = web_valid_title(fm.title, fm.title_len);
    fm.err_description = web_valid_description(fm.description, fm.description_len);
    char *starts, *ends, *loc, *capv;
    enum web_db_rc rc = activity_fields(r, &fm, true, &starts, &ends, &loc, &capv);
    if (rc != WEB_DB_OK) {
        web_page_db_error(r, rc);
        goto out_free;
    }
    if (form_has_errors(&fm)) {
        rooms_page(r, 400, &fm);
        goto out_free;
    }
    /* Trimmed values are not NUL-terminated where they end: copy them for libpq. */
    char *name = cm_xstrndup(fm.name, fm.name_len);
    char *title = cm_xstrndup(fm.title, fm.title_len);
    char *desc = cm_xstrndup(fm.description, fm.description_len);
    char owner[24], quota[24];
    snprintf(owner, sizeof owner, "%lld", r->sess->user.id);
    snprintf(quota, sizeof quota, "%lld", web_cfg.rooms_per_hour);
    const char *vis = fm.visibility_len == 7 ? "private" : "public";
    const char *p[10] = {name, title, desc, owner, quota, starts, ends, loc, capv, vis};
    /* One statement takes a place in the user's hourly quota (room_quota, locked by ON
     * CONFLICT DO UPDATE, so concurrent requests and other replicas count as one), inserts
     * the room and makes its owner a member. No row back: the quota is used up, nothing was
     * inserted. A name conflict fails the whole statement, quota update included. */
    PGresult *res;
    rc = web_db_query(
        r, &res,
        "WITH q AS (INSERT INTO room_quota AS q (user_id, window_start, used) "
        "VALUES ($4, now(), 1) ON CONFLICT (user_id) DO UPDATE SET "
        "window_start = CASE WHEN q.window_start <= now() - interval '1 hour' THEN now() "
        "ELSE q.window_start END, "
        "used = CASE WHEN q.window_start <= now() - interval '1 hour' THEN 1 "
        "ELSE q.used + 1 END "
        "WHERE q.window_start <= now() - interval '1 hour' OR q.used < $5::int "
        "RETURNING user_id), "
        "ins AS (INSERT INTO rooms (name, title, description, owner_id, starts_at, ends_at, "
        "location, capacity, visibility) "
        "SELECT $1, $2, $3, user_id, $6::timestamptz, $7::timestamptz, $8, $9::int, $10 "
        "FROM q RETURNING id, owner_id) "
        "INSERT INTO room_members (room_id, user_id) SELECT id, owner_id FROM ins "
        "RETURNING room_id",
        10, p);
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
        char loc_hdr[64];
        snprintf(loc_hdr, sizeof loc_hdr, "/rooms/%s", name);
        web_redirect(r, loc_hdr);
    }
    free(name);
    free(title);
    free(desc);
out_free:
    free(starts);
    free(ends);
    free(loc);
    free(capv);
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

/* The one row sql (nparams parameters p) finds, or NULL when the page is already answered:
 * the database's error page, or 404 with not_found when there is no such row (also when
 * there are several: callers ask by a unique name). The caller PQclear()s the row. */
static PGresult *one_row(struct web_req *r, const char *sql, int nparams, const char *const *p,
                         const char *not_found)
{
    PGresult *res;
    enum web_db_rc rc = web_db_query(r, &res, sql, nparams, p);
    if (rc != WEB_DB_OK) {
        web_page_db_error(r, rc);
        return NULL;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        web_page_error(r, 404, not_found);
        return NULL;
    }
    return res;
}

/* Names shown on the room page (the count shows them all). */
#define WEB_MEMBER_NAMES_MAX_S "50"

/* The room page's query: the room if r's user may see it (public, a member, or an admin). */
#define ROOM_VISIBLE_SQL                                                                           \
    "SELECT r.title, r.id, r.owner_id, "                                                           \
    "to_char(r.starts_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "                  \
    "to_char(r.ends_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "                    \
    "r.location, r.capacity, "                                                                     \
    "(SELECT count(*) FROM room_members c WHERE c.room_id = r.id), "                               \
    "EXISTS (SELECT 1 FROM room_members m WHERE m.room_id = r.id AND m.user_id = $2), "            \
    "r.visibility, "                                                                               \
    "(SELECT string_agg(x.name, ', ' ORDER BY x.joined_at) FROM (SELECT u.name, m.joined_at "      \
    "FROM room_members m JOIN users u ON u.id = m.user_id WHERE m.room_id = r.id "                 \
    "ORDER BY m.joined_at LIMIT " WEB_MEMBER_NAMES_MAX_S ") x) "                                   \
    "FROM rooms r WHERE r.name = $1 AND (r.visibility = 'public' OR $3 OR EXISTS "                 \
    "(SELECT 1 FROM room_members m WHERE m.room_id = r.id AND m.user_id = $2))"

/* The owner's (and admins') part of the room page: invite forms and the open invites. */
static int render_owner(struct web_req *r, struct cm_buf *b, const char *name, const char *rid)
{
    const char *p[1] = {rid};
    PGresult *res;
    if (web_db_query(
            r, &res,
            "SELECT encode(i.code_hash, 'hex'), to_char(i.expires_at AT TIME ZONE 'UTC', "
            "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), u.name FROM room_invites i "
            "LEFT JOIN users u ON u.id = i.used_by WHERE i.room_id = $1::bigint "
            "AND i.revoked_at IS NULL AND ((i.used_at IS NULL AND i.expires_at > now()) "
            "OR i.used_by IS NOT NULL) ORDER BY i.used_at NULLS FIRST, i.expires_at LIMIT 100",
            1, p) != WEB_DB_OK)
        return -1;
    struct cm_buf rows;
    cm_buf_init(&rows);
    cm_buf_append(&rows, "", 0);
    int trc = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        bool used = !PQgetisnull(res, i, 2);
        struct web_var v[] = {WEB_VAR("name", name), WEB_VAR("csrf", r->sess->csrf),
                              WEB_VAR("invite", PQgetvalue(res, i, 0)),
                              WEB_VAR("expires_at", PQgetvalue(res, i, 1)),
                              WEB_VAR("used_by", PQgetvalue(res, i, 2))};
        /* a used invite can be revoked too: that removes the member who used it */
        trc |= web_tpl_render(&rows, used ? "room_invite_used_row.html" : "room_invite_row.html", v,
                              5);
    }
    PQclear(res);
    struct web_var v[] = {WEB_VAR("name", name), WEB_VAR("csrf", r->sess->csrf),
                          WEB_RAW("invites", rows.data)};
    trc |= web_tpl_render(b, "room_owner.html", v, 3);
    cm_buf_free(&rows);
    return trc;
}

void web_h_room_get(struct web_req *r)
{
    char name[CM_ROOM_MAX + 1];
    if (!room_param(r, name))
        return;
    if (!web_page_begin(r, WEB_NEED_USER, NULL))
        return;
    char uid[24];
    snprintf(uid, sizeof uid, "%lld", r->sess->user.id);
    const char *p[3] = {name, uid, r->sess->user.is_admin ? "true" : "false"};
    /* a private room the user is not in looks exactly like no room */
    PGresult *res = one_row(r, ROOM_VISIBLE_SQL, 3, p, "There is no room with this name.");
    if (!res)
        return;
    struct cm_buf info, act, actions;
    cm_buf_init(&info);
    cm_buf_init(&act);
    cm_buf_init(&actions);
    cm_buf_append(&act, "", 0);
    cm_buf_append(&actions, "", 0);
    int trc = render_activity(&act, col(res, 0, 3), col(res, 0, 4), col(res, 0, 5), col(res, 0, 6),
                              PQgetvalue(res, 0, 7));
    bool joined = strcmp(PQgetvalue(res, 0, 8), "t") == 0;
    long long owner = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    struct web_var dv[] = {WEB_VAR("name", name), WEB_VAR("csrf", r->sess->csrf)};
    if (!joined)
        trc |= web_tpl_render(&actions, "room_join_form.html", dv, 2);
    else if (owner != r->sess->user.id)
        trc |= web_tpl_render(&actions, "room_leave_form.html", dv, 2);
    struct cm_buf own;
    cm_buf_init(&own);
    cm_buf_append(&own, "", 0);
    if (owner == r->sess->user.id || r->sess->user.is_admin)
        trc |= render_owner(r, &own, name, PQgetvalue(res, 0, 1));
    struct web_var iv[] = {WEB_RAW("activity", act.data), WEB_VAR("members", PQgetvalue(res, 0, 7)),
                           WEB_VAR("member_names", PQgetvalue(res, 0, 10)),
                           WEB_RAW("actions", actions.data), WEB_RAW("owner", own.data)};
    trc |= web_tpl_render(&info, "room_info.html", iv, 5);
    cm_buf_free(&own);
    struct web_var v[] = {
        WEB_VAR("room", name),
        WEB_VAR("room_title", PQgetvalue(res, 0, 0)),
        WEB_VAR("user_id", r->sess->user.public_id),
        WEB_VAR("user_name", r->sess->user.name),
        WEB_RAW("info", info.data),
    };
    if (trc != 0)
        web_text(r, 500, "Internal error\n");
    else
        web_page(r, 200, PQgetvalue(res, 0, 0), "room_head.html", "room.html", v, 5);
    PQclear(res);
    cm_buf_free(&info);
    cm_buf_free(&act);
    cm_buf_free(&actions);
}

/* POST /rooms/NAME/join and /leave: the form and CSRF check, the room visible to the user
 * (a private room only through an invite: joining it here is refused like a missing room). */
static void membership_post(struct web_req *r, bool join)
{
    struct web_form f;
    if (!web_page_begin(r, WEB_NEED_FORM | WEB_NEED_USER, &f))
        return;
    web_form_free(&f);
    char name[CM_ROOM_MAX + 1];
    if (!room_param(r, name))
        return;
    char uid[24];
    snprintf(uid, sizeof uid, "%lld", r->sess->user.id);
    const char *p[3] = {name, uid, r->sess->user.is_admin ? "true" : "false"};
    PGresult *res = one_row(
        r,
        "SELECT r.id, r.owner_id FROM rooms r WHERE r.name = $1 AND (r.visibility = 'public' "
        "OR $3 OR EXISTS (SELECT 1 FROM room_members m WHERE m.room_id = r.id AND m.user_id = "
        "$2))",
        3, p, "There is no room with this name.");
    if (!res)
        return;
    char rid[24];
    snprintf(rid, sizeof rid, "%s", PQgetvalue(res, 0, 0));
    long long owner = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    PQclear(res);
    const char *q[2] = {rid, uid};
    enum web_db_rc rc;
    char back[64];
    snprintf(back, sizeof back, "/rooms/%s", name);
    if (!join) {
        if (owner == r->sess->user.id) {
            web_page_error(r, 409,
                           "You own this room, so you stay its member. Delete the "
                           "room instead if it is over.");
            return;
        }
        rc = web_db_query(r, NULL, "DELETE FROM room_members WHERE room_id = $1 AND user_id = $2",
                          2, q);
        if (rc != WEB_DB_OK) {
            web_page_db_error(r, rc);
            return;
        }
        cm_info("user %s left room %s", uid, name);
        web_redirect(r, "/rooms");
        return;
    }
    /* room_join (migration 005) locks the room row, so concurrent joins never overbook. */
    rc = web_db_query(r, &res, "SELECT room_join($1::bigint, $2::bigint)", 2, q);
    if (rc != WEB_DB_OK) {
        web_page_db_error(r, rc);
        return;
    }
    char out[16];
    snprintf(out, sizeof out, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    if (strcmp(out, "full") == 0) {
        web_page_error(r, 409,
                       "This activity is full: every place is taken. Try again if "
                       "someone leaves.");
        return;
    }
    if (strcmp(out, "gone") == 0) {
        web_page_error(r, 404, "There is no room with this name.");
        return;
    }
    cm_info("user %s joined room %s (%s)", uid, name, out);
    web_redirect(r, back);
}

void web_h_room_join_post(struct web_req *r)
{
    membership_post(r, true);
}

void web_h_room_leave_post(struct web_req *r)
{
    membership_post(r, false);
}

/* The edit page of the room r->param for its owner or an admin; fm NULL: the stored values
 * (as UTC wall clock with tz=UTC, data-utc for localtime.js), else the values sent back. */
static void edit_page(struct web_req *r, unsigned status, const char *name,
                      const struct room_form *fm)
{
    char uid[24];
    snprintf(uid, sizeof uid, "%lld", r->sess->user.id);
    const char *p[3] = {name, uid, r->sess->user.is_admin ? "true" : "false"};
    PGresult *res =
        one_row(r,
                "SELECT title, description, "
                "to_char(starts_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI'), "
                "to_char(ends_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI'), "
                "to_char(starts_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
                "to_char(ends_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
                "location, capacity, visibility FROM rooms "
                "WHERE name = $1 AND (owner_id = $2::bigint OR $3::boolean)",
                3, p, "There is no room with this name that you can edit.");
    if (!res)
        return;
    struct room_form stored = {0};
    if (!fm) {
        stored.title = PQgetvalue(res, 0, 0);
        stored.description = PQgetvalue(res, 0, 1);
        stored.starts_at = PQgetvalue(res, 0, 2);
        stored.ends_at = PQgetvalue(res, 0, 3);
        stored.location = PQgetvalue(res, 0, 6);
        stored.capacity = PQgetvalue(res, 0, 7);
        stored.visibility = PQgetvalue(res, 0, 8);
        stored.title_len = strlen(stored.title);
        stored.description_len = strlen(stored.description);
        stored.starts_len = strlen(stored.starts_at);
        stored.ends_len = strlen(stored.ends_at);
        stored.location_len = strlen(stored.location);
        stored.capacity_len = strlen(stored.capacity);
        stored.visibility_len = strlen(stored.visibility);
        fm = &stored;
    }
    bool priv = fm->visibility_len == 7 && memcmp(fm->visibility, "private", 7) == 0;
    struct web_var v[] = {
        WEB_VAR("name", name),
        WEB_VARN("title", fm->title, fm->title_len),
        WEB_VARN("description", fm->description, fm->description_len),
        WEB_VARN("starts_at", fm->starts_at, fm->starts_len),
        WEB_VARN("ends_at", fm->ends_at, fm->ends_len),
        WEB_VAR("starts_utc", fm == &stored ? PQgetvalue(res, 0, 4) : ""),
        WEB_VAR("ends_utc", fm == &stored ? PQgetvalue(res, 0, 5) : ""),
        WEB_VARN("location", fm->location, fm->location_len),
        WEB_VARN("capacity", fm->capacity, fm->capacity_len),
        WEB_VAR("private_checked", priv ? " checked" : ""),
        WEB_VAR("err_form", fm->err_form),
        WEB_VAR("err_title", fm->err_title),
        WEB_VAR("err_description", fm->err_description),
        WEB_VAR("err_starts", fm->err_starts),
        WEB_VAR("err_ends", fm->err_ends),
        WEB_VAR("err_location", fm->err_location),
        WEB_VAR("err_capacity", fm->err_capacity),
        WEB_VAR("err_visibility", fm->err_visibility),
    };
    web_page(r, status, "Edit room", "rooms_head.html", "room_edit.html", v, 18);
    PQclear(res);
}

void web_h_room_edit_get(struct web_req *r)
{
    char name[CM_ROOM_MAX + 1];
    if (!room_param(r, name))
        return;
    if (!web_page_begin(r, WEB_NEED_USER, NULL))
        return;
    edit_page(r, 200, name, NULL);
}

void web_h_room_edit_post(struct web_req *r)
{
    struct web_form f;
    if (!web_page_begin(r, WEB_NEED_FORM | WEB_NEED_USER, &f))
        return;
    char name[CM_ROOM_MAX + 1];
    if (!room_param(r, name)) {
        web_form_free(&f);
        return;
    }
    struct room_form fm = {0};
    read_room_form(&f, &fm);
    fm.err_title = web_valid_title(fm.title, fm.title_len);
    fm.err_description = web_valid_description(fm.description, fm.description_len);
    char *starts = NULL, *ends = NULL, *loc = NULL, *capv = NULL;
    char *title = NULL, *desc = NULL;
    char uid[24];
    snprintf(uid, sizeof uid, "%lld", r->sess->user.id);
    const char *p[3] = {name, uid, r->sess->user.is_admin ? "true" : "false"};
    PGresult *res;
    /* owner or admin first: nobody else learns anything from the field checks */
    enum web_db_rc rc = web_db_query(
        r, &res, "SELECT id FROM rooms WHERE name = $1 AND (owner_id = $2::bigint OR $3::boolean)",
        3, p);
    if (rc != WEB_DB_OK) {
        web_page_db_error(r, rc);
        goto out;
    }
    char rid[24] = "";
    if (PQntuples(res) == 1)
        snprintf(rid, sizeof rid, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    if (!rid[0]) {
        web_page_error(r, 404, "There is no room with this name that you can edit.");
        goto out;
    }
    rc = activity_fields(r, &fm, false, &starts, &ends, &loc, &capv);
    if (rc != WEB_DB_OK) {
        web_page_db_error(r, rc);
        goto out;
    }
    if (form_has_errors(&fm)) {
        edit_page(r, 400, name, &fm);
        goto out;
    }
    title = cm_xstrndup(fm.title, fm.title_len);
    desc = cm_xstrndup(fm.description, fm.description_len);
    const char *q[8] = {rid,  title, desc, starts,
                        ends, loc,   capv, fm.visibility_len == 7 ? "private" : "public"};
    rc = web_db_query(r, &res,
                      "SELECT room_edit($1::bigint, $2, $3, $4::timestamptz, $5::timestamptz, $6, "
                      "$7::int, $8)",
                      8, q);
    if (rc != WEB_DB_OK) {
        web_page_db_error(r, rc);
        goto out;
    }
    char st[16];
    snprintf(st, sizeof st, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    if (strcmp(st, "too_small") == 0) {
        fm.err_capacity = "More people are already going than this number of places.";
        edit_page(r, 409, name, &fm);
    } else if (strcmp(st, "gone") == 0) {
        web_page_error(r, 404, "There is no room with this name.");
    } else {
        cm_info("user %lld edited room %s", r->sess->user.id, name);
        char back[64];
        snprintf(back, sizeof back, "/rooms/%s", name);
        web_redirect(r, back);
    }
out:
    free(title);
    free(desc);
    free(starts);
    free(ends);
    free(loc);
    free(capv);
    web_form_free(&f);
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
    PGresult *res = one_row(r, "SELECT owner_id, id FROM rooms WHERE name = $1", 1, p,
                            "There is no room with this name.");
    if (!res)
        return;
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
    enum web_db_rc rc =
        web_db_query(r, NULL, WEB_EVENTS_DELETE_ROOM_SQL, 1, pid); /* + its outbox row */
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
