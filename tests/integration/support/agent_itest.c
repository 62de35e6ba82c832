/*
 * agent_itest.c - see agent_itest.h.
 */
#include "agent_itest.h"

#include <curl/curl.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "blazz/v1/inbound.pb-c.h"
#include "core/clock.h"
#include "core/uuid.h"
#include "itest.h"

static int stop_process(pid_t *pid)
{
    if (*pid <= 0)
        return 0;
    kill(*pid, SIGTERM);
    int rc = itest_wait(*pid);
    *pid = 0;
    return rc;
}

void agent_kill(pid_t *pid)
{
    if (*pid <= 0)
        return;
    kill(*pid, SIGKILL);
    itest_wait(*pid);
    *pid = 0;
}

void agent_fx_init(agent_fx *fx, const char *name)
{
    memset(fx, 0, sizeof *fx);
    wh_env_setup(&fx->wh, name);
    snprintf(fx->camp.prefix, sizeof fx->camp.prefix, "%s", fx->wh.prefix);
    const char *state = getenv("BLAZZ_STATE_DIR");
    snprintf(fx->camp.dir, sizeof fx->camp.dir, "%s/agent-tests", state ? state : "/tmp");
    mkdir(fx->camp.dir, 0755);
    snprintf(fx->camp.dir + strlen(fx->camp.dir), sizeof fx->camp.dir - strlen(fx->camp.dir),
             "/%s-%s", name, fx->wh.token);
    mkdir(fx->camp.dir, 0755);
    snprintf(fx->camp.record_path, sizeof fx->camp.record_path, "%s/unused.txt", fx->camp.dir);
    snprintf(fx->sends_log, sizeof fx->sends_log, "%s/gateway-sends.txt", fx->camp.dir);
    snprintf(fx->sim_status, sizeof fx->sim_status, "%s/gateway-status.txt", fx->camp.dir);
    snprintf(fx->tag, sizeof fx->tag, "ag%.22s", fx->wh.token);
    fx->tag[24] = '\0';
    fx->camp.pg = itest_pg_connect();
    fx->port = itest_free_port();
}

void agent_fx_finish(agent_fx *fx)
{
    /* what this test left to send stays unsent: its campaigns end and its
     * queued agent messages go (the next test's sender would release them);
     * its accounts' sessions end with its prefix ([a-z0-9.-]) */
    char accounts[256], sql[640];
    snprintf(accounts, sizeof accounts,
             "SELECT id FROM whatsapp_accounts WHERE session_id LIKE '%%%s'", fx->wh.prefix);
    snprintf(sql, sizeof sql,
             "UPDATE campaigns SET status = 'cancelled' WHERE status IN ('scheduled', 'running', "
             "'paused') AND whatsapp_account_id IN (%s)",
             accounts);
    itest_pg_exec(fx->camp.pg, sql);
    snprintf(sql, sizeof sql, "DELETE FROM outbound_queue WHERE whatsapp_account_id IN (%s)",
             accounts);
    itest_pg_exec(fx->camp.pg, sql);
    /* the relays publish what is left while they all still run (rows left
     * behind would be published under the next test's prefix) */
    for (int i = 0; i < 300 && camp_sql(&fx->camp, "SELECT count(*) FROM outbox", 0) > 0; i++)
        itest_sleep_ms(100);
    /* every process is stopped before anything may fail the test */
    int bad = stop_process(&fx->ingest) != 0;
    bad |= stop_process(&fx->chat_sync) != 0;
    bad |= stop_process(&fx->sim) != 0;
    bad |= stop_process(&fx->wh.dispatcher) != 0;
    wh_env_teardown(&fx->wh);
    camp_fx_finish(&fx->camp); /* the senders, after their relays emptied the outbox */
    fx->camp.pg = NULL;
    if (bad)
        fail_msg("a process did not exit cleanly on SIGTERM (see %s)", fx->camp.dir);
}

static void env_line(char *out, size_t cap, const char *name, const char *value)
{
    snprintf(out, cap, "%s=%s", name, value);
}

/* The settings every service of the fixture gets, then extra. */
static void start_service(agent_fx *fx, pid_t *pid, const char *program, const char *log,
                          const char *group, const char *const *extra)
{
    char bin[1024], prefix[128], group_env[160];
    snprintf(bin, sizeof bin, "%s/bin/%s", itest_env("BLAZZ_TEST_BIN_DIR"), program);
    env_line(prefix, sizeof prefix, "BLAZZ_KAFKA_TOPIC_PREFIX", fx->wh.prefix);
    /* blazz-<service>-...: the only groups the service's principal may join */
    snprintf(group_env, sizeof group_env, "%s=blazz-%s-%s",
             strcmp(program, "blazz-ingest") == 0 ? "BLAZZ_INGEST_GROUP_ID"
                                                  : "BLAZZ_CONSUMER_GROUP_ID",
             group, fx->wh.prefix);
    const char *env[64] = {prefix, group_env, "BLAZZ_OUTBOX_IDLE_POLL_MS=100",
                           "BLAZZ_KAFKA_SESSION_TIMEOUT_MS=6000", NULL};
    size_t n = 4;
    for (size_t i = 0; extra && extra[i] && n < 63; i++)
        env[n++] = extra[i];
    env[n] = NULL;
    char *argv[] = {bin, NULL};
    *pid = camp_spawn(&fx->camp, log, argv, env);
}

void agent_start_ingest(agent_fx *fx, const char *const *extra_env)
{
    char listen[64];
    snprintf(listen, sizeof listen, "BLAZZ_INGEST_LISTEN=127.0.0.1:%d", fx->port);
    const char *env[40] = {listen, "BLAZZ_CRM_API_KEY_CACHE_S=1",
                           "BLAZZ_INGEST_CONSUMER_SESSION_TIMEOUT_MS=6000", NULL};
    size_t n = 3;
    for (size_t i = 0; extra_env && extra_env[i] && n < 39; i++)
        env[n++] = extra_env[i];
    env[n] = NULL;
    start_service(fx, &fx->ingest, "blazz-ingest", "ingest.log", "ingest", env);
    /* ready when it answers (401 without a key) */
    for (int i = 0; i < 600; i++) {
        if (agent_post(fx, "/v1/messages", NULL, "{}", NULL, 0, NULL, 0) == 401)
            return;
        itest_sleep_ms(50);
    }
    fail_msg("ingest did not answer on port %d (see %s)", fx->port, fx->camp.dir);
}

void agent_start_chat_sync(agent_fx *fx)
{
    agent_start_chat_sync_with(fx, NULL);
}

void agent_start_chat_sync_with(agent_fx *fx, const char *const *extra_env)
{
    start_service(fx, &fx->chat_sync, "blazz-chat-sync", "chat-sync.log", "chat-sync", extra_env);
}

void agent_start_sim(agent_fx *fx)
{
    char bin[1024], group[128], prefix[128];
    snprintf(bin, sizeof bin, "%s/bin/blazz-gateway-sim", itest_env("BLAZZ_TEST_BIN_DIR"));
    snprintf(group, sizeof group, "blazz-gateway-sim.%s", fx->wh.prefix);
    env_line(prefix, sizeof prefix, "BLAZZ_KAFKA_TOPIC_PREFIX", fx->wh.prefix);
    char *argv[] = {bin, "--mode", "kafka", "--rate", "0", "--duration", "3600",
                    "--answer-outbound", "--ack-delay-ms", "300", "--read-ratio", "1",
                    "--fail-ratio", "0", "--workspaces", "1", "--accounts-per-workspace", "1",
                    "--tag", fx->tag, "--outbound-group", group, "--sends-log", fx->sends_log,
                    "--status-file", fx->sim_status, NULL};
    const char *env[] = {prefix, NULL};
    fx->sim = camp_spawn(&fx->camp, "gateway-sim.log", argv, env);
}

void agent_start_dispatcher(agent_fx *fx)
{
    const char *settings[] = {"BLAZZ_WEBHOOK_ALLOW_PRIVATE_TARGETS=true",
                              "BLAZZ_WEBHOOK_POLL_MS=100", NULL};
    wh_dispatcher_start(&fx->wh, settings);
}

int64_t agent_contact(agent_fx *fx, int64_t workspace, const char *phone, const char *name)
{
    char ws[24];
    snprintf(ws, sizeof ws, "%lld", (long long)workspace);
    return camp_sql(&fx->camp,
                    "INSERT INTO contacts (workspace_id, phone, first_name) VALUES ($1, $2, $3) "
                    "RETURNING id",
                    3, ws, phone, name);
}

char *agent_api_key(agent_fx *fx, int64_t workspace)
{
    char err_log[700];
    snprintf(err_log, sizeof err_log, "%s/blazzctl.log", fx->camp.dir);
    return itest_api_key(workspace, err_log);
}

int64_t agent_endpoint(agent_fx *fx, int64_t workspace, const char *path)
{
    fx->wh.workspace_id = workspace;
    return wh_endpoint_add(&fx->wh, path, AGENT_SECRET, "standard", "{*}", 1000, 1);
}

/* ---- HTTP ------------------------------------------------------------------------- */

typedef struct http_answer {
    char *body;
    size_t cap, len;
    char *retry_after;
    size_t ra_cap;
} http_answer;

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    http_answer *a = arg;
    size_t len = size * n;
    for (size_t i = 0; a->body && i < len && a->len + 1 < a->cap; i++)
        a->body[a->len++] = data[i];
    if (a->body)
        a->body[a->len] = '\0';
    return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    http_answer *a = arg;
    size_t len = size * n;
    if (a->retry_after && len > 12 && strncasecmp(data, "Retry-After:", 12) == 0) {
        size_t v = 12;
        while (v < len && data[v] == ' ')
            v++;
        size_t end = v;
        while (end < len && data[end] != '\r' && data[end] != '\n')
            end++;
        snprintf(a->retry_after, a->ra_cap, "%.*s", (int)(end - v), data + v);
    }
    return len;
}

/* method on ingest's path, with body (NULL: none). */
static long call(agent_fx *fx, const char *method, const char *path, const char *key,
                 const char *body, char *resp, size_t cap, char *retry_after, size_t ra_cap)
{
    char url[256], auth[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", fx->port, path);
    http_answer a = {resp, cap, 0, retry_after, ra_cap};
    if (resp && cap)
        resp[0] = '\0';
    if (retry_after && ra_cap)
        retry_after[0] = '\0';
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (key) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
        h = curl_slist_append(h, auth);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &a);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &a);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

long agent_post(agent_fx *fx, const char *path, const char *key, const char *body, char *resp,
                size_t cap, char *retry_after, size_t ra_cap)
{
    return call(fx, "POST", path, key, body, resp, cap, retry_after, ra_cap);
}

long agent_send_body(agent_fx *fx, const char *method, const char *path, const char *key,
                     const char *body, char *resp, size_t cap)
{
    return call(fx, method, path, key, body, resp, cap, NULL, 0);
}

long agent_call(agent_fx *fx, const char *method, const char *path, const char *key, char *resp,
                size_t cap)
{
    return call(fx, method, path, key, NULL, resp, cap, NULL, 0);
}

long agent_get_json(agent_fx *fx, const char *path, const char *key, json_t **doc)
{
    char resp[65536];
    long status = agent_call(fx, "GET", path, key, resp, sizeof resp);
    *doc = json_loads(resp, 0, NULL);
    if (!*doc)
        fail_msg("GET %s answered %ld, not JSON: %s", path, status, resp);
    return status;
}

json_t *agent_expect_answer(agent_fx *fx, const char *method, const char *path, const char *key,
                            const char *body, long want)
{
    char resp[4096];
    long got = agent_send_body(fx, method, path, key, body, resp, sizeof resp);
    if (got != want)
        fail_msg("%s %s %s: %ld, want %ld: %s", method, path, body, got, want, resp);
    json_t *doc = json_loads(resp, 0, NULL);
    if (!doc)
        fail_msg("%s %s: not JSON: %s", method, path, resp);
    return doc;
}

void agent_expect_refused(agent_fx *fx, const char *method, const char *path, const char *key,
                          const char *body, long status, const char *reason, const char *field)
{
    json_t *doc = agent_expect_answer(fx, method, path, key, body, status);
    const char *r = json_string_value(json_object_get(doc, "error"));
    const char *f = json_string_value(json_object_get(doc, "field"));
    if (!r || strcmp(r, reason) != 0 || !f || strcmp(f, field) != 0)
        fail_msg("%s %s %s: got %s/%s, want %s/%s", method, path, body, r ? r : "-",
                 f ? f : "-", reason, field);
    json_decref(doc);
}

void agent_message_id(const char *resp, char *out)
{
    json_t *j = json_loads(resp, 0, NULL);
    const char *id = json_string_value(json_object_get(j, "message_id"));
    if (!id || !bz_uuid_is_valid(id))
        fail_msg("no message_id in %s", resp);
    snprintf(out, BZ_UUID_STR_SIZE, "%s", id);
    json_decref(j);
}

/* ---- keyset pages ------------------------------------------------------------------------ */

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

void agent_read_all_pages(agent_fx *fx, const char *path, const char *key,
                          const char *list_name, const char *field, int limit, char *out,
                          size_t cap)
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

/* ---- a gateway's inbound message ---------------------------------------------------------- */

void agent_inbound_event(agent_fx *fx, Blazz__V1__InboundEvent *ev)
{
    char event_id[BZ_UUID_STR_SIZE], topic[256];
    bz_error err;
    assert_int_equal(bz_uuid_v4(event_id, &err), BZ_OK);
    const char *session = ev->envelope->session_id;
    ev->envelope->event_id = event_id;
    ev->envelope->provider = BLAZZ__V1__PROVIDER__PROVIDER_WEBJS;
    ev->envelope->source = "itest-gateway";
    uint8_t buf[2048];
    assert_true(blazz__v1__inbound_event__get_packed_size(ev) <= sizeof buf);
    size_t len = blazz__v1__inbound_event__pack(ev, buf);
    ev->envelope->event_id = NULL;
    snprintf(topic, sizeof topic, "%swa.inbound.raw", fx->wh.prefix);
    /* as the HTTP edge writes it: stamped with the gateway serving the
     * session (the sim for campaign_itest.h's accounts, a Meta account's
     * app gateway) */
    char *gateway = itest_pg_textf(fx->camp.pg,
                                   "SELECT gateway_id FROM whatsapp_accounts WHERE session_id = "
                                   "'%s'",
                                   session);
    bz_kafka_header stamp = {ITEST_GATEWAY_HEADER, gateway, strlen(gateway)};
    bz_producer *p = itest_producer();
    bz_status st = bz_producer_send_sync(p, topic, session, strlen(session), buf, len, &stamp, 1,
                                         10000, &err);
    bz_producer_free(p, 5000);
    free(gateway);
    if (st != BZ_OK)
        fail_msg("produce inbound event: %s", err.msg);
}

void agent_inbound(agent_fx *fx, const char *session, const char *wam_id, const char *phone,
                   const char *body, int64_t ts_ms)
{
    agent_inbound_from(fx, session, wam_id, phone, "", body, ts_ms);
}

void agent_inbound_from(agent_fx *fx, const char *session, const char *wam_id, const char *phone,
                        const char *jid, const char *body, int64_t ts_ms)
{
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    env.occurred_at_ms = ts_ms;
    env.session_id = (char *)session;
    Blazz__V1__InboundMessage m = BLAZZ__V1__INBOUND_MESSAGE__INIT;
    m.wam_id = (char *)wam_id;
    m.chat_type = BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_PRIVATE;
    m.contact_phone = (char *)phone;
    m.contact_jid = (char *)jid;
    m.contact_name = "Contact";
    m.body = (char *)body;
    m.message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT;
    m.raw_type = "chat";
    m.timestamp_ms = ts_ms;
    Blazz__V1__InboundEvent ev = BLAZZ__V1__INBOUND_EVENT__INIT;
    ev.envelope = &env;
    ev.payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_MESSAGE;
    ev.message = &m;
    agent_inbound_event(fx, &ev);
}

/* ---- the gateway's log ------------------------------------------------------------------ */

agent_send *agent_sends(agent_fx *fx, size_t *n)
{
    *n = 0;
    size_t cap = 64;
    agent_send *out = calloc(cap, sizeof *out);
    FILE *f = fopen(fx->sends_log, "r");
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        if (*n == cap) {
            agent_send *grown = realloc(out, (cap *= 2) * sizeof *out);
            assert_non_null(grown);
            out = grown;
        }
        agent_send *s = &out[*n];
        memset(s, 0, sizeof *s);
        char *rest;
        errno = 0;
        long long ms = strtoll(line, &rest, 10);
        char what[16] = "";
        if (errno != 0 || rest == line ||
            sscanf(rest, " %127s %63s %15s", s->session, s->key, what) < 2)
            fail_msg("unreadable line in %s: %s", fx->sends_log, line);
        s->ms = ms;
        s->read = strcmp(what, "read") == 0;
        (*n)++;
    }
    if (f)
        fclose(f);
    return out;
}

int64_t agent_released_ms(agent_fx *fx, const char *message_id)
{
    return agent_int(fx, "SELECT (extract(epoch FROM released_at) * 1000)::bigint FROM "
                         "send_ledger WHERE reference = '%s'", message_id);
}

agent_send *agent_sends_of_session(agent_fx *fx, const char *session, size_t *n)
{
    size_t all_n;
    agent_send *all = agent_sends(fx, &all_n);
    *n = 0;
    for (size_t i = 0; i < all_n; i++)
        if (strcmp(all[i].session, session) == 0 && !all[i].read)
            all[(*n)++] = all[i];
    return all;
}

void agent_post_messages(agent_fx *fx, const char *key, const char *tag, int n,
                         const int64_t *contacts, int ncontacts, int64_t account,
                         char (*ids)[BZ_UUID_STR_SIZE])
{
    for (int i = 0; i < n; i++) {
        char req[512], resp[512];
        snprintf(req, sizeof req,
                 "{\"idempotency_key\":\"%s-%d\",\"contact_id\":%lld,"
                 "\"whatsapp_account_id\":%lld,\"body\":\"agent %d\"}",
                 tag, i, (long long)contacts[i % ncontacts], (long long)account, i);
        long st = agent_post(fx, "/v1/messages", key, req, resp, sizeof resp, NULL, 0);
        if (st != 202)
            fail_msg("agent message %d: %ld %s", i, st, resp);
        agent_message_id(resp, ids[i]);
    }
}

int agent_sends_of(agent_fx *fx, const char *key)
{
    size_t n;
    agent_send *all = agent_sends(fx, &n);
    int count = 0;
    for (size_t i = 0; i < n; i++)
        count += strcmp(all[i].key, key) == 0;
    free(all);
    return count;
}

long agent_send_repeats(agent_fx *fx)
{
    return itest_status_value(fx->sim_status, "outbound_duplicates");
}

/* ---- polling ------------------------------------------------------------------------------ */

void agent_wait(agent_fx *fx, int64_t want, int timeout_s, const char *fmt, ...)
{
    char sql[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    int64_t got = -1;
    for (int i = 0; i < timeout_s * 10; i++) {
        if ((got = camp_sql(&fx->camp, sql, 0)) == want)
            return;
        itest_sleep_ms(100);
    }
    fail_msg("waited %d s for %lld, last %lld: %s (logs in %s)", timeout_s, (long long)want,
             (long long)got, sql, fx->camp.dir);
}

/* ---- one fixture per test ---------------------------------------------------------------- */

agent_fx *agent_test_fx;

int agent_test_setup(void **state)
{
    (void)state;
    agent_test_fx = calloc(1, sizeof *agent_test_fx);
    return agent_test_fx ? 0 : -1;
}

int agent_test_teardown(void **state)
{
    (void)state;
    if (agent_test_fx->camp.pg)
        agent_fx_finish(agent_test_fx);
    free(agent_test_fx);
    agent_test_fx = NULL;
    return 0;
}

static void collect_dlq(void *ctx, const rd_kafka_message_t *m)
{
    agent_dlq_reasons *d = ctx;
    rd_kafka_headers_t *h = NULL;
    const void *v;
    size_t len;
    if (d->n < 8 && rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_header_get_last(h, "dlt-error-code", &v, &len) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(d->codes[d->n], sizeof d->codes[d->n], "%.*s", (int)len, (const char *)v);
        d->n++;
    }
}

static void count_record(void *ctx, const rd_kafka_message_t *m)
{
    (void)m;
    (*(int *)ctx)++;
}

int agent_dead_letter_count(agent_fx *fx)
{
    char topic[256];
    int n = 0;
    snprintf(topic, sizeof topic, "%swa.inbound.dlq", fx->wh.prefix);
    itest_consume_all(topic, count_record, &n);
    snprintf(topic, sizeof topic, "%schat.sync.dlq", fx->wh.prefix);
    itest_consume_all(topic, count_record, &n);
    return n;
}

void agent_dead_letters(agent_fx *fx, agent_dlq_reasons *d, int want)
{
    char dlq[256];
    snprintf(dlq, sizeof dlq, "%schat.sync.dlq", fx->wh.prefix);
    for (int i = 0; i < 300; i++) {
        memset(d, 0, sizeof *d);
        itest_consume_all(dlq, collect_dlq, d);
        if (d->n >= want)
            break;
        itest_sleep_ms(100);
    }
}

long agent_replay_dead_letters(agent_fx *fx, const char *code)
{
    char err_log[700], filter[96];
    snprintf(err_log, sizeof err_log, "%s/blazzctl.log", fx->camp.dir);
    snprintf(filter, sizeof filter, "error=%s", code);
    const char *args[] = {"dlq", "replay", "chat.sync.dlq", "--prefix", fx->wh.prefix,
                          "--filter", filter, "--json", NULL};
    json_t *out = itest_blazzctl_json(args, err_log);
    long replayed = (long)json_integer_value(json_object_get(out, "replayed"));
    json_decref(out);
    return replayed;
}
