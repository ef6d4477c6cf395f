/* The JSON API: chat tokens, the rooms list, the health probe. */
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

void web_h_api_token_post(struct web_req *r)
{
    if (!api_user(r))
        return;
    const char *tok = web_req_header(r, "X-CSRF-Token");
    if (!web_csrf_ok(r, tok, tok ? strlen(tok) : 0)) {
        web_json_error(r, 403, "csrf", "Missing or wrong X-CSRF-Token header.");
        return;
    }
    if (!cm_room_name_valid(r->param, r->param_len)) {
        web_json_error(r, 404, "not_found", "No such room.");
        return;
    }
    char room[CM_ROOM_MAX + 1];
    memcpy(room, r->param, r->param_len);
    room[r->param_len] = '\0';
    const char *p[1] = {room};
    PGresult *res;
    enum web_db_rc rc = web_db_query(r, &res, "SELECT 1 FROM rooms WHERE name = $1", 1, p);
    if (rc != WEB_DB_OK) {
        web_json_error(r, rc == WEB_DB_DOWN ? 503 : 500, "unavailable",
                       "The database is not reachable right now.");
        return;
    }
    bool exists = PQntuples(res) == 1;
    PQclear(res);
    if (!exists) {
        web_json_error(r, 404, "not_found", "No such room.");
        return;
    }
    struct cm_token_claims c;
    char *jwt = NULL;
    if (cm_token_claims_init(&c, r->sess->user.email, r->sess->user.public_id, r->sess->user.name,
                             room, (int64_t)time(NULL), web_cfg.token_ttl) < 0 ||
        cm_token_sign(&c, (const unsigned char *)web_cfg.jwt_secret, strlen(web_cfg.jwt_secret),
                      &jwt) != CM_TOKEN_OK) {
        web_json_error(r, 500, "internal", "Could not issue a token.");
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "token", jwt);
    cJSON_AddNumberToObject(o, "expires_in", (double)web_cfg.token_ttl);
    cJSON_AddStringToObject(o, "ws_url", "/ws");
    cJSON_AddStringToObject(o, "room", room);
    cJSON *u = cJSON_AddObjectToObject(o, "user");
    cJSON_AddStringToObject(u, "id", r->sess->user.public_id);
    cJSON_AddStringToObject(u, "email", r->sess->user.email);
    cJSON_AddStringToObject(u, "name", r->sess->user.name);
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
    for (int i = 0; i < PQntuples(res); i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", PQgetvalue(res, i, WEB_ROOM_NAME));
        cJSON_AddStringToObject(o, "title", PQgetvalue(res, i, WEB_ROOM_TITLE));
        cJSON_AddStringToObject(o, "description", PQgetvalue(res, i, WEB_ROOM_DESCRIPTION));
        cJSON_AddStringToObject(o, "owner", PQgetvalue(res, i, WEB_ROOM_OWNER_NAME));
        cJSON_AddItemToArray(arr, o);
    }
    PQclear(res);
    web_json(r, 200, arr);
}

void web_h_healthz_get(struct web_req *r)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = web_db_ping(r);
    cJSON_AddStringToObject(o, "status", ok ? "ok" : "unavailable");
    web_json(r, ok ? 200 : 503, o);
}
