/* Small pure helpers shared by both daemons: randomness, encodings, UTF-8, time. */
#ifndef CM_UTIL_H
#define CM_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Fills buf with cryptographically secure random bytes (getrandom); aborts on failure. */
void cm_random_bytes(void *buf, size_t len);

/* Writes 2*len lowercase hex digits and a NUL to out (which holds 2*len+1 bytes). */
void cm_hex_encode(const unsigned char *in, size_t len, char *out);

/* Constant-time comparison of two equal-length byte strings; false if lengths differ. */
bool cm_ct_equal(const void *a, size_t alen, const void *b, size_t blen);

/* base64url without padding (RFC 4648 §5). Decoding rejects '=', '+', '/', whitespace and
 * impossible lengths. Returns decoded length, or -1 if malformed or out_cap too small. */
long cm_base64url_decode(const char *in, size_t len, unsigned char *out, size_t out_cap);

/* Returns true if [s, s+len) is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF). */
bool cm_utf8_valid(const char *s, size_t len);
/* Number of code points in valid UTF-8 (call cm_utf8_valid first). */
size_t cm_utf8_count(const char *s, size_t len);

/* Installs handler for SIGTERM and SIGINT (no SA_RESTART, so blocking calls wake up) and
 * ignores SIGPIPE, so a peer closing a socket is an error return, not a dead daemon. */
void cm_signals_install(void (*handler)(int));

int64_t cm_now_ms(void);  /* wall clock, Unix milliseconds */
int64_t cm_mono_ms(void); /* monotonic clock, milliseconds */

#endif
