#include "cm_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *log_component = "parley";
static enum cm_log_level log_level = CM_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void cm_log_init(const char *component, enum cm_log_level level)
{
    log_component = component;
    log_level = level;
}

void cm_log_set_level(enum cm_log_level level)
{
    log_level = level;
}

enum cm_log_level cm_log_get_level(void)
{
    return log_level;
}

int cm_log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

void cm_log(enum cm_log_level level, const char *fmt, ...)
{
    if (level < log_level)
        return;
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line,
                     "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s: ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, level_names[level], log_component);
    if (n < 0)
        return;
    size_t off = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + off, sizeof line - off, fmt, ap);
    va_end(ap);
    if (m > 0)
        off += (size_t)m < sizeof line - off ? (size_t)m : sizeof line - off - 1;
    /* One event is one line: control characters from any source are flattened so a
     * client cannot forge log lines. */
    for (size_t i = (size_t)n; i < off; i++)
        if ((unsigned char)line[i] < 0x20)
            line[i] = ' ';
    line[off++] = '\n';
    fwrite(line, 1, off, stderr);
}
