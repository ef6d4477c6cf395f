/* WebSocket frame headers (RFC 6455 §5.2): encoding the headers of the server's unmasked
 * frames (conn.c batches several frames into one write) and decoding client frame headers.
 * Pure functions, no state: the incremental scanner of the raw byte stream is rawguard.c. */
#ifndef CHAT_WSFRAME_H
#define CHAT_WSFRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Opcodes (RFC 6455 §5.2, §11.8). */
#define CHAT_WS_OP_CONT 0x0
#define CHAT_WS_OP_TEXT 0x1
#define CHAT_WS_OP_BINARY 0x2
#define CHAT_WS_OP_CLOSE 0x8
#define CHAT_WS_OP_PING 0x9
#define CHAT_WS_OP_PONG 0xa

/* Longest header: 2 bytes, 8 bytes of extended length, 4 bytes of mask key. */
#define CHAT_WS_HEADER_MAX 14
/* Largest payload length a header can carry (§5.2: the 64-bit length's top bit is 0). */
#define CHAT_WS_LEN_MAX 0x7fffffffffffffffull

struct chat_wsframe_hdr {
    bool fin;
    uint8_t rsv;    /* the RSV1..3 bits, 0..7 */
    uint8_t opcode; /* 0..15 */
    bool masked;
    uint8_t mask[4];      /* valid when masked */
    uint64_t payload_len; /* <= CHAT_WS_LEN_MAX */
    size_t header_len;    /* 2..14 bytes */
};

/* Bytes the header of a frame with len payload bytes takes: 2 (len < 126), 4 (< 65536) or
 * 10, plus 4 when masked. len must be <= CHAT_WS_LEN_MAX. */
size_t chat_wsframe_header_len(uint64_t len, bool masked);

/* Writes the header of one frame into out (room for CHAT_WS_HEADER_MAX bytes): FIN bit,
 * opcode (0..15), the shortest length encoding (§5.2: "the minimal number of bytes MUST be
 * used"), and the mask key if mask is not NULL. Returns the bytes written, 0 if len is over
 * CHAT_WS_LEN_MAX. */
size_t chat_wsframe_encode(unsigned char *out, bool fin, unsigned opcode, uint64_t len,
                           const uint8_t *mask);

/* Decodes the header at [p, p+n). Returns the header's length (and fills h), 0 when more
 * bytes are needed, -1 when no valid frame can start here: a 64-bit length with its top bit
 * set (§5.2), a control frame (opcode >= 8) longer than 125 bytes or fragmented (§5.5). */
int chat_wsframe_decode(const unsigned char *p, size_t n, struct chat_wsframe_hdr *h);

/* XORs [p, p+n) with the mask key, starting at payload offset off (§5.3). */
void chat_wsframe_mask(unsigned char *p, size_t n, const uint8_t mask[4], uint64_t off);

#endif
