/*
 * ratelimit.h - the send-time limits of one account or one workspace.
 *
 * A limit "L per period P" becomes a token bucket refilling at L/P tokens
 * per second whose capacity is only what that rate earns in the smoothing
 * interval (at least one token). Sends are therefore paced evenly: with the
 * seeds' defaults, 60/min and 1000/h, the tighter 1000/h paces one message
 * every 3.6 s, and no window of any length ever holds more than its share
 * plus that small capacity. Limits come from the account's or workspace's
 * metadata ("rate_limits": {"per_second": 20, "per_minute": 0, ...}; 0 means
 * no limit of that period; an absent key takes the configured default) and
 * an account's per-second rate never exceeds the configured maximum
 * (Meta's 80/s tier by default).
 */
#ifndef CMP_RATELIMIT_H
#define CMP_RATELIMIT_H

#include <stdint.h>

#include "core/token_bucket.h"

typedef struct cmp_limits {
    double per_second, per_minute, per_hour; /* 0 = none */
} cmp_limits;

typedef struct cmp_limiter {
    cmp_limits limits;
    bz_token_bucket buckets[3];
    int active[3];
} cmp_limiter;

/* Limits from a metadata JSON text (NULL or unparsable: all defaults).
 * max_per_second > 0 caps the per-second rate (and stands in for it when
 * no per-second limit is set). */
cmp_limits cmp_limits_from_metadata(const char *metadata_json, const cmp_limits *defaults,
                                    double max_per_second);

/* (Re)configure; buckets whose rate did not change keep their tokens. */
void cmp_limiter_configure(cmp_limiter *l, const cmp_limits *limits, double smoothing_s,
                           int64_t now_ms);

/* Whole tokens available in every bucket now (INT64_MAX/2 without limits). */
int64_t cmp_limiter_available(cmp_limiter *l, int64_t now_ms);

/* Milliseconds until every bucket holds a token. */
int64_t cmp_limiter_wait_ms(cmp_limiter *l, int64_t now_ms);

/* Spend n tokens from every bucket (n <= available). */
void cmp_limiter_take(cmp_limiter *l, int64_t n, int64_t now_ms);

#endif
