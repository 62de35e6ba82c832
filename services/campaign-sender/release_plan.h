/*
 * release_plan.h - when may a picked campaign message leave, and why not
 * now: the verdict of every rule of the release on each log of a batch,
 * in one place (ARCHITECTURE.md §11.3).
 *
 * A send round picks the next pending logs of a campaign and asks each
 * rule about them in turn (send_round.c's plan_release): the opt-out
 * (§12.6) and, for a free-form campaign through a Meta account, the 24-hour
 * window (outside_window.h, §12.7) skip a log for good; Meta's pair rate
 * (pair.h), Meta's messaging limit (reach.h, §12.10) and a webjs number's
 * warm-up (warmup.h, §11.3) hold it back until it may go. A rule only sees
 * the logs the rules before it let go, and a verdict, once given, stands.
 * What goes is released; a skipped log becomes `skipped` with its reason
 * (blazz_campaign_sender_skipped_total{reason}); a held log stays pending,
 * and the plan keeps, per reason, how many were held and the earliest
 * moment one may go, which the round turns into the campaign's wait, its
 * metadata.held note (`blazzctl campaign status`) and the metric
 * blazz_campaign_sender_held_total{reason}. This file only keeps the
 * verdicts; the rules live in their own files.
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

/* Distinct hold reasons a plan tells apart, more than there are rules
 * (more would fall into the last). */
#define CMP_PLAN_REASONS 8

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
    unsigned char *admitted; /* per log: counted against quota (heap, n) */
    int64_t quota, nadmitted; /* the round's room (INT64_MAX: all) and how much it took */
    cmp_plan_hold holds[CMP_PLAN_REASONS];
    size_t nholds;
} cmp_release_plan;

/* A plan for n logs, every one going until a rule says otherwise, with
 * no quota. Free with cmp_release_plan_free. */
bz_status cmp_release_plan_init(cmp_release_plan *p, size_t n, bz_error *err);
void cmp_release_plan_free(cmp_release_plan *p);

/* 1 when no rule has skipped or held log i. */
int cmp_release_plan_goes(const cmp_release_plan *p, size_t i);

/* The logs no rule has skipped or held yet, in order, for the next rule to
 * ask about: rows[k] is one's index, asked[k] its values[rows[k]] (both
 * with room for p->n). Returns how many. */
size_t cmp_release_plan_going(const cmp_release_plan *p, const int64_t *values, size_t *rows,
                              int64_t *asked);

/* Log i never leaves: it becomes skipped with reason. */
void cmp_release_plan_skip(cmp_release_plan *p, size_t i, const char *reason);

/* The round's room: once quota logs are admitted, the others that would
 * go wait for a later round, which is no rule's verdict (not counted as
 * held). A rule that records whom it lets go admits each log, in order,
 * before it records it: 1 when log i is admitted, 0 when it was deferred.
 * The round admits the rest at the end (cmp_release_plan_admit_rest). */
int cmp_release_plan_admit(cmp_release_plan *p, size_t i);
void cmp_release_plan_admit_rest(cmp_release_plan *p);

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
