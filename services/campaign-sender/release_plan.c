/*
 * release_plan.c - the verdicts of the release rules on a batch of picked
 * logs (see release_plan.h): two arrays of reasons and a short summary of
 * the holds per reason.
 */
#include "release_plan.h"

#include <stdlib.h>
#include <string.h>

bz_status cmp_release_plan_init(cmp_release_plan *p, size_t n, bz_error *err)
{
    memset(p, 0, sizeof *p);
    p->n = n;
    p->quota = INT64_MAX;
    p->skip = calloc(n ? n : 1, sizeof *p->skip);
    p->hold = calloc(n ? n : 1, sizeof *p->hold);
    p->admitted = calloc(n ? n : 1, sizeof *p->admitted);
    if (p->skip && p->hold && p->admitted)
        return BZ_OK;
    cmp_release_plan_free(p);
    return bz_fail(err, BZ_ERR_NOMEM, "plan the release of %zu logs: out of memory", n);
}

void cmp_release_plan_free(cmp_release_plan *p)
{
    free(p->skip);
    free(p->hold);
    free(p->admitted);
    memset(p, 0, sizeof *p);
}

int cmp_release_plan_goes(const cmp_release_plan *p, size_t i)
{
    return !p->skip[i] && !p->hold[i];
}

size_t cmp_release_plan_going(const cmp_release_plan *p, const int64_t *values, size_t *rows,
                              int64_t *asked)
{
    size_t m = 0;
    for (size_t i = 0; i < p->n; i++)
        if (cmp_release_plan_goes(p, i)) {
            rows[m] = i;
            asked[m++] = values[i];
        }
    return m;
}

void cmp_release_plan_skip(cmp_release_plan *p, size_t i, const char *reason)
{
    if (cmp_release_plan_goes(p, i))
        p->skip[i] = reason;
}

/* The mark of a log deferred by the round's room. */
static const char later[] = "later";

int cmp_release_plan_admit(cmp_release_plan *p, size_t i)
{
    if (!cmp_release_plan_goes(p, i))
        return 0;
    if (p->admitted[i])
        return 1;
    if (p->nadmitted >= p->quota) {
        p->hold[i] = later;
        return 0;
    }
    p->admitted[i] = 1;
    p->nadmitted++;
    return 1;
}

void cmp_release_plan_admit_rest(cmp_release_plan *p)
{
    for (size_t i = 0; i < p->n; i++)
        cmp_release_plan_admit(p, i);
}

/* The summary of reason, added when new (the last one takes the rest). */
static cmp_plan_hold *summary_of(cmp_release_plan *p, const char *reason)
{
    for (size_t k = 0; k < p->nholds; k++)
        if (strcmp(p->holds[k].reason, reason) == 0)
            return &p->holds[k];
    if (p->nholds == CMP_PLAN_REASONS)
        return &p->holds[CMP_PLAN_REASONS - 1];
    cmp_plan_hold *h = &p->holds[p->nholds++];
    h->reason = reason;
    return h;
}

cmp_plan_hold *cmp_release_plan_hold(cmp_release_plan *p, size_t i, const char *reason,
                                     int64_t until_ms)
{
    cmp_plan_hold *h = summary_of(p, reason);
    if (!cmp_release_plan_goes(p, i))
        return h;
    p->hold[i] = reason;
    h->held++;
    if (until_ms > 0 && (h->until_ms == 0 || until_ms < h->until_ms))
        h->until_ms = until_ms;
    return h;
}

size_t cmp_release_plan_held(const cmp_release_plan *p, int64_t *until_ms)
{
    size_t held = 0;
    *until_ms = 0;
    for (size_t k = 0; k < p->nholds; k++) {
        const cmp_plan_hold *h = &p->holds[k];
        held += h->held;
        if (h->held && h->until_ms > 0 && (*until_ms == 0 || h->until_ms < *until_ms))
            *until_ms = h->until_ms;
    }
    return held;
}

const cmp_plan_hold *cmp_release_plan_main_hold(const cmp_release_plan *p)
{
    const cmp_plan_hold *top = NULL;
    for (size_t k = 0; k < p->nholds; k++)
        if (p->holds[k].held && (!top || p->holds[k].held > top->held))
            top = &p->holds[k];
    return top;
}
