/*
 * test_meta_groups.c - a Meta Cloud API group conversation (issue 50,
 * group participants' ids; issue 53, groups), over the real chain
 * (ingest's Meta edge, chat-sync, PostgreSQL).
 *  - group_messages_are_the_groups: Meta's group messages webhook, signed
 *    as Meta signs it: a text from a participant known by phone (the
 *    reference's sample: `from`, contacts[].wa_id, group_id), the same
 *    notification again (Meta redelivers), and a text from a username
 *    participant (from_user_id and contacts[].user_id, no phone). Each
 *    message is stored once, under one whatsapp_groups row keyed by
 *    Meta's group_id, with its author's phone or BSUID and name on the
 *    row; the participants become no contact and no private chat;
 *    nothing is dead-lettered; the CRM gets one message.created each,
 *    naming the group.
 *  - members_join_and_leave: Meta's group_participants_update webhooks as
 *    its Groups API webhook reference and its business-scoped user ids
 *    page print them: a member joins by invite link (phone and BSUID),
 *    the same notification again, a username member joins (BSUID only, a
 *    number for its timestamp as one of Meta's samples has), two join
 *    requests (one withdrawn, the other's person let in later), the
 *    business removes the username member by the BSUID it
 *    gave (another member's removal failing beside it), the first member
 *    leaves, then, late (Meta redelivers what it got no 200 for), a third
 *    member's join older than those changes and the first member's join
 *    again, older than its leave, and a removal that failed for every
 *    member; the group was created before (a subject, an invite link) and
 *    is renamed (its description not set), suspended by Meta and cleared,
 *    and deleted after. The late
 *    member is then the group's one member (a late join
 *    of another is not lost to newer changes, a member's own older one
 *    is); each join, removal and leave is one group.updated naming the
 *    member (its BSUID too), the repeats and the failed removal none; each
 *    join request and its withdrawal too, naming the request, none left
 *    pending; nothing is a dead letter; the group keeps the new name, the
 *    invite code and when the number left it (its deletion), no suspension
 *    any more, each change one group.updated too.
 *  - an_agents_message_goes_to_the_group: POST /v1/messages naming the
 *    group is sent to Meta as its group messaging page says (recipient_type
 *    group, the group id as to), once; Meta's statuses naming the group
 *    (the page's sent and failed) end the rows failed and sent.
 * The payloads follow Meta's group messages webhook reference, its Groups
 * API webhooks page and its business-scoped user ids page, not the
 * backbone's code; the Graph test server posts them (its /_inbound and
 * /_group), signed as Meta signs, and refuses an item its field does not
 * have. Every wait polls
 * PostgreSQL with a deadline.
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

#define GROUP_ID "Y2FwaV9ncm91cDoxNzA1NTU1MDEzOToxMjAzNjM0MDQ2OTQyMzM4MjAZD"
#define PHONE "16505551234"
#define BSUID "US.13491208655302741918"
#define USERNAME_BSUID "US.71825466016913376013"
#define LATE "16505553333"

/* Meta's group messages webhook, as the Graph test server plays a user
 * writing (its /_inbound): one text to the group from a participant
 * named in the message by sender_ids ("from" and/or "from_user_id") and in
 * its contacts[] entry by contact_ids ("wa_id" and/or "user_id"), with the
 * profile name `name`. */
static void post_group_text(const char *sender_ids, const char *contact_ids, const char *name,
                            const char *wamid, const char *text)
{
    char value[3072];
    snprintf(value, sizeof value,
             "{\"messaging_product\":\"whatsapp\",\"metadata\":{\"display_phone_number\":"
             "\"15550783881\",\"phone_number_id\":\"%s\"},"
             "\"contacts\":[{\"profile\":{\"name\":\"%s\"},%s}],"
             "\"messages\":[{%s,\"group_id\":\"" GROUP_ID "\",\"id\":\"%s\","
             "\"timestamp\":\"%lld\",\"text\":{\"body\":\"%s\"},\"type\":\"text\"}]}",
             mw.session, name, contact_ids, sender_ids, wamid, (long long)time(NULL), text);
    meta_world_graph_plays("_inbound", value);
}

/* The chats row of wamid as "group_jid|chat_type|contact|sender_phone|
 * sender_bsuid|sender_name". */
static char *stored(const char *wamid)
{
    return itest_pg_textf(
        fx->camp.pg,
        "SELECT concat_ws('|', g.group_jid, c.chat_type, coalesce(c.contact_id::text, 'none'), "
        "coalesce(c.metadata->>'sender_phone', ''), coalesce(c.metadata->>'sender_bsuid', ''), "
        "c.metadata->>'sender_name') FROM chats c JOIN whatsapp_groups g ON g.id = c.group_id "
        "WHERE c.whatsapp_account_id = %lld AND c.wam_id = '%s'",
        (long long)mw.account, wamid);
}

/* Meta's group webhook `field` of the world's number carrying one
 * groups[] item: the group, its type, timestamp (JSON text: Meta quotes
 * it in some samples and not in others) and other members, as the Graph
 * test server plays it (its /_group). */
static void post_group_field(const char *field, const char *type, const char *timestamp,
                             const char *members)
{
    char body[3072];
    snprintf(body, sizeof body,
             "{\"phone_number_id\":\"%s\",\"display_phone_number\":\"15550783881\","
             "\"field\":\"%s\",\"groups\":[{\"timestamp\":%s,\"group_id\":\"" GROUP_ID "\","
             "\"type\":\"%s\",%s}]}",
             mw.session, field, timestamp, type, members);
    meta_world_graph_plays("_group", body);
}

static void post_participants(const char *type, const char *timestamp, const char *members)
{
    post_group_field("group_participants_update", type, timestamp, members);
}

static void members_join_and_leave(void **state)
{
    (void)state;
    meta_world_start("metamembers", META_WORLD_PACED, NULL);
    agent_endpoint(fx, mw.ws, "/ok/members");
    agent_start_dispatcher(fx);
    long long t = (long long)time(NULL) - 60;
    char at[32];
    snprintf(at, sizeof at, "\"%lld\"", t - 10);
    post_group_field("group_lifecycle_update", "group_create", at,
                     "\"request_id\":\"REQ0\",\"subject\":\"Customer support\","
                     "\"invite_link\":\"https://chat.whatsapp.com/LINK_ID\","
                     "\"join_approval_mode\":\"auto_approve\"");
    post_group_text("\"from\":\"+" PHONE "\"", "\"wa_id\":\"" PHONE "\"", "Sheena Nelson",
                    "wamid.members.1", "Welcome!");
    snprintf(at, sizeof at, "\"%lld\"", t);
    const char *joined = "\"reason\":\"invite_link\",\"added_participants\":[{\"wa_id\":\"" PHONE
                         "\",\"user_id\":\"" BSUID "\"}]";
    post_participants("group_participants_add", at, joined);
    post_participants("group_participants_add", at, joined);
    snprintf(at, sizeof at, "%lld", t + 1);
    post_participants("group_participants_add", at,
                      "\"reason\":\"invite_link\",\"added_participants\":[{\"user_id\":\""
                      USERNAME_BSUID "\",\"username\":\"budi\"}]");
    /* two ask to join: one withdraws, the other (the late member) is let in */
    snprintf(at, sizeof at, "\"%lld\"", t + 1);
    post_participants("group_join_request_created", at,
                      "\"join_request_id\":\"JR2\",\"wa_id\":\"" LATE "\"");
    snprintf(at, sizeof at, "\"%lld\"", t + 2);
    post_participants("group_join_request_created", at,
                      "\"join_request_id\":\"JR1\",\"wa_id\":\"16505550000\"");
    snprintf(at, sizeof at, "\"%lld\"", t + 3);
    post_participants("group_join_request_revoked", at,
                      "\"join_request_id\":\"JR1\",\"wa_id\":\"16505550000\"");
    post_participants("group_participants_remove", at,
                      "\"request_id\":\"REQ1\",\"removed_participants\":[{\"input\":\""
                      USERNAME_BSUID "\"}],\"failed_participants\":[{\"input\":\"16505559999\","
                      "\"errors\":[{\"code\":131000,\"message\":\"Something went wrong\","
                      "\"title\":\"Something went wrong\"}]}],\"initiated_by\":\"business\"");
    snprintf(at, sizeof at, "\"%lld\"", t + 4);
    post_participants("group_participants_remove", at,
                      "\"removed_participants\":[{\"wa_id\":\"" PHONE "\",\"user_id\":\"" BSUID
                      "\"}],\"initiated_by\":\"participant\"");
    /* delivered late (Meta redelivers what it got no 200 for): a third
     * member's join older than the changes above, and the first member's
     * join again, older than its leave */
    snprintf(at, sizeof at, "\"%lld\"", t + 2);
    post_participants("group_participants_add", at,
                      "\"reason\":\"invite_link\",\"added_participants\":[{\"wa_id\":\"" LATE
                      "\"}]");
    snprintf(at, sizeof at, "\"%lld\"", t);
    post_participants("group_participants_add", at, joined);
    snprintf(at, sizeof at, "\"%lld\"", t + 5);
    post_participants("group_participants_remove", at,
                      "\"request_id\":\"REQ2\","
                      "\"failed_participants\":[{\"input\":\"16505559999\"}],"
                      "\"errors\":[{\"code\":131000,\"title\":\"Something went wrong\"}],"
                      "\"initiated_by\":\"business\"");
    /* the business renames the group (its picture and description not set), then deletes it */
    snprintf(at, sizeof at, "\"%lld\"", t + 6);
    post_group_field("group_settings_update", "group_settings_update", at,
                     "\"request_id\":\"REQ3\",\"group_subject\":{\"text\":\"Support (EU)\","
                     "\"update_successful\":true},\"group_description\":{\"text\":\"Ask us\","
                     "\"update_successful\":false,\"errors\":[{\"code\":131000,"
                     "\"title\":\"Something went wrong\"}]}");
    /* Meta suspends the group, then clears the suspension */
    snprintf(at, sizeof at, "\"%lld\"", t + 7);
    post_group_field("group_status_update", "group_suspend", at, "\"status\":\"suspended\"");
    snprintf(at, sizeof at, "\"%lld\"", t + 8);
    post_group_field("group_status_update", "group_suspend_cleared", at,
                     "\"status\":\"suspend_cleared\"");
    snprintf(at, sizeof at, "\"%lld\"", t + 9);
    post_group_field("group_lifecycle_update", "group_delete", at, "\"request_id\":\"REQ4\"");

    /* every change applied: made, three joins, two join requests and a
     * withdrawal, a removal, a leave, renamed, suspended, cleared, deleted */
    agent_wait(fx, 13, 90, "SELECT count(*) FROM webhook_retry_queue WHERE workspace_id = %lld AND "
                          "event_type = 'group.updated' AND status = 'success'",
               (long long)mw.ws);
    itest_assert_text("+" LATE,
                      itest_pg_textf(fx->camp.pg,
                                     "SELECT string_agg(m->>'phone', ',') FROM whatsapp_groups g, "
                                     "jsonb_array_elements(g.participants) m "
                                     "WHERE g.workspace_id = %lld AND g.group_jid = '%s'",
                                     (long long)mw.ws, GROUP_ID));
    assert_int_equal(
        meta_world_webhooks_delivered(
            "group.updated", "b #>> '{data,change,action}' = 'participants_added' AND "
                             "b #>> '{data,change,participants,0,phone}' = '+" PHONE "' AND "
                             "b #>> '{data,change,participants,0,bsuid}' = '" BSUID "'"),
        1);
    assert_int_equal(
        meta_world_webhooks_delivered(
            "group.updated", "b #>> '{data,change,action}' = 'participants_added' AND "
                             "b #> '{data,change,participants,0,phone}' = 'null' AND "
                             "b #>> '{data,change,participants,0,bsuid}' = '" USERNAME_BSUID "'"),
        1);
    assert_int_equal(
        meta_world_webhooks_delivered(
            "group.updated", "b #>> '{data,change,action}' = 'participants_removed' AND "
                             "b #>> '{data,change,participants,0,bsuid}' = '" USERNAME_BSUID "'"),
        1);
    assert_int_equal(
        meta_world_webhooks_delivered(
            "group.updated", "b #>> '{data,change,action}' = 'participants_removed' AND "
                             "b #>> '{data,change,actor_phone}' = '+" PHONE "'"),
        1);
    assert_int_equal(meta_world_webhooks_delivered("group.updated", "true"), 13);
    assert_int_equal(
        meta_world_webhooks_delivered(
            "group.updated", "b #>> '{data,change,action}' IN ('join_requested', "
                             "'join_request_revoked') AND "
                             "b #>> '{data,change,join_request_id}' = 'JR1' AND "
                             "b #>> '{data,change,participants,0,phone}' = '+16505550000'"),
        2);
    assert_int_equal(
        meta_world_webhooks_delivered(
            "group.updated", "b #>> '{data,change,action}' IN ('suspended', "
                             "'suspension_cleared') AND "
                             "b #> '{data,change,changed}' = '[\"suspended\"]'"),
        2);
    itest_assert_text("Support (EU)|LINK_ID||t|f|{}",
                      itest_pg_textf(fx->camp.pg,
                                     "SELECT concat_ws('|', name, invite_code, "
                                     "coalesce(description, ''), "
                                     "group_metadata ? 'left_at', "
                                     "group_metadata ? 'suspended_at', "
                                     "group_metadata -> 'join_requests') FROM whatsapp_groups "
                                     "WHERE workspace_id = %lld AND group_jid = '%s'",
                                     (long long)mw.ws, GROUP_ID));
    assert_int_equal(
        meta_world_webhooks_delivered("group.updated",
                                      "b #>> '{data,change,action}' IN ('created', 'left')"),
        2);
    /* nothing refused */
    assert_int_equal(agent_dead_letter_count(fx), 0);
    /* the server plays only what Meta's reference lists for a field: a
     * join is no group_status_update */
    char url[160], body[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/_group/%s", mw.graph.port, mw.waba);
    snprintf(body, sizeof body,
             "{\"phone_number_id\":\"%s\",\"field\":\"group_status_update\",\"groups\":"
             "[{\"timestamp\":\"%lld\",\"group_id\":\"" GROUP_ID "\",\"type\":"
             "\"group_participants_add\"}]}",
             mw.session, t + 10);
    const char *headers[] = {"Content-Type: application/json", NULL};
    itest_http_reply reply;
    itest_http("POST", url, body, strlen(body), headers, 30000, &reply);
    assert_int_equal(reply.status, 400);
}

static void group_messages_are_the_groups(void **state)
{
    (void)state;
    meta_world_start("metagroup", META_WORLD_PACED, NULL);
    agent_endpoint(fx, mw.ws, "/ok/groups");
    agent_start_dispatcher(fx);
    post_group_text("\"from\":\"+" PHONE "\"", "\"wa_id\":\"" PHONE "\"", "Sheena Nelson",
                    "wamid.group.1", "What do you all think about this?");
    post_group_text("\"from\":\"+" PHONE "\"", "\"wa_id\":\"" PHONE "\"", "Sheena Nelson",
                    "wamid.group.1", "What do you all think about this?");
    post_group_text("\"from_user_id\":\"" BSUID "\"", "\"user_id\":\"" BSUID "\"", "Budi",
                    "wamid.group.2", "Sounds good to me");

    agent_wait(fx, 2, 90, "SELECT count(*) FROM chats WHERE whatsapp_account_id = %lld AND "
                          "wam_id IN ('wamid.group.1', 'wamid.group.2')",
               (long long)mw.account);
    /* one group, keyed by Meta's id, holding both and nothing else */
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM whatsapp_groups WHERE workspace_id = %lld",
                               (long long)mw.ws),
                     1);
    itest_assert_text(GROUP_ID "|group|none|+" PHONE "||Sheena Nelson", stored("wamid.group.1"));
    itest_assert_text(GROUP_ID "|group|none||" BSUID "|Budi", stored("wamid.group.2"));
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM chats WHERE whatsapp_account_id = %lld",
                               (long long)mw.account),
                     2);
    /* the participants are no contacts of the workspace */
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM contacts WHERE workspace_id = %lld",
                               (long long)mw.ws),
                     0);
    /* the CRM hears of each message once, as the group's */
    agent_wait(fx, 2, 60, "SELECT count(*) FROM webhook_retry_queue WHERE workspace_id = %lld AND "
                          "event_type = 'message.created' AND status = 'success'",
               (long long)mw.ws);
    assert_int_equal(meta_world_webhooks_delivered(
                         "message.created", "b #>> '{data,group,group_jid}' = '" GROUP_ID "' AND "
                                            "b #>> '{data,chat,chat_type}' = 'group' AND "
                                            "b #> '{data,contact}' = 'null'"),
                     2);
    assert_int_equal(agent_dead_letter_count(fx), 0);
}

/* An agent's message to the group goes to Meta as a group message (Meta's
 * group messaging page: recipient_type group, the group id as to), is
 * stored once as the group's, and is sent. Meta reports the first one
 * failed and the second sent, each status naming the group (the page's
 * examples): the first row ends failed with Meta's code, the second sent,
 * and no status is a dead letter. */
static void an_agents_message_goes_to_the_group(void **state)
{
    (void)state;
    const char *graph_args[] = {"--fail-status-to", GROUP_ID "=131026", NULL};
    meta_world_start("metagroupsend", META_WORLD_PACED, graph_args);
    post_group_text("\"from\":\"" PHONE "\"", "\"wa_id\":\"" PHONE "\"", "Sheena Nelson",
                    "wamid.gsend.in", "Is anyone there?");
    agent_wait(fx, 1, 60, "SELECT count(*) FROM whatsapp_groups WHERE workspace_id = %lld AND "
                          "group_jid = '" GROUP_ID "'", (long long)mw.ws);
    int64_t group = itest_pg_int64f(fx->camp.pg,
                                    "SELECT id FROM whatsapp_groups WHERE workspace_id = %lld AND "
                                    "group_jid = '" GROUP_ID "'", (long long)mw.ws);
    const char *bodies[] = {"We are here", "Still here"};
    char ids[2][40];
    for (int i = 0; i < 2; i++) {
        char fields[256], key[32];
        snprintf(fields, sizeof fields, "\"group_id\":%lld,\"body\":\"%s\"", (long long)group,
                 bodies[i]);
        snprintf(key, sizeof key, "gsend-%d", i);
        meta_world_post_message(fields, key, ids[i]);
        agent_wait(fx, 1, 60, "SELECT count(*) FROM chats WHERE uuid = '%s' AND chat_type = "
                              "'group' AND group_id = %lld AND wam_id LIKE 'wamid.%%'",
                   ids[i], (long long)group);
    }
    agent_wait(fx, 1, 60, "SELECT count(*) FROM chats WHERE uuid = '%s' AND message_status = "
                          "'failed' AND metadata->>'error_code' = '131026'", ids[0]);
    agent_wait(fx, 1, 60, "SELECT count(*) FROM chats WHERE uuid = '%s' AND message_status = "
                          "'sent'", ids[1]);
    size_t n;
    graph_body *b = graph_bodies(&n);
    int to_group = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *d = b[i].doc;
        if (strcmp(json_string_value(json_object_get(d, "to")), GROUP_ID) != 0)
            continue;
        assert_string_equal(json_string_value(json_object_get(d, "recipient_type")), "group");
        assert_null(json_object_get(d, "recipient"));
        assert_true(to_group < 2); /* one request a message */
        assert_string_equal(json_string_value(json_object_get(
                                json_object_get(d, "text"), "body")), bodies[to_group]);
        to_group++;
    }
    graph_bodies_free(b, n);
    assert_int_equal(to_group, 2);
    /* the group's messages, no contact made of the group or its members */
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM contacts WHERE workspace_id = %lld",
                               (long long)mw.ws),
                     0);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM chats WHERE workspace_id = %lld AND "
                                   "chat_type <> 'group'", (long long)mw.ws),
                     0);
    assert_int_equal(agent_dead_letter_count(fx), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(group_messages_are_the_groups, agent_test_setup,
                                        meta_world_teardown),
        cmocka_unit_test_setup_teardown(members_join_and_leave, agent_test_setup,
                                        meta_world_teardown),
        cmocka_unit_test_setup_teardown(an_agents_message_goes_to_the_group, agent_test_setup,
                                        meta_world_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
