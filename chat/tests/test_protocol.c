/* Client frame parsing and server frame encoding, including hostile input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "chat.h"
#include "protocol.h"
#include "room.h"

static const struct chat_limits lim = {4000, 64};

static int parse(const char *s, struct chat_req *req, struct chat_proto_err *err)
{
    return chat_proto_parse(s, strlen(s), &lim, req, err);
}

static void expect_error(const char *s, const char *code)
{
    struct chat_req req;
    struct chat_proto_err err = {0};
    assert_int_equal(parse(s, &req, &err), -1);
    assert_string_equal(err.code, code);
    assert_non_null(err.message);
}

static void test_valid_message(void **state)
{
    (void)state;
    struct chat_req req;
    struct chat_proto_err err;
    assert_int_equal(
        parse("{\"type\":\"message\",\"text\":\"h\\u00e9llo\",\"client_id\":\"c1\"}", &req, &err),
        0);
    assert_int_equal(req.type, CHAT_REQ_MESSAGE);
    assert_int_equal(req.text_len, 6);
    assert_memory_equal(req.text, "h\xc3\xa9llo", 6);
    assert_int_equal(req.client_id_len, 2);
    chat_req_free(&req);
    assert_int_equal(parse("{\"type\":\"typing\"}", &req, &err), 0);
    assert_int_equal(req.type, CHAT_REQ_TYPING);
    chat_req_free(&req);
}

static void test_bad_frames(void **state)
{
    (void)state;
    expect_error("", "bad_request");
    expect_error("{", "bad_request");
    expect_error("[1,2]", "bad_request");
    expect_error("\"message\"", "bad_request");
    expect_error("{\"text\":\"hi\"}", "bad_request");
    expect_error("{\"type\":7}", "bad_request");
    expect_error("{\"type\":\"shout\"}", "bad_request");
    expect_error("{\"type\":\"message\"}", "bad_request");
    expect_error("{\"type\":\"message\",\"text\":5}", "bad_request");
    expect_error("{\"type\":\"message\",\"text\":\"\"}", "bad_request");
    expect_error("{\"type\":\"message\",\"text\":\"a\\u0000b\"}", "bad_request");
    expect_error("{\"type\":\"message\",\"text\":\"\\ud800\"}", "bad_request");
    expect_error("{\"type\":\"message\",\"text\":\"a\",\"client_id\":{}}", "bad_request");
    char big_id[200];
    snprintf(big_id, sizeof big_id, "{\"type\":\"message\",\"text\":\"a\",\"client_id\":\"%065d\"}",
             0);
    expect_error(big_id, "bad_request");
}

static void test_length_counts_code_points(void **state)
{
    (void)state;
    /* 4000 three-byte characters (12000 bytes) are fine, 4001 are too long */
    size_t n = 4001;
    char *s = malloc(n * 3 + 64);
    char *p = s + sprintf(s, "{\"type\":\"message\",\"text\":\"");
    for (size_t i = 0; i < n; i++) {
        memcpy(p, "\xe2\x82\xac", 3);
        p += 3;
    }
    strcpy(p, "\"}");
    expect_error(s, "too_long");
    /* drop one character */
    memmove(p - 3, p, 3);
    struct chat_req req;
    struct chat_proto_err err;
    assert_int_equal(parse(s, &req, &err), 0);
    assert_int_equal(req.text_len, 12000);
    chat_req_free(&req);
    free(s);
}

static void test_encoded_message_round_trips(void **state)
{
    (void)state;
    const char *text = "quote \" backslash \\ newline \n tab \t <b>&</b> \x01";
    struct chat_frame *f = chat_proto_message(42, "cid", 3, "lobby", "ann@example.com", "Ann \"A\"",
                                              text, strlen(text), 1700000000123);
    assert_int_equal(f->kind, CHAT_FRAME_MESSAGE);
    cJSON *j = cJSON_ParseWithLength((const char *)f->payload, f->len);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "type")->valuestring, "message");
    assert_string_equal(cJSON_GetObjectItem(j, "id")->valuestring, "42");
    assert_string_equal(cJSON_GetObjectItem(j, "client_id")->valuestring, "cid");
    assert_string_equal(cJSON_GetObjectItem(j, "text")->valuestring, text);
    assert_true(cJSON_GetObjectItem(j, "ts")->valuedouble == 1700000000123.0);
    cJSON *user = cJSON_GetObjectItem(j, "user");
    assert_string_equal(cJSON_GetObjectItem(user, "name")->valuestring, "Ann \"A\"");
    cJSON_Delete(j);
    free(f);

    f = chat_proto_message(1, NULL, 0, "lobby", "a@b.c", "A", "x", 1, 0);
    j = cJSON_ParseWithLength((const char *)f->payload, f->len);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "client_id")));
    cJSON_Delete(j);
    free(f);
}

static void test_welcome_lists_members(void **state)
{
    (void)state;
    struct chat_rooms *reg = chat_rooms_new(4, 8);
    struct chat_room *r = chat_rooms_get(reg, "lobby");
    bool is_new;
    struct chat_member *a = chat_room_member_add(r, "ann@example.com", "Ann", &is_new);
    struct chat_member *b = chat_room_member_add(r, "bob@example.com", "Bob", &is_new);
    struct chat_frame *f = chat_proto_welcome(r, "bob@example.com", "Bob");
    cJSON *j = cJSON_ParseWithLength((const char *)f->payload, f->len);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "room")->valuestring, "lobby");
    cJSON *m = cJSON_GetObjectItem(j, "members");
    assert_int_equal(cJSON_GetArraySize(m), 2);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(m, 0), "email")->valuestring,
                        "ann@example.com");
    cJSON_Delete(j);
    free(f);
    chat_room_member_release(r, a);
    chat_member_free(a);
    chat_room_member_release(r, b);
    chat_member_free(b);
    chat_rooms_free(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_message),
        cmocka_unit_test(test_bad_frames),
        cmocka_unit_test(test_length_counts_code_points),
        cmocka_unit_test(test_encoded_message_round_trips),
        cmocka_unit_test(test_welcome_lists_members),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
