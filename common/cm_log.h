/* Logging: one line per event on stderr; never pass a secret to these functions. */
#ifndef CM_LOG_H
#define CM_LOG_H

#include <stddef.h>

enum cm_log_level { CM_LOG_DEBUG = 0, CM_LOG_INFO = 1, CM_LOG_WARN = 2, CM_LOG_ERROR = 3 };

/* Sets the component name printed on every line (borrowed, must outlive logging). */
void cm_log_init(const char *component, enum cm_log_level level);
void cm_log_set_level(enum cm_log_level level);
enum cm_log_level cm_log_get_level(void);
/* Parses "debug", "info", "warn", "error"; returns -1 for anything else. */
int cm_log_level_parse(const char *s);

void cm_log(enum cm_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define cm_debug(...) cm_log(CM_LOG_DEBUG, __VA_ARGS__)
#define cm_info(...) cm_log(CM_LOG_INFO, __VA_ARGS__)
#define cm_warn(...) cm_log(CM_LOG_WARN, __VA_ARGS__)
#define cm_error(...) cm_log(CM_LOG_ERROR, __VA_ARGS__)

#endif
