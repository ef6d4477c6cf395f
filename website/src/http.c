#include "http.h"

#include "req.h"

#include "cm_log.h"
#include "cm_util.h"
#include "cm_buf.h"
#include "cm_alloc.h"
#include "config.h"
#include "db.h"
#include "hash.h"
#include "router.h"

#include <arpa/inet.h>
#include <stdatomic.h>
#include <time.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WEB_LOG_PATH_MAX 200  /* characters of the path shown in a log line */
#define WEB_DISCARD_FACTOR 16 /* chunked body bytes dropped after a 413, in WEB_MAX_BODYs */

/* The same policy nginx sets, so that running the website directly is just as safe. */
#define WEB_CSP                                                                                    \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "                 \
    "frame-ancestors 'none'"

static struct MHD_Daemon *daemon_;
static atomic_int suspended_count; /* connections waiting on the hash pool */

/* The client address for log lines: the peer, or X-Real-IP from nginx when TRUST_PROXY=1
 * (only then: otherwise any client could write what it likes into our logs). */
static void client_ip(struct web_req *r)
{
    if (web_cfg.trust_proxy) {
        const char *x = web_req_header(r, "X-Real-IP");
        unsigned char tmp[16];
        if (x && (inet_pton(AF_INET, x, tmp) == 1 || inet_pton(AF_INET6, x, tmp) == 1)) {
            snprintf(r->ip, sizeof r->ip, "%s", x);
            return;
        }
    }
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(r->ip, sizeof r->ip, "?");
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, r->ip,
                      sizeof r->ip);
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, r->ip,
                      sizeof r->ip);
    }
}

/* An error found before any handler runs: JSON {"error","message"} on the API's paths, as
 * the contract says for every API error, plain text elsewhere. */
static void early_error(struct web_req *r, unsigned status, const char *code, const char *text)
{
    if (web_is_api_path(r->path))
        web_json_error(r, status, code, text);
    else
        web_text(r, status, text);
}

static enum MHD_Result send_response(struct web_req *r)
{
    struct MHD_Response *resp;
    if (r->fd >= 0) {
        resp = MHD_create_response_from_fd64(r->fd_size, r->fd);
        r->fd = -1; /* MHD closes it */
    } else {
        size_t len = 0;
        char *body = cm_buf_take(&r->out, &len);
        resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    }
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", r->ctype ? r->ctype : "text/plain");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Referrer-Policy", "same-origin");
    MHD_add_response_header(resp, "Content-Security-Policy", WEB_CSP);
    MHD_add_response_header(resp, "Cache-Control",
                            r->cacheable ? "public, max-age=300" : "no-store");
    for (size_t i = 0; i < r->nhdr; i++)
        MHD_add_response_header(resp, r->hdr[i].name, r->hdr[i].value);
    enum MHD_Result ret = MHD_queue_response(r->conn, r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static bool body_allowed(const char *method)
{
    return strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
           strcmp(method, "PATCH") == 0 || strcmp(method, "DELETE") == 0;
}

/* After a handler ran: hands its password work to the hash pool (suspending the connection,
 * so this worker thread serves other connections meanwhile), or sends its response. */
static enum MHD_Result finish(struct web_req *r)
{
    /* The database connection goes back to the pool before waiting on anything, and before
     * the bytes go out: it serves others meanwhile. */
    web_db_release(r);
    while (r->hash_pending) {
        r->hash_pending = false;
        if (web_cfg.threads == 0) {
            /* Thread per connection: this thread is the connection's own, and MHD does
             * not suspend in this mode; waiting here blocks nobody else. */
            web_hash_job_wait(r->hash);
            r->then(r);
            web_db_release(r);
            continue;
        }
        r->suspended = true;
        atomic_fetch_add(&suspended_count, 1);
        MHD_suspend_connection(r->conn);
        web_hash_job_start(r->hash, r->conn); /* after suspending: the resume cannot overtake it */
        return MHD_YES;
    }
    if (r->status == 0)
        early_error(r, 500, "internal", "Internal error.");
    return send_response(r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    (void)cls;
    (void)version;
    struct web_req *r = *con_cls;
    if (!r) {
        r = cm_xcalloc(1, sizeof *r);
        r->conn = conn;
        r->method = method;
        r->path = url;
        r->is_head = strcmp(method, "HEAD") == 0;
        r->fd = -1;
        r->start_ms = cm_mono_ms();
        cm_buf_init(&r->body);
        cm_buf_init(&r->out);
        client_ip(r);
        *con_cls = r;
        /* A declared length over the limit is refused before reading any of it. */
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl) {
            char *end;
            unsigned long long n = strtoull(cl, &end, 10);
            if (*end != '\0' || n > (unsigned long long)web_cfg.max_body) {
                r->too_large = true;
                early_error(r, 413, "too_large", "Request body too large.");
                return send_response(r);
            }
        }
        return MHD_YES;
    }
    if (r->suspended) {
        /* Resumed by the hash pool: the handler goes on where it left off. */
        r->suspended = false;
        atomic_fetch_sub(&suspended_count, 1);
        r->then(r);
        return finish(r);
    }
    if (*upload_size > 0) {
        /* Chunked bodies have no declared length: count as they come. Over the limit, stop
         * storing; MHD 0.9.75 refuses a response queued in the middle of a body, so the rest
         * is read and dropped (no memory) and the 413 goes out at the end, unless the client
         * keeps sending past WEB_DISCARD_FACTOR times the limit: then the connection is cut. */
        if (!r->too_large && r->body.len + *upload_size > (size_t)web_cfg.max_body) {
            r->too_large = true;
            cm_buf_free(&r->body);
            cm_buf_init(&r->body);
        }
        if (r->too_large) {
            r->discarded += *upload_size;
            if (r->discarded > WEB_DISCARD_FACTOR * (uint64_t)web_cfg.max_body) {
                cm_info("%s: request body far over the limit: closing", r->ip);
                return MHD_NO;
            }
        } else {
            cm_buf_append(&r->body, upload_data, *upload_size);
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->too_large) {
        early_error(r, 413, "too_large", "Request body too large.");
    } else if (r->body.len > 0 && !body_allowed(method)) {
        early_error(r, 400, "bad_request", "Unexpected request body.");
    } else {
        web_route(r);
    }
    return finish(r);
}

/* Copies the path for a log line with anything but printable ASCII as \xHH (no log
 * injection through %0a in a URL), truncated to WEB_LOG_PATH_MAX. */
static void log_safe(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; s && s[i] && o + 5 < cap && i < WEB_LOG_PATH_MAX; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
    }
    out[o] = '\0';
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    struct web_req *r = *con_cls;
    if (!r)
        return;
    char path[WEB_LOG_PATH_MAX * 4 + 8];
    log_safe(r->path, path, sizeof path);
    /* Never the query string, cookies or bodies: they may carry secrets. */
    cm_info("%s %s %s %u %lldms%s", r->ip, r->method, path, r->status,
            (long long)(cm_mono_ms() - r->start_ms),
            toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (aborted)");
    web_db_release(r);
    if (r->fd >= 0)
        close(r->fd);
    for (size_t i = 0; i < r->nhdr; i++)
        free(r->hdr[i].value);
    cm_buf_free(&r->body);
    cm_buf_free(&r->out);
    web_hash_job_free(r->hash);
    if (r->ctx_free)
        r->ctx_free(r->ctx);
    free(r->sess);
    free(r);
    *con_cls = NULL;
}

static void on_panic(void *cls, const char *file, unsigned int line, const char *reason)
{
    (void)cls;
    cm_error("libmicrohttpd panic at %s:%u: %s", file ? file : "?", line, reason ? reason : "");
    abort();
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n')
        msg[--n] = '\0';
    cm_warn("libmicrohttpd: %s", msg);
}

int web_http_start(void)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)web_cfg.port);
    if (inet_pton(AF_INET, web_cfg.listen_addr, &sa.sin_addr) != 1) {
        cm_error("WEB_LISTEN_ADDR: '%s' is not an IPv4 address", web_cfg.listen_addr);
        return -1;
    }
    MHD_set_panic_func(on_panic, NULL);
    unsigned int flags = MHD_USE_ERROR_LOG | MHD_USE_INTERNAL_POLLING_THREAD;
    if (web_cfg.threads > 0)
        flags |= MHD_ALLOW_SUSPEND_RESUME; /* password work waits suspended (hash.h) */
    struct MHD_OptionItem ops[12];
    size_t k = 0;
    if (web_cfg.threads == 0) {
        flags |= MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL;
    } else {
        flags |= MHD_USE_EPOLL;
        ops[k++] =
            (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)web_cfg.threads, NULL};
    }
    ops[k++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &sa};
    ops[k++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT,
                                       (intptr_t)web_cfg.max_connections, NULL};
    ops[k++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT,
                                       (intptr_t)web_cfg.conn_timeout, NULL};
    ops[k++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                                       (intptr_t)web_cfg.conn_memory, NULL};
    ops[k++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, NULL};
    ops[k++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_BACKLOG_SIZE, 511, NULL};
    ops[k++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    daemon_ = MHD_start_daemon(flags, (uint16_t)web_cfg.port, NULL, NULL, on_request, NULL,
                               MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL, MHD_OPTION_ARRAY, ops,
                               MHD_OPTION_END);
    if (!daemon_) {
        cm_error("cannot listen on %s:%lld", web_cfg.listen_addr, web_cfg.port);
        return -1;
    }
    cm_info("listening on http://%s:%lld (%s)", web_cfg.listen_addr, web_cfg.port,
            web_cfg.threads == 0 ? "thread per connection" : "epoll thread pool");
    return 0;
}

void web_http_stop(void)
{
    /* MHD must not stop with a connection suspended (microhttpd.h, MHD_suspend_connection):
     * the hash pool, stopped first, has resumed every one; give MHD's threads a moment to
     * finish them. */
    for (int i = 0; i < 200 && atomic_load(&suspended_count) > 0; i++) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (daemon_)
        MHD_stop_daemon(daemon_);
    daemon_ = NULL;
}
