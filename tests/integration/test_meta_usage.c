/*
 * test_meta_usage.c - delivered messages counted per account, day and
 * Meta's pricing category (issue 35; ARCHITECTURE.md §12.9), over the whole
 * real chain: campaign-sender, meta-sender, graph_test_server (whose status
 * webhooks carry Meta's pricing object), ingest, chat-sync, message_usage.
 *  - delivered_messages_counted_once_by_category: a campaign's six
 *    messages are counted once each under the category Meta priced them
 *    at; Meta's delivered and read statuses of one of them posted again,
 *    with another category, to a restarted ingest (its duplicate window
 *    forgotten), change nothing; the CRM's role reads the rows of its own
 *    workspace only.
 * Every wait polls PostgreSQL with a deadline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "agent_itest.h"
#include "itest.h"
#include "meta_world.h"

#define fx agent_test_fx
#define mw meta_test_world

#define CONTACTS 6

static int64_t usage(const char *category)
{
    return agent_int(fx, "SELECT coalesce(sum(delivered), 0) FROM message_usage WHERE "
                         "whatsapp_account_id = %lld AND category = '%s' AND day = "
                         "(now() AT TIME ZONE 'UTC')::date",
                     (long long)mw.account, category);
}

/* Meta's status webhook of wamid, sent to `to`, with status and category. */
static void post_status_again(const char *wamid, const char *to, const char *status,
                              const char *category)
{
    char body[1024];
    snprintf(body, sizeof body,
             "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"%s\",\"changes\":"
             "[{\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{"
             "\"display_phone_number\":\"15550000000\",\"phone_number_id\":\"%s\"},"
             "\"statuses\":[{\"id\":\"%s\",\"status\":\"%s\",\"timestamp\":\"%lld\","
             "\"recipient_id\":\"%s\",\"pricing\":{\"billable\":true,\"pricing_model\":\"PMP\","
             "\"category\":\"%s\",\"type\":\"regular\"}}]},\"field\":\"messages\"}]}]}",
             mw.waba, mw.session, wamid, status, (long long)time(NULL), to, category);
    meta_world_post_webhook(body);
}

/* message_usage rows blazz_crm sees with its session's workspace ws. */
static int64_t usage_rows_seen_by_the_crm(int64_t ws)
{
    char set[128];
    snprintf(set, sizeof set, "SELECT set_config('blazz.workspace_id', '%lld', false)",
             (long long)ws);
    itest_pg_exec(fx->camp.pg, set);
    itest_pg_exec(fx->camp.pg, "SET ROLE blazz_crm");
    char *n = itest_pg_textf(fx->camp.pg, "SELECT count(*) FROM message_usage");
    itest_pg_exec(fx->camp.pg, "RESET ROLE");
    itest_pg_exec(fx->camp.pg, "RESET blazz.workspace_id");
    int64_t rows = strtoll(n, NULL, 10);
    free(n);
    return rows;
}

static void delivered_messages_counted_once_by_category(void **state)
{
    (void)state;
    meta_world_start("usage", META_WORLD_PACED, NULL);
    int64_t campaign = meta_world_start_campaign(CONTACTS);
    meta_world_wait_completed(campaign, 90);
    agent_wait(fx, CONTACTS, 90, "SELECT count(*) FROM chats m JOIN campaign_logs l ON "
                                 "l.wam_id = m.wam_id WHERE l.campaign_id = %lld AND "
                                 "m.delivered_at IS NOT NULL",
               (long long)campaign);
    /* the graph test server prices a free-form message as Meta does a
     * reply in the service window */
    agent_wait(fx, CONTACTS, 60, "SELECT coalesce(sum(delivered), 0) FROM message_usage WHERE "
                                 "whatsapp_account_id = %lld",
               (long long)mw.account);
    assert_int_equal(usage("service"), CONTACTS);

    char *wamid = itest_pg_textf(fx->camp.pg, "SELECT wam_id FROM campaign_logs WHERE "
                                              "campaign_id = %lld ORDER BY id LIMIT 1",
                                 (long long)campaign);
    char *to = itest_pg_textf(fx->camp.pg,
                              "SELECT regexp_replace(c.phone, '[^0-9]', '', 'g') FROM chats m "
                              "JOIN contacts c ON c.id = m.contact_id WHERE m.wam_id = '%s'",
                              wamid);
    meta_world_restart_ingest();
    post_status_again(wamid, to, "delivered", "marketing");
    post_status_again(wamid, to, "read", "marketing");
    /* a marker after them on the conversation: an inbound message from the
     * same contact, stored when they were applied */
    meta_world_post_inbound(to, "wamid.usage.marker", (long long)time(NULL), "text",
                            "\"text\":{\"body\":\"thanks\"}");
    agent_wait(fx, 1, 90, "SELECT count(*) FROM chats WHERE wam_id = 'wamid.usage.marker'");
    assert_int_equal(usage("service"), CONTACTS);
    assert_int_equal(usage("marketing"), 0);

    /* the CRM's role sees its workspace's row and no other's */
    assert_int_equal(usage_rows_seen_by_the_crm(mw.ws), 1);
    assert_int_equal(usage_rows_seen_by_the_crm(mw.ws + 1000000), 0);
    free(to);
    free(wamid);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(delivered_messages_counted_once_by_category,
                                        agent_test_setup, meta_world_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
