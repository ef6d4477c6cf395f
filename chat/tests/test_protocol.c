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
    chat_req_free(&req);
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
    struct chat_frame *f = chat_proto_message(7, 42, "cid", 3, "lobby", "ann-id", "Ann \"A\"", text,
                                              strlen(text), 1700000000123);
    assert_int_equal(f->kind, CHAT_FRAME_MESSAGE);
    cJSON *j = cJSON_ParseWithLength((const char *)f->payload, f->len);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "type")->valuestring, "message");
    assert_string_equal(cJSON_GetObjectItem(j, "id")->valuestring, "7-42");
    assert_true(cJSON_GetObjectItem(j, "seq")->valuedouble == 42.0);
    assert_string_equal(cJSON_GetObjectItem(j, "client_id")->valuestring, "cid");
    assert_string_equal(cJSON_GetObjectItem(j, "text")->valuestring, text);
    assert_true(cJSON_GetObjectItem(j, "ts")->valuedouble == 1700000000123.0);
    cJSON *user = cJSON_GetObjectItem(j, "user");
    assert_string_equal(cJSON_GetObjectItem(user, "name")->valuestring, "Ann \"A\"");
    assert_string_equal(cJSON_GetObjectItem(user, "id")->valuestring, "ann-id");
    assert_int_equal(cJSON_GetArraySize(user), 2); /* no email */
    cJSON_Delete(j);
    free(f);

    f = chat_proto_message(7, 1, NULL, 0, "lobby", "a@b.c", "A", "x", 1, 0);
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
    struct chat_member *a = chat_room_member_add(r, "ann-id", "Ann", &is_new);
    struct chat_member *b = chat_room_member_add(r, "bob-id", "Bob", &is_new);
    struct chat_frame *f = chat_proto_welcome(r, "bob-id", "bob@example.com", "Bob");
    cJSON *j = cJSON_ParseWithLength((const char *)f->payload, f->len);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "room")->valuestring, "lobby");
    cJSON *m = cJSON_GetObjectItem(j, "members");
    assert_int_equal(cJSON_GetArraySize(m), 2);
    /* others are id and name only, never an email; the reader's own has its email */
    cJSON *m0 = cJSON_GetArrayItem(m, 0);
    assert_string_equal(cJSON_GetObjectItem(m0, "id")->valuestring, "ann-id");
    assert_string_equal(cJSON_GetObjectItem(m0, "name")->valuestring, "Ann");
    assert_int_equal(cJSON_GetArraySize(m0), 2);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetArrayItem(m, 1)), 2);
    cJSON *you = cJSON_GetObjectItem(j, "you");
    assert_string_equal(cJSON_GetObjectItem(you, "id")->valuestring, "bob-id");
    assert_string_equal(cJSON_GetObjectItem(you, "email")->valuestring, "bob@example.com");
    assert_string_equal(cJSON_GetObjectItem(you, "name")->valuestring, "Bob");
    assert_null(strstr((const char *)f->payload, "ann@"));
    cJSON_Delete(j);
    free(f);
    chat_room_member_release(r, a);
    chat_member_free(a);
    chat_room_member_release(r, b);
    chat_member_free(b);
    chat_rooms_free(reg);
}

/* An error answering a message frame names its client_id when the client_id itself is valid,
 * so a client can tell which of its messages was refused. */
static void test_error_names_client_id(void **state)
{
    (void)state;
    static const struct {
        const char *frame, *code, *cid; /* cid NULL: no client_id to echo */
    } cases[] = {
        {"{\"type\":\"message\",\"text\":\"\",\"client_id\":\"c-1\"}", "bad_request", "c-1"},
        {"{\"type\":\"message\",\"client_id\":\"c-2\"}", "bad_request", "c-2"},
        {"{\"client_id\":\"c-3\",\"type\":\"message\",\"text\":7}", "bad_request", "c-3"},
        {"{\"type\":\"message\",\"text\":[\"a\"],\"client_id\":\"c\\\"4\"}", "bad_request", "c\"4"},
        {"{\"type\":\"message\",\"text\":\"\",\"client_id\":7}", "bad_request", NULL},
        {"{\"type\":\"message\",\"text\":\"\",\"client_id\":null}", "bad_request", NULL},
        {"{\"type\":\"dance\",\"client_id\":\"c-5\"}", "bad_request", NULL},
        {"not json", "bad_request", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct chat_req req;
        struct chat_proto_err err;
        assert_int_equal(parse(cases[i].frame, &req, &err), -1);
        assert_string_equal(err.code, cases[i].code);
        struct chat_frame *f =
            chat_proto_error(err.code, err.message, err.client_id, err.client_id_len);
        chat_req_free(&req);
        cJSON *j = cJSON_ParseWithLength((const char *)f->payload, f->len);
        assert_non_null(j);
        assert_string_equal(cJSON_GetObjectItem(j, "type")->valuestring, "error");
        assert_string_equal(cJSON_GetObjectItem(j, "code")->valuestring, cases[i].code);
        cJSON *cid = cJSON_GetObjectItem(j, "client_id");
        if (cases[i].cid)
            assert_string_equal(cJSON_GetStringValue(cid), cases[i].cid);
        else
            assert_null(cid);
        cJSON_Delete(j);
        free(f);
    }
    /* too long: 4001 characters */
    char *s = malloc(4200);
    int n = sprintf(s, "{\"client_id\":\"long-1\",\"type\":\"message\",\"text\":\"");
    memset(s + n, 'x', 4001);
    strcpy(s + n + 4001, "\"}");
    struct chat_req req;
    struct chat_proto_err err;
    assert_int_equal(parse(s, &req, &err), -1);
    assert_string_equal(err.code, "too_long");
    assert_int_equal(err.client_id_len, 6);
    assert_memory_equal(err.client_id, "long-1", 6);
    chat_req_free(&req);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_message),
        cmocka_unit_test(test_bad_frames),
        cmocka_unit_test(test_length_counts_code_points),
        cmocka_unit_test(test_encoded_message_round_trips),
        cmocka_unit_test(test_welcome_lists_members),
        cmocka_unit_test(test_error_names_client_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
