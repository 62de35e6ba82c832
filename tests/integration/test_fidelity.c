/*
 * test_fidelity.c - conversation fidelity through ingest on the real stack
 * (issue 20): what gateways send lands where the CRM expects it.
 *
 * Every test runs blazz-ingest, blazz-chat-sync and the webhook dispatcher
 * under a prefix of its own (agent_itest.h) with one endpoint on the test
 * receiver, posts gateway JSON to ingest's POST /v1/events signed as the
 * seeds sign it (X-WhatsApp-Signature: hex HMAC-SHA256 of the body), and
 * checks PostgreSQL and the webhooks the receiver got.
 *
 *  - the seeds' Node notifier payload (seed 002 DES-5, no message id): a
 *    private and a group message stored once each with a derived id marked
 *    in metadata; the same payloads posted again, also to a restarted
 *    ingest (its duplicate window is in memory, so the replay reaches
 *    chat-sync): still one row each, one message.created each.
 *
 * "Nothing more came" is shown without timing: a sentinel message of each
 * conversation (same chat.sync and chat.events partitions, so applied and
 * fanned out after anything the replay caused) is waited for, and the
 * counts are taken after it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent_itest.h"
#include "core/uuid.h"
#include "itest_http.h"
#include "wa/signature.h"

#define fx agent_test_fx
#define GATEWAY_SECRET "fidelity-gateway-secret"
#define ENDPOINT "/ok/fidelity"

static char secret_env[] = "BLAZZ_INGEST_GATEWAY_SECRET=" GATEWAY_SECRET;

static void start_services(int64_t workspace)
{
    agent_endpoint(fx, workspace, ENDPOINT);
    agent_start_dispatcher(fx);
    agent_start_chat_sync(fx);
    const char *env[] = {secret_env, NULL};
    agent_start_ingest(fx, env);
}

/* POST body as the seeds' WebhookNotifier does: JSON, X-WhatsApp-Signature
 * = hex HMAC-SHA256(secret, body). Returns the event_id of the 202. */
static void post_gateway_json(const char *body, char event_id[BZ_UUID_STR_SIZE])
{
    char sig[BZ_HMAC_SHA256_HEX_SIZE], sig_header[160], url[128];
    assert_int_equal(bz_hmac_sha256_hex(GATEWAY_SECRET, strlen(GATEWAY_SECRET), body,
                                        strlen(body), sig, NULL),
                     BZ_OK);
    snprintf(sig_header, sizeof sig_header, "X-WhatsApp-Signature: %s", sig);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/events", fx->port);
    const char *headers[] = {"Content-Type: application/json", sig_header, NULL};
    static itest_http_reply reply;
    itest_http("POST", url, body, strlen(body), headers, 30000, &reply);
    if (reply.status != 202)
        fail_msg("POST /v1/events answered %ld: %s", reply.status, reply.body);
    const char *p = strstr(reply.body, "\"event_id\":\"");
    assert_non_null(p);
    snprintf(event_id, BZ_UUID_STR_SIZE, "%.36s", p + 12);
}

/* Webhook deliveries of the endpoint whose body's type is type. */
static size_t webhooks_of_type(const char *type)
{
    json_t *all = wh_requests(&fx->wh), *reqs[256];
    size_t n = wh_filter(all, ENDPOINT, reqs, 256), found = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *body = json_loads(json_string_value(json_object_get(reqs[i], "body")), 0, NULL);
        found += body && strcmp(json_string_value(json_object_get(body, "type")), type) == 0;
        json_decref(body);
    }
    json_decref(all);
    return found;
}

static void wait_webhooks(int64_t workspace, int64_t want)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM webhook_retry_queue WHERE workspace_id = %lld AND status = "
             "'success'",
             (long long)workspace);
    wh_wait_for(&fx->wh, sql, want, 90000);
}

/* ---- the seeds' notifier -------------------------------------------------------------- */

/* JSON.stringify(messageData) of seed 002 DES-5, key order and nulls kept. */
static void notifier_private(char *out, size_t cap, const char *session, int64_t ws,
                             const char *body, long ts)
{
    snprintf(out, cap,
             "{\"session_id\":\"%s\",\"workspace_id\":%lld,\"chat_type\":\"private\","
             "\"contact_phone\":\"6281234567890@c.us\",\"contact_name\":\"Budi\","
             "\"group_jid\":null,\"group_name\":null,\"sender_phone\":null,\"sender_name\":null,"
             "\"message_body\":\"%s\",\"message_type\":\"chat\",\"timestamp\":%ld,"
             "\"has_media\":false}",
             session, (long long)ws, body, ts);
}

static void notifier_group(char *out, size_t cap, const char *session, int64_t ws,
                           const char *body, long ts)
{
    snprintf(out, cap,
             "{\"session_id\":\"%s\",\"workspace_id\":%lld,\"chat_type\":\"group\","
             "\"contact_phone\":null,\"contact_name\":null,"
             "\"group_jid\":\"120363012345678901@g.us\",\"group_name\":\"Tim Sales\","
             "\"sender_phone\":\"6289876543210@c.us\",\"sender_name\":\"Sari\","
             "\"message_body\":\"%s\",\"message_type\":\"chat\",\"timestamp\":%ld,"
             "\"has_media\":false}",
             session, (long long)ws, body, ts);
}

static void seeds_notifier_payload_is_stored_once(void **state)
{
    (void)state;
    agent_fx_init(fx, "notif");
    int64_t ws = camp_workspace(&fx->camp);
    int64_t acct = camp_account(&fx->camp, ws, "notif-a", 1, 100, "{}");
    char *session = itest_pg_textf(fx->camp.pg,
                                   "SELECT session_id FROM whatsapp_accounts WHERE id = %lld",
                                   (long long)acct);
    start_services(ws);

    char priv[1024], group[1024], first[BZ_UUID_STR_SIZE], again[BZ_UUID_STR_SIZE];
    notifier_private(priv, sizeof priv, session, ws, "Halo", 1700000000);
    notifier_group(group, sizeof group, session, ws, "rapat jam 3", 1700000100);
    post_gateway_json(priv, first);
    post_gateway_json(priv, again);
    assert_string_equal(first, again);
    post_gateway_json(group, first);
    post_gateway_json(group, again);
    assert_string_equal(first, again);
    agent_wait(fx, 2, 90, "SELECT count(*) FROM chats WHERE workspace_id = %lld", (long long)ws);

    /* a restarted ingest has forgotten both: the replay reaches chat-sync */
    agent_kill(&fx->ingest);
    const char *env[] = {secret_env, NULL};
    agent_start_ingest(fx, env);
    post_gateway_json(priv, again);
    post_gateway_json(group, again);
    /* each conversation's sentinel is applied, and its event fanned out,
     * after anything the replay could have caused */
    char sentinel[1024];
    notifier_private(sentinel, sizeof sentinel, session, ws, "sentinel", 1700000200);
    post_gateway_json(sentinel, again);
    notifier_group(sentinel, sizeof sentinel, session, ws, "sentinel", 1700000200);
    post_gateway_json(sentinel, again);
    agent_wait(fx, 2, 90,
               "SELECT count(*) FROM webhook_retry_queue WHERE workspace_id = %lld AND "
               "convert_from(payload, 'UTF8')::jsonb #>> '{data,chat,message}' = 'sentinel'",
               (long long)ws);

    assert_int_equal(agent_int(fx, "SELECT count(*) FROM chats WHERE workspace_id = %lld",
                               (long long)ws),
                     4);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM webhook_retry_queue WHERE "
                                    "workspace_id = %lld",
                               (long long)ws),
                     4);
    assert_int_equal(agent_int(fx,
                               "SELECT count(*) FROM chats h JOIN contacts c ON c.id = "
                               "h.contact_id WHERE h.workspace_id = %lld AND c.phone = "
                               "'+6281234567890' AND c.first_name = 'Budi' AND h.type = 'inbound' "
                               "AND h.chat_type = 'private' AND h.metadata->>'body' = 'Halo' AND "
                               "h.wam_id LIKE 'derived-%%' AND "
                               "(h.metadata->'wam_id_derived')::boolean",
                               (long long)ws),
                     1);
    assert_int_equal(agent_int(fx,
                               "SELECT count(*) FROM chats h JOIN whatsapp_groups g ON g.id = "
                               "h.group_id WHERE h.workspace_id = %lld AND g.group_jid = "
                               "'120363012345678901@g.us' AND g.name = 'Tim Sales' AND "
                               "h.chat_type = 'group' AND h.metadata->>'body' = 'rapat jam 3' AND "
                               "h.metadata->>'sender_phone' = "
                               "'+6289876543210' AND h.metadata->>'sender_name' = 'Sari' AND "
                               "h.wam_id LIKE 'derived-%%' AND "
                               "(h.metadata->'wam_id_derived')::boolean",
                               (long long)ws),
                     1);
    assert_int_equal(agent_int(fx,
                               "SELECT unread_messages FROM contacts WHERE workspace_id = %lld "
                               "AND phone = '+6281234567890'",
                               (long long)ws),
                     2);
    wait_webhooks(ws, 4);
    assert_int_equal(webhooks_of_type("message.created"), 4);
    free(session);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(seeds_notifier_payload_is_stored_once, agent_test_setup,
                                        agent_test_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
