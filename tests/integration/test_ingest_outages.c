/*
 * test_ingest_outages.c - blazz-ingest while the broker or the database is
 * away (scripts/test.sh runs it on the outage stack, which it may stop):
 *  - with the broker stopped a POST answers 503, once it is back the same
 *    event is accepted (202) and reaches chat.sync;
 *  - with PostgreSQL stopped /readyz answers 503 naming it, once it is back
 *    200, and the first event needing a lookup is accepted;
 *  - with PostgreSQL stopped an event of a session ingest has cached is
 *    accepted, one of a session it must look up is 503 (naming the lookup,
 *    not the broker), and accepted once the database is back.
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
    assert_non_null(strstr(r.body, "the broker did not acknowledge the event"));

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

/* A connected account of the fixture's workspace and gateway, its session
 * id unique from prefix into out: one ingest has never looked up. */
static void add_session(const char *prefix, char *out, size_t cap)
{
    itest_unique(prefix, out, cap);
    itest_pg_int64f(fx.conn, "INSERT INTO whatsapp_accounts (workspace_id, session_id, status, "
                             "gateway_id) VALUES (%lld, '%s', 'connected', '%s') RETURNING id",
                    (long long)fx.workspace, out, fx.gateway);
}

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
 * answers for a while, but the instance is not ready. Once it is ready
 * again, the first lookup is answered: the session the restart closed is
 * not used for it (it failed that lookup with 503 once). */
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

    char session[64], json[1024], id[BZ_UUID_STR_SIZE];
    add_session("itest-after-", session, sizeof session);
    snprintf(json, sizeof json, "{\"session_id\":\"%s\",\"contact_phone\":\"6281234567890\","
             "\"message_body\":\"after\",\"timestamp\":1700000000,\"message_id\":\"pg-a\"}",
             session);
    itest_http_reply r = ingest_fx_post_json(&fx, json);
    ingest_fx_accepted_id(&r, id);
}

/* The HTTP path finds a session's owner itself (ARCHITECTURE.md §8): with
 * PostgreSQL down, an event of a session it has cached is still accepted,
 * one of a session it would have to look up is 503, and the gateway's
 * retry once the database is back is accepted and reaches chat.sync. */
static void test_postgresql_down_accepts_cached_sessions_only(void **state)
{
    (void)state;
    char fresh[64], json[1024], cached_id[BZ_UUID_STR_SIZE], fresh_id[BZ_UUID_STR_SIZE];
    add_session("itest-fresh-", fresh, sizeof fresh);
    snprintf(json, sizeof json, "{\"session_id\":\"%s\",\"contact_phone\":\"6281234567890\","
             "\"message_body\":\"warm\",\"timestamp\":1700000000,\"message_id\":\"pg-0\"}",
             fx.session);
    itest_http_reply r = ingest_fx_post_json(&fx, json);
    ingest_fx_accepted_id(&r, cached_id);

    itest_stack("stop-pg");
    wait_readyz(503, "\"ok\":false");
    snprintf(json, sizeof json, "{\"session_id\":\"%s\",\"contact_phone\":\"6281234567890\","
             "\"message_body\":\"cached\",\"timestamp\":1700000000,\"message_id\":\"pg-1\"}",
             fx.session);
    r = ingest_fx_post_json(&fx, json);
    long cached_status = r.status;
    if (cached_status == 202)
        ingest_fx_accepted_id(&r, cached_id);
    snprintf(json, sizeof json, "{\"session_id\":\"%s\",\"contact_phone\":\"6281234567890\","
             "\"message_body\":\"fresh\",\"timestamp\":1700000000,\"message_id\":\"pg-2\"}",
             fresh);
    r = ingest_fx_post_json(&fx, json);
    long fresh_status = r.status;
    itest_stack("start-pg");
    assert_int_equal(cached_status, 202);
    assert_int_equal(fresh_status, 503);
    /* the answer names the lookup, not the broker, as what failed */
    assert_non_null(strstr(r.body, "the event could not be routed now"));

    int64_t deadline = bz_monotonic_ms() + INGEST_FX_WAIT_MS;
    do {
        r = ingest_fx_post_json(&fx, json);
        if (r.status != 202)
            itest_sleep_ms(500);
    } while (r.status != 202 && bz_monotonic_ms() < deadline);
    ingest_fx_accepted_id(&r, fresh_id);
    const char *want[] = {cached_id, fresh_id};
    ingest_records rs = {0};
    ingest_records_wait_for(&fx, fx.sync, want, 2, &rs);
    ingest_records_free(&rs);
    PQreset(fx.conn);
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
        cmocka_unit_test(test_postgresql_down_accepts_cached_sessions_only),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
