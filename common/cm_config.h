/* Configuration from environment variables through one table per daemon (after Redis's
 * standardConfig): every entry has a type, a default, and a validated range. */
#ifndef CM_CONFIG_H
#define CM_CONFIG_H

#include <stddef.h>

enum cm_cfg_type {
    CM_CFG_INT,    /* target is long long *; min..max bound the value */
    CM_CFG_STR,    /* target is char ** (malloc'd); min..max bound the length in bytes */
    CM_CFG_SECRET, /* as STR, also read from NAME_FILE; never logged */
};

struct cm_cfg_entry {
    const char *name; /* environment variable */
    enum cm_cfg_type type;
    const char *def; /* default as text; NULL means required */
    long long min, max;
    void *target;
    const char *help;
};

/* Loads every entry from the environment. An empty variable counts as unset. A secret may
 * come from NAME or from the file named by NAME_FILE (one trailing newline is stripped),
 * not both. On error writes a one-line message naming the variable into err and returns -1;
 * no secret value is ever copied into err. Returns 0 on success. */
int cm_config_load(const struct cm_cfg_entry *table, size_t n, char *err, size_t errlen);

/* Logs the effective configuration at info level, secrets shown as "(set, N bytes)". */
void cm_config_log(const struct cm_cfg_entry *table, size_t n);

/* Frees the strings loaded into STR and SECRET targets (secrets are wiped first). */
void cm_config_free(const struct cm_cfg_entry *table, size_t n);

#endif
