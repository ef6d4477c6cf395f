#include "ratelimit.h"

void chat_bucket_init(struct chat_bucket *b, int64_t now_ms, long long burst)
{
    b->last_ms = now_ms;
    b->milli = (int64_t)burst * 1000;
}

bool chat_bucket_take(struct chat_bucket *b, int64_t now_ms, long long rate, long long burst)
{
    int64_t cap = (int64_t)burst * 1000;
    int64_t dt = now_ms - b->last_ms;

    if (dt > 0) {
        /* rate tokens/s = rate milli-tokens/ms; clamp dt first so the product cannot overflow
         * after a very long idle period */
        if (dt > 1000000000)
            dt = 1000000000;
        b->milli += dt * (int64_t)rate;
        if (b->milli > cap)
            b->milli = cap;
        b->last_ms = now_ms;
    }
    if (b->milli < 1000)
        return false;
    b->milli -= 1000;
    return true;
}
