/*
 * token_bucket.c - token-bucket rate limiting (see token_bucket.h).
 *
 * Refill is computed lazily from the time elapsed since the last call, so a
 * bucket costs nothing while idle. A clock that goes backwards (a caller
 * mixing clocks) never adds tokens.
 */
#include "token_bucket.h"

#include <math.h>

static void refill(bz_token_bucket *b, int64_t now_ms)
{
    if (now_ms > b->last_ms) {
        b->tokens += (double)(now_ms - b->last_ms) * b->rate / 1000.0;
        if (b->tokens > b->burst)
            b->tokens = b->burst;
        b->last_ms = now_ms;
    }
}

void bz_token_bucket_init(bz_token_bucket *b, double rate, double burst, int64_t now_ms)
{
    b->rate = rate > 0 ? rate : 1.0;
    b->burst = burst >= 1 ? burst : 1.0;
    b->tokens = b->burst;
    b->last_ms = now_ms;
}

void bz_token_bucket_set_rate(bz_token_bucket *b, double rate, double burst, int64_t now_ms)
{
    refill(b, now_ms);
    b->rate = rate > 0 ? rate : 1.0;
    b->burst = burst >= 1 ? burst : 1.0;
    if (b->tokens > b->burst)
        b->tokens = b->burst;
}

bool bz_token_bucket_try_take_n(bz_token_bucket *b, double n, int64_t now_ms)
{
    refill(b, now_ms);
    if (b->tokens + 1e-9 < n)
        return false;
    b->tokens -= n;
    return true;
}

bool bz_token_bucket_try_take(bz_token_bucket *b, int64_t now_ms)
{
    return bz_token_bucket_try_take_n(b, 1.0, now_ms);
}

int64_t bz_token_bucket_wait_ms(bz_token_bucket *b, int64_t now_ms)
{
    refill(b, now_ms);
    if (b->tokens + 1e-9 >= 1.0)
        return 0;
    return (int64_t)ceil((1.0 - b->tokens) * 1000.0 / b->rate);
}
