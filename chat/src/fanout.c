#include "fanout.h"
#include "chat.h"
#include "room.h"

#include <stdlib.h>

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

/* Closing connections are left alone: they never read the ring again (their tail stands
 * still), and they are on their way out with their own close code and timeout. */
void chat_fanout_room(struct chat_server *srv, struct chat_room *room, struct chat_frame *f)
{
    struct chat_ring *r = &room->ring;
    if (chat_ring_full(r)) {
        uint64_t oldest = chat_ring_oldest(r);
        for (struct chat_conn *c = room->conns; c; c = c->rnext)
            if (!c->culled && !c->closing && c->next_seq <= oldest)
                chat_fanout_cull(srv, c, "too slow: lagged the whole room ring");
        chat_ring_drop_oldest(r);
    }
    chat_ring_push(r, f);
    for (struct chat_conn *c = room->conns; c; c = c->rnext)
        if (!c->culled && !c->closing && c->id != f->exclude_conn)
            lws_callback_on_writable(c->wsi);
}
