#include "inbox.h"

#include <stdlib.h>

#include <libwebsockets.h>

#include "cm_alloc.h"

struct chat_event *chat_event_new(enum chat_event_kind kind)
{
    struct chat_event *ev = cm_xcalloc(1, sizeof *ev);
    ev->kind = kind;
    return ev;
}

void chat_event_free(struct chat_event *ev)
{
    if (!ev)
        return;
    free(ev->frame);
    free(ev);
}

void chat_inbox_init(struct chat_inbox *ib)
{
    pthread_mutex_init(&ib->mu, NULL);
    ib->head = ib->tail = NULL;
    ib->len = 0;
    ib->ctx = NULL;
}

void chat_inbox_set_context(struct chat_inbox *ib, struct lws_context *ctx)
{
    ib->ctx = ctx;
}

void chat_inbox_post(struct chat_inbox *ib, struct chat_event *ev)
{
    ev->next = NULL;
    pthread_mutex_lock(&ib->mu);
    if (ib->tail)
        ib->tail->next = ev;
    else
        ib->head = ev;
    ib->tail = ev;
    ib->len++;
    pthread_mutex_unlock(&ib->mu);
    /* lws 4.1.6: thread-safe; makes the service thread's poll return and deliver
     * LWS_CALLBACK_EVENT_WAIT_CANCELLED to every protocol */
    if (ib->ctx)
        lws_cancel_service(ib->ctx);
}

struct chat_event *chat_inbox_take(struct chat_inbox *ib)
{
    pthread_mutex_lock(&ib->mu);
    struct chat_event *all = ib->head;
    ib->head = ib->tail = NULL;
    ib->len = 0;
    pthread_mutex_unlock(&ib->mu);
    return all;
}

void chat_inbox_free(struct chat_inbox *ib)
{
    struct chat_event *ev = chat_inbox_take(ib);
    while (ev) {
        struct chat_event *next = ev->next;
        chat_event_free(ev);
        ev = next;
    }
    pthread_mutex_destroy(&ib->mu);
}
