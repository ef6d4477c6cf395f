/* Validation of user input. Each function returns NULL when the value is acceptable, or a
 * message meant for the user, shown next to the field. Limits are named here. */
#ifndef WEB_VALIDATE_H
#define WEB_VALIDATE_H

#include "cm_token.h"

#include <stdbool.h>
#include <stddef.h>

#define WEB_EMAIL_MAX CM_EMAIL_MAX /* RFC 5321 path limit */
#define WEB_EMAIL_LOCAL_MAX 64
#define WEB_NAME_MAX CM_NAME_MAX          /* characters (code points, after normalisation) */
#define WEB_NAME_BYTES (WEB_NAME_MAX * 4) /* UTF-8 bytes of a normalised name, at most */
#define WEB_NAME_INPUT_MAX 256            /* bytes typed for a name, before normalisation */
#define WEB_MARKS_MAX 2                   /* combining marks on one base character */
#define WEB_PASSWORD_MIN 8                /* bytes */
#define WEB_PASSWORD_MAX 1024             /* bytes: bounds hashing work per request */
#define WEB_TITLE_MAX 100                 /* characters */
#define WEB_DESCRIPTION_MAX 1000          /* characters */
#define WEB_SEARCH_MAX 100                /* characters in ?q= */
#define WEB_LOCATION_MAX 200              /* characters of an activity's place */
#define WEB_CAPACITY_MAX 10000            /* places of an activity */
#define WEB_TZ_MAX 64                     /* bytes of an IANA time zone name */
#define WEB_TIME_INPUT_MAX 40             /* bytes of an ISO 8601 date-time field */
#define WEB_SEARCH_MIN 3                  /* characters in a non-empty ?q=: one trigram (pg_trgm) */

/* Strips leading and trailing ASCII whitespace from (*s, *len). */
void web_trim(const char **s, size_t *len);

/* Basic syntax: local@domain, one '@', printable ASCII without spaces or <>()[],;:"\,
 * a dotted domain without empty labels. On success writes the lower-cased address and a NUL
 * to out (WEB_EMAIL_MAX + 1 bytes). */
const char *web_valid_email(const char *s, size_t len, char *out);
/* A display name (the rules and why: docs/names.md). Trims ASCII whitespace, normalises to
 * NFC (UAX #15, libunistring u8_normalize), collapses runs of space separators (Zs) into one
 * space; then refuses control characters and line/paragraph separators (Cc, Zl, Zp), format
 * and other default-ignorable characters (Cf: bidi overrides, embeddings, isolates, LRM/RLM,
 * zero-width characters, ...), unassigned, private-use and surrogate code points (Cn, Co,
 * Cs), a combining mark without a base or more than WEB_MARKS_MAX on one base, a name
 * without a letter or digit (L, N), more than WEB_NAME_MAX characters. On success writes the
 * name to store (NUL-terminated) to out; out is "" otherwise. */
const char *web_valid_name(const char *s, size_t len, char out[WEB_NAME_BYTES + 1]);
const char *web_valid_password(const char *s, size_t len);
/* [a-z0-9][a-z0-9-]{2,31} */
const char *web_valid_room_name(const char *s, size_t len);
/* Room titles (one line) and descriptions (TAB, CR, LF allowed): valid UTF-8 refused for
 * the same code points as names (Cc, Zl, Zp, Cf and default-ignorable, Cn, Co, Cs, marks
 * beyond WEB_MARKS_MAX or without a base); stored as typed (not normalised). */
const char *web_valid_title(const char *s, size_t len);
const char *web_valid_description(const char *s, size_t len);

/* Where the login and registration forms may send the user afterwards (?next= / the hidden
 * "next" field): exactly "/rooms", "/rooms/" + a valid room name (cm_room_name_valid), or
 * "/invite/" + 1..WEB_NEXT_CODE_MAX base64url characters (an invite link), so only this
 * site's own pages: never "//host", "https://host", "/\\host", a query, or an encoded byte. */
bool web_valid_next(const char *s, size_t len);
#define WEB_NEXT_CODE_MAX 48 /* invite codes are 43 characters (invites.c) */
#define WEB_NEXT_MAX (sizeof "/invite/" + WEB_NEXT_CODE_MAX) /* a valid next, with its NUL */

/* Valid UTF-8 without control characters other than (when multiline) CR, LF and TAB. */
int web_text_clean(const char *s, size_t len, int multiline);

#endif
