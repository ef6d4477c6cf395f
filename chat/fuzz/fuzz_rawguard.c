/* libFuzzer target, differential: the frame guard's request-head tracker (rawguard.c)
 * against the real libwebsockets 4.1.6 parser running in this process (tests/lwsdiff.c).
 * The input is a request head; the harness appends masked frames and an unmasked marker
 * frame and aborts when the two disagree: lws parsed the unmasked frame and the tracker
 * did not refuse the stream in time, or the tracker did not refuse and lws upgraded where
 * the tracker did not (or saw other frames), or the tracker's result depends on where
 * reads split the stream. An input whose first byte is odd is the whole head; otherwise
 * the rest is spliced into a good upgrade head after its request line (so the fuzzer
 * starts from heads lws upgrades). Each input costs three connections to 127.0.0.1
 * (about a millisecond each). Build and run: make fuzz. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lwsdiff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int started;
    if (!started) {
        if (lwsdiff_start() < 0) {
            fprintf(stderr, "fuzz_rawguard: cannot start the lws server on 127.0.0.1\n");
            abort();
        }
        started = 1;
    }
    static const char pre[] = "GET /ws HTTP/1.1\r\n";
    static const char post[] = "Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                               "Sec-WebSocket-Version: 13\r\n\r\n";
    static unsigned char buf[sizeof pre + 16384 + sizeof post];
    if (size < 1 || size > 16384)
        return 0;
    const unsigned char *p = data + 1;
    size_t n = size - 1;
    if (!(data[0] & 1)) {
        memcpy(buf, pre, sizeof pre - 1);
        memcpy(buf + sizeof pre - 1, data + 1, size - 1);
        memcpy(buf + sizeof pre - 1 + size - 1, post, sizeof post - 1);
        p = buf;
        n = sizeof pre - 1 + size - 1 + sizeof post - 1;
    }
    char why[256];
    if (!lwsdiff_check(p, n, false, NULL, why, sizeof why)) {
        fprintf(stderr, "fuzz_rawguard: tracker and lws disagree: %s\n", why);
        abort();
    }
    return 0;
}
