/* Latency histogram in the manner of HdrHistogram: log2 buckets split into linear
 * sub-buckets, so every recorded value keeps about 3% relative precision at any scale. */
#ifndef BENCH_HIST_H
#define BENCH_HIST_H

#include <stdint.h>
#include <stdio.h>

#define HIST_SUB_BITS 5 /* 32 sub-buckets per power of two: <= 3.1% relative error */
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS (64u * HIST_SUB)

struct hist {
    uint64_t count[HIST_BUCKETS];
    uint64_t total;
    uint64_t max;
};

void hist_record(struct hist *h, uint64_t v);
/* Representative value (middle of the bucket) of the q-quantile, 0 <= q <= 1. */
uint64_t hist_quantile(const struct hist *h, double q);
/* Writes the non-empty buckets as a JSON array of [index,count] pairs. */
void hist_write_json(const struct hist *h, FILE *f);
/* Adds the buckets of a JSON array written by hist_write_json; returns -1 if malformed. */
int hist_merge_json(struct hist *h, const char *s);

#endif
