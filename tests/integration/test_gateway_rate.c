/*
 * test_gateway_rate.c - the per-gateway request rate at ingest's edge
 * (issue 55, services/ingest/gateway/gateway_rate.h) against the real stack: one
 * blazz-ingest (tests/integration/support/ingest_itest.h) with
 * ingest.gateway_rate_per_second 1 and ingest.gateway_rate_burst 5, its
 * gateway A, a second gateway B registered beside it with a session of its
 * own, and the Meta app's gateway. In this order, on the one ingest:
 *  1. forged requests naming A spend nothing of A's budget: after 10 of
 *     them (401), A's next 5 signed events (its whole burst) are 202;
 *  2. A posts 20 signed events back to back, B one after every fifth: A's
 *     past its budget are 429 gateway_rate_limited with a Retry-After of
 *     whole seconds, at least 1, and counted in
 *     blazz_ingest_rejected_total{path="http",reason="gateway_rate_limited"};
 *     B's are all 202 (a bucket per gateway); every event answered 202
 *     reaches chat.sync and nothing else does (a refused event produced
 *     nothing); after its Retry-After A is accepted again;
 *  3. A's media uploads (POST /v1/gateway/media) spend the same budget:
 *     after two seconds (two tokens at least) uploads are stored until one
 *     is 429 with Retry-After, and only those answered 201 are stored;
 *  4. Meta's notifications are never limited (Meta redelivers whatever is
 *     not answered 200, so a 429 would only bring it back): 10 in a row,
 *     twice the burst, are each 200.
 * On the code before issue 55, 2 fails: A's 20 events are all 202.
 * Nothing asserts on timing beyond the rate's own arithmetic: at 1 a
 * second after a burst of 5, 20 events need 15 s to be all accepted, far
 * more than back-to-back requests take.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/clock.h"
#include "core/sha256.h"
#include "core/uuid.h"
#include "ingest_itest.h"
#include "itest.h"
#include "itest_http.h"
#include "wa/signature.h"

#define RATE "1"
#define BURST 5
#define KEY_B "key-of-gateway-b-0123456789abcdef"
#define FORGED 10
#define A_EVENTS 20
#define B_EVERY 5
#define META_NOTIFICATIONS (2 * BURST)
#define MAX_ACCEPTED 64
#define REFUSED_METRIC                                                                             \
    "blazz_ingest_rejected_total{path=\"http\",reason=\"gateway_rate_limited\"}"

static ingest_fx fx;
static char gateway_b[48], session_b[64];
/* Every event answered 202 so far: all of them, and only they, must reach
 * chat.sync. */
static char accepted[MAX_ACCEPTED][BZ_UUID_STR_SIZE];
static size_t accepted_count;
static int messages_sent;

static int setup(void **state)
{
    (void)state;
    setenv("BLAZZ_INGEST_GATEWAY_RATE_PER_SECOND", RATE, 1);
    char burst[16];
    snprintf(burst, sizeof burst, "%d", BURST);
    setenv("BLAZZ_INGEST_GATEWAY_RATE_BURST", burst, 1);
    /* B, registered after ingest started, is read within a second */
    setenv("BLAZZ_INGEST_GATEWAY_KEYS_REFRESH_S", "1", 1);
    ingest_fx_setup(&fx);
    itest_unique("gwb", gateway_b, sizeof gateway_b);
    itest_unique("itest-rate-b-", session_b, sizeof session_b);
    itest_gateway_create(fx.prefix, gateway_b, "webjs", "gateway-b", KEY_B);
    itest_pg_int64f(fx.conn,
                    "INSERT INTO whatsapp_accounts (workspace_id, session_id, status, gateway_id) "
                    "VALUES (%lld, '%s', 'connected', '%s') RETURNING id",
                    (long long)fx.workspace, session_b, gateway_b);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ingest_fx_teardown(&fx);
    return 0;
}

/* ---- requests ------------------------------------------------------------ */

/* A message event for session, with a fresh event id (into event_id). */
static void message_json(const char *session, char event_id[BZ_UUID_STR_SIZE], char *out,
                         size_t cap)
{
    char message_id[96];
    snprintf(message_id, sizeof message_id, "rate-%d-%s", ++messages_sent, fx.prefix);
    ingest_message_event_json(session, message_id, event_id, out, cap);
}

/* POST /v1/events as gateway with key over json; forged: a signature made
 * with another key. */
static void post_event(const char *gateway, const char *key, const char *json,
                       itest_http_reply *r)
{
    char url[128];
    itest_gateway_headers h;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/events", fx.port);
    assert_int_equal(itest_gateway_sign(gateway, key, json, strlen(json),
                                        "Content-Type: application/json", &h),
                     BZ_OK);
    itest_http("POST", url, json, strlen(json), h.lines, 30000, r);
}

/* A 429 of the gateway's rate: when to come back, in whole seconds, at
 * least 1 (fails the test on anything else). */
static int retry_after_of(const itest_http_reply *r)
{
    char *end = NULL;
    long after = strtol(r->retry_after, &end, 10);
    if (r->status != 429 || !strstr(r->body, "\"gateway_rate_limited\"") || !r->retry_after[0] ||
        *end || after < 1 || after > 3600)
        fail_msg("expected 429 gateway_rate_limited with Retry-After, got %ld (Retry-After "
                 "\"%s\"): %s", r->status, r->retry_after, r->body);
    return (int)after;
}

/* A 202 is remembered (it must reach chat.sync); anything else must be
 * the rate's 429. Returns the status. */
static long judge(const itest_http_reply *r, const char *event_id)
{
    if (r->status == 202) {
        assert_true(accepted_count < MAX_ACCEPTED);
        snprintf(accepted[accepted_count++], BZ_UUID_STR_SIZE, "%s", event_id);
    } else {
        retry_after_of(r);
    }
    return r->status;
}

static long post_message(const char *gateway, const char *key, const char *session,
                         itest_http_reply *r)
{
    char json[1024], event_id[BZ_UUID_STR_SIZE];
    message_json(session, event_id, json, sizeof json);
    post_event(gateway, key, json, r);
    return judge(r, event_id);
}

/* B posts until ingest knows it (its directory is read every second). A
 * 401 spends nothing of B's budget; the one 202 spends a token. */
static void wait_until_b_is_known(void)
{
    itest_http_reply r;
    int64_t deadline = bz_monotonic_ms() + INGEST_FX_WAIT_MS;
    for (;;) {
        char json[1024], event_id[BZ_UUID_STR_SIZE];
        message_json(session_b, event_id, json, sizeof json);
        post_event(gateway_b, KEY_B, json, &r);
        if (r.status != 401) {
            judge(&r, event_id);
            assert_int_equal(r.status, 202);
            return;
        }
        if (bz_monotonic_ms() > deadline)
            fail_msg("gateway %s still refused: %s (log: %s)", gateway_b, r.body, fx.log_path);
        itest_sleep_ms(1100);
    }
}

/* ---- 1. forged requests -------------------------------------------------- */

static void forged_requests_spend_nothing_of_a_gateways_budget(void **state)
{
    (void)state;
    itest_http_reply r;
    for (int i = 0; i < FORGED; i++) {
        char json[1024], event_id[BZ_UUID_STR_SIZE];
        message_json(fx.session, event_id, json, sizeof json);
        post_event(fx.gateway, "not-the-key-of-gateway-a-0123456789", json, &r);
        if (r.status != 401)
            fail_msg("forged request %d: expected 401, got %ld: %s", i, r.status, r.body);
    }
    for (int i = 0; i < BURST; i++)
        if (post_message(fx.gateway, INGEST_FX_SECRET, fx.session, &r) != 202)
            fail_msg("signed event %d after %d forged ones: %ld %s", i, FORGED, r.status, r.body);
}

/* ---- 2. events ----------------------------------------------------------- */

/* Every accepted event is on chat.sync, and nothing else is. */
static void expect_exactly_the_accepted_on_chat_sync(void)
{
    const char *ids[MAX_ACCEPTED];
    for (size_t i = 0; i < accepted_count; i++)
        ids[i] = accepted[i];
    ingest_records rs = {0};
    ingest_records_wait_for(&fx, fx.sync, ids, accepted_count, &rs);
    if (rs.count != accepted_count)
        fail_msg("%zu records on %s, %zu events accepted", rs.count, fx.sync, accepted_count);
    ingest_records_free(&rs);
}

static void a_gateway_past_its_rate_is_refused_and_loses_nothing(void **state)
{
    (void)state;
    wait_until_b_is_known();
    double counted_before = itest_metric(fx.admin_port, REFUSED_METRIC);
    itest_http_reply r;
    int refused = 0, last_after = 0;
    for (int i = 1; i <= A_EVENTS; i++) {
        if (post_message(fx.gateway, INGEST_FX_SECRET, fx.session, &r) == 429) {
            refused++;
            last_after = retry_after_of(&r);
        }
        if (i % B_EVERY == 0 && post_message(gateway_b, KEY_B, session_b, &r) != 202)
            fail_msg("gateway B beside A's refusals: %ld %s", r.status, r.body);
    }
    if (refused == 0)
        fail_msg("none of %d back-to-back events was refused at %s/s, burst %d", A_EVENTS, RATE,
                 BURST);
    print_message("gateway A: %d of %d back-to-back events refused, last Retry-After %d s; "
                  "%zu accepted so far\n", refused, A_EVENTS, last_after, accepted_count);
    /* the sample is absent (-1) before the first refusal */
    double counted = itest_metric(fx.admin_port, REFUSED_METRIC);
    assert_int_equal((int)(counted - (counted_before < 0 ? 0 : counted_before)), refused);
    expect_exactly_the_accepted_on_chat_sync();
    itest_sleep_ms(last_after * 1000);
    if (post_message(fx.gateway, INGEST_FX_SECRET, fx.session, &r) != 202)
        fail_msg("after Retry-After %d s: %ld %s", last_after, r.status, r.body);
    expect_exactly_the_accepted_on_chat_sync();
}

/* ---- 3. media ------------------------------------------------------------ */

/* POST /v1/gateway/media?session= of A's session, signed by A over its
 * statement (gateway_media.h). */
static void upload_as_a(const unsigned char *bytes, size_t len, itest_http_reply *r)
{
    char digest[BZ_SHA256_HEX_SIZE], statement[BZ_GATEWAY_MEDIA_STATEMENT_MAX];
    char url[256], digest_line[128];
    size_t statement_len = 0;
    assert_int_equal(bz_sha256_hex(bytes, len, digest, NULL), BZ_OK);
    assert_int_equal(bz_gateway_media_statement(BZ_GATEWAY_MEDIA_UPLOAD, fx.session, digest,
                                                statement, sizeof statement, &statement_len,
                                                NULL),
                     BZ_OK);
    itest_gateway_headers signed_by_a;
    assert_int_equal(itest_gateway_sign(fx.gateway, INGEST_FX_SECRET, statement, statement_len,
                                        "Content-Type: image/jpeg", &signed_by_a),
                     BZ_OK);
    snprintf(digest_line, sizeof digest_line, "X-Blazz-Content-SHA256: %s", digest);
    const char *headers[7] = {NULL};
    memcpy(headers, signed_by_a.lines, 5 * sizeof headers[0]);
    headers[5] = digest_line;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/gateway/media?session=%s", fx.port,
             fx.session);
    itest_http("POST", url, bytes, len, headers, 30000, r);
}

static void media_uploads_spend_the_same_budget(void **state)
{
    (void)state;
    itest_http_reply r;
    int stored = 0, refused = 0;
    /* two seconds earn A two tokens at least: two uploads stored first */
    itest_sleep_ms(2000);
    for (int i = 0; i < A_EVENTS && refused == 0; i++) {
        unsigned char jpeg[96] = {0xFF, 0xD8, 0xFF}; /* what the store sniffs as JPEG */
        int n = snprintf((char *)jpeg + 3, sizeof jpeg - 3, "rate-upload-%d-%s", i, fx.prefix);
        upload_as_a(jpeg, 3 + (size_t)n, &r);
        if (r.status == 201) {
            stored++;
            continue;
        }
        retry_after_of(&r);
        refused++;
    }
    print_message("gateway A: %d uploads stored before the first 429\n", stored);
    assert_true(stored >= 2);
    assert_int_equal(refused, 1);
    assert_int_equal(itest_pg_int64f(fx.conn,
                                     "SELECT count(*) FROM chat_media WHERE workspace_id = %lld",
                                     (long long)fx.workspace),
                     stored);
}

/* ---- 4. Meta ------------------------------------------------------------- */

static void meta_notifications_are_never_limited(void **state)
{
    (void)state;
    for (int i = 0; i < META_NOTIFICATIONS; i++) {
        char body[1024], sig[8 + BZ_HMAC_SHA256_HEX_SIZE] = "sha256=";
        snprintf(body, sizeof body,
                 "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"WABA\","
                 "\"changes\":[{\"field\":\"messages\",\"value\":{\"messaging_product\":"
                 "\"whatsapp\",\"metadata\":{\"display_phone_number\":\"15550001111\","
                 "\"phone_number_id\":\"%s\"},\"statuses\":[{\"id\":\"wamid.R%d\",\"status\":"
                 "\"delivered\",\"timestamp\":\"1700000600\",\"recipient_id\":\"16315551234\"}]"
                 "}}]}]}",
                 fx.meta_session, i);
        assert_int_equal(bz_hmac_sha256_hex(INGEST_FX_META_SECRET, strlen(INGEST_FX_META_SECRET),
                                            body, strlen(body), sig + 7, NULL),
                         BZ_OK);
        itest_http_reply r = ingest_fx_http(&fx, "POST", "/v1/meta/webhook", body, strlen(body),
                                            "application/json", "X-Hub-Signature-256", sig);
        if (r.status != 200)
            fail_msg("Meta notification %d of %d: %ld %s", i + 1, META_NOTIFICATIONS, r.status,
                     r.body);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(forged_requests_spend_nothing_of_a_gateways_budget),
        cmocka_unit_test(a_gateway_past_its_rate_is_refused_and_loses_nothing),
        cmocka_unit_test(media_uploads_spend_the_same_budget),
        cmocka_unit_test(meta_notifications_are_never_limited),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
