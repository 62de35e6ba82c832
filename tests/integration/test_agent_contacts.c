/*
 * test_agent_contacts.c - the CRM manages contacts over the API (issue
 * 54) on the real stack: ingest, chat-sync, campaign-sender, the webhook
 * dispatcher and the gateway simulator as real processes under a unique
 * topic prefix (support/agent_itest.h).
 *
 *  - contact_created_messaged_renamed_opted_out: a send to a phone nobody
 *    wrote from is 404 unknown_contact; POST /v1/contacts creates it (202,
 *    its phone normalized to E.164), by a BSUID too; a create of an
 *    existing one answers 200 with it, and nothing is stored twice; the
 *    same send is then accepted and reaches the gateway; PATCH renames
 *    it (the customer's next message, under a push name of its own,
 *    leaves that name) and opts it out (source 'api'), and a campaign to
 *    it and another contact skips it as opted_out; PATCH opts it back in;
 *    merged into another contact, its name wins over that one's push name
 *    and stays through the survivor's next message; each step's
 *    webhook (contact.updated, contact.opted_out, contact.opted_in) comes
 *    signed; malformed bodies, another workspace's contact and an unknown
 *    one are refused naming the field.
 * Every wait polls PostgreSQL with a deadline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent_itest.h"
#include "core/clock.h"
#include "itest.h"

#define fx agent_test_fx

#define ANN_PHONE "+6281300000201"
#define BOB_BSUID "US.13491208655302741977"

/* Webhooks of type for workspace ws queued and delivered whose body matches
 * cond (SQL on b, the body as jsonb): wait for want of them. */
static void wait_webhooks(int64_t ws, const char *type, const char *cond, int64_t want)
{
    agent_wait(fx, want, 90,
               "SELECT count(*) FROM webhook_retry_queue q, LATERAL (SELECT "
               "convert_from(q.payload, 'UTF8')::jsonb AS b) j WHERE q.workspace_id = %lld AND "
               "q.event_type = '%s' AND q.status = 'success' AND %s",
               (long long)ws, type, cond);
}

static int64_t ann_id(int64_t ws)
{
    return agent_int(fx, "SELECT id FROM contacts WHERE workspace_id = %lld AND phone = '%s' "
                         "AND deleted_at IS NULL",
                     (long long)ws, ANN_PHONE);
}

/* What a create and a change refuse, naming the request's own field. */
static void bad_requests(const char *key, int64_t ws, int64_t stranger)
{
    char path[96];
    agent_expect_refused(fx, "POST", "/v1/contacts", key, "{}", 400, "missing_field", "phone");
    agent_expect_refused(fx, "POST", "/v1/contacts", key, "{\"phone\":\"call-me\"}", 400,
                         "invalid_field", "phone");
    agent_expect_refused(fx, "POST", "/v1/contacts", key, "{\"bsuid\":\"us.1\"}", 400,
                         "invalid_field", "bsuid");
    agent_expect_refused(fx, "POST", "/v1/contacts", key,
                         "{\"phone\":\"" ANN_PHONE "\",\"nick\":\"A\"}", 400, "invalid_field",
                         "nick");
    agent_expect_refused(fx, "POST", "/v1/contacts", key, "{\"phone\":6281300000201}", 400,
                         "invalid_field", "phone");
    agent_expect_refused(fx, "POST", "/v1/contacts", key, "[1]", 400, "invalid_json", "body");
    snprintf(path, sizeof path, "/v1/contacts/%lld", (long long)ann_id(ws));
    agent_expect_refused(fx, "PATCH", path, key, "{}", 400, "missing_field", "name");
    agent_expect_refused(fx, "PATCH", path, key, "{\"opted_out\":\"yes\"}", 400,
                         "invalid_field", "opted_out");
    agent_expect_refused(fx, "PATCH", path, key, "{\"phone\":\"+6281300000299\"}", 400,
                         "invalid_field", "phone");
    snprintf(path, sizeof path, "/v1/contacts/%lld", (long long)stranger);
    agent_expect_refused(fx, "PATCH", path, key, "{\"name\":\"Eve\"}", 404, "unknown_contact",
                         "contact_id");
    agent_expect_refused(fx, "PATCH", "/v1/contacts/not-a-contact", key, "{\"name\":\"Eve\"}",
                         400, "invalid_field", "contact_id");
}

/* A campaign to Ann and Carl, run to the end: Ann skipped as opted out. */
static void campaign_skips_ann(int64_t ws, int64_t acct, int64_t ann, int64_t carl)
{
    int64_t group = agent_int(fx, "INSERT INTO contact_groups (workspace_id, name) VALUES "
                                  "(%lld, 'cw') RETURNING id",
                              (long long)ws);
    assert_int_equal(agent_int(fx, "WITH m AS (INSERT INTO contact_group_members (workspace_id, "
                                   "contact_group_id, contact_id) VALUES (%lld, %lld, %lld), "
                                   "(%lld, %lld, %lld) RETURNING 1) SELECT count(*) FROM m",
                               (long long)ws, (long long)group, (long long)ann, (long long)ws,
                               (long long)group, (long long)carl),
                     2);
    int64_t campaign = camp_campaign(&fx->camp, ws, group, acct, "Promo", "draft", NULL);
    camp_command(&fx->camp, ws, campaign, "start", "itest");
    camp_wait_status(&fx->camp, campaign, "completed", 90);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM campaign_logs WHERE campaign_id = %lld "
                                   "AND contact_id = %lld AND status = 'skipped' AND "
                                   "skip_reason = 'opted_out'",
                               (long long)campaign, (long long)ann),
                     1);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM campaign_logs WHERE campaign_id = %lld "
                                   "AND contact_id = %lld AND status <> 'skipped'",
                               (long long)campaign, (long long)carl),
                     1);
    assert_int_equal(agent_int(fx, "SELECT messages_skipped FROM campaigns WHERE id = %lld",
                               (long long)campaign),
                     1);
}

/* The contact writes from phone (message wam_id, under the push name
 * "Contact"): stored under it, it is still named "Ann Lee", as the CRM
 * named it. */
static void writes_and_keeps_the_crm_name(const char *session, const char *wam_id,
                                          const char *phone, int64_t contact)
{
    agent_inbound(fx, session, wam_id, phone, "halo", bz_wall_ms());
    agent_wait(fx, 1, 60, "SELECT count(*) FROM chats WHERE wam_id = '%s' AND contact_id = %lld",
               wam_id, (long long)contact);
    itest_assert_text("Ann Lee", itest_pg_textf(fx->camp.pg, "SELECT first_name FROM contacts "
                                                             "WHERE id = %lld",
                                                (long long)contact));
}

static void contact_created_messaged_renamed_opted_out(void **state)
{
    (void)state;
    agent_fx_init(fx, "cw");
    int64_t ws = camp_workspace(&fx->camp), other_ws = camp_workspace(&fx->camp);
    int64_t acct = camp_account(&fx->camp, ws, "cw-a", 1, 100, "{}");
    int64_t carl = agent_contact(fx, ws, "+6281300000202", "Carl");
    int64_t stranger = agent_contact(fx, other_ws, "+6281300000203", "Eve");
    char *key = agent_api_key(fx, ws);
    agent_endpoint(fx, ws, "/ok/contacts");
    agent_start_dispatcher(fx);
    agent_start_chat_sync(fx);
    camp_start_sender(&fx->camp, 0, NULL);
    agent_start_sim(fx);
    agent_start_ingest(fx, NULL);

    /* nobody wrote from Ann's phone: no contact to send to */
    const char *send = "{\"idempotency_key\":\"cw-1\",\"contact_phone\":\"" ANN_PHONE "\","
                       "\"body\":\"Halo Ann\"}";
    agent_expect_refused(fx, "POST", "/v1/messages", key, send, 404, "unknown_contact",
                         "contact_phone");

    /* created by bare digits, stored in E.164; by a BSUID alone */
    json_t *doc = agent_expect_answer(fx, "POST", "/v1/contacts", key,
                                      "{\"phone\":\"6281300000201\",\"name\":\"Ann\"}", 202);
    assert_string_equal(json_string_value(json_object_get(doc, "phone")), ANN_PHONE);
    assert_true(json_is_string(json_object_get(doc, "event_id")));
    json_decref(doc);
    json_decref(agent_expect_answer(fx, "POST", "/v1/contacts", key,
                                    "{\"bsuid\":\"" BOB_BSUID "\",\"name\":\"Bob\"}", 202));
    agent_wait(fx, 1, 60, "SELECT count(*) FROM contacts WHERE workspace_id = %lld AND phone = "
                          "'%s' AND first_name = 'Ann' AND source_type = 'manual' AND "
                          "opted_out_at IS NULL",
               (long long)ws, ANN_PHONE);
    agent_wait(fx, 1, 60, "SELECT count(*) FROM contacts WHERE workspace_id = %lld AND phone = "
                          "'%s' AND bsuid = '%s' AND first_name = 'Bob'",
               (long long)ws, BOB_BSUID, BOB_BSUID);
    int64_t ann = ann_id(ws);
    wait_webhooks(ws, "contact.updated",
                  "b #> '{data,change,changed}' = '[\"phone\", \"first_name\"]' AND "
                  "b #>> '{data,contact,phone}' = '" ANN_PHONE "'",
                  1);

    /* a create of an existing contact (by either identifier) answers it */
    doc = agent_expect_answer(fx, "POST", "/v1/contacts", key, "{\"phone\":\"" ANN_PHONE "\"}",
                              200);
    assert_int_equal(json_integer_value(json_object_get(doc, "contact_id")), ann);
    assert_string_equal(json_string_value(json_object_get(doc, "first_name")), "Ann");
    json_decref(doc);
    doc = agent_expect_answer(fx, "POST", "/v1/contacts", key, "{\"bsuid\":\"" BOB_BSUID "\"}",
                              200);
    assert_string_equal(json_string_value(json_object_get(doc, "bsuid")), BOB_BSUID);
    json_decref(doc);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM contacts WHERE workspace_id = %lld",
                               (long long)ws),
                     3);
    bad_requests(key, ws, stranger);

    /* the send refused before goes now */
    char id[BZ_UUID_STR_SIZE];
    doc = agent_expect_answer(fx, "POST", "/v1/messages", key, send, 202);
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(doc, "message_id")));
    json_decref(doc);
    agent_wait(fx, 1, 90, "SELECT count(*) FROM chats WHERE uuid = '%s' AND contact_id = %lld "
                          "AND message_status IN ('sent', 'delivered', 'read')",
               id, (long long)ann);
    assert_int_equal(agent_sends_of(fx, id), 1);

    /* renamed, by uuid; opted out, by id */
    char path[96];
    char *uuid = itest_pg_textf(fx->camp.pg, "SELECT uuid FROM contacts WHERE id = %lld",
                                (long long)ann);
    snprintf(path, sizeof path, "/v1/contacts/%s", uuid);
    doc = agent_expect_answer(fx, "PATCH", path, key, "{\"name\":\"Ann Lee\"}", 202);
    assert_int_equal(json_integer_value(json_object_get(doc, "contact_id")), ann);
    json_decref(doc);
    agent_wait(fx, 1, 60, "SELECT count(*) FROM contacts WHERE id = %lld AND first_name = "
                          "'Ann Lee'",
               (long long)ann);
    wait_webhooks(ws, "contact.updated",
                  "b #> '{data,change,changed}' = '[\"first_name\"]' AND "
                  "b #>> '{data,contact,name}' = 'Ann Lee'",
                  1);
    /* Ann writes, under a push name of her own: the CRM's name stays */
    char session[128];
    snprintf(session, sizeof session, "cw-a%s", fx->wh.prefix);
    writes_and_keeps_the_crm_name(session, "CW-IN-1", ANN_PHONE, ann);
    snprintf(path, sizeof path, "/v1/contacts/%lld", (long long)ann);
    json_decref(agent_expect_answer(fx, "PATCH", path, key, "{\"opted_out\":true}", 202));
    agent_wait(fx, 1, 60, "SELECT count(*) FROM contacts WHERE id = %lld AND opted_out_at IS "
                          "NOT NULL AND opt_out_source = 'api' AND opt_out_keyword IS NULL",
               (long long)ann);
    wait_webhooks(ws, "contact.opted_out", "b #>> '{data,opt_out,source}' = 'api'", 1);
    campaign_skips_ann(ws, acct, ann, carl);

    /* and back in */
    json_decref(agent_expect_answer(fx, "PATCH", path, key, "{\"opted_out\":false}", 202));
    agent_wait(fx, 1, 60, "SELECT count(*) FROM contacts WHERE id = %lld AND opted_out_at IS "
                          "NULL",
               (long long)ann);
    wait_webhooks(ws, "contact.opted_in", "b #>> '{data,opt_out,source}' = 'api'", 1);
    /* Ann is merged into Carl: the name the CRM gave her wins over Carl's,
     * and his messages' push names leave it */
    snprintf(path, sizeof path, "/v1/contacts/%lld/merge", (long long)carl);
    char merge[64];
    snprintf(merge, sizeof merge, "{\"merged_contact_id\":%lld}", (long long)ann);
    json_decref(agent_expect_answer(fx, "POST", path, key, merge, 202));
    agent_wait(fx, 1, 60, "SELECT count(*) FROM contacts WHERE id = %lld AND first_name = "
                          "'Ann Lee'",
               (long long)carl);
    writes_and_keeps_the_crm_name(session, "CW-IN-2", "+6281300000202", carl);
    /* the other workspace's contact was never touched */
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM contacts WHERE id = %lld AND "
                                   "first_name = 'Eve' AND opted_out_at IS NULL",
                               (long long)stranger),
                     1);
    free(uuid);
    free(key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(contact_created_messaged_renamed_opted_out,
                                        agent_test_setup, agent_test_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
