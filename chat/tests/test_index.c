/* Connection index: O(1) lookup by id through growth, users keep their connections
 * together, the user goes away with its last connection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "chat.h"
#include "index.h"

#define N 5000

static void test_lookup_by_id_through_growth(void **state)
{
    (void)state;
    struct chat_index ix;
    chat_index_init(&ix);
    struct chat_conn *c = calloc(N, sizeof *c);
    char uid[16];
    for (int i = 0; i < N; i++) {
        c[i].id = (uint64_t)i + 1;
        snprintf(uid, sizeof uid, "u%d", i % 100);
        bool is_new;
        struct chat_user *u = chat_index_add(&ix, &c[i], uid, &is_new);
        assert_int_equal(is_new, i < 100);
        assert_ptr_equal(c[i].user, u);
    }
    assert_int_equal(ix.nconns, N);
    assert_int_equal(ix.nusers, 100);
    assert_true(ix.conn_nbuckets >= N);
    for (int i = 0; i < N; i++)
        assert_ptr_equal(chat_index_conn(&ix, (uint64_t)i + 1), &c[i]);
    assert_null(chat_index_conn(&ix, N + 1));
    assert_null(chat_index_conn(&ix, 0));
    struct chat_user *u7 = chat_index_user(&ix, "u7");
    assert_non_null(u7);
    assert_int_equal(u7->nconns, N / 100);
    size_t seen = 0;
    for (struct chat_conn *x = u7->conns; x; x = x->unext) {
        assert_int_equal((x->id - 1) % 100, 7);
        seen++;
    }
    assert_int_equal(seen, N / 100);
    /* remove every other connection; the rest are still found, the removed are not */
    for (int i = 0; i < N; i += 2)
        chat_index_remove(&ix, &c[i]);
    for (int i = 0; i < N; i++)
        assert_ptr_equal(chat_index_conn(&ix, (uint64_t)i + 1), i % 2 ? &c[i] : NULL);
    assert_null(chat_index_user(&ix, "u8")); /* all of u8's ids were even positions */
    assert_non_null(chat_index_user(&ix, "u7"));
    chat_index_remove(&ix, &c[0]); /* not indexed any more: no-op */
    for (int i = 1; i < N; i += 2)
        chat_index_remove(&ix, &c[i]);
    assert_int_equal(ix.nconns, 0);
    assert_int_equal(ix.nusers, 0);
    chat_index_free(&ix);
    free(c);
}

static void test_user_freed_with_last_conn(void **state)
{
    (void)state;
    struct chat_index ix;
    chat_index_init(&ix);
    struct chat_conn a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    a.id = 1;
    b.id = 2;
    bool is_new;
    chat_index_add(&ix, &a, "ann", &is_new);
    assert_true(is_new);
    chat_index_add(&ix, &b, "ann", &is_new);
    assert_false(is_new);
    assert_ptr_equal(a.user, b.user);
    chat_index_remove(&ix, &a);
    assert_null(a.user);
    assert_int_equal(chat_index_user(&ix, "ann")->nconns, 1);
    chat_index_remove(&ix, &b);
    assert_null(chat_index_user(&ix, "ann"));
    chat_index_add(&ix, &a, "ann", &is_new); /* a new user again */
    assert_true(is_new);
    chat_index_free(&ix); /* frees the user still held */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup_by_id_through_growth),
        cmocka_unit_test(test_user_freed_with_last_conn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
