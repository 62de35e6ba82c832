/*
 * test_ingest_outages.c - blazz-ingest while the broker or the database is
 * away (scripts/test.sh runs it on the outage stack, which it may stop):
 *  - with the broker stopped a POST answers 503, once it is back the same
 *    event is accepted (202) and reaches chat.sync;
 *  - with PostgreSQL stopped /readyz answers 503 naming it, once it is back
 *    200.
 * The ingest is test_ingest's (support/ingest_itest.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/clock.h"
#include "ingest_itest.h"
#include "itest.h"

static ingest_fx fx;

/* ---- the broker down ------------------------------------------------------ */

static void test_broker_down_is_503_and_back_is_accepted(void **state)
{
    (void)state;
    char json[1024], id[BZ_UUID_STR_SIZE];
    snprintf(json, sizeof json, "{\"session_id\":\"%s\",\"contact_phone\":\"6281234567890\","
             "\"message_body\":\"before\",\"timestamp\":1700000000,\"message_id\":\"bd-0\"}",
             fx.session);
    itest_http_reply r = ingest_fx_post_json(&fx, json);
    ingest_fx_accepted_id(&r, id);

    itest_stack("stop-kafka");
    snprintf(json, sizeof json, "{\"session_id\":\"%s\",\"contact_phone\":\"6281234567890\","
             "\"message_body\":\"during\",\"timestamp\":1700000000,\"message_id\":\"bd-1\"}",
             fx.session);
    r = ingest_fx_post_json(&fx, json);
    long during = r.status;
    itest_stack("start-kafka");
    assert_int_equal(during, 503);
    assert_non_null(strstr(r.body, "\"error\":\"unavailable\""));

    /* The gateway retries the same event until it is accepted. */
    int64_t deadline = bz_monotonic_ms() + INGEST_FX_WAIT_MS;
    do {
        r = ingest_fx_post_json(&fx, json);
        if (r.status != 202)
            itest_sleep_ms(500);
    } while (r.status != 202 && bz_monotonic_ms() < deadline);
    ingest_fx_accepted_id(&r, id);
    const char *want[] = {id};
    ingest_records rs = {0};
    ingest_records_wait_for(&fx, fx.sync, want, 1, &rs);
    ingest_records_free(&rs);
}

/* ---- PostgreSQL down: /readyz says so ------------------------------- */

/* Poll /readyz until its status is want and its postgresql check reads
 * check ("\"ok\":true" or false), or fail. */
static void wait_readyz(long want, const char *check)
{
    char needle[96];
    static itest_http_reply reply;
    snprintf(needle, sizeof needle, "{\"name\":\"postgresql\",%s", check);
    itest_wait_readyz(fx.admin_port, want, needle, fx.ingest, fx.log_path, INGEST_FX_WAIT_MS, &reply);
}

/* ingest resolves sessions in PostgreSQL: with it down the cache still
 * answers for a while, but the instance is not ready. */
static void test_readyz_reports_postgresql_down_and_back(void **state)
{
    (void)state;
    wait_readyz(200, "\"ok\":true");
    itest_stack("stop-pg");
    wait_readyz(503, "\"ok\":false");
    itest_stack("start-pg");
    wait_readyz(200, "\"ok\":true");
    PQreset(fx.conn);
    assert_int_equal(PQstatus(fx.conn), CONNECTION_OK);
}

static int setup_all(void **state)
{
    (void)state;
    ingest_fx_setup(&fx);
    return 0;
}

static int teardown_all(void **state)
{
    (void)state;
    ingest_fx_teardown(&fx);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_broker_down_is_503_and_back_is_accepted),
        cmocka_unit_test(test_readyz_reports_postgresql_down_and_back),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
