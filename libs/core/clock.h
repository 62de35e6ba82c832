/*
 * clock.h - time as the services need it: monotonic milliseconds for
 * deadlines and backoff, wall-clock milliseconds for event timestamps, and
 * a sleep that takes milliseconds.
 */
#ifndef BZ_CLOCK_H
#define BZ_CLOCK_H

#include <stdint.h>

/* Milliseconds on a clock that never jumps; only differences mean anything. */
int64_t bz_monotonic_ms(void);

/* Milliseconds since the Unix epoch (UTC). */
int64_t bz_wall_ms(void);

/* Sleep for ms milliseconds (returns early only on a signal). */
void bz_sleep_ms(int ms);

#endif
