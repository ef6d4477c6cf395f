#define _GNU_SOURCE /* memmem */
#include "protocol.h"
#include "chat.h"
#include "presence.h"
#include "room.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cm_log.h"
#include "cm_buf.h"
#include "cm_alloc.h"

static int fail(struct chat_proto_err *err, const struct chat_req *req, const char *code,
                const char *message)
{
    err->code = code;
    err->message = message;
    err->client_id = req->client_id; /* NULL until the client_id has been read and checked */
    err->client_id_len = req->client_id_len;
    return -1;
}

/* A cJSON string can hide a NUL written as \u0000 (strlen would then cut it short) and a
 * lone surrogate: re-check the decoded bytes so what we broadcast is exactly what was sent. */
static int string_field(const cJSON *item, const char **s, size_t *n)
{
    if (!cJSON_IsString(item) || !item->valuestring)
        return -1;
    *s = item->valuestring;
    *n = strlen(item->valuestring);
    if (!cm_utf8_valid(*s, *n))
        return -1;
    return 0;
}

int chat_proto_parse(const char *buf, size_t len, const struct chat_limits *lim,
                     struct chat_req *req, struct chat_proto_err *err)
{
    memset(req, 0, sizeof *req);
    /* the caller caps len (CHAT_MAX_MESSAGE_BYTES) before this, and lws has already
     * refused invalid UTF-8 with 1007; cJSON_ParseWithLength never reads past len */
    cJSON *root = cJSON_ParseWithLength(buf, len);
    if (!root)
        return fail(err, req, "bad_request", "frame is not valid JSON");
    req->root = root; /* freed by chat_req_free, on errors too */
    /* a NUL, raw or escaped as \u0000, would make cJSON's C strings silently shorter than
     * what the client sent (a literal backslash-u0000 text is refused too: harmless) */
    if (memchr(buf, '\0', len) || memmem(buf, len, "\\u0000", 6))
        return fail(err, req, "bad_request", "frame contains a NUL character");
    if (!cJSON_IsObject(root))
        return fail(err, req, "bad_request", "frame must be a JSON object");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "type");
    if (!cJSON_IsString(type) || !type->valuestring)
        return fail(err, req, "bad_request", "missing \"type\"");
    if (!strcmp(type->valuestring, "typing")) {
        req->type = CHAT_REQ_TYPING;
        return 0;
    }
    if (!strcmp(type->valuestring, "history"))
        return chat_proto_parse_history(root, req, err);
    if (strcmp(type->valuestring, "message") != 0)
        return fail(err, req, "bad_request", "unknown \"type\"");
    req->type = CHAT_REQ_MESSAGE;
    /* client_id first, so the errors about the text can name the message they refuse */
    const cJSON *cid = cJSON_GetObjectItemCaseSensitive(root, "client_id");
    if (cid && !cJSON_IsNull(cid)) {
        const char *s;
        size_t n;
        if (string_field(cid, &s, &n) < 0)
            return fail(err, req, "bad_request", "\"client_id\" must be a string");
        if (n > lim->max_client_id)
            return fail(err, req, "bad_request", "\"client_id\" is too long");
        req->client_id = s;
        req->client_id_len = n;
    }
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(root, "text");
    if (string_field(text, &req->text, &req->text_len) < 0)
        return fail(err, req, "bad_request", "\"text\" must be a string");
    if (req->text_len == 0)
        return fail(err, req, "bad_request", "\"text\" is empty");
    /* count code points, not bytes: 4000 characters of CJK are 12000 bytes */
    if (cm_utf8_count(req->text, req->text_len) > lim->max_text_chars)
        return fail(err, req, "too_long", "\"text\" is longer than the limit");
    return 0;
}

/* A seq cursor or a limit: a JSON number that is an integer in [min, max]. cJSON keeps
 * numbers as doubles: a fraction, an exponent beyond 2^53 (where doubles stop being exact),
 * NaN/Inf and anything that is not a number are refused, so "1e300", "-1", "2.5", "\"5\"" and
 * 9007199254740993 (which would round to 2^53) all get bad_request. */
static int int_field(const cJSON *item, double min, double max, uint64_t *out)
{
    if (!cJSON_IsNumber(item))
        return -1;
    double v = item->valuedouble;
    if (!(v >= min && v <= max) || v != (double)(int64_t)v)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

int chat_proto_parse_history(const void *root_, struct chat_req *req, struct chat_proto_err *err)
{
    const cJSON *root = root_;
    const cJSON *before = cJSON_GetObjectItemCaseSensitive(root, "before");
    const cJSON *after = cJSON_GetObjectItemCaseSensitive(root, "after");
    const cJSON *limit = cJSON_GetObjectItemCaseSensitive(root, "limit");
    req->type = CHAT_REQ_HISTORY;
    if ((before != NULL) == (after != NULL))
        return fail(err, req, "bad_request",
                    "history needs exactly one of \"before\" and \"after\"");
    /* 2^53 - 1 (CHAT_SEQ_MAX); before 0 would ask for nothing, as a client bug */
    if (before && int_field(before, 1, 9007199254740991.0, &req->hist_cursor) < 0)
        return fail(err, req, "bad_request", "\"before\" must be an integer from 1 to 2^53-1");
    if (after && int_field(after, 0, 9007199254740991.0, &req->hist_cursor) < 0)
        return fail(err, req, "bad_request", "\"after\" must be an integer from 0 to 2^53-1");
    req->hist_dir = before ? 'b' : 'a';
    uint64_t l = 50;
    if (limit && int_field(limit, 1, 100, &l) < 0)
        return fail(err, req, "bad_request", "\"limit\" must be an integer from 1 to 100");
    req->hist_limit = (unsigned)l;
    return 0;
}

void chat_req_free(struct chat_req *req)
{
    if (req->root)
        cJSON_Delete(req->root);
    req->root = NULL;
}

static void json_cstr(struct cm_buf *b, const char *s)
{
    cm_buf_append_json(b, s, strlen(s));
}

static void user_obj(struct cm_buf *b, const char *uid, const char *name)
{
    cm_buf_puts(b, "{\"id\":");
    json_cstr(b, uid);
    cm_buf_puts(b, ",\"name\":");
    json_cstr(b, name);
    cm_buf_puts(b, "}");
}

struct chat_frame *chat_frame_new(const void *payload, size_t len, enum chat_frame_kind kind)
{
    struct chat_frame *f = cm_xmalloc(sizeof *f + len);
    memset(f, 0, offsetof(struct chat_frame, payload));
    memcpy(f->payload, payload, len);
    f->len = len;
    f->kind = (uint8_t)kind;
    return f;
}

/* Builds the frame in place: the buffer starts with a zeroed struct chat_frame, so the JSON
 * lands at payload[] and is never copied again. */
static void frame_begin(struct cm_buf *b)
{
    static const struct chat_frame zero;
    cm_buf_init(b);
    cm_buf_append(b, &zero, offsetof(struct chat_frame, payload));
}

static struct chat_frame *frame_end(struct cm_buf *b, enum chat_frame_kind kind)
{
    size_t total;
    char *data = cm_buf_take(b, &total);
    /* shrink to fit: frames can sit in a ring for a while */
    struct chat_frame *f = cm_xrealloc(data, total + 1 < sizeof *f ? sizeof *f : total + 1);
    f->len = total - offsetof(struct chat_frame, payload);
    f->kind = (uint8_t)kind;
    return f;
}

struct chat_frame *chat_proto_welcome(const struct chat_room *room, const char *uid,
                                      const char *email, const char *name)
{
    struct cm_buf b;
    frame_begin(&b);
    cm_buf_puts(&b, "{\"type\":\"welcome\",\"room\":");
    json_cstr(&b, room->name);
    cm_buf_puts(&b, ",\"you\":{\"id\":");
    json_cstr(&b, uid);
    cm_buf_puts(&b, ",\"email\":");
    json_cstr(&b, email);
    cm_buf_puts(&b, ",\"name\":");
    json_cstr(&b, name);
    cm_buf_puts(&b, "}");
    cm_buf_puts(&b, ",\"members\":[");
    for (const struct chat_member *m = room->members; m; m = m->next) {
        if (m != room->members)
            cm_buf_puts(&b, ",");
        user_obj(&b, m->uid, m->name);
    }
    bool first = !room->members;
    chat_presence_welcome_members(room, &b, &first); /* the members other replicas have */
    cm_buf_puts(&b, "]}");
    return frame_end(&b, CHAT_FRAME_EVENT);
}

struct chat_frame *chat_proto_user_event(const char *type, const char *uid, const char *name)
{
    struct cm_buf b;
    frame_begin(&b);
    cm_buf_puts(&b, "{\"type\":");
    json_cstr(&b, type);
    cm_buf_puts(&b, ",\"user\":");
    user_obj(&b, uid, name);
    cm_buf_puts(&b, "}");
    return frame_end(&b, CHAT_FRAME_EVENT);
}

struct chat_frame *chat_proto_message(int64_t rid, uint64_t seq, const char *client_id,
                                      size_t client_id_len, const char *room, const char *uid,
                                      const char *name, const char *text, size_t text_len,
                                      int64_t ts_ms)
{
    size_t tail_len;
    char *tail = chat_proto_message_tail(client_id, client_id_len, room, uid, name, text, text_len,
                                         ts_ms, &tail_len);
    struct cm_buf b;
    frame_begin(&b);
    cm_buf_reserve(&b, tail_len + 96);
    cm_buf_printf(&b, "{\"type\":\"message\",\"id\":\"%" PRId64 "-%" PRIu64 "\",\"seq\":%" PRIu64,
                  rid, seq, seq);
    cm_buf_append(&b, tail, tail_len);
    free(tail);
    return frame_end(&b, CHAT_FRAME_MESSAGE);
}

struct chat_frame *chat_proto_error(const char *code, const char *message, const char *client_id,
                                    size_t client_id_len)
{
    struct cm_buf b;
    frame_begin(&b);
    cm_buf_puts(&b, "{\"type\":\"error\",\"code\":");
    json_cstr(&b, code);
    cm_buf_puts(&b, ",\"message\":");
    json_cstr(&b, message);
    if (client_id) {
        cm_buf_puts(&b, ",\"client_id\":");
        cm_buf_append_json(&b, client_id, client_id_len);
    }
    cm_buf_puts(&b, "}");
    return frame_end(&b, CHAT_FRAME_EVENT);
}

char *chat_proto_message_tail(const char *client_id, size_t client_id_len, const char *room,
                              const char *uid, const char *name, const char *text, size_t text_len,
                              int64_t ts_ms, size_t *len)
{
    struct cm_buf b;
    cm_buf_init(&b);
    cm_buf_reserve(&b, text_len + 256);
    cm_buf_puts(&b, ",\"client_id\":");
    if (client_id)
        cm_buf_append_json(&b, client_id, client_id_len);
    else
        cm_buf_puts(&b, "null");
    cm_buf_puts(&b, ",\"room\":");
    json_cstr(&b, room);
    cm_buf_puts(&b, ",\"user\":{\"id\":");
    json_cstr(&b, uid);
    cm_buf_puts(&b, ",\"name\":");
    json_cstr(&b, name);
    cm_buf_puts(&b, "},\"text\":");
    cm_buf_append_json(&b, text, text_len);
    cm_buf_printf(&b, ",\"ts\":%" PRId64 "}", ts_ms);
    return cm_buf_take(&b, len);
}
