/* WebSocket connection life cycle: join on ESTABLISHED, parse and fan out on RECEIVE,
 * write only on WRITEABLE, leave on close. Everything runs on the single lws service
 * thread (LWS_MAX_SMP is 1 in Debian's build), so no locks. */
#include "chat.h"
#include "history.h"
#include "protocol.h"
#include "rawguard.h"
#include "room.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cm_log.h"
#include "cm_util.h"
#include "cm_alloc.h"

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

static const char *ident_email(const struct chat_conn *c)
{
    return c->ident;
}
static const char *ident_name(const struct chat_conn *c)
{
    return c->ident + strlen(c->ident) + 1;
}
static const char *ident_room(const struct chat_conn *c)
{
    const char *n = ident_name(c);
    return n + strlen(n) + 1;
}

static void cull(struct chat_server *srv, struct chat_conn *c, const char *why)
{
    if (c->culled)
        return;
    c->culled = true;
    c->why = why;
    srv->n.culled++;
    /* the client does not read, so a close frame would not get through anyway: have lws
     * drop the socket from its own loop (safe from inside another connection's callback) */
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_REASON_BASE, LWS_TO_KILL_ASYNC);
}

/* Appends f to the room's ring and wakes every connection of the room. When the ring is
 * full, the connections still waiting for the oldest frame are the ones lagging by the
 * whole ring: they are culled, so memory stays bounded and nobody else waits for them.
 * Closing connections are left alone: they never read the ring again (their tail stands
 * still), and they are on their way out with their own close code and timeout. */
static void broadcast(struct chat_server *srv, struct chat_room *room, struct chat_frame *f)
{
    struct chat_ring *r = &room->ring;
    if (chat_ring_full(r)) {
        uint64_t oldest = chat_ring_oldest(r);
        for (struct chat_conn *c = room->conns; c; c = c->rnext)
            if (!c->culled && !c->closing && c->next_seq <= oldest)
                cull(srv, c, "too slow: lagged the whole room ring");
        chat_ring_drop_oldest(r);
    }
    chat_ring_push(r, f);
    for (struct chat_conn *c = room->conns; c; c = c->rnext)
        if (!c->culled && !c->closing && c->id != f->exclude_conn)
            lws_callback_on_writable(c->wsi);
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
    lws_callback_on_writable(c->wsi);
    return 0;
}

/* Gives back the connection's reassembly buffer (and its share of the budget). */
static void rx_release(struct chat_server *srv, struct chat_conn *c)
{
    srv->rx_bytes -= c->rx_cap;
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

void chat_room_broadcast(struct chat_server *srv, struct chat_room *room, struct chat_frame *f)
{
    broadcast(srv, room, f);
}

struct chat_frame *chat_conn_welcome(const struct chat_conn *c)
{
    return chat_proto_welcome(c->room, ident_email(c), ident_name(c));
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
    struct chat_room *room = chat_rooms_get(srv->rooms, ident_room(c));
    if (!room)
        return -1;
    c->id = ++srv->next_conn_id;
    c->established = true;
    c->last_rx_ms = cm_mono_ms();
    c->counted = true;
    srv->nconns++;
    chat_bucket_init(&c->bucket, cm_mono_ms(), srv->cfg->rate_burst);

    bool is_new;
    c->member = chat_room_member_add(room, ident_email(c), ident_name(c), &is_new);
    if (is_new)
        broadcast(srv, room, chat_proto_user_event("join", ident_email(c), ident_name(c)));
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
    cm_info("connection accepted room=%s user=%s tabs=%u", room->name, ident_email(c),
            c->member->tabs);
    return 0;
}

static int handle_frame(struct chat_server *srv, struct chat_conn *c, const char *buf, size_t len)
{
    const struct chat_config *cfg = srv->cfg;
    struct chat_limits lim = {(size_t)cfg->max_text_chars, (size_t)cfg->max_client_id};

    if (!chat_bucket_take(&c->bucket, cm_mono_ms(), cfg->rate_per_sec, cfg->rate_burst)) {
        srv->n.rate_limited++;
        if (++c->strikes >= cfg->rate_strikes)
            return close_soon(srv, c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "rate limit exceeded");
        /* read the frame only to name the refused message (its client_id) in the answer */
        struct chat_req req;
        struct chat_proto_err err;
        int prc = chat_proto_parse(buf, len, &lim, &req, &err);
        const char *cid = prc == 0 ? req.client_id : err.client_id;
        size_t cidlen = prc == 0 ? req.client_id_len : err.client_id_len;
        int rc = send_private(
            srv, c, chat_proto_error("rate_limited", "too many frames, slow down", cid, cidlen));
        chat_req_free(&req);
        if (rc < 0)
            return close_soon(srv, c, LWS_CLOSE_STATUS_POLICY_VIOLATION,
                              "too many pending replies");
        return 0;
    }
    c->strikes = 0;

    struct chat_req req;
    struct chat_proto_err err;
    if (chat_proto_parse(buf, len, &lim, &req, &err) < 0) {
        srv->n.bad_requests++;
        int rc = send_private(
            srv, c, chat_proto_error(err.code, err.message, err.client_id, err.client_id_len));
        chat_req_free(&req);
        if (rc < 0)
            return close_soon(srv, c, LWS_CLOSE_STATUS_POLICY_VIOLATION,
                              "too many pending replies");
        return 0;
    }
    struct chat_room *room = c->room;
    if (req.type == CHAT_REQ_MESSAGE) {
        srv->n.messages_received++;
        chat_history_publish(srv, c, &req); /* delivered from the room's subscription */
    } else if (req.type == CHAT_REQ_HISTORY) {
        chat_history_page(srv, c, &req);
    } else {
        struct chat_frame *f = chat_proto_user_event("typing", c->member->email, c->member->name);
        f->exclude_conn = c->id;
        broadcast(srv, room, f);
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
        /* all connections' partial messages share CHAT_REASSEMBLY_BUDGET, so the worst case
         * is not CHAT_MAX_MESSAGE_BYTES times the connections */
        if (srv->rx_bytes - c->rx_cap + want > (size_t)srv->cfg->reassembly_budget) {
            srv->n.reassembly_refused++;
            return close_soon(srv, c, (enum lws_close_status)CHAT_CLOSE_TRY_AGAIN_LATER,
                              "server busy: reassembly budget exhausted");
        }
        c->rx = cm_xrealloc(c->rx, want);
        srv->rx_bytes += want - c->rx_cap;
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
    if (!c->established || c->culled)
        return 0;
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
        size_t hlen = f->len < 126 ? 2 : f->len < 65536 ? 4 : 10;
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
            lws_callback_on_writable(c->wsi);
            return 0;
        }
        out[off] = 0x81; /* FIN, text */
        if (hlen == 2) {
            out[off + 1] = (unsigned char)f->len;
        } else if (hlen == 4) {
            out[off + 1] = 126;
            out[off + 2] = (unsigned char)(f->len >> 8);
            out[off + 3] = (unsigned char)f->len;
        } else {
            out[off + 1] = 127;
            for (unsigned i = 0; i < 8; i++)
                out[off + 2 + i] = (unsigned char)((uint64_t)f->len >> (56 - 8 * i));
        }
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
    if (c->priv_head || c->next_seq < r->head)
        lws_callback_on_writable(c->wsi);
    return 0;
}

void chat_conn_teardown(struct chat_server *srv, struct chat_conn *c)
{
    if (c->established) {
        struct chat_room *room = c->room;
        chat_rawguard_detach(c->fd);
        if (chat_rawguard_violated(c->fd))
            srv->n.framing_violations++;
        chat_room_unlink(room, c);
        const char *email = c->member->email;
        cm_info("connection closed room=%s user=%s reason=%s client_code=%u", room->name, email,
                c->why ? c->why : (c->peer_code ? "closed by client" : "connection lost"),
                (unsigned)c->peer_code);
        if (chat_room_member_release(room, c->member)) {
            broadcast(srv, room, chat_proto_user_event("leave", email, c->member->name));
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
    rx_release(srv, c);
    free(c->ident);
    c->ident = NULL;
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

    for (size_t b = 0; b < reg->nbuckets; b++)
        for (struct chat_room *room = reg->buckets[b]; room; room = room->hnext)
            for (struct chat_conn *c = room->conns; c; c = c->rnext) {
                if (c->culled || c->closing)
                    continue;
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
