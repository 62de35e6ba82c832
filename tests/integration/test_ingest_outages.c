/*
 * test_ingest_outages.c - blazz-ingest while the broker or the database is
 * away (scripts/test.sh runs it on the outage stack, which it may stop):
 *  - with the broker stopped a POST answers 503, once it is back the same
 *    event is accepted (202) and reaches chat.sync;
 *  - with PostgreSQL stopped /readyz answers 503 naming it, once it is back
 *    200, and the first event needing a lookup is accepted;
 *  - with PostgreSQL stopped an event of a session ingest has cached is
 *    accepted, one of a session it must look up is 503 (naming the lookup,
 *    not the broker), and accepted once the database is back;
 *  - stopping with the broker stopped: a CRM request held by a table lock
 *    keeps ingest stopping after its wait for the broker; meanwhile a
 *    gateway event comes in on a connection kept alive from before the
 *    SIGTERM and is answered 503 at once (ingest waits for no broker any
 *    more: it slept through the stop before, which aborted it); the lock
 *    let go, the CRM request is answered and ingest exits 0.
 * The ingest is test_ingest's (support/ingest_itest.c); the last test
 * stops it.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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

/* ---- stopping while the broker is away ---------------------------------- */

/* A GET of the workspace's webhook endpoints, kept alive, with key. */
static void get_endpoints(int fd, const char *key)
{
    char request[512];
    int n = snprintf(request, sizeof request,
                     "GET /v1/webhook-endpoints HTTP/1.1\r\nHost: ingest\r\n"
                     "Authorization: Bearer %s\r\n\r\n",
                     key);
    itest_http_write(fd, request, (size_t)n);
}

/* A signed gateway event, kept alive. */
static void post_event(int fd)
{
    char json[1024], event_id[BZ_UUID_STR_SIZE], request[4096];
    itest_gateway_headers h;
    ingest_message_event_json(fx.session, "stop-1", event_id, json, sizeof json);
    assert_int_equal(itest_gateway_sign(fx.gateway, INGEST_FX_SECRET, json, strlen(json),
                                        "Content-Type: application/json", &h),
                     BZ_OK);
    int n = snprintf(request, sizeof request,
                     "POST /v1/events HTTP/1.1\r\nHost: ingest\r\nContent-Length: %zu\r\n",
                     strlen(json));
    for (int i = 0; h.lines[i]; i++)
        n += snprintf(request + n, sizeof request - (size_t)n, "%s\r\n", h.lines[i]);
    n += snprintf(request + n, sizeof request - (size_t)n, "\r\n%s", json);
    assert_true((size_t)n < sizeof request);
    itest_http_write(fd, request, (size_t)n);
}

/* Poll until a statement on webhook_endpoints waits for a lock, or fail. */
static void wait_for_a_blocked_read(void)
{
    PGconn *watcher = itest_pg_connect();
    int64_t deadline = bz_monotonic_ms() + INGEST_FX_WAIT_MS;
    while (itest_pg_int64f(watcher, "SELECT count(*) FROM pg_stat_activity WHERE "
                                    "wait_event_type = 'Lock' AND query LIKE "
                                    "'%%webhook_endpoints%%'") == 0) {
        if (bz_monotonic_ms() > deadline)
            fail_msg("ingest's read of webhook_endpoints never waited for the lock");
        itest_sleep_ms(50);
    }
    PQfinish(watcher);
}

static void test_stops_cleanly_with_a_request_on_a_kept_alive_connection(void **state)
{
    (void)state;
    char err_log[300];
    snprintf(err_log, sizeof err_log, "%s.blazzctl", fx.log_path);
    char *key = itest_api_key(fx.workspace, err_log);
    itest_http_reply kept, held;
    int kept_fd = itest_http_connect(fx.port), held_fd = itest_http_connect(fx.port);
    get_endpoints(kept_fd, key);
    itest_http_read_answer(kept_fd, INGEST_FX_WAIT_MS, &kept);
    assert_int_equal(kept.status, 200);

    itest_stack("stop-kafka");
    itest_pg_exec(fx.conn, "BEGIN");
    itest_pg_exec(fx.conn, "LOCK TABLE webhook_endpoints IN ACCESS EXCLUSIVE MODE");
    get_endpoints(held_fd, key);
    wait_for_a_blocked_read();
    kill(fx.ingest, SIGTERM);
    if (!itest_file_contains_within(fx.log_path, "waiting for 1 CRM requests", fx.ingest,
                                    INGEST_FX_WAIT_MS))
        fail_msg("ingest did not wait for the held CRM request (see %s)", fx.log_path);

    post_event(kept_fd);
    itest_http_read_answer(kept_fd, 1000, &kept);
    itest_pg_exec(fx.conn, "COMMIT");
    if (kept.status == 0)
        itest_http_read_answer(kept_fd, INGEST_FX_WAIT_MS, &kept);
    itest_http_read_answer(held_fd, INGEST_FX_WAIT_MS, &held);
    int rc = itest_wait(fx.ingest);
    fx.ingest = 0;
    itest_stack("start-kafka");
    close(kept_fd);
    close(held_fd);
    free(key);
    if (rc != 0)
        fail_msg("ingest exited with %d after SIGTERM (see %s)", rc, fx.log_path);
    assert_int_equal(held.status, 200);
    assert_int_equal(kept.status, 503);
    assert_non_null(strstr(kept.body, "ingest is stopping"));
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
        cmocka_unit_test(test_stops_cleanly_with_a_request_on_a_kept_alive_connection),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
