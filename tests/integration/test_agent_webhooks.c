/*
 * test_agent_webhooks.c - the CRM reads its webhook endpoints and their
 * deliveries over the API (issue 54) on the real stack: ingest as a real
 * process (support/agent_itest.h); the deliveries are rows written here,
 * as the dispatcher would leave them, so that their order has ties.
 *
 *  - endpoints_and_deliveries_page_by_page: two workspaces, each with
 *    endpoints; the workspace's endpoints read a page at a time to the end
 *    are exactly SQL's (created_at, id) order, live ones only, without a
 *    secret; an endpoint's deliveries read page by page, all and of one
 *    status, are exactly SQL's newest-first order (ties on created_at
 *    broken by id) with no duplicate or gap; another workspace's, a
 *    deleted and an unknown endpoint are 404 unknown_endpoint; a bad
 *    limit, cursor, status or endpoint id is 400 naming it.
 *  - endpoints_disabled_enabled_and_replayed: PATCH disables an endpoint
 *    with the CRM's reason (or a default one), keeps the first disabled_at
 *    when disabled again, enables it with its failure counters reset and
 *    the dispatchers woken (NOTIFY), and leaves an enabled endpoint's
 *    counters alone and the dispatchers asleep; POST .../replay puts the
 *    failed deliveries (or the successful ones, within until) back to
 *    pending, due now, attempts forgotten, wakes the dispatchers, and goes
 *    1,000 at a time, the next call after the answer's cursor (not taking
 *    again the first thousand, failed again meanwhile); another
 *    workspace's and a deleted endpoint are 404; bad bodies are 400 naming
 *    their field.
 *  - endpoint_created_and_its_secret_rotated: with ingest, chat-sync and
 *    the dispatcher running, POST /v1/webhook-endpoints makes an endpoint
 *    of the key's workspace on the receiver with the event types asked and
 *    answers its whsec_ secret once, stored sealed bound to the row (it
 *    opens there to the answered secret); its webhooks verify with it. A
 *    workspace past crm.webhook_endpoints_per_workspace (2 here) is 409
 *    endpoint_quota_exceeded, another workspace is not held to it, eight
 *    creations sent at once into a third make exactly two endpoints (the
 *    count and the insert under one lock of the workspace's), and a
 *    DELETE (refused to another workspace, 404 when repeated) marks the
 *    endpoint deleted and disabled and frees its room; bad
 *    URLs (scheme, credentials, fragment, not a URL), names and event
 *    types are 400 naming their field. Then POST .../rotate-secret answers
 *    a new secret, stored as the first was (an overlap of 3600.0 is an
 *    hour); a webhook delivered during the overlap carries a
 *    signature of each secret (an independent verifier accepts it with the
 *    old one and with the new one); once the overlap is over (ended by the
 *    test: an hour is asked) only the new one signs; a rotation with
 *    overlap_s 0, or of an endpoint signing with X-WhatsApp-Signature (one
 *    signature a request), stops the old at once; another workspace's endpoint is
 *    404, a bad overlap, field or id 400 naming it.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <unistd.h>

#include "agent_itest.h"
#include "itest.h"

#define fx agent_test_fx

static void expect_refused(const char *path, const char *key, long status, const char *reason,
                           const char *field)
{
    agent_expect_refused(fx, "GET", path, key, NULL, status, reason, field);
}

/* n deliveries of endpoint ep (workspace ws), two at each created_at so
 * that the id breaks the ties, their statuses in turn. */
static void add_deliveries(int64_t ws, int64_t ep, int n)
{
    assert_int_equal(
        agent_int(fx,
                  "WITH d AS (INSERT INTO webhook_retry_queue (event_id, endpoint_id, "
                  "workspace_id, event_type, payload, status, retry_count, last_status_code, "
                  "last_error, delivered_at, created_at) SELECT gen_random_uuid(), %lld, %lld, "
                  "'message.created', '\\x7b7d'::bytea, (ARRAY['success', 'failed', 'pending', "
                  "'retrying'])[1 + i %% 4], i %% 3, CASE WHEN i %% 4 = 0 THEN 200 ELSE 500 END, "
                  "CASE WHEN i %% 4 <> 0 THEN 'HTTP 500' END, CASE WHEN i %% 4 = 0 THEN now() "
                  "END, '2026-01-01 00:00:00.000123+00'::timestamptz + (i / 2) * interval "
                  "'1 second' FROM generate_series(1, %d) i RETURNING 1) SELECT count(*) FROM d",
                  (long long)ep, (long long)ws, n),
        n);
}

/* SQL's order of the endpoint's deliveries (cond: SQL on them). */
static char *sql_deliveries(int64_t ep, const char *cond)
{
    return itest_pg_textf(fx->camp.pg,
                          "SELECT string_agg(uuid::text, ',' ORDER BY created_at DESC, id DESC) "
                          "FROM webhook_retry_queue WHERE endpoint_id = %lld AND %s",
                          (long long)ep, cond);
}

static void endpoints_listed(const char *key, int64_t ws, int64_t deleted)
{
    char got[4096];
    agent_read_all_pages(fx, "/v1/webhook-endpoints?", key, "endpoints", "endpoint_id", 1, got,
                         sizeof got);
    char *want = itest_pg_textf(fx->camp.pg,
                                "SELECT string_agg(id::text, ',' ORDER BY created_at, id) FROM "
                                "webhook_endpoints WHERE workspace_id = %lld AND deleted_at IS "
                                "NULL",
                                (long long)ws);
    assert_string_equal(got, want);
    free(want);
    char deleted_id[24];
    snprintf(deleted_id, sizeof deleted_id, "%lld", (long long)deleted);
    assert_null(strstr(got, deleted_id));

    /* one page with them all: the shape, and no secret */
    json_t *doc;
    assert_int_equal(agent_get_json(fx, "/v1/webhook-endpoints", key, &doc), 200);
    assert_true(json_is_null(json_object_get(doc, "next_cursor")));
    json_t *first = json_array_get(json_object_get(doc, "endpoints"), 0);
    assert_non_null(first);
    assert_true(json_is_string(json_object_get(first, "endpoint_uuid")));
    assert_non_null(strstr(json_string_value(json_object_get(first, "url")), "/ok/deliv-a"));
    assert_string_equal(json_string_value(json_array_get(json_object_get(first, "event_types"),
                                                         0)),
                        "*");
    assert_true(json_is_true(json_object_get(first, "enabled")));
    assert_true(json_is_string(json_object_get(first, "created_at")));
    char *text = json_dumps(doc, 0);
    assert_null(strstr(text, "secret"));
    assert_null(strstr(text, AGENT_SECRET));
    free(text);
    json_decref(doc);
}

static void deliveries_read(const char *key, int64_t ep)
{
    char path[128], got[16384];
    snprintf(path, sizeof path, "/v1/webhook-endpoints/%lld/deliveries?", (long long)ep);
    for (int limit = 1; limit <= 4; limit += 3) {
        agent_read_all_pages(fx, path, key, "deliveries", "delivery_id", limit, got, sizeof got);
        char *want = sql_deliveries(ep, "true");
        assert_string_equal(got, want);
        free(want);
    }
    snprintf(path, sizeof path, "/v1/webhook-endpoints/%lld/deliveries?status=failed",
             (long long)ep);
    agent_read_all_pages(fx, path, key, "deliveries", "delivery_id", 2, got, sizeof got);
    char *want = sql_deliveries(ep, "status = 'failed'");
    assert_string_equal(got, want);
    free(want);

    /* the newest as SQL has it */
    snprintf(path, sizeof path, "/v1/webhook-endpoints/%lld/deliveries?limit=1", (long long)ep);
    json_t *doc;
    assert_int_equal(agent_get_json(fx, path, key, &doc), 200);
    json_t *d = json_array_get(json_object_get(doc, "deliveries"), 0);
    char *row = itest_pg_textf(fx->camp.pg,
                               "SELECT concat_ws('|', event_id, event_type, status, retry_count, "
                               "max_retries, last_status_code, coalesce(last_error, '-')) FROM "
                               "webhook_retry_queue WHERE endpoint_id = %lld ORDER BY created_at "
                               "DESC, id DESC LIMIT 1",
                               (long long)ep);
    char shown[512];
    json_t *error = json_object_get(d, "last_error");
    snprintf(shown, sizeof shown, "%s|%s|%s|%lld|%lld|%lld|%s",
             json_string_value(json_object_get(d, "event_id")),
             json_string_value(json_object_get(d, "event_type")),
             json_string_value(json_object_get(d, "status")),
             (long long)json_integer_value(json_object_get(d, "failed_attempts")),
             (long long)json_integer_value(json_object_get(d, "max_retries")),
             (long long)json_integer_value(json_object_get(d, "last_status_code")),
             json_is_null(error) ? "-" : json_string_value(error));
    assert_string_equal(shown, row);
    free(row);
    assert_true(json_is_string(json_object_get(d, "created_at")));
    assert_true(json_is_string(json_object_get(d, "updated_at")));
    assert_null(json_object_get(d, "payload"));
    json_decref(doc);

    /* a final delivery is due no more */
    snprintf(path, sizeof path, "/v1/webhook-endpoints/%lld/deliveries?status=success&limit=1",
             (long long)ep);
    assert_int_equal(agent_get_json(fx, path, key, &doc), 200);
    d = json_array_get(json_object_get(doc, "deliveries"), 0);
    assert_true(json_is_null(json_object_get(d, "next_retry_at")));
    assert_true(json_is_string(json_object_get(d, "delivered_at")));
    json_decref(doc);
}

static void bad_reads(const char *key, int64_t ep, int64_t stranger, int64_t deleted)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/webhook-endpoints/%lld/deliveries", (long long)stranger);
    expect_refused(path, key, 404, "unknown_endpoint", "endpoint_id");
    snprintf(path, sizeof path, "/v1/webhook-endpoints/%lld/deliveries", (long long)deleted);
    expect_refused(path, key, 404, "unknown_endpoint", "endpoint_id");
    expect_refused("/v1/webhook-endpoints/999999999/deliveries", key, 404, "unknown_endpoint",
                   "endpoint_id");
    expect_refused("/v1/webhook-endpoints/abc/deliveries", key, 400, "invalid_field",
                   "endpoint_id");
    expect_refused("/v1/webhook-endpoints/0/deliveries", key, 400, "invalid_field",
                   "endpoint_id");
    static const char *const bad[][2] = {
        {"limit=0", "limit"},          {"limit=201", "limit"},     {"limit=ten", "limit"},
        {"cursor=yesterday", "cursor"}, {"cursor=c1_5_0", "cursor"}, {"status=done", "status"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(path, sizeof path, "/v1/webhook-endpoints/%lld/deliveries?%s", (long long)ep,
                 bad[i][0]);
        expect_refused(path, key, 400, "invalid_field", bad[i][1]);
    }
    expect_refused("/v1/webhook-endpoints?limit=-1", key, 400, "invalid_field", "limit");
    expect_refused("/v1/webhook-endpoints?cursor=c2_1_1", key, 400, "invalid_field", "cursor");
    agent_expect_refused(fx, "GET", "/v1/webhook-endpoints", NULL, NULL, 401, "unauthorized",
                         "Authorization");
}

static void endpoints_and_deliveries_page_by_page(void **state)
{
    (void)state;
    agent_fx_init(fx, "wd");
    int64_t ws = camp_workspace(&fx->camp), other_ws = camp_workspace(&fx->camp);
    int64_t ep = agent_endpoint(fx, ws, "/ok/deliv-a");
    int64_t ep_b = agent_endpoint(fx, ws, "/ok/deliv-b");
    int64_t ep_c = agent_endpoint(fx, ws, "/ok/deliv-c");
    int64_t deleted = agent_endpoint(fx, ws, "/ok/deliv-gone");
    int64_t stranger = agent_endpoint(fx, other_ws, "/ok/deliv-other");
    /* b and c made at one instant: the id orders them */
    assert_int_equal(agent_int(fx, "WITH u AS (UPDATE webhook_endpoints SET created_at = "
                                   "(SELECT created_at FROM webhook_endpoints WHERE id = %lld) "
                                   "WHERE id = %lld RETURNING 1) SELECT count(*) FROM u",
                               (long long)ep_b, (long long)ep_c),
                     1);
    assert_int_equal(agent_int(fx, "WITH u AS (UPDATE webhook_endpoints SET deleted_at = now() "
                                   "WHERE id = %lld RETURNING 1) SELECT count(*) FROM u",
                               (long long)deleted),
                     1);
    add_deliveries(ws, ep, 13);
    add_deliveries(ws, ep_b, 3);
    add_deliveries(ws, deleted, 2);
    add_deliveries(other_ws, stranger, 4);
    char *key = agent_api_key(fx, ws), *other_key = agent_api_key(fx, other_ws);
    agent_start_ingest(fx, NULL);

    endpoints_listed(key, ws, deleted);
    deliveries_read(key, ep);
    bad_reads(key, ep, stranger, deleted);

    /* the other workspace sees its own alone */
    char got[256], want[24];
    agent_read_all_pages(fx, "/v1/webhook-endpoints?", other_key, "endpoints", "endpoint_id", 5,
                         got, sizeof got);
    snprintf(want, sizeof want, "%lld", (long long)stranger);
    assert_string_equal(got, want);
    char path[128];
    snprintf(path, sizeof path, "/v1/webhook-endpoints/%lld/deliveries", (long long)ep);
    expect_refused(path, other_key, 404, "unknown_endpoint", "endpoint_id");
    free(key);
    free(other_key);
}

/* 1 when listener got the CRM API's wake within tries tenths of a second
 * (every notification waiting is taken). The API wakes with an empty
 * payload; a dispatcher's fan-out of new deliveries, which a late event of
 * this test may cause, names its own instance and is not counted. */
static int woken(PGconn *listener, int tries)
{
    int by_api = 0;
    for (int i = 0; i < tries && !by_api; i++) {
        assert_int_equal(PQconsumeInput(listener), 1);
        PGnotify *n;
        while ((n = PQnotifies(listener)) != NULL) {
            by_api |= n->extra[0] == '\0';
            PQfreemem(n);
        }
        if (!by_api)
            usleep(100 * 1000);
    }
    return by_api;
}

/* PATCH the endpoint with body: 200, its JSON (the caller releases it). */
static json_t *change(int64_t ep, const char *key, const char *body)
{
    char path[96];
    snprintf(path, sizeof path, "/v1/webhook-endpoints/%lld", (long long)ep);
    return agent_expect_answer(fx, "PATCH", path, key, body, 200);
}

/* The endpoint's columns the PATCH writes, as one text. */
static char *endpoint_state(int64_t ep)
{
    return itest_pg_textf(fx->camp.pg,
                          "SELECT concat_ws('|', enabled, coalesce(disabled_reason, '-'), "
                          "disabled_at IS NOT NULL, consecutive_failures, failing_since IS NOT "
                          "NULL) FROM webhook_endpoints WHERE id = %lld",
                          (long long)ep);
}

static void disabled_and_enabled(const char *key, int64_t ep, PGconn *listener)
{
    json_t *doc = change(ep, key, "{\"enabled\": false, \"disabled_reason\": \"CRM upgrade\"}");
    assert_true(json_is_false(json_object_get(doc, "enabled")));
    assert_string_equal(json_string_value(json_object_get(doc, "disabled_reason")),
                        "CRM upgrade");
    assert_true(json_is_string(json_object_get(doc, "disabled_at")));
    assert_int_equal(json_integer_value(json_object_get(doc, "endpoint_id")), ep);
    json_decref(doc);
    itest_assert_text("f|CRM upgrade|t|0|f", endpoint_state(ep));
    assert_false(woken(listener, 10));

    /* disabled again: the reason is the default, the first disabled_at stays */
    char *first = itest_pg_textf(fx->camp.pg, "SELECT disabled_at FROM webhook_endpoints WHERE "
                                              "id = %lld", (long long)ep);
    json_decref(change(ep, key, "{\"enabled\": false}"));
    itest_assert_text(first, itest_pg_textf(fx->camp.pg, "SELECT disabled_at FROM "
                                                         "webhook_endpoints WHERE id = %lld",
                                            (long long)ep));
    free(first);
    char *reason = itest_pg_textf(fx->camp.pg, "SELECT disabled_reason FROM webhook_endpoints "
                                               "WHERE id = %lld", (long long)ep);
    assert_non_null(strstr(reason, "by the CRM"));
    free(reason);

    /* enabled: counters of the failures that disabled it reset, dispatchers woken */
    assert_int_equal(agent_int(fx, "WITH u AS (UPDATE webhook_endpoints SET "
                                   "consecutive_failures = 5, failing_since = now() WHERE id = "
                                   "%lld RETURNING 1) SELECT count(*) FROM u", (long long)ep),
                     1);
    doc = change(ep, key, "{\"enabled\": true}");
    assert_true(json_is_true(json_object_get(doc, "enabled")));
    assert_true(json_is_null(json_object_get(doc, "disabled_reason")));
    json_decref(doc);
    itest_assert_text("t|-|f|0|f", endpoint_state(ep));
    assert_true(woken(listener, 50));

    /* enabling an enabled endpoint leaves the dispatcher's count of its failures */
    assert_int_equal(agent_int(fx, "WITH u AS (UPDATE webhook_endpoints SET "
                                   "consecutive_failures = 3, failing_since = now() WHERE id = "
                                   "%lld RETURNING 1) SELECT count(*) FROM u", (long long)ep),
                     1);
    json_decref(change(ep, key, "{\"enabled\": true}"));
    itest_assert_text("t|-|f|3|t", endpoint_state(ep));
    assert_false(woken(listener, 10));
}

/* POST the replay of endpoint ep with body: 200; its requeued into
 * *requeued, its next_cursor into next (cap bytes; "" when null). */
static void replay(int64_t ep, const char *key, const char *body, int64_t *requeued,
                   char *next, size_t cap)
{
    char path[96];
    snprintf(path, sizeof path, "/v1/webhook-endpoints/%lld/replay", (long long)ep);
    json_t *doc = agent_expect_answer(fx, "POST", path, key, body, 200);
    assert_int_equal(json_integer_value(json_object_get(doc, "endpoint_id")), ep);
    *requeued = json_integer_value(json_object_get(doc, "requeued"));
    json_t *cursor = json_object_get(doc, "next_cursor");
    assert_true(json_is_null(cursor) || json_is_string(cursor));
    snprintf(next, cap, "%s", json_is_string(cursor) ? json_string_value(cursor) : "");
    json_decref(doc);
}

static int64_t deliveries_where(int64_t ep, const char *cond)
{
    return itest_pg_int64f(fx->camp.pg,
                           "SELECT count(*) FROM webhook_retry_queue WHERE endpoint_id = %lld "
                           "AND %s",
                           (long long)ep, cond);
}

static void replayed(const char *key, int64_t ep, int64_t big, PGconn *listener)
{
    int64_t n = 0, failed = deliveries_where(ep, "status = 'failed'");
    char next[64], body[256];
    assert_true(failed > 0);
    replay(ep, key, "{\"since\": \"2026-01-01T00:00:00Z\"}", &n, next, sizeof next);
    assert_int_equal(n, failed);
    assert_string_equal(next, "");
    assert_int_equal(deliveries_where(ep, "status = 'failed'"), 0);
    assert_true(woken(listener, 50));
    /* each is due now, its attempts forgotten; nothing else was touched */
    assert_int_equal(deliveries_where(ep, "status = 'pending' AND retry_count = 0 AND "
                                          "last_error IS NULL AND last_status_code IS NULL AND "
                                          "next_retry_at <= now()"),
                     failed);
    replay(ep, key, "{\"since\": \"2026-01-01T00:00:00Z\"}", &n, next, sizeof next);
    assert_int_equal(n, 0);
    assert_false(woken(listener, 10));

    /* the successful ones created before until, in another time zone */
    int64_t early = deliveries_where(ep, "status = 'success' AND created_at < "
                                         "'2026-01-01 00:00:03+00'");
    int64_t success = deliveries_where(ep, "status = 'success'");
    assert_true(early > 0 && early < success);
    replay(ep, key,
           "{\"since\": \"2026-01-01t07:00:00+07:00\", \"until\": "
           "\"2026-01-01T00:00:03.000000z\", \"status\": \"success\"}",
           &n, next, sizeof next);
    assert_int_equal(n, early);
    assert_int_equal(deliveries_where(ep, "status = 'success' AND delivered_at IS NULL"), 0);
    assert_int_equal(deliveries_where(ep, "status = 'success'"), success - early);

    /* a thousand a call, the next going on after the cursor: the first
     * thousand failed again meanwhile (as on a disabled endpoint) are not
     * taken again */
    replay(big, key, "{\"since\": \"2025-12-31T23:00:00Z\"}", &n, next, sizeof next);
    assert_int_equal(n, 1000);
    assert_true(strncmp(next, "c1_", 3) == 0);
    assert_int_equal(agent_int(fx, "WITH u AS (UPDATE webhook_retry_queue SET status = 'failed' "
                                   "WHERE endpoint_id = %lld AND status = 'pending' RETURNING 1) "
                                   "SELECT count(*) FROM u",
                               (long long)big),
                     1000);
    snprintf(body, sizeof body, "{\"since\": \"2025-12-31T23:00:00Z\", \"cursor\": \"%s\"}",
             next);
    replay(big, key, body, &n, next, sizeof next);
    assert_int_equal(n, 1);
    assert_string_equal(next, "");
    assert_int_equal(deliveries_where(big, "status = 'pending'"), 1);
}

static void bad_writes(const char *key, const char *other_key, int64_t ep, int64_t deleted)
{
    char path[96], replay_path[112];
    snprintf(path, sizeof path, "/v1/webhook-endpoints/%lld", (long long)ep);
    snprintf(replay_path, sizeof replay_path, "%s/replay", path);
    static const char *const bad_changes[][3] = {
        {"{}", "missing_field", "enabled"},
        {"{\"enabled\": \"no\"}", "invalid_field", "enabled"},
        {"{\"enabled\": true, \"disabled_reason\": \"x\"}", "invalid_field", "disabled_reason"},
        {"{\"enabled\": false, \"url\": \"http://127.0.0.1/\"}", "invalid_field", "url"},
        {"[true]", "invalid_json", "body"},
    };
    for (size_t i = 0; i < sizeof bad_changes / sizeof bad_changes[0]; i++)
        agent_expect_refused(fx, "PATCH", path, key, bad_changes[i][0], 400, bad_changes[i][1],
                             bad_changes[i][2]);
    char long_reason[300];
    snprintf(long_reason, sizeof long_reason,
             "{\"enabled\": false, \"disabled_reason\": \"%0201d\"}", 0);
    agent_expect_refused(fx, "PATCH", path, key, long_reason, 400, "invalid_field",
                         "disabled_reason");
    static const char *const bad_replays[][3] = {
        {"{}", "missing_field", "since"},
        {"{\"since\": \"yesterday\"}", "invalid_field", "since"},
        {"{\"since\": \"2026-02-29T00:00:00Z\"}", "invalid_field", "since"},
        {"{\"since\": \"2026-01-01 00:00:00Z\"}", "invalid_field", "since"},
        {"{\"since\": \"2026-01-01T00:00:00\"}", "invalid_field", "since"},
        {"{\"since\": \"2026-01-01T00:00:00Z\", \"until\": \"2026-01-01T24:00:00Z\"}",
         "invalid_field", "until"},
        {"{\"since\": \"2026-01-01T00:00:00Z\", \"status\": \"pending\"}", "invalid_field",
         "status"},
        {"{\"since\": 1700000000}", "invalid_field", "since"},
        {"{\"since\": \"2026-01-01T00:00:00Z\", \"cursor\": \"yesterday\"}", "invalid_field",
         "cursor"},
    };
    for (size_t i = 0; i < sizeof bad_replays / sizeof bad_replays[0]; i++)
        agent_expect_refused(fx, "POST", replay_path, key, bad_replays[i][0], 400,
                             bad_replays[i][1], bad_replays[i][2]);
    agent_expect_refused(fx, "PATCH", "/v1/webhook-endpoints/abc", key, "{\"enabled\": true}",
                         400, "invalid_field", "endpoint_id");
    agent_expect_refused(fx, "POST", "/v1/webhook-endpoints/0/replay", key,
                         "{\"since\": \"2026-01-01T00:00:00Z\"}", 400, "invalid_field",
                         "endpoint_id");
    /* another workspace's, a deleted one */
    agent_expect_refused(fx, "PATCH", path, other_key, "{\"enabled\": false}", 404,
                         "unknown_endpoint", "endpoint_id");
    agent_expect_refused(fx, "POST", replay_path, other_key,
                         "{\"since\": \"2026-01-01T00:00:00Z\"}", 404, "unknown_endpoint",
                         "endpoint_id");
    snprintf(path, sizeof path, "/v1/webhook-endpoints/%lld", (long long)deleted);
    agent_expect_refused(fx, "PATCH", path, key, "{\"enabled\": false}", 404,
                         "unknown_endpoint", "endpoint_id");
    agent_expect_refused(fx, "PATCH", path, NULL, "{\"enabled\": false}", 401, "unauthorized",
                         "Authorization");
}

static void endpoints_disabled_enabled_and_replayed(void **state)
{
    (void)state;
    agent_fx_init(fx, "ww");
    int64_t ws = camp_workspace(&fx->camp), other_ws = camp_workspace(&fx->camp);
    int64_t ep = agent_endpoint(fx, ws, "/ok/write-a");
    int64_t big = agent_endpoint(fx, ws, "/ok/write-big");
    int64_t deleted = agent_endpoint(fx, ws, "/ok/write-gone");
    agent_endpoint(fx, other_ws, "/ok/write-other");
    assert_int_equal(agent_int(fx, "WITH u AS (UPDATE webhook_endpoints SET deleted_at = now() "
                                   "WHERE id = %lld RETURNING 1) SELECT count(*) FROM u",
                               (long long)deleted),
                     1);
    add_deliveries(ws, ep, 13);
    assert_int_equal(
        agent_int(fx,
                  "WITH d AS (INSERT INTO webhook_retry_queue (event_id, endpoint_id, "
                  "workspace_id, event_type, payload, status, retry_count, last_error, "
                  "created_at) SELECT gen_random_uuid(), %lld, %lld, 'message.created', "
                  "'\\x7b7d'::bytea, 'failed', 8, 'HTTP 500', '2026-01-01'::timestamptz + i * "
                  "interval '1 ms' FROM generate_series(1, 1001) i RETURNING 1) SELECT "
                  "count(*) FROM d",
                  (long long)big, (long long)ws),
        1001);
    char *key = agent_api_key(fx, ws), *other_key = agent_api_key(fx, other_ws);
    PGconn *listener = itest_pg_connect();
    itest_pg_exec(listener, "LISTEN blazz_webhook");
    agent_start_ingest(fx, NULL);

    disabled_and_enabled(key, ep, listener);
    replayed(key, ep, big, listener);
    bad_writes(key, other_key, ep, deleted);
    PQfinish(listener);
    free(key);
    free(other_key);
}

/* ---- secret rotation ---------------------------------------------------------------- */

#define ROTATION_PHONE "+628130000031"

/* POST .../rotate-secret of endpoint ep with body: 200; the new secret into
 * secret (64 bytes); whether the old one signs on (previous_secret_until). */
static int rotate(int64_t ep, const char *key, const char *body, char secret[64])
{
    char path[96];
    snprintf(path, sizeof path, "/v1/webhook-endpoints/%lld/rotate-secret", (long long)ep);
    json_t *doc = agent_expect_answer(fx, "POST", path, key, body, 200);
    assert_int_equal(json_integer_value(json_object_get(doc, "endpoint_id")), ep);
    const char *given = json_string_value(json_object_get(doc, "secret"));
    assert_non_null(given);
    assert_int_equal(strlen(given), 38);
    assert_memory_equal(given, "whsec_", 6);
    snprintf(secret, 64, "%s", given);
    json_t *until = json_object_get(doc, "previous_secret_until");
    assert_true(json_is_null(until) || json_is_string(until));
    int overlapping = json_is_string(until);
    json_decref(doc);
    return overlapping;
}

/* The endpoint's stored secret, opened with the stack's ring bound to its
 * row: what the dispatcher signs with first. */
static void assert_stored_secret(int64_t ep, int64_t ws, const char *want)
{
    char *plain = itest_open_endpoint_secret(fx->camp.pg, ITEST_SECRETS_KEYS, ep, ws,
                                             "secret_ciphertext");
    assert_string_equal(plain, want);
    free(plain);
}

/* A contact made through the API (its phone ends in n), and its
 * contact.updated webhook delivered to endpoint ep: that webhook's request
 * as the receiver got it must verify with each secret of signs (NULL-ended)
 * and with none of refuses. */
static void webhook_signed_with(const char *key, int64_t ep, int n, const char *const *signs,
                                const char *const *refuses)
{
    char body[128], phone[32];
    snprintf(phone, sizeof phone, ROTATION_PHONE "%d", n);
    snprintf(body, sizeof body, "{\"phone\":\"%s\",\"name\":\"Rot\"}", phone);
    json_decref(agent_expect_answer(fx, "POST", "/v1/contacts", key, body, 202));
    char cond[256];
    snprintf(cond, sizeof cond,
             "endpoint_id = %lld AND status = 'success' AND event_type = 'contact.updated' AND "
             "convert_from(payload, 'UTF8')::jsonb #>> '{data,contact,phone}' = '%s'",
             (long long)ep, phone);
    agent_wait(fx, 1, 90, "SELECT count(*) FROM webhook_retry_queue WHERE %s", cond);
    char *event = itest_pg_textf(fx->camp.pg,
                                 "SELECT event_id::text FROM webhook_retry_queue WHERE %s", cond);
    json_t *all = wh_requests(&fx->wh), *r;
    size_t i;
    int found = 0;
    json_array_foreach(all, i, r)
    {
        const char *id = wh_header(r, "webhook-id");
        if (!id || strcmp(id, event) != 0)
            continue;
        found++;
        const char *ts = wh_header(r, "webhook-timestamp");
        const char *sig = wh_header(r, "webhook-signature");
        const char *text = json_string_value(json_object_get(r, "body"));
        assert_non_null(ts);
        assert_non_null(sig);
        for (const char *const *s = signs; *s; s++)
            if (!wh_verify_standard(*s, id, ts, text, sig))
                fail_msg("webhook %s (contact %d) is not signed with a secret it should be: %s",
                         id, n, sig);
        for (const char *const *s = refuses; *s; s++)
            if (wh_verify_standard(*s, id, ts, text, sig))
                fail_msg("webhook %s (contact %d) is still signed with a rotated-out secret",
                         id, n);
    }
    assert_true(found >= 1);
    json_decref(all);
    free(event);
}

static void bad_rotations(const char *other_key, const char *key, int64_t ep)
{
    char path[96];
    snprintf(path, sizeof path, "/v1/webhook-endpoints/%lld/rotate-secret", (long long)ep);
    agent_expect_refused(fx, "POST", path, other_key, "{}", 404, "unknown_endpoint",
                         "endpoint_id");
    static const char *const bad[][3] = {
        {"{\"overlap_s\": -1}", "invalid_field", "overlap_s"},
        {"{\"overlap_s\": 604801}", "invalid_field", "overlap_s"},
        {"{\"overlap_s\": \"1h\"}", "invalid_field", "overlap_s"},
        {"{\"overlap\": 60}", "invalid_field", "overlap"},
        {"[]", "invalid_json", "body"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        agent_expect_refused(fx, "POST", path, key, bad[i][0], 400, bad[i][1], bad[i][2]);
    agent_expect_refused(fx, "POST", "/v1/webhook-endpoints/x1/rotate-secret", key, "{}", 400,
                         "invalid_field", "endpoint_id");
}

/* POST /v1/webhook-endpoints with body: 201; the endpoint's id, its secret
 * into secret (64 bytes). */
static int64_t create_endpoint(const char *key, const char *body, char secret[64])
{
    json_t *doc = agent_expect_answer(fx, "POST", "/v1/webhook-endpoints", key, body, 201);
    json_t *ep = json_object_get(doc, "endpoint");
    const char *given = json_string_value(json_object_get(doc, "secret"));
    assert_non_null(given);
    assert_int_equal(strlen(given), 38);
    assert_memory_equal(given, "whsec_", 6);
    snprintf(secret, 64, "%s", given);
    int64_t id = json_integer_value(json_object_get(ep, "endpoint_id"));
    assert_true(id > 0);
    assert_true(json_is_true(json_object_get(ep, "enabled")));
    json_decref(doc);
    return id;
}

#define RACING_CREATIONS 8

typedef struct racing_creation {
    pthread_t thread;
    const char *key;
    char body[160];
    long status;
} racing_creation;

static void *create_alongside(void *arg)
{
    racing_creation *r = arg;
    char resp[1024];
    r->status = agent_post(fx, "/v1/webhook-endpoints", r->key, r->body, resp, sizeof resp,
                           NULL, 0);
    return NULL;
}

/* RACING_CREATIONS creations into a fresh workspace at once, two allowed:
 * two are made and the rest refused 409, however the workers interleave. */
static void creations_at_once_hold_to_the_quota(void)
{
    int64_t ws = camp_workspace(&fx->camp);
    char *key = agent_api_key(fx, ws);
    racing_creation race[RACING_CREATIONS];
    for (int i = 0; i < RACING_CREATIONS; i++) {
        race[i].key = key;
        snprintf(race[i].body, sizeof race[i].body,
                 "{\"url\": \"http://127.0.0.1:%d/ok/race%d\"}", fx->wh.port, i);
        assert_int_equal(pthread_create(&race[i].thread, NULL, create_alongside, &race[i]), 0);
    }
    int created = 0, refused = 0;
    for (int i = 0; i < RACING_CREATIONS; i++) {
        pthread_join(race[i].thread, NULL);
        created += race[i].status == 201;
        refused += race[i].status == 409;
    }
    if (created != 2 || refused != RACING_CREATIONS - 2)
        fail_msg("%d creations at once with room for 2: %d created, %d refused 409",
                 RACING_CREATIONS, created, refused);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM webhook_endpoints WHERE "
                                   "workspace_id = %lld AND deleted_at IS NULL",
                               (long long)ws),
                     2);
    free(key);
}

static void bad_creations(const char *key)
{
    char long_name[256];
    memset(long_name, 'n', 201);
    long_name[201] = '\0';
    char long_body[400];
    snprintf(long_body, sizeof long_body, "{\"url\": \"http://127.0.0.1/x\", \"name\": \"%s\"}",
             long_name);
    static const char *const bad[][3] = {
        {"{}", "missing_field", "url"},
        {"{\"url\": null}", "missing_field", "url"},
        {"{\"url\": \"https:/127.0.0.1/x\"}", "invalid_field", "url"},
        {"{\"url\": \"ftp://127.0.0.1/x\"}", "invalid_field", "url"},
        {"{\"url\": \"http://crm:pw@127.0.0.1/x\"}", "invalid_field", "url"},
        {"{\"url\": \"http://127.0.0.1/x#frag\"}", "invalid_field", "url"},
        {"{\"url\": \"receiver\"}", "invalid_field", "url"},
        {"{\"url\": 7}", "invalid_field", "url"},
        {"{\"url\": \"http://127.0.0.1/x\", \"event_types\": []}", "invalid_field",
         "event_types"},
        {"{\"url\": \"http://127.0.0.1/x\", \"event_types\": [\"*\", \"Message\"]}",
         "invalid_field", "event_types[1]"},
        {"{\"url\": \"http://127.0.0.1/x\", \"secret\": \"whsec_x\"}", "invalid_field",
         "secret"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        agent_expect_refused(fx, "POST", "/v1/webhook-endpoints", key, bad[i][0], 400, bad[i][1],
                             bad[i][2]);
    agent_expect_refused(fx, "POST", "/v1/webhook-endpoints", key, long_body, 400,
                         "invalid_field", "name");
}

static void endpoint_created_and_its_secret_rotated(void **state)
{
    (void)state;
    agent_fx_init(fx, "rs");
    int64_t ws = camp_workspace(&fx->camp), other_ws = camp_workspace(&fx->camp);
    char *key = agent_api_key(fx, ws), *other_key = agent_api_key(fx, other_ws);
    /* the stack's ring: ingest seals with its newest key, the dispatcher
     * opens with it */
    setenv("BLAZZ_SECRETS_KEYS", ITEST_SECRETS_KEYS, 1);
    agent_start_dispatcher(fx);
    agent_start_chat_sync(fx);
    static const char *const two_endpoints[] = {"BLAZZ_CRM_WEBHOOK_ENDPOINTS_PER_WORKSPACE=2",
                                                NULL};
    agent_start_ingest(fx, two_endpoints);
    unsetenv("BLAZZ_SECRETS_KEYS");

    char body[256], first_secret[64], second[64], third[64], unused[64];
    bad_creations(key);
    snprintf(body, sizeof body,
             "{\"url\": \"http://127.0.0.1:%d/ok/created\", \"name\": \"crm\", "
             "\"event_types\": [\"contact.updated\", \"message.created\"]}",
             fx->wh.port);
    int64_t ep = create_endpoint(key, body, first_secret);
    itest_assert_text("crm|{contact.updated,message.created}|standard|t",
                      itest_pg_textf(fx->camp.pg,
                                     "SELECT concat_ws('|', name, event_types, signature_scheme, "
                                     "enabled) FROM webhook_endpoints WHERE id = %lld AND "
                                     "workspace_id = %lld",
                                     (long long)ep, (long long)ws));
    assert_stored_secret(ep, ws, first_secret);
    /* two per workspace: the second fits, a third does not; another
     * workspace has its own room */
    snprintf(body, sizeof body, "{\"url\": \"http://127.0.0.1:%d/ok/second\", "
                                "\"event_types\": [\"session.status\"]}",
             fx->wh.port);
    int64_t hmac_ep = create_endpoint(key, body, unused);
    agent_expect_refused(fx, "POST", "/v1/webhook-endpoints", key, body, 409,
                         "endpoint_quota_exceeded", "url");
    create_endpoint(other_key, body, unused);
    creations_at_once_hold_to_the_quota();

    const char *const none[] = {NULL};
    const char *const first[] = {first_secret, NULL};
    webhook_signed_with(key, ep, 1, first, none);

    bad_rotations(other_key, key, ep);
    assert_true(rotate(ep, key, "{\"overlap_s\": 3600.0}", second));
    assert_stored_secret(ep, ws, second);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM webhook_endpoints WHERE id = %lld AND "
                                   "previous_secret_until BETWEEN now() + interval '3500 s' "
                                   "AND now() + interval '3601 s'",
                               (long long)ep),
                     1);
    const char *const both[] = {first_secret, second, NULL};
    webhook_signed_with(key, ep, 2, both, none);

    /* the hour is over */
    assert_int_equal(agent_int(fx, "WITH u AS (UPDATE webhook_endpoints SET "
                                   "previous_secret_until = now() WHERE id = %lld RETURNING 1) "
                                   "SELECT count(*) FROM u",
                               (long long)ep),
                     1);
    const char *const new_one[] = {second, NULL};
    webhook_signed_with(key, ep, 3, new_one, first);

    /* an endpoint an operator set to sign with X-WhatsApp-Signature (one
     * signature a request) has no overlap; nor has a rotation asking none */
    assert_int_equal(agent_int(fx, "WITH u AS (UPDATE webhook_endpoints SET signature_scheme = "
                                   "'whatsapp_hmac' WHERE id = %lld RETURNING 1) SELECT "
                                   "count(*) FROM u",
                               (long long)hmac_ep),
                     1);
    assert_false(rotate(hmac_ep, key, "{}", unused));
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM webhook_endpoints WHERE id = %lld AND "
                                   "previous_secret_ciphertext IS NULL",
                               (long long)hmac_ep),
                     1);
    assert_false(rotate(ep, key, "{\"overlap_s\": 0}", third));
    assert_stored_secret(ep, ws, third);
    const char *const newest[] = {third, NULL}, *const older[] = {first_secret, second, NULL};
    webhook_signed_with(key, ep, 4, newest, older);

    /* a deletion frees room: the endpoint leaves the list and the count,
     * disabled; again, or from another workspace, it is unknown */
    char path[96];
    snprintf(path, sizeof path, "/v1/webhook-endpoints/%lld", (long long)hmac_ep);
    agent_expect_refused(fx, "DELETE", path, other_key, NULL, 404, "unknown_endpoint",
                         "endpoint_id");
    json_t *gone = agent_expect_answer(fx, "DELETE", path, key, NULL, 200);
    assert_int_equal(json_integer_value(json_object_get(gone, "endpoint_id")), hmac_ep);
    assert_true(json_is_false(json_object_get(gone, "enabled")));
    json_decref(gone);
    agent_expect_refused(fx, "DELETE", path, key, NULL, 404, "unknown_endpoint", "endpoint_id");
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM webhook_endpoints WHERE id = %lld AND "
                                   "deleted_at IS NOT NULL AND NOT enabled",
                               (long long)hmac_ep),
                     1);
    snprintf(body, sizeof body,
             "{\"url\": \"http://127.0.0.1:%d/ok/third\", \"event_types\": null}",
             fx->wh.port);
    int64_t again = create_endpoint(key, body, unused);
    itest_assert_text("{*}", itest_pg_textf(fx->camp.pg, "SELECT event_types::text FROM "
                                                         "webhook_endpoints WHERE id = %lld",
                                            (long long)again));

    free(key);
    free(other_key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(endpoints_and_deliveries_page_by_page,
                                        agent_test_setup, agent_test_teardown),
        cmocka_unit_test_setup_teardown(endpoints_disabled_enabled_and_replayed,
                                        agent_test_setup, agent_test_teardown),
        cmocka_unit_test_setup_teardown(endpoint_created_and_its_secret_rotated,
                                        agent_test_setup, agent_test_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
