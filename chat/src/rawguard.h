/* Enforces what libwebsockets 4.1.6 does not: RFC 6455 §5.1 says a server MUST close the
 * connection when a client frame is not masked, and lws 4.1.6 silently accepts unmasked
 * frames (lib/roles/ws/ops-ws.c only records this_frame_masked). lws exposes no per-frame
 * mask flag, so this module watches the raw bytes lws reads (recv() is interposed in
 * rawguard.c) with a small request-head and frame-header tracker per accepted socket.
 *
 * The tracker must agree with lws on where a request head ends and on whether lws will
 * switch to WebSocket framing after it (else frames are looked for in the wrong place). It
 * follows lws 4.1.6's parser (lib/roles/http/parsers.c lws_parse(), the upgrade decision in
 * lib/roles/http/server/server.c lws_handshake_server()) on the heads a real client sends,
 * and refuses (fails closed) every head where the two could part: see docs/protocol.md,
 * "Framing guard". chat/tests/test_rawguard_lws.c and chat/fuzz/fuzz_rawguard.c compare
 * it with the real lws parser. */
#ifndef CHAT_RAWGUARD_H
#define CHAT_RAWGUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A frame announcing more payload than this is a violation: larger than any message the
 * daemon accepts (CHAT_MAX_MESSAGE_BYTES is at most 1 MiB), so only an attack or a
 * desynchronised tracker produces one; refusing it keeps the tracker from skipping. */
#define CHAT_WSSCAN_MAX_FRAME ((uint64_t)16 << 20)
/* Bytes of a header name kept for matching against lws's header-name table (its longest
 * entry, "access-control-request-headers:", has 31). */
#define CHAT_WSSCAN_NAME_MAX 32

/* Tracker of one byte stream: HTTP request heads first (a keep-alive connection may send
 * several, pipelined or not), then, after a head that lws upgrades, WebSocket frames.
 * Plain data: zero it with chat_wsscan_reset(); no allocation; O(1) per byte. */
struct chat_wsscan {
    uint64_t remain;                 /* payload bytes of the current frame still to skip */
    uint64_t fed;                    /* bytes fed so far */
    uint64_t viol_at;                /* index of the offending byte (a frame's: its first) */
    uint64_t frame_at;               /* index of the current frame's first byte */
    uint64_t frames;                 /* complete frames (header and payload) seen */
    uint32_t heads;                  /* complete request heads seen (the upgrading one included) */
    uint8_t phase;                   /* 0 = HTTP head, 1 = frames, 2 = violation seen (stops) */
    uint8_t hs;                      /* head parser state (rawguard.c enum head_state) */
    uint8_t hn;                      /* bytes in the current token (method, version, name, value) */
    uint8_t hkind;                   /* kind of the current header (enum hdr_kind) */
    uint8_t hval;                    /* value matcher state for Upgrade / Content-Length */
    uint8_t pct;                     /* %-escape: hex digits seen, and the value so far */
    bool upgrade;                    /* this head has "Upgrade: websocket" */
    bool upgrade_seen;               /* this head has an Upgrade header */
    uint8_t st;                      /* frame header state */
    uint8_t need;                    /* bytes left in the current header field */
    uint8_t opcode;                  /* of the current frame */
    uint16_t controls;               /* control frames started since the interposer looked */
    char name[CHAT_WSSCAN_NAME_MAX]; /* method / header name so far, lower case */
    const char *violation;           /* static reason once phase is 2 */
};

/* Feeds n bytes; returns true once the stream has broken a rule (sticky; s->violation
 * names it, s->viol_at says where: the offending head byte, or the first byte of the offending
 * frame). Frame rules (RFC 6455 §5.2, §5.5): an unmasked client
 * frame, RSV bits (no extension is negotiated), a reserved opcode, a fragmented or longer
 * than 125 byte control frame, a 64-bit length with its top bit set, a length over
 * CHAT_WSSCAN_MAX_FRAME. Head rules: anything outside the subset of RFC 9112 on which the
 * tracker provably agrees with lws 4.1.6 (docs/protocol.md lists it). */
bool chat_wsscan_feed(struct chat_wsscan *s, const unsigned char *p, size_t n);
void chat_wsscan_reset(struct chat_wsscan *s);

/* Per-socket registry used by the recv() interposer. Thread model: chat_rawguard_init()
 * is called once on the thread that will run lws_service() (LWS_MAX_SMP is 1: one service
 * thread), before any other thread exists; every other function, and the scanning of
 * recv(), happens only on that thread. recv() and close() calls from any other thread
 * pass straight through without touching the registry, so a Redis or MongoDB client's
 * sockets on its own thread are never judged. On the lws thread only fds registered with
 * chat_rawguard_reset() are scanned, and close() of a registered fd unregisters it before
 * the number can be reused. init aborts with a log line if the interposition is not in
 * effect (dlsym(RTLD_NEXT) fails, or lws would not call our recv). max_fds bounds the fd
 * numbers that can be registered (a larger fd is never scanned: the caller must size it to
 * RLIMIT_NOFILE). */
void chat_rawguard_init(size_t max_fds);
void chat_rawguard_free(void);
/* New TCP connection on fd, accepted by lws (LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED):
 * register it and start in HTTP phase. Later heads on the same connection are followed by
 * the tracker itself. */
void chat_rawguard_reset(int fd);
/* fd is (or no longer is) an established WebSocket: violations then fail recv() after a
 * 1002 close frame is sent (conn is the struct chat_conn, used to note the reason). */
void chat_rawguard_attach(int fd, void *conn);
void chat_rawguard_detach(int fd);
/* True if fd's stream broke a rule since its last chat_rawguard_reset() (also after the
 * fd was closed, until it is registered again), and for every fd beyond max_fds (fail
 * closed: conn.c refuses such an upgrade at ESTABLISHED). */
bool chat_rawguard_violated(int fd);
/* True while fd is registered (reset and not yet closed) on the calling thread's guard. */
bool chat_rawguard_registered(int fd);

#endif
