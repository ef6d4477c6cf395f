/* Server-side sessions. The browser holds `sid`: 32 random bytes, base64url. The database
 * holds only SHA-256(sid), so a leaked sessions table (or backup) logs nobody in. */
#ifndef WEB_SESSION_H
#define WEB_SESSION_H

#include "db.h"
#include "http.h"

#define WEB_SID_COOKIE "sid"

/* Looks the sid cookie up once per request (later calls return the cached answer). Sets
 * r->has_sess and r->sess for a live, unexpired session. Returns WEB_DB_OK when the answer
 * is known (with or without a session), else the database failure. */
enum web_db_rc web_session_load(struct web_req *r);

/* Creates a session for user_id and sets the cookie on the response. */
enum web_db_rc web_session_create(struct web_req *r, long long user_id);

/* Deletes the current session server-side and, if expire_cookie, expires the cookie. */
enum web_db_rc web_session_destroy(struct web_req *r, bool expire_cookie);

#endif
