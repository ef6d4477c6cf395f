#include "password.h"

#include "cm_log.h"
#include "config.h"

#include <semaphore.h>
#include <string.h>

/* Each hash takes PWHASH_MEMLIMIT_KIB of memory: the semaphore bounds how many run at once,
 * so a burst of logins cannot take the machine's memory. */
static sem_t hash_slots;
static char dummy[WEB_HASH_MAX];

int web_password_init(void)
{
    if (sodium_init() < 0) {
        cm_error("libsodium failed to initialise");
        return -1;
    }
    if (sem_init(&hash_slots, 0, (unsigned)web_cfg.pwhash_concurrency) < 0)
        return -1;
    return web_password_hash("parley-dummy-password", 21, dummy);
}

void web_password_shutdown(void)
{
    sem_destroy(&hash_slots);
}

int web_password_hash(const char *pw, size_t len, char out[WEB_HASH_MAX])
{
    while (sem_wait(&hash_slots) < 0)
        ;
    int rc = crypto_pwhash_str(out, pw, len, (unsigned long long)web_cfg.pwhash_opslimit,
                               (size_t)web_cfg.pwhash_memlimit_kib * 1024);
    sem_post(&hash_slots);
    if (rc != 0)
        cm_error("password hashing failed (out of memory?)");
    return rc == 0 ? 0 : -1;
}

bool web_password_verify(const char *hash, const char *pw, size_t len)
{
    /* The dummy runs with the configured cost, as every real hash made by this process. */
    const char *h = hash ? hash : dummy;
    if (strnlen(h, WEB_HASH_MAX) >= WEB_HASH_MAX)
        return false;
    while (sem_wait(&hash_slots) < 0)
        ;
    int rc = crypto_pwhash_str_verify(h, pw, len);
    sem_post(&hash_slots);
    return hash && rc == 0;
}
