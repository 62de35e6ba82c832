/*
 * test_meta_marketing_limit.c - a campaign and Meta's per-user marketing
 * limit (issue 53; ARCHITECTURE.md §12.11) over the whole real chain: the
 * Graph test server accepts the marketing template and then reports it
 * failed with 131049 in a status webhook, as Meta does, for the first
 * message to each of LIMITED of the CONTACTS contacts (30%); ingest and
 * chat-sync turn that into the campaign's receipt and the CRM's
 * message.status; campaign-sender decides.
 *  - limited_contacts_are_retried_once_later: with
 *    retry.marketing_limit_after_s = AFTER_S and an auto-pause that 30% of
 *    failures would trip (min_samples well under CONTACTS), the campaign is
 *    not paused; the LIMITED logs wait pending, each with its retry_at,
 *    `blazzctl campaign status` saying so (marketing_limit), while Meta got
 *    no second request; once their time came each is sent again, once, no
 *    sooner than its retry_at, and that second outcome is the one counted:
 *    the campaign completes with every contact sent once (messages_sent =
 *    CONTACTS, none failed, counters exact, one campaign.completed); the CRM
 *    got a message.status failed with error_code 131049 and Meta's words
 *    for each first message.
 *  - a_paused_campaign_retries_nobody: the retry is "once after 24 hours
 *    when the campaign still runs": the campaign is paused while its
 *    limited contacts wait, and their time comes while it is paused; a
 *    second campaign of OTHERS contacts, started once Meta's pair rate no
 *    longer holds the limited contacts, completes (campaign-sender's
 *    rounds went past the paused campaign) and Meta was
 *    asked nothing more for the limited contacts, who still wait. Resumed,
 *    the campaign sends each of them once and completes, counted once.
 *  - no_retry_when_switched_off: retry.marketing_limit_after_s = 0: the
 *    LIMITED logs fail for good with 131049, Meta is asked once per
 *    contact, and the campaign still completes, not auto-paused.
 * Every wait polls PostgreSQL with a deadline.
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

#define CONTACTS 20
#define LIMITED 6 /* the first LIMITED contacts are at their marketing limit: 30% */
/* retry.marketing_limit_after_s: an hour, ended by the test once it saw
 * every limited contact waiting (8 s bet that the status webhooks, the
 * checks and a blazzctl run took less) */
#define AFTER_S 3600
#define TAG 97    /* camp_audience's phones: +1097000000i */
#define ENDPOINT "/ok/marketing-limit"

/* The Graph test server's options: 131049 in the status webhook of the
 * first message to each of the LIMITED contacts (static, kept for the
 * world's life). */
static const char *const *limited_graph_args(void)
{
    static char specs[LIMITED][48];
    static const char *args[2 * LIMITED + 1];
    for (int i = 1; i <= LIMITED; i++) {
        snprintf(specs[i - 1], sizeof specs[0], "1%03d%07d=131049", TAG, i);
        args[2 * (i - 1)] = "--fail-status-to";
        args[2 * (i - 1) + 1] = specs[i - 1];
    }
    args[2 * LIMITED] = NULL;
    return args;
}

/* The world with campaign-sender's retry window after_s and an auto-pause
 * that LIMITED failures of CONTACTS would trip; a started marketing
 * template campaign to CONTACTS contacts. */
static int64_t start_limited_campaign(const char *name, const char *after_s)
{
    static const char *env[4];
    env[0] = after_s;
    env[1] = "BLAZZ_AUTOPAUSE_MIN_SAMPLES=5";
    env[2] = "BLAZZ_AUTOPAUSE_WINDOW_S=300";
    env[3] = NULL;
    meta_world_campaign_env = env;
    meta_world_start(name, META_WORLD_PACED, limited_graph_args());
    meta_world_campaign_env = NULL;
    agent_endpoint(fx, mw.ws, ENDPOINT);
    agent_start_dispatcher(fx);
    int64_t group = camp_audience(&fx->camp, mw.ws, CONTACTS, TAG);
    int64_t tpl = meta_world_approved_template(name, "MARKETING", "Halo {{first_name}}");
    int64_t campaign = meta_world_template_campaign(group, tpl, NULL);
    camp_command(&fx->camp, mw.ws, campaign, "start", "itest");
    return campaign;
}

/* The campaign's logs among the LIMITED contacts matching cond. */
static int64_t limited_logs(int64_t campaign, const char *cond)
{
    return agent_int(fx, "SELECT count(*) FROM campaign_logs l JOIN contacts c ON c.id = "
                         "l.contact_id WHERE l.campaign_id = %lld AND c.phone <= '+1%03d%07d' "
                         "AND %s",
                     (long long)campaign, TAG, LIMITED, cond);
}

static int64_t campaign_int(int64_t campaign, const char *column)
{
    return agent_int(fx, "SELECT %s FROM campaigns WHERE id = %lld", column, (long long)campaign);
}

/* The CRM was told, once per limited contact, that the campaign's message
 * failed with 131049 and Meta's words. */
static void assert_crm_told_131049(void)
{
    agent_wait(fx, LIMITED, 90,
               "SELECT count(*) FROM webhook_retry_queue WHERE workspace_id = %lld AND "
               "event_type = 'message.status' AND status = 'success' AND "
               "convert_from(payload, 'UTF8')::jsonb->'data'->'status'->>'error_code' = '131049'",
               (long long)mw.ws);
    assert_int_equal(meta_world_webhooks_delivered(
                         "message.status",
                         "b->'data'->'status'->>'status' = 'failed' AND "
                         "b->'data'->'status'->>'error_code' = '131049' AND "
                         "b->'data'->'status'->>'error_message' LIKE '%healthy ecosystem%' AND "
                         "(b->'data'->'chat'->>'campaign_id')::bigint > 0"),
                     LIMITED);
}

/* Meta asked for want templates: the paced campaign may still be sending
 * to the others when the limited contacts' answers are in. */
static void wait_templates_asked(long want)
{
    for (int i = 0; i < 600 && meta_world_count_kind("template") < want; i++)
        itest_sleep_ms(100);
    assert_int_equal(meta_world_count_kind("template"), want);
}

/* A campaign with the hour's retry window, once the first answers are in:
 * the limited contacts wait for their retry, the others went. */
static int64_t start_campaign_its_limited_wait(const char *name)
{
    int64_t campaign = start_limited_campaign(
        name, "BLAZZ_RETRY_MARKETING_LIMIT_AFTER_S=" META_WORLD_TEXT(AFTER_S));
    agent_wait(fx, LIMITED, 90,
               "SELECT count(*) FROM campaign_logs WHERE campaign_id = %lld AND status = "
               "'pending' AND retry_at > now() AND retry_count = 1 AND error_message LIKE "
               "'retrying later after 131049:%%'",
               (long long)campaign);
    return campaign;
}

/* The limited contacts' retry time comes: the test moves it to now. */
static void bring_the_retries_due(int64_t campaign)
{
    assert_int_equal(agent_int(fx, "WITH u AS (UPDATE campaign_logs SET retry_at = now() WHERE "
                                   "campaign_id = %lld AND retry_at IS NOT NULL RETURNING 1) "
                                   "SELECT count(*) FROM u", (long long)campaign),
                     LIMITED);
}

static void limited_contacts_are_retried_once_later(void **state)
{
    (void)state;
    int64_t campaign = start_campaign_its_limited_wait("limit_retry");
    assert_int_equal(limited_logs(campaign, "l.retry_at IS NOT NULL"), LIMITED);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM campaigns WHERE id = %lld AND status = "
                                   "'running' AND pause_reason IS NULL",
                               (long long)campaign),
                     1);
    wait_templates_asked(CONTACTS);
    json_t *out = camp_status_json(&fx->camp, campaign);
    json_t *limit = json_object_get(out, "marketing_limit");
    assert_int_equal(json_integer_value(json_object_get(limit, "waiting")), LIMITED);
    assert_int_equal(json_integer_value(json_object_get(limit, "retried")), LIMITED);
    assert_non_null(json_string_value(json_object_get(limit, "next_retry_at")));
    json_decref(out);
    assert_crm_told_131049();

    /* their time comes (the test moves it to now): each sent again once,
     * not before, and counted once */
    bring_the_retries_due(campaign);
    meta_world_wait_completed(campaign, 120);
    assert_int_equal(meta_world_count_kind("template"), CONTACTS + LIMITED);
    assert_int_equal(meta_world_check_one_per_contact(campaign, CONTACTS), LIMITED);
    assert_int_equal(limited_logs(campaign, "l.status IN ('sent', 'delivered', 'read') AND "
                                            "l.retry_count = 1 AND l.queued_at >= l.retry_at"),
                     LIMITED);
    assert_int_equal(campaign_int(campaign, "messages_sent"), CONTACTS);
    assert_int_equal(campaign_int(campaign, "messages_failed"), 0);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM campaigns WHERE id = %lld AND "
                                   "pause_reason IS NULL AND error_message IS NULL",
                               (long long)campaign),
                     1);
    camp_assert_counters_exact(&fx->camp, campaign);
    meta_world_assert_completed_event(campaign, CONTACTS, 0, 0);
    out = camp_status_json(&fx->camp, campaign);
    limit = json_object_get(out, "marketing_limit");
    assert_int_equal(json_integer_value(json_object_get(limit, "waiting")), 0);
    assert_int_equal(json_integer_value(json_object_get(limit, "retried")), LIMITED);
    json_decref(out);
}

#define OTHERS 4
#define OTHERS_TAG 98 /* +1098000000i: none is at its limit */

static void a_paused_campaign_retries_nobody(void **state)
{
    (void)state;
    int64_t campaign = start_campaign_its_limited_wait("limit_paused");
    wait_templates_asked(CONTACTS);
    camp_command(&fx->camp, mw.ws, campaign, "pause", "itest-pause");
    camp_wait_status(&fx->camp, campaign, "paused", 60);
    bring_the_retries_due(campaign);

    /* past Meta's pair rate (budget.pair_interval_s, 6 s) since the
     * limited contacts' first messages, nothing but the pause holds them */
    agent_wait(fx, 0, 60,
               "SELECT count(*) FROM send_ledger s JOIN campaign_logs l ON l.uuid::text = "
               "s.reference WHERE l.campaign_id = %lld AND l.retry_at IS NOT NULL AND "
               "s.released_at > now() - interval '7 seconds'",
               (long long)campaign);
    int64_t others = camp_audience(&fx->camp, mw.ws, OTHERS, OTHERS_TAG);
    int64_t tpl = campaign_int(campaign, "template_id");
    int64_t second = meta_world_template_campaign(others, tpl, NULL);
    camp_command(&fx->camp, mw.ws, second, "start", "itest");
    meta_world_wait_completed(second, 120);
    assert_int_equal(meta_world_count_kind("template"), CONTACTS + OTHERS);
    assert_int_equal(limited_logs(campaign, "l.status = 'pending' AND l.retry_at IS NOT NULL"),
                     LIMITED);

    camp_command(&fx->camp, mw.ws, campaign, "resume", "itest-resume");
    meta_world_wait_completed(campaign, 120);
    assert_int_equal(meta_world_count_kind("template"), CONTACTS + OTHERS + LIMITED);
    assert_int_equal(meta_world_check_one_per_contact(campaign, CONTACTS), LIMITED);
    assert_int_equal(campaign_int(campaign, "messages_sent"), CONTACTS);
    assert_int_equal(campaign_int(campaign, "messages_failed"), 0);
    camp_assert_counters_exact(&fx->camp, campaign);
}

static void no_retry_when_switched_off(void **state)
{
    (void)state;
    int64_t campaign = start_limited_campaign("limit_off", "BLAZZ_RETRY_MARKETING_LIMIT_AFTER_S=0");
    meta_world_wait_completed(campaign, 120);
    assert_int_equal(limited_logs(campaign, "l.status = 'failed' AND l.retry_at IS NULL AND "
                                            "l.error_message LIKE '131049:%'"),
                     LIMITED);
    assert_int_equal(meta_world_count_kind("template"), CONTACTS);
    assert_int_equal(campaign_int(campaign, "messages_sent"), CONTACTS - LIMITED);
    assert_int_equal(campaign_int(campaign, "messages_failed"), LIMITED);
    camp_assert_counters_exact(&fx->camp, campaign);
    meta_world_assert_completed_event(campaign, CONTACTS - LIMITED, LIMITED, 0);
    assert_crm_told_131049();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(limited_contacts_are_retried_once_later,
                                        agent_test_setup, meta_world_teardown),
        cmocka_unit_test_setup_teardown(a_paused_campaign_retries_nobody, agent_test_setup,
                                        meta_world_teardown),
        cmocka_unit_test_setup_teardown(no_retry_when_switched_off, agent_test_setup,
                                        meta_world_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
