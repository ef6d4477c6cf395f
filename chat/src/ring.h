/* Per-room ring of encoded broadcast frames (after lws minimal-ws-server-ring): one frame
 * is shared by every recipient; each connection keeps only its tail (next sequence number).
 * The ring holds at most cap frames, so a room's memory is bounded and a connection can lag
 * at most cap frames before the room culls it. */
#ifndef CHAT_RING_H
#define CHAT_RING_H

#include <stdbool.h>
#include <stdint.h>

struct chat_frame;

struct chat_ring {
    struct chat_frame **slots;
    uint32_t cap;
    uint32_t count;
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

/* Frees the oldest frame (the room culls its laggards first). No-op when empty. */
void chat_ring_drop_oldest(struct chat_ring *r);
/* Takes ownership of f, assigns f->seq and returns it. The ring must not be full. */
uint64_t chat_ring_push(struct chat_ring *r, struct chat_frame *f);
/* Borrowed frame with sequence seq, or NULL if it is not (or no longer) held. */
const struct chat_frame *chat_ring_get(const struct chat_ring *r, uint64_t seq);

#endif
