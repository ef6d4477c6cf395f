/* Token bucket rate limiter (per connection), in milli-tokens to stay integer-only. */
#ifndef CHAT_RATELIMIT_H
#define CHAT_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct chat_bucket {
    int64_t last_ms; /* monotonic time of the last refill */
    int64_t milli;   /* available tokens x 1000 */
};

/* Starts full (burst tokens) at now_ms. */
void chat_bucket_init(struct chat_bucket *b, int64_t now_ms, long long burst);

/* Refills at rate tokens/s up to burst, then takes one token. Returns false (and takes
 * nothing) when the bucket is empty. A clock going backwards refills nothing. */
bool chat_bucket_take(struct chat_bucket *b, int64_t now_ms, long long rate, long long burst);

#endif
