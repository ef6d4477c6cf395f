/* Enforces what libwebsockets 4.1.6 does not: RFC 6455 §5.1 says a server MUST close the
 * connection when a client frame is not masked, and lws 4.1.6 silently accepts unmasked
 * frames (lib/roles/ws/ops-ws.c only records this_frame_masked). lws exposes no per-frame
 * mask flag, so this module watches the raw bytes lws reads (recv() is interposed in
 * rawguard.c) with a small frame-header tracker per socket. */
#ifndef CHAT_RAWGUARD_H
#define CHAT_RAWGUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Tracker of one byte stream: HTTP request heads first (a keep-alive connection may send
 * several, pipelined or not), then, after the head that asks for "Upgrade: websocket",
 * WebSocket frame headers. A head ends at an empty line (CRLF or a bare LF, as lws accepts). */
struct chat_wsscan {
    uint64_t remain;       /* payload bytes of the current frame still to skip */
    uint8_t phase;         /* 0 = HTTP head, 1 = frames, 2 = violation seen (stops) */
    uint8_t linelen;       /* bytes in the current head line, CR not counted (saturates) */
    uint8_t hmatch;        /* prefix of "upgrade:" matched by this line, 0xff = no match */
    uint8_t vmatch;        /* prefix of "websocket" matched in the Upgrade value */
    bool upgrade;          /* this head has "Upgrade: ...websocket..." */
    uint8_t st;            /* frame header state */
    uint8_t need;          /* bytes left in the current header field */
    uint8_t opcode;        /* of the current frame */
    uint16_t controls;     /* control frames started since the interposer last looked */
    const char *violation; /* static reason once phase is 2 */
};

/* Feeds n bytes; returns true once a frame header violating RFC 6455 has been seen
 * (sticky): an unmasked client frame (§5.1), a control frame longer than 125 bytes
 * (§5.5; lws drops those without a close frame), a 64-bit length with its top bit set
 * (§5.2). s->violation then names it. */
bool chat_wsscan_feed(struct chat_wsscan *s, const unsigned char *p, size_t n);
void chat_wsscan_reset(struct chat_wsscan *s);

/* Per-socket registry used by the recv() interposer. */
void chat_rawguard_init(size_t max_fds);
void chat_rawguard_free(void);
/* New TCP connection on fd: start in HTTP phase. Only then: later heads on the same
 * connection are followed by the scanner itself. */
void chat_rawguard_reset(int fd);
/* fd is (or no longer is) an established WebSocket: violations then fail recv() after a
 * 1002 close frame is sent (conn is the struct chat_conn, used to note the reason). */
void chat_rawguard_attach(int fd, void *conn);
void chat_rawguard_detach(int fd);
/* True if an unmasked frame was seen on fd (e.g. before ESTABLISHED). */
bool chat_rawguard_violated(int fd);

#endif
