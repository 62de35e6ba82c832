/*
 * test_clock_uuid.c - clocks move forward and sleep sleeps; UUIDs are
 * well-formed version 4, distinct, and the validator rejects near misses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "core/clock.h"
#include "core/uuid.h"

static void test_monotonic_clock_advances_across_sleep(void **state)
{
    (void)state;
    int64_t before = bz_monotonic_ms();
    bz_sleep_ms(20);
    assert_true(bz_monotonic_ms() - before >= 20);
}

static void test_wall_clock_is_epoch_milliseconds(void **state)
{
    (void)state;
    int64_t now = bz_wall_ms();
    assert_true(now > 1600000000000LL); /* after September 2020 */
    assert_true(now < 4102444800000LL); /* before 2100 */
}

static void test_uuid_v4_is_canonical_and_unique(void **state)
{
    (void)state;
    char a[BZ_UUID_STR_SIZE], b[BZ_UUID_STR_SIZE];
    bz_error err;
    assert_int_equal(bz_uuid_v4(a, &err), BZ_OK);
    assert_int_equal(bz_uuid_v4(b, &err), BZ_OK);
    assert_true(bz_uuid_is_valid(a));
    assert_int_equal(a[14], '4');
    assert_true(strchr("89ab", a[19]) != NULL);
    assert_string_not_equal(a, b);
}

static void test_uuid_validator_rejects_near_misses(void **state)
{
    (void)state;
    assert_true(bz_uuid_is_valid("123e4567-E89B-12d3-a456-426614174000"));
    assert_false(bz_uuid_is_valid(NULL));
    assert_false(bz_uuid_is_valid(""));
    assert_false(bz_uuid_is_valid("123e4567e89b12d3a456426614174000"));
    assert_false(bz_uuid_is_valid("123e4567-e89b-12d3-a456-42661417400"));
    assert_false(bz_uuid_is_valid("123e4567-e89b-12d3-a456-4266141740000"));
    assert_false(bz_uuid_is_valid("123e4567-e89b-12d3-a456_426614174000"));
    assert_false(bz_uuid_is_valid("g23e4567-e89b-12d3-a456-426614174000"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_monotonic_clock_advances_across_sleep),
        cmocka_unit_test(test_wall_clock_is_epoch_milliseconds),
        cmocka_unit_test(test_uuid_v4_is_canonical_and_unique),
        cmocka_unit_test(test_uuid_validator_rejects_near_misses),
    };
    return cmocka_run_group_tests_name("clock and uuid", tests, NULL, NULL);
}
