/*
 * test_meta_bsuid.c - a Meta username customer (issue 50; decision 0010):
 * Meta's documented webhooks for a user who adopted a WhatsApp username
 * carry a business-scoped user id (BSUID) and no phone, over the real
 * chain (ingest's Meta edge, chat-sync, PostgreSQL).
 *  - username_customer_is_one_contact: two text messages, an image and a
 *    reaction from the user (contacts[].user_id, profile.username,
 *    messages[].from_user_id; no wa_id, no from), a delivered status of a
 *    message sent to them (recipient_user_id, no recipient_id) and a
 *    message naming the phone beside the same BSUID: each message is
 *    stored once, all under one contact, which ends with the phone, the
 *    BSUID, the parent BSUID and the username; the reaction is on its
 *    target under the BSUID; one message.created each; the status is kept
 *    for its message (pending_receipts); nothing dead-lettered.
 *  - agent_reply_goes_by_bsuid: the username customer writes (BSUID only),
 *    which opens Meta's 24-hour window; an agent's POST /v1/messages by
 *    contact_id is released as a free-form reply and reaches the Graph test
 *    server addressed by `recipient` = the BSUID, with no `to` (Meta's
 *    BSUID page); its echo and the status webhooks (recipient_user_id)
 *    land on the agent's row under the same contact, which stays the only
 *    one.
 *  - template_campaign_goes_by_bsuid: a template campaign from the Meta
 *    account to a group holding the BSUID-only contact and a contact with a
 *    phone: the first goes by `recipient`, the second by `to`; the Graph
 *    test server knows both as Meta's users (--users), so the first's
 *    statuses name the BSUID alone (a username user, the phone withheld)
 *    and the second's the phone and a BSUID; both logs end read and are
 *    counted read, no contact is opened, nothing is dead-lettered.
 *  - identity_changes_keep_the_contact: Meta's system messages
 *    user_changed_number (the phone and the BSUID replaced) and then
 *    user_changed_user_id (the BSUID replaced, no phone named): after each,
 *    the same contacts row holds the new identifier and the customer's next
 *    message, from it, lands under that contact, with its history and its
 *    opt-out; the changes are stored as no message, each announced by a
 *    contact.updated, nothing is dead-lettered, and a redelivered change
 *    moves nothing back.
 *  - bad_identity_change_is_dead_lettered: a user_changed_number without
 *    the new number and a user_changed_user_id with a malformed BSUID are
 *    dead-lettered naming the field; the contact keeps its identifiers.
 *  - identity_conflict_is_resolved_by_the_crms_merge: the new number is
 *    another live contact's already: identity_conflict on chat.sync.dlq,
 *    both rows unchanged. POST /v1/contacts/{id}/merge refuses an unknown
 *    contact, the contact itself, another workspace's contact and a
 *    malformed body; then merges the new number's contact into the
 *    customer's (202), and `blazzctl dlq replay` of the dead letter moves
 *    the customer to the new number: one live contact, the customer's id,
 *    with the new number and BSUID and both messages, one contact.merged,
 *    the merged contact soft-deleted naming it; a second merge is 409. A
 *    username user (BSUID only) merged with a number's contact as the
 *    survivor takes the number.
 *  - meta_names_both_merges_two_contacts: a username user (BSUID only) and
 *    a number (no BSUID) are two contacts until a message names both (and
 *    is redelivered): the BSUID's contact is merged into the phone's, all
 *    messages under it once, one contact.merged, nothing dead-lettered.
 * The payloads follow Meta's business-scoped user ids page and its system
 * messages webhook reference, not the
 * backbone's code. Every wait polls PostgreSQL with a deadline.
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
#include "chat_sync_itest.h"
#include "itest.h"
#include "meta_world.h"

#define fx agent_test_fx
#define mw meta_test_world

#define BSUID "US.13491208655302741918"
#define PARENT "US.ENT.11815799212886844830"
#define PHONE "16505551234"
/* after the user changed number (which gives a new BSUID too), then BSUID */
#define NEW_PHONE "12195555358"
#define BSUID2 "US.22491208655302741919"
#define BSUID3 "US.33491208655302741920"

/* Meta's `messages` webhook of one message from the user known by bsuid,
 * of type with content (the type's JSON member): the "from" and "wa_id"
 * members only when phone is not NULL, the user ids only when bsuid is
 * not NULL. */
static void post_message_of(const char *phone, const char *bsuid, const char *wamid,
                            const char *type, const char *content)
{
    char wa_id[64] = "", from[64] = "", user[160] = "", from_user[160] = "", body[4096];
    if (phone) {
        snprintf(wa_id, sizeof wa_id, "\"wa_id\":\"%s\"%s", phone, bsuid ? "," : "");
        snprintf(from, sizeof from, "\"from\":\"%s\",", phone);
    }
    if (bsuid) {
        snprintf(user, sizeof user, "\"user_id\":\"%s\",\"parent_user_id\":\"" PARENT "\"",
                 bsuid);
        snprintf(from_user, sizeof from_user,
                 "\"from_user_id\":\"%s\",\"from_parent_user_id\":\"" PARENT "\",", bsuid);
    }
    snprintf(body, sizeof body,
             "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"%s\",\"changes\":"
             "[{\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\","
             "\"metadata\":{\"display_phone_number\":\"15550783881\",\"phone_number_id\":\"%s\"},"
             "\"contacts\":[{\"profile\":{\"name\":\"Sheena Nelson\",\"username\":\"@sheena\"},"
             "%s%s}],"
             "\"messages\":[{%s%s\"id\":\"%s\",\"timestamp\":\"%lld\",\"type\":\"%s\","
             "\"%s\":%s}]}}]}]}",
             mw.waba, mw.session, wa_id, user, from, from_user, wamid, (long long)time(NULL), type,
             type, content);
    meta_world_post_webhook(body);
}

static void post_text_of(const char *phone, const char *bsuid, const char *wamid,
                         const char *text)
{
    char content[512];
    snprintf(content, sizeof content, "{\"body\":\"%s\"}", text);
    post_message_of(phone, bsuid, wamid, "text", content);
}

static void post_text(const char *phone, const char *wamid, const char *text)
{
    post_text_of(phone, BSUID, wamid, text);
}

/* Meta's delivered status of wamid to the user, the phone withheld. */
static void post_status(const char *wamid)
{
    char body[2048];
    snprintf(body, sizeof body,
             "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"%s\",\"changes\":"
             "[{\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\","
             "\"metadata\":{\"display_phone_number\":\"15550783881\",\"phone_number_id\":\"%s\"},"
             "\"contacts\":[{\"profile\":{\"name\":\"Sheena Nelson\",\"username\":\"@sheena\"},"
             "\"user_id\":\"" BSUID "\"}],"
             "\"statuses\":[{\"id\":\"%s\",\"status\":\"delivered\",\"timestamp\":\"%lld\","
             "\"recipient_user_id\":\"" BSUID "\",\"recipient_parent_user_id\":\"" PARENT "\","
             "\"pricing\":{\"billable\":true,\"pricing_model\":\"PMP\",\"type\":\"regular\","
             "\"category\":\"utility\"}}]}}]}]}",
             mw.waba, mw.session, wamid, (long long)time(NULL));
    meta_world_post_webhook(body);
}

/* The messages of the world's account stored under contact. */
static int64_t messages_under(int64_t contact)
{
    return agent_int(fx, "SELECT count(*) FROM chats WHERE whatsapp_account_id = %lld AND "
                         "contact_id = %lld",
                     (long long)mw.account, (long long)contact);
}

static void username_customer_is_one_contact(void **state)
{
    (void)state;
    meta_world_start("bsuid", META_WORLD_PACED, NULL);
    post_text(NULL, "wamid.bsuid.1", "Hi, I am a username user");
    post_text(NULL, "wamid.bsuid.2", "Still me");
    post_message_of(NULL, BSUID, "wamid.bsuid.img", "image",
                    "{\"caption\":\"my receipt\",\"mime_type\":\"image/jpeg\",\"sha256\":"
                    "\"n9RbXJ8q8S4Y9f+u8mWqzXc4jH0mPjJXcM0mH7n1Lk8=\",\"id\":\"7199000001\"}");
    post_message_of(NULL, BSUID, "wamid.bsuid.react", "reaction",
                    "{\"message_id\":\"wamid.bsuid.1\",\"emoji\":\"\xf0\x9f\x91\x8d\"}");
    post_status("wamid.bsuid.sent");
    post_text(PHONE, "wamid.bsuid.3", "Now with my number");

    agent_wait(fx, 4, 90, "SELECT count(*) FROM chats WHERE whatsapp_account_id = %lld AND "
                          "wam_id IN ('wamid.bsuid.1', 'wamid.bsuid.2', 'wamid.bsuid.img', "
                          "'wamid.bsuid.3')",
               (long long)mw.account);
    /* the reaction is the customer's, on the message it names, keyed by the BSUID */
    agent_wait(fx, 1, 60, "SELECT count(*) FROM chats WHERE whatsapp_account_id = %lld AND "
                          "wam_id = 'wamid.bsuid.1' AND metadata->'reactions'->'" BSUID
                          "'->>'emoji' = '\xf0\x9f\x91\x8d'",
               (long long)mw.account);
    agent_wait(fx, 1, 60, "SELECT count(*) FROM pending_receipts WHERE whatsapp_account_id = "
                          "%lld AND wam_id = 'wamid.bsuid.sent' AND status = 'delivered'",
               (long long)mw.account);
    /* one contact: by the BSUID, by the phone, or by what stood for it */
    agent_wait(fx, 1, 30, "SELECT count(*) FROM contacts WHERE workspace_id = %lld AND "
                          "bsuid = '" BSUID "' AND phone = '+" PHONE "'",
               (long long)mw.ws);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM contacts WHERE workspace_id = %lld AND "
                                   "(bsuid = '" BSUID "' OR phone IN ('+" PHONE "', '" BSUID "'))",
                               (long long)mw.ws),
                     1);
    int64_t contact = agent_int(fx, "SELECT id FROM contacts WHERE workspace_id = %lld AND "
                                    "bsuid = '" BSUID "'",
                                (long long)mw.ws);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM contacts WHERE id = %lld AND "
                                   "parent_bsuid = '" PARENT "' AND username = '@sheena'",
                               (long long)contact),
                     1);
    /* each message once, all under that contact, each announced once */
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM chats WHERE whatsapp_account_id = %lld "
                                   "AND wam_id LIKE 'wamid.bsuid.%%' AND contact_id = %lld",
                               (long long)mw.account, (long long)contact),
                     4);
    assert_int_equal(agent_int(fx, "SELECT unread_messages FROM contacts WHERE id = %lld",
                               (long long)contact),
                     4);
    agent_wait(fx, 0, 60, "SELECT count(*) FROM outbox");
    event_log log = {0};
    event_log_read(fx->wh.prefix, EVENT_LOG_CHAT_EVENTS, mw.ws, &log);
    assert_int_equal(event_log_count(&log, K_CREATED), 4);
    assert_int_equal(event_log_distinct(&log, K_CREATED), 4);
    event_log_free(&log);
    assert_int_equal(agent_dead_letter_count(fx), 0);
}

/* The one accepted request whose text body (or template name) is `what`:
 * it must name exactly one addressee, `recipient` = want_bsuid (no `to`),
 * or `to` = want_phone (no `recipient`). */
static void assert_addressed(const char *member, const char *what, const char *want_bsuid,
                             const char *want_phone)
{
    size_t n, found = 0;
    graph_body *b = graph_bodies(&n);
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_object_get(b[i].doc, member);
        const char *v = json_string_value(json_object_get(m, strcmp(member, "text") == 0 ? "body"
                                                                                          : "name"));
        if (!v || strcmp(v, what) != 0)
            continue;
        found++;
        const char *to = json_string_value(json_object_get(b[i].doc, "to"));
        const char *recipient = json_string_value(json_object_get(b[i].doc, "recipient"));
        if (want_bsuid) {
            assert_null(to);
            assert_non_null(recipient);
            assert_string_equal(recipient, want_bsuid);
        } else {
            assert_null(recipient);
            assert_non_null(to);
            assert_string_equal(to, want_phone);
        }
    }
    graph_bodies_free(b, n);
    assert_int_equal(found, 1);
}

static int64_t bsuid_contact(void)
{
    agent_wait(fx, 1, 90, "SELECT count(*) FROM contacts WHERE workspace_id = %lld AND "
                          "bsuid = '" BSUID "' AND phone = '" BSUID "'",
               (long long)mw.ws);
    return agent_int(fx, "SELECT id FROM contacts WHERE workspace_id = %lld AND bsuid = '" BSUID
                         "'",
                     (long long)mw.ws);
}

static void agent_reply_goes_by_bsuid(void **state)
{
    (void)state;
    meta_world_start("bsuid-reply", META_WORLD_PACED, NULL);
    post_text(NULL, "wamid.bsuid.r1", "Hi, can you help?");
    int64_t contact = bsuid_contact();
    agent_wait(fx, 1, 90, "SELECT count(*) FROM chats WHERE wam_id = 'wamid.bsuid.r1' AND "
                          "contact_id = %lld",
               (long long)contact);

    char id[37];
    meta_world_post_text(contact, "Of course", "bsuid-reply-1", id);
    /* sent by Meta (its wamid on the row), then delivered and read by the
     * status webhooks that name the BSUID */
    agent_wait(fx, 1, 90, "SELECT count(*) FROM chats WHERE uuid = '%s' AND contact_id = %lld "
                          "AND wam_id LIKE 'wamid.T%%' AND message_status = 'read'",
               id, (long long)contact);
    assert_addressed("text", "Of course", BSUID, NULL);
    assert_int_equal(meta_world_count_kind("text"), 1);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM contacts WHERE workspace_id = %lld",
                               (long long)mw.ws),
                     1);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM chats WHERE contact_id = %lld",
                               (long long)contact),
                     2);
}

static void template_campaign_goes_by_bsuid(void **state)
{
    (void)state;
    /* Meta's users: the username user, whose phone the business never
     * exchanged a message with (withheld), and the phoned contact, who has
     * a BSUID too */
    char users[700];
    snprintf(users, sizeof users, "%s/graph-users", fx->camp.dir);
    FILE *f = fopen(users, "w");
    assert_non_null(f);
    fprintf(f, NEW_PHONE " " BSUID " @sheena\n" PHONE " " BSUID2 "\n");
    fclose(f);
    const char *const graph_args[] = {"--users", users, NULL};
    meta_world_start("bsuid-campaign", META_WORLD_PACED, graph_args);
    post_text(NULL, "wamid.bsuid.c1", "Send me offers");
    int64_t contact = bsuid_contact();
    int64_t group = agent_int(fx, "INSERT INTO contact_groups (workspace_id, name) VALUES "
                                  "(%lld, 'bsuid audience') RETURNING id",
                              (long long)mw.ws);
    int64_t phoned = agent_int(fx, "INSERT INTO contacts (workspace_id, first_name, phone) "
                                   "VALUES (%lld, 'Phoned', '+" PHONE "') RETURNING id",
                               (long long)mw.ws);
    agent_int(fx, "WITH m AS (INSERT INTO contact_group_members (workspace_id, contact_group_id, "
                  "contact_id) VALUES (%lld, %lld, %lld), (%lld, %lld, %lld) RETURNING 1) "
                  "SELECT count(*) FROM m",
              (long long)mw.ws, (long long)group, (long long)contact, (long long)mw.ws,
              (long long)group, (long long)phoned);
    int64_t tpl = meta_world_approved_template("bsuid_offer", "MARKETING", "Our offer");
    int64_t campaign = meta_world_template_campaign(group, tpl, NULL);
    camp_command(&fx->camp, mw.ws, campaign, "start", "itest");

    agent_wait(fx, 2, 90, "SELECT count(*) FROM campaign_logs WHERE campaign_id = %lld AND "
                          "status = 'read'",
               (long long)campaign);
    /* the campaign counts the statuses Meta sent of each, the BSUID's too */
    agent_wait(fx, 2, 60, "SELECT messages_read FROM campaigns WHERE id = %lld",
               (long long)campaign);
    assert_int_equal(meta_world_count_kind("template"), 2);
    size_t n;
    graph_body *b = graph_bodies(&n);
    int by_recipient = 0, by_to = 0;
    for (size_t i = 0; i < n; i++) {
        const char *to = json_string_value(json_object_get(b[i].doc, "to"));
        const char *recipient = json_string_value(json_object_get(b[i].doc, "recipient"));
        by_recipient += recipient && strcmp(recipient, BSUID) == 0 && !to;
        by_to += to && strcmp(to, PHONE) == 0 && !recipient;
    }
    graph_bodies_free(b, n);
    assert_int_equal(by_recipient, 1);
    assert_int_equal(by_to, 1);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM contacts WHERE workspace_id = %lld AND "
                                   "(bsuid = '" BSUID "' OR phone = '" BSUID "')",
                               (long long)mw.ws),
                     1);
    /* statuses naming the phone beside a BSUID, or a BSUID alone, open no contact */
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM contacts WHERE workspace_id = %lld",
                               (long long)mw.ws),
                     2);
    assert_int_equal(agent_dead_letter_count(fx), 0);
}

/* The dead letters of a topic: how many, their messages run together. */
typedef struct idc_reasons {
    int n;
    char messages[2048];
} idc_reasons;

static void collect_reason(void *ctx, const rd_kafka_message_t *m)
{
    idc_reasons *r = ctx;
    char text[512];
    itest_header_text(m, "dlt-exception-message", text, sizeof text);
    r->n++;
    size_t used = strlen(r->messages);
    snprintf(r->messages + used, sizeof r->messages - used, "%s\n", text);
}

/* Meta's system message (messages[].type "system", no contacts[]) from
 * the user: "from" only when phone is not NULL, from_user_id when bsuid is
 * not NULL, and the members of its "system" object. */
static void post_system(const char *phone, const char *bsuid, const char *wamid,
                        const char *system)
{
    char from[64] = "", from_user[96] = "", body[4096];
    if (phone)
        snprintf(from, sizeof from, "\"from\":\"%s\",", phone);
    if (bsuid)
        snprintf(from_user, sizeof from_user, "\"from_user_id\":\"%s\",", bsuid);
    snprintf(body, sizeof body,
             "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"%s\",\"changes\":"
             "[{\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\","
             "\"metadata\":{\"display_phone_number\":\"15550783881\",\"phone_number_id\":\"%s\"},"
             "\"messages\":[{%s%s\"id\":\"%s\",\"timestamp\":\"%lld\",\"type\":\"system\","
             "\"system\":{%s}}]}}]}]}",
             mw.waba, mw.session, from, from_user, wamid, (long long)time(NULL), system);
    meta_world_post_webhook(body);
}

/* Meta's user_changed_number: PHONE (BSUID) is now NEW_PHONE (BSUID2). */
#define CHANGED_NUMBER                                                                            \
    "\"body\":\"User Sheena Nelson changed from " PHONE " to " NEW_PHONE "\","                    \
    "\"wa_id\":\"" NEW_PHONE "\",\"type\":\"user_changed_number\",\"user_id\":\"" BSUID2 "\","    \
    "\"previous_user_id\":\"" BSUID "\""
/* Meta's user_changed_user_id: BSUID2 is now BSUID3, no phone named. */
#define CHANGED_USER_ID                                                                           \
    "\"body\":\"User Sheena Nelson changed their business-scoped user ID\","                    \
    "\"type\":\"user_changed_user_id\",\"user_id\":\"" BSUID3 "\","                             \
    "\"previous_user_id\":\"" BSUID2 "\""

/* The customer changes number, then business-scoped user id: each time
 * the same contact row takes the new identifier, and the customer's next
 * message, from the new one, lands in it, with the conversation, history
 * and opt-out it had. A redelivered change moves nothing back. */
static void identity_changes_keep_the_contact(void **state)
{
    (void)state;
    meta_world_start("bsuid-idchange", META_WORLD_PACED, NULL);
    agent_endpoint(fx, mw.ws, "/ok/idchange");
    agent_start_dispatcher(fx);
    post_text(PHONE, "wamid.idc.1", "Hi");
    post_text(PHONE, "wamid.idc.2", "STOP");
    agent_wait(fx, 1, 90, "SELECT count(*) FROM contacts WHERE workspace_id = %lld AND "
                          "phone = '+" PHONE "' AND bsuid = '" BSUID "' AND opted_out_at IS NOT NULL",
               (long long)mw.ws);
    int64_t contact = agent_int(fx, "SELECT id FROM contacts WHERE workspace_id = %lld AND "
                                    "phone = '+" PHONE "'",
                                (long long)mw.ws);

    post_system(PHONE, NULL, "wamid.idc.number", CHANGED_NUMBER);
    agent_wait(fx, 1, 60, "SELECT count(*) FROM contacts WHERE id = %lld AND phone = '+" NEW_PHONE
                          "' AND bsuid = '" BSUID2 "'",
               (long long)contact);
    post_text_of(NEW_PHONE, BSUID2, "wamid.idc.3", "My new number");
    agent_wait(fx, 1, 60, "SELECT count(*) FROM chats WHERE wam_id = 'wamid.idc.3' AND "
                          "contact_id = %lld",
               (long long)contact);

    post_system(NULL, BSUID2, "wamid.idc.user_id", CHANGED_USER_ID);
    agent_wait(fx, 1, 60, "SELECT count(*) FROM contacts WHERE id = %lld AND phone = '+" NEW_PHONE
                          "' AND bsuid = '" BSUID3 "'",
               (long long)contact);
    post_text_of(NULL, BSUID3, "wamid.idc.4", "Now as a username user");
    agent_wait(fx, 1, 60, "SELECT count(*) FROM chats WHERE wam_id = 'wamid.idc.4' AND "
                          "contact_id = %lld",
               (long long)contact);

    /* Meta redelivers the first change: nothing flips back. The next
     * message names the new number too: on the change's key (NEW_PHONE,
     * normalize.c), so it is read after the redelivery. */
    post_system(PHONE, NULL, "wamid.idc.number", CHANGED_NUMBER);
    post_text_of(NEW_PHONE, BSUID3, "wamid.idc.5", "Still me");
    agent_wait(fx, 1, 60, "SELECT count(*) FROM chats WHERE wam_id = 'wamid.idc.5' AND "
                          "contact_id = %lld",
               (long long)contact);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM contacts WHERE id = %lld AND phone = '+"
                                   NEW_PHONE "' AND bsuid = '" BSUID3 "' AND opted_out_at IS "
                                   "NOT NULL",
                               (long long)contact),
                     1);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM contacts WHERE workspace_id = %lld",
                               (long long)mw.ws),
                     1);
    /* the whole conversation under the one contact; the changes are no messages */
    assert_int_equal(messages_under(contact), 5);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM chats WHERE whatsapp_account_id = %lld",
                               (long long)mw.account),
                     5);
    /* the CRM hears of each change */
    agent_wait(fx, 1, 60, "SELECT count(*) FROM webhook_retry_queue WHERE workspace_id = %lld AND "
                          "event_type = 'contact.updated' AND status = 'success' AND "
                          "convert_from(payload, 'UTF8')::jsonb #>> '{data,change,previous_phone}' "
                          "= '+" PHONE "'",
               (long long)mw.ws);
    agent_wait(fx, 1, 60, "SELECT count(*) FROM webhook_retry_queue WHERE workspace_id = %lld AND "
                          "event_type = 'contact.updated' AND status = 'success' AND "
                          "convert_from(payload, 'UTF8')::jsonb #>> '{data,change,bsuid}' "
                          "= '" BSUID3 "'",
               (long long)mw.ws);
    assert_int_equal(agent_dead_letter_count(fx), 0);
}

/* A change without the new identifier, or with a malformed one, is
 * dead-lettered naming the field; the contact keeps what it had. */
static void bad_identity_change_is_dead_lettered(void **state)
{
    (void)state;
    meta_world_start("bsuid-idchange-bad", META_WORLD_PACED, NULL);
    post_text(PHONE, "wamid.idcb.1", "Hi");
    agent_wait(fx, 1, 90, "SELECT count(*) FROM contacts WHERE workspace_id = %lld AND "
                          "phone = '+" PHONE "'",
               (long long)mw.ws);
    post_system(PHONE, NULL, "wamid.idcb.number",
                "\"body\":\"User changed\",\"type\":\"user_changed_number\"");
    post_system(NULL, BSUID, "wamid.idcb.user_id",
                "\"body\":\"User changed\",\"type\":\"user_changed_user_id\","
                "\"user_id\":\"not-a-bsuid\",\"previous_user_id\":\"" BSUID "\"");
    char topic[256];
    snprintf(topic, sizeof topic, "%swa.inbound.dlq", fx->wh.prefix);
    idc_reasons r = {0};
    for (int i = 0; i < 300 && r.n < 2; i++) {
        memset(&r, 0, sizeof r);
        itest_consume_all(topic, collect_reason, &r);
        itest_sleep_ms(100);
    }
    assert_int_equal(r.n, 2);
    assert_non_null(strstr(r.messages, "contact_update.identity_change.new_phone"));
    assert_non_null(strstr(r.messages, "contact_update.identity_change.new_bsuid"));
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM contacts WHERE workspace_id = %lld AND "
                                   "phone = '+" PHONE "' AND bsuid = '" BSUID "'",
                               (long long)mw.ws),
                     1);
}

/* The id of the world's live contact that cond (SQL on contacts) names. */
static int64_t live_contact(const char *cond)
{
    return agent_int(fx, "SELECT id FROM contacts WHERE workspace_id = %lld AND deleted_at IS "
                         "NULL AND %s",
                     (long long)mw.ws, cond);
}

/* merged is soft-deleted, naming survivor (metadata.merged_into). */
static void assert_merged_into(int64_t merged, int64_t survivor)
{
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM contacts m JOIN contacts s ON "
                                   "s.uuid::text = m.metadata->>'merged_into' WHERE m.id = %lld "
                                   "AND s.id = %lld AND m.deleted_at IS NOT NULL",
                               (long long)merged, (long long)survivor),
                     1);
}

/* What POST /v1/contacts/{survivor}/merge refuses before it publishes
 * anything: an unknown contact on either side, the contact itself, another
 * workspace's contact, a malformed body. */
static void merge_refusals(int64_t survivor, int64_t merged)
{
    int64_t stranger = agent_contact(fx, camp_workspace(&fx->camp), "+6281300000203", "Eve");
    char path[96], body[96];
    snprintf(path, sizeof path, "/v1/contacts/%lld/merge", (long long)survivor);
    snprintf(body, sizeof body, "{\"merged_contact_id\":%lld}", (long long)stranger);
    agent_expect_refused(fx, "POST", path, mw.api_key, body, 404, "unknown_contact",
                         "merged_contact_id");
    agent_expect_refused(fx, "POST", path, mw.api_key, "{\"merged_contact_id\":999999999}", 404,
                         "unknown_contact", "merged_contact_id");
    snprintf(body, sizeof body, "{\"merged_contact_id\":%lld}", (long long)survivor);
    agent_expect_refused(fx, "POST", path, mw.api_key, body, 400, "invalid_field",
                         "merged_contact_id");
    agent_expect_refused(fx, "POST", path, mw.api_key, "{}", 400, "missing_field",
                         "merged_contact_id");
    agent_expect_refused(fx, "POST", path, mw.api_key, "{\"merged_contact_id\":\"x\"}", 400,
                         "invalid_field", "merged_contact_id");
    agent_expect_refused(fx, "POST", path, mw.api_key, "[1]", 400, "invalid_json", "body");
    snprintf(body, sizeof body, "{\"merged_contact_id\":%lld,\"name\":\"A\"}",
             (long long)merged);
    agent_expect_refused(fx, "POST", path, mw.api_key, body, 400, "invalid_field", "name");
    snprintf(body, sizeof body, "{\"merged_contact_id\":%lld}", (long long)merged);
    agent_expect_refused(fx, "POST", "/v1/contacts/999999999/merge", mw.api_key, body, 404,
                         "unknown_contact", "contact_id");
    snprintf(path, sizeof path, "/v1/contacts/%lld/merge", (long long)stranger);
    agent_expect_refused(fx, "POST", path, mw.api_key, body, 404, "unknown_contact", "contact_id");
}

/* The new number is already another live contact's (the customer wrote
 * from it first): the change is dead-lettered identity_conflict and both
 * rows stay as they were. The CRM, told by the operator which row is the
 * person, merges the new number's contact into the customer's; the dead
 * letter replayed then moves the customer to the new number. */
static void identity_conflict_is_resolved_by_the_crms_merge(void **state)
{
    (void)state;
    meta_world_start("bsuid-idchange-taken", META_WORLD_PACED, NULL);
    post_text(PHONE, "wamid.idct.1", "Hi");
    post_text_of(NEW_PHONE, BSUID2, "wamid.idct.2", "Hi from my other phone");
    agent_wait(fx, 2, 90, "SELECT count(*) FROM contacts WHERE workspace_id = %lld AND "
                          "phone IN ('+" PHONE "', '+" NEW_PHONE "')",
               (long long)mw.ws);
    post_system(PHONE, NULL, "wamid.idct.number", CHANGED_NUMBER);
    agent_dlq_reasons d;
    agent_dead_letters(fx, &d, 1);
    assert_int_equal(d.n, 1);
    assert_string_equal(d.codes[0], "identity_conflict");
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM contacts WHERE workspace_id = %lld AND "
                                   "((phone = '+" PHONE "' AND bsuid = '" BSUID "') OR (phone = '+"
                                   NEW_PHONE "' AND bsuid = '" BSUID2 "'))",
                               (long long)mw.ws),
                     2);

    int64_t customer = live_contact("phone = '+" PHONE "'");
    int64_t other = live_contact("phone = '+" NEW_PHONE "'");
    merge_refusals(customer, other);
    char path[96], body[128];
    snprintf(path, sizeof path, "/v1/contacts/%lld/merge", (long long)customer);
    char *other_uuid = itest_pg_textf(fx->camp.pg, "SELECT uuid::text FROM contacts WHERE id = "
                                                   "%lld",
                                      (long long)other);
    snprintf(body, sizeof body, "{\"merged_contact_id\":\"%s\"}", other_uuid);
    free(other_uuid);
    json_t *doc = agent_expect_answer(fx, "POST", path, mw.api_key, body, 202);
    assert_int_equal(json_integer_value(json_object_get(doc, "contact_id")), customer);
    assert_int_equal(json_integer_value(json_object_get(doc, "merged_contact_id")), other);
    json_decref(doc);
    agent_wait(fx, 1, 60, "SELECT count(*) FROM contacts WHERE id = %lld AND deleted_at IS NOT "
                          "NULL",
               (long long)other);
    /* merged already: the CRM is told so, nothing is published */
    agent_expect_refused(fx, "POST", path, mw.api_key, body, 409, "contact_merged",
                         "merged_contact_id");

    assert_int_equal(agent_replay_dead_letters(fx, "identity_conflict"), 1);
    agent_wait(fx, 1, 60, "SELECT count(*) FROM contacts WHERE id = %lld AND phone = '+" NEW_PHONE
                          "' AND bsuid = '" BSUID2 "' AND deleted_at IS NULL",
               (long long)customer);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM contacts WHERE workspace_id = %lld AND "
                                   "deleted_at IS NULL",
                               (long long)mw.ws),
                     1);
    assert_int_equal(messages_under(customer), 2);
    assert_merged_into(other, customer);
    agent_wait(fx, 0, 60, "SELECT count(*) FROM outbox");
    assert_int_equal(event_log_merges(fx->wh.prefix, mw.ws), 1);
    /* the merge was no dead letter, and the replayed change did not come back */
    agent_dead_letters(fx, &d, 1);
    assert_int_equal(d.n, 1);

    /* a username user chosen as the survivor takes the merged one's number */
    post_text_of(NULL, BSUID3, "wamid.idct.4", "A username user");
    post_text_of(PHONE, NULL, "wamid.idct.5", "The old number, someone now");
    agent_wait(fx, 3, 90, "SELECT count(*) FROM contacts WHERE workspace_id = %lld AND "
                          "deleted_at IS NULL",
               (long long)mw.ws);
    int64_t username = live_contact("bsuid = '" BSUID3 "'");
    int64_t numbered = live_contact("phone = '+" PHONE "'");
    snprintf(path, sizeof path, "/v1/contacts/%lld/merge", (long long)username);
    snprintf(body, sizeof body, "{\"merged_contact_id\":%lld}", (long long)numbered);
    json_decref(agent_expect_answer(fx, "POST", path, mw.api_key, body, 202));
    agent_wait(fx, 1, 60, "SELECT count(*) FROM contacts WHERE id = %lld AND phone = '+" PHONE
                          "' AND bsuid = '" BSUID3 "' AND deleted_at IS NULL",
               (long long)username);
    assert_int_equal(messages_under(username), 2);
    assert_merged_into(numbered, username);
}

/* Meta names a phone and a BSUID in one message, each another live
 * contact's until then: the BSUID's contact is merged into the phone's. */
static void meta_names_both_merges_two_contacts(void **state)
{
    (void)state;
    meta_world_start("bsuid-merge", META_WORLD_PACED, NULL);
    post_text_of(NULL, BSUID, "wamid.mrg.1", "Hi, a username user");
    post_text_of(PHONE, NULL, "wamid.mrg.2", "Hi, from a number");
    agent_wait(fx, 2, 90, "SELECT count(*) FROM contacts WHERE workspace_id = %lld AND "
                          "deleted_at IS NULL AND phone IN ('+" PHONE "', '" BSUID "')",
               (long long)mw.ws);
    int64_t by_bsuid = live_contact("bsuid = '" BSUID "'");
    int64_t by_phone = live_contact("phone = '+" PHONE "'");
    assert_true(by_bsuid != by_phone);
    post_text_of(PHONE, BSUID, "wamid.mrg.3", "Both of me");
    post_text_of(PHONE, BSUID, "wamid.mrg.3", "Both of me"); /* Meta's redelivery */
    post_text_of(NULL, BSUID, "wamid.mrg.4", "The username again");
    /* on the redelivery's key (the phone): read after it */
    post_text_of(PHONE, BSUID, "wamid.mrg.5", "And the number again");
    agent_wait(fx, 5, 90, "SELECT count(*) FROM chats WHERE whatsapp_account_id = %lld AND "
                          "wam_id LIKE 'wamid.mrg.%%' AND contact_id = %lld",
               (long long)mw.account, (long long)by_phone);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM contacts WHERE id = %lld AND "
                                   "bsuid = '" BSUID "' AND phone = '+" PHONE "' AND "
                                   "unread_messages = 5 AND deleted_at IS NULL",
                               (long long)by_phone),
                     1);
    assert_merged_into(by_bsuid, by_phone);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM contacts WHERE workspace_id = %lld AND "
                                   "deleted_at IS NULL",
                               (long long)mw.ws),
                     1);
    agent_wait(fx, 0, 60, "SELECT count(*) FROM outbox");
    assert_int_equal(event_log_merges(fx->wh.prefix, mw.ws), 1);
    assert_int_equal(agent_dead_letter_count(fx), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(username_customer_is_one_contact, agent_test_setup,
                                        meta_world_teardown),
        cmocka_unit_test_setup_teardown(agent_reply_goes_by_bsuid, agent_test_setup,
                                        meta_world_teardown),
        cmocka_unit_test_setup_teardown(template_campaign_goes_by_bsuid, agent_test_setup,
                                        meta_world_teardown),
        cmocka_unit_test_setup_teardown(identity_changes_keep_the_contact, agent_test_setup,
                                        meta_world_teardown),
        cmocka_unit_test_setup_teardown(bad_identity_change_is_dead_lettered, agent_test_setup,
                                        meta_world_teardown),
        cmocka_unit_test_setup_teardown(identity_conflict_is_resolved_by_the_crms_merge,
                                        agent_test_setup, meta_world_teardown),
        cmocka_unit_test_setup_teardown(meta_names_both_merges_two_contacts, agent_test_setup,
                                        meta_world_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
