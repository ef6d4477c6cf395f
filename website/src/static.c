/* /static/NAME from STATIC_DIR. Only plain names are served: segments of [A-Za-z0-9._-]
 * not starting with '.', so no "..", no hidden files, no absolute paths; the file is opened
 * with O_NOFOLLOW and must be a regular file, so a symlink cannot lead out either. */
#include "cm_log.h"
#include "config.h"
#include "page.h"
#include "handlers.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WEB_STATIC_PATH_MAX 256

static const struct {
    const char *ext;
    const char *type;
} types[] = {
    {".css", "text/css; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".html", "text/html; charset=utf-8"},
    {".txt", "text/plain; charset=utf-8"},
    {".json", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".woff2", "font/woff2"},
    {".map", "application/json"},
};

static bool name_ok(const char *s, size_t len)
{
    if (len == 0 || len > WEB_STATIC_PATH_MAX)
        return false;
    bool seg_start = true;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '/') {
            if (seg_start)
                return false; /* empty segment */
            seg_start = true;
            continue;
        }
        if (seg_start && c == '.')
            return false;
        seg_start = false;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return !seg_start;
}

void web_h_static_get(struct web_req *r)
{
    if (!name_ok(r->param, r->param_len)) {
        web_page_error(r, 404, "There is no file at this address.");
        return;
    }
    const char *type = NULL;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        size_t el = strlen(types[i].ext);
        if (r->param_len > el && memcmp(r->param + r->param_len - el, types[i].ext, el) == 0)
            type = types[i].type;
    }
    if (!type) {
        web_page_error(r, 404, "There is no file at this address.");
        return;
    }
    char path[4096 + WEB_STATIC_PATH_MAX + 2];
    snprintf(path, sizeof path, "%s/%.*s", web_cfg.static_dir, (int)r->param_len, r->param);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        web_page_error(r, 404, "There is no file at this address.");
        return;
    }
    r->fd = fd;
    r->fd_size = (uint64_t)st.st_size;
    r->status = 200;
    r->ctype = type;
    r->cacheable = true;
}
