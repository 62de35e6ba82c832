/*
 * ingest_itest.c - one blazz-ingest under test (see ingest_itest.h).
 *
 * The fixture is test_ingest's setup, shared so that the outage tests run
 * the same ingest against a stack they may stop. Environment variables set
 * here are inherited by the ingest process (and by a restart of it).
 */
#include "ingest_itest.h"

#include <curl/curl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/clock.h"
#include "itest.h"
#include "wa/signature.h"

#define META_PHONE_ID "106540352242922"

static void insert_accounts(ingest_fx *fx)
{
    char sql[1024];
    itest_unique("itest-sess-", fx->session, sizeof fx->session);
    itest_unique("itest-gone-", fx->deleted_session, sizeof fx->deleted_session);
    fx->workspace = itest_pg_int64(fx->conn,
                                   "INSERT INTO workspaces (name) VALUES ('ingest test') RETURNING id");
    fx->other_workspace = itest_pg_int64(fx->conn,
                                         "INSERT INTO workspaces (name) VALUES ('other') RETURNING id");
    snprintf(sql, sizeof sql,
             "INSERT INTO whatsapp_accounts (workspace_id, session_id, status, gateway_id) VALUES "
             "(%lld, '%s', 'connected', '%s') RETURNING id", (long long)fx->workspace, fx->session,
             fx->gateway);
    fx->account = itest_pg_int64(fx->conn, sql);
    snprintf(sql, sizeof sql,
             "INSERT INTO whatsapp_accounts (workspace_id, session_id, deleted_at, gateway_id) "
             "VALUES (%lld, '%s', now(), '%s') RETURNING id", (long long)fx->workspace,
             fx->deleted_session, fx->gateway);
    itest_pg_int64(fx->conn, sql);
    /* Meta's phone_number_id is unique across runs only with a suffix. */
    snprintf(fx->meta_session, sizeof fx->meta_session, "%s%d", META_PHONE_ID,
             itest_random(1000, 9999));
    snprintf(sql, sizeof sql,
             "INSERT INTO whatsapp_accounts (workspace_id, session_id, provider_type, status, "
             "gateway_id) VALUES (%lld, '%s', 'meta', 'connected', '%s') RETURNING id",
             (long long)fx->workspace, fx->meta_session, fx->meta_gateway);
    fx->meta_account = itest_pg_int64(fx->conn, sql);
}

static void set_ingest_environment(const ingest_fx *fx)
{
    char listen[64];
    setenv("BLAZZ_KAFKA_TOPIC_PREFIX", fx->prefix, 1);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", fx->port);
    setenv("BLAZZ_INGEST_LISTEN", listen, 1);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", fx->admin_port);
    setenv("BLAZZ_HTTP_LISTEN", listen, 1);
    setenv("BLAZZ_INGEST_META_GATEWAY", fx->meta_gateway, 1);
    setenv("BLAZZ_INGEST_META_VERIFY_TOKEN", INGEST_FX_META_TOKEN, 1);
    setenv("BLAZZ_INGEST_GROUP_ID", fx->prefix, 1);
    setenv("BLAZZ_INGEST_CONSUMER_SESSION_TIMEOUT_MS", "6000", 1);
    setenv("BLAZZ_INGEST_TXN_MAX_MS", "50", 1);
    setenv("BLAZZ_INGEST_SESSION_NEGATIVE_TTL_S", "0", 1);
    setenv("BLAZZ_INGEST_PRODUCE_TIMEOUT_MS", "3000", 1);
    /* a request that names no gateway is the registered one's, signed as
     * the seeds' notifier signs (ARCHITECTURE.md §9.2) */
    setenv("BLAZZ_INGEST_UNNAMED_GATEWAY", fx->gateway, 1);
    /* the media endpoints (§16.3), with a store of this fixture's own */
    char media[160];
    snprintf(media, sizeof media, "/tmp/%smedia", fx->prefix);
    setenv("BLAZZ_MEDIA_LOCAL_DIR", media, 1);
    setenv("BLAZZ_MEDIA_LINK_SECRET", INGEST_FX_MEDIA_LINK_SECRET, 1);
    snprintf(listen, sizeof listen, "http://127.0.0.1:%d", fx->port);
    setenv("BLAZZ_MEDIA_LINK_BASE_URL", listen, 1);
}

void ingest_fx_setup(ingest_fx *fx)
{
    memset(fx, 0, sizeof *fx);
    curl_global_init(CURL_GLOBAL_ALL);
    /* the prefix doubles as ingest's group: blazz-ingest* (ARCHITECTURE.md §9.1) */
    itest_unique("blazz-ingest-itest-", fx->prefix, sizeof fx->prefix);
    strcat(fx->prefix, ".");
    snprintf(fx->raw, sizeof fx->raw, "%swa.inbound.raw", fx->prefix);
    snprintf(fx->sync, sizeof fx->sync, "%schat.sync", fx->prefix);
    snprintf(fx->dlq, sizeof fx->dlq, "%swa.inbound.dlq", fx->prefix);
    snprintf(fx->log_path, sizeof fx->log_path, "/tmp/%singest.log", fx->prefix);
    itest_topics_create(fx->prefix, ITEST_PARTITIONS);
    /* the gateway posting here, and the Meta app, each with its own key */
    itest_unique("gw", fx->gateway, sizeof fx->gateway);
    itest_unique("meta", fx->meta_gateway, sizeof fx->meta_gateway);
    itest_gateway_create(fx->prefix, fx->gateway, "webjs", "gateway-sim", INGEST_FX_SECRET);
    itest_gateway_create(fx->prefix, fx->meta_gateway, "meta", "gateway-sim", INGEST_FX_META_SECRET);
    fx->conn = itest_pg_connect();
    insert_accounts(fx);
    fx->port = itest_free_port();
    fx->admin_port = itest_free_port();
    set_ingest_environment(fx);
    ingest_fx_start(fx);
    ingest_fx_wait_ready(fx);
}

void ingest_fx_teardown(ingest_fx *fx)
{
    itest_terminate(&fx->ingest, "ingest", fx->log_path);
    PQfinish(fx->conn);
    fx->conn = NULL;
    curl_global_cleanup();
}

void ingest_fx_start(ingest_fx *fx)
{
    static char bin[512];
    snprintf(bin, sizeof bin, "%s/bin/blazz-ingest", itest_env("BLAZZ_TEST_BIN_DIR"));
    char *argv[] = {bin, NULL};
    fx->ingest = itest_spawn(argv, fx->log_path);
}

/* Ready means the Kafka path holds its partitions. */
void ingest_fx_wait_ready(ingest_fx *fx)
{
    itest_wait_ready(fx->admin_port, fx->ingest, fx->log_path, INGEST_FX_WAIT_MS);
}

itest_http_reply ingest_fx_http(ingest_fx *fx, const char *method, const char *path,
                                const void *body, size_t len, const char *content_type,
                                const char *sig_header, const char *sig)
{
    itest_http_reply r;
    char url[512], type_line[256], sig_line[256], gateway_line[96];
    const char *headers[4] = {NULL, NULL, NULL, NULL};
    int n = 0;
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", fx->port, path);
    snprintf(gateway_line, sizeof gateway_line, "X-Blazz-Gateway: %s", fx->gateway);
    headers[n++] = gateway_line;
    if (content_type) {
        snprintf(type_line, sizeof type_line, "Content-Type: %s", content_type);
        headers[n++] = type_line;
    }
    if (sig_header) {
        snprintf(sig_line, sizeof sig_line, "%s: %s", sig_header, sig);
        headers[n++] = sig_line;
    }
    itest_http(method, url, body, len, headers, 30000, &r);
    return r;
}

/* Signed as our gateways sign (itest_gateway_sign). */
itest_http_reply ingest_fx_post_signed(ingest_fx *fx, const void *body, size_t len,
                                       const char *content_type)
{
    itest_http_reply r;
    char url[128], type[128];
    itest_gateway_headers h;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/events", fx->port);
    snprintf(type, sizeof type, "Content-Type: %s", content_type);
    assert_int_equal(itest_gateway_sign(fx->gateway, INGEST_FX_SECRET, body, len, type, &h), BZ_OK);
    itest_http("POST", url, body, len, h.lines, 30000, &r);
    return r;
}

itest_http_reply ingest_fx_post_json(ingest_fx *fx, const char *json)
{
    return ingest_fx_post_signed(fx, json, strlen(json), "application/json");
}

void ingest_fx_accepted_id(const itest_http_reply *r, char out[BZ_UUID_STR_SIZE])
{
    if (r->status != 202)
        fail_msg("expected 202, got %ld: %s", r->status, r->body);
    const char *p = strstr(r->body, "\"event_id\":\"");
    assert_non_null(p);
    memcpy(out, p + 12, 36);
    out[36] = '\0';
    assert_true(bz_uuid_is_valid(out));
}

/* ---- records -------------------------------------------------------------------- */

static void collect_record(void *ctx, const rd_kafka_message_t *m)
{
    ingest_records *rs = ctx;
    if (rs->count == rs->cap) {
        rs->cap = rs->cap ? rs->cap * 2 : 256;
        rs->items = realloc(rs->items, rs->cap * sizeof *rs->items);
        assert_non_null(rs->items);
    }
    ingest_record *r = &rs->items[rs->count++];
    memset(r, 0, sizeof *r);
    snprintf(r->key, sizeof r->key, "%.*s", (int)m->key_len, (const char *)m->key);
    r->value = malloc(m->len ? m->len : 1);
    assert_non_null(r->value);
    memcpy(r->value, m->payload, m->len);
    r->len = m->len;
    itest_header_text(m, "event_id", r->event_id, sizeof r->event_id);
}

void ingest_records_free(ingest_records *rs)
{
    for (size_t i = 0; i < rs->count; i++)
        free(rs->items[i].value);
    free(rs->items);
    memset(rs, 0, sizeof *rs);
}

void ingest_records_read(const char *topic, ingest_records *rs)
{
    ingest_records_free(rs);
    itest_consume_all(topic, collect_record, rs);
}

const ingest_record *ingest_records_find(const ingest_records *rs, const char *event_id)
{
    for (size_t i = 0; i < rs->count; i++)
        if (strcmp(rs->items[i].event_id, event_id) == 0)
            return &rs->items[i];
    return NULL;
}

void ingest_records_wait_for(const ingest_fx *fx, const char *topic, const char *const *ids,
                             size_t n, ingest_records *rs)
{
    int64_t deadline = bz_monotonic_ms() + INGEST_FX_WAIT_MS;
    for (;;) {
        ingest_records_read(topic, rs);
        size_t found = 0;
        for (size_t i = 0; i < n; i++)
            found += ingest_records_find(rs, ids[i]) != NULL;
        if (found == n)
            return;
        if (bz_monotonic_ms() > deadline)
            fail_msg("%zu of %zu events missing on %s (log: %s)", n - found, n, topic,
                     fx->log_path);
        itest_sleep_ms(300);
    }
}

Blazz__V1__SyncCommand *ingest_records_sync_of(const ingest_records *rs, const char *event_id)
{
    const ingest_record *r = ingest_records_find(rs, event_id);
    assert_non_null(r);
    Blazz__V1__SyncCommand *cmd = blazz__v1__sync_command__unpack(NULL, r->len, r->value);
    assert_non_null(cmd);
    assert_string_equal(cmd->envelope->event_id, event_id);
    return cmd;
}

void ingest_message_event_json(const char *session, const char *message_id,
                               char event_id[BZ_UUID_STR_SIZE], char *out, size_t cap)
{
    assert_int_equal(bz_uuid_v4(event_id, NULL), BZ_OK);
    snprintf(out, cap,
             "{\"event_id\":\"%s\",\"session_id\":\"%s\",\"contact_phone\":\"6281234567890\","
             "\"message_body\":\"hello\",\"timestamp\":1700000000,\"message_id\":\"%s\"}",
             event_id, session, message_id);
}
