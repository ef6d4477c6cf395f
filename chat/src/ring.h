/* Per-room ring of encoded broadcast frames (after lws minimal-ws-server-ring): one frame
 * is shared by every recipient; each connection keeps only its tail (next sequence number).
 * The ring holds at most cap frames; fanout.c grows cap (chat_ring_grow) up to the room's
 * hard cap when a burst fills it before its readers could be written to, so a room's memory
 * is bounded and only a connection that lags the whole hard cap is culled. */
#ifndef CHAT_RING_H
#define CHAT_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct chat_frame;

struct chat_ring {
    struct chat_frame **slots;
    uint32_t cap;
    uint32_t count;
    size_t bytes;  /* payload bytes of the frames held */
    uint64_t head; /* sequence number the next pushed frame gets; starts at 1 */
};

void chat_ring_init(struct chat_ring *r, uint32_t cap);
/* Frees every frame still held. */
void chat_ring_free(struct chat_ring *r);

static inline bool chat_ring_full(const struct chat_ring *r)
{
    return r->count == r->cap;
}
/* Sequence number of the oldest frame held (== head when empty). */
static inline uint64_t chat_ring_oldest(const struct chat_ring *r)
{
    return r->head - r->count;
}

/* Makes room for newcap (> cap) frames, keeping every frame and its sequence number. */
void chat_ring_grow(struct chat_ring *r, uint32_t newcap);
/* Frees the oldest frame (the room culls its laggards first). No-op when empty. */
void chat_ring_drop_oldest(struct chat_ring *r);
/* Takes ownership of f, assigns f->seq and returns it. The ring must not be full. */
uint64_t chat_ring_push(struct chat_ring *r, struct chat_frame *f);
/* Borrowed frame with sequence seq, or NULL if it is not (or no longer) held. */
const struct chat_frame *chat_ring_get(const struct chat_ring *r, uint64_t seq);

#endif
