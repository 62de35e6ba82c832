/*
 * test_meta_sender.c - Meta Cloud API accounts really send (issue 17,
 * ARCHITECTURE.md §12), over the whole real chain:
 *
 *   CRM POST /v1/messages, /v1/chats/read, or a campaign -> ingest ->
 *   chat-sync -> campaign-sender (send budget) -> wa.outbound ->
 *   blazz-meta-sender -> graph_test_server (the Cloud API on loopback) ->
 *   status webhooks (sent, delivered, read, with biz_opaque_callback_data)
 *   -> ingest's /v1/meta/webhook -> chat-sync -> the same chats row and
 *   campaign log.
 *
 * Tests:
 *  - agent_messages_and_mark_read: an agent's text (with a link), a reply
 *    and an image by link leave through the Cloud API with the account's
 *    token; each chats row gets Meta's wamid and ends read by the webhook's
 *    statuses; a mark-read of an inbound message reaches Meta as status
 *    read with that message's id;
 *  - error_codes: 131047 fails the row with reengagement_required after
 *    one request, 131026 fails it with 131026 after one request (no retry),
 *    for agents' chats rows and for a campaign's logs;
 *  - campaign_with_faults: BLAZZ_META_CAMPAIGN_CONTACTS (1,000) campaign
 *    messages against 5% 130429/131056 answers and a dropped connection
 *    every 100 requests: every contact receives exactly one message, no
 *    1-second window at the server holds more than the account's rate,
 *    the campaign completes with exact counters;
 *  - token_expires_mid_campaign: the server stops accepting the token
 *    (190): the campaign pauses with reason token_invalid, nothing is
 *    dead-lettered or lost; `blazzctl meta token` sets the new one (read
 *    from the environment, never argv); the campaign resumes by itself and
 *    finishes with exactly one message per contact;
 *  - preferred_provider_header_and_buttons: a campaign with
 *    preferred_provider meta, no account of its own, in a workspace whose
 *    primary account is webjs, goes out through the Meta account, its media
 *    header and buttons as an interactive message;
 *  - sigkill_mid_campaign: meta-sender is SIGKILLed while sending and
 *    restarted; contacts that got two messages are counted and must be at
 *    most the sends that were in flight at the kill (the ambiguous window,
 *    counted in meta_sends.ambiguous_resends).
 * Every wait polls PostgreSQL or a file with a deadline.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent_itest.h"
#include "core/clock.h"
#include "core/uuid.h"
#include "itest.h"
#include "meta_itest.h"

#define fx agent_test_fx
#define APP_SECRET "meta-app-secret-for-tests"
#define RATE 40

typedef struct meta_world {
    int64_t ws, account;
    char session[128];
    char gateway[48]; /* the Meta app's gateway, serving the account (§9.2) */
    graph_fx graph;
    pid_t meta;
    char *api_key;
} meta_world;

static meta_world mw;

static void write_tokens(const char *token)
{
    const char *pnids[] = {mw.session}, *tokens[] = {token};
    graph_write_tokens(&mw.graph, pnids, tokens, 1);
}

/* blazzctl meta token, the token from the environment (never argv). */
static void set_token(const char *token)
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

static void start_graph(const char *const *faults)
{
    char hook[128];
    snprintf(hook, sizeof hook, "http://127.0.0.1:%d/v1/meta/webhook", fx->port);
    const char *args[32] = {"--webhook", hook, "--app-secret", APP_SECRET};
    size_t n = 4;
    for (size_t i = 0; faults && faults[i] && n < 31; i++)
        args[n++] = faults[i];
    args[n] = NULL;
    graph_start(&mw.graph, &fx->camp, args);
}

static void start_meta_sender(void)
{
    const char *env[] = {"BLAZZ_META_AMBIGUOUS_HOLD_MS=2000", "BLAZZ_META_RETRY_BASE_MS=200",
                         "BLAZZ_META_RATE_GUARD_MS=150", "BLAZZ_META_MAX_ATTEMPTS=20", NULL};
    mw.meta = meta_sender_start(&fx->camp, fx->wh.prefix, mw.graph.port, env);
}

/* The world of one test: a workspace with one Meta account (session = its
 * phone number id) served by the Meta app's gateway (its key is the app
 * secret the status webhooks are signed with), its token set with
 * blazzctl, the Graph test server with faults, and every service. */
static void meta_world_start(const char *name, const char *rate_limits,
                             const char *const *faults)
{
    memset(&mw, 0, sizeof mw);
    agent_fx_init(fx, name);
    mw.ws = camp_workspace(&fx->camp);
    mw.account = camp_account(&fx->camp, mw.ws, "pn", 1, 100, rate_limits);
    agent_int(fx, "UPDATE whatsapp_accounts SET provider_type = 'meta' WHERE id = %lld "
                  "RETURNING id", (long long)mw.account);
    char *session = itest_pg_textf(fx->camp.pg, "SELECT session_id FROM whatsapp_accounts "
                                               "WHERE id = %lld", (long long)mw.account);
    snprintf(mw.session, sizeof mw.session, "%s", session);
    free(session);
    itest_unique("meta", mw.gateway, sizeof mw.gateway);
    itest_gateway_create(fx->wh.prefix, mw.gateway, "meta", "gateway-sim", APP_SECRET);
    agent_int(fx, "UPDATE whatsapp_accounts SET gateway_id = '%s' WHERE id = %lld RETURNING id",
              mw.gateway, (long long)mw.account);
    graph_fx_init(&mw.graph, &fx->camp);
    write_tokens("token-one");
    set_token("token-one");
    mw.api_key = agent_api_key(fx, mw.ws);
    start_graph(faults);
    char meta_gateway[96];
    snprintf(meta_gateway, sizeof meta_gateway, "BLAZZ_INGEST_META_GATEWAY=%s", mw.gateway);
    const char *ingest_env[] = {meta_gateway, NULL};
    agent_start_ingest(fx, ingest_env);
    agent_start_chat_sync(fx);
    camp_start_sender(&fx->camp, 0, NULL);
    start_meta_sender();
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

static int meta_teardown(void **state)
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

static graph_record *read_records(size_t *n)
{
    return graph_records(&mw.graph, n);
}

static long count_kind(const char *kind)
{
    size_t n;
    graph_record *r = read_records(&n);
    long k = 0;
    for (size_t i = 0; i < n; i++)
        k += strcmp(r[i].kind, kind) == 0;
    free(r);
    return k;
}

static void post_message(const char *json_fields, const char *idem, char *id)
{
    char req[1024], resp[512];
    snprintf(req, sizeof req, "{\"idempotency_key\":\"%s\",%s}", idem, json_fields);
    long status = agent_post(fx, "/v1/messages", mw.api_key, req, resp, sizeof resp, NULL, 0);
    if (status != 202)
        fail_msg("POST /v1/messages answered %ld: %s", status, resp);
    agent_message_id(resp, id);
}

/* ---- agents and reads -------------------------------------------------------------- */

static void agent_messages_and_mark_read(void **state)
{
    (void)state;
    meta_world_start("mt", "{}", NULL);
    int64_t contact = agent_contact(fx, mw.ws, "+6281300000001", "Ann");
    char fields[512], text_id[BZ_UUID_STR_SIZE], reply_id[BZ_UUID_STR_SIZE],
        image_id[BZ_UUID_STR_SIZE];
    snprintf(fields, sizeof fields,
             "\"contact_id\":%lld,\"body\":\"Halo, lihat https://example.com\"",
             (long long)contact);
    post_message(fields, "meta-text-1", text_id);
    agent_wait(fx, 1, 90,
               "SELECT count(*) FROM chats WHERE uuid = '%s' AND message_status = 'read' "
               "AND wam_id LIKE 'wamid.T%%' AND whatsapp_account_id = %lld",
               text_id, (long long)mw.account);
    char *wam = itest_pg_textf(fx->camp.pg, "SELECT wam_id FROM chats WHERE uuid = '%s'", text_id);
    snprintf(fields, sizeof fields,
             "\"contact_id\":%lld,\"body\":\"balasan\",\"reply_to_wam_id\":\"%s\"",
             (long long)contact, wam);
    post_message(fields, "meta-reply-1", reply_id);
    snprintf(fields, sizeof fields,
             "\"contact_id\":%lld,\"message_type\":\"image\",\"media\":{\"url\":"
             "\"https://example.com/a.jpg\",\"mime_type\":\"image/jpeg\",\"caption\":\"foto\"}",
             (long long)contact);
    post_message(fields, "meta-image-1", image_id);
    agent_wait(fx, 2, 90,
               "SELECT count(*) FROM chats WHERE uuid IN ('%s', '%s') AND message_status = "
               "'read' AND wam_id LIKE 'wamid.T%%'",
               reply_id, image_id);
    free(wam);
    assert_int_equal(count_kind("text"), 2);
    assert_int_equal(count_kind("image"), 1);
    /* each message went once: one request per idempotency key */
    agent_wait(fx, 3, 30,
               "SELECT count(*) FROM meta_sends WHERE whatsapp_account_id = %lld AND state = "
               "'sent' AND attempts = 1",
               (long long)mw.account);

    /* an inbound message, then the CRM reads the chat: Meta gets status read */
    agent_inbound(fx, mw.session, "wamid.IN-1", "+6281300000001", "terima kasih", bz_wall_ms());
    agent_wait(fx, 1, 60, "SELECT unread_messages FROM contacts WHERE id = %lld",
               (long long)contact);
    char body[128], resp[256];
    snprintf(body, sizeof body, "{\"contact_id\":%lld}", (long long)contact);
    assert_int_equal(
        agent_post(fx, "/v1/chats/read", mw.api_key, body, resp, sizeof resp, NULL, 0), 202);
    for (int i = 0; i < 600 && count_kind("read") < 1; i++)
        itest_sleep_ms(100);
    size_t n;
    graph_record *r = read_records(&n);
    int reads = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(r[i].kind, "read") == 0) {
            reads++;
            assert_string_equal(r[i].ref, "wamid.IN-1");
        }
    free(r);
    assert_int_equal(reads, 1);
}

/* ---- error codes ------------------------------------------------------------------- */

static void error_codes(void **state)
{
    (void)state;
    /* the agents' contacts, and the two contacts of a campaign's audience
     * (camp_audience tag 64: +10640000001, +10640000002) */
    const char *faults[] = {"--fail-to", "6281300000047=131047", "--fail-to",
                            "6281300000026=131026", "--fail-to", "10640000001=131047",
                            "--fail-to", "10640000002=131026", NULL};
    meta_world_start("me", "{}", faults);
    int64_t closed = agent_contact(fx, mw.ws, "+6281300000047", "Window");
    int64_t gone = agent_contact(fx, mw.ws, "+6281300000026", "Nobody");
    char fields[256], closed_id[BZ_UUID_STR_SIZE], gone_id[BZ_UUID_STR_SIZE];
    snprintf(fields, sizeof fields, "\"contact_id\":%lld,\"body\":\"halo\"", (long long)closed);
    post_message(fields, "meta-closed", closed_id);
    snprintf(fields, sizeof fields, "\"contact_id\":%lld,\"body\":\"halo\"", (long long)gone);
    post_message(fields, "meta-gone", gone_id);
    agent_wait(fx, 1, 90,
               "SELECT count(*) FROM chats WHERE uuid = '%s' AND message_status = 'failed' AND "
               "metadata->>'error_code' = 'reengagement_required'",
               closed_id);
    agent_wait(fx, 1, 90,
               "SELECT count(*) FROM chats WHERE uuid = '%s' AND message_status = 'failed' AND "
               "metadata->>'error_code' = '131026'",
               gone_id);
    /* one request each: permanent failures are never retried */
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM meta_sends WHERE whatsapp_account_id = "
                                   "%lld AND state = 'failed' AND attempts = 1",
                               (long long)mw.account),
                     2);
    /* the same for a campaign's logs: failed with the reason, not retried */
    int64_t group = camp_audience(&fx->camp, mw.ws, 2, 64);
    int64_t campaign = camp_campaign(&fx->camp, mw.ws, group, mw.account, "Promo", "draft", NULL);
    camp_command(&fx->camp, mw.ws, campaign, "start", "itest");
    camp_wait_status(&fx->camp, campaign, "completed", 120);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM campaign_logs WHERE campaign_id = %lld "
                                   "AND status = 'failed' AND retry_count = 0 AND (error_message "
                                   "LIKE 'reengagement_required:%%' OR error_message LIKE "
                                   "'131026:%%')",
                               (long long)campaign),
                     2);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM meta_sends WHERE whatsapp_account_id = "
                                   "%lld AND state = 'failed' AND attempts = 1",
                               (long long)mw.account),
                     4);
    camp_assert_counters_exact(&fx->camp, campaign);
    assert_int_equal(count_kind("text"), 0);
}

/* ---- campaigns ----------------------------------------------------------------------- */

static int contacts_wanted(void)
{
    return itest_env_int("BLAZZ_META_CAMPAIGN_CONTACTS", 1000, 10, 100000);
}

static int64_t start_campaign(int n)
{
    int64_t group = camp_audience(&fx->camp, mw.ws, n, 62);
    int64_t campaign = camp_campaign(&fx->camp, mw.ws, group, mw.account,
                                     "Promo {{first_name}}", "draft", NULL);
    camp_command(&fx->camp, mw.ws, campaign, "start", "itest");
    return campaign;
}

/* Every log of the campaign reached the server exactly `copies_max` times
 * at most, at least once; returns how many refs came more than once. */
static long check_one_per_contact(int64_t campaign, int n)
{
    size_t count;
    graph_record *r = read_records(&count);
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

/* The most messages the server accepted in any window of 1,000 ms. */
static int busiest_second(void)
{
    size_t n;
    graph_record *r = read_records(&n);
    int best = 0;
    size_t lo = 0;
    for (size_t hi = 0; hi < n; hi++) {
        while (r[hi].ms - r[lo].ms >= 1000)
            lo++;
        if ((int)(hi - lo + 1) > best)
            best = (int)(hi - lo + 1);
    }
    free(r);
    return best;
}

static void campaign_with_faults(void **state)
{
    (void)state;
    const char *faults[] = {"--throttle-every", "20", "--drop-every", "100", NULL};
    char limits[96];
    snprintf(limits, sizeof limits, "{\"per_second\": %d, \"per_minute\": 0, \"per_hour\": 0}",
             RATE);
    meta_world_start("mc", limits, faults);
    int n = contacts_wanted();
    int64_t campaign = start_campaign(n);
    camp_wait_status(&fx->camp, campaign, "completed", 600);
    assert_int_equal(check_one_per_contact(campaign, n), 0);
    int busiest = busiest_second();
    print_message("%d messages, busiest second at the server: %d (rate %d/s)\n", n, busiest, RATE);
    assert_true(busiest <= RATE);
    /* faults were met and absorbed: throttled sends retried; a dropped
     * connection is either re-sent by libcurl itself (a reused keep-alive
     * connection that closed before any byte of an answer) or comes back
     * as ambiguous (held, checked for a status webhook, sent again) */
    int64_t retried = agent_int(fx, "SELECT count(*) FROM meta_sends WHERE whatsapp_account_id = "
                                    "%lld AND attempts > 1", (long long)mw.account);
    int64_t ambiguous = agent_int(fx, "SELECT coalesce(sum(ambiguous_resends), 0) FROM "
                                      "meta_sends WHERE whatsapp_account_id = %lld",
                                  (long long)mw.account);
    print_message("%lld sends needed more than one request, %lld answers were lost\n",
                  (long long)retried, (long long)ambiguous);
    assert_true(retried >= n / 40);
    agent_wait(fx, n, 120,
               "SELECT count(*) FROM campaign_logs WHERE campaign_id = %lld AND status = 'read'",
               (long long)campaign);
    camp_assert_counters_exact(&fx->camp, campaign);
}

static void token_expires_mid_campaign(void **state)
{
    (void)state;
    char limits[96];
    snprintf(limits, sizeof limits, "{\"per_second\": %d, \"per_minute\": 0, \"per_hour\": 0}",
             RATE);
    meta_world_start("mk", limits, NULL);
    int n = 300;
    int64_t campaign = start_campaign(n);
    for (int i = 0; i < 600 && count_kind("text") < 100; i++)
        itest_sleep_ms(50);
    write_tokens("token-two"); /* Meta now refuses token-one: 190 */
    agent_wait(fx, 1, 120,
               "SELECT count(*) FROM campaigns WHERE id = %lld AND status = 'paused' "
               "AND pause_reason LIKE 'token_invalid%%'",
               (long long)campaign);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM meta_credentials WHERE "
                                   "whatsapp_account_id = %lld AND status = 'invalid'",
                               (long long)mw.account),
                     1);
    long before = count_kind("text");
    assert_true(before < n);
    /* nothing failed, nothing dead-lettered: what was released waits */
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM campaign_logs WHERE campaign_id = %lld "
                                   "AND status = 'failed'",
                               (long long)campaign),
                     0);
    set_token("token-two");
    camp_wait_status(&fx->camp, campaign, "completed", 300);
    assert_int_equal(check_one_per_contact(campaign, n), 0);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM meta_sends WHERE whatsapp_account_id = "
                                   "%lld AND state = 'failed'",
                               (long long)mw.account),
                     0);
    camp_assert_counters_exact(&fx->camp, campaign);
}

static void preferred_provider_header_and_buttons(void **state)
{
    (void)state;
    meta_world_start("mp", "{}", NULL);
    agent_int(fx, "UPDATE whatsapp_accounts SET is_primary = false WHERE id = %lld RETURNING id",
              (long long)mw.account);
    int64_t webjs = camp_account(&fx->camp, mw.ws, "wj", 1, 100, "{}");
    int n = 5;
    int64_t group = camp_audience(&fx->camp, mw.ws, n, 63);
    int64_t campaign = camp_campaign(&fx->camp, mw.ws, group, 0, "Promo {{first_name}}", "draft",
                                     NULL);
    agent_int(fx, "UPDATE campaigns SET preferred_provider = 'meta', header_type = 'image', "
                  "header_media = 'https://example.com/p.jpg', buttons_data = "
                  "'[\"Ya\", {\"text\": \"Tidak\"}]' WHERE id = %lld RETURNING id",
              (long long)campaign);
    camp_command(&fx->camp, mw.ws, campaign, "start", "itest");
    camp_wait_status(&fx->camp, campaign, "completed", 120);
    assert_int_equal(count_kind("interactive"), n);
    assert_int_equal(check_one_per_contact(campaign, n), 0);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM campaign_logs WHERE campaign_id = %lld "
                                   "AND whatsapp_account_id = %lld",
                               (long long)campaign, (long long)webjs),
                     0);
}

static void sigkill_mid_campaign(void **state)
{
    (void)state;
    char limits[96];
    snprintf(limits, sizeof limits, "{\"per_second\": %d, \"per_minute\": 0, \"per_hour\": 0}",
             RATE);
    const char *faults[] = {"--slow-every", "3", "--slow-ms", "300", NULL};
    meta_world_start("ms", limits, faults);
    int n = contacts_wanted();
    int64_t campaign = start_campaign(n);
    for (int i = 0; i < 1200 && count_kind("text") < n / 3; i++)
        itest_sleep_ms(50);
    int64_t in_flight = agent_int(fx, "SELECT count(*) FROM meta_sends WHERE "
                                      "whatsapp_account_id = %lld AND state = 'in_flight'",
                                  (long long)mw.account);
    agent_kill(&mw.meta);
    int64_t at_kill = agent_int(fx, "SELECT count(*) FROM meta_sends WHERE whatsapp_account_id = "
                                    "%lld AND state = 'in_flight'",
                                (long long)mw.account);
    start_meta_sender();
    camp_wait_status(&fx->camp, campaign, "completed", 600);
    long duplicates = check_one_per_contact(campaign, n);
    int64_t ambiguous = agent_int(fx, "SELECT coalesce(sum(ambiguous_resends), 0) FROM meta_sends "
                                      "WHERE whatsapp_account_id = %lld",
                                  (long long)mw.account);
    print_message("SIGKILL: %lld sends in flight at the kill (%lld a moment before), %lld "
                  "recovered as ambiguous, %ld contacts got a second message\n",
                  (long long)at_kill, (long long)in_flight, (long long)ambiguous, duplicates);
    assert_true(duplicates <= at_kill);
    assert_true(ambiguous >= at_kill);
    camp_assert_counters_exact(&fx->camp, campaign);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(agent_messages_and_mark_read, agent_test_setup,
                                        meta_teardown),
        cmocka_unit_test_setup_teardown(error_codes, agent_test_setup, meta_teardown),
        cmocka_unit_test_setup_teardown(campaign_with_faults, agent_test_setup, meta_teardown),
        cmocka_unit_test_setup_teardown(token_expires_mid_campaign, agent_test_setup,
                                        meta_teardown),
        cmocka_unit_test_setup_teardown(preferred_provider_header_and_buttons, agent_test_setup,
                                        meta_teardown),
        cmocka_unit_test_setup_teardown(sigkill_mid_campaign, agent_test_setup, meta_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
