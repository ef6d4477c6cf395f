#include "wsframe.h"

size_t chat_wsframe_header_len(uint64_t len, bool masked)
{
    size_t n = len < 126 ? 2 : len < 65536 ? 4 : 10;
    return masked ? n + 4 : n;
}

size_t chat_wsframe_encode(unsigned char *out, bool fin, unsigned opcode, uint64_t len,
                           const uint8_t *mask)
{
    if (len > CHAT_WS_LEN_MAX)
        return 0;
    size_t n = 2;
    out[0] = (unsigned char)((fin ? 0x80 : 0) | (opcode & 0x0f));
    unsigned char mbit = mask ? 0x80 : 0;
    if (len < 126) {
        out[1] = (unsigned char)(mbit | len);
    } else if (len < 65536) {
        out[1] = (unsigned char)(mbit | 126);
        out[2] = (unsigned char)(len >> 8);
        out[3] = (unsigned char)len;
        n = 4;
    } else {
        out[1] = (unsigned char)(mbit | 127);
        for (unsigned i = 0; i < 8; i++)
            out[2 + i] = (unsigned char)(len >> (56 - 8 * i));
        n = 10;
    }
    if (mask) {
        for (unsigned i = 0; i < 4; i++)
            out[n + i] = mask[i];
        n += 4;
    }
    return n;
}

int chat_wsframe_decode(const unsigned char *p, size_t n, struct chat_wsframe_hdr *h)
{
    if (n < 2)
        return 0;
    h->fin = (p[0] & 0x80) != 0;
    h->rsv = (uint8_t)((p[0] >> 4) & 7);
    h->opcode = p[0] & 0x0f;
    h->masked = (p[1] & 0x80) != 0;
    uint64_t len = p[1] & 0x7f;
    size_t off = 2;
    if (h->opcode & 8) {
        if (len > 125 || !h->fin)
            return -1;
    }
    if (len == 126) {
        if (n < 4)
            return 0;
        len = ((uint64_t)p[2] << 8) | p[3];
        off = 4;
    } else if (len == 127) {
        if (n < 10)
            return 0;
        if (p[2] & 0x80)
            return -1;
        len = 0;
        for (unsigned i = 0; i < 8; i++)
            len = (len << 8) | p[2 + i];
        off = 10;
    }
    if (h->masked) {
        if (n < off + 4)
            return 0;
        for (unsigned i = 0; i < 4; i++)
            h->mask[i] = p[off + i];
        off += 4;
    }
    h->payload_len = len;
    h->header_len = off;
    return (int)off;
}

void chat_wsframe_mask(unsigned char *p, size_t n, const uint8_t mask[4], uint64_t off)
{
    for (size_t i = 0; i < n; i++)
        p[i] ^= mask[(off + i) & 3];
}
