/*
 * release_plan.h - when may a picked campaign message leave, and why not
 * now: the verdict of every rule of the release on each log of a batch,
 * in one place (ARCHITECTURE.md §11.3).
 *
 * A send round picks the next pending logs of a campaign and asks each
 * rule about them in turn: the opt-out (§12.6) skips a log for good, Meta's
 * messaging limit (reach.h, §12.10) holds it back until a user ages out of
 * the window, and so does a webjs number's warm-up (warmup.h, §11.3). A rule only sees the logs the rules before it let go, and a
 * verdict, once given, stands. What goes is released; a skipped log
 * becomes `skipped` with its reason; a held log stays pending, and the
 * plan keeps, per reason, how many were held and the earliest moment one
 * may go, which the round turns into the campaign's wait, its
 * metadata.held note (`blazzctl campaign status`) and the metric
 * blazz_campaign_sender_held_total{reason}.
 *
 * Reasons are static strings (the same text in campaign_logs.skip_reason,
 * metadata.held.reason and the metric's label); the plan does not copy
 * them.
 */
#ifndef CMP_RELEASE_PLAN_H
#define CMP_RELEASE_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* Distinct hold reasons a plan tells apart; more fall into the last. */
#define CMP_PLAN_REASONS 4

typedef struct cmp_plan_hold {
    const char *reason; /* static */
    size_t held;        /* logs it held */
    int64_t until_ms;   /* the earliest a log it held may go (budget clock) */
    const char *detail_name; /* static: a field the rule adds to metadata.held, or NULL */
    char detail[48];         /* its value */
} cmp_plan_hold;

typedef struct cmp_release_plan {
    size_t n;
    const char **skip; /* per log: why it never leaves, or NULL (heap, n) */
    const char **hold; /* per log: why it waits, or NULL (heap, n) */
    cmp_plan_hold holds[CMP_PLAN_REASONS];
    size_t nholds;
} cmp_release_plan;

/* A plan for n logs, every one going until a rule says otherwise. Free
 * with cmp_release_plan_free. */
bz_status cmp_release_plan_init(cmp_release_plan *p, size_t n, bz_error *err);
void cmp_release_plan_free(cmp_release_plan *p);

/* 1 when no rule has skipped or held log i. */
int cmp_release_plan_goes(const cmp_release_plan *p, size_t i);

/* Log i never leaves: it becomes skipped with reason. */
void cmp_release_plan_skip(cmp_release_plan *p, size_t i, const char *reason);

/* Log i waits for reason until until_ms (0: unknown, the next round asks
 * again). Returns the reason's summary, whose detail the rule may fill. */
cmp_plan_hold *cmp_release_plan_hold(cmp_release_plan *p, size_t i, const char *reason,
                                     int64_t until_ms);

/* Logs held, all reasons together, and the earliest moment one may go (0
 * when none is held or no rule knows). */
size_t cmp_release_plan_held(const cmp_release_plan *p, int64_t *until_ms);

/* The reason that held the most logs, or NULL when none was held. */
const cmp_plan_hold *cmp_release_plan_main_hold(const cmp_release_plan *p);

#endif
