#include "hist.h"

#include <stdlib.h>

static unsigned hist_index(uint64_t v)
{
    if (v < HIST_SUB)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* e >= HIST_SUB_BITS */
    unsigned shift = e - HIST_SUB_BITS;
    unsigned sub = (unsigned)(v >> shift) & (HIST_SUB - 1u);
    return (shift + 1u) * HIST_SUB + sub;
}

static uint64_t hist_lower(unsigned i)
{
    if (i < HIST_SUB)
        return i;
    unsigned shift = i / HIST_SUB - 1u;
    uint64_t sub = i % HIST_SUB;
    return (HIST_SUB + sub) << shift;
}

void hist_record(struct hist *h, uint64_t v)
{
    unsigned i = hist_index(v);
    if (i >= HIST_BUCKETS)
        i = HIST_BUCKETS - 1u;
    h->count[i]++;
    h->total++;
    if (v > h->max)
        h->max = v;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
    if (h->total == 0)
        return 0;
    uint64_t want = (uint64_t)((double)h->total * q);
    if (want >= h->total)
        want = h->total - 1u;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->count[i];
        if (seen > want) {
            uint64_t lo = hist_lower(i);
            uint64_t hi = i + 1u < HIST_BUCKETS ? hist_lower(i + 1u) : lo;
            uint64_t mid = lo + (hi - lo) / 2u;
            return mid > h->max ? h->max : mid;
        }
    }
    return h->max;
}

void hist_write_json(const struct hist *h, FILE *f)
{
    int first = 1;
    fputc('[', f);
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        if (!h->count[i])
            continue;
        fprintf(f, "%s[%u,%llu]", first ? "" : ",", i, (unsigned long long)h->count[i]);
        first = 0;
    }
    fputc(']', f);
}

int hist_merge_json(struct hist *h, const char *s)
{
    if (*s++ != '[')
        return -1;
    while (*s == '[') {
        char *end;
        unsigned long i = strtoul(s + 1, &end, 10);
        if (*end != ',' || i >= HIST_BUCKETS)
            return -1;
        unsigned long long c = strtoull(end + 1, &end, 10);
        if (*end != ']')
            return -1;
        h->count[i] += c;
        h->total += c;
        uint64_t hi =
            i + 1u < HIST_BUCKETS ? hist_lower((unsigned)i + 1u) : hist_lower((unsigned)i);
        if (c && hi > h->max)
            h->max = hi;
        s = end + 1;
        if (*s == ',')
            s++;
    }
    return *s == ']' ? 0 : -1;
}
