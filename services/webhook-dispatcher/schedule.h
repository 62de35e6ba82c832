/*
 * schedule.h - the retry schedule: when attempt k of a delivery is due.
 *
 * A schedule is a list of delays written like "0,5s,5m,30m,2h,5h,10h,10h"
 * (units ms, s, m, h; a bare number is seconds). Entry 0 is the delay of the
 * first attempt (normally 0: immediately); after k failed attempts the next
 * one waits entry k. A delivery therefore gets at most `count` attempts:
 * after `count` failures it is exhausted (dead-lettered). Each delay gets
 * random jitter of +-jitter (a fraction), and never less than what the
 * receiver asked for with Retry-After.
 */
#ifndef WH_SCHEDULE_H
#define WH_SCHEDULE_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define WH_SCHEDULE_MAX 32

typedef struct wh_schedule {
    int64_t delay_ms[WH_SCHEDULE_MAX];
    size_t count;
    double jitter; /* 0 .. 1 */
} wh_schedule;

/* Parse text into s (jitter is set separately). BZ_ERR_CONFIG on a bad
 * entry, an empty list or more than WH_SCHEDULE_MAX entries. */
bz_status wh_schedule_parse(const char *text, wh_schedule *s, bz_error *err);

/* Delay before the next attempt after `failures` failed attempts
 * (failures >= 1 and not exhausted). rand01 in [0, 1) drives the jitter;
 * retry_after_ms (-1 = none) is a lower bound. */
int64_t wh_schedule_delay_ms(const wh_schedule *s, int failures, double rand01,
                                int64_t retry_after_ms);

#endif
