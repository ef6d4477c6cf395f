/* libFuzzer target: the handshake's Cookie, Origin and query parsers (handshake.c) on any
 * input. The input is split at '\n' into cookie header, origin, host, allow-list and query
 * argument; each part is copied to a buffer of exactly its size, so a read past the given
 * length is an ASan error. Build with -DPARLEY_FUZZ=ON and clang. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "handshake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *part(const uint8_t **p, const uint8_t *end, size_t *len)
{
    const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
    const uint8_t *e = nl ? nl : end;
    *len = (size_t)(e - *p);
    char *c = malloc(*len ? *len : 1);
    memcpy(c, *p, *len);
    *p = nl ? nl + 1 : end;
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p = data, *end = data + size;
    size_t cl, ol, hl, al, ql;
    char *cookie = part(&p, end, &cl), *origin = part(&p, end, &ol), *host = part(&p, end, &hl);
    char *allow = part(&p, end, &al), *arg = part(&p, end, &ql);

    const char *v = NULL;
    size_t vl = 0;
    if (chat_cookie_find(cookie, cl, "parley_ws_lobby", 15, &v, &vl) == CHAT_COOKIE_FOUND &&
        (v < cookie || v + vl > cookie + cl))
        abort();
    bool valid = chat_origin_valid(origin, ol);
    if (chat_origin_allowed(origin, ol, host, hl, NULL, 0) && !valid)
        abort();
    if (chat_origin_list_valid(allow, al) && chat_origin_allowed(origin, ol, host, hl, allow, al) &&
        !valid)
        abort();
    struct chat_query q;
    memset(&q, 0, sizeof q);
    if (chat_query_arg(arg, ql, &q) == CHAT_QUERY_OK && !q.has_since &&
        (!q.has_room || !cm_room_name_valid(q.room, strlen(q.room))))
        abort();
    free(cookie);
    free(origin);
    free(host);
    free(allow);
    free(arg);
    return 0;
}
