/*
 * ratelimit.c - limits as token buckets (see ratelimit.h).
 */
#include "ratelimit.h"

#include <jansson.h>
#include <math.h>
#include <string.h>

static const double period_seconds[3] = {1.0, 60.0, 3600.0};

static double limit_from(json_t *obj, const char *key, double fallback)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    if (!v || !json_is_number(v) || json_number_value(v) < 0)
        return fallback;
    return json_number_value(v);
}

cmp_limits cmp_limits_from_metadata(const char *metadata_json, const cmp_limits *defaults,
                                    double max_per_second)
{
    cmp_limits out = *defaults;
    json_t *root = metadata_json ? json_loads(metadata_json, 0, NULL) : NULL;
    json_t *rl = root ? json_object_get(root, "rate_limits") : NULL;
    if (rl && json_is_object(rl)) {
        out.per_second = limit_from(rl, "per_second", out.per_second);
        out.per_minute = limit_from(rl, "per_minute", out.per_minute);
        out.per_hour = limit_from(rl, "per_hour", out.per_hour);
    }
    json_decref(root);
    if (max_per_second > 0 && (out.per_second <= 0 || out.per_second > max_per_second))
        out.per_second = max_per_second;
    return out;
}

static double limit_of(const cmp_limits *l, int i)
{
    return i == 0 ? l->per_second : i == 1 ? l->per_minute : l->per_hour;
}

void cmp_limiter_configure(cmp_limiter *l, const cmp_limits *limits, double smoothing_s,
                           int64_t now_ms)
{
    for (int i = 0; i < 3; i++) {
        double limit = limit_of(limits, i);
        double rate = limit / period_seconds[i];
        double burst = fmax(1.0, rate * smoothing_s);
        if (limit <= 0) {
            l->active[i] = 0;
        } else if (!l->active[i]) {
            bz_token_bucket_init(&l->buckets[i], rate, burst, now_ms);
            l->active[i] = 1;
        } else if (l->buckets[i].rate != rate || l->buckets[i].burst != burst) {
            bz_token_bucket_set_rate(&l->buckets[i], rate, burst, now_ms);
        }
    }
    l->limits = *limits;
}

int64_t cmp_limiter_available(cmp_limiter *l, int64_t now_ms)
{
    int64_t avail = INT64_MAX / 2;
    for (int i = 0; i < 3; i++) {
        if (!l->active[i])
            continue;
        bz_token_bucket_wait_ms(&l->buckets[i], now_ms); /* brings tokens up to date */
        int64_t whole = (int64_t)floor(l->buckets[i].tokens + 1e-9);
        if (whole < avail)
            avail = whole;
    }
    return avail < 0 ? 0 : avail;
}

int64_t cmp_limiter_wait_ms(cmp_limiter *l, int64_t now_ms)
{
    int64_t wait = 0;
    for (int i = 0; i < 3; i++) {
        if (!l->active[i])
            continue;
        int64_t w = bz_token_bucket_wait_ms(&l->buckets[i], now_ms);
        if (w > wait)
            wait = w;
    }
    return wait;
}

void cmp_limiter_take(cmp_limiter *l, int64_t n, int64_t now_ms)
{
    for (int i = 0; i < 3; i++)
        if (l->active[i] && n > 0 && !bz_token_bucket_try_take_n(&l->buckets[i], (double)n, now_ms))
            l->buckets[i].tokens = 0; /* n above what is left (a clock step): spend it all */
}
