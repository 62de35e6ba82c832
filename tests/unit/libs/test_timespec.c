/*
 * test_timespec.c - command-line times: ISO-8601 with and without zones,
 * durations back from now, and refusal of anything else.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/timespec.h"

/* 2025-01-31T10:00:00Z */
#define T0 1738317600000LL

static int64_t parse_ok(const char *text, int64_t now)
{
    int64_t out = -1;
    bz_error err;
    bz_error_clear(&err);
    if (bz_time_parse(text, now, &out, &err) != BZ_OK)
        fail_msg("'%s' refused: %s", text, err.msg);
    return out;
}

static void iso_forms_agree_on_the_same_instant(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("2025-01-31T10:00:00Z", 0), T0);
    assert_int_equal(parse_ok("2025-01-31T10:00", 0), T0);
    assert_int_equal(parse_ok("2025-01-31 10:00:00", 0), T0);
    assert_int_equal(parse_ok("2025-01-31T12:00:00+02:00", 0), T0);
    assert_int_equal(parse_ok("2025-01-31T07:30:00-0230", 0), T0);
    assert_int_equal(parse_ok("2025-01-31T10:00:00.250Z", 0), T0 + 250);
    assert_int_equal(parse_ok("2025-01-31T10:00:00.5Z", 0), T0 + 500);
    assert_int_equal(parse_ok("2025-01-31", 0), T0 - 10 * 3600 * 1000LL);
}

static void durations_count_back_from_now(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("90s", T0), T0 - 90000);
    assert_int_equal(parse_ok("15m", T0), T0 - 15 * 60000);
    assert_int_equal(parse_ok("2h", T0), T0 - 2 * 3600000LL);
    assert_int_equal(parse_ok("1d", T0), T0 - 86400000LL);
    assert_int_equal(parse_ok("1w", T0), T0 - 7 * 86400000LL);
    assert_int_equal(parse_ok("now", T0), T0);
}

static void nonsense_is_refused_with_the_text_quoted(void **state)
{
    (void)state;
    const char *bad[] = {"", "15", "15x", "m", "-5m", "2025-13-01", "2025-02-30",
                         "2025-01-31T25:00", "2025-01-31T10:00:00+", "yesterday", "1h30m"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bz_error err;
        bz_error_clear(&err);
        int64_t out = 0;
        assert_int_equal(bz_time_parse(bad[i], T0, &out, &err), BZ_ERR_CONFIG);
        assert_non_null(strstr(err.msg, "expected ISO-8601"));
    }
}

static void format_round_trips(void **state)
{
    (void)state;
    char buf[32];
    bz_time_format(T0 + 7, buf, sizeof buf);
    assert_string_equal(buf, "2025-01-31T10:00:00.007Z");
    assert_int_equal(parse_ok(buf, 0), T0 + 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(iso_forms_agree_on_the_same_instant),
        cmocka_unit_test(durations_count_back_from_now),
        cmocka_unit_test(nonsense_is_refused_with_the_text_quoted),
        cmocka_unit_test(format_round_trips),
    };
    return cmocka_run_group_tests_name("timespec", tests, NULL, NULL);
}
