/* WebSocket connection life cycle: join on ESTABLISHED, parse and fan out on RECEIVE,
 * write only on WRITEABLE, leave on close. Everything runs on the single lws service
 * thread (LWS_MAX_SMP is 1 in Debian's build), so no locks. */
#include "chat.h"
#include "history.h"
#include "moderation.h"
#include "presence.h"
#include "fanout.h"
#include "protocol.h"
#include "rawguard.h"
#include "room.h"
#include "wsframe.h"

#include <errno.h>
#include <inttypes.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>

#include "cm_log.h"
#include "cm_util.h"
#include "cm_alloc.h"
#include "cm_buf.h"
#include "cm_token.h"

/* Frames written per WRITEABLE callback before giving the other connections a turn. */
#define CHAT_WRITE_BATCH 16
/* Seconds a closing connection gets to take its close frame before it is dropped. */
#define CHAT_CLOSE_TIMEOUT_S 5
/* How often the liveness sweep walks all connections (so pings and idle hangups happen up
 * to this much later than CHAT_PING_INTERVAL / CHAT_IDLE_TIMEOUT say). */
#define CHAT_SWEEP_TICK_MS 1000
/* RFC 6455 §7.4.1 "Try Again Later" (lws 4.1.6 has no name for it): the reassembly
 * budget is exhausted; the client did nothing wrong. */
#define CHAT_CLOSE_TRY_AGAIN_LATER 1013

/* The batch of frames chat_conn_writeable sends in one syscall (single service thread). */
static unsigned char txbuf[LWS_PRE + CHAT_TX_BATCH_BYTES];

static const char *ident_uid(const struct chat_conn *c)
{
    return c->ident;
}
static const char *ident_email(const struct chat_conn *c)
{
    return c->ident + strlen(c->ident) + 1;
}
static const char *ident_name(const struct chat_conn *c)
{
    const char *e = ident_email(c);
    return e + strlen(e) + 1;
}
static const char *ident_room(const struct chat_conn *c)
{
    const char *n = ident_name(c);
    return n + strlen(n) + 1;
}

void chat_conn_set_identity(struct chat_conn *c, const struct cm_token_claims *cl)
{
    size_t lu = strlen(cl->uid), le = strlen(cl->sub), ln = strlen(cl->name), lr = strlen(cl->room);
    free(c->ident);
    c->ident = cm_xmalloc(lu + le + ln + lr + 4);
    char *p = c->ident;
    memcpy(p, cl->uid, lu + 1);
    p += lu + 1;
    memcpy(p, cl->sub, le + 1);
    p += le + 1;
    memcpy(p, cl->name, ln + 1);
    p += ln + 1;
    memcpy(p, cl->room, lr + 1);
}

/* Queues a frame for this connection only (welcome, error). Returns -1 if the queue is at
 * its bound: a client that makes us answer faster than it reads gets closed (1008). */
static int send_private(struct chat_server *srv, struct chat_conn *c, struct chat_frame *f)
{
    if (c->npriv >= (uint32_t)srv->cfg->max_private) {
        free(f);
        return -1;
    }
    if (c->priv_tail)
        c->priv_tail->next = f;
    else
        c->priv_head = f;
    c->priv_tail = f;
    c->npriv++;
    if (!c->wait_ms)
        c->wait_ms = cm_mono_ms();
    lws_callback_on_writable(c->wsi);
    return 0;
}

/* Gives back the connection's reassembly buffer (and its share of the budget). */
static void rx_release(struct chat_server *srv, struct chat_conn *c)
{
    srv->rx_bytes -= c->rx_cap;
    if (c->user)
        c->user->rx_bytes -= c->rx_cap;
    c->rx_since_ms = 0;
    free(c->rx);
    c->rx = NULL;
    c->rx_len = c->rx_cap = 0;
}

/* Closes with `code` from the next WRITEABLE. Never by returning -1 from RECEIVE: lws
 * 4.1.6 then loses its frame parser state (lws_parse_ws "rest_is_payload bailed") and parses
 * the rest of the client's frame as garbage, fails again and drops the socket with unread
 * data before the close frame is out, so the client sees a TCP reset (1006) instead of
 * 1009. Input that still arrives is discarded (the parser stays in sync); a client that does
 * not let us write the close is dropped after CHAT_CLOSE_TIMEOUT_S. */
static int close_soon(struct chat_server *srv, struct chat_conn *c, enum lws_close_status code,
                      const char *why)
{
    if (c->closing)
        return 0;
    c->why = why;
    c->closing = true;
    c->close_code = (uint16_t)code;
    rx_release(srv, c);
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_REASON_BASE, CHAT_CLOSE_TIMEOUT_S);
    lws_callback_on_writable(c->wsi);
    return 0;
}

int chat_conn_send_private(struct chat_server *srv, struct chat_conn *c, struct chat_frame *f)
{
    return send_private(srv, c, f);
}

void chat_conn_close(struct chat_server *srv, struct chat_conn *c, enum lws_close_status code,
                     const char *why)
{
    (void)close_soon(srv, c, code, why);
}

struct chat_frame *chat_conn_welcome(const struct chat_conn *c)
{
    return chat_proto_welcome(c->room, ident_uid(c), ident_email(c), ident_name(c));
}

/* welcome and history go before any reply already queued (a paging answer, an error), and
 * outside the reply bound: two frames, once per connection */
void chat_conn_release(struct chat_server *srv, struct chat_conn *c, struct chat_frame *welcome,
                       struct chat_frame *history)
{
    history->next = c->priv_head;
    welcome->next = history;
    if (!c->priv_head)
        c->priv_tail = history;
    c->priv_head = welcome;
    c->npriv += 2;
    c->held = false;
    (void)srv;
    lws_callback_on_writable(c->wsi);
}

/* CHAT_SNDBUF: the kernel memory an unread connection can pin is its send buffer; Linux
 * doubles the value for bookkeeping and stops autotuning it (socket(7) SO_SNDBUF). */
static void set_sndbuf(struct chat_server *srv, int fd)
{
    int v = (int)srv->cfg->sndbuf;
    if (v > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v) < 0)
        cm_warn("SO_SNDBUF %d: %s", v, strerror(errno));
}

enum chat_admit chat_user_admit(struct chat_server *srv, const char *uid, const char *room)
{
    const struct chat_user *u = chat_index_user(&srv->index, uid);
    if (!u)
        return CHAT_ADMIT_OK;
    if (u->nconns >= (uint32_t)srv->cfg->max_conns_per_user)
        return CHAT_ADMIT_USER_FULL;
    long long in_room = 0;
    for (const struct chat_conn *c = u->conns; c; c = c->unext)
        if (c->room && !strcmp(c->room->name, room))
            in_room++;
    return in_room >= srv->cfg->max_conns_per_user_room ? CHAT_ADMIT_ROOM_FULL : CHAT_ADMIT_OK;
}

void chat_conn_on_control_frames(void *conn, unsigned n)
{
    struct chat_conn *c = conn;
    if (!c || !c->established || !c->user || c->closing || c->culled)
        return;
    struct chat_server *srv = lws_context_user(lws_get_context(c->wsi));
    const struct chat_config *cfg = srv->cfg;
    int64_t now = cm_mono_ms();
    for (unsigned i = 0; i < n; i++) {
        if (!chat_bucket_take(&c->user->control, now, cfg->control_per_sec, cfg->control_burst)) {
            srv->n.control_limited++;
            (void)close_soon(srv, c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "too many control frames");
            return;
        }
    }
}

int chat_conn_established(struct chat_server *srv, struct chat_conn *c, struct lws *wsi)
{
    int fd = (int)lws_get_socket_fd(wsi);

    c->wsi = wsi;
    c->fd = fd;
    if (!c->authed || !c->ident)
        return -1; /* cannot happen: the filter refuses unauthenticated upgrades */
    if (chat_rawguard_violated(fd)) {
        /* an unmasked frame arrived together with the handshake: refuse to go on */
        srv->n.framing_violations++;
        lws_close_reason(wsi, LWS_CLOSE_STATUS_PROTOCOL_ERR, (unsigned char *)"framing", 7);
        return -1;
    }
    /* a revoked token (ban, logout, removal, deleted room; moderation.c) gets the upgrade and
     * then the reason and the close code a live connection would get, so a client handles
     * both the same way; also 1013 while this daemon has not read the events yet */
    const char *mcode, *mmsg;
    int mc = chat_mod_check(srv->mod, c, &mcode, &mmsg);
    if (mc) {
        cm_info("connection refused room=%s user=%s reason=%s", ident_room(c), ident_uid(c), mmsg);
        c->refused = true;
        (void)send_private(srv, c, chat_proto_error(mcode, mmsg, NULL, 0));
        return close_soon(srv, c, (enum lws_close_status)mc, mmsg);
    }
    enum chat_admit adm = chat_user_admit(srv, ident_uid(c), ident_room(c));
    if (adm != CHAT_ADMIT_OK) {
        /* the upgrade filter should have refused it; a 1008 close explains why */
        srv->n.user_conns_refused++;
        cm_info("connection refused room=%s user=%s reason=%s", ident_room(c), ident_uid(c),
                adm == CHAT_ADMIT_USER_FULL ? "connections per user" : "connections per user+room");
        c->refused = true;
        return close_soon(srv, c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "too many connections");
    }
    struct chat_room *room = chat_rooms_get(srv->rooms, ident_room(c));
    if (!room)
        return -1;
    set_sndbuf(srv, fd);
    c->id = ++srv->next_conn_id;
    bool new_user;
    struct chat_user *u = chat_index_add(&srv->index, c, ident_uid(c), &new_user);
    int64_t now = cm_mono_ms();
    if (new_user) {
        chat_bucket_init(&u->msg, now, srv->cfg->rate_burst);
        chat_bucket_init(&u->typing, now, srv->cfg->typing_burst);
        chat_bucket_init(&u->control, now, srv->cfg->control_burst);
    }
    c->established = true;
    c->last_rx_ms = now;
    c->counted = true;
    srv->nconns++;

    bool is_new;
    c->member = chat_room_member_add(room, ident_uid(c), ident_name(c), &is_new);
    if (is_new && chat_presence_join(srv, room, c->rid, ident_uid(c), ident_name(c)))
        chat_fanout_room(srv, room, chat_proto_user_event("join", ident_uid(c), ident_name(c)));
    /* linked after the join went out, and starting at the ring head: the newcomer's own
     * join is not sent to it, and it never sees history from before it arrived */
    chat_room_link(room, c);
    c->next_seq = room->ring.head;
    chat_rawguard_attach(fd, c);
    /* welcome (with last_seq) and the history frame come when the room's stream says where
     * this connection starts; the ring position above is that point */
    if (chat_history_join(srv, c) < 0)
        (void)close_soon(srv, c, (enum lws_close_status)CHAT_CLOSE_TRY_AGAIN_LATER,
                         "room was replaced");
    srv->n.handshakes_accepted++;
    cm_info("connection accepted room=%s user=%s tabs=%u", room->name, ident_uid(c),
            c->member->tabs);
    return 0;
}

/* Answers a refused frame with an error frame; a client that makes us answer faster than
 * it reads gets closed (1008). */
static int reply_error(struct chat_server *srv, struct chat_conn *c, const char *code,
                       const char *message, const char *cid, size_t cidlen)
{
    if (send_private(srv, c, chat_proto_error(code, message, cid, cidlen)) < 0)
        return close_soon(srv, c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "too many pending replies");
    return 0;
}

/* Every frame kind takes from a budget of the user's (all connections of one uid share
 * it): typing frames from the typing bucket (over it they are dropped silently, they are
 * only a hint), everything else (messages, invalid frames) from the message bucket (over it
 * the answer is rate_limited). CHAT_RATE_STRIKES refused frames in a row close 1008. */
static int handle_frame(struct chat_server *srv, struct chat_conn *c, const char *buf, size_t len)
{
    const struct chat_config *cfg = srv->cfg;
    struct chat_limits lim = {(size_t)cfg->max_text_chars, (size_t)cfg->max_client_id};
    struct chat_user *u = c->user;
    int64_t now = cm_mono_ms();
    struct chat_req req;
    struct chat_proto_err err;
    int prc = chat_proto_parse(buf, len, &lim, &req, &err);
    int rc = 0;

    if (prc == 0 && req.type == CHAT_REQ_TYPING) {
        if (!chat_bucket_take(&u->typing, now, cfg->typing_per_sec, cfg->typing_burst)) {
            srv->n.typing_dropped++;
            if (++c->strikes >= cfg->rate_strikes)
                rc = close_soon(srv, c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "rate limit exceeded");
            chat_req_free(&req);
            return rc;
        }
        c->strikes = 0;
        struct chat_frame *f = chat_proto_user_event("typing", c->member->uid, c->member->name);
        f->exclude_conn = c->id;
        chat_fanout_room(srv, c->room, f);
        chat_presence_typing(srv, c->room, c->member->uid, c->member->name); /* other replicas */
        chat_req_free(&req);
        return 0;
    }
    const char *cid = prc == 0 ? req.client_id : err.client_id;
    size_t cidlen = prc == 0 ? req.client_id_len : err.client_id_len;
    if (!chat_bucket_take(&u->msg, now, cfg->rate_per_sec, cfg->rate_burst)) {
        srv->n.rate_limited++;
        if (++c->strikes >= cfg->rate_strikes)
            rc = close_soon(srv, c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "rate limit exceeded");
        else
            rc = reply_error(srv, c, "rate_limited", "too many frames, slow down", cid, cidlen);
        chat_req_free(&req);
        return rc;
    }
    c->strikes = 0;
    if (prc < 0) {
        srv->n.bad_requests++;
        rc = reply_error(srv, c, err.code, err.message, cid, cidlen);
        chat_req_free(&req);
        return rc;
    }
    if (req.type == CHAT_REQ_HISTORY) {
        chat_history_page(srv, c, &req);
    } else {
        srv->n.messages_received++;
        chat_history_publish(srv, c, &req); /* delivered from the room's subscription */
    }
    chat_req_free(&req);
    return 0;
}

int chat_conn_receive(struct chat_server *srv, struct chat_conn *c, const void *in, size_t len)
{
    struct lws *wsi = c->wsi;
    size_t cap = (size_t)srv->cfg->max_message_bytes;

    if (!c->established || c->culled || c->closing)
        return 0; /* closing: discard what is still in flight */
    if (lws_frame_is_binary(wsi)) {
        srv->n.protocol_errors++;
        return close_soon(srv, c, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE,
                          "binary frames not accepted");
    }
    /* bound the whole message before buffering anything: what we hold, this chunk, and what
     * the frame header says is still coming (a 70 KiB frame is refused at its first chunk) */
    size_t remaining = lws_remaining_packet_payload(wsi);
    if (c->rx_len + len > cap || remaining > cap - c->rx_len - len) {
        srv->n.protocol_errors++;
        return close_soon(srv, c, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, "message too big");
    }
    bool final = lws_is_final_fragment(wsi);
    if (final && !c->rx)
        return handle_frame(srv, c, in, len); /* common case: whole message, no copy */

    if (c->rx_len + len + remaining > c->rx_cap) {
        /* grow to what the current frame announces, so a big frame is one allocation */
        size_t want = c->rx_len + len + remaining;
        if (want < 1024)
            want = 1024;
        if (want > cap)
            want = cap;
        /* one user's connections hold at most CHAT_REASSEMBLY_PER_USER of it: a user with
         * many connections announcing big frames cannot take everyone's budget */
        if (c->user->rx_bytes - c->rx_cap + want > (size_t)srv->cfg->reassembly_per_user) {
            srv->n.reassembly_refused++;
            return close_soon(srv, c, LWS_CLOSE_STATUS_POLICY_VIOLATION,
                              "too many partial messages of this user");
        }
        /* all connections' partial messages share CHAT_REASSEMBLY_BUDGET, so the worst case
         * is not CHAT_MAX_MESSAGE_BYTES times the connections */
        if (srv->rx_bytes - c->rx_cap + want > (size_t)srv->cfg->reassembly_budget) {
            srv->n.reassembly_refused++;
            return close_soon(srv, c, (enum lws_close_status)CHAT_CLOSE_TRY_AGAIN_LATER,
                              "server busy: reassembly budget exhausted");
        }
        if (!c->rx)
            c->rx_since_ms = cm_mono_ms(); /* the CHAT_PARTIAL_TIMEOUT_MS deadline starts */
        c->rx = cm_xrealloc(c->rx, want);
        srv->rx_bytes += want - c->rx_cap;
        c->user->rx_bytes += want - c->rx_cap;
        c->rx_cap = want;
    }
    memcpy(c->rx + c->rx_len, in, len);
    c->rx_len += len;
    if (!final)
        return 0;
    int rc = handle_frame(srv, c, (const char *)c->rx, c->rx_len);
    if (c->rx)
        rx_release(srv, c); /* only fragmented / large messages ever hold a buffer */
    return rc;
}

static int write_frame(struct chat_server *srv, struct chat_conn *c, const struct chat_frame *f)
{
    /* lws_write puts the header in the LWS_PRE bytes before payload; for a server frame the
     * header is the same for every recipient, so sharing the buffer is safe */
    int n = lws_write(c->wsi, (unsigned char *)f->payload, f->len, LWS_WRITE_TEXT);
    if (n < (int)f->len)
        return -1;
    srv->n.frames_sent++;
    if (f->kind == CHAT_FRAME_MESSAGE)
        srv->n.messages_delivered++;
    return 0;
}

int chat_conn_writeable(struct chat_server *srv, struct chat_conn *c)
{
    if ((!c->established && !c->refused) || c->culled)
        return 0;
    /* it could write: whatever it still has pending waits from now (slow-reader grace) */
    c->wait_ms = 0;
    if (c->held && !c->close_code)
        return 0; /* welcome + history first (chat_conn_release) */
    if (c->close_code && c->priv_head) {
        /* the replies that explain the close (rate_limited) go out before it */
        for (int i = 0; i < CHAT_WRITE_BATCH && c->priv_head; i++) {
            struct chat_frame *f = c->priv_head;
            c->priv_head = f->next;
            c->npriv--;
            int rc = write_frame(srv, c, f);
            free(f);
            if (rc < 0)
                return -1;
            if (lws_send_pipe_choked(c->wsi))
                break;
        }
        if (!c->priv_head)
            c->priv_tail = NULL;
        lws_callback_on_writable(c->wsi);
        return 0;
    }
    if (c->close_code) {
        const char *why = c->why ? c->why : "";
        size_t n = strlen(why);
        lws_close_reason(c->wsi, (enum lws_close_status)c->close_code, (unsigned char *)why,
                         n > 120 ? 120 : n);
        /* once only: lws now sends the close and waits for the ack; a second -1 from a
         * WRITEABLE still queued (broadcast wake-ups) would make it drop the socket at once */
        c->close_code = 0;
        return -1;
    }
    if (c->closing)
        return 0;
    if (c->want_ping) {
        /* empty payload, as lws's own keepalive ping; any input answers it (see sweep) */
        unsigned char ping[LWS_PRE + 1];
        c->want_ping = false;
        if (lws_write(c->wsi, ping + LWS_PRE, 0, LWS_WRITE_PING) < 0)
            return -1;
        srv->n.pings_sent++;
        if (lws_send_pipe_choked(c->wsi)) {
            lws_callback_on_writable(c->wsi);
            return 0;
        }
    }
    /* Up to CHAT_WRITE_BATCH pending frames go out in one send(): their (unmasked, so
     * identical for every recipient) headers are built here, next to copies of the payloads,
     * and the whole batch is written as LWS_WRITE_RAW, which lws 4.1.6 passes to
     * lws_issue_raw untouched (rops_write_role_protocol_ws: RAW is LWS_WRITE_HTTP, "goto
     * send_raw"). A partial send is safe: lws_issue_raw keeps the rest in buflist_out,
     * reports it all as taken, sends it first and calls WRITEABLE again only once it is out;
     * frames written later by lws (ping, close) are appended behind it. The batch never ends
     * inside a frame, so lws's ws->inside_frame state stays right. */
    struct chat_ring *r = &c->room->ring;
    unsigned char *out = txbuf + LWS_PRE;
    size_t off = 0;
    uint32_t nframes = 0, nmessages = 0;
    for (;;) {
        /* skip what this connection must not get (its own typing) without writing */
        while (!c->priv_head && c->next_seq < r->head) {
            const struct chat_frame *f = chat_ring_get(r, c->next_seq);
            if (f && f->exclude_conn != c->id)
                break;
            c->next_seq++;
        }
        if (!c->priv_head && c->next_seq >= r->head)
            break; /* all taken */
        if (nframes >= CHAT_WRITE_BATCH)
            break;
        struct chat_frame *pf = c->priv_head; /* private frames first, freed once copied */
        const struct chat_frame *f = pf ? pf : chat_ring_get(r, c->next_seq);
        size_t hlen = chat_wsframe_header_len(f->len, false);
        if (off + hlen + f->len > CHAT_TX_BATCH_BYTES) {
            if (nframes)
                break; /* next time */
            /* a frame bigger than the batch buffer goes alone, the usual way */
            if (pf) {
                c->priv_head = pf->next;
                if (!c->priv_head)
                    c->priv_tail = NULL;
                c->npriv--;
            } else {
                c->next_seq++;
            }
            int rc = write_frame(srv, c, f);
            free(pf);
            if (rc < 0)
                return -1;
            c->wait_ms = cm_mono_ms();
            lws_callback_on_writable(c->wsi);
            return 0;
        }
        (void)chat_wsframe_encode(out + off, true, CHAT_WS_OP_TEXT, f->len, NULL);
        memcpy(out + off + hlen, f->payload, f->len);
        off += hlen + f->len;
        nframes++;
        if (f->kind == CHAT_FRAME_MESSAGE)
            nmessages++;
        if (pf) {
            c->priv_head = pf->next;
            if (!c->priv_head)
                c->priv_tail = NULL;
            c->npriv--;
            free(pf);
        } else {
            c->next_seq++;
        }
    }
    if (!nframes)
        return 0;
    if (lws_write(c->wsi, out, off, LWS_WRITE_RAW) < (int)off)
        return -1;
    srv->n.frames_sent += nframes;
    srv->n.messages_delivered += nmessages;
    if (c->priv_head || c->next_seq < r->head) {
        c->wait_ms = cm_mono_ms();
        lws_callback_on_writable(c->wsi);
    }
    return 0;
}

/* A close lws made itself (1007 invalid UTF-8, 1002 protocol errors its parser finds):
 * lws_close_reason() left the code it sent in the close payload buffer, which
 * lws_get_close_payload() reads (lws 4.1.6 lib/roles/ws/ops-ws.c). Returns the code, or 0. */
static unsigned lws_close_code(struct chat_conn *c, char *reason, size_t cap)
{
    if (!c->wsi || c->why || c->peer_code || c->culled)
        return 0;
    int n = lws_get_close_length(c->wsi);
    const unsigned char *p = lws_get_close_payload(c->wsi);
    if (n < 2 || !p)
        return 0;
    unsigned code = (unsigned)(p[0] << 8 | p[1]);
    size_t rl = (size_t)n - 2 < cap - 1 ? (size_t)n - 2 : cap - 1;
    for (size_t i = 0; i < rl; i++)
        reason[i] = p[2 + i] >= 0x20 && p[2 + i] < 0x7f ? (char)p[2 + i] : '?';
    reason[rl] = '\0';
    return code;
}

void chat_conn_teardown(struct chat_server *srv, struct chat_conn *c)
{
    rx_release(srv, c); /* before the user goes: it held a share of the user's budget */
    if (c->established) {
        struct chat_room *room = c->room;
        chat_rawguard_detach(c->fd);
        if (chat_rawguard_violated(c->fd))
            srv->n.framing_violations++;
        chat_room_unlink(room, c);
        chat_index_remove(&srv->index, c);
        const char *uid = c->member->uid;
        char lreason[124];
        unsigned lcode = lws_close_code(c, lreason, sizeof lreason);
        if (lcode) {
            if (lcode >= 1000 && lcode < 1016)
                srv->n.closed_by_lws[lcode - 1000]++;
            cm_info("connection closed room=%s user=%s reason=closed by libwebsockets: code %u "
                    "(%s) client_code=0",
                    room->name, uid, lcode, lreason);
        } else {
            cm_info("connection closed room=%s user=%s reason=%s client_code=%u", room->name, uid,
                    c->why ? c->why : (c->peer_code ? "closed by client" : "connection lost"),
                    (unsigned)c->peer_code);
        }
        if (chat_room_member_release(room, c->member)) {
            if (chat_presence_leave(srv, room, uid))
                chat_fanout_room(srv, room, chat_proto_user_event("leave", uid, c->member->name));
            chat_member_free(c->member);
        }
        c->member = NULL;
        c->room = NULL;
        if (!room->nconns && !room->nmembers)
            chat_history_room_gone(srv, room);
        chat_rooms_release(srv->rooms, room);
        c->established = false;
    }
    if (c->counted) {
        srv->nconns--;
        c->counted = false;
    }
    while (c->priv_head) {
        struct chat_frame *f = c->priv_head;
        c->priv_head = f->next;
        free(f);
    }
    c->priv_tail = NULL;
    c->npriv = 0;
    free(c->ident);
    c->ident = NULL;
}

void chat_conn_drain_inbox(struct chat_server *srv)
{
    struct chat_event *ev = chat_inbox_take(&srv->inbox);
    while (ev) {
        struct chat_event *next = ev->next;
        if (ev->kind == CHAT_EVENT_ROOM_FRAME && ev->frame) {
            struct chat_room *room = chat_rooms_find(srv->rooms, ev->room);
            if (room) {
                chat_fanout_room(srv, room, ev->frame); /* takes the frame */
                ev->frame = NULL;
            }
        } else if (ev->kind == CHAT_EVENT_CONN_CLOSE) {
            struct chat_conn *c = chat_index_conn(&srv->index, ev->conn_id);
            if (c && !c->culled)
                (void)close_soon(srv, c, (enum lws_close_status)ev->close_code,
                                 ev->reason ? ev->reason : "closed by the server");
        }
        chat_event_free(ev);
        ev = next;
    }
}

void chat_conn_shutdown_all(struct chat_server *srv)
{
    struct chat_rooms *reg = srv->rooms;
    for (size_t b = 0; b < reg->nbuckets; b++)
        for (struct chat_room *room = reg->buckets[b]; room; room = room->hnext)
            for (struct chat_conn *c = room->conns; c; c = c->rnext) {
                if (!c->culled)
                    (void)close_soon(srv, c, LWS_CLOSE_STATUS_GOINGAWAY, "server shutdown");
            }
}

/* Drops a connection that has sent nothing, not even a pong, for CHAT_IDLE_TIMEOUT: like
 * lws's validity hangup, without a close frame (the peer is presumably gone). */
static void drop_idle(struct chat_server *srv, struct chat_conn *c)
{
    c->culled = true;
    c->why = "idle timeout: no answer to pings";
    srv->n.idle_dropped++;
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_REASON_BASE, LWS_TO_KILL_ASYNC);
}

/* One walk over all connections: input since the last walk (rx_seen, set by the recv()
 * interposer for any bytes: frames, parts of frames, pings, pongs) refreshes last_rx_ms; a
 * connection quiet for CHAT_PING_INTERVAL is pinged (again every CHAT_PING_INTERVAL while
 * it stays quiet), one quiet for CHAT_IDLE_TIMEOUT is dropped. Closing and culled
 * connections have their own timeouts. */
static void sweep(lws_sorted_usec_list_t *sul)
{
    struct chat_server *srv = lws_container_of(sul, struct chat_server, sweep);
    struct chat_rooms *reg = srv->rooms;
    int64_t now = cm_mono_ms();
    int64_t ping_ms = srv->cfg->ping_interval * 1000, idle_ms = srv->cfg->idle_timeout * 1000;
    int64_t partial_ms = srv->cfg->partial_timeout_ms, grace_ms = srv->cfg->slow_grace_ms;

    for (size_t b = 0; b < reg->nbuckets; b++)
        for (struct chat_room *room = reg->buckets[b]; room; room = room->hnext)
            for (struct chat_conn *c = room->conns; c; c = c->rnext) {
                if (c->culled || c->closing)
                    continue;
                if (c->rx && c->rx_since_ms && now - c->rx_since_ms >= partial_ms) {
                    srv->n.partial_timeouts++;
                    (void)close_soon(srv, c, LWS_CLOSE_STATUS_POLICY_VIOLATION,
                                     "message not completed in time");
                    continue;
                }
                if (c->wait_ms && now - c->wait_ms >= grace_ms) {
                    chat_fanout_cull(srv, c, "too slow: socket not writable for the grace period");
                    continue;
                }
                if (c->rx_seen) {
                    c->rx_seen = false;
                    c->last_rx_ms = now;
                    c->ping_ms = 0;
                    continue;
                }
                int64_t quiet = now - c->last_rx_ms;
                if (quiet >= idle_ms) {
                    drop_idle(srv, c);
                } else if (quiet >= ping_ms && (!c->ping_ms || now - c->ping_ms >= ping_ms)) {
                    c->ping_ms = now;
                    c->want_ping = true;
                    lws_callback_on_writable(c->wsi);
                }
            }
    lws_sul_schedule(srv->ctx, 0, &srv->sweep, sweep, CHAT_SWEEP_TICK_MS * LWS_US_PER_MS);
}

void chat_conn_sweep_start(struct chat_server *srv)
{
    lws_sul_schedule(srv->ctx, 0, &srv->sweep, sweep, CHAT_SWEEP_TICK_MS * LWS_US_PER_MS);
}

void chat_conn_sweep_stop(struct chat_server *srv)
{
    lws_sul_cancel(&srv->sweep);
}

void chat_conn_metrics(const struct chat_server *srv, struct cm_buf *b)
{
    const struct chat_counters *n = &srv->n;
    cm_buf_printf(
        b,
        "# HELP chat_users Users with at least one connection.\n"
        "# TYPE chat_users gauge\nchat_users %zu\n"
        "# HELP chat_user_connections_refused_total Connections refused by the "
        "per-user budgets (CHAT_MAX_CONNS_PER_USER, _PER_USER_ROOM).\n"
        "# TYPE chat_user_connections_refused_total counter\n"
        "chat_user_connections_refused_total %" PRIu64 "\n"
        "# HELP chat_typing_dropped_total Typing frames over the user's typing "
        "budget.\n"
        "# TYPE chat_typing_dropped_total counter\nchat_typing_dropped_total %" PRIu64 "\n"
        "# HELP chat_control_limited_total Connections closed 1008 for too many "
        "ping/pong/close frames.\n"
        "# TYPE chat_control_limited_total counter\nchat_control_limited_total %" PRIu64 "\n"
        "# HELP chat_partial_timeouts_total Connections closed 1008 for a message not "
        "completed within CHAT_PARTIAL_TIMEOUT_MS.\n"
        "# TYPE chat_partial_timeouts_total counter\nchat_partial_timeouts_total %" PRIu64 "\n"
        "# HELP chat_closed_total Connections libwebsockets closed itself, by the "
        "close code it sent (1002 protocol error, 1007 invalid UTF-8, ...).\n"
        "# TYPE chat_closed_total counter\n",
        srv->index.nusers, n->user_conns_refused, n->typing_dropped, n->control_limited,
        n->partial_timeouts);
    static const unsigned shown[] = {1002, 1007, 1009};
    for (size_t i = 0; i < sizeof shown / sizeof shown[0]; i++)
        cm_buf_printf(b, "chat_closed_total{code=\"%u\"} %" PRIu64 "\n", shown[i],
                      n->closed_by_lws[shown[i] - 1000]);
    for (unsigned code = 1000; code < 1016; code++) {
        bool listed = code == 1002 || code == 1007 || code == 1009;
        if (!listed && n->closed_by_lws[code - 1000])
            cm_buf_printf(b, "chat_closed_total{code=\"%u\"} %" PRIu64 "\n", code,
                          n->closed_by_lws[code - 1000]);
    }
}
