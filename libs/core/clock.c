/*
 * clock.c - millisecond clocks (see clock.h).
 */
#include "clock.h"

#include <time.h>

static int64_t read_ms(clockid_t which)
{
    struct timespec ts;
    clock_gettime(which, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t bz_monotonic_ms(void)
{
    return read_ms(CLOCK_MONOTONIC);
}

int64_t bz_wall_ms(void)
{
    return read_ms(CLOCK_REALTIME);
}

void bz_sleep_ms(int ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}
