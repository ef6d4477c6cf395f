/* The JSON protocol of /ws (docs/protocol.md): parsing client frames with every check a
 * hostile client needs, and encoding server frames into an lws-ready chat_frame. */
#ifndef CHAT_PROTOCOL_H
#define CHAT_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#include "cm_util.h"

struct chat_frame;
struct chat_room;

enum chat_req_type { CHAT_REQ_MESSAGE = 1, CHAT_REQ_TYPING = 2, CHAT_REQ_HISTORY = 3 };

struct chat_limits {
    size_t max_text_chars; /* code points */
    size_t max_client_id;  /* bytes */
};

/* A parsed client frame. Strings point into the owned cJSON tree (freed by
 * chat_req_free); text and client_id are valid UTF-8 without NUL bytes. */
struct chat_req {
    enum chat_req_type type;
    const char *text;
    size_t text_len;
    const char *client_id; /* NULL if absent */
    size_t client_id_len;
    /* CHAT_REQ_HISTORY (chat_proto_parse_history): 'b' (before) or 'a' (after), the seq
     * cursor (before: 1..2^53-1, after: 0..2^53-1) and the page size (1..100) */
    char hist_dir;
    uint64_t hist_cursor;
    unsigned hist_limit;
    void *root;
};

/* Error of a client frame: code is "bad_request" or "too_long", message a static English
 * sentence. Both are static strings. client_id is the client_id of a "message" frame when it
 * could be read (a string within the limit), to echo in the error frame, else NULL; it
 * points into req's tree like req->client_id. */
struct chat_proto_err {
    const char *code;
    const char *message;
    const char *client_id;
    size_t client_id_len;
};

/* Parses one complete client frame [buf, buf+len). Returns 0 and fills req, or -1 and fills
 * err. Either way, free req with chat_req_free (after using err->client_id). */
int chat_proto_parse(const char *buf, size_t len, const struct chat_limits *lim,
                     struct chat_req *req, struct chat_proto_err *err);
void chat_req_free(struct chat_req *req);
/* The `history` paging frame ({"type":"history","before"|"after":S,"limit":L}, docs/
 * protocol.md) of the parsed object root (a cJSON *): fills req->hist_*; -1 and err when a
 * value is missing, not an integer or out of range. Called by chat_proto_parse. */
int chat_proto_parse_history(const void *root, struct chat_req *req, struct chat_proto_err *err);

/* Frame builders. Each returns a new frame the caller owns. */
/* Users appear in frames as {"id": uid, "name": name}: never the email, which is personal
 * data (docs/protocol.md "Privacy"). Only welcome.you, the reader's own, also has "email". */
struct chat_frame *chat_proto_welcome(const struct chat_room *room, const char *uid,
                                      const char *email, const char *name);
/* type is "join", "leave" or "typing". */
struct chat_frame *chat_proto_user_event(const char *type, const char *uid, const char *name);
/* The message frame exactly as Redis's publish script stores it for room id rid (below):
 * {"type":"message","id":"<rid>-<seq>","seq":<seq> then chat_proto_message_tail. The
 * daemon lets the script assign seq; the unit tests and the fuzz target use this to check
 * the encoding of the same bytes. */
struct chat_frame *chat_proto_message(int64_t rid, uint64_t seq, const char *client_id,
                                      size_t client_id_len, const char *room, const char *uid,
                                      const char *name, const char *text, size_t text_len,
                                      int64_t ts_ms);
/* The stored message frame (docs/protocol.md) is built by Redis's publish script from
 * {"type":"message","id":"<rid>-<seq>","seq":<seq> and this tail, which holds everything
 * after the seq value: ,"client_id":..,"room":..,"user":{"id":uid,"name":..},"text":..,
 * "ts":<unix ms>}. Returns a malloc'd string of *len bytes (NUL-terminated). */
char *chat_proto_message_tail(const char *client_id, size_t client_id_len, const char *room,
                              const char *uid, const char *name, const char *text, size_t text_len,
                              int64_t ts_ms, size_t *len);
/* client_id (NULL if none) is echoed so the client knows which message was refused. */
struct chat_frame *chat_proto_error(const char *code, const char *message, const char *client_id,
                                    size_t client_id_len);

#endif
