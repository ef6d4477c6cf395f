/* Server-side sessions. The browser holds `sid`: 32 random bytes, base64url. The database
 * holds only SHA-256(sid), so a leaked sessions table (or backup) logs nobody in. */
#ifndef WEB_SESSION_H
#define WEB_SESSION_H

#include "cm_token.h"
#include "db.h"

#include <stdbool.h>

#define WEB_SID_COOKIE "sid"
#define WEB_SID_LEN 43 /* base64url characters of 32 random bytes */

struct web_req;

struct web_user {
    long long id;
    char public_id[CM_UID_MAX + 1]; /* users.public_id (a UUID): the id chat frames show */
    char email[CM_EMAIL_MAX + 1];
    char name[CM_NAME_MAX * 4 + 1];
    bool is_admin;
    bool banned;
};

/* The signed-in state of a request (r->sess, owned by the request). */
struct web_session {
    struct web_user user;
    char csrf[64 + 1];              /* WEB_CSRF_LEN hex characters */
    unsigned char id_hash[32];      /* SHA-256 of the sid cookie: the key in the sessions table */
    char public_id[CM_SID_MAX + 1]; /* sessions.public_id: non-secret, the tokens' sid claim */
};

/* Looks the sid cookie up once per request (later calls return the cached answer). Sets
 * r->has_sess and r->sess (allocated, freed with the request) for a live, unexpired session.
 * Returns WEB_DB_OK when the answer is known (with or without a session), else the database
 * failure. */
enum web_db_rc web_session_load(struct web_req *r);

/* Creates a session for user_id and sets the cookie on the response. */
enum web_db_rc web_session_create(struct web_req *r, long long user_id);

/* Deletes the current session server-side and, if expire_cookie, expires the cookie. */
enum web_db_rc web_session_destroy(struct web_req *r, bool expire_cookie);

#endif
