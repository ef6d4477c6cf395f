/* Password hashing: Argon2id through libsodium's crypto_pwhash_str. */
#ifndef WEB_PASSWORD_H
#define WEB_PASSWORD_H

#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>

#define WEB_HASH_MAX crypto_pwhash_STRBYTES

/* sodium_init and a dummy hash (so a login for an unknown email costs as much as a real one
 * and its timing does not tell whether the email exists). 0 on success. */
int web_password_init(void);
void web_password_shutdown(void);

/* Hashes [pw, pw+len) into out (NUL-terminated). 0, or -1 if libsodium runs out of memory. */
int web_password_hash(const char *pw, size_t len, char out[WEB_HASH_MAX]);

/* Verifies against hash; hash NULL verifies against the dummy and returns false. */
bool web_password_verify(const char *hash, const char *pw, size_t len);

#endif
