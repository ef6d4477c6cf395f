/* libFuzzer target: client frame parsing (chat_proto_parse) and the raw frame-header tracker
 * (chat_wsscan_feed) must survive any input. Build with -DPARLEY_FUZZ=ON and clang. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "chat.h"
#include "protocol.h"
#include "rawguard.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct chat_limits lim = {4000, 64};
    struct chat_req req;
    struct chat_proto_err err;
    if (chat_proto_parse((const char *)data, size, &lim, &req, &err) == 0) {
        if (req.type == CHAT_REQ_MESSAGE) {
            struct chat_frame *f =
                chat_proto_message(1, 1, req.client_id, req.client_id_len, "lobby", "a@b.c", "A",
                                   req.text, req.text_len, 0);
            free(f);
        }
    } else {
        free(chat_proto_error(err.code, err.message, err.client_id, err.client_id_len));
    }
    chat_req_free(&req);
    struct chat_wsscan s;
    chat_wsscan_reset(&s);
    (void)chat_wsscan_feed(&s, data, size);
    return 0;
}
