/* Room registry: creation on first join, freeing on last leave, one member per user. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "chat.h"
#include "room.h"

static void test_rooms_created_and_freed(void **state)
{
    (void)state;
    struct chat_rooms *reg = chat_rooms_new(8, 16);
    struct chat_room *a = chat_rooms_get(reg, "lobby");
    assert_non_null(a);
    assert_ptr_equal(chat_rooms_get(reg, "lobby"), a);
    struct chat_room *b = chat_rooms_get(reg, "other-room");
    assert_ptr_not_equal(a, b);
    assert_int_equal(reg->count, 2);
    assert_null(chat_rooms_find(reg, "nope"));

    struct chat_conn c1, c2;
    memset(&c1, 0, sizeof c1);
    memset(&c2, 0, sizeof c2);
    chat_room_link(a, &c1);
    chat_room_link(a, &c2);
    assert_int_equal(a->nconns, 2);
    assert_false(chat_rooms_release(reg, a)); /* still used */
    chat_room_unlink(a, &c1);
    chat_room_unlink(a, &c2);
    assert_null(a->conns);
    assert_true(chat_rooms_release(reg, a));
    assert_int_equal(reg->count, 1);
    assert_null(chat_rooms_find(reg, "lobby"));
    chat_rooms_free(reg); /* frees "other-room" too */
}

static void test_tabs_are_one_member(void **state)
{
    (void)state;
    struct chat_rooms *reg = chat_rooms_new(4, 16);
    struct chat_room *r = chat_rooms_get(reg, "lobby");
    bool is_new;
    struct chat_member *m1 = chat_room_member_add(r, "ann@example.com", "Ann", &is_new);
    assert_true(is_new);
    struct chat_member *m2 = chat_room_member_add(r, "ann@example.com", "Ann", &is_new);
    assert_false(is_new); /* second tab: no second join */
    assert_ptr_equal(m1, m2);
    struct chat_member *bob = chat_room_member_add(r, "bob@example.com", "Bob", &is_new);
    assert_true(is_new);
    assert_int_equal(r->nmembers, 2);
    assert_string_equal(r->members->uid, "ann@example.com"); /* join order */

    assert_false(chat_room_member_release(r, m1)); /* one tab left: no leave */
    assert_int_equal(r->nmembers, 2);
    assert_true(chat_room_member_release(r, m1)); /* last tab: leave */
    assert_int_equal(r->nmembers, 1);
    chat_member_free(m1);
    assert_true(chat_room_member_release(r, bob));
    chat_member_free(bob);
    assert_true(chat_rooms_release(reg, r));
    chat_rooms_free(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rooms_created_and_freed),
        cmocka_unit_test(test_tabs_are_one_member),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
