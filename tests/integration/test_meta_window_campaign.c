/*
 * test_meta_window_campaign.c - campaigns and Meta's 24-hour
 * customer-service window (issue 35; ARCHITECTURE.md §12.7) over the whole
 * real chain: ingest and chat-sync store what the contacts wrote (Meta's
 * signed messages webhooks), campaign-sender decides at release,
 * meta-sender sends to the Graph test server.
 *  - free_form_skips_contacts_outside_the_window: of CONTACTS contacts,
 *    WROTE wrote to the account an hour ago, one 25 hours ago, the rest
 *    never. A free-form campaign sends to the WROTE (the Graph test server
 *    is asked for them and nobody else) and skips the rest with reason
 *    outside_service_window, counted in campaigns.messages_skipped, in the
 *    campaign.completed event and by `blazzctl campaign status` (by
 *    reason); it completes. A template campaign to the same contacts sends
 *    to all of them and skips none.
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

#define CONTACTS 10
#define WROTE 4   /* the first WROTE contacts wrote an hour ago */
#define STALE 1   /* the next one wrote 25 hours ago: outside too */
#define TAG 95    /* camp_audience's phones: +1095000000i */

/* Contact i's phone (1-based), digits only, as Meta's wa_id. */
static void phone_of(int i, char *out, size_t cap)
{
    snprintf(out, cap, "1%03d%07d", TAG, i);
}

/* Contact i writes "halo" to the account, ago_s seconds ago, through
 * Meta's messages webhook to ingest. */
static void contact_writes(int i, long long ago_s)
{
    char from[24], wamid[64];
    phone_of(i, from, sizeof from);
    snprintf(wamid, sizeof wamid, "wamid.window.%d", i);
    meta_world_post_inbound(from, wamid, (long long)time(NULL) - ago_s, "text",
                            "\"text\":{\"body\":\"halo\"}");
}

/* `blazzctl campaign status --json`: the skipped logs by reason. */
static int64_t status_skipped(int64_t campaign, const char *reason)
{
    json_t *out = camp_status_json(&fx->camp, campaign);
    json_t *counters = json_object_get(out, "counters");
    int64_t total = json_integer_value(json_object_get(counters, "messages_skipped"));
    int64_t by = json_integer_value(
        json_object_get(json_object_get(counters, "skipped_by_reason"), reason));
    json_decref(out);
    assert_int_equal(total, by);
    return by;
}

/* The campaign's logs with status cond whose contact is among the first
 * `first` of the audience (by phone). */
static int64_t logs_among_first(int64_t campaign, int first, const char *cond)
{
    char last[24];
    phone_of(first, last, sizeof last);
    return agent_int(fx, "SELECT count(*) FROM campaign_logs l JOIN contacts c ON c.id = "
                         "l.contact_id WHERE l.campaign_id = %lld AND c.phone <= '+%s' AND %s",
                     (long long)campaign, last, cond);
}

static void free_form_skips_contacts_outside_the_window(void **state)
{
    (void)state;
    meta_world_start("window", META_WORLD_PACED, NULL);
    int64_t group = camp_audience(&fx->camp, mw.ws, CONTACTS, TAG);
    for (int i = 1; i <= WROTE; i++)
        contact_writes(i, 3600);
    contact_writes(WROTE + 1, 25 * 3600);
    agent_wait(fx, WROTE + STALE, 90,
               "SELECT count(*) FROM chats WHERE workspace_id = %lld AND type = 'inbound' AND "
               "wam_id LIKE 'wamid.window.%%'",
               (long long)mw.ws);

    int64_t campaign = camp_campaign(&fx->camp, mw.ws, group, mw.account, "Promo {{first_name}}",
                                     "draft", NULL);
    camp_command(&fx->camp, mw.ws, campaign, "start", "itest");
    meta_world_wait_completed(campaign, 120);
    int64_t outside = CONTACTS - WROTE;
    assert_int_equal(agent_int(fx, "SELECT messages_skipped FROM campaigns WHERE id = %lld",
                               (long long)campaign),
                     outside);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM campaign_logs WHERE campaign_id = %lld "
                                   "AND status = 'skipped' AND skip_reason = "
                                   "'outside_service_window' AND skipped_at IS NOT NULL",
                               (long long)campaign),
                     outside);
    assert_int_equal(logs_among_first(campaign, WROTE, "l.status IN ('sent', 'delivered', 'read')"),
                     WROTE);
    assert_int_equal(logs_among_first(campaign, WROTE, "l.status = 'skipped'"), 0);
    camp_assert_counters_exact(&fx->camp, campaign);

    /* Meta was asked for the WROTE contacts, once each, and nobody else */
    size_t count;
    graph_body *b = graph_bodies(&count);
    assert_int_equal(count, WROTE);
    for (size_t k = 0; k < count; k++) {
        const char *to = json_string_value(json_object_get(b[k].doc, "to"));
        int known = 0;
        for (int i = 1; i <= WROTE; i++) {
            char phone[24];
            phone_of(i, phone, sizeof phone);
            known += to && (strcmp(to, phone) == 0 || (to[0] == '+' && strcmp(to + 1, phone) == 0));
        }
        if (known != 1)
            fail_msg("Meta was asked to send to %s, who is outside the window", to ? to : "?");
    }
    graph_bodies_free(b, count);
    assert_int_equal(meta_world_count_kind("text"), WROTE);
    meta_world_assert_completed_event(campaign, WROTE, 0, outside);
    assert_int_equal(status_skipped(campaign, "outside_service_window"), outside);

    /* a template may open a conversation: sent to all, none skipped */
    int64_t tpl = meta_world_approved_template("window_promo", "MARKETING", "Halo {{first_name}}");
    int64_t second = meta_world_template_campaign(group, tpl, NULL);
    camp_command(&fx->camp, mw.ws, second, "start", "itest");
    meta_world_wait_completed(second, 120);
    assert_int_equal(meta_world_count_kind("template"), CONTACTS);
    assert_int_equal(meta_world_check_one_per_contact(second, CONTACTS), 0);
    assert_int_equal(agent_int(fx, "SELECT messages_skipped FROM campaigns WHERE id = %lld",
                               (long long)second),
                     0);
    assert_int_equal(agent_int(fx, "SELECT messages_sent FROM campaigns WHERE id = %lld",
                               (long long)second),
                     CONTACTS);
    camp_assert_counters_exact(&fx->camp, second);
    meta_world_assert_completed_event(second, CONTACTS, 0, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(free_form_skips_contacts_outside_the_window,
                                        agent_test_setup, meta_world_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
