/*
 * test_meta_standing.c - a Meta account's standing as Meta reports it
 * (issue 35; ARCHITECTURE.md §12.8), over the whole real chain: Meta's
 * phone_number_quality_update, account_update and account_alerts webhooks,
 * signed with the app secret, posted to ingest, applied by chat-sync to
 * whatsapp_accounts, told to the CRM as account.updated:
 *  - quality_limits_and_restrictions: the number flagged with its limit
 *    and the portfolio's; the portfolio's limit reaches the portfolio's
 *    other number; a restriction of the WABA with its end; a violation; an
 *    alert about the number; then unflagged. An older report delivered
 *    late and a report Meta repeats (to a restarted ingest, its duplicate
 *    window forgotten) change nothing and tell nothing; one
 *    account.updated per account a report moved, with the row as it
 *    stands;
 *  - flagged_or_restricted_number_pauses_campaigns: a flagged number's
 *    marketing campaign pauses before any message leaves and resumes when
 *    Meta unflags it; a restriction of business-initiated messaging pauses
 *    the next campaign until the restriction ends. One message per contact;
 *  - volume_tiers_keep_the_latest_band: account_update's volume tier
 *    updates (Meta's sample, two in one notification) keep the band each
 *    month, category and market reached last, whatever order they come
 *    in; one without its volume_tier_info is a dead letter; none moves an
 *    account's standing or tells the CRM. Then the Graph test server
 *    plays Meta moving the marketing band (POST /_volume_tier), kept
 *    beside the other two, telling the CRM nothing either.
 * A WABA no account names is refused on the path every business notice
 * takes (test_fidelity's template notice of an unknown WABA).
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

#define ENDPOINT "/ok/standing"
#define BUSINESS "880011223344"
/* Meta's entry.time of the reports, in order */
#define T0 1751247000LL

/* POST one change of field with value (JSON members) for waba at time. */
static void post_change(const char *waba, long long time, const char *field, const char *value)
{
    char body[2048];
    snprintf(body, sizeof body,
             "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"%s\",\"time\":%lld,"
             "\"changes\":[{\"value\":{%s},\"field\":\"%s\"}]}]}",
             waba, time, value, field);
    meta_world_post_webhook(body);
}

/* The world's number as Meta displays it: its digits. */
static void display_phone(char *out, size_t cap)
{
    char *phone = itest_pg_textf(fx->camp.pg,
                                 "SELECT regexp_replace(phone_number, '[^0-9]', '', 'g') FROM "
                                 "whatsapp_accounts WHERE id = %lld",
                                 (long long)mw.account);
    snprintf(out, cap, "%s", phone);
    free(phone);
}

static void post_quality(long long time, const char *phone, const char *event,
                         const char *limit, const char *business_limit)
{
    char value[512];
    snprintf(value, sizeof value,
             "\"display_phone_number\":\"%s\",\"event\":\"%s\",\"current_limit\":\"%s\","
             "\"max_daily_conversations_per_business\":\"%s\"",
             phone, event, limit, business_limit);
    post_change(mw.waba, time, "phone_number_quality_update", value);
}

/* The WABA restricted from business-initiated messages for a day. */
static void post_restriction(long long time, const char *phone)
{
    char value[512];
    snprintf(value, sizeof value,
             "\"phone_number\":\"%s\",\"event\":\"ACCOUNT_RESTRICTION\",\"restriction_info\":"
             "[{\"restriction_type\":\"RESTRICTED_BIZ_INITIATED_MESSAGING\",\"expiration\":%lld}]",
             phone, T0 + 86400);
    post_change(mw.waba, time, "account_update", value);
}

static int64_t account_matches(int64_t account, const char *cond)
{
    return agent_int(fx, "SELECT count(*) FROM whatsapp_accounts WHERE id = %lld AND %s",
                     (long long)account, cond);
}

/* account.updated webhooks delivered for account (matching cond on the
 * JSON body b). */
static int64_t standing_webhooks(int64_t account, const char *cond)
{
    return agent_int(fx, "SELECT count(*) FROM webhook_retry_queue q, LATERAL (SELECT "
                         "convert_from(q.payload, 'UTF8')::jsonb AS b) j WHERE q.workspace_id = "
                         "%lld AND q.event_type = 'account.updated' AND q.status = 'success' AND "
                         "(b #>> '{data,account,id}')::bigint = %lld AND %s",
                     (long long)mw.ws, (long long)account, cond);
}

static void wait_account(int64_t account, const char *cond)
{
    agent_wait(fx, 1, 90, "SELECT count(*) FROM whatsapp_accounts WHERE id = %lld AND %s",
               (long long)account, cond);
}

static void quality_limits_and_restrictions(void **state)
{
    (void)state;
    meta_world_start("standing", META_WORLD_PACED, NULL);
    agent_endpoint(fx, mw.ws, ENDPOINT);
    agent_start_dispatcher(fx);
    agent_int(fx, "UPDATE whatsapp_accounts SET meta_business_id = '" BUSINESS "' WHERE id = %lld "
                  "RETURNING id", (long long)mw.account);
    /* the portfolio's other number, of another WABA of the workspace */
    int64_t sibling = camp_account(&fx->camp, mw.ws, "pn2", 0, 100, META_WORLD_PACED);
    agent_int(fx, "UPDATE whatsapp_accounts SET provider_type = 'meta', session_id = '2065' || id, "
                  "phone_number = '+15550000002', "
                  "meta_waba_id = '8%012lld', meta_business_id = '" BUSINESS "' WHERE id = %lld "
                  "RETURNING id", (long long)sibling, (long long)sibling);
    char phone[64];
    display_phone(phone, sizeof phone);

    post_quality(T0 + 10, phone, "FLAGGED", "TIER_2K", "TIER_250");
    wait_account(mw.account, "meta_flagged");
    assert_int_equal(account_matches(mw.account, "meta_quality_event = 'FLAGGED' AND "
                                                 "meta_messaging_limit = 'TIER_2K' AND "
                                                 "meta_business_limit = 'TIER_250'"),
                     1);
    wait_account(sibling, "meta_business_limit = 'TIER_250'");
    assert_int_equal(account_matches(sibling, "NOT meta_flagged AND meta_messaging_limit IS NULL"),
                     1);

    char value[512];
    post_restriction(T0 + 20, phone);
    post_change(mw.waba, T0 + 30, "account_update",
                "\"event\":\"ACCOUNT_VIOLATION\",\"violation_info\":{\"violation_type\":\"SCAM\"}");
    snprintf(value, sizeof value,
             "\"entity_type\":\"PHONE_NUMBER\",\"entity_id\":\"%s\",\"alert_info\":{"
             "\"alert_severity\":\"WARNING\",\"alert_status\":\"ACTIVE\",\"alert_type\":"
             "\"THROUGHPUT_DOWNGRADE\",\"alert_description\":\"Throughput lowered\"}",
             mw.session);
    post_change(mw.waba, T0 + 40, "account_alerts", value);
    post_quality(T0 + 50, phone, "UNFLAGGED", "TIER_2K", "TIER_2K");
    wait_account(mw.account, "meta_quality_event = 'UNFLAGGED'");
    wait_account(mw.account, "meta_account_event = 'THROUGHPUT_DOWNGRADE'");
    char cond[512];
    snprintf(cond, sizeof cond,
             "NOT meta_flagged AND meta_business_limit = 'TIER_2K' AND "
             "meta_restriction = 'RESTRICTED_BIZ_INITIATED_MESSAGING' AND "
             "meta_restricted_until = to_timestamp(%lld) AND meta_violation = 'SCAM' AND "
             "meta_account_detail = 'Throughput lowered'",
             T0 + 86400);
    assert_int_equal(account_matches(mw.account, cond), 1);

    /* late and repeated: an older FLAGGED, the restriction again, to an
     * ingest that forgot what it forwarded */
    meta_world_restart_ingest();
    post_quality(T0 + 5, phone, "FLAGGED", "TIER_250", "TIER_250");
    post_restriction(T0 + 20, phone);
    /* a marker after them on the WABA's partition: when it is applied, so
     * are they */
    post_change(mw.waba, T0 + 60, "account_update",
                "\"event\":\"DISABLED_UPDATE\",\"ban_info\":{\"waba_ban_state\":\"REINSTATE\","
                "\"waba_ban_date\":\"November 24, 2026\"}");
    wait_account(mw.account, "meta_ban_state = 'REINSTATE'");
    assert_int_equal(account_matches(mw.account, "NOT meta_flagged AND "
                                                 "meta_messaging_limit = 'TIER_2K' AND "
                                                 "meta_account_event = 'DISABLED_UPDATE'"),
                     1);

    /* the number: flagged, restriction, violation, alert, unflagged, ban
     * state: six changes; the sibling: the portfolio limit set, then
     * raised */
    agent_wait(fx, 8, 90, "SELECT count(*) FROM webhook_retry_queue WHERE workspace_id = %lld "
                          "AND event_type = 'account.updated' AND status = 'success'",
               (long long)mw.ws);
    assert_int_equal(standing_webhooks(mw.account, "true"), 6);
    assert_int_equal(standing_webhooks(sibling, "true"), 2);
    assert_int_equal(standing_webhooks(mw.account,
                                       "b #>> '{data,field}' = 'phone_number_quality_update' AND "
                                       "b #>> '{data,event}' = 'FLAGGED' AND "
                                       "(b #> '{data,account,flagged}')::boolean AND "
                                       "b #>> '{data,account,business_limit}' = 'TIER_250'"),
                     1);
    assert_int_equal(standing_webhooks(mw.account,
                                       "b #>> '{data,event}' = 'ACCOUNT_RESTRICTION' AND "
                                       "b #>> '{data,account,restriction}' = "
                                       "'RESTRICTED_BIZ_INITIATED_MESSAGING' AND "
                                       "b #>> '{data,account,restricted_until}' LIKE '2025-07-01T%'"),
                     1);
    assert_int_equal(standing_webhooks(sibling, "b #>> '{data,account,business_limit}' = "
                                                "'TIER_2K' AND b #>> '{data,account,business_id}' "
                                                "= '" BUSINESS "'"),
                     1);
}

/* A campaign "Promo {{first_name}}" (free-form: marketing) to n new
 * contacts of tag, who wrote an hour ago (inside the window a free-form
 * message needs, §12.7), from the world's account, started. */
static int64_t start_campaign(int n, int tag)
{
    int64_t group = camp_audience(&fx->camp, mw.ws, n, tag);
    meta_world_audience_wrote(group, 3600 * 1000LL);
    int64_t campaign = camp_campaign(&fx->camp, mw.ws, group, mw.account, "Promo {{first_name}}",
                                     "draft", NULL);
    camp_command(&fx->camp, mw.ws, campaign, "start", "itest");
    return campaign;
}

static void wait_paused_for(int64_t campaign, const char *reason_like)
{
    agent_wait(fx, 1, 60, "SELECT count(*) FROM campaigns WHERE id = %lld AND status = 'paused' "
                          "AND pause_reason LIKE '%s'",
               (long long)campaign, reason_like);
}

static int64_t campaign_resumed_by_the_sender(int64_t campaign)
{
    return agent_int(fx, "SELECT count(*) FROM campaigns WHERE id = %lld AND "
                         "metadata->'last_command'->>'actor' = 'system' AND "
                         "metadata->'last_command'->>'reason' = 'account_cleared'",
                     (long long)campaign);
}

/* Meta flags the number: a marketing campaign started then pauses with the
 * reason before any message leaves, and resumes when Meta unflags it,
 * completing with one message per contact. Then Meta restricts the WABA's
 * business-initiated messaging for an hour: the next campaign pauses with
 * the restriction and its end, and resumes by itself once it ends (the
 * test ends it early). */
static void flagged_or_restricted_number_pauses_campaigns(void **state)
{
    (void)state;
    meta_world_start("standing-pause", META_WORLD_PACED, NULL);
    char phone[64];
    display_phone(phone, sizeof phone);
    post_quality(T0 + 10, phone, "FLAGGED", "TIER_2K", "TIER_2K");
    wait_account(mw.account, "meta_flagged");

    int64_t flagged = start_campaign(12, 81);
    wait_paused_for(flagged, "account_standing: Meta flagged the quality of account %");
    assert_int_equal(meta_world_count_kind("text"), 0);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM campaign_logs WHERE campaign_id = %lld "
                                   "AND status <> 'pending'",
                               (long long)flagged),
                     0);
    post_quality(T0 + 20, phone, "UNFLAGGED", "TIER_2K", "TIER_2K");
    meta_world_wait_completed(flagged, 90);
    assert_int_equal(campaign_resumed_by_the_sender(flagged), 1);
    assert_int_equal(meta_world_check_one_per_contact(flagged, 12), 0);

    /* An hour, ended by the test once the pause was seen: a restriction
     * of a few seconds bet that the webhook's trip and the campaign's
     * start take less, which a loaded host does not promise. */
    long long ends = (long long)time(NULL) + 3600;
    char value[512];
    snprintf(value, sizeof value,
             "\"event\":\"ACCOUNT_RESTRICTION\",\"restriction_info\":[{\"restriction_type\":"
             "\"RESTRICTED_BIZ_INITIATED_MESSAGING\",\"expiration\":%lld}]",
             ends);
    post_change(mw.waba, T0 + 30, "account_update", value);
    wait_account(mw.account, "meta_restriction IS NOT NULL");
    long before = meta_world_count_kind("text");
    int64_t restricted = start_campaign(8, 82);
    wait_paused_for(restricted, "account_standing: Meta restricts account % "
                                "(RESTRICTED_BIZ_INITIATED_MESSAGING until %");
    /* still paused a few of campaign-sender's refreshes later (a lower
     * bound: it cannot resume a restricted campaign early unseen) */
    itest_sleep_ms(1000);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM campaigns WHERE id = %lld AND status = "
                                   "'paused'", (long long)restricted),
                     1);
    assert_int_equal(meta_world_count_kind("text"), before);
    assert_int_equal(agent_int(fx, "WITH u AS (UPDATE whatsapp_accounts SET "
                                   "meta_restricted_until = now() WHERE id = %lld RETURNING 1) "
                                   "SELECT count(*) FROM u", (long long)mw.account),
                     1);
    meta_world_wait_completed(restricted, 90);
    assert_int_equal(campaign_resumed_by_the_sender(restricted), 1);
    assert_int_equal(meta_world_check_one_per_contact(restricted, 8), 0);
}

/* account_update VOLUME_BASED_PRICING_TIER_UPDATE as Meta's reference
 * shows it: the band of one month, category and market. */
static void tier_change(char *out, size_t cap, const char *category, const char *tier,
                        long long updated)
{
    snprintf(out, cap,
             "{\"value\":{\"event\":\"VOLUME_BASED_PRICING_TIER_UPDATE\",\"volume_tier_info\":"
             "{\"effective_month\":\"2025-11\",\"pricing_category\":\"%s\",\"region\":"
             "\"INDIA\",\"tier\":\"%s\",\"tier_update_time\":%lld}},\"field\":"
             "\"account_update\"}",
             category, tier, updated);
}

static void post_tiers(long long time, const char *changes)
{
    char body[2048];
    snprintf(body, sizeof body,
             "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"%s\",\"time\":"
             "%lld,\"changes\":[%s]}]}",
             mw.waba, time, changes);
    meta_world_post_webhook(body);
}

static int64_t tiers_matching(const char *cond)
{
    return agent_int(fx, "SELECT count(*) FROM meta_volume_tiers WHERE workspace_id = %lld AND "
                         "waba_id = '%s' AND effective_month = '2025-11' AND region = 'INDIA' AND %s",
                     (long long)mw.ws, mw.waba, cond);
}

/* The WABA's volume tiers: two categories in one notification, the
 * utility band raised, then an older report of it delivered late; a tier
 * update without its volume_tier_info is a dead letter. No account's
 * standing moves, so no account.updated goes out. */
static void volume_tiers_keep_the_latest_band(void **state)
{
    (void)state;
    meta_world_start("tiers", META_WORLD_PACED, NULL);
    agent_endpoint(fx, mw.ws, ENDPOINT);
    agent_start_dispatcher(fx);
    char utility[512], authentication[512], both[1100];
    tier_change(utility, sizeof utility, "UTILITY", "1:250000", T0 + 10);
    tier_change(authentication, sizeof authentication, "AUTHENTICATION", "250001:2000000",
                T0 + 10);
    snprintf(both, sizeof both, "%s,%s", utility, authentication);
    post_tiers(T0 + 10, both);
    tier_change(utility, sizeof utility, "UTILITY", "250001:2000000", T0 + 100);
    post_tiers(T0 + 100, utility);
    /* late: reached before the raise, delivered after it */
    tier_change(utility, sizeof utility, "UTILITY", "1:250000", T0 + 50);
    post_tiers(T0 + 200, utility);
    post_change(mw.waba, T0 + 210, "account_update",
                "\"event\":\"VOLUME_BASED_PRICING_TIER_UPDATE\"");
    /* a marker after them on the WABA's partition */
    post_change(mw.waba, T0 + 220, "account_update",
                "\"event\":\"ACCOUNT_VIOLATION\",\"violation_info\":{\"violation_type\":\"SPAM\"}");
    wait_account(mw.account, "meta_violation = 'SPAM'");

    char cond[256];
    snprintf(cond, sizeof cond,
             "pricing_category = 'UTILITY' AND tier = '250001:2000000' AND "
             "tier_updated_at = to_timestamp(%lld) AND reported_at = to_timestamp(%lld)",
             T0 + 100, T0 + 100);
    assert_int_equal(tiers_matching(cond), 1);
    assert_int_equal(tiers_matching("pricing_category = 'AUTHENTICATION' AND "
                                    "tier = '250001:2000000'"),
                     1);
    assert_int_equal(tiers_matching("true"), 2);
    agent_dlq_reasons d;
    agent_dead_letters(fx, &d, 1);
    assert_int_equal(d.n, 1);
    assert_string_equal(d.codes[0], "invalid_notice");
    assert_int_equal(account_matches(mw.account, "meta_account_event = 'ACCOUNT_VIOLATION'"), 1);
    agent_wait(fx, 1, 90, "SELECT count(*) FROM webhook_retry_queue WHERE workspace_id = %lld "
                          "AND event_type = 'account.updated' AND status = 'success'",
               (long long)mw.ws);
    assert_int_equal(standing_webhooks(mw.account, "true"), 1);

    /* the Graph test server plays Meta moving the marketing band */
    meta_world_graph_plays("_volume_tier",
                           "{\"effective_month\":\"2025-11\",\"pricing_category\":"
                           "\"MARKETING\",\"region\":\"INDIA\",\"tier\":\"1:250000\"}");
    agent_wait(fx, 1, 90, "SELECT count(*) FROM meta_volume_tiers WHERE workspace_id = %lld AND "
                          "waba_id = '%s' AND pricing_category = 'MARKETING' AND tier = "
                          "'1:250000' AND tier_updated_at > now() - interval '1 hour'",
               (long long)mw.ws, mw.waba);
    assert_int_equal(tiers_matching("true"), 3);
    /* and moves no account's standing either: once a marker after it has
     * been announced, the marker's is the only account.updated since */
    post_change(mw.waba, T0 + 230, "account_update",
                "\"event\":\"ACCOUNT_VIOLATION\",\"violation_info\":{\"violation_type\":"
                "\"SCAM\"}");
    agent_wait(fx, 1, 90,
               "SELECT count(*) FROM webhook_retry_queue WHERE workspace_id = %lld AND "
               "event_type = 'account.updated' AND status = 'success' AND "
               "convert_from(payload, 'UTF8')::jsonb #>> '{data,account,violation}' = 'SCAM'",
               (long long)mw.ws);
    /* in any status: fan-out follows the partition's order, delivery not */
    assert_int_equal(agent_int(fx,
                               "SELECT count(*) FROM webhook_retry_queue WHERE workspace_id = "
                               "%lld AND event_type = 'account.updated' AND "
                               "(convert_from(payload, 'UTF8')::jsonb #>> '{data,account,id}')"
                               "::bigint = %lld",
                               (long long)mw.ws, (long long)mw.account),
                     2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(quality_limits_and_restrictions, agent_test_setup,
                                        meta_world_teardown),
        cmocka_unit_test_setup_teardown(flagged_or_restricted_number_pauses_campaigns,
                                        agent_test_setup, meta_world_teardown),
        cmocka_unit_test_setup_teardown(volume_tiers_keep_the_latest_band, agent_test_setup,
                                        meta_world_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
