#include "cm_config.h"
#include "cm_log.h"
#include "cm_alloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Secrets from files are bounded: a path pointing at a huge file is an error, not a read. */
#define CM_CFG_FILE_MAX 65536

static const char *env_get(const char *name)
{
    const char *v = getenv(name);
    return (v && *v) ? v : NULL;
}

static int read_secret_file(const char *name, const char *path, char **out, char *err,
                            size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s_FILE: cannot open %s: %s", name, path, strerror(errno));
        return -1;
    }
    char *buf = cm_xmalloc(CM_CFG_FILE_MAX + 1);
    size_t n = fread(buf, 1, CM_CFG_FILE_MAX + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || n > CM_CFG_FILE_MAX) {
        snprintf(err, errlen, "%s_FILE: %s is unreadable or larger than %d bytes", name, path,
                 CM_CFG_FILE_MAX);
        free(buf);
        return -1;
    }
    if (n > 0 && buf[n - 1] == '\n')
        n--;
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    if (memchr(buf, '\0', n)) {
        snprintf(err, errlen, "%s_FILE: %s contains a NUL byte", name, path);
        free(buf);
        return -1;
    }
    *out = buf;
    return 0;
}

static int load_one(const struct cm_cfg_entry *e, char *err, size_t errlen)
{
    const char *v = env_get(e->name);
    char *owned = NULL;

    if (e->type == CM_CFG_SECRET) {
        char fname[128];
        snprintf(fname, sizeof fname, "%s_FILE", e->name);
        const char *path = env_get(fname);
        if (v && path) {
            snprintf(err, errlen, "%s and %s are both set; use one", e->name, fname);
            return -1;
        }
        if (path) {
            if (read_secret_file(e->name, path, &owned, err, errlen) < 0)
                return -1;
            v = owned;
        }
    }
    if (!v)
        v = e->def;
    if (!v) {
        if (e->type == CM_CFG_SECRET)
            snprintf(err, errlen, "%s (or %s_FILE) is required: %s", e->name, e->name, e->help);
        else
            snprintf(err, errlen, "%s is required: %s", e->name, e->help);
        return -1;
    }

    if (e->type == CM_CFG_INT) {
        char *end;
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (errno || end == v || *end != '\0') {
            snprintf(err, errlen, "%s: '%.64s' is not an integer", e->name, v);
            return -1;
        }
        if (x < e->min || x > e->max) {
            snprintf(err, errlen, "%s: %lld is out of range [%lld, %lld]", e->name, x, e->min,
                     e->max);
            return -1;
        }
        *(long long *)e->target = x;
        return 0;
    }

    size_t len = strlen(v);
    if ((long long)len < e->min || (long long)len > e->max) {
        if (e->type == CM_CFG_SECRET)
            snprintf(err, errlen, "%s: length %zu is out of range [%lld, %lld] bytes", e->name, len,
                     e->min, e->max);
        else
            snprintf(err, errlen, "%s: '%.64s' has length %zu, out of range [%lld, %lld]", e->name,
                     v, len, e->min, e->max);
        free(owned);
        return -1;
    }
    char **dst = e->target;
    free(*dst);
    *dst = owned ? owned : cm_xstrdup(v);
    return 0;
}

int cm_config_load(const struct cm_cfg_entry *table, size_t n, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++)
        if (load_one(&table[i], err, errlen) < 0)
            return -1;
    return 0;
}

void cm_config_log(const struct cm_cfg_entry *table, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct cm_cfg_entry *e = &table[i];
        switch (e->type) {
        case CM_CFG_INT:
            cm_info("config %s=%lld", e->name, *(long long *)e->target);
            break;
        case CM_CFG_STR:
            cm_info("config %s=%s", e->name, *(char **)e->target);
            break;
        case CM_CFG_SECRET: {
            const char *s = *(char **)e->target;
            cm_info("config %s=(set, %zu bytes)", e->name, s ? strlen(s) : 0);
            break;
        }
        }
    }
}

void cm_config_free(const struct cm_cfg_entry *table, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (table[i].type == CM_CFG_INT)
            continue;
        char **p = table[i].target;
        if (*p && table[i].type == CM_CFG_SECRET) {
            volatile char *s = *p;
            while (*s)
                *s++ = 0;
        }
        free(*p);
        *p = NULL;
    }
}
