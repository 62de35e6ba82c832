/*
 * meta_world.c - see meta_world.h.
 */
#include "meta_world.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent_itest.h"
#include "blazz/v1/campaign.pb-c.h"
#include "itest.h"
#include "itest_http.h"
#include "wa/signature.h"

#define fx agent_test_fx

meta_world meta_test_world;
const char *meta_world_ambiguous_hold = "BLAZZ_META_AMBIGUOUS_HOLD_MS=2000";
const char *meta_world_rate_guard = "BLAZZ_META_RATE_GUARD_MS=500";
const char *meta_world_fetch_threads = "BLAZZ_MEDIA_FETCH_THREADS=4";
const char *meta_world_fetch_poll = "BLAZZ_MEDIA_FETCH_POLL_MS=250";
const char *const *meta_world_campaign_env;
#define mw meta_test_world

static char bodies_path[760];

void meta_world_write_tokens(const char *token)
{
    const char *pnids[] = {mw.session}, *tokens[] = {token};
    graph_write_tokens(&mw.graph, pnids, tokens, 1);
}

void meta_world_set_token(const char *token)
{
    char account[24], err_log[700];
    snprintf(account, sizeof account, "%lld", (long long)mw.account);
    snprintf(err_log, sizeof err_log, "%s/blazzctl.log", fx->camp.dir);
    setenv("BLAZZ_SECRETS_KEYS", ITEST_SECRETS_KEYS, 1);
    setenv("BLAZZ_META_ACCESS_TOKEN", token, 1);
    const char *args[] = {"meta", "token", "--account", account, "--json", NULL};
    json_t *out = itest_blazzctl_json(args, err_log);
    assert_string_equal(json_string_value(json_object_get(out, "status")), "valid");
    json_decref(out);
    unsetenv("BLAZZ_META_ACCESS_TOKEN");
    if (itest_file_contains(err_log, token))
        fail_msg("blazzctl printed the token");
}

static void start_graph(const char *const *extra)
{
    char hook[128];
    snprintf(hook, sizeof hook, "http://127.0.0.1:%d/v1/meta/webhook", fx->port);
    snprintf(bodies_path, sizeof bodies_path, "%s/graph-bodies.txt", fx->camp.dir);
    const char *args[32] = {"--webhook", hook, "--app-secret", META_WORLD_APP_SECRET, "--bodies",
                            bodies_path};
    size_t n = 6;
    for (size_t i = 0; extra && extra[i] && n < 31; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    graph_start(&mw.graph, &fx->camp, args);
}

/* The rate guard covers the jitter between our clock and the receiver's
 * (ARCHITECTURE.md §12.1). Here the receiver is the Graph test server,
 * which stamps a request when one of its two threads gets to it: with the
 * suite's programs side by side on two cores, requests meta-sender started
 * 1,150 ms apart (the default-like 150 ms guard) were stamped 45 within one
 * second. 500 ms covers that (meta_world_rate_guard). */
void meta_world_start_meta_sender(void)
{
    char listen[64];
    mw.meta_admin_port = itest_free_port();
    snprintf(listen, sizeof listen, "BLAZZ_HTTP_LISTEN=127.0.0.1:%d", mw.meta_admin_port);
    /* the media fetcher: quick retries, and a lease short enough that a
     * killed fetcher's jobs are taken again within a test (§16.2) */
    const char *env[] = {meta_world_ambiguous_hold, "BLAZZ_META_RETRY_BASE_MS=200",
                         meta_world_rate_guard, "BLAZZ_META_MAX_ATTEMPTS=20", listen,
                         "BLAZZ_MEDIA_FETCH_RETRY_BASE_MS=100", "BLAZZ_MEDIA_FETCH_RETRY_MAX_MS=1000",
                         "BLAZZ_MEDIA_FETCH_TIMEOUT_MS=2000", "BLAZZ_MEDIA_FETCH_LEASE_MS=5000",
                         meta_world_fetch_poll, meta_world_fetch_threads, NULL};
    mw.meta = meta_sender_start(&fx->camp, fx->wh.prefix, mw.graph.port, env);
}

static void start_ingest(void)
{
    char meta_gateway[96];
    snprintf(meta_gateway, sizeof meta_gateway, "BLAZZ_INGEST_META_GATEWAY=%s", mw.gateway);
    const char *ingest_env[] = {meta_gateway, NULL};
    agent_start_ingest(fx, ingest_env);
}

void meta_world_prepare(const char *name, const char *rate_limits)
{
    memset(&mw, 0, sizeof mw);
    agent_fx_init(fx, name);
    mw.ws = camp_workspace(&fx->camp);
    mw.account = camp_account(&fx->camp, mw.ws, "pn", 1, 100, rate_limits);
    /* a Cloud API account's session_id is its phone number id: digits */
    agent_int(fx, "UPDATE whatsapp_accounts SET provider_type = 'meta', session_id = '1065' || id "
                  "|| lpad(floor(random() * 1000000)::int::text, 6, '0') WHERE id = %lld "
                  "RETURNING id", (long long)mw.account);
    char *session = itest_pg_textf(fx->camp.pg, "SELECT session_id FROM whatsapp_accounts "
                                               "WHERE id = %lld", (long long)mw.account);
    snprintf(mw.session, sizeof mw.session, "%s", session);
    free(session);
    /* a WABA is one workspace's: one of its own for each world */
    snprintf(mw.waba, sizeof mw.waba, "9%012lld", (long long)mw.account);
    agent_int(fx, "UPDATE whatsapp_accounts SET meta_waba_id = '%s' WHERE id = %lld RETURNING id",
              mw.waba, (long long)mw.account);
    itest_unique("meta", mw.gateway, sizeof mw.gateway);
    itest_gateway_create(fx->wh.prefix, mw.gateway, "meta", "gateway-sim", META_WORLD_APP_SECRET);
    agent_int(fx, "UPDATE whatsapp_accounts SET gateway_id = '%s' WHERE id = %lld RETURNING id",
              mw.gateway, (long long)mw.account);
    graph_fx_init(&mw.graph, &fx->camp);
    meta_world_write_tokens("token-one");
    meta_world_set_token("token-one");
    mw.api_key = agent_api_key(fx, mw.ws);
}

void meta_world_launch(const char *const *graph_args)
{
    start_graph(graph_args);
    start_ingest();
    agent_start_chat_sync(fx);
    static char camp_listen[64];
    mw.camp_admin_port = itest_free_port();
    snprintf(camp_listen, sizeof camp_listen, "BLAZZ_HTTP_LISTEN=127.0.0.1:%d",
             mw.camp_admin_port);
    const char *camp_env[16] = {camp_listen};
    for (size_t i = 0; meta_world_campaign_env && meta_world_campaign_env[i] && i < 14; i++)
        camp_env[i + 1] = meta_world_campaign_env[i];
    camp_start_sender(&fx->camp, 0, camp_env);
    meta_world_start_meta_sender();
}

void meta_world_start(const char *name, const char *rate_limits, const char *const *graph_args)
{
    meta_world_prepare(name, rate_limits);
    meta_world_launch(graph_args);
}

void meta_world_post_webhook(const char *body)
{
    char sig[BZ_HMAC_SHA256_HEX_SIZE], header[160], url[128];
    assert_int_equal(bz_hmac_sha256_hex(META_WORLD_APP_SECRET, strlen(META_WORLD_APP_SECRET), body,
                                        strlen(body), sig, NULL),
                     BZ_OK);
    snprintf(header, sizeof header, "X-Hub-Signature-256: sha256=%s", sig);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/meta/webhook", fx->port);
    const char *headers[] = {"Content-Type: application/json", header, NULL};
    itest_http_reply reply;
    /* Meta posts a webhook again until it is answered 200; a 503 (nothing
     * accepted: ingest's owner lookup or the broker was slow) or no answer
     * is asked again here too, for up to 30 s. A 4xx is a refusal: it fails
     * at once. */
    for (int attempt = 0; attempt < 60; attempt++) {
        itest_http("POST", url, body, strlen(body), headers, 30000, &reply);
        if (reply.status != 0 && reply.status < 500)
            break;
        print_message("POST /v1/meta/webhook answered %ld (attempt %d), posting again: %s\n",
                      reply.status, attempt + 1, reply.body);
        itest_sleep_ms(500);
    }
    if (reply.status != 200)
        fail_msg("POST /v1/meta/webhook answered %ld: %s", reply.status, reply.body);
}

void meta_world_report_template(const char *name, const char *event, const char *reason)
{
    char value[512], url[128];
    snprintf(value, sizeof value,
             "{\"event\":\"%s\",\"message_template_id\":%lld,\"message_template_name\":\"%s\","
             "\"message_template_language\":\"id\",\"reason\":\"%s\"}",
             event, (long long)mw.account, name, reason ? reason : "NONE");
    snprintf(url, sizeof url, "http://127.0.0.1:%d/_review/%s", mw.graph.port, mw.waba);
    const char *headers[] = {"Content-Type: application/json", NULL};
    itest_http_reply reply;
    itest_http("POST", url, value, strlen(value), headers, 30000, &reply);
    if (reply.status != 200)
        fail_msg("the Graph test server's review answered %ld: %s", reply.status, reply.body);
    agent_wait(fx, 1, 90,
               "SELECT count(*) FROM templates WHERE workspace_id = %lld AND name = '%s' AND "
               "meta_event = '%s'",
               (long long)mw.ws, name, event);
}

void meta_world_post_change(const char *field, const char *members)
{
    char body[8192];
    snprintf(body, sizeof body,
             "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"%s\","
             "\"changes\":[{\"field\":\"%s\",\"value\":{\"messaging_product\":"
             "\"whatsapp\",\"metadata\":{\"display_phone_number\":\"15550783881\","
             "\"phone_number_id\":\"%s\"},%s}}]}]}",
             mw.waba, field, mw.session, members);
    meta_world_post_webhook(body);
}

void meta_world_graph_plays(const char *route, const char *body)
{
    char url[160];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/%s/%s", mw.graph.port, route, mw.waba);
    const char *headers[] = {"Content-Type: application/json", NULL};
    itest_http_reply reply;
    itest_http("POST", url, body, strlen(body), headers, 30000, &reply);
    if (reply.status != 200)
        fail_msg("the Graph test server's %s answered %ld: %s", route, reply.status, reply.body);
}

void meta_world_user_writes(const char *from, const char *wamid, long long ts,
                            const char *members)
{
    char value[4096];
    snprintf(value, sizeof value,
             "{\"messaging_product\":\"whatsapp\",\"metadata\":{\"display_phone_number\":"
             "\"15550783881\",\"phone_number_id\":\"%s\"},\"contacts\":[{\"profile\":{\"name\":"
             "\"Ani\"},\"wa_id\":\"%s\"}],\"messages\":[{\"from\":\"%s\",\"id\":\"%s\","
             "\"timestamp\":\"%lld\",%s}]}",
             mw.session, from, from, wamid, ts, members);
    meta_world_graph_plays("_inbound", value);
}

void meta_world_post_inbound(const char *from, const char *wamid, long long ts,
                             const char *type, const char *content)
{
    char members[4096];
    snprintf(members, sizeof members,
             "\"contacts\":[{\"profile\":{\"name\":\"Ani\"},\"wa_id\":\"%s\"}],"
             "\"messages\":[{\"from\":\"%s\",\"id\":\"%s\",\"timestamp\":\"%lld\","
             "\"type\":\"%s\",%s}]",
             from, from, wamid, ts, type, content);
    meta_world_post_change("messages", members);
}

int64_t meta_world_webhooks_delivered(const char *type, const char *cond)
{
    return agent_int(fx, "SELECT count(*) FROM webhook_retry_queue q, LATERAL (SELECT "
                         "convert_from(q.payload, 'UTF8')::jsonb AS b) j WHERE q.workspace_id = "
                         "%lld AND q.event_type = '%s' AND q.status = 'success' AND %s",
                     (long long)mw.ws, type, cond);
}

void meta_world_wait_webhooks(const char *type, int64_t want)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM webhook_retry_queue WHERE workspace_id = %lld AND status = "
             "'success' AND event_type = '%s'",
             (long long)mw.ws, type);
    wh_wait_for(&fx->wh, sql, want, 90000);
}

void meta_world_restart_ingest(void)
{
    agent_kill(&fx->ingest);
    start_ingest();
}

static int stop_pid(pid_t *pid)
{
    if (*pid <= 0)
        return 0;
    kill(*pid, SIGTERM);
    int rc = itest_wait(*pid);
    *pid = 0;
    return rc;
}

int meta_world_teardown(void **state)
{
    int bad = 0;
    if (fx && fx->camp.pg) {
        bad |= stop_pid(&mw.meta) != 0;
        bad |= graph_stop(&mw.graph) != 0;
        char sql[200];
        snprintf(sql, sizeof sql, "DELETE FROM meta_sends WHERE whatsapp_account_id = %lld",
                 (long long)mw.account);
        itest_pg_exec(fx->camp.pg, sql);
    }
    free(mw.api_key);
    mw.api_key = NULL;
    agent_test_teardown(state);
    if (bad)
        fail_msg("meta-sender or the Graph test server did not exit cleanly on SIGTERM");
    return 0;
}

void meta_world_contact_wrote(int64_t contact, int64_t ago_ms)
{
    agent_int(fx, "INSERT INTO chats (workspace_id, whatsapp_account_id, contact_id, wam_id, "
                  "type, provider_type, message_status, status, is_read, metadata, created_at) "
                  "VALUES (%lld, %lld, %lld, 'wamid.WROTE-' || %lld, 'inbound', 'meta', "
                  "'delivered', 'delivered', true, '{\"body\": \"halo\"}', now() - "
                  "make_interval(secs => %lld / 1000.0)) RETURNING id",
              (long long)mw.ws, (long long)mw.account, (long long)contact, (long long)contact,
              (long long)ago_ms);
}

void meta_world_audience_wrote(int64_t group, int64_t ago_ms)
{
    agent_int(fx, "WITH w AS (INSERT INTO chats (workspace_id, whatsapp_account_id, contact_id, "
                  "wam_id, type, provider_type, message_status, status, is_read, metadata, "
                  "created_at) SELECT %lld, %lld, m.contact_id, 'wamid.WROTE-' || m.contact_id, "
                  "'inbound', 'meta', 'delivered', 'delivered', true, '{\"body\": \"halo\"}', "
                  "now() - make_interval(secs => %lld / 1000.0) FROM contact_group_members m "
                  "WHERE m.contact_group_id = %lld RETURNING 1) SELECT count(*) FROM w",
              (long long)mw.ws, (long long)mw.account, (long long)ago_ms, (long long)group);
}

int64_t meta_world_approved_template(const char *name, const char *category, const char *body)
{
    return agent_int(fx, "INSERT INTO templates (workspace_id, name, language, category, status, "
                         "meta_waba_id, body_text) VALUES (%lld, '%s', 'id', '%s', 'APPROVED', "
                         "'%s', '%s') RETURNING id",
                     (long long)mw.ws, name, category, mw.waba, body);
}

int64_t meta_world_template_campaign(int64_t group, int64_t tpl, const char *metadata)
{
    int64_t campaign = camp_campaign(&fx->camp, mw.ws, group, mw.account, "", "draft", metadata);
    agent_int(fx, "UPDATE campaigns SET campaign_type = 'template', message_content = NULL, "
                  "template_id = %lld WHERE id = %lld RETURNING id",
              (long long)tpl, (long long)campaign);
    return campaign;
}

void meta_world_post_message(const char *json_fields, const char *idem, char *id)
{
    char req[2048], resp[512];
    snprintf(req, sizeof req, "{\"idempotency_key\":\"%s\",%s}", idem, json_fields);
    long status = agent_post(fx, "/v1/messages", mw.api_key, req, resp, sizeof resp, NULL, 0);
    if (status != 202)
        fail_msg("POST /v1/messages answered %ld: %s", status, resp);
    agent_message_id(resp, id);
}

void meta_world_post_text(int64_t contact, const char *body, const char *idem, char *id)
{
    char fields[1024];
    snprintf(fields, sizeof fields, "\"contact_id\":%lld,\"body\":\"%s\"", (long long)contact,
             body);
    meta_world_post_message(fields, idem, id);
}

long meta_world_count_kind(const char *kind)
{
    size_t n;
    graph_record *r = graph_records(&mw.graph, &n);
    long k = 0;
    for (size_t i = 0; i < n; i++)
        k += strcmp(r[i].kind, kind) == 0;
    free(r);
    return k;
}

graph_body *graph_bodies(size_t *n)
{
    *n = 0;
    FILE *f = fopen(bodies_path, "r");
    size_t cap = 0;
    graph_body *b = NULL;
    char *line = NULL;
    size_t line_cap = 0;
    while (f && getline(&line, &line_cap, f) > 0) {
        char *space = strchr(line, ' ');
        if (!space)
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            graph_body *grown = realloc(b, cap * sizeof *b);
            if (!grown)
                fail_msg("out of memory reading %s", bodies_path);
            b = grown;
        }
        snprintf(b[*n].wamid, sizeof b[*n].wamid, "%.*s", (int)(space - line), line);
        b[*n].doc = json_loads(space + 1, 0, NULL);
        if (b[*n].doc)
            (*n)++;
    }
    free(line);
    if (f)
        fclose(f);
    return b;
}

void graph_bodies_free(graph_body *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        json_decref(b[i].doc);
    free(b);
}

/* ---- campaigns ----------------------------------------------------------------------- */

int64_t meta_world_start_campaign(int n)
{
    int64_t group = camp_audience(&fx->camp, mw.ws, n, 62);
    meta_world_audience_wrote(group, 3600 * 1000LL);
    int64_t campaign = camp_campaign(&fx->camp, mw.ws, group, mw.account,
                                     "Promo {{first_name}}", "draft", NULL);
    camp_command(&fx->camp, mw.ws, campaign, "start", "itest");
    return campaign;
}

/* Every log of the campaign reached the server exactly `copies_max` times
 * at most, at least once; returns how many refs came more than once. */
long meta_world_check_one_per_contact(int64_t campaign, int n)
{
    size_t count;
    graph_record *r = graph_records(&mw.graph, &count);
    long duplicates = 0;
    /* the campaign's log uuids, sorted, against the records' references */
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT uuid::text FROM campaign_logs WHERE campaign_id = %lld "
                              "ORDER BY uuid::text", (long long)campaign);
    PGresult *res = PQexec(fx->camp.pg, sql);
    assert_int_equal(PQntuples(res), n);
    for (int i = 0; i < PQntuples(res); i++) {
        const char *uuid = PQgetvalue(res, i, 0);
        long seen = 0;
        for (size_t k = 0; k < count; k++)
            seen += strcmp(r[k].ref, uuid) == 0;
        if (seen == 0)
            fail_msg("campaign log %s never reached the Cloud API", uuid);
        duplicates += seen - 1;
    }
    PQclear(res);
    free(r);
    return duplicates;
}

/* Wait until the campaign completed; at the deadline, fail saying where it
 * stands. */
void meta_world_wait_completed(int64_t campaign, int timeout_s)
{
    for (int i = 0; i < timeout_s * 10; i++) {
        if (agent_int(fx, "SELECT count(*) FROM campaigns WHERE id = %lld AND status = "
                          "'completed'", (long long)campaign) == 1)
            return;
        itest_sleep_ms(100);
    }
    char *where = itest_pg_textf(
        fx->camp.pg,
        "SELECT format('status %%s, messages_sent %%s, delivered %%s, read %%s, logs queued %%s', "
        "status, messages_sent, messages_delivered, messages_read, (SELECT count(*) FROM "
        "campaign_logs WHERE campaign_id = c.id AND status = 'queued')) FROM campaigns c "
        "WHERE id = %lld", (long long)campaign);
    char stands[256];
    snprintf(stands, sizeof stands, "%s", where);
    free(where);
    fail_msg("campaign %lld not completed after %d s: %s; %ld messages accepted by the Cloud "
             "API (logs in %s)", (long long)campaign, timeout_s, stands, meta_world_count_kind("text"),
             fx->camp.dir);
}

typedef struct completed_counters {
    int64_t campaign;
    int found;
    int64_t sent, failed, skipped;
} completed_counters;

static void read_completed(void *ctx, const rd_kafka_message_t *msg)
{
    completed_counters *c = ctx;
    Blazz__V1__CampaignEvent *e =
        blazz__v1__campaign_event__unpack(NULL, msg->len, (const uint8_t *)msg->payload);
    if (!e)
        return;
    if (e->campaign_id == c->campaign && e->counters &&
        e->kind == BLAZZ__V1__CAMPAIGN_EVENT_KIND__CAMPAIGN_EVENT_KIND_COMPLETED) {
        c->found++;
        c->sent = e->counters->messages_sent;
        c->failed = e->counters->messages_failed;
        c->skipped = e->counters->messages_skipped;
    }
    blazz__v1__campaign_event__free_unpacked(e, NULL);
}

void meta_world_assert_completed_event(int64_t campaign, int64_t sent, int64_t failed,
                                       int64_t skipped)
{
    agent_wait(fx, 0, 60, "SELECT count(*) FROM outbox");
    char topic[256];
    snprintf(topic, sizeof topic, "%scampaign.events", fx->wh.prefix);
    completed_counters c = {.campaign = campaign};
    itest_consume_all(topic, read_completed, &c);
    assert_int_equal(c.found, 1);
    assert_int_equal(c.sent, sent);
    assert_int_equal(c.failed, failed);
    assert_int_equal(c.skipped, skipped);
}

int meta_world_contacts_wanted(int default_n)
{
    return itest_env_int("BLAZZ_META_CAMPAIGN_CONTACTS", default_n, 10, 100000);
}

/* The most requests that started at the server in any window of 1,000 ms,
 * whatever became of them (answered, throttled, dropped). */
int meta_world_busiest_second(void)
{
    size_t n;
    graph_request *r = graph_requests(&mw.graph, &n);
    int best = 0;
    size_t lo = 0;
    for (size_t hi = 0; hi < n; hi++) {
        while (r[hi].start_ms - r[lo].start_ms >= 1000)
            lo++;
        if ((int)(hi - lo + 1) > best)
            best = (int)(hi - lo + 1);
    }
    free(r);
    return best;
}
