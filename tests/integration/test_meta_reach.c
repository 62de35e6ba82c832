/*
 * test_meta_reach.c - Meta's messaging limit (issue 35; ARCHITECTURE.md
 * §12.10) over the whole real chain: an account whose business portfolio
 * is at TIER_250 (as Meta's phone_number_quality_update reported it) runs a
 * 600-contact template campaign (a template, since only a template reaches
 * a user outside their service window: a free-form campaign skips those,
 * §12.7); campaign-sender's window is shortened to
 * WINDOW_S seconds by configuration (budget.reach_window_s), not by a test
 * clock, so three windows pass in a minute.
 *  - tier_limits_unique_users_per_window: no window of WINDOW_S seconds
 *    holds more than 250 business-initiated recipients released, the first
 *    one holds 250 plus the 50 contacts inside their service window (who do
 *    not count), the rest go in the following windows, across a SIGKILL of
 *    campaign-sender while the limit holds; `blazzctl campaign status` says
 *    the limit holds the campaign, and no longer once it completed; the
 *    campaign completes with one message per contact and nothing failed;
 *    while the limit holds, an agent's template to a user who never wrote
 *    is released and counted in the portfolio's reach, an agent's reply
 *    to a user inside their window is not.
 * Every wait polls PostgreSQL with a deadline; the figures come from
 * campaign_logs.queued_at (the release transaction's time, the one
 * meta_reach keeps).
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
#include "meta_world.h"

#define fx agent_test_fx
#define mw meta_test_world

#define CONTACTS 600
#define TIER 250
#define WROTE 50
#define WINDOW_S 20
#define WINDOW_ENV "BLAZZ_BUDGET_REACH_WINDOW_S=20"

/* The most business-initiated recipients released within any WINDOW_S
 * seconds ending at a release. */
static int64_t busiest_window(int64_t campaign)
{
    return agent_int(fx,
                     "WITH r AS (SELECT l.queued_at AS at FROM campaign_logs l WHERE "
                     "l.campaign_id = %lld AND l.queued_at IS NOT NULL AND NOT EXISTS (SELECT 1 "
                     "FROM chats m WHERE m.contact_id = l.contact_id AND m.type = 'inbound')) "
                     "SELECT coalesce(max((SELECT count(*) FROM r r2 WHERE r2.at > r1.at - "
                     "make_interval(secs => %d) AND r2.at <= r1.at)), 0) FROM r r1",
                     (long long)campaign, WINDOW_S);
}

/* `blazzctl campaign status --json` says the messaging limit holds the
 * campaign's next messages (waiting for campaign-sender to note it). */
static int held_shown(int64_t campaign)
{
    return camp_wait_held(&fx->camp, campaign, "meta_messaging_limit", "tier", "TIER_250", 30);
}

static void tier_limits_unique_users_per_window(void **state)
{
    (void)state;
    meta_world_start("reach", META_WORLD_PACED, NULL);
    const char *sender_env[] = {WINDOW_ENV, NULL};
    /* the world's sender, replaced by one with the short window */
    camp_kill_sender(&fx->camp, 0);
    camp_start_sender(&fx->camp, 0, sender_env);
    agent_int(fx, "UPDATE whatsapp_accounts SET meta_business_id = '770011223344' WHERE id = %lld "
                  "RETURNING id", (long long)mw.account);
    char *phone = itest_pg_textf(fx->camp.pg, "SELECT regexp_replace(phone_number, '[^0-9]', "
                                              "'', 'g') FROM whatsapp_accounts WHERE id = %lld",
                                 (long long)mw.account);
    char body[1024];
    snprintf(body, sizeof body,
             "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"%s\",\"time\":%lld,"
             "\"changes\":[{\"value\":{\"display_phone_number\":\"%s\",\"event\":\"DOWNGRADE\","
             "\"current_limit\":\"TIER_250\",\"max_daily_conversations_per_business\":"
             "\"TIER_250\"},\"field\":\"phone_number_quality_update\"}]}]}",
             mw.waba, 1751247000LL, phone);
    free(phone);
    meta_world_post_webhook(body);
    agent_wait(fx, 1, 60, "SELECT count(*) FROM whatsapp_accounts WHERE id = %lld AND "
                          "meta_business_limit = 'TIER_250'",
               (long long)mw.account);

    int64_t group = camp_audience(&fx->camp, mw.ws, CONTACTS, 91);
    /* the audience's first WROTE contacts wrote an hour ago: inside their
     * service window, not business-initiated */
    for (int i = 0; i < WROTE; i++) {
        int64_t contact = agent_int(fx, "SELECT contact_id FROM contact_group_members WHERE "
                                        "contact_group_id = %lld ORDER BY contact_id "
                                        "OFFSET %d LIMIT 1",
                                    (long long)group, i);
        meta_world_contact_wrote(contact, 3600 * 1000LL);
    }
    int64_t tpl = meta_world_approved_template("reach_promo", "MARKETING", "Promo {{first_name}}");
    int64_t campaign = meta_world_template_campaign(group, tpl, NULL);
    camp_command(&fx->camp, mw.ws, campaign, "start", "itest");

    /* the first window: the tier's 250 and the 50 who wrote; then the
     * limit holds the rest, and campaign-sender dies while it does */
    agent_wait(fx, TIER + WROTE, 90, "SELECT count(*) FROM campaign_logs WHERE campaign_id = %lld "
                                     "AND queued_at IS NOT NULL",
               (long long)campaign);
    assert_true(held_shown(campaign));
    /* while the limit holds, an agent's template to a user who never wrote
     * goes (a person's message is never held) and counts as the portfolio
     * reaching them; a reply to a user inside their window counts nothing */
    int64_t stranger = agent_contact(fx, mw.ws, "+6281300000091", "Tono");
    int64_t wrote = agent_int(fx, "SELECT contact_id FROM contact_group_members WHERE "
                                  "contact_group_id = %lld ORDER BY contact_id LIMIT 1",
                              (long long)group);
    char fields[512], id[BZ_UUID_STR_SIZE], reply[BZ_UUID_STR_SIZE];
    snprintf(fields, sizeof fields,
             "\"contact_id\":%lld,\"whatsapp_account_id\":%lld,\"message_type\":\"template\","
             "\"template\":{\"name\":\"reach_promo\",\"language\":\"id\",\"body_params\":"
             "[\"Tono\"]}",
             (long long)stranger, (long long)mw.account);
    meta_world_post_message(fields, "reach-agent-template", id);
    meta_world_post_text(wrote, "Terima kasih", "reach-agent-reply", reply);
    agent_wait(fx, 2, 90, "SELECT count(*) FROM send_ledger WHERE reference IN ('%s', '%s')", id,
               reply);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM meta_reach WHERE business_key = "
                                   "'770011223344' AND contact_id = %lld",
                               (long long)stranger),
                     1);
    camp_kill_sender(&fx->camp, 0);
    camp_start_sender(&fx->camp, 0, sender_env);
    meta_world_wait_completed(campaign, 180);
    assert_false(held_shown(campaign));

    assert_int_equal(busiest_window(campaign), TIER);
    assert_int_equal(agent_int(fx,
                               "SELECT count(*) FROM campaign_logs l WHERE l.campaign_id = %lld "
                               "AND l.queued_at < (SELECT min(queued_at) FROM campaign_logs WHERE "
                               "campaign_id = %lld) + make_interval(secs => %d)",
                               (long long)campaign, (long long)campaign, WINDOW_S),
                     TIER + WROTE);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM meta_reach WHERE business_key = "
                                   "'770011223344'"),
                     CONTACTS - WROTE + 1);
    assert_int_equal(agent_int(fx, "SELECT messages_failed FROM campaigns WHERE id = %lld",
                               (long long)campaign),
                     0);
    assert_int_equal(meta_world_check_one_per_contact(campaign, CONTACTS), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(tier_limits_unique_users_per_window, agent_test_setup,
                                        meta_world_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
