/*
 * test_token_bucket.c - the token bucket (libs/core/token_bucket.h) with a
 * clock the test controls: burst, steady rate, waiting time, rate changes,
 * and a clock that goes backwards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "core/token_bucket.h"

static void test_starts_full_and_empties_after_burst(void **state)
{
    (void)state;
    bz_token_bucket b;
    bz_token_bucket_init(&b, 10, 5, 1000);
    for (int i = 0; i < 5; i++)
        assert_true(bz_token_bucket_try_take(&b, 1000));
    assert_false(bz_token_bucket_try_take(&b, 1000));
    assert_int_equal(bz_token_bucket_wait_ms(&b, 1000), 100);
}

static void test_refills_at_rate_and_caps_at_burst(void **state)
{
    (void)state;
    bz_token_bucket b;
    bz_token_bucket_init(&b, 10, 2, 0);
    assert_true(bz_token_bucket_try_take_n(&b, 2, 0));
    assert_false(bz_token_bucket_try_take(&b, 99));
    assert_true(bz_token_bucket_try_take(&b, 100));
    /* a long idle period earns at most `burst` tokens */
    assert_int_equal(bz_token_bucket_wait_ms(&b, 60000), 0);
    assert_true(bz_token_bucket_try_take(&b, 60000));
    assert_true(bz_token_bucket_try_take(&b, 60000));
    assert_false(bz_token_bucket_try_take(&b, 60000));
}

static void test_steady_rate_over_a_second(void **state)
{
    (void)state;
    bz_token_bucket b;
    bz_token_bucket_init(&b, 100, 1, 0);
    int taken = 0;
    for (int64_t t = 0; t < 1000; t++)
        taken += bz_token_bucket_try_take(&b, t);
    assert_in_range(taken, 99, 101);
}

static void test_rate_change_keeps_earned_tokens_within_new_burst(void **state)
{
    (void)state;
    bz_token_bucket b;
    bz_token_bucket_init(&b, 10, 10, 0);
    bz_token_bucket_set_rate(&b, 1, 3, 0);
    assert_true(bz_token_bucket_try_take_n(&b, 3, 0));
    assert_false(bz_token_bucket_try_take(&b, 0));
    assert_int_equal(bz_token_bucket_wait_ms(&b, 0), 1000);
}

static void test_clock_going_backwards_adds_nothing(void **state)
{
    (void)state;
    bz_token_bucket b;
    bz_token_bucket_init(&b, 1000, 1, 5000);
    assert_true(bz_token_bucket_try_take(&b, 5000));
    assert_false(bz_token_bucket_try_take(&b, 1000));
    assert_false(bz_token_bucket_try_take(&b, 5000));
    assert_true(bz_token_bucket_try_take(&b, 5001));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_starts_full_and_empties_after_burst),
        cmocka_unit_test(test_refills_at_rate_and_caps_at_burst),
        cmocka_unit_test(test_steady_rate_over_a_second),
        cmocka_unit_test(test_rate_change_keeps_earned_tokens_within_new_burst),
        cmocka_unit_test(test_clock_going_backwards_adds_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
