/* Invitations to a room (mostly for private rooms): invite links and adding an existing user
 * by email, both by the room's owner (or an admin).
 *
 * An invite code is 32 random bytes (cm_random_bytes, libsodium) written as 43 base64url
 * characters (RFC 4648 section 5, no padding) in the link /invite/CODE; only its SHA-256
 * (FIPS 180-4) is stored, so a copy of the table lets nobody in. A code is single-use, expires
 * after WEB_INVITE_TTL seconds and can be revoked; using it joins through room_join, so a
 * full activity stays full (migration 005, invite_use). */
#include "cm_log.h"
#include "cm_util.h"
#include "config.h"
#include "db.h"
#include "events.h"
#include "handlers.h"
#include "page.h"
#include "session.h"
#include "validate.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INVITE_CODE_LEN 43 /* base64url characters of 32 bytes */

/* The room named by r->param if r's user owns it or is an admin: its id into rid (24 bytes).
 * Otherwise answers 404 / 403 / 503 itself and returns false. */
static bool owned_room(struct web_req *r, char name[CM_ROOM_MAX + 1], char rid[24])
{
    if (!cm_room_name_valid(r->param, r->param_len)) {
        web_page_error(r, 404, "There is no room with this name.");
        return false;
    }
    memcpy(name, r->param, r->param_len);
    name[r->param_len] = '\0';
    const char *p[1] = {name};
    PGresult *res;
    enum web_db_rc rc =
        web_db_query(r, &res, "SELECT id, owner_id FROM rooms WHERE name = $1", 1, p);
    if (rc != WEB_DB_OK) {
        web_page_db_error(r, rc);
        return false;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        web_page_error(r, 404, "There is no room with this name.");
        return false;
    }
    long long owner = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    snprintf(rid, 24, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    if (owner != r->sess->user.id && !r->sess->user.is_admin) {
        web_page_error(r, 404, "There is no room with this name.");
        return false;
    }
    return true;
}

/* The code in the path (/invite/CODE) as its SHA-256 in PostgreSQL's bytea hex input form
 * ("\\x" + 64 hex digits + NUL: 67 bytes). False for anything that is not a code. */
static bool code_hash_hex(const char *code, size_t len, char hex[67])
{
    unsigned char raw[32], hash[32];
    if (len != INVITE_CODE_LEN || cm_base64url_decode(code, len, raw, sizeof raw) != 32)
        return false;
    crypto_hash_sha256(hash, raw, sizeof raw);
    sodium_memzero(raw, sizeof raw);
    hex[0] = '\\';
    hex[1] = 'x';
    cm_hex_encode(hash, 32, hex + 2);
    return true;
}

void web_h_room_invite_post(struct web_req *r)
{
    struct web_form f;
    if (!web_page_begin(r, WEB_NEED_FORM | WEB_NEED_USER, &f))
        return;
    web_form_free(&f);
    char name[CM_ROOM_MAX + 1], rid[24];
    if (!owned_room(r, name, rid))
        return;
    unsigned char raw[32], hash[32];
    char code[INVITE_CODE_LEN + 1], hex[67] = "\\x", uid[24], ttl[24];
    cm_random_bytes(raw, sizeof raw);
    sodium_bin2base64(code, sizeof code, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    crypto_hash_sha256(hash, raw, sizeof raw);
    sodium_memzero(raw, sizeof raw);
    cm_hex_encode(hash, 32, hex + 2);
    snprintf(uid, sizeof uid, "%lld", r->sess->user.id);
    snprintf(ttl, sizeof ttl, "%lld", web_cfg.invite_ttl);
    const char *p[4] = {hex, rid, uid, ttl};
    PGresult *res;
    enum web_db_rc rc = web_db_query(
        r, &res,
        "INSERT INTO room_invites (code_hash, room_id, created_by, expires_at) "
        "VALUES ($1::bytea, $2::bigint, $3::bigint, now() + $4::bigint * interval '1 second') "
        "RETURNING to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
        4, p);
    if (rc != WEB_DB_OK) {
        sodium_memzero(code, sizeof code);
        web_page_db_error(r, rc);
        return;
    }
    char link[sizeof "/invite/" + INVITE_CODE_LEN];
    snprintf(link, sizeof link, "/invite/%s", code);
    sodium_memzero(code, sizeof code);
    struct web_var v[] = {WEB_VAR("room", name), WEB_VAR("link", link),
                          WEB_VAR("expires_at", PQgetvalue(res, 0, 0))};
    cm_info("user %lld created an invite to room %s", r->sess->user.id, name);
    /* 201 with the link, shown this once: only its hash is kept */
    web_page(r, 201, "Invite link", "rooms_head.html", "invite_created.html", v, 3);
    PQclear(res);
}

void web_h_room_invite_revoke_post(struct web_req *r)
{
    struct web_form f;
    if (!web_page_begin(r, WEB_NEED_FORM | WEB_NEED_USER, &f))
        return;
    size_t il = 0;
    const char *inv = web_form_get(&f, "invite", &il);
    char hex[67] = "\\x";
    bool ok = inv && il == 64;
    for (size_t i = 0; ok && i < il; i++)
        ok = (inv[i] >= '0' && inv[i] <= '9') || (inv[i] >= 'a' && inv[i] <= 'f');
    if (ok)
        memcpy(hex + 2, inv, 65);
    web_form_free(&f);
    char name[CM_ROOM_MAX + 1], rid[24];
    if (!owned_room(r, name, rid))
        return;
    if (!ok) {
        web_page_error(r, 400, "Which invite? The form did not say.");
        return;
    }
    char at_ms[24];
    snprintf(at_ms, sizeof at_ms, "%lld", (long long)cm_now_ms());
    const char *p[3] = {hex, rid, at_ms};
    PGresult *res;
    /* Revoking an invite someone used takes back what it gave: its user leaves the room
     * unless another valid (used, unrevoked) invite of theirs to it remains, or they own it.
     * In a private room that also closes their chat connections to it (4005): the event goes
     * into the outbox in the same statement. */
    enum web_db_rc rc = web_db_query(
        r, &res,
        "WITH i AS (UPDATE room_invites SET revoked_at = now() "
        "WHERE code_hash = $1::bytea AND room_id = $2::bigint AND revoked_at IS NULL "
        "RETURNING used_by), "
        "d AS (DELETE FROM room_members m USING i, rooms r "
        "WHERE m.room_id = $2::bigint AND m.user_id = i.used_by AND r.id = m.room_id "
        "AND r.owner_id <> i.used_by AND NOT EXISTS (SELECT 1 FROM room_invites j "
        "WHERE j.room_id = $2::bigint AND j.used_by = i.used_by AND j.code_hash <> $1::bytea "
        "AND j.revoked_at IS NULL) RETURNING m.user_id), "
        "e AS (INSERT INTO moderation_events (kind, uid, rid, at_ms) "
        "SELECT 'member_removed', u.public_id, $2::bigint, $3::bigint FROM d "
        "JOIN users u ON u.id = d.user_id JOIN rooms r ON r.id = $2::bigint "
        "WHERE r.visibility = 'private' RETURNING 1) "
        "SELECT (SELECT count(*) FROM i), (SELECT count(*) FROM d), (SELECT count(*) FROM e)",
        3, p);
    if (rc != WEB_DB_OK) {
        web_page_db_error(r, rc);
        return;
    }
    bool found = strcmp(PQgetvalue(res, 0, 0), "0") != 0;
    bool removed = strcmp(PQgetvalue(res, 0, 1), "0") != 0;
    bool event = strcmp(PQgetvalue(res, 0, 2), "0") != 0;
    PQclear(res);
    if (!found) {
        web_page_error(r, 404, "There is no such invite to revoke (or it was revoked already).");
        return;
    }
    if (event)
        web_events_wake();
    cm_info("user %lld revoked an invite to room %s%s", r->sess->user.id, name,
            removed ? " (its user was removed)" : "");
    char back[64];
    snprintf(back, sizeof back, "/rooms/%s", name);
    web_redirect(r, back);
}

/* The form of the owner's member actions (email=...): the session, the CSRF token, the email
 * and the room the user owns (or administers). False when it answered already (a 400 names
 * what is wrong; missing: the message when no email came). */
static bool member_form(struct web_req *r, const char *missing, char email[WEB_EMAIL_MAX + 1],
                        char name[CM_ROOM_MAX + 1], char rid[24])
{
    struct web_form f;
    if (!web_page_begin(r, WEB_NEED_FORM | WEB_NEED_USER, &f))
        return false;
    size_t el = 0;
    const char *e = web_form_get(&f, "email", &el);
    const char *err = e ? web_valid_email(e, el, email) : missing;
    web_form_free(&f);
    if (!owned_room(r, name, rid))
        return false;
    if (err) {
        web_page_error(r, 400, err);
        return false;
    }
    return true;
}

void web_h_room_member_add_post(struct web_req *r)
{
    char email[WEB_EMAIL_MAX + 1], name[CM_ROOM_MAX + 1], rid[24];
    if (!member_form(r, "Give the email of the person to add.", email, name, rid))
        return;
    const char *p[2] = {rid, email};
    PGresult *res;
    enum web_db_rc rc = web_db_query(
        r, &res, "SELECT room_join($1::bigint, u.id) FROM users u WHERE u.email = $2", 2, p);
    if (rc != WEB_DB_OK) {
        web_page_db_error(r, rc);
        return;
    }
    const char *st = PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : NULL;
    unsigned code = !st ? 404 : strcmp(st, "full") == 0 ? 409 : 0;
    PQclear(res);
    if (code == 404) {
        web_page_error(r, 404, "Nobody has an account with this email.");
        return;
    }
    if (code == 409) {
        web_page_error(r, 409, "This activity is full: every place is taken.");
        return;
    }
    cm_info("user %lld added a member to room %s", r->sess->user.id, name);
    char back[64];
    snprintf(back, sizeof back, "/rooms/%s", name);
    web_redirect(r, back);
}

/* POST /rooms/NAME/members/remove (email=...): the owner (or an admin) removes a member. Not
 * the owner. In a private room the member's chat connections to it are closed (4005) and
 * their tokens for it refused: the event goes into the outbox in the same statement. */
void web_h_room_member_remove_post(struct web_req *r)
{
    char email[WEB_EMAIL_MAX + 1], name[CM_ROOM_MAX + 1], rid[24];
    if (!member_form(r, "Give the email of the person to remove.", email, name, rid))
        return;
    char at_ms[24];
    snprintf(at_ms, sizeof at_ms, "%lld", (long long)cm_now_ms());
    const char *p[3] = {rid, email, at_ms};
    PGresult *res;
    enum web_db_rc rc = web_db_query(
        r, &res,
        "WITH t AS (SELECT u.id, u.public_id, r.owner_id = u.id AS owner, r.visibility "
        "FROM users u JOIN rooms r ON r.id = $1::bigint WHERE u.email = $2), "
        "d AS (DELETE FROM room_members m USING t WHERE m.room_id = $1::bigint "
        "AND m.user_id = t.id AND NOT t.owner RETURNING m.user_id), "
        "e AS (INSERT INTO moderation_events (kind, uid, rid, at_ms) "
        "SELECT 'member_removed', t.public_id, $1::bigint, $3::bigint FROM d JOIN t ON t.id = "
        "d.user_id WHERE t.visibility = 'private' RETURNING 1) "
        "SELECT (SELECT count(*) FROM t), coalesce((SELECT owner FROM t), false), "
        "(SELECT count(*) FROM d), (SELECT count(*) FROM e)",
        3, p);
    if (rc != WEB_DB_OK) {
        web_page_db_error(r, rc);
        return;
    }
    bool found = strcmp(PQgetvalue(res, 0, 0), "0") != 0;
    bool owner = PQgetvalue(res, 0, 1)[0] == 't';
    bool removed = strcmp(PQgetvalue(res, 0, 2), "0") != 0;
    bool event = strcmp(PQgetvalue(res, 0, 3), "0") != 0;
    PQclear(res);
    if (!found) {
        web_page_error(r, 404, "Nobody has an account with this email.");
        return;
    }
    if (owner) {
        web_page_error(r, 409, "The owner stays a member of their room.");
        return;
    }
    if (!removed) {
        web_page_error(r, 404, "This person is not a member of the room.");
        return;
    }
    if (event)
        web_events_wake();
    cm_info("user %lld removed a member from room %s", r->sess->user.id, name);
    char back[64];
    snprintf(back, sizeof back, "/rooms/%s", name);
    web_redirect(r, back);
}

/* GET shows the invitation with a join form; POST uses it. A code that is unknown, used,
 * revoked or expired gets the same 404 either way. */
static void invite(struct web_req *r, bool post)
{
    struct web_form f;
    if (!web_page_begin(r, (post ? WEB_NEED_FORM : 0) | WEB_NEED_USER, post ? &f : NULL))
        return;
    if (post)
        web_form_free(&f);
    char hex[67];
    static const char gone[] =
        "This invite link is not valid: it was used, revoked or has expired. "
        "Ask the room's owner for a new one.";
    if (!code_hash_hex(r->param, r->param_len, hex)) {
        web_page_error(r, 404, gone);
        return;
    }
    char uid[24];
    snprintf(uid, sizeof uid, "%lld", r->sess->user.id);
    const char *p[2] = {hex, uid};
    PGresult *res;
    enum web_db_rc rc;
    if (!post) {
        rc = web_db_query(r, &res,
                          "SELECT r.name, r.title FROM room_invites i JOIN rooms r ON r.id = "
                          "i.room_id WHERE i.code_hash = $1::bytea AND i.used_at IS NULL AND "
                          "i.revoked_at IS NULL AND i.expires_at > now()",
                          1, p);
        if (rc != WEB_DB_OK) {
            web_page_db_error(r, rc);
            return;
        }
        if (PQntuples(res) != 1) {
            PQclear(res);
            web_page_error(r, 404, gone);
            return;
        }
        char action[sizeof "/invite/" + INVITE_CODE_LEN];
        snprintf(action, sizeof action, "/invite/%.*s", (int)r->param_len, r->param);
        struct web_var v[] = {WEB_VAR("room", PQgetvalue(res, 0, 0)),
                              WEB_VAR("room_title", PQgetvalue(res, 0, 1)),
                              WEB_VAR("action", action)};
        web_page(r, 200, "Invitation", NULL, "invite.html", v, 3);
        PQclear(res);
        return;
    }
    rc = web_db_query(r, &res, "SELECT * FROM invite_use($1::bytea, $2::bigint)", 2, p);
    if (rc != WEB_DB_OK) {
        web_page_db_error(r, rc);
        return;
    }
    char st[16], room[CM_ROOM_MAX + 1];
    snprintf(st, sizeof st, "%s", PQgetvalue(res, 0, 0));
    snprintf(room, sizeof room, "%s", PQgetvalue(res, 0, 1));
    PQclear(res);
    if (strcmp(st, "invalid") == 0 || strcmp(st, "gone") == 0) {
        web_page_error(r, 404, gone);
        return;
    }
    if (strcmp(st, "full") == 0) {
        web_page_error(r, 409, "This activity is full: every place is taken.");
        return;
    }
    cm_info("user %lld joined room %s by invite (%s)", r->sess->user.id, room, st);
    char back[64];
    snprintf(back, sizeof back, "/rooms/%s", room);
    web_redirect(r, back);
}

void web_h_invite_get(struct web_req *r)
{
    invite(r, false);
}

void web_h_invite_post(struct web_req *r)
{
    invite(r, true);
}
