/*
 * test_meta_bsuid.c - a Meta username customer (issue 50; decision 0010):
 * Meta's documented webhooks for a user who adopted a WhatsApp username
 * carry a business-scoped user id (BSUID) and no phone, over the real
 * chain (ingest's Meta edge, chat-sync, PostgreSQL).
 *  - username_customer_is_one_contact: two text messages from the user
 *    (contacts[].user_id, profile.username, messages[].from_user_id; no
 *    wa_id, no from), a delivered status of a message sent to them
 *    (recipient_user_id, no recipient_id) and a message naming the phone
 *    beside the same BSUID: each message is stored once, all under one
 *    contact, which ends with the phone, the BSUID, the parent BSUID and
 *    the username; the status is kept for its message (pending_receipts),
 *    not dead-lettered.
 * The payloads follow Meta's business-scoped user ids page, not the
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
#include "itest.h"
#include "meta_world.h"

#define fx agent_test_fx
#define mw meta_test_world

#define BSUID "US.13491208655302741918"
#define PARENT "US.ENT.11815799212886844830"
#define PHONE "16505551234"

/* Meta's `messages` webhook of one text from the user: the "from" and
 * "wa_id" members only when phone is not NULL. */
static void post_text(const char *phone, const char *wamid, const char *text)
{
    char wa_id[64] = "", from[64] = "", body[4096];
    if (phone) {
        snprintf(wa_id, sizeof wa_id, "\"wa_id\":\"%s\",", phone);
        snprintf(from, sizeof from, "\"from\":\"%s\",", phone);
    }
    snprintf(body, sizeof body,
             "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"%s\",\"changes\":"
             "[{\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\","
             "\"metadata\":{\"display_phone_number\":\"15550783881\",\"phone_number_id\":\"%s\"},"
             "\"contacts\":[{\"profile\":{\"name\":\"Sheena Nelson\",\"username\":\"@sheena\"},"
             "%s\"user_id\":\"" BSUID "\",\"parent_user_id\":\"" PARENT "\"}],"
             "\"messages\":[{%s\"from_user_id\":\"" BSUID "\",\"from_parent_user_id\":\"" PARENT
             "\",\"id\":\"%s\",\"timestamp\":\"%lld\",\"type\":\"text\","
             "\"text\":{\"body\":\"%s\"}}]}}]}]}",
             mw.waba, mw.session, wa_id, from, wamid, (long long)time(NULL), text);
    meta_world_post_webhook(body);
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

static void username_customer_is_one_contact(void **state)
{
    (void)state;
    meta_world_start("bsuid", META_WORLD_PACED, NULL);
    post_text(NULL, "wamid.bsuid.1", "Hi, I am a username user");
    post_text(NULL, "wamid.bsuid.2", "Still me");
    post_status("wamid.bsuid.sent");
    post_text(PHONE, "wamid.bsuid.3", "Now with my number");

    agent_wait(fx, 3, 90, "SELECT count(*) FROM chats WHERE whatsapp_account_id = %lld AND "
                          "wam_id IN ('wamid.bsuid.1', 'wamid.bsuid.2', 'wamid.bsuid.3')",
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
    /* each message once, all under that contact */
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM chats WHERE whatsapp_account_id = %lld "
                                   "AND wam_id LIKE 'wamid.bsuid.%%' AND contact_id = %lld",
                               (long long)mw.account, (long long)contact),
                     3);
    assert_int_equal(agent_int(fx, "SELECT unread_messages FROM contacts WHERE id = %lld",
                               (long long)contact),
                     3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(username_customer_is_one_contact, agent_test_setup,
                                        meta_world_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
