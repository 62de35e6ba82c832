/*
 * test_meta_echoes.c - the owner's echoes (issue 53, coexistence): a
 * number on the Cloud API that is also in the WhatsApp Business app, whose
 * owner answers a customer from the phone. Meta reports that message with
 * the smb_message_echoes webhook (its reference page: message_echoes[]
 * with from = the business number, to = the customer, id, timestamp, type
 * and the type's object); the test posts the page's sample, signed as Meta
 * signs, over the real chain (ingest's Meta edge, chat-sync, the webhook
 * dispatcher, PostgreSQL).
 *  - owner_echo_is_an_outbound_message: the customer writes, the owner
 *    answers on the phone; the echo is stored once as an outbound, sent
 *    message of the account in the customer's chat (the contact the
 *    customer's message made, no other), and announced once to the CRM as
 *    message.created, as a whatsapp-web.js phone's own message is; the
 *    same notification posted again (Meta redelivers) stores and announces
 *    nothing new. On a build that dead-letters the field it never arrives.
 *  - owner_echo_takes_its_later_statuses: Meta's statuses of the echo's
 *    wamid (delivered, then read, as the messages webhook's statuses[]
 *    carry them, without pricing: an owner's message from the app is not
 *    billed) move the echo's row as they move an agent's message, each
 *    announced once as message.status; usage counts it delivered
 *    unpriced, never paid.
 *  - owner_echo_to_a_username_customer: an echo naming the customer by
 *    BSUID alone (to_user_id) lands in the chat of the contact the
 *    customer's BSUID-only message made; nothing dead-lettered.
 *  - address_book_names_the_contact: a customer writes (profile name
 *    "Ani"), then the owner saves them in the app's address book
 *    (smb_app_state_sync as the Graph test server plays it from its
 *    reference page: state_sync[] of type contact, action add, full_name,
 *    phone_number): the contact keeps
 *    its profile name and gets the saved one beside it
 *    (metadata.saved_name, GET /v1/contacts/{id}'s saved_name), announced
 *    once as contact.updated naming saved_name (a redelivery, nothing);
 *    the owner removing them from the address book takes the saved name
 *    away (null, one contact.updated more) and leaves no dead letter;
 *    removing someone never seen creates nobody.
 *  - owner_echo_photo_is_fetched: the owner's photo from the phone (an
 *    echo naming a media id) is fetched from Meta and linked to its row,
 *    as a customer's photo is.
 *  - edits_and_revokes_apply_to_their_targets: the owner's edit (an echo
 *    of type edit) and the customer's delete for everyone (revoke) act on
 *    the messages they name, as Meta's edit and revoke references shape
 *    them.
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

#define PHONE "16505551234"
#define STRANGER "16505559876"
#define ECHO_WAMID "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA="
#define ECHO_BODY "Here's the info you requested! https://www.meta.com/quest/quest-3/"
#define ECHO_BODY_SQL "Here''s the info you requested! https://www.meta.com/quest/quest-3/"

/* An smb_message_echoes item of type `type` (content: its object's
 * members) with wamid, to PHONE. */
static void post_echo_of(const char *wamid, long long ts, const char *type, const char *content)
{
    char body[4096];
    snprintf(body, sizeof body,
             "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"%s\",\"changes\":"
             "[{\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{"
             "\"display_phone_number\":\"15550783881\",\"phone_number_id\":\"%s\"},"
             "\"message_echoes\":[{\"from\":\"15550783881\",\"to\":\"" PHONE "\","
             "\"id\":\"%s\",\"timestamp\":\"%lld\",\"type\":\"%s\",\"%s\":{%s}}]},"
             "\"field\":\"smb_message_echoes\"}]}]}",
             mw.waba, mw.session, wamid, ts, type, type, content);
    meta_world_post_webhook(body);
}

/* Meta's smb_message_echoes sample (its reference page's syntax and
 * example values), to the world's number. */
static void post_echo(long long ts)
{
    post_echo_of(ECHO_WAMID, ts, "text", "\"body\":\"" ECHO_BODY "\"");
}

/* The test's Meta world, its workspace's webhooks delivered to the
 * receiver's endpoint path. */
static void world_with_receiver(const char *name, const char *endpoint)
{
    meta_world_start(name, META_WORLD_PACED, NULL);
    agent_endpoint(fx, mw.ws, endpoint);
    agent_start_dispatcher(fx);
}

/* Deliveries the receiver got of message.created for wam_id; the one
 * found (if any) must be the owner's echo as the CRM reads it. */
static size_t echo_deliveries(int64_t contact)
{
    json_t *reqs[64], *all = wh_requests(&fx->wh);
    size_t n = wh_filter(all, "/ok/echoes", reqs, 64), found = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *body = json_loads(json_string_value(json_object_get(reqs[i], "body")), 0, NULL);
        json_t *chat = json_object_get(json_object_get(body, "data"), "chat");
        const char *wam = json_string_value(json_object_get(chat, "wam_id"));
        if (wam && strcmp(wam, ECHO_WAMID) == 0) {
            found++;
            assert_string_equal(json_string_value(json_object_get(body, "type")),
                                "message.created");
            assert_string_equal(json_string_value(json_object_get(chat, "type")), "outbound");
            assert_string_equal(json_string_value(json_object_get(chat, "message_status")),
                                "sent");
            assert_string_equal(json_string_value(json_object_get(chat, "message")), ECHO_BODY);
            assert_int_equal(json_integer_value(json_object_get(chat, "contact_id")), contact);
            assert_string_equal(json_string_value(json_object_get(chat, "provider_type")),
                                "meta");
        }
        json_decref(body);
    }
    json_decref(all);
    return found;
}

static void owner_echo_is_an_outbound_message(void **state)
{
    (void)state;
    world_with_receiver("echoes", "/ok/echoes");
    long long now = (long long)time(NULL);

    meta_world_post_inbound(PHONE, "wamid.echoes.in", now - 60, "text",
                            "\"text\":{\"body\":\"Do you have the Quest 3?\"}");
    agent_wait(fx, 1, 90, "SELECT count(*) FROM chats WHERE whatsapp_account_id = %lld AND "
                          "wam_id = 'wamid.echoes.in'",
               (long long)mw.account);
    int64_t contact = agent_int(fx, "SELECT contact_id FROM chats WHERE wam_id = "
                                    "'wamid.echoes.in' AND whatsapp_account_id = %lld",
                                (long long)mw.account);

    post_echo(now);
    agent_wait(fx, 1, 90, "SELECT count(*) FROM chats WHERE whatsapp_account_id = %lld AND "
                          "wam_id = '" ECHO_WAMID "'",
               (long long)mw.account);
    /* the owner's message, in the customer's chat, as the phone sent it */
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM chats WHERE whatsapp_account_id = %lld "
                                   "AND wam_id = '" ECHO_WAMID "' AND contact_id = %lld AND "
                                   "type = 'outbound' AND chat_type = 'private' AND "
                                   "message_status = 'sent' AND metadata->>'body' = '" ECHO_BODY_SQL "' AND "
                                   "provider_type = 'meta' AND user_id IS NULL AND "
                                   "sent_at IS NOT NULL",
                               (long long)mw.account, (long long)contact),
                     1);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM contacts WHERE workspace_id = %lld",
                               (long long)mw.ws),
                     1);
    /* the owner's reply is no message the customer has to read */
    assert_int_equal(agent_int(fx, "SELECT unread_messages FROM contacts WHERE id = %lld",
                               (long long)contact),
                     1);

    /* Meta redelivers the notification; then the customer writes again:
     * once that is stored (one conversation, one order), the repeat was
     * applied before it */
    post_echo(now);
    meta_world_post_inbound(PHONE, "wamid.echoes.after", now + 1, "text",
                            "\"text\":{\"body\":\"Thanks!\"}");
    agent_wait(fx, 1, 90, "SELECT count(*) FROM chats WHERE whatsapp_account_id = %lld AND "
                          "wam_id = 'wamid.echoes.after'",
               (long long)mw.account);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM chats WHERE whatsapp_account_id = %lld "
                                   "AND wam_id = '" ECHO_WAMID "'",
                               (long long)mw.account),
                     1);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM chats WHERE contact_id = %lld",
                               (long long)contact),
                     3);

    /* announced once, as message.created, delivered before the message
     * that followed it (one delivery at a time, in order) */
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM webhook_retry_queue WHERE workspace_id = %lld AND status = "
             "'success' AND convert_from(payload, 'UTF8')::jsonb #>> '{data,chat,wam_id}' = "
             "'wamid.echoes.after'",
             (long long)mw.ws);
    wh_wait_for(&fx->wh, sql, 1, 90000);
    assert_int_equal(meta_world_webhooks_delivered("message.created",
                                                   "b #>> '{data,chat,wam_id}' = '" ECHO_WAMID "'"),
                     1);
    assert_int_equal(echo_deliveries(contact), 1);
}

/* Meta's status of the echo to PHONE, as the messages webhook's
 * statuses[] carries it. */
static void post_echo_status(const char *status, long long ts)
{
    char members[512];
    snprintf(members, sizeof members,
             "\"statuses\":[{\"id\":\"" ECHO_WAMID "\",\"status\":\"%s\",\"timestamp\":\"%lld\","
             "\"recipient_id\":\"" PHONE "\"}]",
             status, ts);
    meta_world_post_change("messages", members);
}

static void owner_echo_takes_its_later_statuses(void **state)
{
    (void)state;
    world_with_receiver("echoes-status", "/ok/echo-status");
    long long now = (long long)time(NULL);
    post_echo(now - 30);
    agent_wait(fx, 1, 90, "SELECT count(*) FROM chats WHERE whatsapp_account_id = %lld AND "
                          "wam_id = '" ECHO_WAMID "' AND message_status = 'sent'",
               (long long)mw.account);
    post_echo_status("delivered", now - 20);
    post_echo_status("read", now - 10);
    agent_wait(fx, 1, 90, "SELECT count(*) FROM chats WHERE whatsapp_account_id = %lld AND "
                          "wam_id = '" ECHO_WAMID "' AND type = 'outbound' AND message_status = "
                          "'read' AND delivered_at IS NOT NULL AND read_at IS NOT NULL",
               (long long)mw.account);
    meta_world_wait_webhooks("message.status", 2);
    assert_int_equal(meta_world_webhooks_delivered(
                         "message.status", "b #>> '{data,chat,wam_id}' = '" ECHO_WAMID "' AND "
                                           "b #>> '{data,status,status}' IN ('delivered', 'read')"),
                     2);
    /* delivered once, Meta naming no price: counted unpriced, not paid */
    assert_int_equal(agent_int(fx, "SELECT coalesce(sum(delivered), 0) FROM message_usage WHERE "
                                   "whatsapp_account_id = %lld AND category = 'unpriced'",
                               (long long)mw.account),
                     1);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM message_usage_priced WHERE "
                                   "whatsapp_account_id = %lld",
                               (long long)mw.account),
                     0);
    assert_int_equal(agent_dead_letter_count(fx), 0);
}

#define USER_BSUID "US.13491208655302741918"
#define USER_ECHO_WAMID "wamid.echoes.to.user"

/* The owner answers a username customer, who has no phone to Meta: the
 * customer's message names it by its BSUID alone (from_user_id, as Meta's
 * business-scoped user id page shows), and so does the echo (to_user_id,
 * no `to`). The echo lands in that contact's chat, no contact is made
 * and nothing is dead-lettered (before, an echo without `to` was). */
static void owner_echo_to_a_username_customer(void **state)
{
    (void)state;
    world_with_receiver("echoes-user", "/ok/echoes");
    long long now = (long long)time(NULL);
    char members[1024];
    snprintf(members, sizeof members,
             "\"contacts\":[{\"profile\":{\"name\":\"Sheena\",\"username\":\"@sheena\"},"
             "\"user_id\":\"" USER_BSUID "\"}],\"messages\":[{\"from_user_id\":\"" USER_BSUID "\","
             "\"id\":\"wamid.echoes.user.in\",\"timestamp\":\"%lld\",\"type\":\"text\","
             "\"text\":{\"body\":\"Is the store open?\"}}]",
             now - 60);
    meta_world_post_change("messages", members);
    agent_wait(fx, 1, 90, "SELECT count(*) FROM chats WHERE whatsapp_account_id = %lld AND "
                          "wam_id = 'wamid.echoes.user.in'",
               (long long)mw.account);
    int64_t contact = agent_int(fx, "SELECT id FROM contacts WHERE workspace_id = %lld AND "
                                    "bsuid = '" USER_BSUID "'",
                                (long long)mw.ws);

    snprintf(members, sizeof members,
             "\"message_echoes\":[{\"from\":\"15550783881\",\"to_user_id\":\"" USER_BSUID "\","
             "\"id\":\"" USER_ECHO_WAMID "\",\"timestamp\":\"%lld\",\"type\":\"text\","
             "\"text\":{\"body\":\"Open until nine\"}}]",
             now);
    meta_world_post_change("smb_message_echoes", members);
    agent_wait(fx, 1, 90, "SELECT count(*) FROM chats WHERE whatsapp_account_id = %lld AND "
                          "wam_id = '" USER_ECHO_WAMID "'",
               (long long)mw.account);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM chats WHERE wam_id = '" USER_ECHO_WAMID
                                   "' AND contact_id = %lld AND type = 'outbound' AND "
                                   "message_status = 'sent'",
                               (long long)contact),
                     1);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM contacts WHERE workspace_id = %lld",
                               (long long)mw.ws),
                     1);
    assert_int_equal(agent_dead_letter_count(fx), 0);
}

#define PHOTO_WAMID "wamid.echo.photo"
#define PHOTO_MEDIA_ID "7200000001"

/* The owner sends the customer a photo from the phone: Meta's echo names
 * it by its media id, as a customer's photo is named; its bytes are
 * Meta's to hand out (Graph's "Retrieve media URL" and download, the test
 * server's --media), and end in the store linked to the echo's row, the
 * digest the webhook gave. */
static void owner_echo_photo_is_fetched(void **state)
{
    (void)state;
    meta_world_prepare("echo-photo", META_WORLD_PACED);
    char registry[800], photo[800], sha_hex[65], sha_b64[48];
    snprintf(registry, sizeof registry, "%s/media-registry", fx->camp.dir);
    snprintf(photo, sizeof photo, "%s/photo.jpg", fx->camp.dir);
    unsigned char bytes[2048] = {0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 'J', 'F', 'I', 'F', 0};
    for (size_t k = 11; k < sizeof bytes; k++)
        bytes[k] = (unsigned char)(k * 13);
    graph_media_file(photo, bytes, sizeof bytes, sha_hex, sha_b64);
    FILE *reg = fopen(registry, "w");
    assert_non_null(reg);
    fprintf(reg, "%s image/jpeg none %s\n", PHOTO_MEDIA_ID, photo);
    fclose(reg);
    const char *graph_args[] = {"--media", registry, NULL};
    meta_world_launch(graph_args);
    char content[512];
    snprintf(content, sizeof content,
             "\"id\":\"" PHOTO_MEDIA_ID "\",\"mime_type\":\"image/jpeg\",\"sha256\":\"%s\","
             "\"caption\":\"our new shop\"",
             sha_b64);
    post_echo_of(PHOTO_WAMID, (long long)time(NULL), "image", content);
    agent_wait(fx, 1, 90, "SELECT count(*) FROM chats c JOIN chat_media cm ON cm.id = c.media_id "
                          "WHERE c.whatsapp_account_id = %lld AND c.wam_id = '" PHOTO_WAMID "' "
                          "AND c.type = 'outbound' AND cm.sha256 = '%s' AND cm.source = 'meta'",
               (long long)mw.account, sha_hex);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM media_fetch_jobs WHERE workspace_id = "
                                   "%lld AND state = 'done'", (long long)mw.ws),
                     1);
}

/* Meta's edit and revoke (coexistence): the owner edits the reply sent
 * from the phone (an echo of type edit, its reference page's shape: the
 * original_message_id and the new message) and the customer deletes their
 * own message for everyone (the messages webhook's revoke): each applies
 * to its target, no row of its own, one message.edited and one
 * message.deleted, no dead letter. */
static void edits_and_revokes_apply_to_their_targets(void **state)
{
    (void)state;
    world_with_receiver("echo-edits", "/ok/echo-edits");
    long long now = (long long)time(NULL);
    int dead_letters = agent_dead_letter_count(fx);
    meta_world_post_inbound(PHONE, "wamid.edits.in", now - 60, "text",
                            "\"text\":{\"body\":\"how much is it?\"}");
    post_echo_of("wamid.edits.reply", now - 50, "text", "\"body\":\"It is 10\"");
    agent_wait(fx, 2, 90, "SELECT count(*) FROM chats WHERE whatsapp_account_id = %lld AND "
                          "wam_id IN ('wamid.edits.in', 'wamid.edits.reply')",
               (long long)mw.account);
    post_echo_of("wamid.edits.edit", now - 40, "edit",
                 "\"original_message_id\":\"wamid.edits.reply\",\"message\":{\"type\":"
                 "\"text\",\"text\":{\"body\":\"It is 12\"}}");
    meta_world_post_inbound(PHONE, "wamid.edits.revoke", now - 30, "revoke",
                            "\"revoke\":{\"original_message_id\":\"wamid.edits.in\"}");
    agent_wait(fx, 1, 90, "SELECT count(*) FROM chats WHERE wam_id = 'wamid.edits.reply' AND "
                          "whatsapp_account_id = %lld AND metadata->>'body' = 'It is 12' AND "
                          "metadata #>> '{edits,0,body}' = 'It is 10'",
               (long long)mw.account);
    agent_wait(fx, 1, 90, "SELECT count(*) FROM chats WHERE wam_id = 'wamid.edits.in' AND "
                          "whatsapp_account_id = %lld AND deleted_at IS NOT NULL",
               (long long)mw.account);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM chats WHERE whatsapp_account_id = %lld",
                               (long long)mw.account),
                     2);
    meta_world_wait_webhooks("message.deleted", 1);
    assert_int_equal(meta_world_webhooks_delivered("message.edited", "true"), 1);
    assert_int_equal(agent_dead_letter_count(fx), dead_letters);
}

/* Meta's smb_app_state_sync of one address-book change of phone, as the
 * Graph test server plays it (graph_phone.c, from Meta's reference). */
static void post_address_book(const char *phone, const char *action, const char *names,
                              long long ts)
{
    char body[1024];
    snprintf(body, sizeof body,
             "{\"phone_number_id\":\"%s\",%s\"phone\":\"%s\",\"action\":\"%s\",\"timestamp\":"
             "%lld}",
             mw.session, names, phone, action, ts);
    meta_world_graph_plays("_address_book", body);
}

/* contact's saved name as GET /v1/contacts/{id} answers it (heap; NULL:
 * null). */
static char *saved_name_read(int64_t contact)
{
    char path[64];
    snprintf(path, sizeof path, "/v1/contacts/%lld", (long long)contact);
    json_t *doc = agent_expect_answer(fx, "GET", path, mw.api_key, NULL, 200);
    const char *name = json_string_value(json_object_get(doc, "saved_name"));
    char *copy = name ? strdup(name) : NULL;
    assert_true(json_object_get(doc, "saved_name") != NULL);
    json_decref(doc);
    return copy;
}

static void address_book_names_the_contact(void **state)
{
    (void)state;
    world_with_receiver("address-book", "/ok/address-book");
    long long now = (long long)time(NULL);
    int dead_letters = agent_dead_letter_count(fx);

    meta_world_post_inbound(PHONE, "wamid.book.in", now - 60, "text",
                            "\"text\":{\"body\":\"hi\"}");
    agent_wait(fx, 1, 90, "SELECT count(*) FROM contacts WHERE workspace_id = %lld AND phone = "
                          "'+" PHONE "' AND first_name = 'Ani'",
               (long long)mw.ws);
    int64_t contact = agent_int(fx, "SELECT id FROM contacts WHERE workspace_id = %lld AND "
                                    "phone = '+" PHONE "'", (long long)mw.ws);
    char *saved = saved_name_read(contact);
    assert_null(saved);
    post_address_book(PHONE, "add", "\"full_name\":\"Pablo Morales\",\"first_name\":\"Pablo\",",
                      now - 30);
    agent_wait(fx, 1, 90, "SELECT count(*) FROM contacts WHERE id = %lld AND first_name = 'Ani' "
                          "AND metadata->>'saved_name' = 'Pablo Morales'", (long long)contact);
    saved = saved_name_read(contact);
    assert_string_equal(saved, "Pablo Morales");
    free(saved);
    /* Meta redelivers the add: nothing new */
    post_address_book(PHONE, "add", "\"full_name\":\"Pablo Morales\",\"first_name\":\"Pablo\",",
                      now - 30);
    post_address_book(PHONE, "remove", "", now - 10);
    agent_wait(fx, 1, 90, "SELECT count(*) FROM contacts WHERE id = %lld AND metadata ? "
                          "'saved_name' AND metadata->>'saved_name' IS NULL", (long long)contact);
    meta_world_post_inbound(PHONE, "wamid.book.after", now, "text",
                            "\"text\":{\"body\":\"still there?\"}");
    agent_wait(fx, 1, 90, "SELECT count(*) FROM chats WHERE whatsapp_account_id = %lld AND "
                          "wam_id = 'wamid.book.after'",
               (long long)mw.account);
    assert_null(saved_name_read(contact));
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM contacts WHERE workspace_id = %lld AND "
                                   "deleted_at IS NULL AND first_name = 'Ani'",
                               (long long)mw.ws),
                     1);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM contacts WHERE workspace_id = %lld",
                               (long long)mw.ws),
                     1);
    assert_int_equal(agent_dead_letter_count(fx), dead_letters);
    /* one contact.updated each for the add and the removal, naming saved_name */
    meta_world_wait_webhooks("contact.updated", 2);
    assert_int_equal(meta_world_webhooks_delivered("contact.updated", "true"), 2);
    assert_int_equal(meta_world_webhooks_delivered(
                         "contact.updated", "b #> '{data,change,changed}' = '[\"saved_name\"]' "
                                            "AND b #>> '{data,change,saved_name}' = "
                                            "'Pablo Morales' AND b #>> '{data,contact,name}' = "
                                            "'Ani'"),
                     1);
    assert_int_equal(meta_world_webhooks_delivered(
                         "contact.updated", "b #> '{data,change,changed}' = '[\"saved_name\"]' "
                                            "AND b #> '{data,change,saved_name}' = 'null'"),
                     1);

    /* The owner removes someone the backbone never saw: nothing is created.
     * When they write later, their contact has no address-book record (the
     * removal and the message share a conversation, so come in order). */
    post_address_book(STRANGER, "remove", "", now - 5);
    meta_world_post_inbound(STRANGER, "wamid.book.stranger", now, "text",
                            "\"text\":{\"body\":\"hello\"}");
    agent_wait(fx, 1, 90, "SELECT count(*) FROM chats WHERE whatsapp_account_id = %lld AND "
                          "wam_id = 'wamid.book.stranger'",
               (long long)mw.account);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM contacts WHERE workspace_id = %lld AND "
                                   "phone = '+" STRANGER "' AND NOT metadata ? 'saved_name' AND "
                                   "NOT metadata ? 'saved_name_clock'",
                               (long long)mw.ws),
                     1);
    assert_int_equal(agent_dead_letter_count(fx), dead_letters);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(owner_echo_is_an_outbound_message, agent_test_setup,
                                        meta_world_teardown),
        cmocka_unit_test_setup_teardown(owner_echo_takes_its_later_statuses, agent_test_setup,
                                        meta_world_teardown),
        cmocka_unit_test_setup_teardown(owner_echo_to_a_username_customer, agent_test_setup,
                                        meta_world_teardown),
        cmocka_unit_test_setup_teardown(address_book_names_the_contact, agent_test_setup,
                                        meta_world_teardown),
        cmocka_unit_test_setup_teardown(owner_echo_photo_is_fetched, agent_test_setup,
                                        meta_world_teardown),
        cmocka_unit_test_setup_teardown(edits_and_revokes_apply_to_their_targets,
                                        agent_test_setup, meta_world_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
