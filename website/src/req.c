#include "req.h"

#include "cm_alloc.h"
#include "cm_log.h"

#include <stdarg.h>
#include <stdio.h>

const char *web_req_header(struct web_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *web_req_arg(struct web_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

void web_req_hash(struct web_req *r, struct web_hash_job *job, void (*then)(struct web_req *r),
                  void *ctx, void (*ctx_free)(void *ctx))
{
    r->hash = job;
    r->then = then;
    r->hash_pending = true;
    r->ctx = ctx;
    r->ctx_free = ctx_free;
}

void web_resp_header(struct web_req *r, const char *name, const char *fmt, ...)
{
    if (r->nhdr == WEB_MAX_RESP_HEADERS) {
        cm_error("http: too many response headers (bug)");
        return;
    }
    struct cm_buf b;
    cm_buf_init(&b);
    va_list ap;
    va_start(ap, fmt);
    char tmp[1024];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        cm_error("http: response header %s too long (bug)", name);
        return;
    }
    cm_buf_append(&b, tmp, (size_t)n);
    r->hdr[r->nhdr].name = name;
    r->hdr[r->nhdr].value = cm_buf_take(&b, NULL);
    r->nhdr++;
}

void web_text(struct web_req *r, unsigned status, const char *text)
{
    cm_buf_free(&r->out);
    cm_buf_puts(&r->out, text);
    r->status = status;
    r->ctype = "text/plain; charset=utf-8";
}

void web_redirect(struct web_req *r, const char *location)
{
    web_resp_header(r, "Location", "%s", location);
    web_text(r, 303, "See other\n");
}

void web_json(struct web_req *r, unsigned status, cJSON *obj)
{
    char *s = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    if (!s)
        cm_oom(0);
    cm_buf_free(&r->out);
    cm_buf_puts(&r->out, s);
    cm_buf_puts(&r->out, "\n");
    cJSON_free(s);
    r->status = status;
    r->ctype = "application/json";
}

void web_json_error(struct web_req *r, unsigned status, const char *code, const char *message)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", code);
    cJSON_AddStringToObject(o, "message", message);
    web_json(r, status, o);
}
