/*
 * meta_throttle.c - the throttle factor's halving and recovery (see
 * meta_throttle.h). Recovery is computed from the time since the last
 * throttle rather than stepped by a timer, so any reader of the stored
 * state gets the same factor at the same moment.
 */
#include "wa/meta_throttle.h"

#include <math.h>

void bz_meta_throttle_init(bz_meta_throttle *t)
{
    t->factor = 1.0;
    t->since_ms = 0;
}

double bz_meta_throttle_factor(const bz_meta_throttle *t, int64_t now_ms)
{
    if (t->factor >= 1.0 || now_ms <= t->since_ms)
        return fmin(1.0, t->factor);
    int64_t steps = (now_ms - t->since_ms) / BZ_META_THROTTLE_STEP_MS;
    return fmin(1.0, t->factor + (double)steps * BZ_META_THROTTLE_STEP);
}

void bz_meta_throttle_hit(bz_meta_throttle *t, int64_t now_ms)
{
    t->factor = fmax(BZ_META_THROTTLE_FLOOR, bz_meta_throttle_factor(t, now_ms) * 0.5);
    t->since_ms = now_ms;
}
