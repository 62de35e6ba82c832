/*
 * token_bucket.h - a token-bucket rate limiter driven by a caller's clock.
 *
 * The bucket holds at most `burst` tokens and refills continuously at `rate`
 * tokens per second. Taking a token succeeds when at least one whole token
 * is present; otherwise bz_token_bucket_wait_ms says how long until one will
 * be. Time is passed in (monotonic milliseconds, e.g. bz_monotonic_ms()), so
 * callers and tests decide what "now" is and nothing here sleeps.
 *
 * A bucket is plain data with no lock: one thread owns it, or the caller
 * serializes access. Used by the webhook dispatcher (per endpoint) and the
 * campaign sender (per account and per workspace).
 */
#ifndef BZ_TOKEN_BUCKET_H
#define BZ_TOKEN_BUCKET_H

#include <stdbool.h>
#include <stdint.h>

typedef struct bz_token_bucket {
    double rate;      /* tokens per second, > 0 */
    double burst;     /* capacity, >= 1 */
    double tokens;    /* current fill */
    int64_t last_ms;  /* when tokens was last brought up to date */
} bz_token_bucket;

/* Start full at now_ms. rate <= 0 is treated as 1 token/s, burst < 1 as 1. */
void bz_token_bucket_init(bz_token_bucket *b, double rate, double burst, int64_t now_ms);

/* Change rate and burst, keeping the tokens already earned (capped at the
 * new burst). */
void bz_token_bucket_set_rate(bz_token_bucket *b, double rate, double burst, int64_t now_ms);

/* Take one token if there is one: true when taken. */
bool bz_token_bucket_try_take(bz_token_bucket *b, int64_t now_ms);

/* Take n tokens if all are there (n <= burst): true when taken. */
bool bz_token_bucket_try_take_n(bz_token_bucket *b, double n, int64_t now_ms);

/* Milliseconds until one token is available: 0 when one is available now. */
int64_t bz_token_bucket_wait_ms(bz_token_bucket *b, int64_t now_ms);

#endif
