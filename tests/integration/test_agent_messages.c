/*
 * test_agent_messages.c - two-way messaging end to end on the real stack
 * (issue 16, ARCHITECTURE.md §11): ingest, chat-sync, campaign-sender, the
 * webhook dispatcher and the gateway simulator as real processes under a
 * unique topic prefix (support/agent_itest.h).
 *
 *  - agent_text_round_trip: a user_id of another workspace only is refused
 *    404 unknown_user (issue 32); POST /v1/messages -> one chats row, pending ->
 *    sent -> delivered -> read with the receipts' own timestamps, one
 *    wa.outbound record, the echo applied to the same row, the contact's
 *    last_message_at moved, and the webhooks message.created then three
 *    message.status, queued for the CRM in that order and each verified with
 *    an independent Standard Webhooks verifier (deliveries may overlap: their
 *    events' timestamps give the order back);
 *  - same_key_three_times_across_kills: one idempotency key sent three
 *    times, once across a SIGKILL of campaign-sender while the message was
 *    queued and once across a SIGKILL of ingest, and once written
 *    otherwise: one row, one send at the gateway, one send_ledger row; the
 *    key with another body -> 409 idempotency_key_reused;
 *  - queued_again_by_a_replay_leaves_only_if_never_sent: one whose row
 *    has the provider's id (its echo replayed) leaves the queue unsent;
 *    while a restore fence is up no other leaves nor fails; once lifted,
 *    it is sent once;
 *  - burst_in_one_batch: twelve sends accepted while chat-sync is down, one
 *    key three times among them, applied by chat-sync as one batch: one row
 *    per message id, queued, released and received once each, a
 *    conversation's in the order accepted;
 *  - mark_read_three_times_and_replayed: three unread inbound messages; the
 *    same mark-read three times, then crm.commands replayed from Kafka to a
 *    restarted chat-sync: unread_messages falls by exactly 3 and stays there,
 *    the messages keep their read_at, one chat.read event and one read
 *    receipt at the gateway; a bound by message id covers exactly up to it;
 *  - bad_input: unknown contact (by id, phone or user JID, each named as
 *    given), another workspace's contact, no recipient or two, unknown,
 *    under-parameterized and too long (rendered) template, an interactive
 *    message through a whatsapp-web.js account, a body not declared
 *    application/json (415), revoked / missing / wrong key, a 2 MB
 *    body, the workspace's request rate (429 + Retry-After), and on the
 *    Kafka path (blazzctl send) dead letters with the reason; nothing of a
 *    refused request is stored or queued;
 *  - account_selection_and_failover: the seeds' ProviderSelector order (the
 *    account the contact last talked to over the primary), failover when it
 *    disconnects, before queueing and while queued; the echo moves the row
 *    to the account that sent it;
 *  - reaction_sent_and_removed: an agent's reaction to a customer's message
 *    and then its removal (empty emoji) reach the gateway; its echo sets,
 *    then removes, the account's ("me") reaction on the target, each
 *    reaction's own row reaches sent, no counter moves; a reaction to a
 *    message the conversation does not have is refused (404); blazzctl
 *    send --reaction too, its unknown target dead-lettered unknown_message;
 *  - contacts_read_by_any_identifier (issues 50, 54): a contact found by
 *    its phone (E.164 or bare digits) and by its BSUID, by its uuid and by
 *    its id, and by its LID; another workspace's answered 404 as a
 *    missing one; none, several, and a malformed identifier refused 400
 *    naming the argument; a conversation of 7 messages (a deleted one and another
 *    contact's beside them, timestamps shared) read 3 a page to the end:
 *    every message once, newest first, as GET /v1/messages/{id} shows it;
 *    a path of no route answered 404 not_found, as openapi.yaml says;
 *  - sessions_conversations_and_group_pages (issue 54): the sessions one
 *    a page, a disconnected one among them, a deleted one not; the inbox
 *    (GET /v1/conversations) two a page and one session's one a page,
 *    seven contacts and three groups sharing seconds so that pages end on
 *    a contact with a group of its second next, in the order the tables
 *    give (latest first, contacts before groups, id descending), a
 *    deleted contact left out, another workspace's session empty; a row
 *    as the inbox shows it (its latest message not a reaction, nor one
 *    deleted for everyone); a group's
 *    conversation by its id and uuid two a page, each message as GET
 *    /v1/messages/{id} shows it, its author's phone, name and BSUID;
 *    refusals naming their field; all read on a connection of their own
 *    (crm.read_dsn, read-only as a replica's), a create beside them.
 * Every wait polls PostgreSQL or a file with a deadline.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent_itest.h"
#include "blazz/v1/campaign.pb-c.h"
#include "blazz/v1/chat_event.pb-c.h"
#include "core/clock.h"
#include "core/uuid.h"
#include "itest.h"
#include "itest_http.h"
#include "kafka/topics.h"

#define TS_UTC(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

#define fx agent_test_fx

/* POST a text message; returns the message id (into id). */
static void send_text(const char *key, const char *idem, int64_t contact, const char *body,
                      char *id)
{
    char req[512], resp[512];
    snprintf(req, sizeof req,
             "{\"idempotency_key\":\"%s\",\"contact_id\":%lld,\"body\":\"%s\"}", idem,
             (long long)contact, body);
    long status = agent_post(fx, "/v1/messages", key, req, resp, sizeof resp, NULL, 0);
    if (status != 202)
        fail_msg("POST /v1/messages answered %ld: %s", status, resp);
    agent_message_id(resp, id);
}

/* The refusal of body: status, reason, field and, unless NULL, the whole
 * message. */
static void expect_refusal_saying(const char *key, const char *body, long status,
                                  const char *reason, const char *field, const char *message)
{
    char resp[1024];
    long got = agent_post(fx, "/v1/messages", key, body, resp, sizeof resp, NULL, 0);
    if (got != status)
        fail_msg("expected %ld for %.80s, got %ld: %s", status, body, got, resp);
    json_t *j = json_loads(resp, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "error")), reason);
    if (field)
        assert_string_equal(json_string_value(json_object_get(j, "field")), field);
    if (message)
        assert_string_equal(json_string_value(json_object_get(j, "message")), message);
    json_decref(j);
}

static void expect_refusal(const char *key, const char *body, long status, const char *reason,
                           const char *field)
{
    expect_refusal_saying(key, body, status, reason, field, NULL);
}

/* Records of <prefix>wa.outbound.gw.sim (the outbox routes the sends of the
 * simulator's sessions to their gateway's topic) carrying idempotency key
 * `key`. */
typedef struct outbound_count {
    const char *key;
    int n;
} outbound_count;

static void count_outbound(void *ctx, const rd_kafka_message_t *m)
{
    outbound_count *c = ctx;
    Blazz__V1__SendMessage *sm =
        blazz__v1__send_message__unpack(NULL, m->len, (const uint8_t *)m->payload);
    if (sm && strcmp(sm->idempotency_key, c->key) == 0)
        c->n++;
    if (sm)
        blazz__v1__send_message__free_unpacked(sm, NULL);
}

static int outbound_records(const char *key)
{
    char topic[BZ_TOPIC_NAME_MAX];
    assert_int_equal(bz_topic_gateway_name(fx->wh.prefix, BZ_GATEWAY_TOPIC_OUTBOUND, "sim", topic,
                                           sizeof topic, NULL),
                     BZ_OK);
    outbound_count c = {key, 0};
    itest_consume_all(topic, count_outbound, &c);
    return c.n;
}

/* ---- the round trip ------------------------------------------------------------------ */

/* The webhook deliveries of path, each checked with the verifier. */
static size_t verified_webhooks(const char *path, json_t **out, size_t cap, json_t **all)
{
    *all = wh_requests(&fx->wh);
    size_t n = wh_filter(*all, path, out, cap);
    for (size_t i = 0; i < n; i++) {
        const char *body = json_string_value(json_object_get(out[i], "body"));
        assert_true(wh_verify_standard(AGENT_SECRET, wh_header(out[i], "webhook-id"),
                                       wh_header(out[i], "webhook-timestamp"), body,
                                       wh_header(out[i], "webhook-signature")));
    }
    return n;
}

/* Webhook deliveries by the "timestamp" of their event (ISO 8601 UTC with
 * milliseconds sorts as text): the order a CRM restores when deliveries
 * overlap. */
static int by_event_time(const void *x, const void *y)
{
    json_t *a = json_loads(json_string_value(json_object_get(*(json_t *const *)x, "body")), 0, NULL);
    json_t *b = json_loads(json_string_value(json_object_get(*(json_t *const *)y, "body")), 0, NULL);
    int c = strcmp(json_string_value(json_object_get(a, "timestamp")),
                   json_string_value(json_object_get(b, "timestamp")));
    json_decref(a);
    json_decref(b);
    return c;
}

static void assert_webhook(json_t *req, const char *type, const char *status,
                           const char *changed_at, const char *message_id, int64_t user)
{
    json_t *body = json_loads(json_string_value(json_object_get(req, "body")), 0, NULL);
    assert_non_null(body);
    assert_string_equal(json_string_value(json_object_get(body, "type")), type);
    json_t *data = json_object_get(body, "data"), *chat = json_object_get(data, "chat");
    assert_string_equal(json_string_value(json_object_get(chat, "uuid")), message_id);
    assert_string_equal(json_string_value(json_object_get(chat, "type")), "outbound");
    if (strcmp(type, "message.created") == 0) {
        assert_string_equal(json_string_value(json_object_get(chat, "message_status")), status);
        assert_string_equal(json_string_value(json_object_get(chat, "message")), "Halo dari agen");
        assert_int_equal(json_integer_value(json_object_get(chat, "user_id")), user);
    } else {
        json_t *change = json_object_get(data, "status");
        assert_string_equal(json_string_value(json_object_get(change, "status")), status);
        assert_string_equal(json_string_value(json_object_get(change, "changed_at")), changed_at);
    }
    json_decref(body);
}

static void assert_member_text(const json_t *doc, const char *name, const char *want)
{
    const char *got = json_string_value(json_object_get(doc, name));
    if (!got || strcmp(got, want) != 0)
        fail_msg("%s: got %s, want %s", name, got ? got : "(not a string)", want);
}

/* issue 54: what the API wrote, read back over it (message with its text,
 * sessions), and nothing of it from another workspace's key. */
static void read_back_over_http(const char *key, int64_t other_ws, const char *id,
                                const char *sent, const char *read, int64_t user, int64_t acct)
{
    char path[128], resp[512];
    json_t *doc;
    snprintf(path, sizeof path, "/v1/messages/%s", id);
    assert_int_equal(agent_get_json(fx, path, key, &doc), 200);
    assert_member_text(doc, "message_id", id);
    assert_member_text(doc, "status", "read");
    assert_member_text(doc, "direction", "outbound");
    assert_member_text(doc, "sent_at", sent);
    assert_member_text(doc, "read_at", read);
    assert_int_equal(json_integer_value(json_object_get(doc, "user_id")), user);
    assert_int_equal(json_integer_value(json_object_get(doc, "whatsapp_account_id")), acct);
    assert_true(json_is_null(json_object_get(doc, "error")));
    assert_member_text(doc, "body", "Halo dari agen");
    assert_true(json_is_null(json_object_get(doc, "media")));
    char *wam = itest_pg_textf(fx->camp.pg, "SELECT wam_id FROM chats WHERE uuid = '%s'", id);
    assert_member_text(doc, "wam_id", wam);
    json_decref(doc);

    char *other_key = agent_api_key(fx, other_ws);
    assert_int_equal(agent_get_json(fx, path, other_key, &doc), 404);
    assert_member_text(doc, "error", "unknown_message");
    json_decref(doc);
    assert_int_equal(agent_get_json(fx, "/v1/messages/not-a-uuid", key, &doc), 400);
    assert_member_text(doc, "error", "invalid_field");
    json_decref(doc);
    assert_int_equal(agent_call(fx, "PUT", path, key, resp, sizeof resp), 405);
    assert_int_equal(agent_call(fx, "GET", path, NULL, resp, sizeof resp), 401);

    char *session = itest_pg_textf(fx->camp.pg, "SELECT session_id FROM whatsapp_accounts "
                                                "WHERE id = %lld", (long long)acct);
    assert_int_equal(agent_get_json(fx, "/v1/sessions", key, &doc), 200);
    json_t *list = json_object_get(doc, "sessions");
    assert_int_equal(json_array_size(list), 1);
    assert_member_text(json_array_get(list, 0), "session_id", session);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 0),
                                                        "whatsapp_account_id")), acct);
    json_decref(doc);
    snprintf(path, sizeof path, "/v1/sessions/%s", session);
    assert_int_equal(agent_get_json(fx, path, key, &doc), 200);
    assert_member_text(doc, "session_id", session);
    assert_member_text(doc, "status", "connected");
    json_decref(doc);
    assert_int_equal(agent_get_json(fx, path, other_key, &doc), 404);
    assert_member_text(doc, "error", "unknown_session");
    json_decref(doc);
    assert_int_equal(agent_get_json(fx, "/v1/sessions", other_key, &doc), 200);
    assert_int_equal(json_array_size(json_object_get(doc, "sessions")), 0);
    json_decref(doc);
    free(session);
    free(other_key);
    free(wam);
}

static void agent_text_round_trip(void **state)
{
    (void)state;
    agent_fx_init(fx, "rt");
    int64_t ws = camp_workspace(&fx->camp);
    int64_t acct = camp_account(&fx->camp, ws, "rt-a", 1, 100, "{}");
    int64_t contact = agent_contact(fx, ws, "+6281300000001", "Ann");
    int64_t user = agent_int(fx, "INSERT INTO users (email) VALUES ('agent-%s@example.com') "
                                 "RETURNING id", fx->wh.token);
    agent_int(fx, "INSERT INTO workspace_users (workspace_id, user_id) VALUES (%lld, %lld) "
                  "RETURNING user_id", (long long)ws, (long long)user);
    /* a user of another workspace only (issue 32: any user id was taken) */
    int64_t other_ws = camp_workspace(&fx->camp);
    int64_t stranger = agent_int(fx, "INSERT INTO users (email) VALUES ('other-%s@example.com') "
                                     "RETURNING id", fx->wh.token);
    agent_int(fx, "INSERT INTO workspace_users (workspace_id, user_id) VALUES (%lld, %lld) "
                  "RETURNING user_id", (long long)other_ws, (long long)stranger);
    char *key = agent_api_key(fx, ws);
    agent_endpoint(fx, ws, "/ok/agent");
    agent_start_dispatcher(fx);
    agent_start_chat_sync(fx);
    camp_start_sender(&fx->camp, 0, NULL);
    agent_start_sim(fx);
    agent_start_ingest(fx, NULL);

    char req[512], resp[512], id[BZ_UUID_STR_SIZE];
    snprintf(req, sizeof req,
             "{\"idempotency_key\":\"round-trip-0\",\"contact_id\":%lld,"
             "\"body\":\"Halo dari agen\",\"user_id\":%lld}",
             (long long)contact, (long long)stranger);
    assert_int_equal(agent_post(fx, "/v1/messages", key, req, resp, sizeof resp, NULL, 0), 404);
    assert_non_null(strstr(resp, "unknown_user"));
    snprintf(req, sizeof req,
             "{\"idempotency_key\":\"round-trip-1\",\"contact_id\":%lld,"
             "\"body\":\"Halo dari agen\",\"user_id\":%lld}",
             (long long)contact, (long long)user);
    assert_int_equal(agent_post(fx, "/v1/messages", key, req, resp, sizeof resp, NULL, 0), 202);
    agent_message_id(resp, id);
    agent_wait(fx, 1, 90, "SELECT count(*) FROM chats WHERE uuid = '%s' AND message_status = 'read'",
               id);

    /* one row, the agent's, moved by the echo and the receipts */
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM chats WHERE workspace_id = %lld",
                               (long long)ws), 1);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM chats WHERE uuid = '%s' AND "
                                    "type = 'outbound' AND user_id = %lld AND "
                                    "whatsapp_account_id = %lld AND wam_id IS NOT NULL AND "
                                    "sent_at <= delivered_at AND delivered_at <= read_at AND "
                                    "metadata->>'client_reference' = '%s'",
                               id, (long long)user, (long long)acct, id), 1);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM contacts c JOIN chats h ON "
                                    "h.contact_id = c.id WHERE h.uuid = '%s' AND "
                                    "c.last_message_at = h.created_at AND "
                                    "c.latest_chat_created_at = h.created_at",
                               id), 1);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM outbound_queue"), 0);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM send_ledger WHERE reference = '%s' "
                                    "AND kind = 'agent'", id), 1);
    assert_int_equal(outbound_records(id), 1);
    assert_int_equal(agent_sends_of(fx, id), 1);

    /* the webhooks: created (pending), then sent, delivered, read, in order */
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM webhook_retry_queue WHERE workspace_id = %lld "
                              "AND status = 'success'", (long long)ws);
    wh_wait_for(&fx->wh, sql, 4, 60000);
    char *sent = itest_pg_textf(fx->camp.pg, "SELECT " TS_UTC("sent_at") " FROM chats WHERE uuid = '%s'", id);
    char *delivered = itest_pg_textf(fx->camp.pg, "SELECT " TS_UTC("delivered_at") " FROM chats WHERE uuid = '%s'", id);
    char *read = itest_pg_textf(fx->camp.pg, "SELECT " TS_UTC("read_at") " FROM chats WHERE uuid = '%s'", id);
    /* queued for the CRM in the order chat.events carried them */
    itest_assert_text("pending,sent,delivered,read",
                      itest_pg_textf(fx->camp.pg,
                                     "SELECT string_agg(coalesce(b #>> '{data,status,status}', "
                                     "b #>> '{data,chat,message_status}'), ',' ORDER BY id) FROM "
                                     "(SELECT id, convert_from(payload, 'UTF8')::jsonb AS b FROM "
                                     "webhook_retry_queue WHERE workspace_id = %lld) q",
                                     (long long)ws));
    /* delivered, signed, and in order by their event time */
    json_t *reqs[16], *all;
    size_t n = verified_webhooks("/ok/agent", reqs, 16, &all);
    assert_int_equal(n, 4);
    qsort(reqs, n, sizeof reqs[0], by_event_time); /* NOLINT(bugprone-sizeof-expression) */
    assert_webhook(reqs[0], "message.created", "pending", NULL, id, user);
    assert_webhook(reqs[1], "message.status", "sent", sent, id, user);
    assert_webhook(reqs[2], "message.status", "delivered", delivered, id, user);
    assert_webhook(reqs[3], "message.status", "read", read, id, user);
    json_decref(all);
    read_back_over_http(key, other_ws, id, sent, read, user, acct);
    free(sent);
    free(delivered);
    free(read);
    free(key);
}

/* ---- one key, three times, across kills ---------------------------------------------- */

typedef struct post_job {
    const char *key, *body;
    long status;
} post_job;

static void *post_in_thread(void *arg)
{
    post_job *j = arg;
    j->status = agent_post(fx, "/v1/messages", j->key, j->body, NULL, 0, NULL, 0);
    return NULL;
}

static void same_key_three_times_across_kills(void **state)
{
    (void)state;
    agent_fx_init(fx, "idem");
    int64_t ws = camp_workspace(&fx->camp);
    camp_account(&fx->camp, ws, "idem-a", 1, 100, "{}");
    int64_t contact = agent_contact(fx, ws, "+6281300000002", "Budi");
    char *key = agent_api_key(fx, ws);
    agent_start_chat_sync(fx);
    agent_start_sim(fx);
    agent_start_ingest(fx, NULL);

    /* 1: accepted while no sender runs: stored pending and queued */
    char id[BZ_UUID_STR_SIZE], req[256];
    send_text(key, "same-key", contact, "sekali saja", id);
    agent_wait(fx, 1, 60, "SELECT count(*) FROM outbound_queue WHERE message_id = '%s'", id);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM chats WHERE uuid = '%s' AND "
                                    "message_status = 'pending'", id), 1);

    /* the sender starts and dies by SIGKILL around its first release */
    camp_start_sender(&fx->camp, 0, NULL);
    itest_sleep_ms(itest_random(200, 1500));
    camp_kill_sender(&fx->camp, 0);
    camp_start_sender(&fx->camp, 0, NULL);

    /* 2: the same request while ingest dies by SIGKILL */
    snprintf(req, sizeof req, "{\"idempotency_key\":\"same-key\",\"contact_id\":%lld,"
                              "\"body\":\"sekali saja\"}", (long long)contact);
    post_job job = {key, req, 0};
    pthread_t t;
    pthread_create(&t, NULL, post_in_thread, &job);
    itest_sleep_ms(itest_random(0, 20));
    agent_kill(&fx->ingest);
    pthread_join(t, NULL);
    agent_start_ingest(fx, NULL);

    /* 3: and once more: the same message id */
    char again[BZ_UUID_STR_SIZE];
    send_text(key, "same-key", contact, "sekali saja", again);
    assert_string_equal(again, id);
    /* the same request written otherwise (members reordered, spaced) is
     * the same request; the key with another body is refused, as Stripe
     * refuses it, and sends nothing (issue 54) */
    char resp[512];
    snprintf(req, sizeof req, "{ \"body\": \"sekali saja\", \"contact_id\": %lld, "
                              "\"idempotency_key\": \"same-key\" }", (long long)contact);
    assert_int_equal(agent_post(fx, "/v1/messages", key, req, resp, sizeof resp, NULL, 0), 202);
    agent_message_id(resp, again);
    assert_string_equal(again, id);
    snprintf(req, sizeof req, "{\"idempotency_key\":\"same-key\",\"contact_id\":%lld,"
                              "\"body\":\"dua kali\"}", (long long)contact);
    expect_refusal_saying(key, req, 409, "idempotency_key_reused", "idempotency_key",
                          "field idempotency_key: already used for a different message; send "
                          "this one with a new key");

    agent_wait(fx, 1, 90, "SELECT count(*) FROM chats WHERE uuid = '%s' AND message_status = 'read'",
               id);
    /* let any repeat arrive before counting: the outbox empty, the queue empty */
    agent_wait(fx, 0, 60, "SELECT count(*) FROM outbox");
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM outbound_queue"), 0);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM chats WHERE workspace_id = %lld",
                               (long long)ws), 1);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM send_ledger WHERE reference = '%s'", id),
                     1);
    assert_int_equal(agent_sends_of(fx, id), 1);
    free(key);
}

/* After a restore the replay may re-read an agent's command before its
 * echo and queue again a message the gateway sent before the restore (the
 * restore drill counted 8 repeats at the gateway). Set up here by hand:
 * a fence up, two queued messages, one whose row already has the
 * provider's id as its replayed echo gives it: that one leaves the queue
 * unsent; the other waits while the fence is up, then leaves once. */
static void queued_again_by_a_replay_leaves_only_if_never_sent(void **state)
{
    (void)state;
    agent_fx_init(fx, "fence");
    int64_t ws = camp_workspace(&fx->camp);
    camp_account(&fx->camp, ws, "fence-a", 1, 100, "{}");
    int64_t contact = agent_contact(fx, ws, "+6281300000031", "Citra");
    char *key = agent_api_key(fx, ws);
    agent_start_chat_sync(fx);
    agent_start_sim(fx);
    agent_start_ingest(fx, NULL);
    itest_restore_fence_raise(fx->camp.pg);

    char sent_before[BZ_UUID_STR_SIZE], never_sent[BZ_UUID_STR_SIZE], admin[64];
    send_text(key, "fence-sent-before", contact, "terkirim sebelum restore", sent_before);
    send_text(key, "fence-never-sent", contact, "belum pernah terkirim", never_sent);
    agent_wait(fx, 2, 60, "SELECT count(*) FROM outbound_queue WHERE workspace_id = %lld",
               (long long)ws);
    char echoed[160];
    snprintf(echoed, sizeof echoed,
             "UPDATE chats SET wam_id = 'wamid.before-restore' WHERE uuid = '%s'", sent_before);
    itest_pg_exec(fx->camp.pg, echoed);

    int port = itest_free_port();
    snprintf(admin, sizeof admin, "BLAZZ_HTTP_LISTEN=127.0.0.1:%d", port);
    const char *sender_env[] = {admin, "BLAZZ_AGENT_MAX_WAIT_S=2", NULL};
    camp_start_sender(&fx->camp, 0, sender_env);
    const char *held = "blazz_campaign_sender_agent_held_total{reason=\"restore_fence\"}";
    for (int i = 0; i < 300 && itest_metric(port, held) < 4; i++)
        itest_sleep_ms(100);
    itest_sleep_ms(3000); /* past agent.max_wait_s: still held, none failed */
    if (itest_metric(port, held) < 4)
        fail_msg("the sender did not hold the queue behind the restore fence (%s %.0f)", held,
                 itest_metric(port, held));
    /* the one whose echo is in leaves unsent even now; the other waits */
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM outbound_queue WHERE workspace_id = %lld",
                               (long long)ws),
                     1);
    assert_true(itest_metric(port, "blazz_campaign_sender_agent_already_sent_total") == 1);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM send_ledger WHERE workspace_id = %lld",
                               (long long)ws),
                     0);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM chats WHERE workspace_id = %lld AND "
                                   "message_status = 'failed'", (long long)ws),
                     0);

    itest_pg_exec(fx->camp.pg, "UPDATE restore_fences SET lifted_at = now()");
    agent_wait(fx, 1, 90, "SELECT count(*) FROM chats WHERE uuid = '%s' AND message_status = 'read'",
               never_sent);
    agent_wait(fx, 0, 60, "SELECT count(*) FROM outbound_queue WHERE workspace_id = %lld",
               (long long)ws);
    agent_wait(fx, 0, 60, "SELECT count(*) FROM outbox");
    assert_int_equal(agent_sends_of(fx, never_sent), 1);
    assert_int_equal(agent_sends_of(fx, sent_before), 0);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM send_ledger WHERE reference = '%s'",
                               sent_before), 0);
    assert_true(itest_metric(port, "blazz_campaign_sender_agent_already_sent_total") == 1);
    free(key);
}

/* The fence is the database's, which the program's tests share: lifted
 * whatever happened to the test that raised it. */
static int lift_fences_then_teardown(void **state)
{
    itest_pg_exec(fx->camp.pg, "UPDATE restore_fences SET lifted_at = now()");
    return agent_test_teardown(state);
}

/* Twelve sends to three contacts accepted while chat-sync is down, one key
 * among them three times: chat-sync takes them in one batch (one statement
 * per step for all of them) and stores one row per message id, queues each
 * once in the order it applied them, and the gateway receives each once, a
 * conversation's in the order accepted (crm.commands keeps a conversation
 * on one partition; conversations are not ordered among themselves). */
static void burst_in_one_batch(void **state)
{
    (void)state;
    agent_fx_init(fx, "burst");
    int64_t ws = camp_workspace(&fx->camp);
    camp_account(&fx->camp, ws, "burst-a", 1, 100, "{}");
    int64_t contacts[3];
    for (int i = 0; i < 3; i++) {
        char phone[32];
        snprintf(phone, sizeof phone, "+62813000001%02d", i);
        contacts[i] = agent_contact(fx, ws, phone, "Burst");
    }
    char *key = agent_api_key(fx, ws);
    agent_start_ingest(fx, NULL);

    enum { POSTS = 12, DISTINCT = 10 };
    char ids[POSTS][BZ_UUID_STR_SIZE];
    for (int i = 0; i < POSTS; i++) {
        char idem[32], body[32];
        int k = i < 4 ? i : i < 6 ? 3 : i - 2; /* posts 3, 4 and 5 carry the same key */
        snprintf(idem, sizeof idem, "burst-%d", k);
        snprintf(body, sizeof body, "pesan %d", k);
        send_text(key, idem, contacts[k % 3], body, ids[i]);
    }
    assert_string_equal(ids[4], ids[3]);
    assert_string_equal(ids[5], ids[3]);

    agent_start_chat_sync(fx);
    agent_wait(fx, DISTINCT, 60, "SELECT count(*) FROM outbound_queue WHERE workspace_id = %lld",
               (long long)ws);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM chats WHERE workspace_id = %lld",
                               (long long)ws),
                     DISTINCT);
    /* queued in the order applied */
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM (SELECT message_id, lag(chat_id) OVER "
                                   "(ORDER BY id) AS prev, chat_id FROM outbound_queue WHERE "
                                   "workspace_id = %lld) q WHERE prev > chat_id",
                               (long long)ws),
                     0);

    camp_start_sender(&fx->camp, 0, NULL);
    agent_start_sim(fx);
    agent_wait(fx, DISTINCT, 90, "SELECT count(*) FROM chats WHERE workspace_id = %lld AND "
                                 "message_status = 'read'", (long long)ws);
    agent_wait(fx, 0, 60, "SELECT count(*) FROM outbox");
    size_t n;
    agent_send *sends = agent_sends(fx, &n);
    int last[3] = {-1, -1, -1}; /* per conversation: where its latest send was received */
    for (int i = 0; i < POSTS; i++) {
        if (i == 4 || i == 5)
            continue;
        int k = i < 4 ? i : i - 2;
        assert_int_equal(agent_sends_of(fx, ids[i]), 1);
        for (size_t j = 0; j < n; j++)
            if (strcmp(sends[j].key, ids[i]) == 0) {
                assert_true((int)j > last[k % 3]); /* a conversation's in the order accepted */
                last[k % 3] = (int)j;
            }
    }
    assert_int_equal((int)n, DISTINCT);
    free(sends);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM send_ledger WHERE workspace_id = %lld",
                               (long long)ws),
                     DISTINCT);
    free(key);
}

/* ---- mark read ---------------------------------------------------------------------------- */

typedef struct read_events {
    const char *prefix_ws; /* "<workspace>:" */
    char ids[16][BZ_UUID_STR_SIZE];
    int chat_read; /* distinct event ids: a repeated publish is one event */
} read_events;

static void count_read_events(void *ctx, const rd_kafka_message_t *m)
{
    read_events *r = ctx;
    Blazz__V1__ChatEvent *ev =
        blazz__v1__chat_event__unpack(NULL, m->len, (const uint8_t *)m->payload);
    if (ev && ev->kind == BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_CHAT_READ &&
        m->key_len > strlen(r->prefix_ws) &&
        strncmp((const char *)m->key, r->prefix_ws, strlen(r->prefix_ws)) == 0) {
        int seen = 0;
        for (int i = 0; i < r->chat_read; i++)
            seen |= strcmp(r->ids[i], ev->envelope->event_id) == 0;
        if (!seen && r->chat_read < 16)
            snprintf(r->ids[r->chat_read++], BZ_UUID_STR_SIZE, "%s", ev->envelope->event_id);
    }
    if (ev)
        blazz__v1__chat_event__free_unpacked(ev, NULL);
}

static int chat_read_events(int64_t ws)
{
    char topic[256], prefix_ws[32];
    snprintf(topic, sizeof topic, "%schat.events", fx->wh.prefix);
    snprintf(prefix_ws, sizeof prefix_ws, "%lld:", (long long)ws);
    read_events r = {.prefix_ws = prefix_ws};
    itest_consume_all(topic, count_read_events, &r);
    return r.chat_read;
}

static int read_receipts(void)
{
    size_t n;
    agent_send *all = agent_sends(fx, &n);
    int reads = 0;
    for (size_t i = 0; i < n; i++)
        reads += all[i].read;
    free(all);
    return reads;
}

static void mark_read_three_times_and_replayed(void **state)
{
    (void)state;
    agent_fx_init(fx, "read");
    int64_t ws = camp_workspace(&fx->camp);
    camp_account(&fx->camp, ws, "read-a", 1, 100, "{}");
    char session[128];
    snprintf(session, sizeof session, "read-a%s", fx->wh.prefix);
    int64_t contact = agent_contact(fx, ws, "+6281300000003", "Citra");
    char *key = agent_api_key(fx, ws);
    agent_start_chat_sync(fx);
    agent_start_sim(fx);
    agent_start_ingest(fx, NULL);

    int64_t now = bz_wall_ms();
    agent_inbound(fx, session, "IN-1", "+6281300000003", "halo", now - 3000);
    agent_inbound(fx, session, "IN-2", "+6281300000003", "apa kabar", now - 2000);
    agent_inbound(fx, session, "IN-3", "+6281300000003", "tolong", now - 1000);
    agent_wait(fx, 3, 60, "SELECT unread_messages FROM contacts WHERE id = %lld",
               (long long)contact);

    char body[128], resp[256];
    snprintf(body, sizeof body, "{\"contact_id\":%lld,\"user_id\":0}", (long long)contact);
    for (int i = 0; i < 3; i++)
        assert_int_equal(agent_post(fx, "/v1/chats/read", key, body, resp, sizeof resp, NULL, 0),
                         202);
    agent_wait(fx, 3, 60, "SELECT count(*) FROM chats WHERE contact_id = %lld AND is_read AND "
                          "read_at IS NOT NULL AND type = 'inbound'", (long long)contact);
    agent_wait(fx, 0, 30, "SELECT unread_messages FROM contacts WHERE id = %lld", (long long)contact);
    for (int i = 0; i < 300 && read_receipts() < 1; i++)
        itest_sleep_ms(100);
    char *before = itest_pg_textf(fx->camp.pg,
                                  "SELECT string_agg(wam_id || '@' || read_at::text, ',' ORDER BY "
                                  "wam_id) FROM chats WHERE contact_id = %lld", (long long)contact);

    /* replay every crm.commands record from Kafka to a restarted chat-sync,
     * once it has applied all three (the first did the reading: the others
     * may still be on their way) */
    agent_wait(fx, 3, 60, "SELECT coalesce(sum(next_offset), 0) FROM kafka_offsets "
                          "WHERE group_id = 'blazz-chat-sync-%s' AND topic = '%scrm.commands'",
               fx->wh.prefix, fx->wh.prefix);
    kill(fx->chat_sync, SIGTERM);
    assert_int_equal(itest_wait(fx->chat_sync), 0);
    fx->chat_sync = 0;
    agent_int(fx, "WITH d AS (DELETE FROM kafka_offsets WHERE group_id = 'blazz-chat-sync-%s' AND "
                  "topic = '%scrm.commands' RETURNING 1) SELECT count(*) FROM d",
              fx->wh.prefix, fx->wh.prefix);
    agent_start_chat_sync(fx);
    agent_wait(fx, 3, 60, "SELECT coalesce(sum(next_offset), 0) FROM kafka_offsets "
                          "WHERE group_id = 'blazz-chat-sync-%s' AND topic = '%scrm.commands'",
               fx->wh.prefix, fx->wh.prefix);
    agent_wait(fx, 0, 60, "SELECT count(*) FROM outbox");
    assert_int_equal(agent_int(fx, "SELECT unread_messages FROM contacts WHERE id = %lld",
                               (long long)contact), 0);
    char *after = itest_pg_textf(fx->camp.pg,
                                 "SELECT string_agg(wam_id || '@' || read_at::text, ',' ORDER BY "
                                 "wam_id) FROM chats WHERE contact_id = %lld", (long long)contact);
    assert_string_equal(before, after);
    free(before);
    free(after);
    assert_int_equal(chat_read_events(ws), 1);
    assert_int_equal(read_receipts(), 1);

    /* a bound by message: IN-4 stays unread when reading up to IN-3 */
    agent_inbound(fx, session, "IN-4", "+6281300000003", "lagi", bz_wall_ms());
    agent_wait(fx, 1, 60, "SELECT unread_messages FROM contacts WHERE id = %lld", (long long)contact);
    snprintf(body, sizeof body, "{\"contact_id\":%lld,\"up_to_wam_id\":\"IN-3\"}",
             (long long)contact);
    assert_int_equal(agent_post(fx, "/v1/chats/read", key, body, resp, sizeof resp, NULL, 0), 202);
    agent_wait(fx, 4, 60, "SELECT coalesce(sum(next_offset), 0) FROM kafka_offsets "
                          "WHERE group_id = 'blazz-chat-sync-%s' AND topic = '%scrm.commands'",
               fx->wh.prefix, fx->wh.prefix);
    assert_int_equal(agent_int(fx, "SELECT unread_messages FROM contacts WHERE id = %lld",
                               (long long)contact), 1);
    snprintf(body, sizeof body, "{\"contact_phone\":\"+6281300000003\",\"up_to_wam_id\":\"IN-4\"}");
    assert_int_equal(agent_post(fx, "/v1/chats/read", key, body, resp, sizeof resp, NULL, 0), 202);
    agent_wait(fx, 0, 60, "SELECT unread_messages FROM contacts WHERE id = %lld", (long long)contact);
    for (int i = 0; i < 300 && read_receipts() < 2; i++)
        itest_sleep_ms(100);
    assert_int_equal(read_receipts(), 2);
    assert_int_equal(chat_read_events(ws), 2);
    free(key);
}

/* ---- bad input ---------------------------------------------------------------------------- */

/* POST body to path with the header line type_line: refused 415
 * unsupported_content_type naming Content-Type when refused, else the
 * status it got (issue 54: a text/plain body was taken as JSON). */
static long post_typed(const char *key, const char *path, const char *type_line,
                       const char *body, int refused)
{
    char url[256], auth[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", fx->port, path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
    const char *headers[] = {auth, type_line, NULL};
    itest_http_reply r;
    itest_http("POST", url, body, strlen(body), headers, 20000, &r);
    if (refused && (r.status != 415 || !strstr(r.body, "\"error\":\"unsupported_content_type\"") ||
                    !strstr(r.body, "\"field\":\"Content-Type\"")))
        fail_msg("%s with %s answered %ld: %s", path, type_line ? type_line : "curl's form type",
                 r.status, r.body);
    return r.status;
}

static void blazzctl_send(const char *const *args)
{
    char out[700];
    snprintf(out, sizeof out, "%s/blazzctl-send.txt", fx->camp.dir);
    assert_int_equal(camp_blazzctl(&fx->camp, args, out), 0);
}

static void bad_input(void **state)
{
    (void)state;
    agent_fx_init(fx, "bad");
    int64_t ws = camp_workspace(&fx->camp), other = camp_workspace(&fx->camp);
    int64_t rated = camp_workspace(&fx->camp);
    int64_t account = camp_account(&fx->camp, ws, "bad-a", 1, 100, "{}");
    int64_t mine = agent_contact(fx, ws, "+6281300000004", "Dewi");
    int64_t theirs = agent_contact(fx, other, "+6281300000005", "Eko");
    char wss[24];
    snprintf(wss, sizeof wss, "%lld", (long long)ws);
    camp_sql(&fx->camp, "INSERT INTO templates (workspace_id, name, language, body_text) VALUES "
                        "($1, 'order_update', 'en', 'Hi {{1}}, order {{2}} ships today')",
             1, wss);
    camp_sql(&fx->camp, "INSERT INTO templates (workspace_id, name, language, body_text) SELECT "
                        "$1::bigint, 'thirty_two', 'en', string_agg('{{' || n || '}}', ' ') FROM "
                        "generate_series(1, 32) n RETURNING 0",
             1, wss);
    char *key = agent_api_key(fx, ws), *rated_key = agent_api_key(fx, rated);
    agent_start_chat_sync(fx);
    agent_start_ingest(fx, NULL);

    char body[512];
    snprintf(body, sizeof body, "{\"idempotency_key\":\"b1\",\"contact_id\":999999999,\"body\":\"x\"}");
    expect_refusal(key, body, 404, "unknown_contact", "contact_id");
    snprintf(body, sizeof body, "{\"idempotency_key\":\"b2\",\"contact_id\":%lld,\"body\":\"x\"}",
             (long long)theirs);
    expect_refusal(key, body, 404, "unknown_contact", "contact_id");
    expect_refusal(key, "{\"idempotency_key\":\"b3\",\"contact_phone\":\"+6281300000005\","
                        "\"body\":\"x\"}", 404, "unknown_contact", "contact_phone");
    /* a phone that is none: one sentence naming the field, not the phone's
     * message formatted from itself ("field contact_phone: field
     * contact_phone: igits, need at least 8)") */
    expect_refusal_saying(key, "{\"idempotency_key\":\"b3\",\"contact_phone\":\"+12345\","
                               "\"body\":\"x\"}",
                          400, "invalid_field", "contact_phone",
                          "field contact_phone: phone: too short (5 digits, need at least 8)");
    /* no recipient, or both kinds: named by the request's own fields,
     * not by the record's key ("conversation") and the message id a 202
     * would have carried (issue 54) */
    expect_refusal_saying(key, "{\"idempotency_key\":\"b8\",\"body\":\"x\"}", 400,
                          "missing_field", "contact_id",
                          "field contact_id: a recipient is required (contact_id, "
                          "contact_phone, contact_jid, group_id or group_jid)");
    snprintf(body, sizeof body,
             "{\"idempotency_key\":\"b8\",\"contact_id\":%lld,\"group_id\":5,\"body\":\"x\"}",
             (long long)mine);
    expect_refusal_saying(key, body, 400, "invalid_field", "group_id",
                          "field group_id: give a contact or a group, not both");
    expect_refusal_saying(key, "{\"idempotency_key\":\"b8\",\"contact_phone\":\"+6281300000004\","
                               "\"group_jid\":\"120363025555555555@g.us\",\"body\":\"x\"}",
                          400, "invalid_field", "group_jid",
                          "field group_jid: give a contact or a group, not both");
    /* an unknown user JID is named as given, though it is looked up by its
     * phone */
    expect_refusal(key, "{\"idempotency_key\":\"b8\",\"contact_jid\":"
                        "\"6281399999998@s.whatsapp.net\",\"body\":\"x\"}",
                   404, "unknown_contact", "contact_jid");
    snprintf(body, sizeof body,
             "{\"idempotency_key\":\"b4\",\"contact_id\":%lld,\"template\":{\"name\":"
             "\"order_update\",\"language\":\"en\",\"body_params\":[\"Dewi\"]}}",
             (long long)mine);
    expect_refusal(key, body, 400, "missing_field", "template.body_params");
    snprintf(body, sizeof body,
             "{\"idempotency_key\":\"b5\",\"contact_id\":%lld,\"template\":{\"name\":"
             "\"no_such\",\"body_params\":[\"Dewi\"]}}", (long long)mine);
    expect_refusal(key, body, 404, "unknown_template", "template.name");
    /* whatsapp-web.js sends no interactive message (issue 53) */
    snprintf(body, sizeof body,
             "{\"idempotency_key\":\"b10\",\"contact_id\":%lld,\"whatsapp_account_id\":%lld,"
             "\"message_type\":\"interactive\",\"body\":\"Lokasi?\",\"interactive\":{\"type\":"
             "\"location_request\"}}",
             (long long)mine, (long long)account);
    expect_refusal(key, body, 400, "provider_limit", "message_type");
    /* 32 parameters of 1,024 four-byte characters: 128 KiB of text, over
     * what a message may carry (its echo would come back refused) */
    char *long_params = malloc(200000), *p = long_params;
    p += sprintf(p, "{\"idempotency_key\":\"b7\",\"contact_id\":%lld,\"template\":{\"name\":"
                    "\"thirty_two\",\"body_params\":[", (long long)mine);
    for (int i = 0; i < 32; i++) {
        p += sprintf(p, "%s\"", i ? "," : "");
        for (int c = 0; c < 1024; c++)
            p += sprintf(p, "\xF0\x9F\x98\x80");
        p += sprintf(p, "\"");
    }
    sprintf(p, "]}}");
    expect_refusal(key, long_params, 400, "too_large", "template.body_params");
    free(long_params);
    snprintf(body, sizeof body, "{\"contact_id\":%lld,\"body\":\"x\"}", (long long)mine);
    expect_refusal(key, body, 400, "missing_field", "idempotency_key");
    /* a body is JSON, declared so: another type, or curl's form default,
     * is refused before it is read; a charset is fine */
    snprintf(body, sizeof body, "{\"idempotency_key\":\"b9\",\"contact_id\":%lld,\"body\":\"x\"}",
             (long long)mine);
    post_typed(key, "/v1/messages", "Content-Type: text/plain", body, 1);
    post_typed(key, "/v1/chats/read", NULL, "{\"contact_id\":1}", 1);
    post_typed(key, "/v1/contacts", "Content-Type: application/jsonx", "{\"phone\":\"+6281300000009\"}", 1);
    assert_int_equal(post_typed(key, "/v1/messages", "Content-Type: Application/JSON; charset=utf-8",
                                "{}", 0), 400);
    size_t big = 2 * 1024 * 1024;
    char *huge = malloc(big + 1);
    memset(huge, 'a', big);
    huge[big] = '\0';
    expect_refusal(key, huge, 413, "too_large", "body");
    free(huge);
    expect_refusal(NULL, "{}", 401, "unauthorized", "Authorization");
    char wrong[160];
    snprintf(wrong, sizeof wrong, "%.*sAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
             (int)strlen("bzk_") + 17, key);
    expect_refusal(wrong, "{}", 401, "unauthorized", "Authorization");

    /* a revoked key is refused within the cache time (1 s here) */
    char key_id[17];
    snprintf(key_id, sizeof key_id, "%.16s", key + 4);
    const char *revoke[] = {"apikeys", "revoke", key_id, NULL};
    char out[700];
    snprintf(out, sizeof out, "%s/blazzctl-revoke.txt", fx->camp.dir);
    assert_int_equal(camp_blazzctl(&fx->camp, revoke, out), 0);
    itest_sleep_ms(1500);
    snprintf(body, sizeof body, "{\"idempotency_key\":\"b6\",\"contact_id\":%lld,\"body\":\"x\"}",
             (long long)mine);
    expect_refusal(key, body, 401, "revoked", "Authorization");

    /* the workspace's request rate: burst 3, then 429 with Retry-After */
    kill(fx->ingest, SIGTERM);
    assert_int_equal(itest_wait(fx->ingest), 0);
    fx->ingest = 0;
    const char *rate[] = {"BLAZZ_CRM_RATE_PER_SECOND=1", "BLAZZ_CRM_RATE_BURST=3", NULL};
    agent_start_ingest(fx, rate);
    int limited = 0, passed = 0;
    char retry_after[16] = "";
    /* until two are limited: on a busy host six requests could take long
     * enough for the bucket to refill between them. The ones let through
     * are at most the burst and what the rate refilled meanwhile. */
    int64_t t0 = bz_monotonic_ms();
    for (int i = 0; i < 30 && limited < 2; i++) {
        char resp[512], ra[16];
        long st = agent_post(fx, "/v1/messages", rated_key, "{}", resp, sizeof resp, ra, sizeof ra);
        if (st == 429) {
            limited++;
            snprintf(retry_after, sizeof retry_after, "%s", ra);
        } else {
            assert_int_equal(st, 400); /* past the rate: the empty body is refused */
            passed++;
        }
    }
    assert_true(limited >= 2);
    int64_t refilled = (bz_monotonic_ms() - t0) / 1000 + 1;
    if (passed > 3 + refilled)
        fail_msg("%d requests let through in %lld s at burst 3, 1/s", passed,
                 (long long)(bz_monotonic_ms() - t0) / 1000);
    assert_true(strtol(retry_after, NULL, 10) >= 1);

    /* nothing of a refused request was stored or queued */
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM chats WHERE workspace_id IN (%lld, %lld)",
                               (long long)ws, (long long)other), 0);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM outbound_queue WHERE workspace_id = %lld",
                               (long long)ws), 0);

    /* the Kafka path: refused by chat-sync, dead-lettered with the reason */
    const char *unknown[] = {"send", "--workspace", wss, "--to", "+6281399999999", "--text", "x",
                             NULL};
    blazzctl_send(unknown);
    const char *bad_template[] = {"send",  "--workspace", wss, "--to", "+6281300000004",
                                  "--template", "order_update", "--param", "Dewi", NULL};
    blazzctl_send(bad_template);
    agent_dlq_reasons d;
    agent_dead_letters(fx, &d, 2);
    assert_int_equal(d.n, 2);
    int unknown_first = strcmp(d.codes[0], "unknown_contact") == 0;
    assert_string_equal(d.codes[unknown_first ? 0 : 1], "unknown_contact");
    assert_string_equal(d.codes[unknown_first ? 1 : 0], "missing_field");
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM chats WHERE workspace_id = %lld",
                               (long long)ws), 0);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM outbound_queue WHERE workspace_id = %lld",
                               (long long)ws), 0);
    free(key);
    free(rated_key);
}

/* ---- account selection and failover ---------------------------------------------------- */

static const char *session_of_send(const char *key, char *out, size_t cap)
{
    size_t n;
    agent_send *all = agent_sends(fx, &n);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        if (strcmp(all[i].key, key) == 0)
            snprintf(out, cap, "%s", all[i].session);
    free(all);
    return out;
}

static void account_selection_and_failover(void **state)
{
    (void)state;
    agent_fx_init(fx, "fail");
    int64_t ws = camp_workspace(&fx->camp);
    int64_t a = camp_account(&fx->camp, ws, "fail-a", 0, 50, "{}");
    int64_t b = camp_account(&fx->camp, ws, "fail-b", 1, 60, "{}");
    int64_t c = camp_account(&fx->camp, ws, "fail-c", 0, 90, "{}");
    char sa[128], sb[128], sc[128], got[128];
    snprintf(sa, sizeof sa, "fail-a%s", fx->wh.prefix);
    snprintf(sb, sizeof sb, "fail-b%s", fx->wh.prefix);
    snprintf(sc, sizeof sc, "fail-c%s", fx->wh.prefix);
    int64_t contact = agent_contact(fx, ws, "+6281300000006", "Fajar");
    char *key = agent_api_key(fx, ws);
    agent_start_chat_sync(fx);
    camp_start_sender(&fx->camp, 0, NULL);
    agent_start_sim(fx);
    agent_start_ingest(fx, NULL);

    /* the contact last talked to A: A, although B is the primary */
    agent_inbound(fx, sa, "FO-1", "+6281300000006", "halo", bz_wall_ms());
    agent_wait(fx, 1, 60, "SELECT count(*) FROM chats WHERE contact_id = %lld", (long long)contact);
    char id1[BZ_UUID_STR_SIZE], id2[BZ_UUID_STR_SIZE], id3[BZ_UUID_STR_SIZE];
    send_text(key, "fo-1", contact, "lewat A", id1);
    agent_wait(fx, 1, 60, "SELECT count(*) FROM chats WHERE uuid = '%s' AND message_status = 'read'", id1);
    assert_string_equal(session_of_send(id1, got, sizeof got), sa);

    /* A disconnects: the primary B */
    agent_int(fx, "UPDATE whatsapp_accounts SET status = 'disconnected' WHERE id = %lld RETURNING id",
              (long long)a);
    send_text(key, "fo-2", contact, "lewat B", id2);
    agent_wait(fx, 1, 60, "SELECT count(*) FROM chats WHERE uuid = '%s' AND message_status = 'read'", id2);
    assert_string_equal(session_of_send(id2, got, sizeof got), sb);
    assert_int_equal(agent_int(fx, "SELECT whatsapp_account_id FROM chats WHERE uuid = '%s'", id2), b);

    /* queued for B, B disconnects before the release: the best health, C */
    camp_stop_sender(&fx->camp, 0);
    send_text(key, "fo-3", contact, "lewat C", id3);
    agent_wait(fx, 1, 60, "SELECT count(*) FROM outbound_queue WHERE message_id = '%s' AND "
                          "whatsapp_account_id = %lld", id3, (long long)b);
    agent_int(fx, "UPDATE whatsapp_accounts SET status = 'disconnected' WHERE id = %lld RETURNING id",
              (long long)b);
    camp_start_sender(&fx->camp, 0, NULL);
    agent_wait(fx, 1, 60, "SELECT count(*) FROM chats WHERE uuid = '%s' AND message_status = 'read'", id3);
    assert_string_equal(session_of_send(id3, got, sizeof got), sc);
    /* the echo moved the row to the account that sent it */
    assert_int_equal(agent_int(fx, "SELECT whatsapp_account_id FROM chats WHERE uuid = '%s'", id3), c);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM chats WHERE contact_id = %lld",
                               (long long)contact), 4);
    free(key);
}

/* POST a reaction to the conversation's message target (emoji "" removes
 * it); returns the message id (into id). */
static void send_reaction(const char *key, const char *idem, int64_t contact, const char *target,
                          const char *emoji, char *id)
{
    char req[512], resp[512];
    snprintf(req, sizeof req,
             "{\"idempotency_key\":\"%s\",\"contact_id\":%lld,\"message_type\":\"reaction\","
             "\"target_wam_id\":\"%s\",\"emoji\":\"%s\"}",
             idem, (long long)contact, target, emoji);
    long status = agent_post(fx, "/v1/messages", key, req, resp, sizeof resp, NULL, 0);
    if (status != 202)
        fail_msg("POST /v1/messages (reaction) answered %ld: %s", status, resp);
    agent_message_id(resp, id);
}

static void reaction_sent_and_removed(void **state)
{
    (void)state;
    agent_fx_init(fx, "react");
    int64_t ws = camp_workspace(&fx->camp);
    camp_account(&fx->camp, ws, "react-a", 1, 100, "{}");
    char session[128];
    snprintf(session, sizeof session, "react-a%s", fx->wh.prefix);
    int64_t contact = agent_contact(fx, ws, "+6281300000009", "Gita");
    char *key = agent_api_key(fx, ws);
    agent_start_chat_sync(fx);
    agent_start_sim(fx);
    agent_start_ingest(fx, NULL);
    camp_start_sender(&fx->camp, 0, NULL);
    agent_inbound(fx, session, "IN-R1", "+6281300000009", "produk bagus?", bz_wall_ms());
    agent_wait(fx, 1, 60, "SELECT count(*) FROM chats WHERE wam_id = 'IN-R1'");
    int64_t last_message = agent_int(fx, "SELECT (extract(epoch FROM last_message_at) * 1000)"
                                         "::bigint FROM contacts WHERE id = %lld",
                                     (long long)contact);

    char set_id[BZ_UUID_STR_SIZE], removed_id[BZ_UUID_STR_SIZE];
    send_reaction(key, "react-1", contact, "IN-R1", "\xf0\x9f\x91\x8d", set_id);
    /* the gateway's echo sets the account's reaction on the target; the
     * reaction's own row follows its receipts */
    agent_wait(fx, 1, 60,
               "SELECT count(*) FROM chats WHERE wam_id = 'IN-R1' AND "
               "metadata->'reactions'->'me'->>'emoji' = '\xf0\x9f\x91\x8d'");
    agent_wait(fx, 1, 60,
               "SELECT count(*) FROM chats WHERE uuid = '%s' AND message_status IN ('sent', "
               "'delivered', 'read') AND metadata->>'message_type' = 'reaction' AND "
               "metadata->>'target_wam_id' = 'IN-R1'",
               set_id);
    assert_int_equal(agent_sends_of(fx, set_id), 1);
    send_reaction(key, "react-2", contact, "IN-R1", "", removed_id);
    agent_wait(fx, 0, 60,
               "SELECT count(*) FROM chats WHERE wam_id = 'IN-R1' AND metadata->'reactions' ? 'me'");
    agent_wait(fx, 1, 60,
               "SELECT count(*) FROM chats WHERE uuid = '%s' AND message_status IN ('sent', "
               "'delivered', 'read')",
               removed_id);
    /* reactions are not messages of the conversation: no counter moved */
    assert_int_equal(agent_int(fx, "SELECT (extract(epoch FROM last_message_at) * 1000)::bigint "
                                   "FROM contacts WHERE id = %lld",
                               (long long)contact),
                     last_message);
    /* a reaction to a message the conversation does not have */
    char body[256];
    snprintf(body, sizeof body,
             "{\"idempotency_key\":\"react-3\",\"contact_id\":%lld,\"message_type\":"
             "\"reaction\",\"target_wam_id\":\"NO-SUCH\",\"emoji\":\"x\"}",
             (long long)contact);
    expect_refusal(key, body, 404, "unknown_message", "target_wam_id");
    /* blazzctl send reacts too; chat-sync holds it to the same rules */
    char wss[24];
    snprintf(wss, sizeof wss, "%lld", (long long)ws);
    const char *party[] = {"send", "--workspace", wss, "--to", "+6281300000009", "--reaction",
                           "\xf0\x9f\x8e\x89", "--target", "IN-R1", NULL};
    blazzctl_send(party);
    agent_wait(fx, 1, 60,
               "SELECT count(*) FROM chats WHERE wam_id = 'IN-R1' AND "
               "metadata->'reactions'->'me'->>'emoji' = '\xf0\x9f\x8e\x89'");
    const char *unknown[] = {"send", "--workspace", wss, "--to", "+6281300000009", "--reaction",
                             "x", "--target", "NO-SUCH", NULL};
    blazzctl_send(unknown);
    agent_dlq_reasons d;
    agent_dead_letters(fx, &d, 1);
    assert_int_equal(d.n, 1);
    assert_string_equal(d.codes[0], "unknown_message");
    free(key);
}

/* ---- contacts over the CRM's reads ------------------------------------------------------- */

/* GET path with key, expecting status and (for an error) reason and field. */
static void expect_read_refused(const char *path, const char *key, long status,
                                const char *reason, const char *field)
{
    json_t *doc;
    long got = agent_get_json(fx, path, key, &doc);
    if (got != status)
        fail_msg("GET %s: %ld, want %ld", path, got, status);
    assert_member_text(doc, "error", reason);
    assert_member_text(doc, "field", field);
    json_decref(doc);
}

/* GET path with key: 200 and the contact of id. */
static void expect_contact(const char *path, const char *key, int64_t id, const char *phone,
                           const char *bsuid)
{
    json_t *doc;
    if (agent_get_json(fx, path, key, &doc) != 200)
        fail_msg("GET %s: not 200", path);
    assert_int_equal(json_integer_value(json_object_get(doc, "contact_id")), id);
    char *uuid = itest_pg_textf(fx->camp.pg, "SELECT uuid FROM contacts WHERE id = %lld",
                                (long long)id);
    assert_member_text(doc, "contact_uuid", uuid);
    free(uuid);
    if (phone)
        assert_member_text(doc, "phone", phone);
    else
        assert_true(json_is_null(json_object_get(doc, "phone")));
    if (bsuid)
        assert_member_text(doc, "bsuid", bsuid);
    else
        assert_true(json_is_null(json_object_get(doc, "bsuid")));
    assert_true(json_is_string(json_object_get(doc, "created_at")));
    json_decref(doc);
}

/* A listed message's id into out, once it is checked to be the message
 * GET /v1/messages/{id} answers. */
static void message_listed(const char *key, json_t *m, char *out, size_t cap)
{
    const char *id = json_string_value(json_object_get(m, "message_id"));
    char one[128];
    snprintf(one, sizeof one, "/v1/messages/%s", id);
    json_t *alone;
    assert_int_equal(agent_get_json(fx, one, key, &alone), 200);
    assert_true(json_equal(m, alone));
    json_decref(alone);
    snprintf(out, cap, "%s", id);
}

/* A listed conversation as kind:id into out. */
static void conversation_listed(const char *key, json_t *c, char *out, size_t cap)
{
    (void)key;
    const char *kind = json_string_value(json_object_get(c, "kind"));
    assert_non_null(kind);
    json_t *id = json_object_get(c, strcmp(kind, "contact") == 0 ? "contact_id" : "group_id");
    assert_true(json_is_integer(id));
    snprintf(out, cap, "%s:%lld", kind, (long long)json_integer_value(id));
}

/* More sessions than a page of the other lists holds (50). */
#define SESSIONS_OVER_A_PAGE 60

/* A listed session as session_id:status into out. */
static void session_listed(const char *key, json_t *session, char *out, size_t cap)
{
    (void)key;
    snprintf(out, cap, "%s:%s", json_string_value(json_object_get(session, "session_id")),
             json_string_value(json_object_get(session, "status")));
}

/* Every page of the list at base (a path, with ?... or not), limit a page,
 * each asked for with the last page's cursor as ?<cursor_arg>=; each row of
 * member name as listed() writes it, joined by commas into out. */
static void read_pages(const char *key, const char *base, int limit, const char *cursor_arg,
                       const char *name,
                       void (*listed)(const char *key, json_t *row, char *out, size_t cap),
                       char *out, size_t cap)
{
    char path[512], cursor[64] = "";
    size_t used = 0;
    out[0] = '\0';
    for (int page = 0;; page++) {
        assert_true(page < 20);
        snprintf(path, sizeof path, "%s%slimit=%d%s%s%s%s", base, strchr(base, '?') ? "&" : "?",
                 limit, cursor[0] ? "&" : "", cursor[0] ? cursor_arg : "",
                 cursor[0] ? "=" : "", cursor);
        json_t *doc;
        assert_int_equal(agent_get_json(fx, path, key, &doc), 200);
        json_t *list = json_object_get(doc, name), *row;
        size_t i;
        assert_true(json_is_array(list));
        assert_true(json_array_size(list) <= (size_t)limit);
        json_array_foreach(list, i, row) {
            char one[160];
            listed(key, row, one, sizeof one);
            used += (size_t)snprintf(out + used, cap - used, "%s%s", used ? "," : "", one);
        }
        json_t *next = json_object_get(doc, "next_cursor");
        if (json_is_null(next)) {
            json_decref(doc);
            return;
        }
        assert_int_equal(json_array_size(list), limit);
        snprintf(cursor, sizeof cursor, "%s", json_string_value(next));
        json_decref(doc);
    }
}

/* Every page of the contact's conversation (by its uuid or id). */
static void read_conversation(const char *key, const char *contact, int limit,
                              const char *cursor_arg, char *out, size_t cap)
{
    char base[320];
    snprintf(base, sizeof base, "/v1/contacts/%s/messages", contact);
    read_pages(key, base, limit, cursor_arg, "messages", message_listed, out, cap);
}

static void contacts_read_by_any_identifier(void **state)
{
    (void)state;
    agent_fx_init(fx, "ct");
    int64_t ws = camp_workspace(&fx->camp), other_ws = camp_workspace(&fx->camp);
    int64_t acct = camp_account(&fx->camp, ws, "ct-a", 1, 100, "{}");
    int64_t ann = agent_contact(fx, ws, "+6281300000101", "Ann");
    int64_t bob = agent_int(fx, "INSERT INTO contacts (workspace_id, phone, bsuid, username) "
                                "VALUES (%lld, 'US.13491208655302741918', "
                                "'US.13491208655302741918', 'bob') RETURNING id",
                            (long long)ws);
    int64_t stranger = agent_contact(fx, other_ws, "+6281300000102", "Eve");
    /* Ann's conversation: 7 messages, two to a second (the id breaks the
     * tie), one deleted beside them and one of Bob's, which no page shows */
    for (int i = 0; i < 9; i++)
        agent_int(fx, "INSERT INTO chats (workspace_id, whatsapp_account_id, contact_id, type, "
                      "metadata, created_at, deleted_at) VALUES (%lld, %lld, %lld, 'inbound', "
                      "'{\"message_type\": \"text\"}', date_trunc('second', now()) - "
                      "interval '1 second' * %d, %s) RETURNING id",
                  (long long)ws, (long long)acct, (long long)(i == 8 ? bob : ann), i / 2,
                  i == 7 ? "now()" : "NULL");
    char *key = agent_api_key(fx, ws);
    agent_start_ingest(fx, NULL);

    expect_contact("/v1/contacts?phone=%2B6281300000101", key, ann, "+6281300000101", NULL);
    expect_contact("/v1/contacts?phone=6281300000101", key, ann, "+6281300000101", NULL);
    expect_contact("/v1/contacts?bsuid=US.13491208655302741918", key, bob, NULL,
                   "US.13491208655302741918");
    int64_t lia = agent_int(fx, "INSERT INTO contacts (workspace_id, phone, lid) VALUES (%lld, "
                                "'190123456789012@lid', '190123456789012@lid') RETURNING id",
                            (long long)ws);
    expect_contact("/v1/contacts?lid=190123456789012%40lid", key, lia, NULL, NULL);
    char path[256], *uuid = itest_pg_textf(fx->camp.pg, "SELECT uuid FROM contacts WHERE id = "
                                                        "%lld", (long long)ann);
    snprintf(path, sizeof path, "/v1/contacts/%s", uuid);
    expect_contact(path, key, ann, "+6281300000101", NULL);
    snprintf(path, sizeof path, "/v1/contacts/%lld", (long long)bob);
    expect_contact(path, key, bob, NULL, "US.13491208655302741918");

    /* another workspace's contact is one that does not exist */
    expect_read_refused("/v1/contacts?phone=%2B6281300000102", key, 404, "unknown_contact",
                        "phone");
    expect_read_refused("/v1/contacts?bsuid=US.1", key, 404, "unknown_contact", "bsuid");
    char *stranger_uuid = itest_pg_textf(fx->camp.pg, "SELECT uuid FROM contacts WHERE id = "
                                                      "%lld", (long long)stranger);
    snprintf(path, sizeof path, "/v1/contacts/%s", stranger_uuid);
    expect_read_refused(path, key, 404, "unknown_contact", "contact_id");
    snprintf(path, sizeof path, "/v1/contacts/%lld/messages", (long long)stranger);
    expect_read_refused(path, key, 404, "unknown_contact", "contact_id");

    /* one identifier, well formed */
    expect_read_refused("/v1/contacts", key, 400, "missing_field", "phone");
    expect_read_refused("/v1/contacts?phone=%2B6281300000101&bsuid=US.1", key, 400,
                        "invalid_field", "bsuid");
    expect_read_refused("/v1/contacts?phone=1&phone=2", key, 400, "invalid_field", "phone");
    expect_read_refused("/v1/contacts?phone=call-me", key, 400, "invalid_field", "phone");
    /* cut at the NUL it would be Ann's phone: refused, never truncated */
    expect_read_refused("/v1/contacts?phone=%2B6281300000101%00x", key, 400, "invalid_field",
                        "phone");
    expect_read_refused("/v1/contacts?bsuid=us.1", key, 400, "invalid_field", "bsuid");
    expect_read_refused("/v1/contacts?lid=123456789%40lid", key, 404, "unknown_contact", "lid");
    expect_read_refused("/v1/contacts?lid=6281300000101", key, 400, "invalid_field", "lid");
    expect_read_refused("/v1/contacts/not-a-contact", key, 400, "invalid_field", "contact_id");
    snprintf(path, sizeof path, "/v1/contacts/%s/messages?limit=201", uuid);
    expect_read_refused(path, key, 400, "invalid_field", "limit");
    snprintf(path, sizeof path, "/v1/contacts/%s/messages?cursor=yesterday", uuid);
    expect_read_refused(path, key, 400, "invalid_field", "cursor");
    snprintf(path, sizeof path, "/v1/contacts/%s/messages?before=yesterday", uuid);
    expect_read_refused(path, key, 400, "invalid_field", "before");
    snprintf(path, sizeof path, "/v1/contacts/%s/messages?cursor=c1_1_1&before=c1_1_1", uuid);
    expect_read_refused(path, key, 400, "invalid_field", "before");
    char resp[512];
    assert_int_equal(agent_call(fx, "PUT", "/v1/contacts", key, resp, sizeof resp), 405);
    /* a path of no route, as openapi.yaml's info says: 404 not_found alone */
    assert_int_equal(agent_call(fx, "GET", "/v1/contact", key, resp, sizeof resp), 404);
    assert_true(strstr(resp, "{\"error\":\"not_found\"}") != NULL);
    assert_int_equal(agent_call(fx, "GET", "/v1/contacts?phone=6281300000101", NULL, resp,
                                sizeof resp), 401);

    /* the conversation, 3 a page to the end: each message once, newest first */
    char got[1024];
    char *want = itest_pg_textf(fx->camp.pg, "SELECT string_agg(uuid::text, ',' ORDER BY "
                                             "created_at DESC, id DESC) FROM chats WHERE "
                                             "contact_id = %lld AND deleted_at IS NULL",
                                (long long)ann);
    read_conversation(key, uuid, 3, "cursor", got, sizeof got);
    assert_string_equal(got, want);
    /* v0.46.0's clients name the cursor before */
    read_conversation(key, uuid, 4, "before", got, sizeof got);
    assert_string_equal(got, want);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM regexp_split_to_table('%s', ',')", got),
                     7);
    snprintf(path, sizeof path, "%lld", (long long)ann);
    read_conversation(key, path, 200, "cursor", got, sizeof got);
    assert_string_equal(got, want);
    snprintf(path, sizeof path, "%lld", (long long)bob);
    read_conversation(key, path, 50, "cursor", got, sizeof got);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM regexp_split_to_table('%s', ',')", got),
                     1);
    free(want);
    free(stranger_uuid);
    free(uuid);
    free(key);
}

/* Run the UPDATE fmt formats. */
static void change_rows(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void change_rows(const char *fmt, ...)
{
    char sql[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    itest_pg_exec(fx->camp.pg, sql);
}

/* One message of a conversation (contact or group, the other 0), i
 * seconds before the newest; metadata as given. */
static void conversation_message(int64_t ws, int64_t acct, int64_t contact, int64_t group, int i,
                                 const char *metadata)
{
    agent_int(fx, "INSERT INTO chats (workspace_id, whatsapp_account_id, contact_id, group_id, "
                  "type, chat_type, metadata, created_at) VALUES (%lld, %lld, NULLIF(%lld, 0), "
                  "NULLIF(%lld, 0), 'inbound', '%s', '%s', date_trunc('second', now()) - "
                  "interval '1 second' * %d) RETURNING id",
              (long long)ws, (long long)acct, (long long)contact, (long long)group,
              group ? "group" : "private", metadata, i);
}

/* The workspace's conversations in the inbox's order (latest first,
 * contacts before groups at one time, then id descending), of one account
 * (0: all), as kind:id joined by commas; read from the tables, not
 * through the function the route calls. */
static char *inbox_order(int64_t ws, int64_t acct)
{
    return itest_pg_textf(fx->camp.pg,
                          "SELECT coalesce(string_agg(kind || ':' || id, ',' ORDER BY at DESC, "
                          "kind, id DESC), '') FROM (SELECT 'contact' AS kind, id, "
                          "latest_chat_created_at AS at, whatsapp_account_id AS acct FROM "
                          "contacts WHERE workspace_id = %lld AND deleted_at IS NULL UNION ALL "
                          "SELECT 'group', id, latest_chat_created_at, whatsapp_account_id FROM "
                          "whatsapp_groups WHERE workspace_id = %lld) c WHERE at IS NOT NULL "
                          "AND (%lld = 0 OR acct = %lld)",
                          (long long)ws, (long long)ws, (long long)acct, (long long)acct);
}

static void sessions_conversations_and_group_pages(void **state)
{
    (void)state;
    agent_fx_init(fx, "cv");
    int64_t ws = camp_workspace(&fx->camp), other_ws = camp_workspace(&fx->camp);
    int64_t acct = camp_account(&fx->camp, ws, "cv-a", 1, 100, "{}");
    int64_t acct_b = camp_account(&fx->camp, ws, "cv-b", 0, 100, "{}");
    int64_t other_acct = camp_account(&fx->camp, other_ws, "cv-o", 1, 100, "{}");
    /* seven contacts and three groups, contacts and groups sharing each
     * of three seconds, so that pages of two end on a contact with a
     * group of its second next; one contact deleted, one never written
     * to, one in another workspace */
    int64_t contacts[7], groups[3];
    char phone[32], jid[48];
    for (int i = 0; i < 7; i++) {
        snprintf(phone, sizeof phone, "+62813000002%02d", i);
        contacts[i] = agent_contact(fx, ws, phone, "Cv");
    }
    for (int i = 0; i < 3; i++) {
        snprintf(jid, sizeof jid, "1203630000000%d@g.us", i);
        groups[i] = agent_int(fx, "INSERT INTO whatsapp_groups (workspace_id, group_jid, name, "
                                  "whatsapp_account_id) VALUES (%lld, '%s', 'Group %d', %lld) "
                                  "RETURNING id",
                              (long long)ws, jid, i, (long long)(i == 2 ? acct_b : acct));
    }
    for (int i = 0; i < 10; i++) {
        int64_t contact = i < 6 ? contacts[i] : 0, group = i < 6 ? 0 : groups[i % 3];
        int64_t on = i % 4 == 3 ? acct_b : acct;
        conversation_message(ws, on, contact, group, i % 3, "{\"message_type\": \"text\", "
                                                            "\"body\": \"hello\"}");
    }
    /* contact 1's newest message, deleted for everyone: the conversation
     * keeps its place, its latest message shown is the one before */
    conversation_message(ws, acct, contacts[1], 0, -2, "{\"message_type\": \"text\", "
                                                        "\"body\": \"gone\"}");
    change_rows("UPDATE chats SET deleted_at = now() WHERE contact_id = %lld AND "
                "metadata->>'body' = 'gone'",
                (long long)contacts[1]);
    /* group 1's conversation: five more, one by a sender known by BSUID
     * alone and one deleted; its latest a reaction, which no inbox shows */
    for (int i = 0; i < 4; i++)
        conversation_message(ws, acct, 0, groups[1], 10 + i,
                             i == 1 ? "{\"message_type\": \"text\", \"body\": \"from Ann\", "
                                      "\"sender_phone\": \"+6281300000299\", \"sender_name\": "
                                      "\"Ann\", \"sender_bsuid\": \"ID.1234567890\"}"
                                    : "{\"message_type\": \"text\", \"body\": \"more\"}");
    change_rows("UPDATE chats SET deleted_at = now() WHERE id = (SELECT max(id) FROM chats "
                   "WHERE group_id = %lld)", (long long)groups[1]);
    conversation_message(ws, acct, 0, groups[1], -1, "{\"message_type\": \"reaction\"}");
    change_rows("UPDATE contacts SET deleted_at = now() WHERE id = %lld",
               (long long)contacts[4]);
    int64_t stranger = agent_contact(fx, other_ws, "+6281300000298", "Eve");
    conversation_message(other_ws, other_acct, stranger, 0, 0, "{\"message_type\": \"text\"}");
    /* what chat-sync keeps: the latest message's time and account */
    change_rows("UPDATE contacts c SET latest_chat_created_at = l.at, whatsapp_account_id = "
                   "l.acct FROM (SELECT DISTINCT ON (contact_id) contact_id, created_at AS at, "
                   "whatsapp_account_id AS acct FROM chats WHERE contact_id IS NOT NULL ORDER BY "
                   "contact_id, created_at DESC, id DESC) l WHERE c.id = l.contact_id");
    change_rows("UPDATE whatsapp_groups g SET latest_chat_created_at = l.at FROM (SELECT "
                   "group_id, max(created_at) AS at FROM chats WHERE group_id IS NOT NULL AND "
                   "metadata->>'message_type' <> 'reaction' GROUP BY group_id) l "
                   "WHERE g.id = l.group_id");
    /* a session in every state is listed: one disconnected, one deleted */
    change_rows("UPDATE whatsapp_accounts SET status = 'disconnected' WHERE id = %lld",
                (long long)acct_b);
    int64_t gone = camp_account(&fx->camp, ws, "cv-gone", 0, 100, "{}");
    change_rows("UPDATE whatsapp_accounts SET deleted_at = now() WHERE id = %lld",
                (long long)gone);
    char *key = agent_api_key(fx, ws);
    /* the reads on a connection of their own, as to a replica: read-only,
     * named so that PostgreSQL shows it */
    const char *dsn = itest_env("BLAZZ_PG_DSN");
    const char *scheme = strstr(dsn, "://"), *at = scheme ? strchr(scheme, '@') : NULL;
    assert_non_null(at);
    char read_dsn[1024], application[64];
    snprintf(application, sizeof application, "crm-reads-%.24s", fx->tag);
    snprintf(read_dsn, sizeof read_dsn,
             "BLAZZ_CRM_READ_DSN=%.*sblazz_ingest%s%sapplication_name=%s&"
             "target_session_attrs=any&options=-c%%20default_transaction_read_only%%3Don",
             (int)(scheme + 3 - dsn), dsn, at, strchr(at, '?') ? "&" : "?", application);
    const char *replica[] = {read_dsn, NULL};
    agent_start_ingest(fx, replica);

    /* the sessions, one a page: every live one once, oldest first */
    char sessions[512];
    char *want_sessions = itest_pg_textf(fx->camp.pg,
                                         "SELECT string_agg(session_id || ':' || status, ',' "
                                         "ORDER BY created_at, id) FROM whatsapp_accounts WHERE "
                                         "workspace_id = %lld AND deleted_at IS NULL",
                                         (long long)ws);
    read_pages(key, "/v1/sessions", 1, "cursor", "sessions", session_listed, sessions,
               sizeof sessions);
    assert_string_equal(sessions, want_sessions);
    assert_non_null(strstr(sessions, ":disconnected"));
    /* without a limit, every one in one page, as before paging: more
     * than a page of the other lists */
    int64_t many_ws = camp_workspace(&fx->camp);
    char name[32];
    for (int i = 0; i < SESSIONS_OVER_A_PAGE; i++) {
        snprintf(name, sizeof name, "cv-many-%d", i);
        camp_account(&fx->camp, many_ws, name, i == 0, 100, "{}");
    }
    char *many_key = agent_api_key(fx, many_ws);
    json_t *all;
    assert_int_equal(agent_get_json(fx, "/v1/sessions", many_key, &all), 200);
    assert_int_equal(json_array_size(json_object_get(all, "sessions")),
                     SESSIONS_OVER_A_PAGE);
    assert_true(json_is_null(json_object_get(all, "next_cursor")));
    json_decref(all);
    free(many_key);
    free(want_sessions);
    expect_read_refused("/v1/sessions?limit=300", key, 400, "invalid_field", "limit");

    /* the inbox, two a page to the end: each conversation once, in order */
    char got[2048];
    char *want = inbox_order(ws, 0);
    read_pages(key, "/v1/conversations", 2, "cursor", "conversations", conversation_listed, got,
               sizeof got);
    assert_string_equal(got, want);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM regexp_split_to_table('%s', ',')", got),
                     8);
    free(want);
    read_pages(key, "/v1/conversations", 200, "cursor", "conversations", conversation_listed,
               got, sizeof got);
    want = inbox_order(ws, 0);
    assert_string_equal(got, want);
    free(want);
    /* one session's */
    char path[256];
    snprintf(path, sizeof path, "/v1/conversations?whatsapp_account_id=%lld", (long long)acct_b);
    want = inbox_order(ws, acct_b);
    read_pages(key, path, 1, "cursor", "conversations", conversation_listed, got, sizeof got);
    assert_string_equal(got, want);
    assert_true(strlen(want) > 0);
    free(want);
    /* another workspace's session lists nothing here */
    snprintf(path, sizeof path, "/v1/conversations?whatsapp_account_id=%lld",
             (long long)other_acct);
    read_pages(key, path, 50, "cursor", "conversations", conversation_listed, got, sizeof got);
    assert_string_equal(got, "");

    /* a row as the inbox shows it: group 1, its latest message not the
     * reaction; contact 0, its phone and unread count */
    json_t *doc;
    assert_int_equal(agent_get_json(fx, "/v1/conversations?limit=200", key, &doc), 200);
    json_t *list = json_object_get(doc, "conversations"), *c;
    size_t i;
    int checked = 0;
    json_array_foreach(list, i, c) {
        json_int_t group = json_integer_value(json_object_get(c, "group_id"));
        json_int_t contact = json_integer_value(json_object_get(c, "contact_id"));
        if (group == groups[1]) {
            char *uuid = itest_pg_textf(fx->camp.pg, "SELECT uuid FROM whatsapp_groups WHERE "
                                                     "id = %lld", (long long)group);
            assert_member_text(c, "uuid", uuid);
            free(uuid);
            assert_member_text(c, "name", "Group 1");
            assert_true(json_is_null(json_object_get(c, "phone")));
            json_t *last = json_object_get(c, "last_message");
            char *latest = itest_pg_textf(fx->camp.pg,
                                          "SELECT uuid FROM chats WHERE group_id = %lld AND "
                                          "metadata->>'message_type' <> 'reaction' ORDER BY "
                                          "created_at DESC, id DESC LIMIT 1", (long long)group);
            assert_member_text(last, "message_id", latest);
            assert_member_text(last, "body", "hello");
            assert_member_text(last, "direction", "inbound");
            free(latest);
            checked++;
        }
        if (contact == contacts[1]) {
            char *latest = itest_pg_textf(fx->camp.pg,
                                          "SELECT uuid FROM chats WHERE contact_id = %lld AND "
                                          "deleted_at IS NULL ORDER BY created_at DESC, id DESC "
                                          "LIMIT 1", (long long)contact);
            json_t *last = json_object_get(c, "last_message");
            assert_member_text(last, "message_id", latest);
            assert_member_text(last, "body", "hello");
            free(latest);
            checked++;
        }
        if (contact == contacts[0]) {
            assert_member_text(c, "kind", "contact");
            assert_member_text(c, "phone", "+6281300000200");
            assert_int_equal(json_integer_value(json_object_get(c, "whatsapp_account_id")), acct);
            assert_true(json_is_integer(json_object_get(c, "unread_messages")));
            assert_true(json_is_string(json_object_get(c, "latest_at")));
            checked++;
        }
    }
    assert_int_equal(checked, 3);
    json_decref(doc);

    /* group 1's conversation by its id and by its uuid, two a page: its
     * live messages newest first, each as GET /v1/messages/{id} shows it */
    want = itest_pg_textf(fx->camp.pg, "SELECT string_agg(uuid::text, ',' ORDER BY created_at "
                                       "DESC, id DESC) FROM chats WHERE group_id = %lld AND "
                                       "deleted_at IS NULL", (long long)groups[1]);
    snprintf(path, sizeof path, "/v1/groups/%lld/messages", (long long)groups[1]);
    read_pages(key, path, 2, "cursor", "messages", message_listed, got, sizeof got);
    assert_string_equal(got, want);
    char *group_uuid = itest_pg_textf(fx->camp.pg, "SELECT uuid FROM whatsapp_groups WHERE "
                                                   "id = %lld", (long long)groups[1]);
    snprintf(path, sizeof path, "/v1/groups/%s/messages", group_uuid);
    read_pages(key, path, 200, "cursor", "messages", message_listed, got, sizeof got);
    assert_string_equal(got, want);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM regexp_split_to_table('%s', ',')", got),
                     5);
    free(want);
    /* the author of a group's message */
    char *ann_uuid = itest_pg_textf(fx->camp.pg, "SELECT uuid FROM chats WHERE group_id = %lld "
                                                 "AND metadata->>'sender_name' = 'Ann'",
                                    (long long)groups[1]);
    snprintf(path, sizeof path, "/v1/messages/%s", ann_uuid);
    assert_int_equal(agent_get_json(fx, path, key, &doc), 200);
    assert_member_text(doc, "sender_phone", "+6281300000299");
    assert_member_text(doc, "sender_name", "Ann");
    assert_member_text(doc, "sender_bsuid", "ID.1234567890");
    assert_member_text(doc, "chat_type", "group");
    json_decref(doc);

    /* refusals, each naming its field */
    int64_t other_group = agent_int(fx, "INSERT INTO whatsapp_groups (workspace_id, group_jid) "
                                        "VALUES (%lld, '120363000000099@g.us') RETURNING id",
                                    (long long)other_ws);
    snprintf(path, sizeof path, "/v1/groups/%lld/messages", (long long)other_group);
    expect_read_refused(path, key, 404, "unknown_group", "group_id");
    expect_read_refused("/v1/groups/general/messages", key, 400, "invalid_field", "group_id");
    snprintf(path, sizeof path, "/v1/groups/%s/messages?cursor=c1_x", group_uuid);
    expect_read_refused(path, key, 400, "invalid_field", "cursor");
    expect_read_refused("/v1/conversations?whatsapp_account_id=cv-a", key, 400, "invalid_field",
                        "whatsapp_account_id");
    expect_read_refused("/v1/conversations?limit=0", key, 400, "invalid_field", "limit");
    expect_read_refused("/v1/conversations?cursor=yesterday", key, 400, "invalid_field",
                        "cursor");
    char resp[512];
    assert_int_equal(agent_call(fx, "POST", "/v1/conversations", key, resp, sizeof resp), 405);
    assert_int_equal(agent_call(fx, "GET", "/v1/conversations", NULL, resp, sizeof resp), 401);
    /* the reads were the replica's, read-only; a write is the primary's */
    assert_true(agent_int(fx, "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                              "'%s' AND usename = 'blazz_ingest' AND query <> ''",
                          application) > 0);
    json_decref(agent_expect_answer(fx, "POST", "/v1/contacts", key,
                                    "{\"phone\": \"+6281300000297\", \"name\": \"Wes\"}", 202));
    free(ann_uuid);
    free(group_uuid);
    free(key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(agent_text_round_trip, agent_test_setup, agent_test_teardown),
        cmocka_unit_test_setup_teardown(same_key_three_times_across_kills, agent_test_setup, agent_test_teardown),
        cmocka_unit_test_setup_teardown(queued_again_by_a_replay_leaves_only_if_never_sent, agent_test_setup, lift_fences_then_teardown),
        cmocka_unit_test_setup_teardown(burst_in_one_batch, agent_test_setup, agent_test_teardown),
        cmocka_unit_test_setup_teardown(mark_read_three_times_and_replayed, agent_test_setup, agent_test_teardown),
        cmocka_unit_test_setup_teardown(bad_input, agent_test_setup, agent_test_teardown),
        cmocka_unit_test_setup_teardown(account_selection_and_failover, agent_test_setup, agent_test_teardown),
        cmocka_unit_test_setup_teardown(reaction_sent_and_removed, agent_test_setup, agent_test_teardown),
        cmocka_unit_test_setup_teardown(contacts_read_by_any_identifier, agent_test_setup, agent_test_teardown),
        cmocka_unit_test_setup_teardown(sessions_conversations_and_group_pages, agent_test_setup, agent_test_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
