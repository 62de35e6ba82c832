/*
 * test_pair_rate.c - Meta's pair rate, one account to one recipient, as a
 * rule of the send budget (issue 35, ARCHITECTURE.md §11.3), on the real
 * stack with every service as a process (support/agent_itest.h). What
 * counts is what was recorded: send_ledger's release times (the budget's
 * clock) and the gateway simulator's own log (its clock, its order); no
 * assertion is on how long anything took.
 *
 *  - campaigns_to_one_audience_spaced: two campaigns started together
 *    through one account (no other limit) to the same 20 contacts, the
 *    interval shortened to INTERVAL_S by configuration (budget.pair_interval_s),
 *    after one agent's message to someone else has warmed the pipeline, the
 *    sender SIGKILLed and restarted once the first campaign's messages are
 *    out: every contact gets each campaign's message exactly once, and no two
 *    messages to one contact are released closer than the interval (nor
 *    reach the gateway closer than the interval less the budget's 2 s
 *    guard for release-to-gateway jitter); the second campaign's messages
 *    were held with reason pair_rate (blazz_campaign_sender_held_total);
 *  - agent_replies_within_the_burst: 10 agents' messages to one contact,
 *    posted one after the other once a message to someone else has warmed
 *    the pipeline, at the default 6 s and burst 45: all reach
 *    the gateway in the order posted, none waited for the pair rate
 *    (..._agent_held_total{reason="pair_rate"} absent; the ledger's spread
 *    is printed, not asserted: how long anything took is no test);
 *  - agent_replies_beyond_the_burst: the same with budget.pair_burst 3 and
 *    a 2 s interval: in order, and beyond the burst spaced as the bucket
 *    says: releases i < j are at least (j - i + 1 - burst) intervals apart.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent_itest.h"
#include "itest.h"
#include "itest_http.h"

#define fx agent_test_fx

/* The send budget's allowance for release-to-gateway jitter
 * (budget.window_guard_ms, ARCHITECTURE.md §11.3). */
#define GUARD_MS 2000
#define UNLIMITED "{\"per_minute\": 0, \"per_hour\": 0}"

typedef struct pair_stack {
    int64_t ws, account;
    char session[128];
    char admin[64], interval[64], burst[64];
    const char *sender_env[4];
    int port;
} pair_stack;

/* A workspace, an account without per-minute or per-hour limits, and the
 * sender's environment: its /metrics port, the interval and the burst. */
static void pair_stack_init(pair_stack *p, const char *name, int interval_s, int burst)
{
    agent_fx_init(fx, name);
    p->ws = camp_workspace(&fx->camp);
    char session[64];
    snprintf(session, sizeof session, "%s-a", name);
    p->account = camp_account(&fx->camp, p->ws, session, 1, 100, UNLIMITED);
    snprintf(p->session, sizeof p->session, "%s%s", session, fx->wh.prefix);
    p->port = itest_free_port();
    snprintf(p->admin, sizeof p->admin, "BLAZZ_HTTP_LISTEN=127.0.0.1:%d", p->port);
    snprintf(p->interval, sizeof p->interval, "BLAZZ_BUDGET_PAIR_INTERVAL_S=%d", interval_s);
    snprintf(p->burst, sizeof p->burst, "BLAZZ_BUDGET_PAIR_BURST=%d", burst);
    p->sender_env[0] = p->admin;
    p->sender_env[1] = p->interval;
    p->sender_env[2] = p->burst;
    p->sender_env[3] = NULL;
}

static void pair_stack_start(pair_stack *p)
{
    agent_start_chat_sync(fx);
    camp_start_sender(&fx->camp, 0, p->sender_env);
    agent_start_sim(fx);
    agent_start_ingest(fx, NULL);
}

static void wait_sends(const pair_stack *p, size_t want, int timeout_s)
{
    size_t n = 0;
    for (int i = 0; i < timeout_s * 10; i++) {
        free(agent_sends_of_session(fx, p->session, &n));
        if (n >= want)
            return;
        itest_sleep_ms(100);
    }
    fail_msg("the gateway received %zu sends from %s in %d s, expected %zu (logs in %s)", n,
             p->session, timeout_s, want, fx->camp.dir);
}

/* One agent's message to someone else, waited for at the gateway, so that
 * what the test sends next does not wait for the producers' first
 * connection to Kafka (seconds, which would blur the gateway's view of its
 * spacing: a cold first reply reached it 2 s late beside warm ones). Its
 * id goes to id[0]. */
static void warm_pipeline(const pair_stack *p, const char *key, char (*id)[BZ_UUID_STR_SIZE])
{
    int64_t other = agent_contact(fx, p->ws, "+6281799999999", "Warm");
    agent_post_messages(fx, key, "warm", 1, &other, 1, p->account, id);
    wait_sends(p, 1, 120);
}

/* ---- two campaigns, one audience ---------------------------------------------------------- */

#define CONTACTS 20
#define INTERVAL_S 8

static void campaigns_to_one_audience_spaced(void **state)
{
    (void)state;
    pair_stack p;
    pair_stack_init(&p, "pairc", INTERVAL_S, 45);
    int64_t group = camp_audience(&fx->camp, p.ws, CONTACTS, 351);
    int64_t c1 = camp_campaign(&fx->camp, p.ws, group, p.account, "Satu {{first_name}}", "draft",
                               NULL);
    int64_t c2 = camp_campaign(&fx->camp, p.ws, group, p.account, "Dua {{first_name}}", "draft",
                               NULL);
    char *key = agent_api_key(fx, p.ws);
    pair_stack_start(&p);
    char warm[1][BZ_UUID_STR_SIZE];
    warm_pipeline(&p, key, warm);
    free(key);
    camp_command(&fx->camp, p.ws, c1, "start", "itest");
    camp_command(&fx->camp, p.ws, c2, "start", "itest");
    /* the first campaign's messages are out, the second's held: a SIGKILL
     * and restart must not forget whom the account just sent to (the new
     * sender loads the buckets from send_ledger) */
    wait_sends(&p, CONTACTS + 1, 120);
    camp_kill_sender(&fx->camp, 0);
    camp_start_sender(&fx->camp, 0, p.sender_env);
    wait_sends(&p, 2 * CONTACTS + 1, 120);
    camp_wait_status(&fx->camp, c1, "completed", 120);
    camp_wait_status(&fx->camp, c2, "completed", 120);

    /* the gateway's view: each contact once per campaign, the two apart */
    size_t n;
    agent_send *s = agent_sends_of_session(fx, p.session, &n);
    assert_int_equal(n, 2 * CONTACTS + 1);
    assert_string_equal(s[0].key, warm[0]);
    int64_t first_ms[CONTACTS + 1] = {0}, first_campaign[CONTACTS + 1] = {0};
    int64_t lowest = agent_int(fx, "SELECT min(contact_id) FROM contact_group_members WHERE "
                                   "contact_group_id = %lld", (long long)group);
    int64_t closest = INT64_MAX;
    for (size_t i = 1; i < n; i++) {
        int64_t contact = agent_int(fx, "SELECT contact_id FROM campaign_logs WHERE uuid = '%s'",
                                    s[i].key);
        int64_t campaign = agent_int(fx, "SELECT campaign_id FROM campaign_logs WHERE uuid = '%s'",
                                     s[i].key);
        size_t k = (size_t)(contact - lowest + 1);
        assert_true(k >= 1 && k <= CONTACTS);
        if (!first_campaign[k]) {
            first_campaign[k] = campaign;
            first_ms[k] = s[i].ms;
            continue;
        }
        assert_int_not_equal(first_campaign[k], campaign); /* once per campaign */
        first_campaign[k] = -1;                            /* a third would fail above */
        if (s[i].ms - first_ms[k] < closest)
            closest = s[i].ms - first_ms[k];
    }
    free(s);
    printf("gateway: the closest two messages to one contact were %lld ms apart\n",
           (long long)closest);
    assert_true(closest >= INTERVAL_S * 1000 - GUARD_MS);

    /* the budget's record: exactly the interval or more, per recipient */
    assert_int_equal(agent_int(fx, "SELECT count(DISTINCT recipient) FROM send_ledger WHERE "
                                   "whatsapp_account_id = %lld AND kind = 'campaign'",
                               (long long)p.account),
                     CONTACTS);
    int64_t gap = agent_int(fx, "SELECT min(g) FROM (SELECT (extract(epoch FROM released_at - "
                                "lag(released_at) OVER (PARTITION BY recipient ORDER BY "
                                "released_at)) * 1000)::bigint AS g FROM send_ledger WHERE "
                                "whatsapp_account_id = %lld) t", (long long)p.account);
    printf("send_ledger: the closest two releases to one contact were %lld ms apart\n",
           (long long)gap);
    assert_true(gap >= INTERVAL_S * 1000);
    assert_true(itest_metric(p.port, "blazz_campaign_sender_held_total{reason=\"pair_rate\"}") >=
                1);
    camp_assert_counters_exact(&fx->camp, c1);
    camp_assert_counters_exact(&fx->camp, c2);
}

/* ---- agents' replies ---------------------------------------------------------------------- */

#define REPLIES 10
#define REPLY_TO "+6281700000001"
#define AGENT_HELD_PAIR_RATE "blazz_campaign_sender_agent_held_total{reason=\"pair_rate\"}"

/* After a warm-up message, post REPLIES messages to one contact; wait
 * until the gateway has them all; assert they arrived in the order posted.
 * Their ids go to ids; their arrivals at the gateway, in order, to at_ms. */
static void replies_in_order(pair_stack *p, char (*ids)[BZ_UUID_STR_SIZE], int64_t *at_ms)
{
    int64_t contact = agent_contact(fx, p->ws, REPLY_TO, "Intan");
    char *key = agent_api_key(fx, p->ws);
    pair_stack_start(p);
    char warm[1][BZ_UUID_STR_SIZE];
    warm_pipeline(p, key, warm);
    agent_post_messages(fx, key, "reply", REPLIES, &contact, 1, p->account, ids);
    free(key);
    wait_sends(p, REPLIES + 1, 120);
    size_t n;
    agent_send *s = agent_sends_of_session(fx, p->session, &n);
    int in_order = n == REPLIES + 1 && strcmp(s[0].key, warm[0]) == 0;
    for (size_t i = 0; in_order && i < REPLIES; i++) {
        in_order = strcmp(s[i + 1].key, ids[i]) == 0;
        at_ms[i] = s[i + 1].ms;
    }
    free(s);
    assert_true(in_order);
}

/* send_ledger names the contact (not its phone: decision 0010) as the
 * recipient of every reply. */
static void assert_replies_recorded(const pair_stack *p)
{
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM send_ledger WHERE recipient = "
                                   "(SELECT 'contact:' || id FROM contacts WHERE phone = "
                                   "'" REPLY_TO "' AND workspace_id = %lld) AND "
                                   "whatsapp_account_id = %lld",
                               (long long)p->ws, (long long)p->account),
                     REPLIES);
}

static void agent_replies_within_the_burst(void **state)
{
    (void)state;
    pair_stack p;
    pair_stack_init(&p, "pairb", 6, 45);
    static char ids[REPLIES][BZ_UUID_STR_SIZE];
    int64_t arrived[REPLIES];
    replies_in_order(&p, ids, arrived);
    assert_true(itest_metric(p.port, AGENT_HELD_PAIR_RATE) <= 0);
    int64_t spread = agent_released_ms(fx, ids[REPLIES - 1]) - agent_released_ms(fx, ids[0]);
    printf("send_ledger: %d replies released over %lld ms\n", REPLIES, (long long)spread);
    assert_replies_recorded(&p);
}

#define BURST 3
#define BURST_INTERVAL_S 2

static void agent_replies_beyond_the_burst(void **state)
{
    (void)state;
    pair_stack p;
    pair_stack_init(&p, "pairx", BURST_INTERVAL_S, BURST);
    static char ids[REPLIES][BZ_UUID_STR_SIZE];
    int64_t arrived[REPLIES], at[REPLIES];
    replies_in_order(&p, ids, arrived);
    for (int i = 0; i < REPLIES; i++)
        at[i] = agent_released_ms(fx, ids[i]);
    /* a bucket of BURST tokens refilling one per interval: of any j - i + 1
     * consecutive releases, only BURST may share a moment */
    for (int i = 0; i < REPLIES; i++)
        for (int j = i + 1; j < REPLIES; j++) {
            int64_t least = (int64_t)(j - i + 1 - BURST) * BURST_INTERVAL_S * 1000;
            if (at[j] - at[i] < least)
                fail_msg("releases %d and %d %lld ms apart, the bucket allows %lld", i, j,
                         (long long)(at[j] - at[i]), (long long)least);
            if (arrived[j] - arrived[i] < least - GUARD_MS)
                fail_msg("the gateway received %d and %d %lld ms apart", i, j,
                         (long long)(arrived[j] - arrived[i]));
        }
    printf("send_ledger: %d replies released over %lld ms\n", REPLIES,
           (long long)(at[REPLIES - 1] - at[0]));
    assert_true(itest_metric(p.port, AGENT_HELD_PAIR_RATE) >= 1);
    assert_replies_recorded(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(campaigns_to_one_audience_spaced, agent_test_setup,
                                        agent_test_teardown),
        cmocka_unit_test_setup_teardown(agent_replies_within_the_burst, agent_test_setup,
                                        agent_test_teardown),
        cmocka_unit_test_setup_teardown(agent_replies_beyond_the_burst, agent_test_setup,
                                        agent_test_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
