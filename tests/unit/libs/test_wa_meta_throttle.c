/*
 * test_wa_meta_throttle.c - the throttle factor meta-sender's pace and
 * campaign-sender's send budget share (wa/meta_throttle.h): halved per
 * throttling answer down to the floor, a step back per whole second
 * without one, never above 1, and the same answer whenever it is asked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "wa/meta_throttle.h"

#define EPS 1e-9

static void unthrottled_is_full_pace(void **state)
{
    (void)state;
    bz_meta_throttle t;
    bz_meta_throttle_init(&t);
    assert_float_equal(bz_meta_throttle_factor(&t, 0), 1.0, EPS);
    assert_float_equal(bz_meta_throttle_factor(&t, 123456789), 1.0, EPS);
}

static void halves_down_to_the_floor(void **state)
{
    (void)state;
    bz_meta_throttle t;
    bz_meta_throttle_init(&t);
    bz_meta_throttle_hit(&t, 1000);
    assert_float_equal(bz_meta_throttle_factor(&t, 1000), 0.5, EPS);
    bz_meta_throttle_hit(&t, 1000);
    assert_float_equal(bz_meta_throttle_factor(&t, 1000), 0.25, EPS);
    for (int i = 0; i < 10; i++)
        bz_meta_throttle_hit(&t, 1000);
    assert_float_equal(bz_meta_throttle_factor(&t, 1000), BZ_META_THROTTLE_FLOOR, EPS);
}

static void recovers_a_step_per_whole_second(void **state)
{
    (void)state;
    bz_meta_throttle t = {.factor = 0.25, .since_ms = 10000};
    assert_float_equal(bz_meta_throttle_factor(&t, 10999), 0.25, EPS);
    assert_float_equal(bz_meta_throttle_factor(&t, 11000), 0.35, EPS);
    assert_float_equal(bz_meta_throttle_factor(&t, 13500), 0.55, EPS);
    assert_float_equal(bz_meta_throttle_factor(&t, 100000), 1.0, EPS);
    /* a clock behind the throttle (another host's) sees no recovery yet */
    assert_float_equal(bz_meta_throttle_factor(&t, 9000), 0.25, EPS);
    /* from the floor, full pace nine seconds after the last throttle */
    bz_meta_throttle floor = {.factor = BZ_META_THROTTLE_FLOOR, .since_ms = 0};
    assert_true(bz_meta_throttle_factor(&floor, 8999) < 1.0);
    assert_float_equal(bz_meta_throttle_factor(&floor, 9000), 1.0, EPS);
}

static void a_throttle_halves_the_recovered_factor(void **state)
{
    (void)state;
    bz_meta_throttle t = {.factor = 0.2, .since_ms = 0};
    bz_meta_throttle_hit(&t, 4000); /* recovered to 0.6 by then */
    assert_float_equal(t.factor, 0.3, EPS);
    assert_int_equal(t.since_ms, 4000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unthrottled_is_full_pace),
        cmocka_unit_test(halves_down_to_the_floor),
        cmocka_unit_test(recovers_a_step_per_whole_second),
        cmocka_unit_test(a_throttle_halves_the_recovered_factor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
