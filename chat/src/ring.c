#include "ring.h"
#include "chat.h"

#include <assert.h>
#include <stdlib.h>

#include "cm_log.h"
#include "cm_alloc.h"

void chat_ring_init(struct chat_ring *r, uint32_t cap)
{
    r->slots = cm_xcalloc(cap, sizeof *r->slots);
    r->cap = cap;
    r->count = 0;
    r->bytes = 0;
    r->head = 1;
}

void chat_ring_free(struct chat_ring *r)
{
    while (r->count)
        chat_ring_drop_oldest(r);
    free(r->slots);
    r->slots = NULL;
}

void chat_ring_drop_oldest(struct chat_ring *r)
{
    if (!r->count)
        return;
    uint64_t seq = chat_ring_oldest(r);
    struct chat_frame **slot = &r->slots[seq % r->cap];
    r->bytes -= (*slot)->len;
    free(*slot);
    *slot = NULL;
    r->count--;
}

uint64_t chat_ring_push(struct chat_ring *r, struct chat_frame *f)
{
    assert(r->count < r->cap);
    f->seq = r->head++;
    r->slots[f->seq % r->cap] = f;
    r->count++;
    r->bytes += f->len;
    return f->seq;
}

void chat_ring_grow(struct chat_ring *r, uint32_t newcap)
{
    assert(newcap > r->cap);
    struct chat_frame **slots = cm_xcalloc(newcap, sizeof *slots);
    for (uint64_t seq = chat_ring_oldest(r); seq < r->head; seq++)
        slots[seq % newcap] = r->slots[seq % r->cap];
    free(r->slots);
    r->slots = slots;
    r->cap = newcap;
}

const struct chat_frame *chat_ring_get(const struct chat_ring *r, uint64_t seq)
{
    if (seq < chat_ring_oldest(r) || seq >= r->head)
        return NULL;
    return r->slots[seq % r->cap];
}
