/*
 * test_webjs_lid.c - a whatsapp-web.js person named by a LID and by a
 * phone is one contact (issue 50; decision 0010, "LIDs and merging").
 *
 * Real ingest and chat-sync under a unique prefix; a gateway's events are
 * produced to wa.inbound.raw as its HTTP edge writes them. Each test has
 * its own workspace and person:
 *  - lid_then_phone_then_mapping: a message from the LID alone, one from
 *    the phone alone (two contacts, as whatsapp-web.js gives no link), the
 *    LID's contact opted out, both in one audience and one campaign's
 *    pending logs, the LID's in another's; then the gateway's mapping, with chat-sync
 *    SIGKILLed right after it was produced and started again. One contact
 *    at the end, the phone's, holding both messages, the unread count of
 *    both, the LID and the LID contact's opt-out; the other soft-deleted
 *    naming it; the campaign that logged both skips the LID's log
 *    (merged), the other's log is the survivor's, the audience holds it
 *    once; one contact.merged on chat.events. The mapping produced
 *    again (a new event id) and a later message from the LID alone change
 *    nothing but that message, stored under the same contact; an agent's
 *    message addressed to the LID is stored under it too.
 *  - mapping_first: the mapping before any message, then the LID alone,
 *    then the phone: one contact from the start, no merge.
 *  - a message carrying both: the LID's contact completed with the phone.
 *  - lid_opt_out_skips_campaign_by_phone: Ann writes from the LID alone and
 *    sends STOP from it (the keyword path), then writes from the phone; the
 *    mapping merges the two. Bob writes from the phone, the mapping comes,
 *    then STOP from the LID alone. A campaign to both (found by phone) and
 *    Carl, run by campaign-sender and answered by the gateway simulator:
 *    Ann's and Bob's logs skipped as opted_out, nothing of theirs reaches
 *    the gateway, Carl's sent and read, the counters equal the logs.
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
#include "chat_sync_itest.h"
#include "core/clock.h"
#include "itest.h"

#define fx agent_test_fx

/* A text from the person: the LID and/or the phone ("" for none). */
static void message_from(const char *session, const char *wam, const char *lid,
                         const char *phone, int64_t ts)
{
    agent_inbound_from(fx, session, wam, phone, lid, "hello", ts);
}

/* The gateway learned that lid is phone. */
static void mapping(const char *session, const char *lid, const char *phone, int64_t ts)
{
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    env.occurred_at_ms = ts;
    env.session_id = (char *)session;
    Blazz__V1__ContactUpdate u = BLAZZ__V1__CONTACT_UPDATE__INIT;
    u.contact_phone = (char *)phone;
    u.contact_jid = (char *)lid;
    u.timestamp_ms = ts;
    Blazz__V1__InboundEvent ev = BLAZZ__V1__INBOUND_EVENT__INIT;
    ev.envelope = &env;
    ev.payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_CONTACT_UPDATE;
    ev.contact_update = &u;
    agent_inbound_event(fx, &ev);
}

/* The mapping, waited for until phone's contact in ws holds lid: the
 * mapping is keyed by the phone and a later event from the LID alone by
 * the LID, so without the wait chat-sync may apply them in either order
 * (decision 0010: ordering across the two keys is not promised). */
static void mapping_applied(const char *session, int64_t ws, const char *lid, const char *phone,
                            int64_t ts)
{
    mapping(session, lid, phone, ts);
    agent_wait(fx, 1, 60, "SELECT count(*) FROM contacts WHERE workspace_id = %lld AND "
                          "phone = '%s' AND lid = '%s' AND deleted_at IS NULL",
               (long long)ws, phone, lid);
}

/* The opt-out keyword from the LID alone. */
static void stop_from_lid(const char *session, const char *wam, const char *lid, int64_t ts)
{
    agent_inbound_from(fx, session, wam, "", lid, "STOP", ts);
}

static int64_t live_contacts(int64_t ws)
{
    return agent_int(fx, "SELECT count(*) FROM contacts WHERE workspace_id = %lld AND "
                         "deleted_at IS NULL", (long long)ws);
}

/* A workspace with one whatsapp-web.js account, its session's name into
 * session (cap 128), ingest and chat-sync running. */
static int64_t start_world(const char *tag, char *session)
{
    agent_fx_init(fx, tag);
    int64_t ws = camp_workspace(&fx->camp);
    char name[32];
    snprintf(name, sizeof name, "%s-a", tag);
    camp_account(&fx->camp, ws, name, 1, 100, "{}");
    snprintf(session, 128, "%s%s", name, fx->wh.prefix);
    agent_start_ingest(fx, NULL);
    agent_start_chat_sync(fx);
    return ws;
}

static void lid_then_phone_then_mapping(void **state)
{
    (void)state;
    char session[128];
    int64_t ws = start_world("lid", session);
    const char *lid = "190123456789012@lid", *phone = "+6281300000301";
    int64_t t = bz_wall_ms() - 60000;

    message_from(session, "LID-1", lid, "", t);
    message_from(session, "LID-2", "", phone, t + 1000);
    agent_wait(fx, 2, 60, "SELECT count(*) FROM chats WHERE workspace_id = %lld", (long long)ws);
    assert_int_equal(live_contacts(ws), 2);
    int64_t by_lid = agent_int(fx, "SELECT id FROM contacts WHERE workspace_id = %lld AND "
                                   "lid = '%s'", (long long)ws, lid);
    int64_t by_phone = agent_int(fx, "SELECT id FROM contacts WHERE workspace_id = %lld AND "
                                     "phone = '%s'", (long long)ws, phone);
    assert_true(by_lid != by_phone);
    /* an opt-out written from the LID's conversation; both contacts in one
     * audience, logged (pending) by one campaign, the LID's alone by another */
    agent_int(fx, "UPDATE contacts SET opted_out_at = now(), opt_out_source = 'keyword', "
                  "opt_out_keyword = 'STOP', opt_out_changed_at = now() WHERE id = %lld "
                  "RETURNING 1", (long long)by_lid);
    int64_t group = agent_int(fx, "INSERT INTO contact_groups (workspace_id, name) VALUES "
                                  "(%lld, 'both') RETURNING id", (long long)ws);
    agent_int(fx, "WITH m AS (INSERT INTO contact_group_members (workspace_id, "
                  "contact_group_id, contact_id) VALUES (%lld, %lld, %lld), (%lld, %lld, %lld) "
                  "RETURNING 1) SELECT count(*) FROM m", (long long)ws, (long long)group,
              (long long)by_lid, (long long)ws, (long long)group, (long long)by_phone);
    int64_t both = camp_campaign(&fx->camp, ws, group, 0, "hi", "draft", NULL);
    int64_t lid_only = camp_campaign(&fx->camp, ws, group, 0, "hi", "draft", NULL);
    agent_int(fx, "WITH l AS (INSERT INTO campaign_logs (workspace_id, campaign_id, contact_id) "
                  "VALUES (%lld, %lld, %lld), (%lld, %lld, %lld), (%lld, %lld, %lld) "
                  "RETURNING 1) SELECT count(*) FROM l", (long long)ws, (long long)both,
              (long long)by_lid, (long long)ws, (long long)both, (long long)by_phone,
              (long long)ws, (long long)lid_only, (long long)by_lid);

    mapping(session, lid, phone, t + 2000);
    agent_kill(&fx->chat_sync);
    agent_start_chat_sync(fx);
    agent_wait(fx, 1, 60, "SELECT count(*) FROM contacts WHERE workspace_id = %lld AND "
                          "deleted_at IS NULL", (long long)ws);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM chats WHERE contact_id = %lld",
                               (long long)by_phone), 2);
    assert_int_equal(agent_int(fx, "SELECT unread_messages FROM contacts WHERE id = %lld",
                               (long long)by_phone), 2);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM contacts WHERE id = %lld AND lid = '%s' "
                                   "AND phone = '%s' AND opted_out_at IS NOT NULL",
                               (long long)by_phone, lid, phone), 1);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM contacts WHERE id = %lld AND "
                                   "deleted_at IS NOT NULL AND metadata->>'merged_into' = "
                                   "(SELECT uuid::text FROM contacts WHERE id = %lld)",
                               (long long)by_lid, (long long)by_phone), 1);
    /* the campaign that logged both keeps the phone's log and skips the
     * LID's; the other's log moved; the audience holds the survivor once */
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM campaign_logs WHERE campaign_id = %lld "
                                   "AND contact_id = %lld AND status = 'skipped' AND "
                                   "skip_reason = 'merged'", (long long)both, (long long)by_lid),
                     1);
    assert_int_equal(agent_int(fx, "SELECT messages_skipped FROM campaigns WHERE id = %lld",
                               (long long)both), 1);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM campaign_logs WHERE campaign_id = %lld "
                                   "AND contact_id = %lld AND status = 'pending'",
                               (long long)lid_only, (long long)by_phone), 1);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM contact_group_members WHERE "
                                   "contact_group_id = %lld", (long long)group), 1);
    agent_wait(fx, 0, 60, "SELECT count(*) FROM outbox");

    /* the mapping again, the LID alone once more, then the phone: on the
     * mapping's key, so read after it */
    mapping(session, lid, phone, t + 3000);
    message_from(session, "LID-3", lid, "", t + 4000);
    message_from(session, "LID-4", "", phone, t + 5000);
    agent_wait(fx, 4, 60, "SELECT count(*) FROM chats WHERE contact_id = %lld",
               (long long)by_phone);
    agent_wait(fx, 0, 60, "SELECT count(*) FROM outbox");
    assert_int_equal(live_contacts(ws), 1);
    assert_int_equal(event_log_merges(fx->wh.prefix, ws), 1);

    /* an agent's message to the LID reaches the one contact */
    char *key = agent_api_key(fx, ws), resp[512], id[BZ_UUID_STR_SIZE];
    char req[256];
    snprintf(req, sizeof req, "{\"idempotency_key\":\"lid-1\",\"contact_jid\":\"%s\","
                              "\"body\":\"hi\"}", lid);
    long status = agent_post(fx, "/v1/messages", key, req, resp, sizeof resp, NULL, 0);
    free(key);
    if (status != 202)
        fail_msg("POST /v1/messages to %s answered %ld: %s", lid, status, resp);
    agent_message_id(resp, id);
    agent_wait(fx, 1, 60, "SELECT count(*) FROM chats WHERE uuid = '%s' AND contact_id = %lld",
               id, (long long)by_phone);
    agent_fx_finish(fx);
}

static void mapping_first(void **state)
{
    (void)state;
    char session[128];
    int64_t ws = start_world("lidm", session);
    const char *lid = "190123456789013@lid", *phone = "+6281300000302";
    const char *lid2 = "190123456789014@lid", *phone2 = "+6281300000303";
    int64_t t = bz_wall_ms() - 60000;

    mapping_applied(session, ws, lid, phone, t);
    message_from(session, "LIDM-1", lid, "", t + 1000);
    message_from(session, "LIDM-2", "", phone, t + 2000);
    /* another person: the LID first, then a message naming both */
    message_from(session, "LIDM-3", lid2, "", t + 3000);
    message_from(session, "LIDM-4", lid2, phone2, t + 4000);
    agent_wait(fx, 4, 60, "SELECT count(*) FROM chats WHERE workspace_id = %lld", (long long)ws);
    agent_wait(fx, 0, 60, "SELECT count(*) FROM outbox");
    assert_int_equal(live_contacts(ws), 2);
    assert_int_equal(agent_int(fx, "SELECT count(DISTINCT contact_id) FROM chats WHERE wam_id "
                                   "IN ('LIDM-1', 'LIDM-2')"), 1);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM contacts WHERE workspace_id = %lld AND "
                                   "lid = '%s' AND phone = '%s'", (long long)ws, lid2, phone2),
                     1);
    assert_int_equal(event_log_merges(fx->wh.prefix, ws), 0);
    agent_fx_finish(fx);
}

/* The live contact of phone in ws. */
static int64_t contact_by_phone(int64_t ws, const char *phone)
{
    return agent_int(fx, "SELECT id FROM contacts WHERE workspace_id = %lld AND phone = '%s' AND "
                         "deleted_at IS NULL", (long long)ws, phone);
}

/* A group of the three contacts, and a campaign to it from the account. */
static int64_t campaign_to(int64_t ws, int64_t a, int64_t b, int64_t c)
{
    int64_t group = agent_int(fx, "INSERT INTO contact_groups (workspace_id, name) VALUES "
                                  "(%lld, 'by phone') RETURNING id", (long long)ws);
    assert_int_equal(agent_int(fx, "WITH m AS (INSERT INTO contact_group_members (workspace_id, "
                                   "contact_group_id, contact_id) SELECT %lld, %lld, unnest("
                                   "ARRAY[%lld, %lld, %lld]::bigint[]) RETURNING 1) SELECT "
                                   "count(*) FROM m", (long long)ws, (long long)group,
                               (long long)a, (long long)b, (long long)c),
                     3);
    int64_t account = agent_int(fx, "SELECT id FROM whatsapp_accounts WHERE workspace_id = %lld",
                                (long long)ws);
    return camp_campaign(&fx->camp, ws, group, account, "Promo", "draft", NULL);
}

/* The person's log of the campaign was skipped as opted out and never
 * reached the gateway. */
static void assert_skipped_opted_out(int64_t campaign, int64_t contact, const char *who)
{
    char *log = itest_pg_textf(fx->camp.pg, "SELECT uuid || ' ' || status || ' ' || "
                                            "coalesce(skip_reason, '-') FROM campaign_logs WHERE "
                                            "campaign_id = %lld AND contact_id = %lld",
                               (long long)campaign, (long long)contact);
    char row[160], uuid[BZ_UUID_STR_SIZE];
    snprintf(row, sizeof row, "%s", log);
    free(log);
    const char *state = strchr(row, ' ');
    if (!state || strcmp(state, " skipped opted_out") != 0)
        fail_msg("%s's log of the campaign is %s, want skipped opted_out", who, row);
    snprintf(uuid, sizeof uuid, "%.*s", (int)(state - row), row);
    if (agent_sends_of(fx, uuid) != 0)
        fail_msg("%s's log %s reached the gateway", who, uuid);
}

/* Ann writes from the LID, opts out from it (before any mapping, so the
 * LID's own contact holds the opt-out), writes from the phone, and the
 * mapping merges the two. Returns the survivor, the phone's contact. */
static int64_t ann_opts_out_then_merges(const char *session, int64_t ws, int64_t t)
{
    const char *lid = "190123456789021@lid", *phone = "+6281300000311";
    message_from(session, "LIDO-A1", lid, "", t);
    stop_from_lid(session, "LIDO-A2", lid, t + 1000);
    message_from(session, "LIDO-A3", "", phone, t + 2000);
    agent_wait(fx, 3, 60, "SELECT count(*) FROM chats WHERE workspace_id = %lld", (long long)ws);
    int64_t by_lid = agent_int(fx, "SELECT id FROM contacts WHERE workspace_id = %lld AND "
                                   "lid = '%s' AND opted_out_at IS NOT NULL AND "
                                   "opt_out_keyword = 'STOP'", (long long)ws, lid);
    int64_t ann = contact_by_phone(ws, phone);
    assert_true(by_lid != 0 && by_lid != ann);
    mapping(session, lid, phone, t + 3000);
    agent_wait(fx, 1, 60, "SELECT count(*) FROM contacts WHERE id = %lld AND deleted_at IS NOT "
                          "NULL", (long long)by_lid);
    return ann;
}

/* Bob writes from the phone, the mapping comes, then STOP from the LID
 * alone, stored under the phone's contact. Returns it. */
static int64_t bob_merges_then_opts_out(const char *session, int64_t ws, int64_t t)
{
    const char *lid = "190123456789022@lid", *phone = "+6281300000312";
    message_from(session, "LIDO-B1", "", phone, t);
    mapping_applied(session, ws, lid, phone, t + 1000);
    stop_from_lid(session, "LIDO-B2", lid, t + 2000);
    agent_wait(fx, 2, 60, "SELECT count(*) FROM chats WHERE workspace_id = %lld AND wam_id IN "
                          "('LIDO-B1', 'LIDO-B2')", (long long)ws);
    int64_t bob = contact_by_phone(ws, phone);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM chats WHERE wam_id IN ('LIDO-B1', "
                                   "'LIDO-B2') AND contact_id = %lld", (long long)bob), 2);
    return bob;
}

/* Carl's message, read, was the only one the gateway was asked for; the
 * counters equal the logs. */
static void campaign_sent_only_to(int64_t campaign, int64_t carl, const char *session)
{
    agent_wait(fx, 1, 90, "SELECT messages_read FROM campaigns WHERE id = %lld",
               (long long)campaign);
    size_t n;
    agent_send *sends = agent_sends_of_session(fx, session, &n);
    char *carl_log = itest_pg_textf(fx->camp.pg, "SELECT uuid FROM campaign_logs WHERE "
                                                 "campaign_id = %lld AND contact_id = %lld",
                                    (long long)campaign, (long long)carl);
    assert_int_equal(n, 1);
    assert_string_equal(sends[0].key, carl_log);
    free(carl_log);
    free(sends);
    assert_int_equal(agent_int(fx, "SELECT messages_skipped FROM campaigns WHERE id = %lld",
                               (long long)campaign), 2);
    assert_int_equal(agent_int(fx, "SELECT messages_sent FROM campaigns WHERE id = %lld",
                               (long long)campaign), 1);
    camp_assert_counters_exact(&fx->camp, campaign);
}

static void lid_opt_out_skips_campaign_by_phone(void **state)
{
    (void)state;
    char session[128];
    int64_t ws = start_world("lido", session);
    camp_start_sender(&fx->camp, 0, NULL);
    agent_start_sim(fx);
    int64_t carl = agent_contact(fx, ws, "+6281300000313", "Carl");
    int64_t t = bz_wall_ms() - 60000;
    int64_t ann = ann_opts_out_then_merges(session, ws, t);
    int64_t bob = bob_merges_then_opts_out(session, ws, t + 10000);
    agent_wait(fx, 0, 60, "SELECT count(*) FROM outbox");
    assert_int_equal(live_contacts(ws), 3);

    int64_t campaign = campaign_to(ws, ann, bob, carl);
    camp_command(&fx->camp, ws, campaign, "start", "itest");
    camp_wait_status(&fx->camp, campaign, "completed", 90);
    agent_wait(fx, 1, 90, "SELECT count(*) FROM campaign_logs WHERE campaign_id = %lld AND "
                          "contact_id = %lld AND status = 'read'", (long long)campaign,
               (long long)carl);
    assert_skipped_opted_out(campaign, ann, "Ann");
    assert_skipped_opted_out(campaign, bob, "Bob");
    campaign_sent_only_to(campaign, carl, session);
    agent_fx_finish(fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(lid_then_phone_then_mapping, agent_test_setup,
                                        agent_test_teardown),
        cmocka_unit_test_setup_teardown(mapping_first, agent_test_setup, agent_test_teardown),
        cmocka_unit_test_setup_teardown(lid_opt_out_skips_campaign_by_phone, agent_test_setup,
                                        agent_test_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
