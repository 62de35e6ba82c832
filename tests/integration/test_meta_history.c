/*
 * test_meta_history.c - the chat history of a number onboarded from the
 * WhatsApp Business app (issue 53, coexistence). Meta sends it with the
 * history webhook (its reference page: history[] chunks, each with
 * metadata.phase, chunk_order and progress, and threads[] of one
 * customer's messages, from the business's number or the customer's,
 * each with history_context.status; progress 100 once the sync is
 * complete; chunks "may not be delivered sequentially"). The test posts
 * three phases as Meta posts them, signed as Meta signs, over the real
 * chain (ingest's Meta edge, chat-sync, the webhook dispatcher,
 * PostgreSQL).
 *  - three_phases_make_one_completed_sync: phase 0, then phase 2 (progress
 *    100) before phase 1, then phase 0 again (Meta redelivers; ingest is
 *    restarted first, so that its duplicate window does not drop the
 *    repeat before chat-sync sees it), then a late second chunk of phase 1
 *    (keyed as the repeat: once it is stored, the repeat was applied).
 *    Every message is stored once under its customer's contact (a
 *    customer named in two phases is one contact), the business's own as
 *    outbound sent messages, a message the owner read already read; the
 *    account's sync is completed by phase 2's last batch, with the count of
 *    chats and Meta's 100; one sync.progress per batch reaches the CRM,
 *    none for the repeat. On a build that dead-letters the field no
 *    message arrives.
 *  - graph_server_shares_three_phases: the Graph test server's POST
 *    /_history plays the owner sharing the history of two customers; its
 *    three phases, as the server posts them, make one completed run of six
 *    synced chats, each customer's questions inbound and the owner's
 *    answers outbound.
 *  - declined_sharing_fails_the_run: Meta's history item with errors[]
 *    (the business turned history sharing off, code 2593109) fails the
 *    number's run with the reason, and the CRM gets sync.progress failed.
 *    Then the business shares after all, but the one thread of Meta's
 *    100% chunk names no valid phone: that batch is refused (a dead
 *    letter), and the chunk's own last batch completes the run all the
 *    same, the decline's error cleared.
 *  - username_customers_are_named_by_their_bsuid: Meta's BSUID page says
 *    the business-scoped user id fields appear wherever a user is named.
 *    A customer who wrote live by phone and BSUID, whose history thread
 *    names the BSUID alone (from_user_id on the customer's message,
 *    to_user_id on the owner's), gets the thread under the contact the
 *    live message made; a username customer never seen before becomes one
 *    contact by BSUID (its `phone` holding the BSUID, as SEEDS.md says, no
 *    phone being known); a thread by phone whose messages
 *    name a BSUID gives that contact its BSUID. Before, the BSUID thread
 *    was refused (no phone) and the phone's BSUID was dropped.
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
#include "itest_http.h"
#include "meta_world.h"

#define fx agent_test_fx
#define mw meta_test_world

#define BUSINESS "15550783881"
#define ANA "16505551234"
#define BUDI "16505550000"
#define CITRA "16505557777"
#define DAY (24LL * 3600)

/* One message of a thread, as Meta's history reference writes it: `to`
 * only on the business's own. */
static int message_json(char *out, size_t cap, const char *from, const char *to, const char *id,
                        long long ts, const char *body, const char *status)
{
    char to_field[64] = "";
    if (to)
        snprintf(to_field, sizeof to_field, "\"to\":\"%s\",", to);
    return snprintf(out, cap,
                    "{\"from\":\"%s\",%s\"id\":\"%s\",\"timestamp\":\"%lld\",\"type\":\"text\","
                    "\"text\":{\"body\":\"%s\"},\"history_context\":{\"status\":\"%s\"}}",
                    from, to_field, id, ts, body, status);
}

/* A history notification of one chunk whose threads are given as JSON. */
static void post_chunk(int phase, int chunk_order, int progress, const char *threads)
{
    char body[8192];
    snprintf(body, sizeof body,
             "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"%s\",\"changes\":"
             "[{\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{"
             "\"display_phone_number\":\"" BUSINESS "\",\"phone_number_id\":\"%s\"},"
             "\"history\":[{\"metadata\":{\"phase\":%d,\"chunk_order\":%d,\"progress\":%d},"
             "\"threads\":[%s]}]},\"field\":\"history\"}]}]}",
             mw.waba, mw.session, phase, chunk_order, progress, threads);
    meta_world_post_webhook(body);
}

static void post_phase_0(long long now)
{
    char asked[512], answered[512], threads[2048];
    message_json(answered, sizeof answered, BUSINESS, ANA, "wamid.h0.answer", now - 3500,
                 "Yes, in 3 days.", "READ");
    message_json(asked, sizeof asked, ANA, NULL, "wamid.h0.ask", now - 3600,
                 "Do you ship to Jakarta?", "READ");
    /* newest first, as Meta's samples list them */
    snprintf(threads, sizeof threads, "{\"id\":\"" ANA "\",\"messages\":[%s,%s]}", answered, asked);
    post_chunk(0, 1, 20, threads);
}

static void post_phase_1(long long now)
{
    char older[512], own[512], threads[2048];
    message_json(older, sizeof older, ANA, NULL, "wamid.h1.older", now - 40 * DAY,
                 "Is the blue one back?", "READ");
    message_json(own, sizeof own, BUSINESS, CITRA, "wamid.h1.own", now - 30 * DAY,
                 "Your invoice is ready.", "DELIVERED");
    snprintf(threads, sizeof threads,
             "{\"id\":\"" ANA "\",\"messages\":[%s]},{\"id\":\"" CITRA "\",\"messages\":[%s]}",
             older, own);
    post_chunk(1, 1, 60, threads);
}

/* A second chunk of phase 1 that Meta sent late, at 80% */
static void post_phase_1_late(long long now)
{
    char late[512], threads[1024];
    message_json(late, sizeof late, CITRA, NULL, "wamid.h1.late", now - 50 * DAY, "Thanks!",
                 "READ");
    snprintf(threads, sizeof threads, "{\"id\":\"" CITRA "\",\"messages\":[%s]}", late);
    post_chunk(1, 2, 80, threads);
}

static void post_phase_2(long long now)
{
    char unread[512], threads[1024];
    message_json(unread, sizeof unread, BUDI, NULL, "wamid.h2.unread", now - 120 * DAY,
                 "Hello?", "DELIVERED");
    snprintf(threads, sizeof threads, "{\"id\":\"" BUDI "\",\"messages\":[%s]}", unread);
    post_chunk(2, 1, 100, threads);
}

static int64_t stored(const char *wam_id, const char *cond)
{
    return agent_int(fx, "SELECT count(*) FROM chats WHERE whatsapp_account_id = %lld AND "
                         "wam_id = '%s' AND %s",
                     (long long)mw.account, wam_id, cond);
}

static void wait_stored(const char *wam_id)
{
    agent_wait(fx, 1, 90, "SELECT count(*) FROM chats WHERE whatsapp_account_id = %lld AND "
                          "wam_id = '%s'",
               (long long)mw.account, wam_id);
}

static int64_t contact_of(const char *phone)
{
    return agent_int(fx, "SELECT id FROM contacts WHERE workspace_id = %lld AND phone = '+%s' "
                         "AND deleted_at IS NULL",
                     (long long)mw.ws, phone);
}

static void three_phases_make_one_completed_sync(void **state)
{
    (void)state;
    meta_world_start("history", META_WORLD_PACED, NULL);
    agent_endpoint(fx, mw.ws, "/ok/history");
    agent_start_dispatcher(fx);
    long long now = (long long)time(NULL);

    post_phase_0(now);
    wait_stored("wamid.h0.answer");
    post_phase_2(now);
    agent_wait(fx, 1, 90, "SELECT count(*) FROM whatsapp_accounts WHERE id = %lld AND "
                          "metadata->>'sync_status' = 'completed'",
               (long long)mw.account);
    post_phase_1(now);
    wait_stored("wamid.h1.own");
    meta_world_restart_ingest();
    post_phase_0(now);
    post_phase_1_late(now);
    wait_stored("wamid.h1.late");

    /* each message once, under its customer; the business's outbound */
    int64_t ana = contact_of(ANA), budi = contact_of(BUDI), citra = contact_of(CITRA);
    assert_true(ana > 0 && budi > 0 && citra > 0);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM contacts WHERE workspace_id = %lld",
                               (long long)mw.ws),
                     3);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM chats WHERE whatsapp_account_id = %lld",
                               (long long)mw.account),
                     6);
    char cond[256];
    snprintf(cond, sizeof cond,
             "contact_id = %lld AND type = 'inbound' AND is_read AND chat_type = 'private' AND "
             "provider_type = 'meta' AND metadata->>'body' = 'Do you ship to Jakarta?'",
             (long long)ana);
    assert_int_equal(stored("wamid.h0.ask", cond), 1);
    snprintf(cond, sizeof cond,
             "contact_id = %lld AND type = 'outbound' AND message_status = 'sent' AND "
             "user_id IS NULL AND metadata->>'body' = 'Yes, in 3 days.'",
             (long long)ana);
    assert_int_equal(stored("wamid.h0.answer", cond), 1);
    snprintf(cond, sizeof cond, "contact_id = %lld AND type = 'inbound' AND is_read",
             (long long)ana);
    assert_int_equal(stored("wamid.h1.older", cond), 1);
    snprintf(cond, sizeof cond, "contact_id = %lld AND type = 'outbound'", (long long)citra);
    assert_int_equal(stored("wamid.h1.own", cond), 1);
    snprintf(cond, sizeof cond, "contact_id = %lld AND type = 'inbound' AND NOT is_read",
             (long long)budi);
    assert_int_equal(stored("wamid.h2.unread", cond), 1);

    snprintf(cond, sizeof cond, "contact_id = %lld AND type = 'inbound' AND is_read",
             (long long)citra);
    assert_int_equal(stored("wamid.h1.late", cond), 1);

    /* one completed run: five synced chats (Ana in two phases, Citra in
     * two chunks), Meta's 100 */
    char *sync = itest_pg_textf(fx->camp.pg, "SELECT concat_ws('|', metadata->>'sync_status', "
                                "metadata->>'synced_count', metadata->>'sync_progress', "
                                "metadata->>'sync_id', metadata->>'last_sync_at' IS NOT NULL) "
                                "FROM whatsapp_accounts WHERE id = %lld",
                                (long long)mw.account);
    char want[256];
    snprintf(want, sizeof want, "completed|5|100|meta-history:%s|t", mw.session);
    assert_string_equal(sync, want);
    free(sync);

    /* one sync.progress per batch reached the CRM, none for the repeat:
     * phase 0's, phase 2's and its last, phase 1's and its late chunk's;
     * phase 2's last batch completed the run, its data batch did not */
    meta_world_wait_webhooks("sync.progress", 5);
    assert_int_equal(meta_world_webhooks_delivered("sync.progress", "true"), 5);
    assert_int_equal(meta_world_webhooks_delivered("sync.progress",
                                                   "b #>> '{data,batch_index}' = '2000199' AND "
                                                   "b #>> '{data,sync_status}' = 'completed'"),
                     1);
    assert_int_equal(meta_world_webhooks_delivered("sync.progress",
                                                   "b #>> '{data,batch_index}' = '2000100' AND "
                                                   "b #>> '{data,sync_status}' = 'syncing'"),
                     1);
}

static void graph_server_shares_three_phases(void **state)
{
    (void)state;
    meta_world_start("history-graph", META_WORLD_PACED, NULL);
    char url[128], body[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/_history/%s", mw.graph.port, mw.waba);
    snprintf(body, sizeof body,
             "{\"phone_number_id\":\"%s\",\"display_phone_number\":\"" BUSINESS "\","
             "\"customers\":[\"" ANA "\",\"" BUDI "\"]}",
             mw.session);
    const char *headers[] = {"Content-Type: application/json", NULL};
    itest_http_reply reply;
    itest_http("POST", url, body, strlen(body), headers, 30000, &reply);
    if (reply.status != 200)
        fail_msg("the Graph test server's history answered %ld: %s", reply.status, reply.body);
    agent_wait(fx, 1, 90, "SELECT count(*) FROM whatsapp_accounts WHERE id = %lld AND "
                          "metadata->>'sync_status' = 'completed' AND "
                          "metadata->>'synced_count' = '6'",
               (long long)mw.account);
    agent_wait(fx, 12, 90, "SELECT count(*) FROM chats WHERE whatsapp_account_id = %lld",
               (long long)mw.account);
    const char *customers[] = {ANA, BUDI};
    for (int i = 0; i < 2; i++) {
        int64_t contact = contact_of(customers[i]);
        assert_int_equal(agent_int(fx, "SELECT count(*) FROM chats WHERE contact_id = %lld AND "
                                       "type = 'inbound' AND metadata->>'body' = "
                                       "'When do you open?'",
                                   (long long)contact),
                         3);
        assert_int_equal(agent_int(fx, "SELECT count(*) FROM chats WHERE contact_id = %lld AND "
                                       "type = 'outbound' AND metadata->>'body' = "
                                       "'We open at 9.'",
                                   (long long)contact),
                         3);
    }
}

static void declined_sharing_fails_the_run(void **state)
{
    (void)state;
    meta_world_start("history-declined", META_WORLD_PACED, NULL);
    agent_endpoint(fx, mw.ws, "/ok/declined");
    agent_start_dispatcher(fx);
    char body[2048];
    snprintf(body, sizeof body,
             "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"%s\",\"changes\":"
             "[{\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{"
             "\"display_phone_number\":\"" BUSINESS "\",\"phone_number_id\":\"%s\"},"
             "\"history\":[{\"errors\":[{\"code\":2593109,\"title\":\"History sync is turned "
             "off by the business from the WhatsApp Business app\",\"message\":\"History sync "
             "is turned off by the business from the WhatsApp Business app\",\"error_data\":{"
             "\"details\":\"History sync is turned off by the business from the WhatsApp "
             "Business app\"}}]}]},\"field\":\"history\"}]}]}",
             mw.waba, mw.session);
    meta_world_post_webhook(body);
    agent_wait(fx, 1, 90, "SELECT count(*) FROM whatsapp_accounts WHERE id = %lld AND "
                          "metadata->>'sync_status' = 'failed' AND metadata->>'sync_error' = "
                          "'History sync is turned off by the business from the WhatsApp "
                          "Business app (2593109)'",
               (long long)mw.account);
    meta_world_wait_webhooks("sync.progress", 1);
    assert_int_equal(meta_world_webhooks_delivered("sync.progress",
                                                   "b #>> '{data,sync_status}' = 'failed'"),
                     1);

    int dead_letters = agent_dead_letter_count(fx);
    char bad[512], threads[1024];
    message_json(bad, sizeof bad, "12", NULL, "wamid.h.bad", (long long)time(NULL) - 3600, "?",
                 "READ");
    snprintf(threads, sizeof threads, "{\"id\":\"12\",\"messages\":[%s]}", bad);
    post_chunk(2, 1, 100, threads);
    agent_wait(fx, 1, 90, "SELECT count(*) FROM whatsapp_accounts WHERE id = %lld AND "
                          "metadata->>'sync_status' = 'completed' AND "
                          "metadata->>'sync_error' IS NULL",
               (long long)mw.account);
    assert_int_equal(agent_dead_letter_count(fx), dead_letters + 1);
}

#define DEWI "16505552222"
#define DEWI_BSUID "ID.8120000000000000001"
#define EKO "16505553333"
#define EKO_BSUID "ID.8120000000000000002"
#define FITRI_BSUID "ID.8120000000000000003"

/* A thread message naming people by BSUID: from_user_id on a customer's,
 * to_user_id on the owner's, and `from` only where a phone is shown. */
static int bsuid_message_json(char *out, size_t cap, const char *from, const char *from_user_id,
                              const char *to_user_id, const char *id, long long ts,
                              const char *body)
{
    char who[160] = "";
    size_t n = 0;
    if (from)
        n += (size_t)snprintf(who + n, sizeof who - n, "\"from\":\"%s\",", from);
    if (from_user_id)
        n += (size_t)snprintf(who + n, sizeof who - n, "\"from_user_id\":\"%s\",", from_user_id);
    if (to_user_id)
        snprintf(who + n, sizeof who - n, "\"to_user_id\":\"%s\",", to_user_id);
    return snprintf(out, cap,
                    "{%s\"id\":\"%s\",\"timestamp\":\"%lld\",\"type\":\"text\","
                    "\"text\":{\"body\":\"%s\"},\"history_context\":{\"status\":\"READ\"}}",
                    who, id, ts, body);
}

static void username_customers_are_named_by_their_bsuid(void **state)
{
    (void)state;
    meta_world_start("history-bsuid", META_WORLD_PACED, NULL);
    long long now = (long long)time(NULL);
    char live[1024];
    snprintf(live, sizeof live,
             "\"contacts\":[{\"profile\":{\"name\":\"Dewi\"},\"wa_id\":\"" DEWI "\","
             "\"user_id\":\"" DEWI_BSUID "\"}],\"messages\":[{\"from\":\"" DEWI "\","
             "\"from_user_id\":\"" DEWI_BSUID "\",\"id\":\"wamid.hb.live\","
             "\"timestamp\":\"%lld\",\"type\":\"text\",\"text\":{\"body\":\"Hi again\"}}]",
             now - 60);
    meta_world_post_change("messages", live);
    wait_stored("wamid.hb.live");
    int64_t dewi = contact_of(DEWI);
    assert_true(dewi > 0);

    char dewi_asks[512], dewi_answer[512], fitri_asks[512], eko_asks[512], threads[4096];
    bsuid_message_json(dewi_asks, sizeof dewi_asks, NULL, DEWI_BSUID, NULL, "wamid.hb.dewi.ask",
                       now - 7200, "Is it waterproof?");
    bsuid_message_json(dewi_answer, sizeof dewi_answer, BUSINESS, NULL, DEWI_BSUID,
                       "wamid.hb.dewi.answer", now - 7100, "Yes.");
    bsuid_message_json(fitri_asks, sizeof fitri_asks, NULL, FITRI_BSUID, NULL,
                       "wamid.hb.fitri.ask", now - 7000, "Do you deliver?");
    bsuid_message_json(eko_asks, sizeof eko_asks, EKO, EKO_BSUID, NULL, "wamid.hb.eko.ask",
                       now - 6900, "Price list please");
    snprintf(threads, sizeof threads,
             "{\"id\":\"" DEWI_BSUID "\",\"messages\":[%s,%s]},"
             "{\"id\":\"" FITRI_BSUID "\",\"messages\":[%s]},"
             "{\"id\":\"" EKO "\",\"messages\":[%s]}",
             dewi_answer, dewi_asks, fitri_asks, eko_asks);
    post_chunk(0, 1, 100, threads);
    agent_wait(fx, 1, 90, "SELECT count(*) FROM whatsapp_accounts WHERE id = %lld AND "
                          "metadata->>'sync_status' = 'completed'",
               (long long)mw.account);
    wait_stored("wamid.hb.eko.ask");

    char cond[256];
    snprintf(cond, sizeof cond, "contact_id = %lld AND type = 'inbound'", (long long)dewi);
    assert_int_equal(stored("wamid.hb.dewi.ask", cond), 1);
    snprintf(cond, sizeof cond, "contact_id = %lld AND type = 'outbound'", (long long)dewi);
    assert_int_equal(stored("wamid.hb.dewi.answer", cond), 1);
    int64_t fitri = agent_int(fx, "SELECT id FROM contacts WHERE workspace_id = %lld AND "
                                  "bsuid = '" FITRI_BSUID "' AND phone = bsuid",
                              (long long)mw.ws);
    assert_true(fitri > 0);
    snprintf(cond, sizeof cond, "contact_id = %lld AND type = 'inbound'", (long long)fitri);
    assert_int_equal(stored("wamid.hb.fitri.ask", cond), 1);
    int64_t eko = agent_int(fx, "SELECT id FROM contacts WHERE workspace_id = %lld AND "
                                "phone = '+" EKO "' AND bsuid = '" EKO_BSUID "'",
                            (long long)mw.ws);
    assert_true(eko > 0);
    snprintf(cond, sizeof cond, "contact_id = %lld AND type = 'inbound'", (long long)eko);
    assert_int_equal(stored("wamid.hb.eko.ask", cond), 1);
    /* Dewi, Fitri and Eko: one contact each */
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM contacts WHERE workspace_id = %lld",
                               (long long)mw.ws),
                     3);
    assert_int_equal(agent_dead_letter_count(fx), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(three_phases_make_one_completed_sync, agent_test_setup,
                                        meta_world_teardown),
        cmocka_unit_test_setup_teardown(graph_server_shares_three_phases, agent_test_setup,
                                        meta_world_teardown),
        cmocka_unit_test_setup_teardown(declined_sharing_fails_the_run, agent_test_setup,
                                        meta_world_teardown),
        cmocka_unit_test_setup_teardown(username_customers_are_named_by_their_bsuid,
                                        agent_test_setup, meta_world_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
