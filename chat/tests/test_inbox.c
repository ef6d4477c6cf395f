/* Cross-thread inbox: events posted by several threads at once all arrive, each thread's in
 * its posting order; what is left at the end is freed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "chat.h"
#include "inbox.h"

#define THREADS 4
#define PER_THREAD 20000

static struct chat_inbox ib;

static void *poster(void *arg)
{
    uint64_t t = (uint64_t)(uintptr_t)arg;
    for (uint64_t i = 0; i < PER_THREAD; i++) {
        struct chat_event *ev = chat_event_new(CHAT_EVENT_CONN_CLOSE);
        ev->conn_id = t * PER_THREAD + i;
        if (i % 3 == 0) {
            ev->kind = CHAT_EVENT_ROOM_FRAME;
            ev->frame = chat_frame_new("x", 1, CHAT_FRAME_EVENT); /* owned by the event */
        }
        chat_inbox_post(&ib, ev);
    }
    return NULL;
}

static void test_threads_post_service_takes(void **state)
{
    (void)state;
    chat_inbox_init(&ib);
    pthread_t th[THREADS];
    for (uintptr_t t = 0; t < THREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, poster, (void *)t), 0);
    uint64_t next[THREADS] = {0};
    size_t got = 0;
    while (got < THREADS * PER_THREAD) {
        for (struct chat_event *ev = chat_inbox_take(&ib), *nx; ev; ev = nx) {
            nx = ev->next;
            uint64_t t = ev->conn_id / PER_THREAD, i = ev->conn_id % PER_THREAD;
            assert_true(t < THREADS);
            assert_int_equal(i, next[t]); /* in order per thread */
            next[t]++;
            got++;
            chat_event_free(ev);
        }
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    assert_null(chat_inbox_take(&ib));
    chat_inbox_post(&ib, chat_event_new(CHAT_EVENT_CONN_CLOSE));
    chat_inbox_free(&ib); /* frees what was not taken */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_post_service_takes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
