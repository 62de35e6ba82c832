/*
 * test_send_budget.c - one send budget per account and workspace, shared by
 * campaigns and agents' messages and durable across crashes (issue 16,
 * ARCHITECTURE.md §11), on the real stack with every service as a process
 * (support/agent_itest.h). What counts is the gateway simulator's own log:
 * when it received each SendMessage, by its own clock.
 *
 *  - agents_first_within_60_per_minute: a campaign saturates an account at
 *    60/min (its minute full); then 30 agent messages are posted for the
 *    same account. Agent messages reach the gateway first (no campaign
 *    message between the first and the last agent message: each slot the
 *    window frees goes to an agent while one waits), and over every
 *    60-second window the
 *    gateway receives at most 60 messages from that account - while the
 *    active campaign-sender is SIGKILLed mid-minute with a second instance
 *    standing by, and restarted;
 *  - hour_limit_survives_restart: an account allowed 5 per hour: agents'
 *    messages and a campaign share the 5; a SIGKILL and restart of the
 *    sender (which finds the hour in send_ledger) releases nothing more,
 *    and says why the campaign waits (`blazzctl campaign status`: held,
 *    account_rate; blazz_campaign_sender_campaigns_waiting);
 *    one more agent message waits (blazz_campaign_sender_agent_waiting)
 *    and, past agent.max_wait_s, fails with rate_limited on its row;
 *  - workspace_limit_spans_accounts: a workspace allowed 4 per minute, two
 *    unlimited accounts: 3 agent messages on one and a campaign on the other
 *    release 4 in all, the agents' first.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent_itest.h"
#include "core/uuid.h"
#include "itest.h"

#define fx agent_test_fx

static int is_agent(const char *key, char (*ids)[BZ_UUID_STR_SIZE], int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(key, ids[i]) == 0)
            return 1;
    return 0;
}

/* The most messages the gateway received in any window of window_ms. */
static int busiest_window(const agent_send *s, size_t n, int64_t window_ms)
{
    int most = 0;
    for (size_t i = 0; i < n; i++) {
        int in = 0;
        for (size_t j = i; j < n && s[j].ms < s[i].ms + window_ms; j++)
            in++;
        if (in > most)
            most = in;
    }
    return most;
}

static int sends_total(const char *session)
{
    size_t n;
    free(agent_sends_of_session(fx, session, &n));
    return (int)n;
}

static void wait_sends(const char *session, int want, int timeout_s)
{
    for (int i = 0; i < timeout_s * 10 && sends_total(session) < want; i++)
        itest_sleep_ms(100);
    if (sends_total(session) < want)
        fail_msg("the gateway received %d sends from %s in %d s, expected %d (logs in %s)",
                 sends_total(session), session, timeout_s, want, fx->camp.dir);
}

/* Assert agent messages came first: no campaign send between the first
 * and the last agent send, and every agent message once. */
static void assert_agents_first(const agent_send *s, size_t n, char (*ids)[BZ_UUID_STR_SIZE],
                                int nagents)
{
    size_t first = n, last = 0;
    int agents = 0;
    for (size_t i = 0; i < n; i++)
        if (is_agent(s[i].key, ids, nagents)) {
            agents++;
            if (first == n)
                first = i;
            last = i;
        }
    assert_int_equal(agents, nagents);
    for (size_t i = first; i <= last; i++)
        if (!is_agent(s[i].key, ids, nagents))
            fail_msg("campaign send %s at %lld arrived between agent messages (%zu..%zu)",
                     s[i].key, (long long)s[i].ms, first, last);
}

static void start_pipeline(const char *const *sender_env)
{
    agent_start_chat_sync(fx);
    camp_start_sender(&fx->camp, 0, sender_env);
    agent_start_sim(fx);
    agent_start_ingest(fx, NULL);
}

/* ---- 60 per minute, agents first, across a kill and with two instances ---------------- */

#define SATURATE_AGENTS 30

static void agents_first_within_60_per_minute(void **state)
{
    (void)state;
    agent_fx_init(fx, "budget");
    int64_t ws = camp_workspace(&fx->camp);
    int64_t acct = camp_account(&fx->camp, ws, "budget-a", 1, 100,
                                "{\"per_minute\": 60, \"per_hour\": 0}");
    char session[128];
    snprintf(session, sizeof session, "budget-a%s", fx->wh.prefix);
    int64_t group = camp_audience(&fx->camp, ws, 150, 301);
    int64_t campaign = camp_campaign(&fx->camp, ws, group, acct, "Promo {{first_name}}", "draft",
                                     NULL);
    int64_t contacts[3];
    for (int i = 0; i < 3; i++) {
        char phone[32];
        snprintf(phone, sizeof phone, "+628140000000%d", i);
        contacts[i] = agent_contact(fx, ws, phone, "Agent Contact");
    }
    char *key = agent_api_key(fx, ws);
    start_pipeline(NULL);

    camp_command(&fx->camp, ws, campaign, "start", "itest");
    wait_sends(session, 15, 120);
    camp_start_sender(&fx->camp, 1, NULL); /* a second instance, standing by */
    /* the campaign alone fills the account's minute: saturated */
    wait_sends(session, 62, 180);
    static char ids[SATURATE_AGENTS][BZ_UUID_STR_SIZE];
    agent_post_messages(fx, key, "sat", SATURATE_AGENTS, contacts, 3, acct, ids);

    /* while the agents' messages take the freed slots, the active sender
     * dies mid-minute; the standby takes over, the dead one comes back as
     * a standby */
    wait_sends(session, 72, 120);
    camp_kill_sender(&fx->camp, 0);
    wait_sends(session, 82, 120);
    camp_start_sender(&fx->camp, 0, NULL);
    agent_wait(fx, SATURATE_AGENTS, 180,
               "SELECT count(*) FROM chats WHERE workspace_id = %lld AND user_id IS NULL AND "
               "metadata->>'source' = 'crm' AND message_status IN ('sent', 'delivered', 'read')",
               (long long)ws);
    /* the campaign goes on: windows spanning the kill and the agents */
    wait_sends(session, 62 + SATURATE_AGENTS + 30, 180);

    size_t n;
    agent_send *s = agent_sends_of_session(fx, session, &n);
    assert_agents_first(s, n, ids, SATURATE_AGENTS);
    int busiest = busiest_window(s, n, 60000);
    printf("gateway: %zu sends from %s over %.1f s, busiest 60 s window %d\n", n, session,
           (double)(s[n - 1].ms - s[0].ms) / 1000.0, busiest);
    assert_true(busiest <= 60);
    assert_true(busiest >= 55); /* the campaign did saturate the account */
    free(s);
    free(key);
}

/* ---- the hour limit ------------------------------------------------------------------- */

static int64_t metric(int port, const char *line_start)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "curl -s http://127.0.0.1:%d/metrics", port);
    /* NOLINTNEXTLINE(cert-env33-c): a fixed command of the test's own, nothing from input */
    FILE *p = popen(cmd, "r");
    char line[512];
    int64_t v = -1;
    while (p && fgets(line, sizeof line, p))
        if (strncmp(line, line_start, strlen(line_start)) == 0)
            v = (int64_t)strtod(strrchr(line, ' ') + 1, NULL);
    if (p)
        pclose(p);
    return v;
}

static void hour_limit_survives_restart(void **state)
{
    (void)state;
    agent_fx_init(fx, "hour");
    int64_t ws = camp_workspace(&fx->camp);
    int64_t acct = camp_account(&fx->camp, ws, "hour-a", 1, 100,
                                "{\"per_minute\": 0, \"per_hour\": 5}");
    char session[128], admin[64];
    snprintf(session, sizeof session, "hour-a%s", fx->wh.prefix);
    int port = itest_free_port();
    snprintf(admin, sizeof admin, "BLAZZ_HTTP_LISTEN=127.0.0.1:%d", port);
    int64_t group = camp_audience(&fx->camp, ws, 6, 302);
    int64_t campaign = camp_campaign(&fx->camp, ws, group, acct, "Halo {{first_name}}", "draft",
                                     NULL);
    int64_t contact = agent_contact(fx, ws, "+6281500000001", "Gita");
    char *key = agent_api_key(fx, ws);
    const char *sender_env[] = {admin, "BLAZZ_AGENT_MAX_WAIT_S=4", NULL};
    start_pipeline(sender_env);

    /* 2 agents' messages, the campaign's first (its pacing spreads 5/h over
     * the hour), 2 more agents': the hour's 5 */
    static char ids[5][BZ_UUID_STR_SIZE];
    agent_post_messages(fx, key, "hour", 2, &contact, 1, acct, ids);
    wait_sends(session, 2, 60);
    camp_command(&fx->camp, ws, campaign, "start", "itest");
    wait_sends(session, 3, 60);
    agent_post_messages(fx, key, "hour-more", 2, &contact, 1, acct, &ids[2]);
    wait_sends(session, 5, 60);
    /* the budget is spent: a restarted sender must find it so in
     * send_ledger, and let no campaign message out */
    camp_kill_sender(&fx->camp, 0);
    camp_start_sender(&fx->camp, 0, sender_env);
    agent_wait(fx, 1, 60, "SELECT count(*) FROM campaigns WHERE id = %lld AND status = 'running'",
               (long long)campaign);
    /* why not now: the account's limits, in blazzctl and the gauge */
    assert_true(camp_wait_held(&fx->camp, campaign, "account_rate", NULL, NULL, 30));
    const char *waiting = "blazz_campaign_sender_campaigns_waiting{reason=\"account_rate\"}";
    for (int i = 0; i < 300 && metric(port, waiting) != 1; i++)
        itest_sleep_ms(100);
    assert_int_equal(metric(port, waiting), 1);
    agent_post_messages(fx, key, "hour-late", 1, &contact, 1, acct, &ids[4]);
    for (int i = 0; i < 300 && metric(port, "blazz_campaign_sender_agent_waiting ") != 1; i++)
        itest_sleep_ms(100);
    assert_int_equal(metric(port, "blazz_campaign_sender_agent_waiting "), 1);
    agent_wait(fx, 1, 60, "SELECT count(*) FROM chats WHERE uuid = '%s' AND message_status = "
                          "'failed' AND metadata->>'error_code' = 'rate_limited'", ids[4]);
    assert_int_equal(metric(port, "blazz_campaign_sender_agent_failed_total{reason=\"rate_limited\"}"),
                     1);
    assert_int_equal(sends_total(session), 5);
    size_t n;
    agent_send *s = agent_sends_of_session(fx, session, &n);
    assert_int_equal(n, 5);
    assert_true(is_agent(s[0].key, ids, 2) && is_agent(s[1].key, ids, 2));
    assert_false(is_agent(s[2].key, ids, 4));
    assert_true(is_agent(s[3].key, ids, 4) && is_agent(s[4].key, ids, 4));
    free(s);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM send_ledger WHERE whatsapp_account_id = "
                                    "%lld", (long long)acct), 5);
    free(key);
}

/* ---- the workspace limit ---------------------------------------------------------------- */

static void workspace_limit_spans_accounts(void **state)
{
    (void)state;
    agent_fx_init(fx, "wslim");
    int64_t ws = agent_int(fx, "INSERT INTO workspaces (name, metadata) VALUES ('%s', "
                               "'{\"rate_limits\": {\"per_second\": 0, \"per_minute\": 4}}') "
                               "RETURNING id", fx->wh.prefix);
    const char *unlimited = "{\"per_minute\": 0, \"per_hour\": 0}";
    int64_t a = camp_account(&fx->camp, ws, "wslim-a", 1, 100, unlimited);
    int64_t b = camp_account(&fx->camp, ws, "wslim-b", 0, 100, unlimited);
    char sa[128], sb[128];
    snprintf(sa, sizeof sa, "wslim-a%s", fx->wh.prefix);
    snprintf(sb, sizeof sb, "wslim-b%s", fx->wh.prefix);
    int64_t group = camp_audience(&fx->camp, ws, 10, 303);
    int64_t campaign = camp_campaign(&fx->camp, ws, group, a, "Info {{first_name}}", "draft", NULL);
    int64_t contact = agent_contact(fx, ws, "+6281600000001", "Hadi");
    char *key = agent_api_key(fx, ws);
    char admin[64];
    int port = itest_free_port();
    snprintf(admin, sizeof admin, "BLAZZ_HTTP_LISTEN=127.0.0.1:%d", port);
    /* pacing would allow the campaign all 4 at once: only the shared budget holds it */
    const char *sender_env[] = {admin, "BLAZZ_RATE_SMOOTHING_MS=60000", NULL};
    start_pipeline(sender_env);

    static char ids[4][BZ_UUID_STR_SIZE];
    agent_post_messages(fx, key, "wslim", 3, &contact, 1, b, ids);
    wait_sends(sb, 3, 60);
    camp_command(&fx->camp, ws, campaign, "start", "itest");
    wait_sends(sa, 1, 60);
    agent_wait(fx, 9, 60, "SELECT count(*) FROM campaign_logs WHERE campaign_id = %lld AND "
                          "status = 'pending'", (long long)campaign);
    /* a fourth agent message finds the workspace's minute spent: it waits */
    agent_post_messages(fx, key, "wslim-late", 1, &contact, 1, b, &ids[3]);
    for (int i = 0; i < 300 && metric(port, "blazz_campaign_sender_agent_waiting ") != 1; i++)
        itest_sleep_ms(100);
    assert_int_equal(metric(port, "blazz_campaign_sender_agent_waiting "), 1);
    assert_int_equal(sends_total(sa) + sends_total(sb), 4);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM send_ledger WHERE workspace_id = %lld",
                               (long long)ws), 4);
    free(key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(hour_limit_survives_restart, agent_test_setup, agent_test_teardown),
        cmocka_unit_test_setup_teardown(workspace_limit_spans_accounts, agent_test_setup, agent_test_teardown),
        cmocka_unit_test_setup_teardown(agents_first_within_60_per_minute, agent_test_setup, agent_test_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
