/*
 * test_meta_usage.c - what Meta reports about messages that the CRM
 * accounts for, over the whole real chain: campaign-sender, meta-sender,
 * graph_test_server (whose status webhooks carry Meta's pricing object),
 * ingest, chat-sync, PostgreSQL.
 *  - delivered_messages_counted_once_by_category: a campaign's six
 *    messages are counted once each under the category Meta priced them
 *    at (issue 35; ARCHITECTURE.md §12.9), with the pricing type and model
 *    (issue 53: free customer-service replies, per-message pricing), so
 *    none counts as paid; Meta's delivered and read statuses of one of
 *    them posted again, with another category and type, to a restarted
 *    ingest (its duplicate window forgotten), change nothing; the CRM's
 *    role reads the rows of its own workspace only.
 *  - ad_referral_and_flow_answers_kept: Meta's documented samples (issue
 *    53): a message from a click-to-WhatsApp ad keeps its referral whole
 *    (ctwa_clid, source, headline, welcome_message) in chats.metadata; a
 *    flow's answers (nfm_reply.response_json) are kept parsed (both told
 *    in message.created and read back over GET /v1/messages/{id}), and answers
 *    that are not JSON are kept as their text, marked unparsed.
 *  - entry_point_replies_are_free: replies to a customer who came from an
 *    ad are counted free_entry_point, as Meta prices them in the 72 hours
 *    a reply within 24 hours opens; a plain customer's replies are free
 *    customer-service ones; a marketing template to a customer who never
 *    wrote is the one paid (regular), counted beside the free ones.
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

/* Today's messages of the account priced with Meta's pricing type. */
static int64_t usage_of_type(const char *type)
{
    return agent_int(fx, "SELECT coalesce(sum(delivered), 0) FROM message_usage_priced WHERE "
                         "whatsapp_account_id = %lld AND pricing_type = '%s' AND "
                         "pricing_model = 'PMP' AND day = (now() AT TIME ZONE 'UTC')::date",
                     (long long)mw.account, type);
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
    /* Meta priced them free: none counts as paid */
    assert_int_equal(usage_of_type("free_customer_service"), CONTACTS);
    assert_int_equal(usage_of_type("regular"), 0);

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
    assert_int_equal(usage_of_type("regular"), 0);

    /* the CRM's role sees its workspace's row and no other's */
    const char *usage = "SELECT count(*) FROM message_usage";
    assert_int_equal(itest_pg_int64_as_crm(fx->camp.pg, mw.ws, usage), 1);
    assert_int_equal(itest_pg_int64_as_crm(fx->camp.pg, mw.ws + 1000000, usage), 0);
    free(to);
    free(wamid);
}

/* The value at path (a jsonb path, e.g. '{referral,ctwa_clid}') of the
 * stored message wamid's chats.metadata, as text; the caller frees it. */
static char *metadata_at(const char *wamid, const char *path)
{
    return itest_pg_textf(fx->camp.pg,
                          "SELECT coalesce(metadata #>> '%s', '<none>') FROM chats WHERE "
                          "workspace_id = %lld AND wam_id = '%s'",
                          path, (long long)mw.ws, wamid);
}

static void expect_metadata(const char *wamid, const char *path, const char *want)
{
    char *got = metadata_at(wamid, path);
    if (strcmp(got, want) != 0)
        fail_msg("%s metadata %s: got \"%s\", want \"%s\"", wamid, path, got, want);
    free(got);
}

/* GET /v1/messages/{id} of the world's message wamid: 200, its document
 * (the caller releases it). */
static json_t *message_read(const char *wamid)
{
    char *id = itest_pg_textf(fx->camp.pg, "SELECT uuid FROM chats WHERE workspace_id = %lld "
                                           "AND wam_id = '%s'",
                              (long long)mw.ws, wamid);
    char path[128];
    snprintf(path, sizeof path, "/v1/messages/%s", id);
    free(id);
    json_t *doc;
    assert_int_equal(agent_get_json(fx, path, mw.api_key, &doc), 200);
    return doc;
}

/* Meta's samples: messages reference (text, "only included if message
 * sent via a Click to WhatsApp ad") and Flows, "Receiving Flow Response". */
static void ad_referral_and_flow_answers_kept(void **state)
{
    (void)state;
    meta_world_start("kept", META_WORLD_PACED, NULL);
    agent_endpoint(fx, mw.ws, "/ok/kept");
    agent_start_dispatcher(fx);
    long long now = (long long)time(NULL);
    meta_world_post_inbound(
        "6281298765001", "wamid.kept.ad", now - 30, "text",
        "\"text\":{\"body\":\"Hi, is this still available?\"},\"referral\":{"
        "\"source_url\":\"https://fb.me/3cr4Wqqkv\",\"source_id\":\"120226305854810726\","
        "\"source_type\":\"ad\",\"body\":\"Fresh plants, delivered\",\"headline\":\"Chat with us\","
        "\"media_type\":\"image\",\"image_url\":\"https://scontent.xx.fbcdn.net/v/t45.1/ad.jpg\","
        "\"ctwa_clid\":\"Aff-n8ZTODiE79d22KtAwQKj9e_mIEOOj27vDVwFjN80dp4_0N\","
        "\"welcome_message\":{\"text\":\"Hi there! Let us know how we can help!\"}}");
    meta_world_post_inbound(
        "6281298765001", "wamid.kept.flow", now - 20, "interactive",
        "\"context\":{\"from\":\"15550783881\",\"id\":\"gBGGEiRVVgBPAgm7FUgc73noXjo\"},"
        "\"interactive\":{\"type\":\"nfm_reply\",\"nfm_reply\":{\"name\":\"flow\",\"body\":"
        "\"Sent\",\"response_json\":\"{\\\"flow_token\\\": \\\"booking-7\\\", "
        "\\\"date\\\": \\\"2026-03-01\\\", \\\"guests\\\": 2}\"}}");
    meta_world_post_inbound(
        "6281298765001", "wamid.kept.badflow", now - 10, "interactive",
        "\"interactive\":{\"type\":\"nfm_reply\",\"nfm_reply\":{\"name\":\"flow\",\"body\":"
        "\"Sent\",\"response_json\":\"{flow_token: booking-8\"}}");
    agent_wait(fx, 3, 90, "SELECT count(*) FROM chats WHERE workspace_id = %lld AND wam_id LIKE "
                          "'wamid.kept.%%'", (long long)mw.ws);

    expect_metadata("wamid.kept.ad", "{body}", "Hi, is this still available?");
    expect_metadata("wamid.kept.ad", "{referral,ctwa_clid}",
                    "Aff-n8ZTODiE79d22KtAwQKj9e_mIEOOj27vDVwFjN80dp4_0N");
    expect_metadata("wamid.kept.ad", "{referral,source_type}", "ad");
    expect_metadata("wamid.kept.ad", "{referral,source_id}", "120226305854810726");
    expect_metadata("wamid.kept.ad", "{referral,headline}", "Chat with us");
    expect_metadata("wamid.kept.ad", "{referral,image_url}",
                    "https://scontent.xx.fbcdn.net/v/t45.1/ad.jpg");
    expect_metadata("wamid.kept.ad", "{referral,welcome_message,text}",
                    "Hi there! Let us know how we can help!");
    expect_metadata("wamid.kept.flow", "{referral}", "<none>");

    expect_metadata("wamid.kept.flow", "{body}", "Sent");
    expect_metadata("wamid.kept.flow", "{interactive_reply,type}", "nfm_reply");
    expect_metadata("wamid.kept.flow", "{interactive_reply,response_json,flow_token}", "booking-7");
    expect_metadata("wamid.kept.flow", "{interactive_reply,response_json,guests}", "2");
    expect_metadata("wamid.kept.flow", "{interactive_reply,response_json_unparsed}", "<none>");
    expect_metadata("wamid.kept.badflow", "{interactive_reply,response_json}",
                    "{flow_token: booking-8");
    expect_metadata("wamid.kept.badflow", "{interactive_reply,response_json_unparsed}", "true");

    /* the CRM is told them with the message (message.created), where it
     * must act: the ad's attribution, the form's answers; no other
     * message carries either member */
    meta_world_wait_webhooks("message.created", 3);
    assert_int_equal(meta_world_webhooks_delivered(
                         "message.created", "b #>> '{data,chat,referral,ctwa_clid}' = "
                                            "'Aff-n8ZTODiE79d22KtAwQKj9e_mIEOOj27vDVwFjN80dp4_0N'"),
                     1);
    assert_int_equal(meta_world_webhooks_delivered(
                         "message.created", "b #>> '{data,chat,interactive_reply,response_json,"
                                            "flow_token}' = 'booking-7'"),
                     1);
    assert_int_equal(meta_world_webhooks_delivered("message.created",
                                                   "b #> '{data,chat}' ? 'referral'"),
                     1);
    assert_int_equal(meta_world_webhooks_delivered("message.created",
                                                   "b #> '{data,chat}' ? 'interactive_reply'"),
                     2);

    /* the CRM reads them with the message (GET /v1/messages/{id}) */
    json_t *doc = message_read("wamid.kept.ad");
    assert_string_equal(json_string_value(json_object_get(json_object_get(doc, "referral"),
                                                          "ctwa_clid")),
                        "Aff-n8ZTODiE79d22KtAwQKj9e_mIEOOj27vDVwFjN80dp4_0N");
    assert_true(json_is_null(json_object_get(doc, "interactive_reply")));
    json_decref(doc);
    doc = message_read("wamid.kept.flow");
    json_t *reply = json_object_get(doc, "interactive_reply");
    assert_string_equal(json_string_value(json_object_get(reply, "type")), "nfm_reply");
    assert_string_equal(json_string_value(json_object_get(json_object_get(reply,
                                                                          "response_json"),
                                                          "flow_token")),
                        "booking-7");
    assert_true(json_is_null(json_object_get(doc, "referral")));
    json_decref(doc);
}

#define AD_USER "6281298765101"
#define PLAIN_USER "6281298765102"

/* Meta's free entry point (issue 53, META.md §12.9.1): a customer who came
 * from a click-to-WhatsApp ad, answered within 24 hours, is not charged
 * for the business's messages of the next 72 hours; the Graph test server
 * prices them so (graph_entry_points.c), and usage counts them apart from
 * the free customer-service replies of a customer who wrote plainly; a
 * template to someone who never wrote is paid. The backbone computes no
 * price: it keeps Meta's. */
static void entry_point_replies_are_free(void **state)
{
    (void)state;
    meta_world_start("entry", META_WORLD_PACED, NULL);
    long long now = (long long)time(NULL);
    meta_world_user_writes(AD_USER, "wamid.entry.ad", now - 7200,
                           "\"type\":\"text\",\"text\":{\"body\":\"Is this available?\"},"
                           "\"referral\":{\"source_url\":\"https://fb.me/3cr4Wqqkv\",\"source_id\":"
                           "\"120226305854810726\",\"source_type\":\"ad\",\"headline\":"
                           "\"Chat with us\",\"ctwa_clid\":\"Aff-entry-point-7\"}");
    meta_world_user_writes(PLAIN_USER, "wamid.entry.plain", now - 7200,
                           "\"type\":\"text\",\"text\":{\"body\":\"Halo\"}");
    agent_wait(fx, 2, 90, "SELECT count(*) FROM chats WHERE workspace_id = %lld AND wam_id LIKE "
                          "'wamid.entry.%%'", (long long)mw.ws);
    const char *users[] = {AD_USER, PLAIN_USER};
    for (int u = 0; u < 2; u++)
        for (int i = 0; i < 2; i++) {
            int64_t contact = agent_int(fx, "SELECT id FROM contacts WHERE workspace_id = %lld AND "
                                            "phone = '+%s'", (long long)mw.ws, users[u]);
            char idem[64], id[40];
            snprintf(idem, sizeof idem, "entry-%d-%d", u, i);
            meta_world_post_text(contact, "Yes, it is", idem, id);
        }
    meta_world_approved_template("new_arrivals", "MARKETING", "New arrivals this week");
    int64_t stranger = agent_contact(fx, mw.ws, "+6281298765103", "Tono");
    char fields[512], paid[BZ_UUID_STR_SIZE];
    snprintf(fields, sizeof fields,
             "\"contact_id\":%lld,\"whatsapp_account_id\":%lld,\"message_type\":\"template\","
             "\"template\":{\"name\":\"new_arrivals\",\"language\":\"id\"}",
             (long long)stranger, (long long)mw.account);
    meta_world_post_message(fields, "entry-paid-template", paid);
    agent_wait(fx, 5, 90, "SELECT coalesce(sum(delivered), 0) FROM message_usage_priced WHERE "
                          "workspace_id = %lld", (long long)mw.ws);
    assert_int_equal(agent_int(fx, "SELECT coalesce(sum(delivered), 0) FROM message_usage_priced "
                                   "WHERE workspace_id = %lld AND pricing_type = 'free_entry_point'",
                               (long long)mw.ws),
                     2);
    assert_int_equal(agent_int(fx, "SELECT coalesce(sum(delivered), 0) FROM message_usage_priced "
                                   "WHERE workspace_id = %lld AND pricing_type = "
                                   "'free_customer_service'",
                               (long long)mw.ws),
                     2);
    assert_int_equal(agent_int(fx, "SELECT coalesce(sum(delivered), 0) FROM message_usage_priced "
                                   "WHERE workspace_id = %lld AND pricing_type = 'regular' AND "
                                   "category = 'marketing'",
                               (long long)mw.ws),
                     1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(delivered_messages_counted_once_by_category,
                                        agent_test_setup, meta_world_teardown),
        cmocka_unit_test_setup_teardown(entry_point_replies_are_free, agent_test_setup,
                                        meta_world_teardown),
        cmocka_unit_test_setup_teardown(ad_referral_and_flow_answers_kept, agent_test_setup,
                                        meta_world_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
