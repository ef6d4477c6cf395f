#include "fanout.h"
#include "chat.h"
#include "room.h"

#include <stdlib.h>

#include "cm_util.h"

void chat_fanout_cull(struct chat_server *srv, struct chat_conn *c, const char *why)
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

/* Culls the connections still waiting for the oldest frame and drops it. */
static void drop_oldest(struct chat_server *srv, struct chat_room *room)
{
    struct chat_ring *r = &room->ring;
    uint64_t oldest = chat_ring_oldest(r);
    for (struct chat_conn *c = room->conns; c; c = c->rnext)
        if (!c->culled && !c->closing && c->next_seq <= oldest)
            chat_fanout_cull(srv, c, "too slow: lagged the room's whole backlog");
    chat_ring_drop_oldest(r);
}

/* The slow-reader policy (docs/operations.md): a burst that fills the ring before the
 * server had a chance to write it out grows the ring (doubling) up to the room's hard caps,
 * CHAT_ROOM_BACKLOG_FRAMES and CHAT_ROOM_BACKLOG_BYTES; only past them do the connections
 * lagging the whole backlog get culled. Frames every connection has taken are freed again
 * down to CHAT_RING_SIZE. A reader is otherwise dropped only for its own failure to read:
 * its socket unwritable for CHAT_SLOW_GRACE_MS (the sweep in conn.c). Closing connections
 * are left alone: they never read the ring again (their tail stands still), and they are
 * on their way out with their own close code and timeout. */
void chat_fanout_room(struct chat_server *srv, struct chat_room *room, struct chat_frame *f)
{
    const struct chat_config *cfg = srv->cfg;
    struct chat_ring *r = &room->ring;
    if (chat_ring_full(r)) {
        if (r->cap < (uint64_t)cfg->backlog_frames && r->bytes < (size_t)cfg->backlog_bytes) {
            uint64_t want = (uint64_t)r->cap * 2;
            if (want > (uint64_t)cfg->backlog_frames)
                want = (uint64_t)cfg->backlog_frames;
            chat_ring_grow(r, (uint32_t)want);
        } else {
            drop_oldest(srv, room);
        }
    }
    while (r->count && r->bytes + f->len > (size_t)cfg->backlog_bytes)
        drop_oldest(srv, room);
    chat_ring_push(r, f);
    int64_t now = cm_mono_ms();
    uint64_t min_tail = r->head;
    for (struct chat_conn *c = room->conns; c; c = c->rnext) {
        if (c->culled || c->closing)
            continue;
        if (c->next_seq < min_tail)
            min_tail = c->next_seq;
        if (c->id == f->exclude_conn)
            continue;
        if (!c->wait_ms)
            c->wait_ms = now; /* it has something to write from now on */
        lws_callback_on_writable(c->wsi);
    }
    /* beyond the base size, keep only what someone still has to take */
    while (r->count > (uint32_t)cfg->ring_size && chat_ring_oldest(r) < min_tail)
        chat_ring_drop_oldest(r);
}
