/* Cross-thread inbox of the chat daemon: other threads (a MongoDB writer, a Redis reader)
 * post events; the lws service thread takes them all at once when lws_cancel_service()
 * has woken it (LWS_CALLBACK_EVENT_WAIT_CANCELLED, as lws's minimal-ws-server-threads
 * example does) and dispatches them (chat_conn_drain_inbox). A mutex protects the queue;
 * nothing else of the daemon may be touched from another thread. */
#ifndef CHAT_INBOX_H
#define CHAT_INBOX_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "cm_token.h"

struct lws_context;
struct chat_frame;

enum chat_event_kind {
    CHAT_EVENT_ROOM_FRAME = 1, /* fan frame out to room (chat_fanout_room) */
    CHAT_EVENT_CONN_CLOSE = 2, /* close connection conn_id with close_code / reason */
};

/* One event. Allocate it with chat_event_new; whoever holds it owns it (and its frame):
 * the poster until chat_inbox_post, then the inbox, then the service thread. */
struct chat_event {
    struct chat_event *next; /* queue link (the inbox's) */
    enum chat_event_kind kind;
    char room[CM_ROOM_MAX + 1]; /* ROOM_FRAME: room name ("" otherwise) */
    uint64_t conn_id;           /* CONN_CLOSE: chat_conn.id */
    uint16_t close_code;        /* CONN_CLOSE: RFC 6455 §7.4 code */
    const char *reason;         /* CONN_CLOSE: static string for the log and close frame */
    struct chat_frame *frame;   /* ROOM_FRAME: owned by the event */
};

struct chat_inbox {
    pthread_mutex_t mu;
    struct chat_event *head, *tail;
    size_t len;
    struct lws_context *ctx; /* woken on post; NULL = nobody to wake (tests) */
};

/* Allocated zeroed (aborts on OOM). Free with chat_event_free (frees its frame too). */
struct chat_event *chat_event_new(enum chat_event_kind kind);
void chat_event_free(struct chat_event *ev);

void chat_inbox_init(struct chat_inbox *ib);
/* Set once, before any other thread posts. */
void chat_inbox_set_context(struct chat_inbox *ib, struct lws_context *ctx);
/* Any thread: queues ev (takes ownership) and wakes the service thread. */
void chat_inbox_post(struct chat_inbox *ib, struct chat_event *ev);
/* Service thread: every queued event in posting order (the caller owns the list, linked by
 * next), or NULL. */
struct chat_event *chat_inbox_take(struct chat_inbox *ib);
/* Frees what is still queued; no thread may post any more. */
void chat_inbox_free(struct chat_inbox *ib);

#endif
