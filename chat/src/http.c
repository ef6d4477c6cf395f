/* The daemon's two lws protocols, one per listener (vhost). Public (CHAT_PORT): only the
 * authenticated WebSocket upgrade of GET /ws; no other upgrade (h2c), no CONNECT, no other
 * path. Admin (CHAT_ADMIN_ADDR:CHAT_ADMIN_PORT): GET /healthz and GET /metrics, nothing
 * else. Nothing large is accepted before the token is verified: lws caps the request head
 * (CHAT_MAX_HEADER_BYTES) and its duration (CHAT_HANDSHAKE_TIMEOUT), and the token itself
 * is bounded (CM_TOKEN_MAX_LEN). The token comes in a header, never in the URL
 * (docs/protocol.md "Connecting"). */
#include "chat.h"
#include "history.h"
#include "moderation.h"
#include "presence.h"
#include "handshake.h"
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
    "missing_token", "token_too_long", "malformed",    "bad_alg",      "bad_signature",
    "expired",       "not_yet_valid",  "bad_issuer",   "bad_audience", "bad_claim",
    "over_capacity", "shutting_down",  "token_in_url", "bad_query",    "bad_cookie",
    "bad_origin",    "wrong_room",     "bad_upgrade",  "user_limit",   "store_unavailable",
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

/* The answer to a refused handshake. Token problems share one 401 whose body does not say
 * which check failed (no oracle for forging tokens; the reason is logged and counted);
 * the others tell the client what to change. */
struct refusal {
    int status;
    const char *reason, *extra, *body;
};

static const struct refusal refusal_401 = {
    401, "Unauthorized", "WWW-Authenticate: Bearer\r\n",
    "{\"error\":\"unauthorized\",\"message\":\"missing or invalid token\"}\n"};
static const struct refusal refusal_503 = {
    503, "Service Unavailable", "Retry-After: 5\r\n",
    "{\"error\":\"unavailable\",\"message\":\"try again later\"}\n"};
static const struct refusal refusal_url = {
    400, "Bad Request", NULL,
    "{\"error\":\"token_in_url\",\"message\":\"tokens in URLs are not accepted: send "
    "Authorization: Bearer <token>, or the parley_ws_<room> cookie with /ws?room=<room>\"}\n"};
static const struct refusal refusal_query = {
    400, "Bad Request", NULL,
    "{\"error\":\"bad_request\",\"message\":\"the query of /ws may hold room=<room name> "
    "and since=<seq>, each at most once, and nothing else\"}\n"};
static const struct refusal refusal_cookie = {
    400, "Bad Request", NULL,
    "{\"error\":\"bad_request\",\"message\":\"the room's cookie is sent twice with "
    "different values\"}\n"};
static const struct refusal refusal_origin = {
    403, "Forbidden", NULL,
    "{\"error\":\"forbidden_origin\",\"message\":\"a cookie handshake needs an Origin this "
    "site allows\"}\n"};
static const struct refusal refusal_room = {
    403, "Forbidden", NULL,
    "{\"error\":\"wrong_room\",\"message\":\"the token is for another room\"}\n"};
static const struct refusal refusal_upgrade = {
    403, "Forbidden", NULL,
    "{\"error\":\"bad_upgrade\",\"message\":\"only WebSocket upgrades are accepted\"}\n"};

static const struct refusal refusal_user = {
    429, "Too Many Requests", "Retry-After: 5\r\n",
    "{\"error\":\"too_many_connections\",\"message\":\"you have too many chat connections "
    "open (close some tabs)\"}\n"};

static const struct refusal *refusal_of(enum chat_reject why)
{
    switch (why) {
    case CHAT_REJ_OVER_CAPACITY:
    case CHAT_REJ_SHUTTING_DOWN:
    case CHAT_REJ_STORE_DOWN:
        return &refusal_503;
    case CHAT_REJ_TOKEN_IN_URL:
        return &refusal_url;
    case CHAT_REJ_BAD_QUERY:
        return &refusal_query;
    case CHAT_REJ_BAD_COOKIE:
        return &refusal_cookie;
    case CHAT_REJ_BAD_ORIGIN:
        return &refusal_origin;
    case CHAT_REJ_WRONG_ROOM:
        return &refusal_room;
    case CHAT_REJ_BAD_UPGRADE:
        return &refusal_upgrade;
    case CHAT_REJ_USER_LIMIT:
        return &refusal_user;
    default:
        return &refusal_401;
    }
}

static int reject(struct chat_server *srv, struct lws *wsi, enum chat_reject why)
{
    const struct refusal *r = refusal_of(why);
    srv->n.rejected[why]++;
    cm_info("handshake rejected reason=%s", reject_label[why]);
    (void)http_respond(wsi, r->status, r->reason, "application/json", r->extra, r->body,
                       strlen(r->body), true);
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

/* Copies of header values and query arguments are made here, one handshake at a time (the
 * daemon runs one lws service thread, LWS_MAX_SMP 1). lws keeps at most
 * CHAT_MAX_HEADER_BYTES (<= 65535) of header data, so no copy can need more. */
static char hs_buf[2 * 65536];

/* Finds the token: "Authorization: Bearer X" (any client), else, when the query names a
 * room, the cookie parley_ws_<room> (browsers). An Authorization header of another scheme
 * is not ours (a browser sends the Basic credentials of an auth layer in front of the site
 * with the upgrade too): the cookie is used then. Copies it into tok (CM_TOKEN_MAX_LEN + 1
 * bytes) and sets *cookie. Returns its length, 0 if absent, or -(reason) to refuse with. */
static int token_from_request(struct lws *wsi, const char *room, char *tok, size_t cap,
                              bool *cookie)
{
    static const char bearer[] = "Bearer ";
    *cookie = false;

    int hl = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    if (hl > 0) {
        int n = lws_hdr_copy(wsi, hs_buf, (int)sizeof hs_buf, WSI_TOKEN_HTTP_AUTHORIZATION);
        if (n < 0)
            return -CHAT_REJ_TOO_LONG;
        if (!strncasecmp(hs_buf, bearer, sizeof bearer - 1)) {
            size_t tl = (size_t)n - (sizeof bearer - 1);
            if (tl >= cap)
                return -CHAT_REJ_TOO_LONG;
            memcpy(tok, hs_buf + sizeof bearer - 1, tl);
            tok[tl] = '\0';
            return (int)tl;
        }
        /* another scheme: not ours, look for the cookie */
    }
    if (!room)
        return 0; /* the cookie is per room: without ?room= there is none to look for */

    /* Every Cookie header is one lws fragment (a second one starts with the space lws
     * inserts; lws_hdr_copy would join them without a separator, making "a=1" and "b=2"
     * one pair). Join them with ';' so each pair stays a pair. Never lws_http_cookie_get:
     * lws 4.1.6 logs a hex dump of the whole header at notice level there. */
    size_t jl = 0;
    for (int i = 0;; i++) {
        if (jl + 1 >= sizeof hs_buf)
            return -CHAT_REJ_TOO_LONG;
        int n = lws_hdr_copy_fragment(wsi, hs_buf + jl, (int)(sizeof hs_buf - jl),
                                      WSI_TOKEN_HTTP_COOKIE, i);
        if (n < 0) {
            if (lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_COOKIE, i) > 0)
                return -CHAT_REJ_TOO_LONG;
            break;
        }
        jl += (size_t)n;
        hs_buf[jl++] = ';';
    }
    char name[CHAT_WS_COOKIE_NAME_MAX + 1];
    int nl = snprintf(name, sizeof name, "%s%s", CHAT_WS_COOKIE_PREFIX, room);
    const char *v = NULL;
    size_t vl = 0;
    switch (chat_cookie_find(hs_buf, jl, name, (size_t)nl, &v, &vl)) {
    case CHAT_COOKIE_ABSENT:
        return 0;
    case CHAT_COOKIE_AMBIGUOUS:
        return -CHAT_REJ_BAD_COOKIE;
    case CHAT_COOKIE_FOUND:
        break;
    }
    if (vl >= cap)
        return -CHAT_REJ_TOO_LONG;
    if (vl == 0)
        return 0;
    memcpy(tok, v, vl);
    tok[vl] = '\0';
    *cookie = true;
    return (int)vl;
}

/* The query of GET /ws: room=NAME and since=S at most (handshake.h). */
static enum chat_reject check_query(struct lws *wsi, struct chat_query *q)
{
    memset(q, 0, sizeof *q);
    for (int i = 0;; i++) {
        /* each URL argument is one fragment, URL-decoded by lws; copying fails (-1) rather
         * than truncating when a fragment does not fit (it always fits hs_buf) */
        int n = lws_hdr_copy_fragment(wsi, hs_buf, (int)sizeof hs_buf, WSI_TOKEN_HTTP_URI_ARGS, i);
        if (n < 0)
            return CHAT_REJ_COUNT; /* no more arguments: all good */
        /* empty: "&&"; or "/" when the query ends empty ("?", "&" last): lws 4.1.6 puts a
         * '/' into an empty fragment at the end of the URI (parsers.c, "enforce starting
         * with /") */
        if (n == 0 || (n == 1 && hs_buf[0] == '/'))
            continue;
        switch (chat_query_arg(hs_buf, (size_t)n, q)) {
        case CHAT_QUERY_OK:
            break;
        case CHAT_QUERY_TOKEN:
            return CHAT_REJ_TOKEN_IN_URL;
        case CHAT_QUERY_BAD:
            return CHAT_REJ_BAD_QUERY;
        }
    }
}

/* Cross-site WebSocket hijacking: a cookie arrives with every handshake the browser makes
 * to this site, whichever page asks; Origin says which page did. */
static bool origin_ok(struct chat_server *srv, struct lws *wsi)
{
    char origin[CHAT_ORIGIN_MAX + 1], host[CHAT_ORIGIN_MAX + 1];
    /* a repeated Origin or Host is joined with ',' by lws_hdr_copy: never a valid value */
    int ol = lws_hdr_copy(wsi, origin, (int)sizeof origin, WSI_TOKEN_ORIGIN);
    int hl = lws_hdr_copy(wsi, host, (int)sizeof host, WSI_TOKEN_HOST);
    if (ol <= 0)
        return false;
    const char *allow = srv->cfg->allowed_origins;
    return chat_origin_allowed(origin, (size_t)ol, hl > 0 ? host : NULL, hl > 0 ? (size_t)hl : 0,
                               allow, allow ? strlen(allow) : 0);
}

static int filter_upgrade(struct chat_server *srv, struct lws *wsi, struct chat_conn *c)
{
    char uri[CHAT_URI_MAX];
    char tok[CM_TOKEN_MAX_LEN + 1];
    struct chat_query q;
    bool cookie;
    struct cm_token_claims cl;

    int ul = lws_hdr_copy(wsi, uri, (int)sizeof uri, WSI_TOKEN_GET_URI);
    if (ul <= 0 || strcmp(uri, CHAT_WS_PATH) != 0) {
        static const char body[] = "not found\n";
        (void)http_respond(wsi, 404, "Not Found", "text/plain", NULL, body, sizeof body - 1, true);
        return 1;
    }
    /* before anything else: a token in the URL is refused even when the daemon is full,
     * so a client that sends one learns it at once (and never in the logs) */
    enum chat_reject qr = check_query(wsi, &q);
    if (qr != CHAT_REJ_COUNT)
        return reject(srv, wsi, qr);
    if (srv->stopping)
        return reject(srv, wsi, CHAT_REJ_SHUTTING_DOWN);
    if (srv->nconns >= (size_t)srv->cfg->max_connections)
        return reject(srv, wsi, CHAT_REJ_OVER_CAPACITY);

    int tl = token_from_request(wsi, q.has_room ? q.room : NULL, tok, sizeof tok, &cookie);
    if (tl < 0)
        return reject(srv, wsi, (enum chat_reject) - tl);
    if (tl == 0)
        return reject(srv, wsi, CHAT_REJ_MISSING);
    /* the Origin check comes before the token is even decoded: a foreign page learns
     * nothing about the cookie's token */
    if (cookie && !origin_ok(srv, wsi)) {
        memset(tok, 0, sizeof tok);
        return reject(srv, wsi, CHAT_REJ_BAD_ORIGIN);
    }
    enum cm_token_err e =
        cm_token_verify(tok, (size_t)tl, (const unsigned char *)srv->cfg->jwt_secret,
                        strlen(srv->cfg->jwt_secret), cm_now_ms() / 1000, &cl);
    memset(tok, 0, sizeof tok);
    if (e != CM_TOKEN_OK)
        return reject(srv, wsi, reject_of(e));
    if (q.has_room && strcmp(cl.room, q.room) != 0)
        return reject(srv, wsi, CHAT_REJ_WRONG_ROOM);
    /* per-user caps (CHAT_MAX_CONNS_PER_USER[_ROOM]): one account cannot take every slot;
     * chat_conn_established checks again, since handshakes in flight are not counted yet */
    if (chat_user_admit(srv, cl.uid, cl.room) != CHAT_ADMIT_OK)
        return reject(srv, wsi, CHAT_REJ_USER_LIMIT);
    /* a connection that could not store a message is no use: say so before the upgrade */
    if (!chat_history_available(srv->hist))
        return reject(srv, wsi, CHAT_REJ_STORE_DOWN);
    c->since = q.since;
    c->has_since = q.has_since;
    c->rid = cl.rid;
    memcpy(c->uid, cl.uid, sizeof c->uid);
    c->iat = cl.iat; /* revocations are matched at ESTABLISHED (moderation.c) */
    memcpy(c->sid, cl.sid, sizeof c->sid);

    chat_conn_set_identity(c, &cl);
    c->authed = true;
    return 0;
}

/* LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: only "Upgrade: websocket" may proceed. lws 4.1.6 also
 * switches to HTTP/2 on "Upgrade: h2c" (lib/roles/http/server/server.c, upgrade_h2c),
 * which would serve any path over HTTP/2 inside the connection; refuse it here, before lws
 * acts on it. For any other value lws has already answered 403 and *completed the
 * transaction* before asking us (its header table is then detached or reset, and `in`
 * points into it): recognise that by the missing Upgrade header and just hang up. */
static int confirm_upgrade(struct chat_server *srv, struct lws *wsi, bool allow_ws)
{
    char up[32];
    int n = lws_hdr_total_length(wsi, WSI_TOKEN_UPGRADE);
    if (n <= 0) {
        srv->n.rejected[CHAT_REJ_BAD_UPGRADE]++;
        cm_info("handshake rejected reason=%s", reject_label[CHAT_REJ_BAD_UPGRADE]);
        return -1;
    }
    n = lws_hdr_copy(wsi, up, (int)sizeof up, WSI_TOKEN_UPGRADE);
    if (allow_ws && n > 0 && !strcasecmp(up, "websocket"))
        return 0;
    reject(srv, wsi, CHAT_REJ_BAD_UPGRADE);
    return -1; /* hang up: lws closes without upgrading */
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
    chat_conn_metrics(srv, b);
}

/* Plain HTTP on either listener: the public one knows only /ws (426 without an upgrade),
 * the admin one only /healthz and /metrics; everything else is 404. */
static int serve_http(struct chat_server *srv, struct lws *wsi, const char *uri, bool admin)
{
    int rc;
    if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0) {
        static const char body[] = "method not allowed\n";
        (void)http_respond(wsi, 405, "Method Not Allowed", "text/plain", "Allow: GET\r\n", body,
                           sizeof body - 1, true);
        return -1;
    }
    if (admin && !strcmp(uri, "/healthz")) {
        static const char body[] = "{\"status\":\"ok\"}\n";
        rc = http_respond(wsi, 200, "OK", "application/json", NULL, body, sizeof body - 1, false);
    } else if (admin && !strcmp(uri, "/metrics")) {
        struct cm_buf b;
        cm_buf_init(&b);
        metrics_body(srv, &b);
        chat_history_metrics(srv->hist, &b);
        chat_mod_metrics(srv->mod, &b);
        chat_presence_metrics(srv->pres, &b);
        rc = http_respond(wsi, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", NULL, b.data,
                          b.len, false);
        cm_buf_free(&b);
    } else if (!admin && !strcmp(uri, CHAT_WS_PATH)) {
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

static int on_http(struct chat_server *srv, struct lws *wsi, const void *in, size_t len, bool admin)
{
    char uri[CHAT_URI_MAX];
    size_t n = len < sizeof uri - 1 ? len : sizeof uri - 1;
    memcpy(uri, in ? in : "", in ? n : 0);
    uri[in ? n : 0] = '\0';
    return serve_http(srv, wsi, uri, admin);
}

/* "CONNECT host:port" makes lws 4.1.6 turn the connection into a raw socket bound to this
 * protocol with no timeout (server.c, raw_transition): never wanted here. lws still sends
 * what is written now (raw role, unframed). */
static int refuse_raw(struct lws *wsi)
{
    static const char body[] = "method not allowed\n";
    (void)http_respond(wsi, 405, "Method Not Allowed", "text/plain", "Allow: GET\r\n", body,
                       sizeof body - 1, true);
    return -1;
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
    case LWS_CALLBACK_HTTP:
        return on_http(srv, wsi, in, len, false);
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return confirm_upgrade(srv, wsi, true);
    case LWS_CALLBACK_RAW_ADOPT:
        return refuse_raw(wsi);
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
        chat_conn_drain_inbox(srv); /* main.c checks its stop flag after every round */
        chat_history_drain(srv);    /* the archive's answers */
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* The admin listener's protocol: GET /healthz and /metrics, nothing else, no upgrade. */
static int admin_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                          size_t len)
{
    struct chat_server *srv = server_of(wsi);
    switch (reason) {
    case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
        chat_rawguard_reset((int)lws_get_socket_fd(wsi));
        return 0;
    case LWS_CALLBACK_HTTP:
        return on_http(srv, wsi, in, len, true);
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return confirm_upgrade(srv, wsi, false);
    case LWS_CALLBACK_RAW_ADOPT:
        return refuse_raw(wsi);
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return 1;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

struct lws_vhost *chat_http_admin_listen(struct lws_context *ctx,
                                         const struct lws_context_creation_info *pub,
                                         const struct chat_config *cfg)
{
    static const struct lws_protocols protocols[] = {
        {"parley-chat-admin", admin_callback, 0, 0, 0, NULL, 0},
        {NULL, NULL, 0, 0, 0, NULL, 0},
    };
    struct lws_context_creation_info info = *pub;
    info.port = (int)cfg->admin_port;
    info.iface = cfg->admin_addr;
    info.protocols = protocols;
    info.vhost_name = "parley-chat-admin";
    info.options &= ~(uint64_t)LWS_SERVER_OPTION_DISABLE_IPV6;
    if (!strchr(cfg->admin_addr, ':'))
        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    return lws_create_vhost(ctx, &info);
}
