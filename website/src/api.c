/* The JSON API: chat tokens, the rooms list, the health probe. */
#include "cm_alloc.h"
#include "cm_buf.h"
#include "cm_log.h"
#include "config.h"
#include "csrf.h"
#include "db.h"
#include "rooms.h"
#include "handlers.h"
#include "session.h"
#include "validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Loads the session for an API call; answers 401/403/503 itself and returns false. */
static bool api_user(struct web_req *r)
{
    enum web_db_rc rc = web_session_load(r);
    if (rc != WEB_DB_OK) {
        if (rc == WEB_DB_DOWN)
            web_resp_header(r, "Retry-After", "%d", WEB_RETRY_AFTER_S);
        web_json_error(r, rc == WEB_DB_DOWN ? 503 : 500, "unavailable",
                       "The database is not reachable right now.");
        return false;
    }
    if (!r->has_sess) {
        web_json_error(r, 401, "unauthorized", "Log in first.");
        return false;
    }
    if (r->sess->user.banned) {
        web_json_error(r, 403, "banned", "This account is banned.");
        return false;
    }
    return true;
}

/* A state-changing API call also needs the session's CSRF token in the X-CSRF-Token header
 * (a form-less request: no hidden field). False: 403 {"error":"csrf"} has been answered. */
static bool api_csrf(struct web_req *r)
{
    const char *tok = web_req_header(r, "X-CSRF-Token");
    if (web_csrf_ok(r, tok, tok ? strlen(tok) : 0))
        return true;
    web_json_error(r, 403, "csrf", "Missing or wrong X-CSRF-Token header.");
    return false;
}

/* The browser's credential for the chat handshake (docs/protocol.md "Connecting"): a cookie
 * per room, so two tabs in two rooms never take each other's token, sent only to /ws, for as
 * long as the token lives, out of scripts' reach, and never on a request another site starts
 * (SameSite=Strict; the chat daemon checks Origin too). The token in a cookie keeps it out of
 * every URL and so out of every access log. Added to the response's headers directly:
 * web_resp_header formats into 1 KiB, and a token may be longer (long email and name). */
static void set_ws_cookie(struct web_req *r, const char *room, const char *jwt)
{
    if (r->nhdr == WEB_MAX_RESP_HEADERS) {
        cm_error("http: too many response headers (bug)");
        return;
    }
    struct cm_buf b;
    cm_buf_init(&b);
    cm_buf_printf(&b, "parley_ws_%s=%s; Path=/ws; Max-Age=%lld; HttpOnly; SameSite=Strict%s", room,
                  jwt, web_cfg.token_ttl, web_cfg.cookie_secure ? "; Secure" : "");
    r->hdr[r->nhdr].name = "Set-Cookie";
    r->hdr[r->nhdr].value = cm_buf_take(&b, NULL);
    r->nhdr++;
}

void web_h_api_token_post(struct web_req *r)
{
    if (!api_user(r) || !api_csrf(r))
        return;
    if (!cm_room_name_valid(r->param, r->param_len)) {
        web_json_error(r, 404, "not_found", "No such room.");
        return;
    }
    char room[CM_ROOM_MAX + 1];
    memcpy(room, r->param, r->param_len);
    room[r->param_len] = '\0';
    char uid[24];
    snprintf(uid, sizeof uid, "%lld", r->sess->user.id);
    const char *p[3] = {room, uid, r->sess->user.is_admin ? "true" : "false"};
    PGresult *res;
    /* A private room gives tokens to its members and admins only (migration 005). */
    enum web_db_rc rc =
        web_db_query(r, &res,
                     "SELECT r.id, r.visibility = 'public' OR $3::boolean OR EXISTS (SELECT 1 FROM "
                     "room_members m WHERE m.room_id = r.id AND m.user_id = $2::bigint) "
                     "FROM rooms r WHERE r.name = $1",
                     3, p);
    if (rc != WEB_DB_OK) {
        web_json_error(r, rc == WEB_DB_DOWN ? 503 : 500, "unavailable",
                       "The database is not reachable right now.");
        return;
    }
    bool exists = PQntuples(res) == 1;
    int64_t rid = exists ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    bool allowed = exists && strcmp(PQgetvalue(res, 0, 1), "t") == 0;
    PQclear(res);
    if (!exists) {
        web_json_error(r, 404, "not_found", "No such room.");
        return;
    }
    if (!allowed) {
        web_json_error(r, 403, "not_member", "This room is private: only its members can chat.");
        return;
    }
    struct cm_token_claims c;
    char *jwt = NULL;
    int ci =
        cm_token_claims_init(&c, r->sess->user.email, r->sess->user.public_id, r->sess->user.name,
                             room, rid, (int64_t)time(NULL), web_cfg.token_ttl);
    /* the session's public id: a logout revokes the tokens it was given (moderation) */
    snprintf(c.sid, sizeof c.sid, "%s", r->sess->public_id);
    if (ci < 0 || cm_token_sign(&c, (const unsigned char *)web_cfg.jwt_secret,
                                strlen(web_cfg.jwt_secret), &jwt) != CM_TOKEN_OK) {
        web_json_error(r, 500, "internal", "Could not issue a token.");
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "token", jwt);
    cJSON_AddNumberToObject(o, "expires_in", (double)web_cfg.token_ttl);
    char ws_url[sizeof "/ws?room=" + CM_ROOM_MAX];
    snprintf(ws_url, sizeof ws_url, "/ws?room=%s", room); /* a valid room name needs no escaping */
    cJSON_AddStringToObject(o, "ws_url", ws_url);
    cJSON_AddStringToObject(o, "room", room);
    cJSON *u = cJSON_AddObjectToObject(o, "user");
    cJSON_AddStringToObject(u, "id", r->sess->user.public_id);
    cJSON_AddStringToObject(u, "email", r->sess->user.email);
    cJSON_AddStringToObject(u, "name", r->sess->user.name);
    set_ws_cookie(r, room, jwt);
    free(jwt);
    cm_info("issued a chat token for user %lld in room %s", r->sess->user.id, room);
    web_json(r, 200, o);
}

void web_h_api_rooms_get(struct web_req *r)
{
    if (!api_user(r))
        return;
    const char *q = web_req_arg(r, "q");
    if (!q)
        q = "";
    size_t ql = strlen(q);
    const char *qerr = web_rooms_query_check(q, ql);
    if (qerr) {
        web_json_error(r, 400, "bad_request", qerr);
        return;
    }
    PGresult *res;
    enum web_db_rc rc = web_rooms_search(r, q, ql, &res);
    if (rc != WEB_DB_OK) {
        web_json_error(r, rc == WEB_DB_DOWN ? 503 : 500, "unavailable",
                       "The database is not reachable right now.");
        return;
    }
    cJSON *arr = cJSON_CreateArray();
    long long *unread = cm_xmalloc(sizeof *unread * (size_t)(PQntuples(res) + 1));
    web_rooms_unread(res, unread);
    for (int i = 0; i < PQntuples(res); i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", PQgetvalue(res, i, WEB_ROOM_NAME));
        cJSON_AddStringToObject(o, "title", PQgetvalue(res, i, WEB_ROOM_TITLE));
        cJSON_AddStringToObject(o, "description", PQgetvalue(res, i, WEB_ROOM_DESCRIPTION));
        cJSON_AddStringToObject(o, "owner", PQgetvalue(res, i, WEB_ROOM_OWNER_NAME));
        for (int c = WEB_ROOM_STARTS_AT; c <= WEB_ROOM_LOCATION; c++) {
            static const char *const keys[] = {"starts_at", "ends_at", "location"};
            const char *k = keys[c - WEB_ROOM_STARTS_AT];
            if (PQgetisnull(res, i, c))
                cJSON_AddNullToObject(o, k);
            else
                cJSON_AddStringToObject(o, k, PQgetvalue(res, i, c));
        }
        if (PQgetisnull(res, i, WEB_ROOM_CAPACITY))
            cJSON_AddNullToObject(o, "capacity");
        else
            cJSON_AddNumberToObject(
                o, "capacity", (double)strtol(PQgetvalue(res, i, WEB_ROOM_CAPACITY), NULL, 10));
        cJSON_AddNumberToObject(o, "members",
                                (double)strtoll(PQgetvalue(res, i, WEB_ROOM_MEMBERS), NULL, 10));
        cJSON_AddStringToObject(o, "visibility", PQgetvalue(res, i, WEB_ROOM_VISIBILITY));
        cJSON_AddBoolToObject(o, "joined", strcmp(PQgetvalue(res, i, WEB_ROOM_JOINED), "t") == 0);
        if (unread[i] >= 0)
            cJSON_AddNumberToObject(o, "unread", (double)unread[i]);
        else /* not a member, or Redis did not answer: unknown rather than wrong */
            cJSON_AddNullToObject(o, "unread");
        cJSON_AddItemToArray(arr, o);
    }
    free(unread);
    PQclear(res);
    web_json(r, 200, arr);
}

/* POST /api/rooms/NAME/read {"seq": N}: the reader has seen the room up to seq N (an integer
 * 0..2^53-1, the largest a JSON number carries exactly). last_read_seq never moves
 * backwards (GREATEST). 404 not_member for a room the user is not a member of (or that does
 * not exist: the same answer, so a private room's name is not confirmed). */
void web_h_api_room_read_post(struct web_req *r)
{
    if (!api_user(r) || !api_csrf(r))
        return;
    if (!cm_room_name_valid(r->param, r->param_len)) {
        web_json_error(r, 404, "not_member", "You are not a member of this room.");
        return;
    }
    cJSON *body = r->too_large ? NULL : cJSON_ParseWithLength(r->body.data, r->body.len);
    cJSON *seq = cJSON_IsObject(body) ? cJSON_GetObjectItemCaseSensitive(body, "seq") : NULL;
    double v = cJSON_IsNumber(seq) ? seq->valuedouble : -1;
    bool ok = v >= 0 && v <= 9007199254740991.0 && v == (double)(long long)v;
    cJSON_Delete(body);
    if (!ok) {
        web_json_error(r, 400, "bad_request",
                       "Send a JSON object {\"seq\": N} with N a whole number from 0 to "
                       "9007199254740991.");
        return;
    }
    char room[CM_ROOM_MAX + 1], uid[24], n[24];
    memcpy(room, r->param, r->param_len);
    room[r->param_len] = '\0';
    snprintf(uid, sizeof uid, "%lld", r->sess->user.id);
    snprintf(n, sizeof n, "%lld", (long long)v);
    const char *p[3] = {room, uid, n};
    PGresult *res;
    enum web_db_rc rc = web_db_query(
        r, &res,
        "UPDATE room_members m SET last_read_seq = GREATEST(m.last_read_seq, $3::bigint) "
        "FROM rooms r WHERE r.id = m.room_id AND r.name = $1 AND m.user_id = $2::bigint "
        "RETURNING m.last_read_seq",
        3, p);
    if (rc != WEB_DB_OK) {
        web_json_error(r, rc == WEB_DB_DOWN ? 503 : 500, "unavailable",
                       "The database is not reachable right now.");
        return;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        web_json_error(r, 404, "not_member", "You are not a member of this room.");
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "room", room);
    cJSON_AddNumberToObject(o, "last_read_seq", (double)strtoll(PQgetvalue(res, 0, 0), NULL, 10));
    PQclear(res);
    web_json(r, 200, o);
}

void web_h_healthz_get(struct web_req *r)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = web_db_ping(r);
    cJSON_AddStringToObject(o, "status", ok ? "ok" : "unavailable");
    web_json(r, ok ? 200 : 503, o);
}
