/*
 * test_release_plan.c - the verdicts of campaign-sender's release rules
 * on a batch (services/campaign-sender/release_plan.h), without a
 * database: the first verdict on a log stands, a later rule cannot undo a
 * skip or count a log twice, holds are summed per reason with the
 * earliest moment one may go, the reason that held the most is the one
 * shown, and the round's room defers what it cannot take.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "release_plan.h"

static void every_log_goes_until_a_rule_says_otherwise(void **state)
{
    (void)state;
    cmp_release_plan p;
    bz_error err;
    assert_int_equal(cmp_release_plan_init(&p, 3, &err), BZ_OK);
    for (size_t i = 0; i < 3; i++)
        assert_true(cmp_release_plan_goes(&p, i));
    int64_t until;
    assert_int_equal(cmp_release_plan_held(&p, &until), 0);
    assert_int_equal(until, 0);
    assert_null(cmp_release_plan_main_hold(&p));
    cmp_release_plan_free(&p);
}

static void the_first_verdict_stands(void **state)
{
    (void)state;
    cmp_release_plan p;
    bz_error err;
    assert_int_equal(cmp_release_plan_init(&p, 2, &err), BZ_OK);
    cmp_release_plan_skip(&p, 0, "opted_out");
    cmp_release_plan_hold(&p, 0, "meta_messaging_limit", 5000);
    cmp_release_plan_hold(&p, 1, "meta_messaging_limit", 5000);
    cmp_release_plan_skip(&p, 1, "opted_out");
    cmp_release_plan_hold(&p, 1, "pair_rate", 100);
    assert_string_equal(p.skip[0], "opted_out");
    assert_null(p.hold[0]);
    assert_null(p.skip[1]);
    assert_string_equal(p.hold[1], "meta_messaging_limit");
    int64_t until;
    assert_int_equal(cmp_release_plan_held(&p, &until), 1);
    assert_int_equal(until, 5000); /* pair_rate held nothing: its time is not the wait */
    cmp_release_plan_free(&p);
}

static void holds_sum_per_reason_and_the_largest_is_shown(void **state)
{
    (void)state;
    cmp_release_plan p;
    bz_error err;
    assert_int_equal(cmp_release_plan_init(&p, 5, &err), BZ_OK);
    cmp_plan_hold *h = cmp_release_plan_hold(&p, 0, "pair_rate", 900);
    cmp_release_plan_hold(&p, 1, "meta_messaging_limit", 7000);
    cmp_release_plan_hold(&p, 2, "meta_messaging_limit", 6000);
    cmp_release_plan_hold(&p, 3, "meta_messaging_limit", 0);
    assert_true(cmp_release_plan_goes(&p, 4));
    assert_int_equal(h->held, 1);
    int64_t until;
    assert_int_equal(cmp_release_plan_held(&p, &until), 4);
    assert_int_equal(until, 900); /* the first of any reason */
    const cmp_plan_hold *main = cmp_release_plan_main_hold(&p);
    assert_string_equal(main->reason, "meta_messaging_limit");
    assert_int_equal(main->held, 3);
    assert_int_equal(main->until_ms, 6000); /* unknown (0) times do not count */
    cmp_release_plan_free(&p);
}

static void more_reasons_than_kept_fall_into_the_last(void **state)
{
    (void)state;
    static const char *const reasons[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"};
    cmp_release_plan p;
    bz_error err;
    assert_int_equal(cmp_release_plan_init(&p, 10, &err), BZ_OK);
    for (size_t i = 0; i < 10; i++)
        cmp_release_plan_hold(&p, i, reasons[i], 100 + (int64_t)i);
    assert_int_equal(p.nholds, CMP_PLAN_REASONS);
    int64_t until;
    assert_int_equal(cmp_release_plan_held(&p, &until), 10);
    assert_int_equal(until, 100);
    cmp_release_plan_free(&p);
}

/* The round's room: a rule that records admits logs in order; past the
 * quota they wait for a later round, counted as no rule's hold, and the
 * round admits the rest at the end. */
static void the_rounds_room_defers_what_it_cannot_take(void **state)
{
    (void)state;
    cmp_release_plan p;
    bz_error err;
    assert_int_equal(cmp_release_plan_init(&p, 5, &err), BZ_OK);
    p.quota = 2;
    cmp_release_plan_hold(&p, 0, "warmup_cap", 9000);
    assert_int_equal(cmp_release_plan_admit(&p, 0), 0); /* held: not the round's to take */
    assert_int_equal(cmp_release_plan_admit(&p, 1), 1);
    assert_int_equal(cmp_release_plan_admit(&p, 1), 1); /* once only */
    cmp_release_plan_admit_rest(&p);
    assert_true(cmp_release_plan_goes(&p, 1) && cmp_release_plan_goes(&p, 2));
    assert_false(cmp_release_plan_goes(&p, 3) || cmp_release_plan_goes(&p, 4));
    int64_t until;
    assert_int_equal(cmp_release_plan_held(&p, &until), 1);
    assert_int_equal(until, 9000);
    size_t rows[5];
    int64_t values[5] = {10, 11, 12, 13, 14}, asked[5];
    assert_int_equal(cmp_release_plan_going(&p, values, rows, asked), 2);
    assert_int_equal(rows[0], 1);
    assert_int_equal(asked[1], 12);
    cmp_release_plan_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_log_goes_until_a_rule_says_otherwise),
        cmocka_unit_test(the_first_verdict_stands),
        cmocka_unit_test(holds_sum_per_reason_and_the_largest_is_shown),
        cmocka_unit_test(more_reasons_than_kept_fall_into_the_last),
        cmocka_unit_test(the_rounds_room_defers_what_it_cannot_take),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
