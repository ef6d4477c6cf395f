/* Validation of user input. Each function returns NULL when the value is acceptable, or a
 * message meant for the user, shown next to the field. Limits are named here. */
#ifndef WEB_VALIDATE_H
#define WEB_VALIDATE_H

#include "cm_token.h"

#include <stdbool.h>
#include <stddef.h>

#define WEB_EMAIL_MAX CM_EMAIL_MAX /* RFC 5321 path limit */
#define WEB_EMAIL_LOCAL_MAX 64
#define WEB_NAME_MAX CM_NAME_MAX /* characters */
#define WEB_PASSWORD_MIN 8       /* bytes */
#define WEB_PASSWORD_MAX 1024    /* bytes: bounds hashing work per request */
#define WEB_TITLE_MAX 100        /* characters */
#define WEB_DESCRIPTION_MAX 1000 /* characters */
#define WEB_SEARCH_MAX 100       /* characters in ?q= */

/* Strips leading and trailing ASCII whitespace from (*s, *len). */
void web_trim(const char **s, size_t *len);

/* Basic syntax: local@domain, one '@', printable ASCII without spaces or <>()[],;:"\,
 * a dotted domain without empty labels. On success writes the lower-cased address and a NUL
 * to out (WEB_EMAIL_MAX + 1 bytes). */
const char *web_valid_email(const char *s, size_t len, char *out);
/* 1..WEB_NAME_MAX characters of valid UTF-8 without control characters (C0, DEL, C1). */
const char *web_valid_name(const char *s, size_t len);
const char *web_valid_password(const char *s, size_t len);
/* [a-z0-9][a-z0-9-]{2,31} */
const char *web_valid_room_name(const char *s, size_t len);
const char *web_valid_title(const char *s, size_t len);
const char *web_valid_description(const char *s, size_t len);

/* Where the login form may send the user afterwards (?next= / the hidden "next" field):
 * exactly "/rooms" or "/rooms/" + a valid room name (cm_room_name_valid), so only this
 * site's own pages: never "//host", "https://host", "/\\host", a query, or an encoded byte. */
bool web_valid_next(const char *s, size_t len);

/* Valid UTF-8 without control characters other than (when multiline) CR, LF and TAB. */
int web_text_clean(const char *s, size_t len, int multiline);

#endif
