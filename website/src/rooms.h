/* Room operations shared by the rooms pages and the admin page. */
#ifndef WEB_ROOMS_H
#define WEB_ROOMS_H

#include "db.h"
#include "req.h"

#include <stdbool.h>
#include <stddef.h>

#define WEB_ROOMS_LIST_MAX 200 /* rows on one rooms page or API answer */

/* Deletes the room named by r->param after the form and CSRF check. Only its owner or an
 * admin (admin_only: only an admin) may; then 303 to `back`. */
void web_rooms_delete(struct web_req *r, bool admin_only, const char *back);

/* The columns of a web_rooms_search row. */
enum {
    WEB_ROOM_NAME,
    WEB_ROOM_TITLE,
    WEB_ROOM_DESCRIPTION,
    WEB_ROOM_OWNER_NAME,
    WEB_ROOM_OWNER_ID,
    WEB_ROOM_STARTS_AT,  /* ISO 8601 UTC "YYYY-MM-DDTHH:MM:SSZ", or NULL */
    WEB_ROOM_ENDS_AT,    /* the same, or NULL */
    WEB_ROOM_LOCATION,   /* or NULL */
    WEB_ROOM_CAPACITY,   /* 1..10000, or NULL (no limit) */
    WEB_ROOM_MEMBERS,    /* count of members */
    WEB_ROOM_VISIBILITY, /* "public" or "private" */
    WEB_ROOM_JOINED,     /* "t" when the signed-in user is a member */
    WEB_ROOM_LAST_READ,  /* that member's last_read_seq, or NULL */
    WEB_ROOM_ID
};

/* Checks a search text [q, q+len) (the ?q= of /rooms and /api/rooms): NULL if it may be
 * searched for, else a message for the user. */
const char *web_rooms_query_check(const char *q, size_t len);

/* The one room search, for the rooms page and the API alike: rooms whose name, title or
 * description contains q (case-insensitive, through the trigram indexes of migration 003;
 * "" lists all) that r->sess's user may see (public ones; private ones only to members and
 * admins: rooms_search of migration 005), by name, at most
 * WEB_ROOMS_LIST_MAX rows of the WEB_ROOM_* columns. q must have passed
 * web_rooms_query_check. On WEB_DB_OK the caller PQclear()s *res. */
enum web_db_rc web_rooms_search(struct web_req *r, const char *q, size_t len, PGresult **res);

/* "Starts 2026-12-05 18:00 UTC"-style fallback text of an ISO time from the WEB_ROOM_STARTS_AT
 * column: writes "YYYY-MM-DD HH:MM UTC" to out (at least 24 bytes). */
void web_time_utc_text(const char *iso, char *out, size_t size);

#define WEB_UNREAD_NOT_MEMBER (-2) /* web_rooms_unread: the user is not a member */
#define WEB_UNREAD_UNKNOWN (-1)    /* web_rooms_unread: Redis did not answer */

/* Unread counts of the rows of a web_rooms_search result: out[i] (PQntuples(res) entries) is
 * max(0, latest seq from Redis - the member's last_read_seq), or WEB_UNREAD_NOT_MEMBER, or
 * WEB_UNREAD_UNKNOWN for every member row when Redis could not answer (seqs.h). One MGET. */
void web_rooms_unread(PGresult *res, long long *out);

/* Escapes \, % and _ in [s, s+len) for a LIKE pattern; returns a malloc'd string. */
char *web_like_escape(const char *s, size_t len);

#endif
