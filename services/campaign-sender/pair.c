/*
 * pair.c - the pair rate's buckets (see pair.h): a hash table from
 * (account, recipient) to the moment the bucket is full again, swept of
 * full buckets as it grows, and the rule that holds campaign logs whose
 * recipient's bucket is not full.
 */
#include "pair.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define NBUCKETS 4096
/* Sweep full buckets once the table holds twice what the last sweep left,
 * and never below this, so a sweep's cost is spread over the records. */
#define SWEEP_MIN 256

typedef struct pair {
    struct pair *next;
    int64_t account;
    int64_t full_ms; /* the bucket is full again from then on */
    char recipient[];
} pair;

struct cmp_pairs {
    cmp_pair_rate rate;
    pair *buckets[NBUCKETS];
    size_t n, sweep_at;
    int64_t seed_ms; /* while loading: a new recipient's bucket is full at this moment */
};

/* The bucket arithmetic, pure. full_ms: the moment the bucket is full
 * again (0 or the past: full now). */
static int64_t next_ms(const cmp_pair_rate *r, int64_t full_ms, cmp_pair_kind kind,
                       int64_t now_ms)
{
    if (r->interval_ms <= 0)
        return now_ms;
    int64_t at = kind == CMP_PAIR_AGENT ? full_ms - (r->burst - 1) * r->interval_ms : full_ms;
    return at > now_ms ? at : now_ms;
}

static int64_t after_release(const cmp_pair_rate *r, int64_t full_ms, int64_t at_ms)
{
    return (full_ms > at_ms ? full_ms : at_ms) + r->interval_ms;
}

cmp_pairs *cmp_pairs_new(cmp_pair_rate rate)
{
    cmp_pairs *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    if (rate.burst < 1)
        rate.burst = 1;
    p->rate = rate;
    p->sweep_at = SWEEP_MIN;
    return p;
}

static void drop_all(cmp_pairs *p)
{
    for (size_t i = 0; i < NBUCKETS; i++)
        while (p->buckets[i]) {
            pair *e = p->buckets[i];
            p->buckets[i] = e->next;
            free(e);
        }
    p->n = 0;
    p->sweep_at = SWEEP_MIN;
}

void cmp_pairs_free(cmp_pairs *p)
{
    if (!p)
        return;
    drop_all(p);
    free(p);
}

int64_t cmp_pairs_span_ms(const cmp_pairs *p)
{
    return p->rate.interval_ms > 0 ? p->rate.burst * p->rate.interval_ms : 0;
}

void cmp_pairs_reset(cmp_pairs *p, int64_t now_ms)
{
    drop_all(p);
    p->seed_ms = now_ms;
}

void cmp_pairs_loaded(cmp_pairs *p)
{
    p->seed_ms = 0;
}

static size_t slot_of(int64_t account, const char *recipient)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)account;
    for (const unsigned char *c = (const unsigned char *)recipient; *c; c++)
        h = (h ^ *c) * 1099511628211ull;
    return (size_t)(h % NBUCKETS);
}

static pair **find(cmp_pairs *p, int64_t account, const char *recipient)
{
    pair **e = &p->buckets[slot_of(account, recipient)];
    while (*e && ((*e)->account != account || strcmp((*e)->recipient, recipient) != 0))
        e = &(*e)->next;
    return e;
}

/* Drop the buckets full again at now_ms: they hold nothing a rule needs. */
static void sweep(cmp_pairs *p, int64_t now_ms)
{
    for (size_t i = 0; i < NBUCKETS; i++)
        for (pair **e = &p->buckets[i]; *e;) {
            if ((*e)->full_ms <= now_ms) {
                pair *gone = *e;
                *e = gone->next;
                free(gone);
                p->n--;
            } else {
                e = &(*e)->next;
            }
        }
    p->sweep_at = p->n * 2 > SWEEP_MIN ? p->n * 2 : SWEEP_MIN;
}

int cmp_pairs_record(cmp_pairs *p, int64_t account, const char *recipient, int64_t at_ms)
{
    if (p->rate.interval_ms <= 0 || !recipient || !*recipient)
        return 0;
    pair **e = find(p, account, recipient);
    if (!*e) {
        size_t len = strlen(recipient);
        pair *fresh = malloc(sizeof *fresh + len + 1);
        if (!fresh)
            return -1;
        fresh->next = NULL;
        fresh->account = account;
        fresh->full_ms = p->seed_ms;
        memcpy(fresh->recipient, recipient, len + 1);
        *e = fresh;
        p->n++;
    }
    (*e)->full_ms = after_release(&p->rate, (*e)->full_ms, at_ms);
    if (p->n >= p->sweep_at && !p->seed_ms)
        sweep(p, at_ms);
    return 0;
}

int64_t cmp_pairs_next(cmp_pairs *p, int64_t account, const char *recipient, cmp_pair_kind kind,
                       int64_t now_ms)
{
    if (p->rate.interval_ms <= 0 || !recipient || !*recipient)
        return now_ms;
    pair *e = *find(p, account, recipient);
    return e ? next_ms(&p->rate, e->full_ms, kind, now_ms) : now_ms;
}

typedef struct going {
    const char *recipient;
    size_t log;
} going;

static int by_recipient_then_log(const void *a, const void *b)
{
    const going *x = a, *y = b;
    int c = strcmp(x->recipient, y->recipient);
    return c ? c : (x->log > y->log) - (x->log < y->log);
}

bz_status cmp_pairs_apply(cmp_pairs *p, int64_t account, const char *const *recipients,
                          int64_t now_ms, cmp_release_plan *plan, bz_error *err)
{
    if (p->rate.interval_ms <= 0)
        return BZ_OK;
    going *g = calloc(plan->n ? plan->n : 1, sizeof *g);
    if (!g)
        return bz_fail(err, BZ_ERR_NOMEM, "pair rate of account %" PRId64 ": out of memory",
                       account);
    size_t ng = 0;
    for (size_t i = 0; i < plan->n; i++) {
        const char *r = recipients[i];
        if (!cmp_release_plan_goes(plan, i) || !r || !*r)
            continue;
        int64_t next = cmp_pairs_next(p, account, r, CMP_PAIR_CAMPAIGN, now_ms);
        if (next > now_ms)
            cmp_release_plan_hold(plan, i, CMP_PAIR_REASON, next);
        else
            g[ng++] = (going){r, i};
    }
    /* Two logs of the batch to one recipient (one campaign has one log per
     * contact, but a contact deleted and added again with the same phone is
     * a second one): the first goes, the next waits an interval. */
    if (ng > 1) {
        qsort(g, ng, sizeof *g, by_recipient_then_log);
        for (size_t k = 1; k < ng; k++)
            if (strcmp(g[k].recipient, g[k - 1].recipient) == 0)
                cmp_release_plan_hold(plan, g[k].log, CMP_PAIR_REASON,
                                      now_ms + p->rate.interval_ms);
    }
    free(g);
    return BZ_OK;
}
