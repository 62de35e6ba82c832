/*
 * test_meta_sender.c - Meta Cloud API accounts really send (issue 17,
 * ARCHITECTURE.md §12), over the whole real chain:
 *
 *   CRM POST /v1/messages, /v1/chats/read, or a campaign -> ingest ->
 *   chat-sync -> campaign-sender (send budget) -> wa.outbound ->
 *   blazz-meta-sender -> graph_test_server (the Cloud API on loopback) ->
 *   status webhooks (sent, delivered, read, with biz_opaque_callback_data)
 *   -> ingest's /v1/meta/webhook -> chat-sync -> the same chats row and
 *   campaign log. (Faults on the way: test_meta_sender_faults.)
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
 *  - token_expires_mid_campaign: the server stops accepting the token
 *    (190): the campaign pauses with reason token_invalid (counted in
 *    blazz_campaign_sender_campaigns_paused{reason="token_invalid"}, its
 *    sends queued in blazz_meta_sender_backlog), nothing is
 *    dead-lettered or lost; `blazzctl meta token` sets the new one (read
 *    from the environment, never argv); the campaign resumes by itself and
 *    finishes with exactly one message per contact;
 *  - preferred_provider_header_and_buttons: a campaign with
 *    preferred_provider meta, no account of its own, in a workspace whose
 *    primary account is webjs, goes out through the Meta account, its media
 *    header and buttons as an interactive message;
 *  - campaign_with_sent_webhooks_only / campaign_without_webhooks (issue
 *    31): Meta reports only `sent`, or nothing: the campaign completes
 *    with messages_sent exact all the same (meta-sender's echo stands for
 *    the log's sent, §12.1), an agent's row reaches sent; the held
 *    delivered and read are counted when the server posts them.
 * The world of each test is support/meta_world.c. Every wait polls
 * PostgreSQL or a file with a deadline.
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
#include "itest_http.h"
#include "meta_itest.h"
#include "meta_world.h"
#include "webhook_itest.h"

#define fx agent_test_fx
#define mw meta_test_world

/* ---- agents and reads -------------------------------------------------------------- */

static void agent_messages_and_mark_read(void **state)
{
    (void)state;
    meta_world_start("mt", "{}", NULL);
    int64_t contact = agent_contact(fx, mw.ws, "+6281300000001", "Ann");
    meta_world_contact_wrote(contact, 60 * 1000);
    char fields[512], text_id[BZ_UUID_STR_SIZE], reply_id[BZ_UUID_STR_SIZE],
        image_id[BZ_UUID_STR_SIZE];
    snprintf(fields, sizeof fields,
             "\"contact_id\":%lld,\"body\":\"Halo, lihat https://example.com\"",
             (long long)contact);
    meta_world_post_message(fields, "meta-text-1", text_id);
    agent_wait(fx, 1, 90,
               "SELECT count(*) FROM chats WHERE uuid = '%s' AND message_status = 'read' "
               "AND wam_id LIKE 'wamid.T%%' AND whatsapp_account_id = %lld",
               text_id, (long long)mw.account);
    char *wam = itest_pg_textf(fx->camp.pg, "SELECT wam_id FROM chats WHERE uuid = '%s'", text_id);
    snprintf(fields, sizeof fields,
             "\"contact_id\":%lld,\"body\":\"balasan\",\"reply_to_wam_id\":\"%s\"",
             (long long)contact, wam);
    meta_world_post_message(fields, "meta-reply-1", reply_id);
    snprintf(fields, sizeof fields,
             "\"contact_id\":%lld,\"message_type\":\"image\",\"media\":{\"url\":"
             "\"https://example.com/a.jpg\",\"mime_type\":\"image/jpeg\",\"caption\":\"foto\"}",
             (long long)contact);
    meta_world_post_message(fields, "meta-image-1", image_id);
    agent_wait(fx, 2, 90,
               "SELECT count(*) FROM chats WHERE uuid IN ('%s', '%s') AND message_status = "
               "'read' AND wam_id LIKE 'wamid.T%%'",
               reply_id, image_id);
    free(wam);
    assert_int_equal(meta_world_count_kind("text"), 2);
    assert_int_equal(meta_world_count_kind("image"), 1);
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
    for (int i = 0; i < 600 && meta_world_count_kind("read") < 1; i++)
        itest_sleep_ms(100);
    size_t n;
    graph_record *r = graph_records(&mw.graph, &n);
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
    /* inside the customer-service window as the backbone sees it, so the
     * messages reach Meta, which answers with the codes */
    meta_world_contact_wrote(closed, 60 * 1000);
    meta_world_contact_wrote(gone, 60 * 1000);
    char closed_id[BZ_UUID_STR_SIZE], gone_id[BZ_UUID_STR_SIZE];
    meta_world_post_text(closed, "halo", "meta-closed", closed_id);
    meta_world_post_text(gone, "halo", "meta-gone", gone_id);
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
    meta_world_audience_wrote(group, 60 * 1000);
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
    assert_int_equal(meta_world_count_kind("text"), 0);
}

/* ---- campaigns ----------------------------------------------------------------------- */

static void token_expires_mid_campaign(void **state)
{
    (void)state;
    meta_world_start("mk", META_WORLD_PACED, NULL);
    int n = 300;
    int64_t campaign = meta_world_start_campaign(n);
    for (int i = 0; i < 600 && meta_world_count_kind("text") < 100; i++)
        itest_sleep_ms(50);
    meta_world_write_tokens("token-two"); /* Meta now refuses token-one: 190 */
    agent_wait(fx, 1, 120,
               "SELECT count(*) FROM campaigns WHERE id = %lld AND status = 'paused' "
               "AND pause_reason LIKE 'token_invalid%%'",
               (long long)campaign);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM meta_credentials WHERE "
                                   "whatsapp_account_id = %lld AND status = 'invalid'",
                               (long long)mw.account),
                     1);
    /* operators see it: the campaign paused for Meta's reason, the sends
     * queued behind the refused token (the alerts BlazzCampaignPausedByMeta
     * and BlazzMetaSenderBacklog read these) */
    const char *paused = "blazz_campaign_sender_campaigns_paused{reason=\"token_invalid\"}";
    for (int i = 0; i < 300 && itest_metric(mw.camp_admin_port, paused) != 1; i++)
        itest_sleep_ms(100);
    assert_true(itest_metric(mw.camp_admin_port, paused) == 1);
    for (int i = 0; i < 300 && !(itest_metric(mw.meta_admin_port, "blazz_meta_sender_backlog") > 0);
         i++)
        itest_sleep_ms(100);
    assert_true(itest_metric(mw.meta_admin_port, "blazz_meta_sender_backlog") > 0);
    long before = meta_world_count_kind("text");
    assert_true(before < n);
    /* nothing failed, nothing dead-lettered: what was released waits */
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM campaign_logs WHERE campaign_id = %lld "
                                   "AND status = 'failed'",
                               (long long)campaign),
                     0);
    meta_world_set_token("token-two");
    camp_wait_status(&fx->camp, campaign, "completed", 300);
    for (int i = 0; i < 300 && itest_metric(mw.camp_admin_port, paused) != 0; i++)
        itest_sleep_ms(100);
    assert_true(itest_metric(mw.camp_admin_port, paused) == 0);
    assert_int_equal(meta_world_check_one_per_contact(campaign, n), 0);
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
    meta_world_audience_wrote(group, 60 * 1000); /* inside the window: free-form goes */
    int64_t campaign = camp_campaign(&fx->camp, mw.ws, group, 0, "Promo {{first_name}}", "draft",
                                     NULL);
    agent_int(fx, "UPDATE campaigns SET preferred_provider = 'meta', header_type = 'image', "
                  "header_media = 'https://example.com/p.jpg', buttons_data = "
                  "'[\"Ya\", {\"text\": \"Tidak\"}]' WHERE id = %lld RETURNING id",
              (long long)campaign);
    camp_command(&fx->camp, mw.ws, campaign, "start", "itest");
    camp_wait_status(&fx->camp, campaign, "completed", 120);
    assert_int_equal(meta_world_count_kind("interactive"), n);
    assert_int_equal(meta_world_check_one_per_contact(campaign, n), 0);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM campaign_logs WHERE campaign_id = %lld "
                                   "AND whatsapp_account_id = %lld",
                               (long long)campaign, (long long)webjs),
                     0);
}

/* ---- status webhooks that do not all come (issue 31, defect 1) ---------------------- */

static int64_t campaign_counter(int64_t campaign, const char *column)
{
    return agent_int(fx, "SELECT %s FROM campaigns WHERE id = %lld", column, (long long)campaign);
}

/* The phones come online: the server posts the status webhooks it held
 * back, and the campaign counts them. */
static void held_statuses_arrive(int64_t campaign, int n)
{
    kill(mw.graph.pid, SIGUSR1);
    agent_wait(fx, n, 120,
               "SELECT count(*) FROM campaign_logs WHERE campaign_id = %lld AND status = 'read'",
               (long long)campaign);
    assert_int_equal(campaign_counter(campaign, "messages_delivered"), n);
    assert_int_equal(campaign_counter(campaign, "messages_read"), n);
    assert_int_equal(campaign_counter(campaign, "messages_sent"), n);
    camp_assert_counters_exact(&fx->camp, campaign);
}

/* Meta reports `sent` only (the recipients' phones are off): the campaign
 * completes on what was sent; delivered and read count when they come. */
static void campaign_with_sent_webhooks_only(void **state)
{
    (void)state;
    const char *faults[] = {"--statuses", "sent", NULL};
    meta_world_start("m1", META_WORLD_PACED, faults);
    int n = 100;
    int64_t campaign = meta_world_start_campaign(n);
    meta_world_wait_completed(campaign, 120);
    assert_int_equal(campaign_counter(campaign, "messages_sent"), n);
    assert_int_equal(campaign_counter(campaign, "messages_delivered"), 0);
    camp_assert_counters_exact(&fx->camp, campaign);
    assert_int_equal(meta_world_check_one_per_contact(campaign, n), 0);
    held_statuses_arrive(campaign, n);
}

/* No status webhook at all: meta-sender's echo alone moves the campaign's
 * logs to sent (with Meta's wamid) and an agent's row to sent. */
static void campaign_without_webhooks(void **state)
{
    (void)state;
    const char *faults[] = {"--statuses", "none", NULL};
    meta_world_start("m0", META_WORLD_PACED, faults);
    int64_t contact = agent_contact(fx, mw.ws, "+6281300000001", "Ann");
    meta_world_contact_wrote(contact, 60 * 1000);
    char id[BZ_UUID_STR_SIZE];
    meta_world_post_text(contact, "halo", "meta-no-webhooks", id);
    int n = 100;
    int64_t campaign = meta_world_start_campaign(n);
    meta_world_wait_completed(campaign, 120);
    assert_int_equal(campaign_counter(campaign, "messages_sent"), n);
    assert_int_equal(campaign_counter(campaign, "messages_delivered"), 0);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM campaign_logs WHERE campaign_id = %lld "
                                   "AND status = 'sent' AND wam_id LIKE 'wamid.T%%'",
                               (long long)campaign),
                     n);
    camp_assert_counters_exact(&fx->camp, campaign);
    agent_wait(fx, 1, 60,
               "SELECT count(*) FROM chats WHERE uuid = '%s' AND message_status = 'sent' AND "
               "wam_id LIKE 'wamid.T%%'", id);
    held_statuses_arrive(campaign, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(agent_messages_and_mark_read, agent_test_setup,
                                        meta_world_teardown),
        cmocka_unit_test_setup_teardown(error_codes, agent_test_setup, meta_world_teardown),
        cmocka_unit_test_setup_teardown(token_expires_mid_campaign, agent_test_setup,
                                        meta_world_teardown),
        cmocka_unit_test_setup_teardown(preferred_provider_header_and_buttons, agent_test_setup,
                                        meta_world_teardown),
        cmocka_unit_test_setup_teardown(campaign_with_sent_webhooks_only, agent_test_setup,
                                        meta_world_teardown),
        cmocka_unit_test_setup_teardown(campaign_without_webhooks, agent_test_setup,
                                        meta_world_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
