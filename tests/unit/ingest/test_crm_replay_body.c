/*
 * test_crm_replay_body.c - the body of POST /v1/webhook-endpoints/{id}/
 * replay (services/ingest/crm/crm_json.h): since and until are RFC 3339
 * date-times of days that exist, read to the millisecond with any offset
 * (PostgreSQL's own parser refuses offsets past 15:59), and nothing else
 * PostgreSQL's timestamptz would read ("yesterday", a space for the T, no
 * offset); status is failed unless success is asked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "crm/crm_json.h"

static bz_status parse_since(const char *since, ing_crm_replay *out, bz_error *err)
{
    char body[160];
    snprintf(body, sizeof body, "{\"since\": \"%s\"}", since);
    return ing_crm_json_replay(body, strlen(body), out, err);
}

static void date_times_are_taken_as_given(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int64_t ms;
    } good[] = {
        {"2026-11-27T08:00:00Z", 1795766400000},
        {"2024-02-29T23:59:59Z", 1709251199000},
        {"2000-02-29T00:00:00+07:00", 951757200000},
        {"2026-01-31T12:30:00.5-03:30", 1769875200500},
        {"2026-12-31t00:00:00.123456789z", 1798675200123},
        {"0001-01-01T00:00:00+23:59", -62135683140000},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        ing_crm_replay r;
        bz_error err;
        if (parse_since(good[i].text, &r, &err) != BZ_OK)
            fail_msg("%s refused: %s", good[i].text, err.msg);
        assert_int_equal(r.since_ms, good[i].ms);
        assert_false(r.has_until);
        assert_string_equal(r.status, "failed");
    }
}

static void other_times_are_refused_naming_the_field(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "yesterday", "epoch", "2026-11-27", "2026-11-27 08:00:00Z", "2026-11-27T08:00:00",
        "2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2026-04-31T00:00:00Z",
        "2026-13-01T00:00:00Z", "2026-00-10T00:00:00Z", "2026-11-00T00:00:00Z",
        "2026-11-27T24:00:00Z", "2026-11-27T08:60:00Z", "2026-11-27T08:00:60Z",
        "2026-11-27T08:00:00.Z", "2026-11-27T08:00Z",
        "2026-11-27T08:00:00+24:00", "2026-11-27T08:00:00+0700", "2026-11-27T08:00:00Zjunk",
        "0000-01-01T00:00:00Z", "+2026-11-27T08:00:00Z", "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ing_crm_replay r;
        bz_error err;
        if (parse_since(bad[i], &r, &err) == BZ_OK)
            fail_msg("%s taken", bad[i]);
        assert_string_equal(err.reason, "invalid_field");
        assert_non_null(strstr(err.msg, "field since:"));
    }
}

static void until_and_status_are_read(void **state)
{
    (void)state;
    const char *body = "{\"since\": \"2026-01-01T00:00:00Z\", \"until\": "
                       "\"2026-01-02T00:00:00Z\", \"status\": \"success\"}";
    ing_crm_replay r;
    bz_error err;
    assert_int_equal(ing_crm_json_replay(body, strlen(body), &r, &err), BZ_OK);
    assert_true(r.has_until);
    assert_int_equal(r.until_ms - r.since_ms, 86400000);
    assert_string_equal(r.status, "success");
    body = "{\"since\": \"2026-01-01T00:00:00Z\", \"status\": \"retrying\"}";
    assert_int_not_equal(ing_crm_json_replay(body, strlen(body), &r, &err), BZ_OK);
    assert_non_null(strstr(err.msg, "field status:"));
    body = "{\"until\": \"2026-01-02T00:00:00Z\"}";
    assert_int_not_equal(ing_crm_json_replay(body, strlen(body), &r, &err), BZ_OK);
    assert_string_equal(err.reason, "missing_field");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(date_times_are_taken_as_given),
        cmocka_unit_test(other_times_are_refused_naming_the_field),
        cmocka_unit_test(until_and_status_are_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
