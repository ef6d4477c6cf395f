/* libFuzzer target: cm_token_verify must reject garbage without crashing, reading out of
 * bounds or leaking, whatever the bytes. Build with -DPARLEY_FUZZ=ON and clang. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cm_token.h"
#include "cm_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned char key[] = "fuzz-secret-fuzz-secret-fuzz-secret!";
    struct cm_token_claims c;
    (void)cm_token_verify((const char *)data, size, key, sizeof key - 1, 1900000000, &c);
    unsigned char out[256];
    (void)cm_base64url_decode((const char *)data, size, out, sizeof out);
    (void)cm_utf8_valid((const char *)data, size);
    return 0;
}
