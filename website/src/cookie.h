/* Cookie request header parsing (RFC 6265 §5.4 shape: "a=1; b=2"). */
#ifndef WEB_COOKIE_H
#define WEB_COOKIE_H

#include <stddef.h>

#define WEB_COOKIE_HEADER_MAX 8192 /* a longer Cookie header is ignored as hostile */

/* Finds cookie `name` in the header value [h, h+len). Returns a pointer into h and sets *vlen,
 * or NULL if absent. Surrounding double quotes are removed. If the name occurs more than once
 * the first wins (the browser sends the most specific path first). Never reads past len. */
const char *web_cookie_find(const char *h, size_t len, const char *name, size_t *vlen);

#endif
