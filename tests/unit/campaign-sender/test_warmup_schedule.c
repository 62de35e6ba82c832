/*
 * test_warmup_schedule.c - the arithmetic of a webjs number's warm-up
 * (services/campaign-sender/warmup.h), without a database: the schedule
 * as configured and what it refuses, the cap at each age (a step holds
 * from its day on, 0 is no cap), an operator's warmup_since date and what
 * is no date, and the jitter's gaps: within bounds and not all equal.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "warmup.h"

static void the_default_schedule_grows_with_age(void **state)
{
    (void)state;
    cmp_warmup_schedule s;
    bz_error err;
    assert_int_equal(cmp_warmup_schedule_parse("0:20,3:50,7:100,14:200,30:0", &s, &err), BZ_OK);
    assert_int_equal(s.n, 5);
    const int64_t want[][2] = {{0, 20},   {2, 20},   {3, 50},   {6, 50}, {7, 100},
                               {13, 100}, {14, 200}, {29, 200}, {30, 0}, {3650, 0}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        assert_int_equal(cmp_warmup_cap_at(&s, want[i][0]), want[i][1]);
}

static void an_empty_schedule_is_no_warmup(void **state)
{
    (void)state;
    cmp_warmup_schedule s;
    bz_error err;
    assert_int_equal(cmp_warmup_schedule_parse("  ", &s, &err), BZ_OK);
    assert_int_equal(s.n, 0);
    assert_int_equal(cmp_warmup_cap_at(&s, 0), 0);
    assert_int_equal(cmp_warmup_schedule_parse(" 0 : 5 , 30 : 0 ", &s, &err), BZ_OK);
    assert_int_equal(cmp_warmup_cap_at(&s, 29), 5);
}

static void a_bad_schedule_is_refused_naming_the_key(void **state)
{
    (void)state;
    const char *bad[] = {"1:20",  "0:20,0:30", "0:20,5:30,3:40", "0:-1", "0:20;3:50",
                         "0:",    ":20",       "0:20,",          "x",    "0:20,3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cmp_warmup_schedule s;
        bz_error err;
        assert_int_equal(cmp_warmup_schedule_parse(bad[i], &s, &err), BZ_ERR_CONFIG);
        assert_non_null(strstr(err.msg, "warmup.schedule"));
    }
}

static void warmup_since_is_a_calendar_date(void **state)
{
    (void)state;
    assert_int_equal(cmp_warmup_since_ms("2020-01-01"), 1577836800000LL);
    assert_int_equal(cmp_warmup_since_ms("2024-02-29"), 1709164800000LL);
    const char *bad[] = {"", "2023-02-29", "2020-13-01", "2020-04-31", "2020-1-1",
                         "2020-01-01T00:00:00Z", "yesterday", "1999-12-31"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(cmp_warmup_since_ms(bad[i]), 0);
}

static void gaps_stay_within_bounds_and_vary(void **state)
{
    (void)state;
    uint64_t seed = 12345;
    int64_t first = cmp_warmup_gap_ms(5000, 15000, &seed), differ = 0;
    for (int i = 0; i < 1000; i++) {
        int64_t g = cmp_warmup_gap_ms(5000, 15000, &seed);
        assert_true(g >= 5000 && g <= 15000);
        differ += g != first;
    }
    assert_true(differ > 900);
    assert_int_equal(cmp_warmup_gap_ms(700, 700, &seed), 700);
    seed = 0;
    int64_t g = cmp_warmup_gap_ms(1, 3, &seed);
    assert_true(g >= 1 && g <= 3);
    assert_true(seed != 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_default_schedule_grows_with_age),
        cmocka_unit_test(an_empty_schedule_is_no_warmup),
        cmocka_unit_test(a_bad_schedule_is_refused_naming_the_key),
        cmocka_unit_test(warmup_since_is_a_calendar_date),
        cmocka_unit_test(gaps_stay_within_bounds_and_vary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
