/*
 * test_webhook.c - blazz-webhook-dispatcher against the real stack and the
 * test receiver (tools/blazz-webhook-receiver).
 *
 *  - delivery rules: one ChatEvent fans out to endpoints that answer in
 *    different ways. Standard Webhooks and X-WhatsApp-Signature signatures
 *    are checked with an HMAC written here on OpenSSL (not the project's
 *    signing code), against the published test vector first; 3 failures
 *    then success = exactly 4 attempts with growing gaps; 400 = one attempt,
 *    failed; 410 disables the endpoint; 429 with Retry-After: 2 = no retry
 *    sooner than 2 s; a hanging receiver times out and is retried; an
 *    exhausted delivery lands on webhook.dlq, and `blazzctl dlq replay`
 *    of that dead letter delivers again with the same webhook-id; an
 *    endpoint filtering other event types gets nothing.
 *  - unsendable payload: a stored delivery whose payload is not UTF-8 text
 *    (written by hand, not by the dispatcher) goes to webhook.dlq as
 *    invalid_payload and is marked failed, while a normal event to the
 *    same endpoint in the same claim is delivered.
 *  - SSRF: with private targets refused, an endpoint on the live loopback
 *    receiver gets no request and the delivery fails naming the reason.
 *  - isolation: a hanging endpoint next to a healthy one; the healthy one's
 *    p99 latency is measured with and without it and printed (the test
 *    asserts only that every healthy delivery arrived).
 *  - crash: SIGKILL the dispatcher BLAZZ_WEBHOOK_CRASH_KILLS times (default
 *    5) while it delivers BLAZZ_WEBHOOK_CRASH_EVENTS (default 5,000) events
 *    to 5 endpoints;
 *    afterwards every (event, endpoint) pair arrived at least once, every
 *    request's webhook-id is its event's id, and no row is left open.
 *  - crash after the fan-out's commit: SIGKILL while rows the fan-out
 *    committed leased to its own worker wait, never attempted, behind a
 *    slow endpoint; the next dispatcher delivers each of them, and none
 *    before its lease ran out.
 */
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "blazz/v1/dead_letter.pb-c.h"
#include "core/clock.h"
#include "itest.h"
#include "webhook_itest.h"

#define SIG_TEST_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SIG_ROTATED_SECRET "whsec_c2Vjb25kLXNlY3JldC1mb3Itcm90YXRpb24="
#define HMAC_SECRET "crm-shared-secret"
#define MAX_REQ 64

static void hex_hmac(const char *secret, const char *body, char out[65])
{
    unsigned char mac[32];
    unsigned int len = 0;
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)body, strlen(body),
         mac, &len);
    for (unsigned i = 0; i < len; i++)
        snprintf(out + 2 * i, 3, "%02x", mac[i]);
}

static void test_verifier_matches_published_vector(void **state)
{
    (void)state;
    assert_true(wh_verify_standard(SIG_TEST_SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330",
                                "{\"test\": 2432232314}",
                                "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="));
    assert_false(wh_verify_standard(SIG_TEST_SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265331",
                                 "{\"test\": 2432232314}",
                                 "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="));
}

/* ---- helpers ------------------------------------------------------------- */

static double t_ms(json_t *req)
{
    return json_real_value(json_object_get(req, "t_ms"));
}

static const char *fast_retries[] = {
    "BLAZZ_WEBHOOK_ALLOW_PRIVATE_TARGETS=true", "BLAZZ_WEBHOOK_RETRY_SCHEDULE=0,300ms,600ms,1200ms",
    "BLAZZ_WEBHOOK_RETRY_JITTER=0.1",           "BLAZZ_WEBHOOK_TIMEOUT_MS=1000",
    "BLAZZ_WEBHOOK_CONNECT_TIMEOUT_MS=1000",    "BLAZZ_WEBHOOK_CLAIM_LEASE_MS=5000",
    "BLAZZ_WEBHOOK_POLL_MS=100",                NULL};

static char *row_text(wh_env *e, const char *sql)
{
    PGresult *res = PQexec(e->conn, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
        fail_msg("%s: %s", sql, PQresultErrorMessage(res));
    char *v = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return v;
}

typedef struct dlq_find {
    char endpoint[24];
    Blazz__V1__DeadLetter *found;
    char event_id[64];
} dlq_find;

static void find_dead_letter(void *ctx, const rd_kafka_message_t *msg)
{
    dlq_find *f = ctx;
    if (!f->found && wh_record_header_is(msg, "webhook-endpoint-id", f->endpoint))
        f->found = blazz__v1__dead_letter__unpack(NULL, msg->len, msg->payload);
}

/* ---- delivery rules ------------------------------------------------------ */

typedef struct rules {
    wh_env e;
    char event_id[40];
    int64_t ok_std, ok_hmac, flaky, bad, gone, retry_after, hang, dead, filtered;
    char path[9][96];
} rules;

static void add_rule_endpoints(rules *r)
{
    const char *t = r->e.token;
    snprintf(r->path[0], 96, "/ok/std-%s", t);
    snprintf(r->path[1], 96, "/ok/hmac-%s", t);
    snprintf(r->path[2], 96, "/flaky/3/%s", t);
    snprintf(r->path[3], 96, "/status/400/%s", t);
    snprintf(r->path[4], 96, "/gone/%s", t);
    snprintf(r->path[5], 96, "/retry-after/2/%s", t);
    snprintf(r->path[6], 96, "/hang/%s", t);
    snprintf(r->path[7], 96, "/status/500/%s", t);
    snprintf(r->path[8], 96, "/ok/filtered-%s", t);
    r->ok_std = wh_endpoint_add(&r->e, r->path[0], SIG_TEST_SECRET " " SIG_ROTATED_SECRET,
                                "standard", "{*}", 1000, 4);
    r->ok_hmac = wh_endpoint_add(&r->e, r->path[1], HMAC_SECRET, "whatsapp_hmac",
                                 "{message.created}", 1000, 4);
    r->flaky = wh_endpoint_add(&r->e, r->path[2], SIG_TEST_SECRET, "standard", "{*}", 1000, 4);
    r->bad = wh_endpoint_add(&r->e, r->path[3], SIG_TEST_SECRET, "standard", "{*}", 1000, 4);
    r->gone = wh_endpoint_add(&r->e, r->path[4], SIG_TEST_SECRET, "standard", "{*}", 1000, 4);
    r->retry_after = wh_endpoint_add(&r->e, r->path[5], SIG_TEST_SECRET, "standard", "{*}", 1000, 4);
    r->hang = wh_endpoint_add(&r->e, r->path[6], SIG_TEST_SECRET, "standard", "{*}", 1000, 4);
    r->dead = wh_endpoint_add(&r->e, r->path[7], SIG_TEST_SECRET, "standard", "{*}", 1000, 4);
    r->filtered = wh_endpoint_add(&r->e, r->path[8], SIG_TEST_SECRET, "standard",
                                  "{session.status,campaign.completed}", 1000, 4);
}

static void check_signed_delivery(rules *r, json_t *all)
{
    json_t *req[MAX_REQ];
    assert_int_equal(wh_filter(all, r->path[0], req, MAX_REQ), 1);
    const char *body = json_string_value(json_object_get(req[0], "body"));
    assert_string_equal(wh_header(req[0], "webhook-id"), r->event_id);
    assert_non_null(wh_header(req[0], "webhook-timestamp"));
    assert_true(wh_verify_standard(SIG_TEST_SECRET, r->event_id, wh_header(req[0], "webhook-timestamp"),
                                body, wh_header(req[0], "webhook-signature")));
    assert_true(wh_verify_standard(SIG_ROTATED_SECRET, r->event_id,
                                wh_header(req[0], "webhook-timestamp"), body,
                                wh_header(req[0], "webhook-signature")));
    assert_false(wh_verify_standard(SIG_TEST_SECRET, r->event_id, "1614265330", body,
                                 wh_header(req[0], "webhook-signature")));
    json_t *doc = json_loads(body, 0, NULL);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "id")), r->event_id);
    assert_string_equal(json_string_value(json_object_get(doc, "type")), "message.created");
    assert_int_equal(json_integer_value(json_object_get(doc, "workspace_id")), r->e.workspace_id);
    json_t *data = json_object_get(doc, "data");
    assert_string_equal(json_string_value(json_object_get(json_object_get(data, "chat"), "message")),
                        "hello rules");
    assert_string_equal(json_string_value(json_object_get(json_object_get(data, "chat"), "type")),
                        "inbound");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(data, "contact"), "phone")),
        "+6281234567890");
    assert_true(json_is_null(json_object_get(data, "group")));
    json_decref(doc);

    assert_int_equal(wh_filter(all, r->path[1], req, MAX_REQ), 1);
    char expected[65];
    hex_hmac(HMAC_SECRET, json_string_value(json_object_get(req[0], "body")), expected);
    assert_string_equal(wh_header(req[0], "x-whatsapp-signature"), expected);
}

static void check_retry_rules(rules *r, json_t *all)
{
    json_t *req[MAX_REQ];
    char sql[256];
    /* 3 failures then success: exactly 4 attempts, none before its step
     * of fast_retries' schedule less the jitter. Lower bounds only: a busy
     * host delays an attempt, never hastens one, and gaps that merely had
     * to grow failed when one step was late and the next on time. */
    static const double schedule_ms[] = {300, 600, 1200};
    assert_int_equal(wh_filter(all, r->path[2], req, MAX_REQ), 4);
    for (int i = 0; i < 4; i++) {
        assert_string_equal(wh_header(req[i], "webhook-id"), r->event_id);
        assert_int_equal(json_integer_value(json_object_get(req[i], "status")), i < 3 ? 500 : 200);
        if (i > 0) {
            double gap = t_ms(req[i]) - t_ms(req[i - 1]);
            print_message("flaky endpoint: gap before attempt %d = %.0f ms\n", i + 1, gap);
            if (gap < 0.9 * schedule_ms[i - 1])
                fail_msg("attempt %d came %.0f ms after attempt %d (schedule: %.0f ms, jitter "
                         "10%%)", i + 1, gap, i, schedule_ms[i - 1]);
        }
    }
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM webhook_retry_queue WHERE endpoint_id = %lld "
             "AND status = 'success' AND retry_count = 3", (long long)r->flaky);
    assert_int_equal(wh_int(&r->e, sql), 1);

    /* 400: one attempt, failed with the code */
    assert_int_equal(wh_filter(all, r->path[3], req, MAX_REQ), 1);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM webhook_retry_queue WHERE endpoint_id = %lld "
             "AND status = 'failed' AND last_status_code = 400", (long long)r->bad);
    assert_int_equal(wh_int(&r->e, sql), 1);

    /* 410: one attempt, endpoint disabled */
    assert_int_equal(wh_filter(all, r->path[4], req, MAX_REQ), 1);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM webhook_endpoints WHERE id = %lld AND NOT enabled "
             "AND disabled_reason LIKE '%%410%%'", (long long)r->gone);
    assert_int_equal(wh_int(&r->e, sql), 1);

    /* 429 Retry-After: 2 -> never again sooner than 2 s */
    size_t n = wh_filter(all, r->path[5], req, MAX_REQ);
    assert_true(n >= 2);
    for (size_t i = 1; i < n; i++) {
        double gap = t_ms(req[i]) - t_ms(req[i - 1]);
        print_message("429 endpoint: gap %zu = %.0f ms\n", i, gap);
        assert_true(gap >= 2000.0);
    }

    /* hanging receiver: timeout, retried */
    assert_true(wh_filter(all, r->path[6], req, MAX_REQ) >= 2);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM webhook_retry_queue WHERE endpoint_id = %lld "
             "AND last_error LIKE '%%timeout%%'", (long long)r->hang);
    assert_int_equal(wh_int(&r->e, sql), 1);

    /* filtered out: nothing queued, nothing sent */
    assert_int_equal(wh_filter(all, r->path[8], req, MAX_REQ), 0);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM webhook_retry_queue WHERE endpoint_id = %lld",
             (long long)r->filtered);
    assert_int_equal(wh_int(&r->e, sql), 0);
}

/* Exhausted -> dead letter; republish it (as `blazzctl dlq replay` does)
 * after pointing the endpoint at a healthy path: delivered, same id. */
static void check_dead_letter_and_replay(rules *r)
{
    json_t *req[MAX_REQ];
    char sql[512], topic[200];
    json_t *all = wh_requests(&r->e);
    assert_int_equal(wh_filter(all, r->path[7], req, MAX_REQ), 4);
    json_decref(all);
    snprintf(topic, sizeof topic, "%swebhook.dlq", r->e.prefix);
    dlq_find f = {.found = NULL};
    snprintf(f.endpoint, sizeof f.endpoint, "%lld", (long long)r->dead);
    itest_consume_all(topic, find_dead_letter, &f);
    assert_non_null(f.found);
    Blazz__V1__DeadLetter *dl = f.found;
    assert_string_equal(dl->event_id, r->event_id);
    assert_string_equal(dl->error_code, "webhook_exhausted");
    assert_int_equal(dl->attempts, 4);
    assert_non_null(strstr(dl->error_message, "HTTP 500"));
    char chat_topic[200];
    snprintf(chat_topic, sizeof chat_topic, "%schat.events", r->e.prefix);
    assert_string_equal(dl->original_topic, chat_topic);

    snprintf(sql, sizeof sql,
             "UPDATE webhook_endpoints SET url = 'http://127.0.0.1:%d/ok/replayed-%s' "
             "WHERE id = %lld", r->e.port, r->e.token, (long long)r->dead);
    itest_pg_exec(r->e.conn, sql);
    /* What an operator does: blazzctl republishes the dead letters. The
     * hanging endpoint's exhausted delivery is replayed too and simply
     * fails again; only the fixed endpoint's is checked. */
    const char *replay[] = {"dlq",      "replay", "webhook.dlq", "--prefix", r->e.prefix,
                            "--filter", "error=webhook_exhausted", "--json", NULL};
    json_t *done = itest_blazzctl_json(replay, r->e.dispatcher_log);
    assert_true(json_integer_value(json_object_get(done, "replayed")) >= 1);
    assert_int_equal(json_integer_value(json_object_get(done, "failed")), 0);
    json_decref(done);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM webhook_retry_queue WHERE endpoint_id = %lld "
             "AND status = 'success'", (long long)r->dead);
    wh_wait_for(&r->e, sql, 1, 60000);
    char replay_path[96];
    snprintf(replay_path, sizeof replay_path, "/ok/replayed-%s", r->e.token);
    all = wh_requests(&r->e);
    assert_int_equal(wh_filter(all, replay_path, req, MAX_REQ), 1);
    assert_string_equal(wh_header(req[0], "webhook-id"), r->event_id);
    assert_true(wh_verify_standard(SIG_TEST_SECRET, r->event_id, wh_header(req[0], "webhook-timestamp"),
                                json_string_value(json_object_get(req[0], "body")),
                                wh_header(req[0], "webhook-signature")));
    json_decref(all);
    blazz__v1__dead_letter__free_unpacked(dl, NULL);
}

static void test_delivery_rules(void **state)
{
    (void)state;
    rules r;
    memset(&r, 0, sizeof r);
    wh_env_setup(&r.e, "rules");
    add_rule_endpoints(&r);
    wh_dispatcher_start(&r.e, fast_retries);
    wh_produce_one(&r.e, r.event_id, "hello rules");
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM webhook_retry_queue WHERE workspace_id = %lld "
             "AND status IN ('success', 'failed')", (long long)r.e.workspace_id);
    wh_wait_for(&r.e, sql, 8, 90000);
    json_t *all = wh_requests(&r.e);
    check_signed_delivery(&r, all);
    check_retry_rules(&r, all);
    json_decref(all);
    check_dead_letter_and_replay(&r);
    wh_env_teardown(&r.e);
}

/* ---- an unsendable stored payload ------------------------------------------ */

static void test_unsendable_payload_is_dead_lettered(void **state)
{
    (void)state;
    wh_env e;
    wh_env_setup(&e, "payload");
    char path[96], event_id[40], sql[512], topic[200];
    snprintf(path, sizeof path, "/ok/payload-%s", e.token);
    int64_t ep = wh_endpoint_add(&e, path, SIG_TEST_SECRET, "standard", "{*}", 100, 2);
    snprintf(sql, sizeof sql,
             "INSERT INTO webhook_retry_queue (event_id, endpoint_id, workspace_id, event_type, "
             "payload) VALUES (gen_random_uuid(), %lld, %lld, 'message.created', "
             "'\\x7b2261223a00ff7d')",
             (long long)ep, (long long)e.workspace_id);
    itest_pg_exec(e.conn, sql);
    wh_dispatcher_start(&e, fast_retries);
    wh_produce_one(&e, event_id, "delivered next to a bad row");
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM webhook_retry_queue WHERE endpoint_id = %lld "
             "AND status IN ('success', 'failed')", (long long)ep);
    wh_wait_for(&e, sql, 2, 60000);
    snprintf(sql, sizeof sql,
             "SELECT status || ' ' || last_error FROM webhook_retry_queue "
             "WHERE endpoint_id = %lld AND event_id <> '%s'", (long long)ep, event_id);
    char *row = row_text(&e, sql);
    print_message("bad payload row: %s\n", row);
    assert_true(strncmp(row, "failed ", 7) == 0);
    assert_non_null(strstr(row, "not UTF-8"));
    free(row);
    json_t *all = wh_requests(&e), *req[4];
    assert_int_equal(wh_filter(all, path, req, 4), 1);
    assert_string_equal(wh_header(req[0], "webhook-id"), event_id);
    json_decref(all);
    snprintf(topic, sizeof topic, "%swebhook.dlq", e.prefix);
    dlq_find f = {.found = NULL};
    snprintf(f.endpoint, sizeof f.endpoint, "%lld", (long long)ep);
    itest_consume_all(topic, find_dead_letter, &f);
    assert_non_null(f.found);
    assert_string_equal(f.found->error_code, "invalid_payload");
    assert_int_equal(f.found->original_value.len, 8);
    assert_int_equal(f.found->original_value.data[5], 0);
    blazz__v1__dead_letter__free_unpacked(f.found, NULL);
    wh_env_teardown(&e);
}

/* ---- SSRF ---------------------------------------------------------------- */

static void test_ssrf_refuses_loopback(void **state)
{
    (void)state;
    wh_env e;
    wh_env_setup(&e, "ssrf");
    char path[96], event_id[40], sql[256];
    snprintf(path, sizeof path, "/ok/ssrf-%s", e.token);
    int64_t ep = wh_endpoint_add(&e, path, SIG_TEST_SECRET, "standard", "{*}", 100, 2);
    const char *settings[] = {"BLAZZ_WEBHOOK_ALLOW_PRIVATE_TARGETS=false",
                              "BLAZZ_WEBHOOK_POLL_MS=100", NULL};
    wh_dispatcher_start(&e, settings);
    wh_produce_one(&e, event_id, "ssrf");
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM webhook_retry_queue WHERE endpoint_id = %lld "
             "AND status = 'failed'", (long long)ep);
    wh_wait_for(&e, sql, 1, 60000);
    snprintf(sql, sizeof sql, "SELECT last_error FROM webhook_retry_queue WHERE endpoint_id = %lld",
             (long long)ep);
    char *error = row_text(&e, sql);
    print_message("ssrf: last_error = %s\n", error);
    assert_non_null(strstr(error, "ssrf guard"));
    assert_non_null(strstr(error, "127.0.0.1"));
    assert_non_null(strstr(error, "loopback"));
    free(error);
    json_t *all = wh_requests(&e), *req[4];
    assert_int_equal(wh_filter(all, path, req, 4), 0);
    json_decref(all);
    wh_env_teardown(&e);
}

/* ---- isolation ------------------------------------------------------------ */

static void test_isolation_from_hanging_endpoint(void **state)
{
    (void)state;
    const int events = 300;
    wh_env e;
    wh_env_setup(&e, "iso");
    char healthy_a[96], healthy_b[96], hang[96], sql[256];
    snprintf(healthy_a, sizeof healthy_a, "/ok/alone-%s", e.token);
    snprintf(healthy_b, sizeof healthy_b, "/ok/beside-%s", e.token);
    snprintf(hang, sizeof hang, "/hang/iso-%s", e.token);
    const char *settings[] = {"BLAZZ_WEBHOOK_ALLOW_PRIVATE_TARGETS=true",
                              "BLAZZ_WEBHOOK_RETRY_SCHEDULE=0,1s,2s,5s",
                              "BLAZZ_WEBHOOK_TIMEOUT_MS=2000",
                              "BLAZZ_WEBHOOK_CLAIM_LEASE_MS=10000",
                              "BLAZZ_WEBHOOK_POLL_MS=200",
                              "BLAZZ_WEBHOOK_CIRCUIT_MIN_REQUESTS=5",
                              "BLAZZ_WEBHOOK_CIRCUIT_OPEN_MS=3000",
                              NULL};
    wh_dispatcher_start(&e, settings);
    wh_wait_consuming(&e);

    /* phase 1: the healthy endpoint alone */
    int64_t a = wh_endpoint_add(&e, healthy_a, SIG_TEST_SECRET, "standard", "{*}", 10000, 8);
    wh_produce_paced(&e, events, 100);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM webhook_retry_queue WHERE endpoint_id = %lld "
             "AND status = 'success'", (long long)a);
    wh_wait_for(&e, sql, events, 120000);
    char disable[128];
    snprintf(disable, sizeof disable, "UPDATE webhook_endpoints SET enabled = false WHERE id = %lld",
             (long long)a);
    itest_pg_exec(e.conn, disable);

    /* phase 2: a healthy endpoint next to a hanging one */
    int64_t b = wh_endpoint_add(&e, healthy_b, SIG_TEST_SECRET, "standard", "{*}", 10000, 8);
    wh_endpoint_add(&e, hang, SIG_TEST_SECRET, "standard", "{*}", 10000, 8);
    wh_produce_paced(&e, events, 100);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM webhook_retry_queue WHERE endpoint_id = %lld "
             "AND status = 'success'", (long long)b);
    wh_wait_for(&e, sql, events, 120000);

    double lat_a[1000], lat_b[1000];
    size_t na = wh_first_attempt_latencies(&e, healthy_a, lat_a, 1000);
    size_t nb = wh_first_attempt_latencies(&e, healthy_b, lat_b, 1000);
    assert_int_equal(na, events);
    assert_int_equal(nb, events);
    double p99_a = lat_a[(na * 99) / 100 - 1], p99_b = lat_b[(nb * 99) / 100 - 1];
    print_message("isolation: healthy endpoint p50/p99 alone %.1f/%.1f ms, beside a hanging "
                  "endpoint %.1f/%.1f ms (ratio %.2f)\n",
                  lat_a[na / 2], p99_a, lat_b[nb / 2], p99_b, p99_a > 0 ? p99_b / p99_a : 0);
    wh_env_teardown(&e);
}

/* ---- crash ----------------------------------------------------------------- */

static void test_crash_delivers_every_pair(void **state)
{
    (void)state;
    int events = itest_env_int("BLAZZ_WEBHOOK_CRASH_EVENTS", 5000, 1, 1000000);
    const int endpoints = 5;
    wh_env e;
    wh_env_setup(&e, "crash");
    int64_t ids[5];
    char paths[5][96];
    for (int i = 0; i < endpoints; i++) {
        snprintf(paths[i], sizeof paths[i], "/ok/crash%d-%s", i, e.token);
        ids[i] = wh_endpoint_add(&e, paths[i], SIG_TEST_SECRET, "standard", "{*}", 100000, 16);
    }
    (void)ids;
    const char *settings[] = {"BLAZZ_WEBHOOK_ALLOW_PRIVATE_TARGETS=true",
                              "BLAZZ_WEBHOOK_RETRY_SCHEDULE=0,200ms,500ms,1s,2s,5s",
                              "BLAZZ_WEBHOOK_TIMEOUT_MS=2000",
                              "BLAZZ_WEBHOOK_CLAIM_LEASE_MS=3000",
                              "BLAZZ_WEBHOOK_POLL_MS=200",
                              "BLAZZ_CONSUMER_SESSION_TIMEOUT_MS=6000",
                              NULL};
    char **event_ids = calloc((size_t)events, sizeof *event_ids);
    bz_producer *p = itest_producer();
    for (int i = 0; i < events; i++) {
        event_ids[i] = malloc(40);
        wh_produce_message(p, &e, e.workspace_id, event_ids[i], "crash");
        if (i % 1000 == 0)
            bz_producer_poll(p, 0);
    }
    bz_error err;
    if (bz_producer_flush(p, 60000, &err) != BZ_OK)
        fail_msg("flush: %s", err.msg);
    bz_producer_free(p, 1000);

    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM webhook_retry_queue WHERE workspace_id = %lld "
             "AND status = 'success'", (long long)e.workspace_id);
    int64_t target = (int64_t)events * endpoints;
    int max_kills = itest_env_int("BLAZZ_WEBHOOK_CRASH_KILLS", 5, 0, 1000), kills = 0;
    int64_t t0 = bz_monotonic_ms();
    /* Kills 2.5-5 s apart: the worker delivers at once after a restart,
     * while fan-out waits for the dead member's session (6 s) to expire,
     * so both halves get interrupted at different points. */
    while (wh_int(&e, sql) < target && kills < max_kills) {
        wh_dispatcher_start(&e, settings);
        itest_sleep_ms(itest_random(2500, 5000));
        if (wh_int(&e, sql) >= target)
            break;
        kill(e.dispatcher, SIGKILL);
        itest_wait(e.dispatcher);
        e.dispatcher = 0;
        kills++;
    }
    if (!e.dispatcher)
        wh_dispatcher_start(&e, settings);
    wh_wait_for(&e, sql, target, 300000);
    double secs = (double)(bz_monotonic_ms() - t0) / 1000.0;
    wh_dispatcher_stop(&e);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM webhook_retry_queue WHERE workspace_id = %lld "
             "AND status <> 'success'", (long long)e.workspace_id);
    assert_int_equal(wh_int(&e, sql), 0);

    /* every (event, endpoint) pair at least once; every request's
     * webhook-id is the id in its body, and one of ours */
    json_t *all = wh_requests(&e);
    size_t total = json_array_size(all), i;
    json_t *r;
    char *seen = calloc((size_t)events * endpoints, 1);
    json_t *index = json_object();
    for (int k = 0; k < events; k++)
        json_object_set_new(index, event_ids[k], json_integer(k));
    size_t duplicates = 0;
    json_array_foreach(all, i, r)
    {
        const char *path = json_string_value(json_object_get(r, "path"));
        const char *id = wh_header(r, "webhook-id");
        assert_non_null(id);
        json_t *body = json_loads(json_string_value(json_object_get(r, "body")), 0, NULL);
        assert_string_equal(json_string_value(json_object_get(body, "id")), id);
        json_decref(body);
        json_t *k = json_object_get(index, id);
        assert_non_null(k);
        int ep = -1;
        for (int x = 0; x < endpoints; x++)
            if (strcmp(path, paths[x]) == 0)
                ep = x;
        assert_true(ep >= 0);
        char *slot = &seen[json_integer_value(k) * endpoints + ep];
        duplicates += *slot;
        *slot = 1;
    }
    for (int k = 0; k < events * endpoints; k++)
        if (!seen[k])
            fail_msg("pair %d (event %s, endpoint %d) never delivered", k, event_ids[k / endpoints],
                     k % endpoints);
    print_message("crash: %d events x %d endpoints, %d SIGKILLs, %zu requests, %zu duplicates "
                  "(same webhook-id), %.1f s\n",
                  events, endpoints, kills, total, duplicates, secs);
    assert_true(kills >= 1 || events < 2000);
    json_decref(index);
    json_decref(all);
    free(seen);
    for (int k = 0; k < events; k++)
        free(event_ids[k]);
    free(event_ids);
    wh_env_teardown(&e);
}

/* ---- crash between the fan-out's commit and the first attempt ------------- */

/* A pending row leased to the dispatcher that was killed: its event id and
 * when its lease runs out (wall-clock ms, the database's clock). */
typedef struct leased_row {
    char event_id[40];
    double lease_end_ms;
} leased_row;

static size_t leased_rows(wh_env *e, int64_t endpoint_id, leased_row *out, size_t cap)
{
    PGresult *res = itest_pg_rowsf(
        e->conn,
        "SELECT event_id::text, extract(epoch FROM next_retry_at) * 1000 "
        "FROM webhook_retry_queue WHERE endpoint_id = %lld AND status = 'pending' "
        "AND retry_count = 0 AND next_retry_at > now()",
        (long long)endpoint_id);
    size_t n = 0;
    for (int r = 0; r < PQntuples(res) && n < cap; r++, n++) {
        snprintf(out[n].event_id, sizeof out[n].event_id, "%s", PQgetvalue(res, r, 0));
        out[n].lease_end_ms = strtod(PQgetvalue(res, r, 1), NULL);
    }
    PQclear(res);
    return n;
}

/* The first request for event_id among all (its t_ms) whose signing time
 * (webhook-timestamp, whole seconds) lies in [from_s, to_s], or -1. */
static double first_request_signed_ms(json_t *all, const char *event_id, long long from_s,
                                      long long to_s)
{
    double first = -1;
    size_t i;
    json_t *r;
    json_array_foreach(all, i, r)
    {
        const char *id = wh_header(r, "webhook-id");
        const char *ts = wh_header(r, "webhook-timestamp");
        if (!id || !ts || strcmp(id, event_id) != 0)
            continue;
        long long signed_s = strtoll(ts, NULL, 10);
        if (signed_s >= from_s && signed_s <= to_s && (first < 0 || t_ms(r) < first))
            first = t_ms(r);
    }
    return first;
}

/* The fan-out inserts its rows leased to its own worker and hands them over
 * in memory after the commit (ARCHITECTURE.md §3.7): a SIGKILL then leaves
 * rows that are committed, leased and never attempted. An endpoint that
 * takes one request at a time and answers after 1.5 s keeps rows queued in
 * that state; the dispatcher is killed while it holds them. Each must be
 * delivered by the next dispatcher, and not before its lease ran out (the
 * lease is what keeps a second instance from sending a row that a frozen,
 * not dead, owner may still attempt). */
enum { LEASED_EVENTS = 6, LEASED_LEASE_MS = 10000, LEASED_TRIES = 3 };

/* One run of the scenario: true when it arose (a row leased at the kill
 * that the killed dispatcher never sent), its checks then made; false
 * when it did not (every row handed back or sent before the kill), for the
 * caller to try again. */
static bool leased_rows_scenario(void)
{
    /* A queued row whose lease would end before an attempt could time out
     * is handed back (attempts.c): the 10 s lease leaves 7 s between the
     * fan-out and the kill, which a loaded machine took more than 2 of. */
    enum { EVENTS = LEASED_EVENTS, LEASE_MS = LEASED_LEASE_MS };
    wh_env e;
    wh_env_setup(&e, "leased");
    char path[96];
    snprintf(path, sizeof path, "/slow/1500/leased-%s", e.token);
    int64_t endpoint = wh_endpoint_add(&e, path, SIG_TEST_SECRET, "standard", "{*}", 1000, 1);
    char lease_setting[64];
    snprintf(lease_setting, sizeof lease_setting, "BLAZZ_WEBHOOK_CLAIM_LEASE_MS=%d", LEASE_MS);
    const char *settings[] = {"BLAZZ_WEBHOOK_ALLOW_PRIVATE_TARGETS=true",
                              "BLAZZ_WEBHOOK_TIMEOUT_MS=3000",
                              "BLAZZ_WEBHOOK_POLL_MS=200",
                              "BLAZZ_CONSUMER_SESSION_TIMEOUT_MS=6000",
                              lease_setting,
                              NULL};
    wh_dispatcher_start(&e, settings);
    wh_wait_consuming(&e);
    wh_produce_many(&e, EVENTS, "leased");

    /* with one request in flight, two more leased rows are queued behind
     * it: committed, leased to this worker, not attempted */
    leased_row leased[EVENTS];
    size_t n_leased = 0;
    int64_t deadline = bz_monotonic_ms() + 30000;
    while ((n_leased = leased_rows(&e, endpoint, leased, EVENTS)) < 3 &&
           bz_monotonic_ms() < deadline)
        itest_sleep_ms(20);
    char *backends = itest_pg_backends_of(e.conn, e.dispatcher);
    kill(e.dispatcher, SIGKILL);
    itest_wait(e.dispatcher);
    e.dispatcher = 0;
    assert_true(n_leased >= 3);
    size_t n_polled = n_leased;
    /* Rows the worker had no room for are given back, due at once (a
     * "keep" outcome, claim.c): read the leases once the killed
     * dispatcher's last statements have ended, else such a give-back may
     * commit after the read (CI: four rows read as leased, due a moment
     * later, sent 8 s "before" their lease ended). */
    itest_pg_wait_backends_gone(e.conn, backends, 60);
    free(backends);
    n_leased = leased_rows(&e, endpoint, leased, EVENTS);

    /* A request tells its sender by when it was signed: the killed
     * dispatcher signed before kill_s ended, the next one starts after it.
     * The receiver's arrival time cannot tell them apart: a request sent
     * just before the kill may be read seconds later on a loaded machine. */
    long long kill_s = (long long)(bz_wall_ms() / 1000);
    while (bz_wall_ms() / 1000 <= kill_s)
        itest_sleep_ms(20);
    wh_dispatcher_start(&e, settings);
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM webhook_retry_queue WHERE endpoint_id = %lld "
             "AND status = 'success'", (long long)endpoint);
    wh_wait_for(&e, sql, EVENTS, 60000);
    wh_dispatcher_stop(&e);

    json_t *all = wh_requests(&e);
    size_t n_never = 0;
    for (size_t i = 0; i < n_leased; i++) {
        if (first_request_signed_ms(all, leased[i].event_id, 0, kill_s) >= 0)
            continue; /* the killed dispatcher had sent it */
        n_never++;
        double first = first_request_signed_ms(all, leased[i].event_id, kill_s + 1, LLONG_MAX);
        if (first < 0)
            fail_msg("event %s, leased to the killed dispatcher, never delivered",
                     leased[i].event_id);
        if (first < leased[i].lease_end_ms)
            fail_msg("event %s attempted %.0f ms before its lease ran out", leased[i].event_id,
                     leased[i].lease_end_ms - first);
    }
    if (n_never > 0)
        print_message("leased at the kill: %zu rows, %zu of them never sent by the killed "
                      "dispatcher; each delivered after its lease by the next one\n",
                      n_leased, n_never);
    else
        print_message("the scenario did not arise: no row leased at the kill was left "
                      "unattempted (%zu leased when polled, %zu still leased after the kill)\n",
                      n_polled, n_leased);
    json_decref(all);
    wh_env_teardown(&e);
    return n_never > 0;
}

/* The scenario depends on when the kill lands: on a loaded host the worker
 * may hand every queued row back first (CI, load average 10: "6 leased
 * when polled, 0 still leased after the kill"). That proves nothing either
 * way, so it is run again, a few times at most. */
static void test_crash_after_fanout_commit_delivers_leased_rows(void **state)
{
    (void)state;
    for (int i = 0; i < LEASED_TRIES; i++)
        if (leased_rows_scenario())
            return;
    fail_msg("the scenario did not arise in %d tries", LEASED_TRIES);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verifier_matches_published_vector),
        cmocka_unit_test(test_delivery_rules),
        cmocka_unit_test(test_unsendable_payload_is_dead_lettered),
        cmocka_unit_test(test_ssrf_refuses_loopback),
        cmocka_unit_test(test_isolation_from_hanging_endpoint),
        cmocka_unit_test(test_crash_delivers_every_pair),
        cmocka_unit_test(test_crash_after_fanout_commit_delivers_leased_rows),
    };
    /* BLAZZ_WEBHOOK_TEST_FILTER=test_crash* runs one test (cmocka pattern) */
    const char *filter = getenv("BLAZZ_WEBHOOK_TEST_FILTER");
    if (filter && *filter)
        cmocka_set_test_filter(filter);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
