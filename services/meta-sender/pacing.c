/*
 * pacing.c - one Meta account's pace (see meta_sender.h).
 *
 * A sliding window over the start times of the account's last requests,
 * not a token bucket: a bucket lets a full burst follow a full second, so
 * a receiver counting any 1-second window could see twice the rate. Here a
 * request may start only when fewer than `limit` requests started in the
 * last window_ms, which is 1000 ms plus a guard for the jitter between our
 * clock and Meta's (the same reasoning as the send budget's window guard,
 * ARCHITECTURE.md §11.3). Throttling answers (130429, 131056) halve the
 * factor applied to the configured rate; each second without one gives a
 * tenth back, so the account converges on what Meta accepts. That rule is
 * wa/meta_throttle.h's, shared with campaign-sender's send budget, which
 * reads the same state from meta_throttle (outcomes.c stores it).
 */
#include <math.h>
#include <string.h>

#include "meta_sender.h"

void ms_pace_init(ms_pace *p, double rate, int concurrency, int64_t window_ms)
{
    memset(p, 0, sizeof *p);
    p->rate = rate;
    bz_meta_throttle_init(&p->throttle);
    p->concurrency = concurrency > 0 ? concurrency : 1;
    p->window_ms = window_ms;
}

void ms_pace_set_rate(ms_pace *p, double rate)
{
    p->rate = rate;
}

int ms_pace_limit(const ms_pace *p, int64_t now_ms)
{
    double limit = floor(p->rate * bz_meta_throttle_factor(&p->throttle, now_ms));
    if (limit < 1)
        return 1;
    return limit > MS_PACE_MAX_PER_WINDOW ? MS_PACE_MAX_PER_WINDOW : (int)limit;
}

static void forget_old(ms_pace *p, int64_t now_ms)
{
    while (p->count && p->starts[p->head] <= now_ms - p->window_ms) {
        p->head = (p->head + 1) % MS_PACE_MAX_PER_WINDOW;
        p->count--;
    }
}

int ms_pace_room(ms_pace *p, int64_t now_ms)
{
    forget_old(p, now_ms);
    int by_rate = ms_pace_limit(p, now_ms) - (int)p->count;
    int by_concurrency = p->concurrency - p->in_flight;
    int room = by_rate < by_concurrency ? by_rate : by_concurrency;
    return room > 0 ? room : 0;
}

int64_t ms_pace_wait_ms(ms_pace *p, int64_t now_ms)
{
    if (ms_pace_room(p, now_ms) > 0 || !p->count)
        return 0;
    int64_t wait = p->starts[p->head] + p->window_ms - now_ms + 1;
    return wait > 0 ? wait : 1;
}

void ms_pace_started(ms_pace *p, int64_t now_ms)
{
    if (p->count == MS_PACE_MAX_PER_WINDOW) {
        p->head = (p->head + 1) % MS_PACE_MAX_PER_WINDOW;
        p->count--;
    }
    p->starts[(p->head + p->count) % MS_PACE_MAX_PER_WINDOW] = now_ms;
    p->count++;
    p->in_flight++;
}

void ms_pace_finished(ms_pace *p)
{
    if (p->in_flight > 0)
        p->in_flight--;
}

void ms_pace_throttled(ms_pace *p, int64_t now_ms)
{
    bz_meta_throttle_hit(&p->throttle, now_ms);
}
