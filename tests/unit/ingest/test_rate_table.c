/*
 * test_rate_table.c - token buckets per key (services/ingest/rate_table.h),
 * on a clock the test moves:
 *  - a key spends its burst, then waits for its rate, and other keys are
 *    not charged for it;
 *  - looking at the wait takes nothing;
 *  - a full table forgets the keys whose buckets are full again, and a new
 *    key that still finds no room is refused, not added;
 *  - keys are told apart by every byte up to ING_RATE_KEY_MAX: two gateway
 *    ids of the longest kind that differ only in their last byte have a
 *    bucket each (keys were cut at 16 bytes before issue 55).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kafka/topics.h"
#include "rate_table.h"

static ing_rate_table *table(double rate, double burst, size_t max_keys)
{
    ing_rate_table *t = NULL;
    bz_error err;
    assert_int_equal(ing_rate_table_new(rate, burst, max_keys, &t, &err), BZ_OK);
    return t;
}

static void a_key_spends_its_burst_then_waits_for_its_rate(void **state)
{
    (void)state;
    ing_rate_table *t = table(2, 3, 16);
    int64_t a = 1, b = 2, now = 1000;
    for (int i = 0; i < 3; i++)
        assert_int_equal(ing_rate_table_take(t, &a, sizeof a, now), 0);
    assert_int_equal(ing_rate_table_take(t, &a, sizeof a, now), 500);
    assert_int_equal(ing_rate_table_wait_ms(t, &a, sizeof a, now + 200), 300);
    assert_int_equal(ing_rate_table_take(t, &b, sizeof b, now), 0);
    assert_int_equal(ing_rate_table_take(t, &a, sizeof a, now + 500), 0);
    ing_rate_table_free(t);
}

static void looking_at_the_wait_takes_nothing(void **state)
{
    (void)state;
    ing_rate_table *t = table(1, 1, 16);
    const char key[] = "client";
    for (int i = 0; i < 5; i++)
        assert_int_equal(ing_rate_table_wait_ms(t, key, sizeof key, 0), 0);
    assert_int_equal(ing_rate_table_take(t, key, sizeof key, 0), 0);
    assert_int_equal(ing_rate_table_wait_ms(t, key, sizeof key, 0), 1000);
    ing_rate_table_free(t);
}

static void a_full_table_forgets_rested_keys_and_refuses_new_ones(void **state)
{
    (void)state;
    ing_rate_table *t = table(1, 2, 2);
    int64_t a = 1, b = 2, c = 3;
    assert_int_equal(ing_rate_table_take(t, &a, sizeof a, 0), 0);
    assert_int_equal(ing_rate_table_take(t, &b, sizeof b, 0), 0);
    /* both still spending: no room for c */
    assert_true(ing_rate_table_take(t, &c, sizeof c, 0) > 0);
    /* a second later both are full again and forgotten: c gets a bucket */
    assert_int_equal(ing_rate_table_take(t, &c, sizeof c, 1000), 0);
    assert_int_equal(ing_rate_table_take(t, &c, sizeof c, 1000), 0);
    assert_true(ing_rate_table_take(t, &c, sizeof c, 1000) > 0);
    ing_rate_table_free(t);
}

static void long_keys_differing_in_their_last_byte_have_a_bucket_each(void **state)
{
    (void)state;
    _Static_assert(BZ_GATEWAY_ID_MAX <= ING_RATE_KEY_MAX, "a gateway id must fit a rate key");
    ing_rate_table *t = table(1, 1, 16);
    char a[BZ_GATEWAY_ID_MAX + 1], b[BZ_GATEWAY_ID_MAX + 1];
    memset(a, 'g', BZ_GATEWAY_ID_MAX);
    a[BZ_GATEWAY_ID_MAX] = '\0';
    memcpy(b, a, sizeof b);
    b[BZ_GATEWAY_ID_MAX - 1] = 'h';
    assert_int_equal(ing_rate_table_take(t, a, strlen(a), 0), 0);
    assert_int_equal(ing_rate_table_take(t, b, strlen(b), 0), 0);
    assert_int_equal(ing_rate_table_take(t, a, strlen(a), 0), 1000);
    ing_rate_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_key_spends_its_burst_then_waits_for_its_rate),
        cmocka_unit_test(looking_at_the_wait_takes_nothing),
        cmocka_unit_test(a_full_table_forgets_rested_keys_and_refuses_new_ones),
        cmocka_unit_test(long_keys_differing_in_their_last_byte_have_a_bucket_each),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
