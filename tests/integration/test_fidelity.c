/*
 * test_fidelity.c - conversation fidelity through ingest on the real stack
 * (issue 20): what gateways send lands where the CRM expects it.
 *
 * Every test runs blazz-ingest, blazz-chat-sync and the webhook dispatcher
 * under a prefix of its own (agent_itest.h) with one endpoint on the test
 * receiver, posts gateway JSON to ingest's POST /v1/events signed as the
 * seeds sign it (X-WhatsApp-Signature: hex HMAC-SHA256 of the body, and no
 * X-Blazz-Gateway: ingest runs with the gateway registered with that key,
 * which serves the test's account, as its unnamed gateway), and checks
 * PostgreSQL and the webhooks the receiver got.
 *
 *  - the seeds' Node notifier payload (seed 002 DES-5, no message id): a
 *    private and a group message stored once each with a derived id marked
 *    in metadata; the same payloads posted again, also to a restarted
 *    ingest (its duplicate window is in memory, so the replay reaches
 *    chat-sync): still one row each, one message.created each, each with
 *    the seeds' chats.status 'delivered'; and the same payload naming its
 *    session by the account's numeric id, as the seeds' notifier does,
 *    stored for that account (a session whose id is those digits wins);
 *
 *  - reactions (set, replaced, removed), an edit and a delete for everyone
 *    of a message, and the same arriving before their target: the targets
 *    end right (reactions per sender, body and edit history, deleted_at),
 *    no extra rows, unread_messages unchanged by them, nothing left
 *    parked, one webhook each (message.reaction / .edited / .deleted); the
 *    whole story replayed to a restarted ingest changes nothing;
 *  - a group with five changes in a row (created, subject, a member added,
 *    one promoted, settings with invite code and picture), then the same
 *    five replayed twice to restarted ingests: the whatsapp_groups row is
 *    exact (members, participants_count, settings, invite_code, picture)
 *    and the receiver got five group.updated, each naming what changed;
 *  - a contact's push name with picture, business profile, and a report
 *    that changes nothing, then all three replayed: the contacts row exact
 *    (first_name, profile_picture, last_activity, business profile), two
 *    contact.updated, and a later message's old push name renames nothing;
 *  - every Meta message kind from Meta's webhook reference (text, image,
 *    interactive button and list replies, template quick-reply buttons,
 *    location, contacts, sticker, document, voice, video, unsupported,
 *    system, a kind nobody knows yet), a reaction (on its target) and a
 *    failed status with its errors,
 *    posted to POST /v1/meta/webhook signed as Meta signs: each stored
 *    with its fields (one test per kind, one fixture for all).
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
#include "blazz/v1/dead_letter.pb-c.h"
#include "core/uuid.h"
#include "ingest_itest.h"
#include "itest_http.h"
#include "wa/signature.h"

#define fx agent_test_fx
/* The signing key of the fixture's gateway: one per gateway, as each
 * gateway has its own (a key two gateways share names neither). */
static char gateway_key[80];
/* "BLAZZ_INGEST_UNNAMED_GATEWAY=<that gateway>": the notifier names none */
static char notifier_env[96];
#define ENDPOINT "/ok/fidelity"

static void start_ingest_for_the_notifier(void)
{
    const char *env[] = {notifier_env, NULL};
    agent_start_ingest(fx, env);
}

static void start_services(int64_t workspace)
{
    agent_endpoint(fx, workspace, ENDPOINT);
    agent_start_dispatcher(fx);
    agent_start_chat_sync(fx);
    start_ingest_for_the_notifier();
}

/* Register a gateway of kind signing with key (ARCHITECTURE.md §9.2), its
 * id into gateway, and bind the account to it. */
static void serve_account_by_gateway(int64_t account, const char *kind, const char *key,
                                     char gateway[48])
{
    itest_unique("fid", gateway, 48);
    itest_gateway_create(fx->wh.prefix, gateway, kind, "gateway-sim", key);
    agent_int(fx, "UPDATE whatsapp_accounts SET gateway_id = '%s' WHERE id = %lld RETURNING id",
              gateway, (long long)account);
}

/* POST body to ingest's path with the header "<sig_name>: <sig_prefix><hex
 * HMAC-SHA256(secret, body)>"; fails unless it answers want. The answer
 * stays valid until the next call. */
static const itest_http_reply *post_signed(const char *path, const char *sig_name,
                                           const char *sig_prefix, const char *secret,
                                           const char *body, long want)
{
    char sig[BZ_HMAC_SHA256_HEX_SIZE], sig_header[160], url[128];
    assert_int_equal(bz_hmac_sha256_hex(secret, strlen(secret), body, strlen(body), sig, NULL),
                     BZ_OK);
    snprintf(sig_header, sizeof sig_header, "%s: %s%s", sig_name, sig_prefix, sig);
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", fx->port, path);
    const char *headers[] = {"Content-Type: application/json", sig_header, NULL};
    static itest_http_reply reply;
    itest_http("POST", url, body, strlen(body), headers, 30000, &reply);
    if (reply.status != want)
        fail_msg("POST %s answered %ld: %s", path, reply.status, reply.body);
    return &reply;
}

/* POST body as the seeds' WebhookNotifier does: JSON, X-WhatsApp-Signature
 * = hex HMAC-SHA256(secret, body). Returns the event_id of the 202. */
static void post_gateway_json(const char *body, char event_id[BZ_UUID_STR_SIZE])
{
    const itest_http_reply *reply =
        post_signed("/v1/events", "X-WhatsApp-Signature", "", gateway_key, body, 202);
    const char *p = strstr(reply->body, "\"event_id\":\"");
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

/* A fixture of its own named name: a workspace with one connected webjs
 * account (its session id into *session, heap) and the three services. */
static int64_t start_fixture(const char *name, char **session)
{
    agent_fx_init(fx, name);
    int64_t ws = camp_workspace(&fx->camp);
    int64_t acct = camp_account(&fx->camp, ws, name, 1, 100, "{}");
    *session = itest_pg_textf(fx->camp.pg,
                              "SELECT session_id FROM whatsapp_accounts WHERE id = %lld",
                              (long long)acct);
    char gateway[48];
    itest_unique("fidelity-gateway-key-0123456789abcdef-", gateway_key, sizeof gateway_key);
    serve_account_by_gateway(acct, "webjs", gateway_key, gateway);
    snprintf(notifier_env, sizeof notifier_env, "BLAZZ_INGEST_UNNAMED_GATEWAY=%s", gateway);
    start_services(ws);
    return ws;
}

/* SIGKILL ingest and start another: its duplicate window is in memory, so
 * what is posted again reaches chat-sync. */
static void restart_ingest(void)
{
    agent_kill(&fx->ingest);
    start_ingest_for_the_notifier();
}

/* Wait until n messages with body "sentinel" were fanned out to webhooks. */
static void wait_sentinels(int64_t ws, int n)
{
    agent_wait(fx, n, 90,
               "SELECT count(*) FROM webhook_retry_queue WHERE workspace_id = %lld AND "
               "convert_from(payload, 'UTF8')::jsonb #>> '{data,chat,message}' = 'sentinel'",
               (long long)ws);
}

static int64_t events_queued(int64_t ws, const char *type)
{
    return agent_int(fx, "SELECT count(*) FROM webhook_retry_queue WHERE workspace_id = %lld AND "
                         "event_type = '%s'",
                     (long long)ws, type);
}

/* "a,b|c": what each queued event of type changed, in the order of their
 * changed_at (heap). */
static char *changes_listed(int64_t ws, const char *type)
{
    return itest_pg_textf(fx->camp.pg,
                          "SELECT string_agg(c, '|' ORDER BY at) FROM (SELECT "
                          "convert_from(payload, 'UTF8')::jsonb #>> '{data,change,changed_at}' AS "
                          "at, (SELECT string_agg(x, ',') FROM jsonb_array_elements_text("
                          "convert_from(payload, 'UTF8')::jsonb #> '{data,change,changed}') x) AS "
                          "c FROM webhook_retry_queue WHERE workspace_id = %lld AND event_type = "
                          "'%s') q",
                          (long long)ws, type);
}

/* ---- the seeds' notifier -------------------------------------------------------------- */

/* JSON.stringify(messageData) of seed 002 DES-5, key order and nulls kept;
 * session is the session_id's JSON (a string, or the account's id). */
static void notifier_private_of(char *out, size_t cap, const char *session, int64_t ws,
                                const char *body, long ts)
{
    snprintf(out, cap,
             "{\"session_id\":%s,\"workspace_id\":%lld,\"chat_type\":\"private\","
             "\"contact_phone\":\"6281234567890@c.us\",\"contact_name\":\"Budi\","
             "\"group_jid\":null,\"group_name\":null,\"sender_phone\":null,\"sender_name\":null,"
             "\"message_body\":\"%s\",\"message_type\":\"chat\",\"timestamp\":%ld,"
             "\"has_media\":false}",
             session, (long long)ws, body, ts);
}

static void notifier_private(char *out, size_t cap, const char *session, int64_t ws,
                             const char *body, long ts)
{
    char quoted[160];
    snprintf(quoted, sizeof quoted, "\"%s\"", session);
    notifier_private_of(out, cap, quoted, ws, body, ts);
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
    char *session;
    int64_t ws = start_fixture("notif", &session);

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
    restart_ingest();
    post_gateway_json(priv, again);
    post_gateway_json(group, again);
    /* each conversation's sentinel is applied, and its event fanned out,
     * after anything the replay could have caused */
    char sentinel[1024];
    notifier_private(sentinel, sizeof sentinel, session, ws, "sentinel", 1700000200);
    post_gateway_json(sentinel, again);
    notifier_group(sentinel, sizeof sentinel, session, ws, "sentinel", 1700000200);
    post_gateway_json(sentinel, again);
    wait_sentinels(ws, 2);

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
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM chats WHERE workspace_id = %lld AND "
                                    "status = 'delivered'",
                               (long long)ws),
                     4);
    free(session);
}

/* The seeds' notifier names its session by the account's numeric id (seed
 * 002: 'session_id' => 'exists:whatsapp_accounts,id'): stored for that
 * account, as the seeds' controller stores it (whatsapp_account_id), with
 * chats.status 'delivered'. A session whose id is those digits, served by
 * the same gateway, wins (Meta's session ids are digits too). */
static void seeds_notifier_names_the_account_by_its_id(void **state)
{
    (void)state;
    char *session, priv[1024], event_id[BZ_UUID_STR_SIZE], account_json[24];
    int64_t ws = start_fixture("notnum", &session);
    int64_t account = agent_int(fx, "SELECT id FROM whatsapp_accounts WHERE session_id = '%s'",
                                session);
    snprintf(account_json, sizeof account_json, "%lld", (long long)account);
    notifier_private_of(priv, sizeof priv, account_json, ws, "by id", 1700000000);
    post_gateway_json(priv, event_id);
    agent_wait(fx, 1, 90,
               "SELECT count(*) FROM chats WHERE whatsapp_account_id = %lld AND "
               "metadata->>'body' = 'by id' AND type = 'inbound' AND status = 'delivered'",
               (long long)account);

    int64_t digits = agent_int(fx,
                               "INSERT INTO whatsapp_accounts (workspace_id, session_id, status, "
                               "gateway_id) SELECT %lld, '%lld', 'connected', gateway_id FROM "
                               "whatsapp_accounts WHERE id = %lld RETURNING id",
                               (long long)ws, (long long)account, (long long)account);
    restart_ingest();
    notifier_private_of(priv, sizeof priv, account_json, ws, "by session", 1700000100);
    post_gateway_json(priv, event_id);
    agent_wait(fx, 1, 90,
               "SELECT count(*) FROM chats WHERE whatsapp_account_id = %lld AND "
               "metadata->>'body' = 'by session'",
               (long long)digits);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM chats WHERE whatsapp_account_id = %lld",
                               (long long)account),
                     1);
    free(session);
}

/* ---- reactions, edits, deletes ------------------------------------------------------- */

#define BUDI "6281234567890"

/* One whatsapp-web.js event from Budi, as a gateway posts it: a message,
 * or (target set) a reaction, an edit or a delete for everyone of target. */
static void post_from_budi(const char *session, const char *id, const char *type,
                           const char *body, long ts, const char *target, const char *emoji)
{
    char json[1024], extra[256] = "", event_id[BZ_UUID_STR_SIZE];
    if (target)
        snprintf(extra, sizeof extra, ",\"target_message_id\":\"%s\",\"reaction\":\"%s\"",
                 target, emoji ? emoji : "");
    snprintf(json, sizeof json,
             "{\"session_id\":\"%s\",\"message_id\":\"%s\",\"chat_type\":\"private\","
             "\"contact_phone\":\"" BUDI "@c.us\",\"contact_name\":\"Budi\","
             "\"message_body\":\"%s\",\"message_type\":\"%s\",\"timestamp\":%ld%s}",
             session, id, body, type, ts, extra);
    post_gateway_json(json, event_id);
}

typedef struct budi_event {
    const char *id, *type, *body;
    long ts;
    const char *target, *emoji;
} budi_event;

/* M1 first, then what is done to it; what is done to M2 before M2. */
static const budi_event actions_story[] = {
    {"M1", "chat", "Halo", 1700001000, NULL, NULL},
    {"R1", "reaction", "", 1700001010, "M1", "\xf0\x9f\x91\x8d"},
    {"R1b", "reaction", "", 1700001012, "M1", "\xf0\x9f\x98\x82"},
    {"E1", "edit", "Halo semua", 1700001020, "M1", NULL},
    {"D1", "revoked", "", 1700001030, "M1", NULL},
    {"R1c", "reaction", "", 1700001040, "M1", ""},
    {"R2", "reaction", "", 1700002010, "M2", "\xe2\x9d\xa4"},
    {"E2", "edit", "Apa kabar semua?", 1700002020, "M2", NULL},
    {"D2", "revoked", "", 1700002030, "M2", NULL},
    {"M2", "chat", "Apa kabar?", 1700002000, NULL, NULL},
};
#define STORY_LEN (sizeof actions_story / sizeof actions_story[0])

static void tell_story(const char *session)
{
    for (size_t i = 0; i < STORY_LEN; i++) {
        const budi_event *e = &actions_story[i];
        post_from_budi(session, e->id, e->type, e->body, e->ts, e->target, e->emoji);
    }
}

/* The one row of message id matches cond (on chats h). */
static void expect_chat(int64_t ws, const char *wam_id, const char *cond)
{
    int64_t n = agent_int(fx, "SELECT count(*) FROM chats h WHERE h.workspace_id = %lld AND "
                              "h.wam_id = '%s' AND %s",
                          (long long)ws, wam_id, cond);
    if (n != 1) {
        char *row = itest_pg_textf(fx->camp.pg, "SELECT row_to_json(h)::text FROM chats h WHERE "
                                                "workspace_id = %lld AND wam_id = '%s'",
                                   (long long)ws, wam_id);
        fail_msg("the row of %s does not match %s: %s", wam_id, cond, row);
    }
}

static void expect_targets_right(int64_t ws)
{
    expect_chat(ws, "M1", "h.metadata->>'body' = 'Halo semua' AND "
                          "h.metadata #>> '{edits,0,body}' = 'Halo' AND "
                          "jsonb_array_length(h.metadata->'edits') = 1 AND "
                          "h.metadata->>'edited_at' = '2023-11-14T22:30:20.000Z' AND "
                          "h.deleted_at = to_timestamp(1700001030) AND "
                          "(h.metadata->'revoked')::boolean AND "
                          "h.metadata->'reactions' = '{}'::jsonb AND "
                          "(h.metadata #>> '{reaction_clock,+" BUDI "}')::bigint = 1700001040000 "
                          "AND h.type = 'inbound' AND NOT h.is_read");
    expect_chat(ws, "M2", "h.metadata->>'body' = 'Apa kabar semua?' AND "
                          "h.metadata #>> '{edits,0,body}' = 'Apa kabar?' AND "
                          "h.deleted_at = to_timestamp(1700002030) AND "
                          "h.metadata #>> '{reactions,+" BUDI ",emoji}' = "
                          "'\xe2\x9d\xa4' AND NOT h.is_read");
}

static void reactions_edits_deletes_act_on_their_target(void **state)
{
    (void)state;
    char *session;
    int64_t ws = start_fixture("act", &session);
    int64_t acct = agent_int(fx, "SELECT id FROM whatsapp_accounts WHERE session_id = '%s'",
                             session);
    tell_story(session);
    agent_wait(fx, 1, 90, "SELECT count(*) FROM chats WHERE workspace_id = %lld AND wam_id = "
                          "'M2' AND deleted_at IS NOT NULL",
               (long long)ws);
    expect_targets_right(ws);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM chats WHERE workspace_id = %lld",
                               (long long)ws),
                     2);
    /* two messages, both unread: the actions counted nothing */
    assert_int_equal(agent_int(fx, "SELECT unread_messages FROM contacts WHERE workspace_id = "
                                    "%lld AND phone = '+" BUDI "'",
                               (long long)ws),
                     2);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM pending_receipts WHERE "
                                    "whatsapp_account_id = %lld",
                               (long long)acct),
                     0);
    /* one event each: 2 created, 3 reactions (set, replaced, removed) on M1,
     * one on M2, an edit and a delete each */
    wait_webhooks(ws, 10);
    assert_int_equal(webhooks_of_type("message.created"), 2);
    assert_int_equal(webhooks_of_type("message.reaction"), 4);
    assert_int_equal(webhooks_of_type("message.edited"), 2);
    assert_int_equal(webhooks_of_type("message.deleted"), 2);

    /* the whole story again, to an ingest that forgot it: nothing moves */
    restart_ingest();
    tell_story(session);
    post_from_budi(session, "M3", "chat", "sentinel", 1700003000, NULL, NULL);
    wait_sentinels(ws, 1);
    expect_targets_right(ws);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM chats WHERE workspace_id = %lld",
                               (long long)ws),
                     3);
    assert_int_equal(agent_int(fx, "SELECT unread_messages FROM contacts WHERE workspace_id = "
                                    "%lld AND phone = '+" BUDI "'",
                               (long long)ws),
                     3);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM webhook_retry_queue WHERE "
                                    "workspace_id = %lld",
                               (long long)ws),
                     11);
    free(session);
}

/* ---- group changes --------------------------------------------------------------------- */

#define GROUP "120363099990001@g.us"

/* Five changes in a row, as a whatsapp-web.js gateway reports them; the
 * member added is named by her LID with her phone beside it, and the group
 * keeps both. */
static const char *const group_story[] = {
    "\"action\":\"created\",\"name\":\"Tim Sales\",\"description\":\"Q4\","
    "\"participants_snapshot\":true,\"participants\":[{\"phone\":\"6281200000001\","
    "\"is_admin\":true},{\"phone\":\"6281200000002\"}],\"timestamp\":1700005000",
    "\"action\":\"subject\",\"name\":\"Tim Sales Jakarta\",\"actor_phone\":\"6281200000001\","
    "\"timestamp\":1700005010",
    "\"action\":\"add\",\"participants\":[{\"phone\":\"6281200000003\",\"jid\":"
    "\"98765432109876@lid\",\"name\":\"Citra\"}],"
    "\"actor_phone\":\"6281200000001\",\"timestamp\":1700005020",
    "\"action\":\"promote\",\"participants\":[{\"phone\":\"6281200000002\"}],"
    "\"actor_phone\":\"6281200000001\",\"timestamp\":1700005030",
    "\"action\":\"settings\",\"settings\":{\"announce\":true,\"restrict\":true},"
    "\"invite_code\":\"AbC123xyz\",\"picture_url\":\"https://pps.whatsapp.net/g.jpg\","
    "\"actor_phone\":\"6281200000002\",\"timestamp\":1700005040",
};

static void tell_group_story(const char *session)
{
    for (size_t i = 0; i < sizeof group_story / sizeof group_story[0]; i++) {
        char json[1024], event_id[BZ_UUID_STR_SIZE];
        snprintf(json, sizeof json,
                 "{\"event\":\"group_update\",\"session_id\":\"%s\",\"group_jid\":\"" GROUP
                 "\",%s}",
                 session, group_story[i]);
        post_gateway_json(json, event_id);
    }
}

#define GROUP_ROW                                                                                 \
    "SELECT json_build_array(name, description, participants, participants_count, settings, "     \
    "invite_code, group_metadata->'picture_url')::text FROM whatsapp_groups WHERE workspace_id = " \
    "%lld AND group_jid = '" GROUP "'"

static void group_changes_replayed_twice(void **state)
{
    (void)state;
    char *session;
    int64_t ws = start_fixture("grp", &session);
    tell_group_story(session);
    agent_wait(fx, 5, 90, "SELECT count(*) FROM webhook_retry_queue WHERE workspace_id = %lld "
                          "AND event_type = 'group.updated'",
               (long long)ws);
    char *row = itest_pg_textf(fx->camp.pg, GROUP_ROW, (long long)ws);
    itest_assert_text(
        "[\"Tim Sales Jakarta\", \"Q4\", [{\"jid\": \"6281200000001@s.whatsapp.net\", "
        "\"name\": \"\", \"phone\": \"+6281200000001\", \"isAdmin\": true, \"joinedAt\": null, "
        "\"isSuperAdmin\": false}, {\"jid\": \"6281200000002@s.whatsapp.net\", \"name\": \"\", "
        "\"phone\": \"+6281200000002\", \"isAdmin\": true, \"joinedAt\": null, \"isSuperAdmin\": "
        "false}, {\"jid\": \"98765432109876@lid\", \"name\": \"Citra\", \"phone\": "
        "\"+6281200000003\", \"isAdmin\": false, \"joinedAt\": null, \"isSuperAdmin\": false}], 3, "
        "{\"announce\": true, \"restrict\": true}, \"AbC123xyz\", "
        "\"https://pps.whatsapp.net/g.jpg\"]",
        itest_pg_textf(fx->camp.pg, GROUP_ROW, (long long)ws));
    /* each event says what it changed (the first message of a group names
     * it, so "created" finds the name there already) */
    itest_assert_text("description,participants|name|participants|participants|"
                      "settings,invite_code,picture_url",
                      changes_listed(ws, "group.updated"));

    /* the same five, twice, to ingests that forgot them */
    for (int round = 0; round < 2; round++) {
        restart_ingest();
        tell_group_story(session);
    }
    char sentinel[512], event_id[BZ_UUID_STR_SIZE];
    snprintf(sentinel, sizeof sentinel,
             "{\"session_id\":\"%s\",\"message_id\":\"GS1\",\"chat_type\":\"group\","
             "\"group_jid\":\"" GROUP "\",\"sender_phone\":\"6281200000001@c.us\","
             "\"message_body\":\"sentinel\",\"timestamp\":1700005100}",
             session);
    post_gateway_json(sentinel, event_id);
    wait_sentinels(ws, 1);
    itest_assert_text(row, itest_pg_textf(fx->camp.pg, GROUP_ROW, (long long)ws));
    assert_int_equal(events_queued(ws, "group.updated"), 5);
    wait_webhooks(ws, 6);
    assert_int_equal(webhooks_of_type("group.updated"), 5);
    free(row);
    free(session);
}

/* ---- contact changes -------------------------------------------------------------------- */

/* A new push name with a picture and the name the phone's owner saved
 * Budi under (one report, one event naming all three), a business profile,
 * then a report that changes nothing but the last activity. */
static const char *const contact_story[] = {
    "\"push_name\":\"Budi Santoso\",\"profile_picture_url\":\"https://pps.whatsapp.net/b1.jpg\","
    "\"saved_name\":\"Pak Budi (toko)\",\"timestamp\":1700006000",
    "\"business_profile\":{\"category\":\"Hardware Store\",\"website\":"
    "\"https://tokobudi.example\"},\"timestamp\":1700006010",
    "\"profile_picture_url\":\"https://pps.whatsapp.net/b1.jpg\",\"timestamp\":1700006020",
};

static void tell_contact_story(const char *session)
{
    for (size_t i = 0; i < sizeof contact_story / sizeof contact_story[0]; i++) {
        char json[1024], event_id[BZ_UUID_STR_SIZE];
        snprintf(json, sizeof json,
                 "{\"event\":\"contact_update\",\"session_id\":\"%s\",\"contact_phone\":"
                 "\"" BUDI "@c.us\",%s}",
                 session, contact_story[i]);
        post_gateway_json(json, event_id);
    }
}

static void expect_contact_right(int64_t ws, int unread)
{
    assert_int_equal(agent_int(fx,
                               "SELECT count(*) FROM contacts WHERE workspace_id = %lld AND "
                               "phone = '+" BUDI "' AND first_name = 'Budi Santoso' AND "
                               "profile_picture = 'https://pps.whatsapp.net/b1.jpg' AND "
                               "last_activity = to_timestamp(1700006020) AND metadata = "
                               "metadata || '{\"business_profile\": {\"category\": "
                               "\"Hardware Store\", \"website\": \"https://tokobudi.example\"}, "
                               "\"saved_name\": \"Pak Budi (toko)\"}'::jsonb AND "
                               "unread_messages = %d",
                               (long long)ws, unread),
                     1);
}

static void contact_changes_update_the_contact(void **state)
{
    (void)state;
    char *session;
    int64_t ws = start_fixture("cont", &session);
    post_from_budi(session, "C1", "chat", "Halo", 1700005900, NULL, NULL);
    tell_contact_story(session);
    agent_wait(fx, 2, 90, "SELECT count(*) FROM webhook_retry_queue WHERE workspace_id = %lld "
                          "AND event_type = 'contact.updated'",
               (long long)ws);
    agent_wait(fx, 1, 90, "SELECT count(*) FROM contacts WHERE workspace_id = %lld AND "
                          "last_activity = to_timestamp(1700006020)",
               (long long)ws);
    expect_contact_right(ws, 1);
    itest_assert_text("first_name,profile_picture,saved_name|business_profile",
                      changes_listed(ws, "contact.updated"));

    /* replayed to an ingest that forgot it; a message with the old push
     * name no longer renames the contact */
    restart_ingest();
    tell_contact_story(session);
    post_from_budi(session, "C2", "chat", "sentinel", 1700006100, NULL, NULL);
    wait_sentinels(ws, 1);
    expect_contact_right(ws, 2);
    assert_int_equal(events_queued(ws, "contact.updated"), 2);
    wait_webhooks(ws, 4);
    assert_int_equal(webhooks_of_type("contact.updated"), 2);
    free(session);
}

/* ---- Meta message kinds ------------------------------------------------------------- */

/* Unique like the gateways' keys: each test program's Meta app is a
 * gateway of its own. */
static char meta_secret[80];
#define META_FROM "6281299990001"

/* The WhatsApp Business Account of the fixture's Meta account. */
#define META_WABA "102290129340398"

/* One fixture for every kind: a Meta account of WABA META_WABA, ingest,
 * chat-sync and the dispatcher with one endpoint. */
static struct meta_fx {
    int64_t workspace, account, contact;
    char phone_number_id[32];
} meta;

static int meta_setup(void **state)
{
    agent_test_setup(state);
    agent_fx_init(fx, "meta");
    meta.workspace = camp_workspace(&fx->camp);
    snprintf(meta.phone_number_id, sizeof meta.phone_number_id, "1065%d%d", itest_random(10000, 99999),
             itest_random(10000, 99999));
    meta.account = agent_int(fx,
                             "INSERT INTO whatsapp_accounts (workspace_id, session_id, "
                             "provider_type, status, meta_waba_id) VALUES (%lld, '%s', 'meta', "
                             "'connected', '" META_WABA "') RETURNING id",
                             (long long)meta.workspace, meta.phone_number_id);
    meta.contact = agent_contact(fx, meta.workspace, "+" META_FROM, "Ani");
    char gateway[48], gateway_env[96];
    itest_unique("fidelity-meta-app-secret-0123456789-", meta_secret, sizeof meta_secret);
    serve_account_by_gateway(meta.account, "meta", meta_secret, gateway);
    snprintf(gateway_env, sizeof gateway_env, "BLAZZ_INGEST_META_GATEWAY=%s", gateway);
    agent_endpoint(fx, meta.workspace, ENDPOINT);
    agent_start_dispatcher(fx);
    agent_start_chat_sync(fx);
    const char *env[] = {gateway_env, NULL};
    agent_start_ingest(fx, env);
    return 0;
}


/* POST value (the inside of changes[0].value after metadata and contacts)
 * to /v1/meta/webhook, signed as Meta signs: X-Hub-Signature-256 =
 * "sha256=" + hex HMAC-SHA256(app secret, body). */
static void post_meta(const char *value_tail)
{
    char body[8192];
    snprintf(body, sizeof body,
             "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"" META_WABA "\","
             "\"changes\":[{\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\","
             "\"metadata\":{\"display_phone_number\":\"15550783881\",\"phone_number_id\":\"%s\"},"
             "\"contacts\":[{\"profile\":{\"name\":\"Ani\"},\"wa_id\":\"" META_FROM "\"}],%s}}]}]}",
             meta.phone_number_id, value_tail);
    post_signed("/v1/meta/webhook", "X-Hub-Signature-256", "sha256=", meta_secret, body, 200);
}

/* Post one message of Meta's documented shape: type, and the kind's
 * object (or extra top-level members) in content. Waits for its row. */
static void post_meta_message(const char *wamid, const char *type, const char *content)
{
    char tail[6144];
    snprintf(tail, sizeof tail,
             "\"messages\":[{\"from\":\"" META_FROM "\",\"id\":\"%s\",\"timestamp\":\"1700000300\","
             "\"type\":\"%s\",%s}]",
             wamid, type, content);
    post_meta(tail);
    agent_wait(fx, 1, 90, "SELECT count(*) FROM chats WHERE whatsapp_account_id = %lld AND "
                          "wam_id = '%s'",
               (long long)meta.account, wamid);
}

/* The one row of wamid matches the SQL condition cond (on chats h). */
static void expect_row(const char *wamid, const char *cond)
{
    int64_t n = agent_int(fx,
                          "SELECT count(*) FROM chats h WHERE h.whatsapp_account_id = %lld AND "
                          "h.wam_id = '%s' AND h.contact_id = %lld AND h.type = 'inbound' AND "
                          "h.provider_type = 'meta' AND %s",
                          (long long)meta.account, wamid, (long long)meta.contact, cond);
    if (n != 1) {
        char *row = itest_pg_textf(fx->camp.pg,
                                   "SELECT row_to_json(h)::text FROM chats h WHERE "
                                   "whatsapp_account_id = %lld AND wam_id = '%s'",
                                   (long long)meta.account, wamid);
        fail_msg("the row of %s does not match %s: %s", wamid, cond, row);
    }
}

static void meta_text(void **state)
{
    (void)state;
    post_meta_message("wamid.text1", "text", "\"text\":{\"body\":\"Halo, ada promo?\"}");
    expect_row("wamid.text1", "h.metadata->>'body' = 'Halo, ada promo?' AND "
                              "h.metadata->>'message_type' = 'text'");
}

static void meta_image(void **state)
{
    (void)state;
    post_meta_message("wamid.image1", "image",
                      "\"image\":{\"caption\":\"struk\",\"mime_type\":\"image/jpeg\","
                      "\"sha256\":\"8e4b1c\",\"id\":\"1479537139650973\"}");
    expect_row("wamid.image1", "h.metadata->>'message_type' = 'image' AND "
                               "(h.metadata->'has_media')::boolean AND "
                               "h.metadata #>> '{media,media_id}' = '1479537139650973' AND "
                               "h.metadata #>> '{media,mime_type}' = 'image/jpeg' AND "
                               "h.metadata #>> '{media,caption}' = 'struk' AND "
                               "h.metadata #>> '{media,sha256}' = '8e4b1c'");
}

static void meta_interactive_button_reply(void **state)
{
    (void)state;
    post_meta_message("wamid.btn1", "interactive",
                      "\"context\":{\"from\":\"15550783881\",\"id\":\"wamid.asked1\"},"
                      "\"interactive\":{\"type\":\"button_reply\",\"button_reply\":"
                      "{\"id\":\"change-button\",\"title\":\"Change\"}}");
    expect_row("wamid.btn1", "h.metadata->>'message_type' = 'interactive' AND "
                             "h.metadata->>'body' = 'Change' AND "
                             "h.metadata->>'quoted_wam_id' = 'wamid.asked1' AND "
                             "h.metadata #>> '{interactive_reply,type}' = 'button_reply' AND "
                             "h.metadata #>> '{interactive_reply,id}' = 'change-button' AND "
                             "h.metadata #>> '{interactive_reply,title}' = 'Change'");
}

static void meta_interactive_list_reply(void **state)
{
    (void)state;
    post_meta_message("wamid.list1", "interactive",
                      "\"interactive\":{\"type\":\"list_reply\",\"list_reply\":"
                      "{\"id\":\"priority_express\",\"title\":\"Priority Mail Express\","
                      "\"description\":\"Next Day to 2 Days\"}}");
    expect_row("wamid.list1", "h.metadata->>'body' = 'Priority Mail Express' AND "
                              "h.metadata #>> '{interactive_reply,type}' = 'list_reply' AND "
                              "h.metadata #>> '{interactive_reply,id}' = 'priority_express' AND "
                              "h.metadata #>> '{interactive_reply,description}' = "
                              "'Next Day to 2 Days'");
}

static void meta_template_quick_reply_button(void **state)
{
    (void)state;
    post_meta_message("wamid.qr1", "button",
                      "\"button\":{\"payload\":\"STOP_PROMOS\",\"text\":\"Stop promotions\"}");
    expect_row("wamid.qr1", "h.metadata->>'message_type' = 'button' AND "
                            "h.metadata->>'body' = 'Stop promotions' AND "
                            "h.metadata #>> '{interactive_reply,type}' = 'button' AND "
                            "h.metadata #>> '{interactive_reply,id}' = 'STOP_PROMOS'");
}

static void meta_location(void **state)
{
    (void)state;
    post_meta_message("wamid.loc1", "location",
                      "\"location\":{\"address\":\"1 Hacker Way, Menlo Park, CA 94025\","
                      "\"latitude\":37.483307,\"longitude\":-122.148981,\"name\":\"Main Street "
                      "Beach\",\"url\":\"https://www.meta.com\"}");
    expect_row("wamid.loc1", "h.metadata->>'message_type' = 'location' AND "
                             "(h.metadata #>> '{location,latitude}')::float8 = 37.483307 AND "
                             "(h.metadata #>> '{location,longitude}')::float8 = -122.148981 AND "
                             "h.metadata #>> '{location,name}' = 'Main Street Beach' AND "
                             "h.metadata #>> '{location,url}' = 'https://www.meta.com'");
}

static void meta_contacts(void **state)
{
    (void)state;
    post_meta_message("wamid.card1", "contacts",
                      "\"contacts\":[{\"name\":{\"formatted_name\":\"Budi Santoso\","
                      "\"first_name\":\"Budi\"},\"phones\":[{\"phone\":\"+62 812 3456 7890\","
                      "\"type\":\"CELL\",\"wa_id\":\"6281234567890\"}]}]");
    expect_row("wamid.card1", "h.metadata->>'message_type' = 'contacts' AND "
                              "jsonb_array_length(h.metadata->'vcards') = 1 AND "
                              "(h.metadata->'vcards'->>0)::jsonb #>> '{name,formatted_name}' = "
                              "'Budi Santoso' AND "
                              "(h.metadata->'vcards'->>0)::jsonb #>> '{phones,0,wa_id}' = "
                              "'6281234567890'");
}

static void meta_sticker(void **state)
{
    (void)state;
    post_meta_message("wamid.stk1", "sticker",
                      "\"sticker\":{\"mime_type\":\"image/webp\",\"sha256\":\"a1b2\","
                      "\"id\":\"1223456\",\"animated\":false}");
    expect_row("wamid.stk1", "h.metadata->>'message_type' = 'sticker' AND "
                             "h.metadata #>> '{media,media_id}' = '1223456' AND "
                             "h.metadata #>> '{media,mime_type}' = 'image/webp'");
}

static void meta_document(void **state)
{
    (void)state;
    post_meta_message("wamid.doc1", "document",
                      "\"document\":{\"caption\":\"invoice\",\"filename\":\"inv-17.pdf\","
                      "\"mime_type\":\"application/pdf\",\"sha256\":\"c0ffee\",\"id\":\"555\"}");
    expect_row("wamid.doc1", "h.metadata->>'message_type' = 'document' AND "
                             "h.metadata #>> '{media,filename}' = 'inv-17.pdf' AND "
                             "h.metadata #>> '{media,caption}' = 'invoice' AND "
                             "h.metadata #>> '{media,media_id}' = '555'");
}

static void meta_voice_audio(void **state)
{
    (void)state;
    post_meta_message("wamid.voice1", "audio",
                      "\"audio\":{\"mime_type\":\"audio/ogg; codecs=opus\",\"sha256\":\"ab\","
                      "\"id\":\"777\",\"voice\":true}");
    expect_row("wamid.voice1", "h.metadata->>'message_type' = 'voice' AND "
                               "h.metadata->>'raw_type' = 'audio' AND "
                               "h.metadata #>> '{media,media_id}' = '777'");
}

static void meta_video(void **state)
{
    (void)state;
    post_meta_message("wamid.vid1", "video",
                      "\"video\":{\"caption\":\"demo\",\"mime_type\":\"video/mp4\","
                      "\"sha256\":\"dd\",\"id\":\"888\"}");
    expect_row("wamid.vid1", "h.metadata->>'message_type' = 'video' AND "
                             "h.metadata #>> '{media,media_id}' = '888' AND "
                             "h.metadata #>> '{media,caption}' = 'demo'");
}

static void meta_unsupported(void **state)
{
    (void)state;
    post_meta_message("wamid.uns1", "unsupported",
                      "\"errors\":[{\"code\":131051,\"title\":\"Message type unknown\","
                      "\"message\":\"Message type unknown\",\"error_data\":{\"details\":"
                      "\"Message type is currently not supported.\"}}],"
                      "\"unsupported\":{\"type\":\"edit\"}");
    expect_row("wamid.uns1", "h.metadata->>'message_type' = 'unknown' AND "
                             "h.metadata->>'raw_type' = 'unsupported' AND "
                             "h.metadata #>> '{provider_error,code}' = '131051' AND "
                             "h.metadata #>> '{provider_error,title}' = 'Message type unknown' AND "
                             "h.metadata #>> '{provider_error,details}' = "
                             "'Message type is currently not supported.' AND "
                             "h.metadata #>> '{raw_content,type}' = 'edit'");
}

/* A system notice is stored with its text and Meta's object. (A change of
 * number or of BSUID is none: it moves the contact, decision 0010 and
 * test_meta_bsuid.) */
static void meta_system(void **state)
{
    (void)state;
    post_meta_message("wamid.sys1", "system",
                      "\"system\":{\"body\":\"Ani's security code changed\",\"identity\":"
                      "\"bbd/IqYDaTA=\",\"type\":\"customer_identity_changed\"}");
    expect_row("wamid.sys1", "h.metadata->>'message_type' = 'system' AND "
                             "h.metadata->>'body' = 'Ani''s security code changed' AND "
                             "h.metadata #>> '{raw_content,type}' = 'customer_identity_changed' AND "
                             "h.metadata #>> '{raw_content,identity}' = 'bbd/IqYDaTA='");
}

/* A kind no version of the contract knows is stored, with its raw type
 * and Meta's object, never refused. */
static void meta_unknown_kind(void **state)
{
    (void)state;
    post_meta_message("wamid.new1", "poll_creation",
                      "\"poll_creation\":{\"question\":\"Lunch?\",\"options\":[\"yes\",\"no\"]}");
    expect_row("wamid.new1", "h.metadata->>'message_type' = 'unknown' AND "
                             "h.metadata->>'raw_type' = 'poll_creation' AND "
                             "h.metadata #>> '{raw_content,question}' = 'Lunch?'");
}

/* A reaction is stored on its target (per sender), not as a row. */
static void meta_reaction(void **state)
{
    (void)state;
    post_meta_message("wamid.rtarget", "text", "\"text\":{\"body\":\"Promo?\"}");
    post_meta("\"messages\":[{\"from\":\"" META_FROM "\",\"id\":\"wamid.react1\","
              "\"timestamp\":\"1700000350\",\"type\":\"reaction\",\"reaction\":"
              "{\"message_id\":\"wamid.rtarget\",\"emoji\":\"\xf0\x9f\x91\x8d\"}}]");
    agent_wait(fx, 1, 90, "SELECT count(*) FROM chats WHERE whatsapp_account_id = %lld AND "
                          "wam_id = 'wamid.rtarget' AND metadata #>> "
                          "'{reactions,+" META_FROM ",emoji}' = '\xf0\x9f\x91\x8d'",
               (long long)meta.account);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM chats WHERE whatsapp_account_id = %lld "
                                    "AND wam_id = 'wamid.react1'",
                               (long long)meta.account),
                     0);
}

static void meta_status_failed_with_errors(void **state)
{
    (void)state;
    agent_int(fx,
              "INSERT INTO chats (workspace_id, whatsapp_account_id, contact_id, wam_id, type, "
              "chat_type, provider_type, message_status, sent_at) VALUES (%lld, %lld, %lld, "
              "'wamid.out1', 'outbound', 'private', 'meta', 'sent', now()) RETURNING id",
              (long long)meta.workspace, (long long)meta.account, (long long)meta.contact);
    post_meta("\"statuses\":[{\"id\":\"wamid.out1\",\"status\":\"failed\","
              "\"timestamp\":\"1700000400\",\"recipient_id\":\"" META_FROM "\","
              "\"errors\":[{\"code\":131047,\"title\":\"Re-engagement message\","
              "\"message\":\"Re-engagement message\",\"error_data\":{\"details\":\"Message "
              "failed to send because more than 24 hours have passed since the customer last "
              "replied to this number.\"},\"href\":\"https://developers.facebook.com/docs/"
              "whatsapp/cloud-api/support/error-codes/\"}]}]");
    agent_wait(fx, 1, 90, "SELECT count(*) FROM chats WHERE whatsapp_account_id = %lld AND "
                          "wam_id = 'wamid.out1' AND message_status = 'failed'",
               (long long)meta.account);
    assert_int_equal(agent_int(fx,
                               "SELECT count(*) FROM chats WHERE whatsapp_account_id = %lld AND "
                               "wam_id = 'wamid.out1' AND metadata->>'error_code' = '131047' AND "
                               "metadata->>'error_message' = 'Re-engagement message: Message "
                               "failed to send because more than 24 hours have passed since the "
                               "customer last replied to this number.'",
                               (long long)meta.account),
                     1);
}

/* ---- Meta's template notices ------------------------------------------------------- */

/* POST one change of field about WABA waba, at Unix second time, with
 * value's members, as Meta posts its WABA webhooks (no phone number). */
static void post_waba_change(const char *waba, long long time, const char *field,
                             const char *value)
{
    char body[4096];
    snprintf(body, sizeof body,
             "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"%s\",\"time\":%lld,"
             "\"changes\":[{\"value\":{%s},\"field\":\"%s\"}]}]}",
             waba, time, value, field);
    post_signed("/v1/meta/webhook", "X-Hub-Signature-256", "sha256=", meta_secret, body, 200);
}

/* message_template_status_update of template 1689556908129832
 * (order_update, en_US), as Meta's reference shows it; extra: the members
 * some events add (category, rejection_info, other_info). */
static void post_template_status(long long time, const char *event, const char *reason,
                                 const char *extra)
{
    char value[1024];
    snprintf(value, sizeof value,
             "\"event\":\"%s\",\"message_template_id\":1689556908129832,"
             "\"message_template_name\":\"order_update\",\"message_template_language\":\"en_US\","
             "\"reason\":\"%s\"%s",
             event, reason, extra);
    post_waba_change(META_WABA, time, "message_template_status_update", value);
}

static int64_t template_rows(const char *cond)
{
    return agent_int(fx, "SELECT count(*) FROM templates WHERE workspace_id = %lld AND %s",
                     (long long)meta.workspace, cond);
}

/* Rejected, approved, an older report arriving late, quality and category
 * changes, one report twice, an edit lock: the CRM-made template is
 * adopted (one row, its id kept), ends as Meta last said, and the CRM got
 * one template.updated per change, none for what changed nothing. */
static void meta_template_notices_keep_the_template(void **state)
{
    (void)state;
    int64_t id = agent_int(fx,
                           "INSERT INTO templates (workspace_id, name, language, body_text) VALUES "
                           "(%lld, 'order_update', 'en_US', 'Order {{1}} ships today') RETURNING id",
                           (long long)meta.workspace);
    post_template_status(1751247548, "REJECTED", "INVALID_FORMAT",
                         ",\"message_template_category\":\"MARKETING\",\"rejection_info\":{\"reason\":\"Variable parameters are not "
                         "defined\",\"recommendation\":\"Add samples\"}");
    agent_wait(fx, 1, 90, "SELECT count(*) FROM templates WHERE id = %lld AND status = 'REJECTED'",
               (long long)id);
    assert_int_equal(template_rows("rejection_reason = 'INVALID_FORMAT: Variable parameters are "
                                   "not defined' AND meta_waba_id = '" META_WABA "' AND "
                                   "meta_template_id = '1689556908129832' AND "
                                   "category = 'MARKETING'"),
                     1);
    post_template_status(1751247600, "APPROVED", "NONE", "");
    post_template_status(1751247570, "PENDING", "NONE", "");
    post_waba_change(META_WABA, 1751247700, "message_template_quality_update",
                     "\"previous_quality_score\":\"GREEN\",\"new_quality_score\":\"YELLOW\","
                     "\"message_template_id\":1689556908129832,\"message_template_name\":"
                     "\"order_update\",\"message_template_language\":\"en_US\"");
    post_waba_change(META_WABA, 1751247800, "template_category_update",
                     "\"message_template_id\":1689556908129832,\"message_template_name\":"
                     "\"order_update\",\"message_template_language\":\"en_US\","
                     "\"previous_category\":\"MARKETING\",\"new_category\":\"UTILITY\"");
    post_template_status(1751247600, "APPROVED", "NONE", "");
    post_template_status(1751247900, "LOCKED", "NONE",
                         ",\"other_info\":{\"title\":\"LOCKED\",\"description\":\"Locked for "
                         "edits\"}");
    /* one WABA's notices are one partition's, applied in order: the lock
     * is the last, so everything before it is applied when it is */
    agent_wait(fx, 1, 90, "SELECT count(*) FROM templates WHERE id = %lld AND meta_event = 'LOCKED'",
               (long long)id);
    assert_int_equal(template_rows("true"), 1);
    assert_int_equal(template_rows("status = 'APPROVED' AND rejection_reason IS NULL AND "
                                   "quality_score = 'YELLOW' AND category = 'UTILITY'"),
                     1);
    /* REJECTED, APPROVED, quality, category; the lock changed nothing the
     * CRM sees, and it is the last of the partition on chat.events too */
    agent_wait(fx, 4, 90,
               "SELECT count(*) FROM webhook_retry_queue WHERE workspace_id = %lld AND "
               "event_type = 'template.updated' AND status = 'success'",
               (long long)meta.workspace);
    assert_int_equal(webhooks_of_type("template.updated"), 4);
    assert_int_equal(agent_int(fx,
                               "SELECT count(*) FROM webhook_retry_queue WHERE workspace_id = "
                               "%lld AND event_type = 'template.updated' AND "
                               "convert_from(payload, 'UTF8')::jsonb #>> "
                               "'{data,template,status}' = 'APPROVED' AND "
                               "convert_from(payload, 'UTF8')::jsonb #>> "
                               "'{data,template,category}' = 'UTILITY' AND "
                               "(convert_from(payload, 'UTF8')::jsonb #>> "
                               "'{data,template,id}')::bigint = %lld",
                               (long long)meta.workspace, (long long)id),
                     1);
}

/* A dead letter of ingest's with error code code, if one came within
 * timeout_s. */
static int ingest_dead_letter_came(const char *code, int timeout_s)
{
    char topic[160];
    snprintf(topic, sizeof topic, "%swa.inbound.dlq", fx->wh.prefix);
    ingest_records rs = {0};
    int found = 0;
    for (int waited = 0; !found && waited <= timeout_s * 2; waited++) {
        ingest_records_read(topic, &rs);
        for (size_t i = 0; i < rs.count && !found; i++) {
            Blazz__V1__DeadLetter *dl =
                blazz__v1__dead_letter__unpack(NULL, rs.items[i].len, rs.items[i].value);
            found = dl && strcmp(dl->error_code, code) == 0;
            blazz__v1__dead_letter__free_unpacked(dl, NULL);
        }
        if (!found)
            itest_sleep_ms(500);
    }
    ingest_records_free(&rs);
    return found;
}

/* A WABA no account names: Meta gets its 200 (else it redelivers all of
 * it), the notice is dead-lettered with the reason, no template appears. */
static void meta_template_notice_of_an_unknown_waba_is_dead_lettered(void **state)
{
    (void)state;
    post_waba_change("987650000000001", 1751248000, "message_template_status_update",
                     "\"event\":\"APPROVED\",\"message_template_id\":555,"
                     "\"message_template_name\":\"stranger\",\"message_template_language\":\"en\","
                     "\"reason\":\"NONE\"");
    assert_true(ingest_dead_letter_came("unknown_business_account", 90));
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM templates WHERE name = 'stranger'"), 0);
}

int main(void)
{
    const struct CMUnitTest notifier[] = {
        cmocka_unit_test_setup_teardown(seeds_notifier_names_the_account_by_its_id,
                                        agent_test_setup, agent_test_teardown),
        cmocka_unit_test_setup_teardown(seeds_notifier_payload_is_stored_once, agent_test_setup,
                                        agent_test_teardown),
        cmocka_unit_test_setup_teardown(reactions_edits_deletes_act_on_their_target,
                                        agent_test_setup, agent_test_teardown),
        cmocka_unit_test_setup_teardown(group_changes_replayed_twice, agent_test_setup,
                                        agent_test_teardown),
        cmocka_unit_test_setup_teardown(contact_changes_update_the_contact, agent_test_setup,
                                        agent_test_teardown),
    };
    const struct CMUnitTest meta_kinds[] = {
        cmocka_unit_test(meta_text),
        cmocka_unit_test(meta_image),
        cmocka_unit_test(meta_interactive_button_reply),
        cmocka_unit_test(meta_interactive_list_reply),
        cmocka_unit_test(meta_template_quick_reply_button),
        cmocka_unit_test(meta_location),
        cmocka_unit_test(meta_contacts),
        cmocka_unit_test(meta_sticker),
        cmocka_unit_test(meta_document),
        cmocka_unit_test(meta_voice_audio),
        cmocka_unit_test(meta_video),
        cmocka_unit_test(meta_unsupported),
        cmocka_unit_test(meta_system),
        cmocka_unit_test(meta_unknown_kind),
        cmocka_unit_test(meta_reaction),
        cmocka_unit_test(meta_status_failed_with_errors),
        cmocka_unit_test(meta_template_notices_keep_the_template),
        cmocka_unit_test(meta_template_notice_of_an_unknown_waba_is_dead_lettered),
    };
    int failed = cmocka_run_group_tests(notifier, NULL, NULL);
    failed += cmocka_run_group_tests(meta_kinds, meta_setup, agent_test_teardown);
    return failed;
}
