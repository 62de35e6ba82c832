/*
 * meta_throttle.h - how fast a Meta account may go after Meta throttled it
 * (ARCHITECTURE.md §12.1 "The pace", §11.3), as a factor of its configured
 * rate, kept once for the two services that pace it.
 *
 * A throttling answer (130429 throughput, 131056 pair rate, and the other
 * rate limits meta_graph.h names THROTTLED) halves the factor, never below
 * BZ_META_THROTTLE_FLOOR; each whole second without one gives
 * BZ_META_THROTTLE_STEP back, up to 1. So the account converges on what
 * Meta accepts, and a quiet account is back at full pace at most nine
 * seconds after its last throttle.
 *
 * The state is only (factor just after the last throttle, when): the
 * factor at any later moment follows from the rule, so meta-sender can
 * store it in PostgreSQL (meta_throttle, migration 0036) once per
 * throttle and every reader (campaign-sender's send budget, blazzctl)
 * derives the same recovered factor on PostgreSQL's clock without being
 * told about each second of recovery. meta-sender applies it to its
 * request pace (pacing.c), campaign-sender to the account's per-second and
 * per-minute release limits (budget.c).
 */
#ifndef BZ_WA_META_THROTTLE_H
#define BZ_WA_META_THROTTLE_H

#include <stdint.h>

#define BZ_META_THROTTLE_FLOOR 0.1
#define BZ_META_THROTTLE_STEP 0.1
#define BZ_META_THROTTLE_STEP_MS 1000

typedef struct bz_meta_throttle {
    double factor;    /* just after the last throttle; 1 when never throttled */
    int64_t since_ms; /* when that was, on the caller's clock */
} bz_meta_throttle;

/* Never throttled: factor 1. */
void bz_meta_throttle_init(bz_meta_throttle *t);

/* The factor at now_ms (same clock as since_ms): recovered by a step per
 * whole second since the last throttle, at most 1. */
double bz_meta_throttle_factor(const bz_meta_throttle *t, int64_t now_ms);

/* Meta throttled the account at now_ms: half the factor it had then. */
void bz_meta_throttle_hit(bz_meta_throttle *t, int64_t now_ms);

#endif
