#include "session.h"

#include "cm_alloc.h"
#include "cm_log.h"
#include "cm_util.h"
#include "config.h"
#include "cookie.h"
#include "events.h"
#include "req.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

_Static_assert(sizeof((struct web_session *)0)->csrf == WEB_CSRF_LEN + 1,
               "session.h's csrf field holds one CSRF token");

/* The sid as sent: 43 base64url characters. Anything else is not ours: ignore it. */
static bool sid_decode(const char *v, size_t len, unsigned char raw[32])
{
    if (len != WEB_SID_LEN)
        return false;
    return cm_base64url_decode(v, len, raw, 32) == 32;
}

static void set_cookie(struct web_req *r, const char *value, long long max_age)
{
    web_resp_header(r, "Set-Cookie", "%s=%s; Path=/; Max-Age=%lld; HttpOnly; SameSite=Lax%s",
                    WEB_SID_COOKIE, value, max_age, web_cfg.cookie_secure ? "; Secure" : "");
}

enum web_db_rc web_session_load(struct web_req *r)
{
    if (r->sess_loaded)
        return WEB_DB_OK;
    const char *h = web_req_header(r, "Cookie");
    size_t vlen;
    const char *v = h ? web_cookie_find(h, strlen(h), WEB_SID_COOKIE, &vlen) : NULL;
    unsigned char raw[32];
    if (!v || !sid_decode(v, vlen, raw)) {
        r->sess_loaded = true;
        return WEB_DB_OK;
    }
    unsigned char id_hash[32];
    crypto_hash_sha256(id_hash, raw, sizeof raw);
    sodium_memzero(raw, sizeof raw);
    char hex[2 * 32 + 3] = "\\x";
    cm_hex_encode(id_hash, 32, hex + 2);
    const char *p[1] = {hex};
    PGresult *res;
    enum web_db_rc rc = web_db_query(
        r, &res,
        "SELECT u.id, u.email, u.name, u.is_admin, u.banned_at IS NOT NULL, s.csrf_token, "
        "s.revoked_at IS NOT NULL, u.public_id, s.public_id "
        "FROM sessions s JOIN users u ON u.id = s.user_id "
        "WHERE s.id = $1::bytea AND s.expires_at > now()",
        1, p);
    if (rc != WEB_DB_OK)
        return rc;
    r->sess_loaded = true;
    /* A revoked session (the user was banned) grants nothing ever again. While the user is
     * still banned it is kept to say so (403 "banned" rather than "log in"); after an unban
     * it is simply no session. */
    bool revoked = PQntuples(res) == 1 && PQgetvalue(res, 0, 6)[0] == 't';
    bool banned = PQntuples(res) == 1 && PQgetvalue(res, 0, 4)[0] == 't';
    if (PQntuples(res) == 1 && (!revoked || banned)) {
        if (!r->sess)
            r->sess = cm_xcalloc(1, sizeof *r->sess);
        memcpy(r->sess->id_hash, id_hash, sizeof id_hash);
        struct web_user *u = &r->sess->user;
        u->id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        snprintf(u->email, sizeof u->email, "%s", PQgetvalue(res, 0, 1));
        snprintf(u->name, sizeof u->name, "%s", PQgetvalue(res, 0, 2));
        u->is_admin = PQgetvalue(res, 0, 3)[0] == 't';
        u->banned = PQgetvalue(res, 0, 4)[0] == 't';
        snprintf(r->sess->csrf, sizeof r->sess->csrf, "%s", PQgetvalue(res, 0, 5));
        snprintf(u->public_id, sizeof u->public_id, "%s", PQgetvalue(res, 0, 7));
        snprintf(r->sess->public_id, sizeof r->sess->public_id, "%s", PQgetvalue(res, 0, 8));
        r->has_sess = true;
    }
    PQclear(res);
    return WEB_DB_OK;
}

enum web_db_rc web_session_create(struct web_req *r, long long user_id)
{
    unsigned char raw[32], csrf_raw[32], hash[32];
    char sid[WEB_SID_LEN + 1], csrf[WEB_CSRF_LEN + 1], hex[2 * 32 + 3] = "\\x";
    char uid[24], ttl[24];
    cm_random_bytes(raw, sizeof raw);
    cm_random_bytes(csrf_raw, sizeof csrf_raw);
    sodium_bin2base64(sid, sizeof sid, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    cm_hex_encode(csrf_raw, sizeof csrf_raw, csrf);
    crypto_hash_sha256(hash, raw, sizeof raw);
    sodium_memzero(raw, sizeof raw);
    cm_hex_encode(hash, 32, hex + 2);
    snprintf(uid, sizeof uid, "%lld", user_id);
    snprintf(ttl, sizeof ttl, "%lld", web_cfg.session_ttl);
    /* Expired sessions of anyone are swept here, where a session is made anyway; the
     * expires_at index keeps this cheap. */
    web_db_query(r, NULL, "DELETE FROM sessions WHERE expires_at < now()", 0, NULL);
    const char *p[4] = {hex, uid, csrf, ttl};
    enum web_db_rc rc =
        web_db_query(r, NULL,
                     "INSERT INTO sessions (id, user_id, csrf_token, expires_at) "
                     "VALUES ($1::bytea, $2, $3, now() + make_interval(secs => $4::int))",
                     4, p);
    if (rc == WEB_DB_OK)
        set_cookie(r, sid, web_cfg.session_ttl);
    sodium_memzero(sid, sizeof sid);
    return rc;
}

enum web_db_rc web_session_destroy(struct web_req *r, bool expire_cookie)
{
    enum web_db_rc rc = WEB_DB_OK;
    if (r->has_sess) {
        char hex[2 * 32 + 3] = "\\x";
        cm_hex_encode(r->sess->id_hash, 32, hex + 2);
        char at_ms[24];
        snprintf(at_ms, sizeof at_ms, "%lld", (long long)cm_now_ms());
        const char *p[2] = {hex, at_ms};
        /* the session ends and its chat tokens with it: the logout event goes into the outbox
         * in the same statement (chat daemons close the connections opened with them, 4001) */
        PGresult *res = NULL;
        rc = web_db_query(r, &res,
                          "WITH d AS (DELETE FROM sessions WHERE id = $1::bytea "
                          "RETURNING user_id, public_id), "
                          "e AS (INSERT INTO moderation_events (kind, uid, sid, at_ms) "
                          "SELECT 'logout', u.public_id, d.public_id, $2::bigint FROM d "
                          "JOIN users u ON u.id = d.user_id RETURNING 1) "
                          "SELECT count(*) FROM e",
                          2, p);
        if (rc == WEB_DB_OK && strcmp(PQgetvalue(res, 0, 0), "0") != 0)
            web_events_wake();
        PQclear(res);
        r->has_sess = false;
    }
    if (expire_cookie)
        set_cookie(r, "", 0);
    return rc;
}
