/* Allocation that never returns NULL: out of memory is not a recoverable condition here (as in
 * Redis's zmalloc): it logs one line and aborts. Every x-allocation is freed with free(). */
#ifndef CM_ALLOC_H
#define CM_ALLOC_H

#include <stddef.h>

_Noreturn void cm_oom(size_t size);
void *cm_xmalloc(size_t size);
void *cm_xcalloc(size_t n, size_t size);
void *cm_xrealloc(void *p, size_t size);
char *cm_xstrdup(const char *s);
char *cm_xstrndup(const char *s, size_t n);

/* Makes cJSON allocate through cm_xmalloc (cJSON_InitHooks, cJSON.h): a parse or build that
 * runs out of memory aborts like everything else instead of returning NULL, which callers
 * would report to a client as a bad request. Call once at start-up, before any cJSON call. */
void cm_alloc_init_cjson(void);

#endif
