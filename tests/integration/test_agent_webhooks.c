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
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent_itest.h"
#include "itest.h"

#define fx agent_test_fx

/* The text of member field of item, as SQL's string_agg writes it. */
static void append_member(const json_t *item, const char *field, char *out, size_t cap,
                          size_t *used)
{
    json_t *v = json_object_get(item, field);
    char text[64];
    if (json_is_integer(v))
        snprintf(text, sizeof text, "%lld", (long long)json_integer_value(v));
    else if (json_is_string(v))
        snprintf(text, sizeof text, "%s", json_string_value(v));
    else
        fail_msg("%s: neither a string nor an integer", field);
    *used += (size_t)snprintf(out + *used, cap - *used, "%s%s", *used ? "," : "", text);
}

/* Every page of path (its query begun, "?..."), limit a page, following
 * next_cursor to the end: each item's field joined by commas into out. */
static void read_all_pages(const char *path, const char *key, const char *list_name,
                           const char *field, int limit, char *out, size_t cap)
{
    char url[512], cursor[64] = "";
    size_t used = 0;
    out[0] = '\0';
    for (int page = 0;; page++) {
        assert_true(page < 50);
        snprintf(url, sizeof url, "%s&limit=%d%s%s", path, limit, cursor[0] ? "&cursor=" : "",
                 cursor);
        json_t *doc;
        if (agent_get_json(fx, url, key, &doc) != 200)
            fail_msg("GET %s: not 200", url);
        json_t *list = json_object_get(doc, list_name), *item;
        size_t i;
        assert_true(json_is_array(list));
        assert_true(json_array_size(list) <= (size_t)limit);
        json_array_foreach(list, i, item) append_member(item, field, out, cap, &used);
        json_t *next = json_object_get(doc, "next_cursor");
        if (json_is_null(next)) {
            json_decref(doc);
            return;
        }
        assert_int_equal(json_array_size(list), limit);
        snprintf(cursor, sizeof cursor, "%s", json_string_value(next));
        json_decref(doc);
    }
}

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
    read_all_pages("/v1/webhook-endpoints?", key, "endpoints", "endpoint_id", 1, got,
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
        read_all_pages(path, key, "deliveries", "delivery_id", limit, got, sizeof got);
        char *want = sql_deliveries(ep, "true");
        assert_string_equal(got, want);
        free(want);
    }
    snprintf(path, sizeof path, "/v1/webhook-endpoints/%lld/deliveries?status=failed",
             (long long)ep);
    read_all_pages(path, key, "deliveries", "delivery_id", 2, got, sizeof got);
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
    read_all_pages("/v1/webhook-endpoints?", other_key, "endpoints", "endpoint_id", 5, got,
                   sizeof got);
    snprintf(want, sizeof want, "%lld", (long long)stranger);
    assert_string_equal(got, want);
    char path[128];
    snprintf(path, sizeof path, "/v1/webhook-endpoints/%lld/deliveries", (long long)ep);
    expect_refused(path, other_key, 404, "unknown_endpoint", "endpoint_id");
    free(key);
    free(other_key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(endpoints_and_deliveries_page_by_page,
                                        agent_test_setup, agent_test_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
