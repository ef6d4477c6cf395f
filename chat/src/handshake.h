/* Pure parsers of the WebSocket handshake's credentials (no lws here, so they are unit
 * tested and fuzzed on their own): the Cookie header (RFC 6265 §4.2.1 / §5.4), the Origin
 * header (RFC 6454 §6.2 serialisation) against an allow-list or the Host header, and the
 * query of GET /ws (only `room=NAME`; a token in a URL is refused). http.c feeds them
 * bytes lws has copied out of its header table; every input is (pointer, length). */
#ifndef CHAT_HANDSHAKE_H
#define CHAT_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm_token.h"

/* The browser's per-room cookie: "parley_ws_" + room name (the website sets it, Path=/ws). */
#define CHAT_WS_COOKIE_PREFIX "parley_ws_"
#define CHAT_WS_COOKIE_NAME_MAX (sizeof CHAT_WS_COOKIE_PREFIX - 1 + CM_ROOM_MAX)
/* Longest Origin / Host header we look at (RFC 1035 names are <= 253 bytes; with scheme and
 * port an origin fits easily). Longer ones are refused, not truncated. */
#define CHAT_ORIGIN_MAX 300
/* Longest CHAT_ALLOWED_ORIGINS value (the config table's bound). */
#define CHAT_ALLOWED_ORIGINS_MAX 4096

enum chat_cookie_rc {
    CHAT_COOKIE_ABSENT = 0,
    CHAT_COOKIE_FOUND,
    CHAT_COOKIE_AMBIGUOUS, /* the name occurs more than once with different values */
};

/* Finds cookie `name` (exact, case-sensitive) in a Cookie header value [h, h+len): pairs
 * "name=value" separated by ';' with optional spaces/tabs around them (RFC 6265 §4.2.1 is
 * "; "; §5.4 servers should be lenient). A value in double quotes is unquoted; a pair
 * without '=' is skipped. On FOUND, *val and *vlen give the value (inside h). The same name twice
 * with the same value is FOUND (harmless); with different values AMBIGUOUS: a cookie set for a
 * parent domain or another path (cookie tossing) must not be able to pick the token.
 * Reads nothing outside [h, h+len); h need not be NUL-terminated. */
enum chat_cookie_rc chat_cookie_find(const char *h, size_t len, const char *name, size_t nlen,
                                     const char **val, size_t *vlen);

/* True if [s, s+len) is a serialised origin (RFC 6454 §6.2) of an http or https URL as a
 * browser sends it: lowercase "http" or "https", "://", a host of [a-z0-9.-] (a DNS name
 * or IPv4 address, lowercase as browsers send it) or an IPv6 literal "[...]" of hex digits,
 * ':' and '.', then optionally ':' and a port 1..65535 without leading zeros. No path, no
 * trailing '/', no userinfo. "null" (opaque origins) is not. */
bool chat_origin_valid(const char *s, size_t len);

/* True if CHAT_ALLOWED_ORIGINS-style list [s, s+len) is a comma-separated list (spaces
 * around entries allowed) of one or more chat_origin_valid() entries. */
bool chat_origin_list_valid(const char *s, size_t len);

/* Decides whether a cookie-authenticated handshake may proceed (cross-site WebSocket
 * hijacking: the cookie is ambient, a page of any site can make the browser send it, but
 * the browser sets Origin to that page's origin and scripts cannot change it).
 * origin: the Origin header value. allow: CHAT_ALLOWED_ORIGINS (NULL or empty = unset).
 * With an allow-list, the origin must equal one entry byte for byte. Without one, it must
 * name the request's own Host header [host, host+hlen): "http://" or "https://" followed by
 * exactly that host[:port] (host compared case-insensitively; an explicit default port, 80
 * for http and 443 for https, on one side matches its absence on the other). A malformed
 * or missing origin (NULL) is refused. */
bool chat_origin_allowed(const char *origin, size_t olen, const char *host, size_t hlen,
                         const char *allow, size_t alen);

enum chat_query_rc {
    CHAT_QUERY_OK = 0,
    CHAT_QUERY_TOKEN, /* an access_token argument: tokens in URLs are refused */
    CHAT_QUERY_BAD,   /* an unknown argument, one given twice, or an invalid room name */
};

/* What the query of GET /ws may hold (zero it before the first argument). */
struct chat_query {
    char room[CM_ROOM_MAX + 1]; /* room=NAME (cm_room_name_valid), NUL-terminated */
    bool has_room;
    bool has_since; /* since=S: resume point of history */
    uint64_t since; /* its value: 1..16 decimal digits, at most 2^53-1 (else CHAT_QUERY_BAD) */
};

/* One argument of the query of GET /ws, as lws splits and URL-decodes them (one fragment
 * per '&' or ';', "+" already a space), [a, a+len). Accepts "room=NAME" and "since=..." once
 * each and nothing else, so nothing but a room name and a number can ride in the URL. The
 * name "access_token" is compared case-insensitively ("Access_Token=" is a token too). */
enum chat_query_rc chat_query_arg(const char *a, size_t len, struct chat_query *q);

#endif
