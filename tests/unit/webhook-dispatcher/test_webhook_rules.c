/*
 * test_webhook_rules.c - the webhook dispatcher's delivery rules without a
 * network: attempt classification (classify.c), Retry-After parsing and
 * clamping, and the retry schedule with jitter (schedule.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "classify.h"
#include "schedule.h"

#define MAX_RA 60000

static wh_outcome http(long status, int64_t retry_after)
{
    return wh_classify(WH_T_RESPONSE, status, retry_after, MAX_RA);
}

static void test_2xx_is_success(void **state)
{
    (void)state;
    assert_int_equal(http(200, -1).verdict, WH_SUCCESS);
    assert_int_equal(http(204, -1).verdict, WH_SUCCESS);
    assert_int_equal(http(299, -1).verdict, WH_SUCCESS);
}

static void test_server_errors_timeouts_and_throttling_are_retried(void **state)
{
    (void)state;
    long retried[] = {500, 502, 503, 504, 408, 429};
    for (size_t i = 0; i < sizeof retried / sizeof *retried; i++)
        assert_int_equal(http(retried[i], -1).verdict, WH_RETRY);
    wh_transport t[] = {WH_T_TIMEOUT, WH_T_DNS, WH_T_CONNECT, WH_T_RESET,
                           WH_T_OTHER};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        assert_int_equal(wh_classify(t[i], 0, -1, MAX_RA).verdict, WH_RETRY);
    assert_string_equal(wh_classify(WH_T_TIMEOUT, 0, -1, MAX_RA).reason, "timeout");
}

static void test_other_4xx_and_redirects_fail_without_retry(void **state)
{
    (void)state;
    long failed[] = {400, 401, 403, 404, 409, 413, 422, 301, 302, 307, 308};
    for (size_t i = 0; i < sizeof failed / sizeof *failed; i++)
        assert_int_equal(http(failed[i], -1).verdict, WH_FAIL);
    assert_string_equal(http(302, -1).reason, "3xx");
    assert_string_equal(http(404, -1).reason, "4xx");
}

static void test_410_disables_and_ssrf_refusal_fails(void **state)
{
    (void)state;
    assert_int_equal(http(410, -1).verdict, WH_FAIL_DISABLE);
    wh_outcome o = wh_classify(WH_T_SSRF, 0, -1, MAX_RA);
    assert_int_equal(o.verdict, WH_FAIL);
    assert_string_equal(o.reason, "ssrf");
}

static void test_retry_after_is_honoured_and_clamped(void **state)
{
    (void)state;
    assert_int_equal(http(429, 2000).retry_after_ms, 2000);
    assert_int_equal(http(503, 5000).retry_after_ms, 5000);
    assert_int_equal(http(429, 10 * MAX_RA).retry_after_ms, MAX_RA);
    assert_int_equal(http(500, 2000).retry_after_ms, -1); /* only 429/503 carry it */
    assert_int_equal(wh_parse_retry_after("2", 0), 2000);
    assert_int_equal(wh_parse_retry_after(" 120 ", 0), 120000);
    assert_int_equal(wh_parse_retry_after("soon", 0), -1);
    assert_int_equal(wh_parse_retry_after("-3", 0), -1);
    /* HTTP-date 30 s after "now" */
    int64_t now = (int64_t)784111747 * 1000; /* Sun, 06 Nov 1994 08:49:07 GMT */
    assert_int_equal(wh_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now), 30000);
    assert_int_equal(wh_parse_retry_after("Sun, 06 Nov 1994 08:48:37 GMT", now), 0);
}

static void test_transport_mapping_from_curl(void **state)
{
    (void)state;
    assert_int_equal(wh_transport_from_curl(CURLE_OPERATION_TIMEDOUT), WH_T_TIMEOUT);
    assert_int_equal(wh_transport_from_curl(CURLE_COULDNT_RESOLVE_HOST), WH_T_DNS);
    assert_int_equal(wh_transport_from_curl(CURLE_COULDNT_CONNECT), WH_T_CONNECT);
    assert_int_equal(wh_transport_from_curl(CURLE_GOT_NOTHING), WH_T_RESET);
    assert_int_equal(wh_transport_from_curl(CURLE_RECV_ERROR), WH_T_RESET);
    assert_int_equal(wh_transport_from_curl(CURLE_OK), WH_T_RESPONSE);
}

static void test_default_schedule_parses(void **state)
{
    (void)state;
    wh_schedule s;
    assert_int_equal(wh_schedule_parse("0,5s,5m,30m,2h,5h,10h,10h", &s, NULL), BZ_OK);
    int64_t want[] = {0, 5000, 300000, 1800000, 7200000, 18000000, 36000000, 36000000};
    assert_int_equal(s.count, 8);
    for (size_t i = 0; i < 8; i++)
        assert_int_equal(s.delay_ms[i], want[i]);
    assert_int_equal(wh_schedule_parse("0, 300ms ,1.5s", &s, NULL), BZ_OK);
    assert_int_equal(s.count, 3);
    assert_int_equal(s.delay_ms[2], 1500);
}

static void test_bad_schedules_are_config_errors(void **state)
{
    (void)state;
    wh_schedule s;
    bz_error err;
    assert_int_equal(wh_schedule_parse("", &s, &err), BZ_ERR_CONFIG);
    assert_int_equal(wh_schedule_parse("5x", &s, &err), BZ_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "unit"));
    assert_int_equal(wh_schedule_parse("1,,2", &s, &err), BZ_ERR_CONFIG);
    assert_int_equal(wh_schedule_parse("-1", &s, &err), BZ_ERR_CONFIG);
}

static void test_schedule_delays_exhaustion_and_jitter(void **state)
{
    (void)state;
    wh_schedule s;
    assert_int_equal(wh_schedule_parse("0,5s,5m,30m", &s, NULL), BZ_OK);
    s.jitter = 0;
    assert_int_equal(wh_schedule_delay_ms(&s, 1, 0.5, -1), 5000);
    assert_int_equal(wh_schedule_delay_ms(&s, 2, 0.5, -1), 300000);
    s.jitter = 0.2;
    assert_int_equal(wh_schedule_delay_ms(&s, 1, 0.0, -1), 4000);
    assert_int_equal(wh_schedule_delay_ms(&s, 1, 0.99999, -1), 5999);
    for (int step = 0; step < 100; step++) {
        int64_t d = wh_schedule_delay_ms(&s, 1, step / 100.0, -1);
        assert_in_range(d, 4000, 6000);
    }
    /* Retry-After is a floor, never shortened by jitter */
    assert_int_equal(wh_schedule_delay_ms(&s, 1, 0.0, 9000), 9000);
    assert_int_equal(wh_schedule_delay_ms(&s, 2, 0.5, 9000), 300000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_2xx_is_success),
        cmocka_unit_test(test_server_errors_timeouts_and_throttling_are_retried),
        cmocka_unit_test(test_other_4xx_and_redirects_fail_without_retry),
        cmocka_unit_test(test_410_disables_and_ssrf_refusal_fails),
        cmocka_unit_test(test_retry_after_is_honoured_and_clamped),
        cmocka_unit_test(test_transport_mapping_from_curl),
        cmocka_unit_test(test_default_schedule_parses),
        cmocka_unit_test(test_bad_schedules_are_config_errors),
        cmocka_unit_test(test_schedule_delays_exhaustion_and_jitter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
