/* History requests (paging frames, the handshake's since) with hostile values, and the
 * message frame the publish script assembles from chat_proto_message_tail. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "chat.h"
#include "history.h"
#include "protocol.h"

static const struct chat_limits lim = {4000, 64};

static int parse(const char *s, struct chat_req *req, struct chat_proto_err *err)
{
    return chat_proto_parse(s, strlen(s), &lim, req, err);
}

static void test_valid_pages(void **state)
{
    (void)state;
    static const struct {
        const char *frame;
        char dir;
        uint64_t cursor;
        unsigned limit;
    } ok[] = {
        {"{\"type\":\"history\",\"before\":1}", 'b', 1, 50},
        {"{\"type\":\"history\",\"before\":300,\"limit\":100}", 'b', 300, 100},
        {"{\"type\":\"history\",\"after\":0,\"limit\":1}", 'a', 0, 1},
        {"{\"type\":\"history\",\"after\":9007199254740991}", 'a', 9007199254740991ULL, 50},
        {"{\"type\":\"history\",\"after\":7.0,\"limit\":2e1}", 'a', 7, 20},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        struct chat_req req;
        struct chat_proto_err err;
        assert_int_equal(parse(ok[i].frame, &req, &err), 0);
        assert_int_equal(req.type, CHAT_REQ_HISTORY);
        assert_int_equal(req.hist_dir, ok[i].dir);
        assert_true(req.hist_cursor == ok[i].cursor);
        assert_int_equal(req.hist_limit, ok[i].limit);
        chat_req_free(&req);
    }
}

static void test_hostile_pages(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{\"type\":\"history\"}",
        "{\"type\":\"history\",\"before\":0}",
        "{\"type\":\"history\",\"before\":-1}",
        "{\"type\":\"history\",\"after\":-1}",
        "{\"type\":\"history\",\"before\":1.5}",
        "{\"type\":\"history\",\"after\":1e300}",
        "{\"type\":\"history\",\"after\":-1e300}",
        "{\"type\":\"history\",\"after\":9007199254740992}",
        "{\"type\":\"history\",\"after\":9007199254740993}",
        "{\"type\":\"history\",\"before\":123456789012345678901234567890}",
        "{\"type\":\"history\",\"before\":\"5\"}",
        "{\"type\":\"history\",\"before\":null}",
        "{\"type\":\"history\",\"before\":true}",
        "{\"type\":\"history\",\"before\":[5]}",
        "{\"type\":\"history\",\"before\":{}}",
        "{\"type\":\"history\",\"before\":5,\"after\":1}",
        "{\"type\":\"history\",\"before\":5,\"limit\":0}",
        "{\"type\":\"history\",\"before\":5,\"limit\":101}",
        "{\"type\":\"history\",\"before\":5,\"limit\":-1}",
        "{\"type\":\"history\",\"before\":5,\"limit\":1.5}",
        "{\"type\":\"history\",\"before\":5,\"limit\":\"10\"}",
        "{\"type\":\"history\",\"before\":5,\"limit\":null}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct chat_req req;
        struct chat_proto_err err = {0};
        if (parse(bad[i], &req, &err) != -1)
            fail_msg("accepted: %s", bad[i]);
        assert_string_equal(err.code, "bad_request");
        chat_req_free(&req);
    }
}

static void test_since(void **state)
{
    (void)state;
    uint64_t v = 99;
    assert_int_equal(chat_history_parse_since("0", 1, &v), 0);
    assert_true(v == 0);
    assert_int_equal(chat_history_parse_since("9007199254740991", 16, &v), 0);
    assert_true(v == CHAT_SEQ_MAX);
    static const char *const bad[] = {
        "",    "-1", "+1", "1.5", "1e3", " 1", "1 ", "abc", "9007199254740992", "99999999999999999",
        "0x10"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (chat_history_parse_since(bad[i], strlen(bad[i]), &v) != -1)
            fail_msg("accepted since=%s", bad[i]);
}

/* The script builds p1 seq p2 seq p3: the result must be the documented frame, and JSON. */
static void test_stored_frame(void **state)
{
    (void)state;
    size_t n;
    char *tail = chat_proto_message_tail("c\"1", 3, "lobby", "u-1", "Ann \xc3\xa9", "a\nb<", 4,
                                         1700000000123LL, &n);
    assert_int_equal(strlen(tail), n);
    char frame[512];
    snprintf(frame, sizeof frame, "{\"type\":\"message\",\"id\":\"42-%d\",\"seq\":%d%s", 7, 7,
             tail);
    free(tail);
    cJSON *j = cJSON_Parse(frame);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "id")->valuestring, "42-7");
    assert_int_equal(cJSON_GetObjectItem(j, "seq")->valueint, 7);
    assert_string_equal(cJSON_GetObjectItem(j, "client_id")->valuestring, "c\"1");
    assert_string_equal(cJSON_GetObjectItem(j, "text")->valuestring, "a\nb<");
    cJSON *u = cJSON_GetObjectItem(j, "user");
    assert_string_equal(cJSON_GetObjectItem(u, "id")->valuestring, "u-1");
    assert_string_equal(cJSON_GetObjectItem(u, "name")->valuestring, "Ann \xc3\xa9");
    assert_null(cJSON_GetObjectItem(u, "email"));
    assert_true(cJSON_GetObjectItem(j, "ts")->valuedouble == 1700000000123.0);
    cJSON_Delete(j);
    /* the script's text names the keys and limits it is given */
    assert_non_null(strstr(chat_history_script, "PUBLISH"));
    assert_non_null(strstr(chat_history_script, "UNAVAILABLE"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_pages),
        cmocka_unit_test(test_hostile_pages),
        cmocka_unit_test(test_since),
        cmocka_unit_test(test_stored_frame),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
