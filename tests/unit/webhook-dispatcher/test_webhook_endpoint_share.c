/*
 * test_webhook_endpoint_share.c - how much of a worker one endpoint may
 * hold (services/webhook-dispatcher/fairness.c): a dead endpoint holds
 * twice its concurrency, a healthy one a second of its throughput within
 * its rate limit and half the worker; the throughput meter follows a rise
 * at once and a fall within a few windows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "fairness.h"

static void test_cap_follows_throughput_within_bounds(void **state)
{
    (void)state;
    /* finishes nothing: its concurrency in flight, as many queued */
    assert_int_equal(wh_endpoint_cap(4, 500, 0, 2000), 8);
    /* a second of what it finishes */
    assert_int_equal(wh_endpoint_cap(4, 500, 300, 2000), 304);
    /* never more than its rate limit lets out in a second */
    assert_int_equal(wh_endpoint_cap(4, 10, 300, 2000), 14);
    /* never more than half the worker */
    assert_int_equal(wh_endpoint_cap(32, 1000000, 6000, 4000), 2000);
    /* but always its concurrency, and at least one */
    assert_int_equal(wh_endpoint_cap(64, 1000, 1000, 50), 64);
    assert_int_equal(wh_endpoint_cap(0, 1, 0, 2), 1);
}

static void test_meter_rises_at_once_and_falls_by_halves(void **state)
{
    (void)state;
    wh_meter m = {0};
    int64_t t = 1000;
    assert_true(wh_meter_rate(&m, t) == 0);
    for (int i = 0; i < 250; i++)
        wh_meter_add(&m, t + i); /* 250 in 250 ms */
    assert_true(wh_meter_rate(&m, t + 250) > 990 && wh_meter_rate(&m, t + 250) < 1010);
    /* nothing finishes any more */
    double before = wh_meter_rate(&m, t + 250);
    double after1 = wh_meter_rate(&m, t + 500);
    double after2 = wh_meter_rate(&m, t + 750);
    assert_true(after1 < before * 0.51 && after1 > before * 0.49);
    assert_true(after2 < after1 * 0.51);
    /* a burst is taken at once */
    for (int i = 0; i < 1000; i++)
        wh_meter_add(&m, t + 750 + i / 4);
    assert_true(wh_meter_rate(&m, t + 1000) > 3900);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cap_follows_throughput_within_bounds),
        cmocka_unit_test(test_meter_rises_at_once_and_falls_by_halves),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
