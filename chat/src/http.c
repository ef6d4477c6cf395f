/* The one lws protocol of the daemon: GET /healthz and GET /metrics over plain HTTP, and
 * the authenticated upgrade of GET /ws. Nothing large is accepted before the token is
 * verified: lws caps the request head (CHAT_MAX_HEADER_BYTES) and its duration
 * (CHAT_HANDSHAKE_TIMEOUT), and the token itself is bounded (CM_TOKEN_MAX_LEN). */
#include "chat.h"
#include "history.h"
#include "rawguard.h"
#include "room.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cm_log.h"
#include "cm_token.h"
#include "cm_util.h"
#include "cm_buf.h"
#include "cm_alloc.h"

#define CHAT_WS_PATH "/ws"
#define CHAT_URI_MAX 256 /* longest path we look at; longer ones are simply not ours */

static const char *const reject_label[CHAT_REJ_COUNT] = {
    "missing_token", "token_too_long", "malformed",         "bad_alg",      "bad_signature",
    "expired",       "not_yet_valid",  "bad_issuer",        "bad_audience", "bad_claim",
    "over_capacity", "shutting_down",  "store_unavailable",
};

static struct chat_server *server_of(struct lws *wsi)
{
    return lws_context_user(lws_get_context(wsi));
}

/* Writes a complete HTTP/1.1 response in one go (headers + body), raw: in
 * FILTER_PROTOCOL_CONNECTION lws has already switched the wsi to the ws role, but it still
 * sends LWS_WRITE_HTTP payloads unframed (ops-ws.c, rops_write_role_protocol_ws). */
static int http_respond(struct lws *wsi, int status, const char *reason, const char *ctype,
                        const char *extra, const char *body, size_t blen, bool close)
{
    struct cm_buf b;
    cm_buf_init(&b);
    cm_buf_append(&b, (const char[LWS_PRE]){0}, LWS_PRE);
    cm_buf_printf(&b,
                  "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                  "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n%s%s\r\n",
                  status, reason, ctype, blen, extra ? extra : "",
                  close ? "Connection: close\r\n" : "");
    cm_buf_append(&b, body, blen);
    size_t n = b.len - LWS_PRE;
    int w = lws_write(wsi, (unsigned char *)b.data + LWS_PRE, n, LWS_WRITE_HTTP);
    cm_buf_free(&b);
    return w < (int)n ? -1 : 0;
}

static int reject(struct chat_server *srv, struct lws *wsi, enum chat_reject why)
{
    srv->n.rejected[why]++;
    cm_info("handshake rejected reason=%s", reject_label[why]);
    if (why == CHAT_REJ_OVER_CAPACITY || why == CHAT_REJ_SHUTTING_DOWN ||
        why == CHAT_REJ_STORE_DOWN) {
        static const char body[] = "{\"error\":\"unavailable\",\"message\":\"try again later\"}\n";
        (void)http_respond(wsi, 503, "Service Unavailable", "application/json",
                           "Retry-After: 5\r\n", body, sizeof body - 1, true);
    } else {
        static const char body[] =
            "{\"error\":\"unauthorized\",\"message\":\"missing or invalid token\"}\n";
        (void)http_respond(wsi, 401, "Unauthorized", "application/json",
                           "WWW-Authenticate: Bearer\r\n", body, sizeof body - 1, true);
    }
    return 1; /* lws closes the connection without upgrading */
}

static enum chat_reject reject_of(enum cm_token_err e)
{
    switch (e) {
    case CM_TOKEN_BAD_ALG:
        return CHAT_REJ_BAD_ALG;
    case CM_TOKEN_BAD_SIGNATURE:
        return CHAT_REJ_BAD_SIGNATURE;
    case CM_TOKEN_EXPIRED:
        return CHAT_REJ_EXPIRED;
    case CM_TOKEN_NOT_YET_VALID:
        return CHAT_REJ_NOT_YET_VALID;
    case CM_TOKEN_BAD_ISSUER:
        return CHAT_REJ_BAD_ISSUER;
    case CM_TOKEN_BAD_AUDIENCE:
        return CHAT_REJ_BAD_AUDIENCE;
    case CM_TOKEN_BAD_CLAIM:
        return CHAT_REJ_BAD_CLAIM;
    default:
        return CHAT_REJ_MALFORMED;
    }
}

/* Copies the token into tok (CM_TOKEN_MAX_LEN + 1 bytes) from "Authorization: Bearer X"
 * or else from the access_token query argument (lws has already URL-decoded the args). An
 * Authorization header of another scheme is not ours (a browser sends the Basic credentials
 * of an auth layer in front of the site with the upgrade too): the query is used then.
 * Returns its length, 0 if absent, -1 if longer than CM_TOKEN_MAX_LEN. */
static int token_from_request(struct lws *wsi, char *tok, size_t cap)
{
    static const char bearer[] = "Bearer ";
    static const char arg[] = "access_token=";
    char hdr[CM_TOKEN_MAX_LEN + sizeof bearer + 1];

    int hl = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    if (hl > 0) {
        if ((size_t)hl >= sizeof hdr)
            return -1; /* longer than any Bearer token we accept (and than any other scheme's) */
        int n = lws_hdr_copy(wsi, hdr, (int)sizeof hdr, WSI_TOKEN_HTTP_AUTHORIZATION);
        if (n < 0)
            return -1;
        if (!strncasecmp(hdr, bearer, sizeof bearer - 1)) {
            if ((size_t)n <= sizeof bearer - 1)
                return 0; /* "Bearer " and nothing */
            size_t tl = (size_t)n - (sizeof bearer - 1);
            if (tl >= cap)
                return -1;
            memcpy(tok, hdr + sizeof bearer - 1, tl);
            tok[tl] = '\0';
            return (int)tl;
        }
        /* another scheme: not ours, look at the query */
    }
    /* each URL argument is one fragment; copying fails (-1) rather than truncating when a
     * fragment does not fit, so an over-long token is refused, never cut */
    for (int i = 0;; i++) {
        int n = lws_hdr_copy_fragment(wsi, hdr, (int)sizeof hdr, WSI_TOKEN_HTTP_URI_ARGS, i);
        if (n < 0) {
            if (lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i) > 0)
                return -1;
            return 0;
        }
        if ((size_t)n >= sizeof arg - 1 && !strncmp(hdr, arg, sizeof arg - 1)) {
            size_t tl = (size_t)n - (sizeof arg - 1);
            if (tl >= cap)
                return -1;
            memcpy(tok, hdr + sizeof arg - 1, tl);
            tok[tl] = '\0';
            return (int)tl;
        }
    }
}

/* The handshake's since=S (docs/protocol.md): absent (0), valid (1), or not a decimal
 * integer 0..2^53-1 (-1: the upgrade gets 400). */
static int since_from_request(struct lws *wsi, uint64_t *since)
{
    static const char arg[] = "since=";
    for (int i = 0;; i++) {
        int fl = lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i);
        if (fl <= 0)
            return 0; /* no more arguments */
        char *frag = cm_xmalloc((size_t)fl + 1);
        int n = lws_hdr_copy_fragment(wsi, frag, fl + 1, WSI_TOKEN_HTTP_URI_ARGS, i);
        int rc = -2;
        if (n >= (int)sizeof arg - 1 && !strncmp(frag, arg, sizeof arg - 1))
            rc = chat_history_parse_since(frag + sizeof arg - 1, (size_t)n - (sizeof arg - 1),
                                          since) < 0
                     ? -1
                     : 1;
        free(frag);
        if (rc != -2)
            return rc;
    }
}

static int filter_upgrade(struct chat_server *srv, struct lws *wsi, struct chat_conn *c)
{
    char uri[CHAT_URI_MAX];
    char tok[CM_TOKEN_MAX_LEN + 1];
    struct cm_token_claims cl;

    int ul = lws_hdr_copy(wsi, uri, (int)sizeof uri, WSI_TOKEN_GET_URI);
    if (ul <= 0 || strcmp(uri, CHAT_WS_PATH) != 0) {
        static const char body[] = "not found\n";
        (void)http_respond(wsi, 404, "Not Found", "text/plain", NULL, body, sizeof body - 1, true);
        return 1;
    }
    if (srv->stopping)
        return reject(srv, wsi, CHAT_REJ_SHUTTING_DOWN);
    if (srv->nconns >= (size_t)srv->cfg->max_connections)
        return reject(srv, wsi, CHAT_REJ_OVER_CAPACITY);

    int tl = token_from_request(wsi, tok, sizeof tok);
    if (tl < 0)
        return reject(srv, wsi, CHAT_REJ_TOO_LONG);
    if (tl == 0)
        return reject(srv, wsi, CHAT_REJ_MISSING);
    enum cm_token_err e =
        cm_token_verify(tok, (size_t)tl, (const unsigned char *)srv->cfg->jwt_secret,
                        strlen(srv->cfg->jwt_secret), cm_now_ms() / 1000, &cl);
    memset(tok, 0, sizeof tok);
    if (e != CM_TOKEN_OK)
        return reject(srv, wsi, reject_of(e));
    int sr = since_from_request(wsi, &c->since);
    if (sr < 0) {
        static const char body[] =
            "{\"error\":\"bad_request\",\"message\":\"since must be an integer from 0 to "
            "2^53-1\"}\n";
        (void)http_respond(wsi, 400, "Bad Request", "application/json", NULL, body, sizeof body - 1,
                           true);
        return 1;
    }
    c->has_since = sr > 0;
    /* a connection that could not store a message is no use: say so before the upgrade */
    if (!chat_history_available(srv->hist))
        return reject(srv, wsi, CHAT_REJ_STORE_DOWN);
    c->rid = cl.rid;
    memcpy(c->uid, cl.uid, sizeof c->uid);

    /* lws frees the header table after the upgrade: keep what we need, compactly */
    size_t le = strlen(cl.sub), ln = strlen(cl.name), lr = strlen(cl.room);
    c->ident = cm_xmalloc(le + ln + lr + 3);
    memcpy(c->ident, cl.sub, le + 1);
    memcpy(c->ident + le + 1, cl.name, ln + 1);
    memcpy(c->ident + le + ln + 2, cl.room, lr + 1);
    c->authed = true;
    return 0;
}

static void metrics_body(struct chat_server *srv, struct cm_buf *b)
{
    const struct chat_counters *n = &srv->n;
    cm_buf_printf(
        b,
        "# HELP chat_connections Open WebSocket connections.\n"
        "# TYPE chat_connections gauge\nchat_connections %zu\n"
        "# HELP chat_rooms Rooms with at least one connection.\n"
        "# TYPE chat_rooms gauge\nchat_rooms %zu\n"
        "# HELP chat_messages_received_total Chat messages accepted from clients.\n"
        "# TYPE chat_messages_received_total counter\n"
        "chat_messages_received_total %" PRIu64 "\n"
        "# HELP chat_messages_delivered_total Chat messages written to clients.\n"
        "# TYPE chat_messages_delivered_total counter\n"
        "chat_messages_delivered_total %" PRIu64 "\n"
        "# HELP chat_frames_sent_total All frames written to clients.\n"
        "# TYPE chat_frames_sent_total counter\nchat_frames_sent_total %" PRIu64 "\n"
        "# HELP chat_slow_clients_dropped_total Clients disconnected for lagging.\n"
        "# TYPE chat_slow_clients_dropped_total counter\n"
        "chat_slow_clients_dropped_total %" PRIu64 "\n"
        "# HELP chat_rate_limited_total Client frames refused by the rate limit.\n"
        "# TYPE chat_rate_limited_total counter\nchat_rate_limited_total %" PRIu64 "\n"
        "# HELP chat_bad_requests_total Client frames answered with an error.\n"
        "# TYPE chat_bad_requests_total counter\nchat_bad_requests_total %" PRIu64 "\n"
        "# HELP chat_protocol_errors_total Connections closed for oversize or binary "
        "frames.\n"
        "# TYPE chat_protocol_errors_total counter\nchat_protocol_errors_total %" PRIu64 "\n"
        "# HELP chat_framing_violations_total Connections closed for RFC 6455 framing errors "
        "lws lets through (unmasked or oversized control frames).\n"
        "# TYPE chat_framing_violations_total counter\nchat_framing_violations_total %" PRIu64 "\n"
        "# HELP chat_handshakes_accepted_total Authenticated WebSocket upgrades.\n"
        "# TYPE chat_handshakes_accepted_total counter\n"
        "chat_handshakes_accepted_total %" PRIu64 "\n"
        "# HELP chat_idle_dropped_total Connections dropped after CHAT_IDLE_TIMEOUT without "
        "input.\n"
        "# TYPE chat_idle_dropped_total counter\nchat_idle_dropped_total %" PRIu64 "\n"
        "# HELP chat_pings_sent_total Pings sent to quiet connections.\n"
        "# TYPE chat_pings_sent_total counter\nchat_pings_sent_total %" PRIu64 "\n"
        "# HELP chat_reassembly_bytes Bytes reserved for partial messages (all clients).\n"
        "# TYPE chat_reassembly_bytes gauge\nchat_reassembly_bytes %zu\n"
        "# HELP chat_reassembly_refused_total Connections closed 1013 for lack of reassembly "
        "budget.\n"
        "# TYPE chat_reassembly_refused_total counter\nchat_reassembly_refused_total %" PRIu64 "\n"
        "# HELP chat_handshakes_rejected_total Refused upgrades by reason.\n"
        "# TYPE chat_handshakes_rejected_total counter\n",
        srv->nconns, srv->rooms->count, n->messages_received, n->messages_delivered, n->frames_sent,
        n->culled, n->rate_limited, n->bad_requests, n->protocol_errors, n->framing_violations,
        n->handshakes_accepted, n->idle_dropped, n->pings_sent, srv->rx_bytes,
        n->reassembly_refused);
    for (int i = 0; i < CHAT_REJ_COUNT; i++)
        cm_buf_printf(b, "chat_handshakes_rejected_total{reason=\"%s\"} %" PRIu64 "\n",
                      reject_label[i], n->rejected[i]);
}

static int serve_http(struct chat_server *srv, struct lws *wsi, const char *uri)
{
    int rc;
    if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0) {
        static const char body[] = "method not allowed\n";
        (void)http_respond(wsi, 405, "Method Not Allowed", "text/plain", "Allow: GET\r\n", body,
                           sizeof body - 1, true);
        return -1;
    }
    if (!strcmp(uri, "/healthz")) {
        static const char body[] = "{\"status\":\"ok\"}\n";
        rc = http_respond(wsi, 200, "OK", "application/json", NULL, body, sizeof body - 1, false);
    } else if (!strcmp(uri, "/metrics")) {
        struct cm_buf b;
        cm_buf_init(&b);
        metrics_body(srv, &b);
        chat_history_metrics(srv->hist, &b);
        rc = http_respond(wsi, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", NULL, b.data,
                          b.len, false);
        cm_buf_free(&b);
    } else if (!strcmp(uri, CHAT_WS_PATH)) {
        static const char body[] = "WebSocket upgrade required\n";
        rc = http_respond(wsi, 426, "Upgrade Required", "text/plain", "Upgrade: websocket\r\n",
                          body, sizeof body - 1, false);
    } else {
        static const char body[] = "not found\n";
        rc = http_respond(wsi, 404, "Not Found", "text/plain", NULL, body, sizeof body - 1, false);
    }
    if (rc < 0)
        return -1;
    /* no rawguard reset here: the next request head may already have been read (pipelined);
     * the scanner follows consecutive heads itself */
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

int chat_http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len)
{
    struct chat_server *srv = server_of(wsi);
    struct chat_conn *c = user;

    switch (reason) {
    case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
        chat_rawguard_reset((int)lws_get_socket_fd(wsi));
        return 0;
    case LWS_CALLBACK_HTTP: {
        char uri[CHAT_URI_MAX];
        size_t n = len < sizeof uri - 1 ? len : sizeof uri - 1;
        memcpy(uri, in ? in : "", in ? n : 0);
        uri[in ? n : 0] = '\0';
        return serve_http(srv, wsi, uri);
    }
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return c ? filter_upgrade(srv, wsi, c) : 1;
    case LWS_CALLBACK_ESTABLISHED:
        return chat_conn_established(srv, c, wsi);
    case LWS_CALLBACK_RECEIVE:
        return chat_conn_receive(srv, c, in, len);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return chat_conn_writeable(srv, c);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (c && len >= 2 && in) {
            const unsigned char *p = in;
            c->peer_code = (uint16_t)((p[0] << 8) | p[1]);
        } else if (c) {
            c->peer_code = 1005;
        }
        return 0;
    case LWS_CALLBACK_CLOSED:
    case LWS_CALLBACK_WSI_DESTROY:
        if (c)
            chat_conn_teardown(srv, c);
        return 0;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        /* archive answers; main.c checks its stop flag after every service round */
        chat_history_drain(srv);
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}
