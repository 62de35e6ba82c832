/*
 * test_pair_buckets.c - Meta's pair rate in campaign-sender
 * (services/campaign-sender/pair.h), without a database: an agent's
 * messages to one recipient go at once up to the burst and one per
 * interval beyond it; a campaign message waits for a full bucket, so it is
 * never closer than the interval to any message before it; two logs of a
 * batch to one recipient: the first goes; a loaded state is never more
 * generous than the truth, even for a recipient sent to at the limit for
 * longer than the span loaded; full buckets are forgotten.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "pair.h"

#define T0 1700000000000LL
#define INTERVAL 6000
#define BURST 45

static const cmp_pair_rate meta = {INTERVAL, BURST};

/* Release agents' messages to one recipient as soon as each may go,
 * starting at from_ms; returns when the last went. */
static int64_t agents_as_fast_as_allowed(cmp_pairs *p, const char *to, int n, int64_t from_ms,
                                         int64_t *at)
{
    int64_t now = from_ms;
    for (int i = 0; i < n; i++) {
        now = cmp_pairs_next(p, 1, to, CMP_PAIR_AGENT, now);
        assert_int_equal(cmp_pairs_record(p, 1, to, now), 0);
        if (at)
            at[i] = now;
    }
    return now;
}

static void agents_burst_then_one_per_interval(void **state)
{
    (void)state;
    cmp_pairs *p = cmp_pairs_new(meta);
    int64_t at[BURST + 3];
    agents_as_fast_as_allowed(p, "+6281", BURST + 3, T0, at);
    for (int i = 0; i < BURST; i++)
        assert_int_equal(at[i], T0); /* the burst: none waits */
    for (int i = BURST; i < BURST + 3; i++)
        assert_int_equal(at[i], T0 + (int64_t)(i - BURST + 1) * INTERVAL);
    /* another recipient, another account: buckets of their own */
    assert_int_equal(cmp_pairs_next(p, 1, "+6282", CMP_PAIR_AGENT, T0), T0);
    assert_int_equal(cmp_pairs_next(p, 2, "+6281", CMP_PAIR_AGENT, T0), T0);
    cmp_pairs_free(p);
}

static void campaign_waits_for_a_full_bucket(void **state)
{
    (void)state;
    cmp_pairs *p = cmp_pairs_new(meta);
    assert_int_equal(cmp_pairs_next(p, 1, "+6281", CMP_PAIR_CAMPAIGN, T0), T0);
    assert_int_equal(cmp_pairs_record(p, 1, "+6281", T0), 0);
    assert_int_equal(cmp_pairs_next(p, 1, "+6281", CMP_PAIR_CAMPAIGN, T0 + 1), T0 + INTERVAL);
    /* ten agents' replies a second later go at once; the campaign's next
     * waits until all eleven are paid back */
    assert_int_equal(agents_as_fast_as_allowed(p, "+6281", 10, T0 + 1000, NULL), T0 + 1000);
    assert_int_equal(cmp_pairs_next(p, 1, "+6281", CMP_PAIR_CAMPAIGN, T0 + 1000),
                     T0 + 11 * INTERVAL);
    cmp_pairs_free(p);
}

static void two_logs_of_a_batch_to_one_recipient(void **state)
{
    (void)state;
    cmp_pairs *p = cmp_pairs_new(meta);
    assert_int_equal(cmp_pairs_record(p, 1, "+6283", T0 - 1000), 0);
    const char *to[] = {"+6281", "+6282", "+6281", "+6283", "", "+6281"};
    cmp_release_plan plan;
    bz_error err;
    assert_int_equal(cmp_release_plan_init(&plan, 6, &err), BZ_OK);
    assert_int_equal(cmp_pairs_apply(p, 1, to, T0, &plan, &err), BZ_OK);
    assert_true(cmp_release_plan_goes(&plan, 0));
    assert_true(cmp_release_plan_goes(&plan, 1));
    assert_false(cmp_release_plan_goes(&plan, 2));
    assert_false(cmp_release_plan_goes(&plan, 3)); /* sent to a second ago */
    assert_true(cmp_release_plan_goes(&plan, 4));  /* no user: not paced */
    assert_false(cmp_release_plan_goes(&plan, 5));
    const cmp_plan_hold *h = cmp_release_plan_main_hold(&plan);
    assert_string_equal(h->reason, CMP_PAIR_REASON);
    assert_int_equal(h->held, 3);
    assert_int_equal(h->until_ms, T0 - 1000 + INTERVAL);
    cmp_release_plan_free(&plan);
    cmp_pairs_free(p);
}

static void a_load_is_never_more_generous(void **state)
{
    (void)state;
    /* the truth: a recipient sent to at the limit for far longer than the
     * span a load replays */
    cmp_pairs *truth = cmp_pairs_new(meta), *loaded = cmp_pairs_new(meta);
    int64_t at[3 * BURST];
    int64_t last = agents_as_fast_as_allowed(truth, "+6281", 3 * BURST, T0, at);
    int64_t now = last + 1;
    int64_t span = cmp_pairs_span_ms(loaded);
    assert_int_equal(span, BURST * INTERVAL);
    cmp_pairs_reset(loaded, now);
    for (int i = 0; i < 3 * BURST; i++)
        if (at[i] > now - span)
            assert_int_equal(cmp_pairs_record(loaded, 1, "+6281", at[i]), 0);
    cmp_pairs_loaded(loaded);
    for (cmp_pair_kind k = CMP_PAIR_AGENT; k <= CMP_PAIR_CAMPAIGN; k++)
        assert_true(cmp_pairs_next(loaded, 1, "+6281", k, now) >=
                    cmp_pairs_next(truth, 1, "+6281", k, now));
    /* a recipient with no release in the span: a full bucket, as true */
    assert_int_equal(cmp_pairs_next(loaded, 1, "+6282", CMP_PAIR_CAMPAIGN, now), now);
    /* after the load, a new recipient starts full again */
    assert_int_equal(cmp_pairs_record(loaded, 1, "+6283", now), 0);
    assert_int_equal(cmp_pairs_next(loaded, 1, "+6283", CMP_PAIR_AGENT, now), now);
    cmp_pairs_free(truth);
    cmp_pairs_free(loaded);
}

static void full_buckets_are_forgotten_and_off_means_off(void **state)
{
    (void)state;
    cmp_pairs *p = cmp_pairs_new(meta);
    char to[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(to, sizeof to, "+62%d", i);
        /* one release each, a second apart: a bucket is full again 6 s on */
        assert_int_equal(cmp_pairs_record(p, 1, to, T0 + (int64_t)i * 1000), 0);
    }
    /* the last ones are still paced, the first forgotten (full again) */
    assert_int_equal(cmp_pairs_next(p, 1, "+624999", CMP_PAIR_CAMPAIGN, T0 + 4999 * 1000LL),
                     T0 + 4999 * 1000LL + INTERVAL);
    assert_int_equal(cmp_pairs_next(p, 1, "+620", CMP_PAIR_CAMPAIGN, T0 + 4999 * 1000LL),
                     T0 + 4999 * 1000LL);
    cmp_pairs_free(p);

    cmp_pairs *off = cmp_pairs_new((cmp_pair_rate){0, BURST});
    assert_int_equal(cmp_pairs_record(off, 1, "+6281", T0), 0);
    assert_int_equal(cmp_pairs_next(off, 1, "+6281", CMP_PAIR_CAMPAIGN, T0), T0);
    assert_int_equal(cmp_pairs_span_ms(off), 0);
    cmp_pairs_free(off);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(agents_burst_then_one_per_interval),
        cmocka_unit_test(campaign_waits_for_a_full_bucket),
        cmocka_unit_test(two_logs_of_a_batch_to_one_recipient),
        cmocka_unit_test(a_load_is_never_more_generous),
        cmocka_unit_test(full_buckets_are_forgotten_and_off_means_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
