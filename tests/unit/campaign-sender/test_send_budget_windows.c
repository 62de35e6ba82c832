/*
 * test_send_budget_windows.c - campaign-sender's send budget windows
 * (services/campaign-sender/budget.h), without a database: what was
 * released decides the room left, per limit and with the guard on the
 * minute and hour windows; accounts and workspaces count separately,
 * "next room" names the first instant another release fits, and a limit
 * that is not a whole number admits up to its ceiling. Campaigns are also
 * paced by the same windows, over campaign releases only: evenly, with
 * the burst the smoothing interval earns, and the reason they wait is
 * named.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "budget.h"

#define GUARD 2000
#define SMOOTHING 100
#define T0 1700000000000LL
#define AGENT CMP_RELEASE_AGENT
#define CAMPAIGN CMP_RELEASE_CAMPAIGN

static const cmp_limits per_minute_60 = {0, 60, 0};
static const cmp_limits none = {0, 0, 0};
static const cmp_pair_rate NO_PAIR_RATE = {0, 1};

static void releases_fill_the_minute_window(void **state)
{
    (void)state;
    cmp_budget *b = cmp_budget_new(GUARD, SMOOTHING, NO_PAIR_RATE);
    assert_int_equal(cmp_budget_room(b, AGENT, 1, &per_minute_60, 9, &none, T0), 60);
    for (int i = 0; i < 60; i++)
        assert_int_equal(cmp_budget_record(b, AGENT, 1, 9, T0 + i * 1000, 1), 0);
    int64_t now = T0 + 59 * 1000;
    assert_int_equal(cmp_budget_room(b, AGENT, 1, &per_minute_60, 9, &none, now), 0);
    /* the first release leaves the window 60 s + guard after it */
    int64_t next = cmp_budget_next_room(b, AGENT, 1, &per_minute_60, 9, &none, now, NULL);
    assert_int_equal(next, T0 + 60000 + GUARD);
    assert_int_equal(cmp_budget_room(b, AGENT, 1, &per_minute_60, 9, &none, next - 1), 0);
    assert_int_equal(cmp_budget_room(b, AGENT, 1, &per_minute_60, 9, &none, next), 1);
    /* another account of the same workspace is untouched */
    assert_int_equal(cmp_budget_room(b, AGENT, 2, &per_minute_60, 9, &none, now), 60);
    cmp_budget_free(b);
}

static void the_tightest_limit_wins(void **state)
{
    (void)state;
    cmp_budget *b = cmp_budget_new(GUARD, SMOOTHING, NO_PAIR_RATE);
    const cmp_limits account = {0, 0, 5}; /* 5 per hour */
    const cmp_limits workspace = {2, 4, 0}; /* 2 per second, 4 per minute */
    assert_int_equal(cmp_budget_room(b, AGENT, 1, &account, 9, &workspace, T0), 2);
    assert_int_equal(cmp_budget_record(b, AGENT, 1, 9, T0, 2), 0);
    assert_int_equal(cmp_budget_room(b, AGENT, 1, &account, 9, &workspace, T0), 0);
    /* the second window (no guard) frees first; then the minute allows 2 more */
    assert_int_equal(cmp_budget_next_room(b, AGENT, 1, &account, 9, &workspace, T0, NULL),
                     T0 + 1000);
    assert_int_equal(cmp_budget_room(b, AGENT, 1, &account, 9, &workspace, T0 + 1000), 2);
    assert_int_equal(cmp_budget_record(b, AGENT, 3, 9, T0 + 1000, 2), 0); /* another account */
    assert_int_equal(cmp_budget_room(b, AGENT, 1, &account, 9, &workspace, T0 + 2000), 0);
    /* the account's hour: 3 left after 2, at any later minute */
    assert_int_equal(cmp_budget_room(b, AGENT, 1, &account, 10, &none, T0 + 30 * 60000), 3);
    assert_int_equal(cmp_budget_room(b, AGENT, 1, &account, 10, &none, T0 + 3600000 + GUARD), 5);
    cmp_budget_free(b);
}

static void no_limits_no_bound(void **state)
{
    (void)state;
    cmp_budget *b = cmp_budget_new(GUARD, SMOOTHING, NO_PAIR_RATE);
    assert_int_equal(cmp_budget_record(b, AGENT, 1, 9, T0, 1000), 0);
    assert_true(cmp_budget_room(b, AGENT, 1, &none, 9, &none, T0) > 1000000);
    assert_int_equal(cmp_budget_next_room(b, AGENT, 1, &none, 9, &none, T0, NULL), T0);
    cmp_budget_free(b);
}

/* A limit that is not a whole number admits a release while fewer than it
 * lie in the window (ARCHITECTURE §11.3): 0.5 per second is one release a
 * second, 2.5 per minute three a minute; neither stalls the account. */
static void fractional_limits_admit_while_fewer_lie_in_the_window(void **state)
{
    (void)state;
    cmp_budget *b = cmp_budget_new(GUARD, SMOOTHING, NO_PAIR_RATE);
    const cmp_limits half_a_second = {0.5, 0, 0};
    assert_int_equal(cmp_budget_room(b, AGENT, 1, &half_a_second, 9, &none, T0), 1);
    assert_int_equal(cmp_budget_record(b, AGENT, 1, 9, T0, 1), 0);
    assert_int_equal(cmp_budget_room(b, AGENT, 1, &half_a_second, 9, &none, T0 + 500), 0);
    assert_int_equal(cmp_budget_next_room(b, AGENT, 1, &half_a_second, 9, &none, T0 + 500, NULL),
                     T0 + 1000);
    const cmp_limits two_and_a_half_a_minute = {0, 2.5, 0};
    assert_int_equal(cmp_budget_room(b, AGENT, 2, &two_and_a_half_a_minute, 9, &none, T0), 3);
    assert_int_equal(cmp_budget_record(b, AGENT, 2, 9, T0, 3), 0);
    assert_int_equal(cmp_budget_room(b, AGENT, 2, &two_and_a_half_a_minute, 9, &none, T0 + 1000), 0);
    assert_int_equal(cmp_budget_next_room(b, AGENT, 2, &two_and_a_half_a_minute, 9, &none,
                                          T0 + 1000, NULL),
                     T0 + 60000 + GUARD);
    cmp_budget_free(b);
}

/* 60/min and 1000/h: a campaign releases one every 3.6 s, not the
 * minute's 60 at once, while agents may still take the minute's rest and
 * do not slow the campaign's pace. */
static void campaigns_are_paced_evenly(void **state)
{
    (void)state;
    cmp_budget *b = cmp_budget_new(GUARD, SMOOTHING, NO_PAIR_RATE);
    const cmp_limits account = {0, 60, 1000};
    assert_int_equal(cmp_budget_room(b, CAMPAIGN, 1, &account, 9, &none, T0), 1);
    assert_int_equal(cmp_budget_record(b, CAMPAIGN, 1, 9, T0, 1), 0);
    const char *why = NULL;
    assert_int_equal(cmp_budget_room(b, CAMPAIGN, 1, &account, 9, &none, T0 + 100), 0);
    assert_int_equal(cmp_budget_next_room(b, CAMPAIGN, 1, &account, 9, &none, T0 + 100, &why),
                     T0 + 3600);
    assert_string_equal(why, "account_pace");
    assert_int_equal(cmp_budget_room(b, AGENT, 1, &account, 9, &none, T0 + 100), 59);
    assert_int_equal(cmp_budget_record(b, AGENT, 1, 9, T0 + 200, 10), 0);
    assert_int_equal(cmp_budget_room(b, CAMPAIGN, 1, &account, 9, &none, T0 + 3600), 1);
    /* the limits still count everything: 49 left in the minute */
    assert_int_equal(cmp_budget_room(b, AGENT, 1, &account, 9, &none, T0 + 3600), 49);
    cmp_budget_free(b);
}

/* 80/s with 100 ms of smoothing: bursts of 8, then the next 100 ms; a
 * workspace's pace names the workspace. */
static void the_pace_allows_what_the_smoothing_interval_earns(void **state)
{
    (void)state;
    cmp_budget *b = cmp_budget_new(GUARD, SMOOTHING, NO_PAIR_RATE);
    const cmp_limits fast = {80, 0, 0}, slow_workspace = {0, 6, 0};
    assert_int_equal(cmp_budget_room(b, CAMPAIGN, 1, &fast, 9, &none, T0), 8);
    assert_int_equal(cmp_budget_record(b, CAMPAIGN, 1, 9, T0, 8), 0);
    assert_int_equal(cmp_budget_room(b, CAMPAIGN, 1, &fast, 9, &none, T0 + 50), 0);
    assert_int_equal(cmp_budget_next_room(b, CAMPAIGN, 1, &fast, 9, &none, T0 + 50, NULL),
                     T0 + 100);
    const char *why = NULL;
    assert_int_equal(cmp_budget_record(b, CAMPAIGN, 2, 10, T0, 1), 0);
    assert_int_equal(cmp_budget_room(b, CAMPAIGN, 2, &none, 10, &slow_workspace, T0 + 50), 0);
    assert_int_equal(
        cmp_budget_next_room(b, CAMPAIGN, 2, &none, 10, &slow_workspace, T0 + 50, &why),
        T0 + 10000);
    assert_string_equal(why, "workspace_pace");
    cmp_budget_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(releases_fill_the_minute_window),
        cmocka_unit_test(the_tightest_limit_wins),
        cmocka_unit_test(no_limits_no_bound),
        cmocka_unit_test(fractional_limits_admit_while_fewer_lie_in_the_window),
        cmocka_unit_test(campaigns_are_paced_evenly),
        cmocka_unit_test(the_pace_allows_what_the_smoothing_interval_earns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
