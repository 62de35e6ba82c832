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
 * tenth back, so the account converges on what Meta accepts.
 */
#include <math.h>
#include <string.h>

#include "meta_sender.h"

#define FACTOR_MIN 0.1
#define FACTOR_STEP 0.1
#define RECOVER_EVERY_MS 1000

void ms_pace_init(ms_pace *p, double rate, int concurrency, int64_t window_ms, int64_t now_ms)
{
    memset(p, 0, sizeof *p);
    p->rate = rate;
    p->factor = 1.0;
    p->concurrency = concurrency > 0 ? concurrency : 1;
    p->window_ms = window_ms;
    p->last_change_ms = now_ms;
}

void ms_pace_set_rate(ms_pace *p, double rate)
{
    p->rate = rate;
}

int ms_pace_limit(const ms_pace *p)
{
    double limit = floor(p->rate * p->factor);
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

static void recover(ms_pace *p, int64_t now_ms)
{
    while (p->factor < 1.0 && now_ms - p->last_change_ms >= RECOVER_EVERY_MS) {
        p->factor = fmin(1.0, p->factor + FACTOR_STEP);
        p->last_change_ms += RECOVER_EVERY_MS;
    }
}

int ms_pace_room(ms_pace *p, int64_t now_ms)
{
    forget_old(p, now_ms);
    recover(p, now_ms);
    int by_rate = ms_pace_limit(p) - (int)p->count;
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
    p->factor = fmax(FACTOR_MIN, p->factor * 0.5);
    p->last_change_ms = now_ms;
}
