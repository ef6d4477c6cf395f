#include "cm_alloc.h"
#include "cm_log.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

void cm_oom(size_t size)
{
    cm_log(CM_LOG_ERROR, "out of memory allocating %zu bytes", size);
    abort();
}

void *cm_xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        cm_oom(size);
    return p;
}

void *cm_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        cm_oom(n * size);
    return p;
}

void *cm_xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);
    if (!q)
        cm_oom(size);
    return q;
}

char *cm_xstrdup(const char *s)
{
    return cm_xstrndup(s, strlen(s));
}

char *cm_xstrndup(const char *s, size_t n)
{
    char *p = cm_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static void *cjson_malloc(size_t size)
{
    return cm_xmalloc(size);
}

void cm_alloc_init_cjson(void)
{
    cJSON_Hooks hooks = {cjson_malloc, free};
    cJSON_InitHooks(&hooks);
}
