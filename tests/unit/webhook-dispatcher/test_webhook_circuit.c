/*
 * test_webhook_circuit.c - the per-endpoint circuit breaker
 * (services/webhook-dispatcher/circuit.c) driven by a test clock: opening
 * on the failure ratio, staying closed below it, the single half-open probe,
 * closing on a good probe and backing off on a bad one; consecutive
 * timeouts opening it before the ratio could, and any answer in between
 * starting the count again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "circuit.h"

static const wh_circuit_config cfg = {
    .window = 10, .min_requests = 4, .failure_ratio = 0.5, .open_ms = 1000, .open_max_ms = 3000};

static void fail_n(wh_circuit *c, int n, int64_t now)
{
    for (int i = 0; i < n; i++) {
        assert_true(wh_circuit_allow(c, now));
        wh_circuit_record(c, false, now);
    }
}

static void test_needs_min_requests_before_opening(void **state)
{
    (void)state;
    wh_circuit c;
    wh_circuit_init(&c, &cfg);
    fail_n(&c, 3, 0);
    assert_int_equal(c.state, WH_CIRCUIT_CLOSED);
    fail_n(&c, 1, 0);
    assert_int_equal(c.state, WH_CIRCUIT_OPEN);
    assert_false(wh_circuit_allow(&c, 500));
    assert_false(wh_circuit_would_allow(&c, 999));
}

static void test_stays_closed_below_the_ratio(void **state)
{
    (void)state;
    wh_circuit c;
    wh_circuit_init(&c, &cfg);
    for (int i = 0; i < 50; i++) {
        assert_true(wh_circuit_allow(&c, i));
        wh_circuit_record(&c, i % 3 != 2, i); /* one failure in three */
    }
    assert_int_equal(c.state, WH_CIRCUIT_CLOSED);
    assert_in_range(wh_circuit_failures(&c), 3, 4);
}

static void test_half_open_allows_exactly_one_probe(void **state)
{
    (void)state;
    wh_circuit c;
    wh_circuit_init(&c, &cfg);
    fail_n(&c, 4, 0);
    assert_true(wh_circuit_would_allow(&c, 1000));
    assert_true(wh_circuit_allow(&c, 1000));
    assert_int_equal(c.state, WH_CIRCUIT_HALF_OPEN);
    assert_false(wh_circuit_allow(&c, 1001));
    assert_false(wh_circuit_would_allow(&c, 1001));
    wh_circuit_record(&c, true, 1100);
    assert_int_equal(c.state, WH_CIRCUIT_CLOSED);
    assert_int_equal(wh_circuit_failures(&c), 0);
    assert_true(wh_circuit_allow(&c, 1100));
}

static void test_failed_probe_reopens_for_longer_up_to_the_max(void **state)
{
    (void)state;
    wh_circuit c;
    wh_circuit_init(&c, &cfg);
    fail_n(&c, 4, 0);
    assert_true(wh_circuit_allow(&c, 1000));
    wh_circuit_record(&c, false, 1000);
    assert_int_equal(c.state, WH_CIRCUIT_OPEN);
    assert_false(wh_circuit_allow(&c, 2999));
    assert_true(wh_circuit_allow(&c, 3000)); /* open 2000 ms */
    wh_circuit_record(&c, false, 3000);
    assert_false(wh_circuit_allow(&c, 5999));
    assert_true(wh_circuit_allow(&c, 6000)); /* 4000 capped to 3000 */
    wh_circuit_record(&c, false, 6000);
    assert_true(wh_circuit_allow(&c, 9000));
}

static void test_late_results_while_open_are_ignored(void **state)
{
    (void)state;
    wh_circuit c;
    wh_circuit_init(&c, &cfg);
    fail_n(&c, 4, 0);
    wh_circuit_record(&c, true, 10); /* an attempt started before it opened */
    assert_int_equal(c.state, WH_CIRCUIT_OPEN);
}

static void test_consecutive_timeouts_open_it_early(void **state)
{
    (void)state;
    wh_circuit_config timeouts = cfg;
    timeouts.min_requests = 10;
    timeouts.timeouts_to_open = 3;
    wh_circuit c;
    wh_circuit_init(&c, &timeouts);
    for (int i = 0; i < 2; i++) {
        assert_true(wh_circuit_allow(&c, 0));
        wh_circuit_record_timeout(&c, 0);
    }
    /* an answer, even an error, shows the endpoint answers: count again */
    assert_true(wh_circuit_allow(&c, 0));
    wh_circuit_record(&c, false, 0);
    for (int i = 0; i < 2; i++) {
        assert_true(wh_circuit_allow(&c, 0));
        wh_circuit_record_timeout(&c, 0);
    }
    assert_int_equal(c.state, WH_CIRCUIT_CLOSED);
    assert_true(wh_circuit_allow(&c, 0));
    wh_circuit_record_timeout(&c, 10);
    assert_int_equal(c.state, WH_CIRCUIT_OPEN);
    assert_int_equal(c.open_until_ms, 10 + cfg.open_ms);
    /* a timed-out probe backs off like any failed one */
    assert_true(wh_circuit_allow(&c, 10 + cfg.open_ms));
    wh_circuit_record_timeout(&c, 2000);
    assert_int_equal(c.state, WH_CIRCUIT_OPEN);
    assert_int_equal(c.open_until_ms, 2000 + 2 * cfg.open_ms);
}

static void test_timeouts_count_only_when_configured(void **state)
{
    (void)state;
    wh_circuit c;
    wh_circuit_init(&c, &cfg); /* timeouts_to_open 0: the ratio alone */
    for (int i = 0; i < 3; i++) {
        assert_true(wh_circuit_allow(&c, 0));
        wh_circuit_record_timeout(&c, 0);
    }
    assert_int_equal(c.state, WH_CIRCUIT_CLOSED);
    assert_int_equal(wh_circuit_failures(&c), 3);
}

static void test_a_disabled_circuit_never_opens(void **state)
{
    (void)state;
    wh_circuit_config off = cfg;
    off.timeouts_to_open = 1;
    off.disabled = true;
    wh_circuit c;
    wh_circuit_init(&c, &off);
    fail_n(&c, 20, 0);
    assert_true(wh_circuit_allow(&c, 0));
    wh_circuit_record_timeout(&c, 0);
    assert_int_equal(c.state, WH_CIRCUIT_CLOSED);
    assert_true(wh_circuit_would_allow(&c, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_consecutive_timeouts_open_it_early),
        cmocka_unit_test(test_timeouts_count_only_when_configured),
        cmocka_unit_test(test_a_disabled_circuit_never_opens),
        cmocka_unit_test(test_needs_min_requests_before_opening),
        cmocka_unit_test(test_stays_closed_below_the_ratio),
        cmocka_unit_test(test_half_open_allows_exactly_one_probe),
        cmocka_unit_test(test_failed_probe_reopens_for_longer_up_to_the_max),
        cmocka_unit_test(test_late_results_while_open_are_ignored),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
