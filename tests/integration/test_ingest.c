/*
 * test_ingest.c - blazz-ingest against the real stack (issue 3 acceptance).
 *
 * One ingest process (spawned from $BLAZZ_TEST_BIN_DIR/bin/blazz-ingest with
 * a unique topic prefix, consumer group and ports) serves the first tests:
 *  1. signed gateway JSON (private message, group message, receipt, session
 *     status, 50-chat history batch) and a protobuf POST each yield the right
 *     chat.sync record: key, resolved workspace/account, normalized phones
 *     and JIDs, headers;
 *  2. a wrong or missing signature is 401 and produces nothing;
 *  3. each class of invalid input (a session id that is no safe file name
 *     too) is a 400 naming the field (or 413: a body over the limit, or one
 *     that normalizes into an event over the record limit), and what only the Kafka path can judge (undecodable, unknown
 *     or deleted session, workspace mismatch, invalid raw fields, a raw
 *     record too large to become a SyncCommand) becomes a dead letter whose
 *     error names the problem, cut with its size and hash when it is too
 *     large to wrap whole; duplicates are dropped;
 *  4. a Meta notification with two messages and a status yields three
 *     events, and the GET handshake works; the changes of fields it does
 *     not map (the owner's echoes, an unknown field) are dead letters
 *     naming their field, shown by blazzctl and counted, never messages;
 *  5. SIGKILL mid-stream on the Kafka path: 20,000 raw events (and some
 *     invalid ones) appear exactly once downstream for a read_committed
 *     reader, however often ingest was killed.
 * Requests come from a registered gateway (X-Blazz-Gateway, its own key,
 * serving the test's accounts) and Meta's from the Meta app's gateway;
 * records written straight to wa.inbound.raw carry that gateway's stamp, as
 * the HTTP edge would (ARCHITECTURE.md §9.2).
 * Records are found by event_id; waits poll the topics with a generous
 * deadline and never assert on timing. The fixture is shared with
 * test_ingest_outages (support/ingest_itest.c), which stops the broker and
 * the database under the same ingest.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "blazz/v1/dead_letter.pb-c.h"
#include "blazz/v1/inbound.pb-c.h"
#include "blazz/v1/sync.pb-c.h"
#include "core/clock.h"
#include "core/uuid.h"
#include "itest.h"
#include "ingest_itest.h"
#include "kafka/limits.h"
#include "wa/signature.h"

#define CRASH_EVENTS 20000
#define CRASH_INVALID 100

static ingest_fx fx;

typedef itest_http_reply http_reply;
typedef ingest_records records;

static http_reply http(const char *method, const char *path, const void *body, size_t len,
                       const char *content_type, const char *sig_header, const char *sig)
{
    return ingest_fx_http(&fx, method, path, body, len, content_type, sig_header, sig);
}

static http_reply post_signed(const void *body, size_t len, const char *content_type)
{
    return ingest_fx_post_signed(&fx, body, len, content_type);
}

static http_reply post_json(const char *json)
{
    return ingest_fx_post_json(&fx, json);
}

static void expect_400(const char *json, const char *reason, const char *field)
{
    http_reply r = post_json(json);
    char want_reason[64], want_field[128];
    snprintf(want_reason, sizeof want_reason, "\"error\":\"%s\"", reason);
    snprintf(want_field, sizeof want_field, "\"field\":\"%s\"", field);
    if (r.status != 400 || !strstr(r.body, want_reason) || !strstr(r.body, want_field))
        fail_msg("expected 400 %s on %s, got %ld: %s", reason, field, r.status, r.body);
}

static void wait_for(const char *topic, const char *const *ids, size_t n, records *rs)
{
    ingest_records_wait_for(&fx, topic, ids, n, rs);
}

static void expect_key(const records *rs, const char *event_id, int64_t workspace,
                       const char *conversation)
{
    char want[160];
    snprintf(want, sizeof want, "%lld:%s", (long long)workspace, conversation);
    assert_string_equal(ingest_records_find(rs, event_id)->key, want);
}

static int setup_all(void **state)
{
    (void)state;
    ingest_fx_setup(&fx);
    return 0;
}

static int teardown_all(void **state)
{
    (void)state;
    ingest_fx_teardown(&fx);
    return 0;
}

/* ---- 1. gateway events -------------------------------------------------- */

static char *history_json(void)
{
    size_t cap = 64 * 1024, len = 0;
    char *buf = malloc(cap);
    len += (size_t)snprintf(buf + len, cap - len,
                            "{\"event\":\"history_sync\",\"session_id\":\"%s\",\"sync_id\":\"run-1\","
                            "\"batch_index\":0,\"batch_total\":1,\"total_chats\":50,\"chats\":[",
                            fx.session);
    for (int i = 0; i < 50; i++)
        len += (size_t)snprintf(buf + len, cap - len,
                                "%s{\"type\":\"private\",\"contact_phone\":\"0812000%05d\","
                                "\"contact_name\":\"Contact %d\",\"unread_count\":%d,"
                                "\"timestamp\":1700000%03d,\"messages\":[{\"message_id\":\"h%d\","
                                "\"message_body\":\"old message %d\",\"message_type\":\"chat\","
                                "\"timestamp\":1700000%03d}]}",
                                i ? "," : "", i, i, i % 3, i, i, i, i);
    snprintf(buf + len, cap - len, "]}");
    return buf;
}

static void test_gateway_events_become_sync_commands(void **state)
{
    (void)state;
    char json[2048], ids[6][BZ_UUID_STR_SIZE];
    http_reply r;
    snprintf(json, sizeof json,
             "{\"session_id\":\"%s\",\"workspace_id\":%lld,\"chat_type\":\"private\","
             "\"contact_phone\":\"6281234567890@c.us\",\"contact_name\":\"Budi\","
             "\"group_jid\":null,\"group_name\":null,\"sender_phone\":null,\"sender_name\":null,"
             "\"message_body\":\"Halo, apa kabar?\",\"message_type\":\"chat\","
             "\"timestamp\":1700000000,\"has_media\":false,\"message_id\":\"false_6281234567890@c.us_A1\"}",
             fx.session, (long long)fx.workspace);
    r = post_json(json);
    ingest_fx_accepted_id(&r, ids[0]);
    snprintf(json, sizeof json,
             "{\"session_id\":\"%s\",\"chat_type\":\"group\",\"contact_phone\":\"120363012345678901@g.us\","
             "\"group_jid\":\"120363012345678901@g.us\",\"group_name\":\"Tim Sales\","
             "\"sender_phone\":\"6289876543210@c.us\",\"sender_name\":\"Sari\","
             "\"message_body\":\"rapat jam 3\",\"message_type\":\"chat\",\"timestamp\":1700000100,"
             "\"has_media\":false,\"message_id\":\"false_120363012345678901@g.us_B2\"}",
             fx.session);
    r = post_json(json);
    ingest_fx_accepted_id(&r, ids[1]);
    snprintf(json, sizeof json,
             "{\"event\":\"receipt\",\"session_id\":\"%s\",\"message_id\":\"true_6281234567890@c.us_C3\","
             "\"status\":\"read\",\"recipient_phone\":\"+62 812-3456-7890\",\"timestamp\":1700000200}",
             fx.session);
    r = post_json(json);
    ingest_fx_accepted_id(&r, ids[2]);
    snprintf(json, sizeof json,
             "{\"event\":\"session_status\",\"session_id\":\"%s\",\"status\":\"disconnected\","
             "\"reason\":\"timeout\",\"details\":\"no pong\",\"instance_index\":2,"
             "\"timestamp\":1700000300}", fx.session);
    r = post_json(json);
    ingest_fx_accepted_id(&r, ids[3]);
    char *history = history_json();
    r = post_json(history);
    free(history);
    ingest_fx_accepted_id(&r, ids[4]);

    /* The same kind of event as protobuf, with its own event_id. */
    char pb_id[BZ_UUID_STR_SIZE];
    assert_int_equal(bz_uuid_v4(pb_id, NULL), BZ_OK);
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    Blazz__V1__InboundEvent ev = BLAZZ__V1__INBOUND_EVENT__INIT;
    Blazz__V1__InboundMessage msg = BLAZZ__V1__INBOUND_MESSAGE__INIT;
    env.event_id = pb_id;
    env.session_id = fx.session;
    env.occurred_at_ms = 1700000400000;
    msg.wam_id = "pb-1";
    msg.contact_jid = "6281111111111:12@s.whatsapp.net";
    msg.body = "via protobuf";
    msg.timestamp_ms = 1700000400000;
    ev.envelope = &env;
    ev.payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_MESSAGE;
    ev.message = &msg;
    uint8_t buf[512];
    size_t len = blazz__v1__inbound_event__pack(&ev, buf);
    r = post_signed(buf, len, "application/x-protobuf");
    ingest_fx_accepted_id(&r, ids[5]);
    assert_string_equal(ids[5], pb_id);

    const char *want[] = {ids[0], ids[1], ids[2], ids[3], ids[4], ids[5]};
    records rs = {0};
    wait_for(fx.sync, want, 6, &rs);

    Blazz__V1__SyncCommand *c = ingest_records_sync_of(&rs, ids[0]);
    expect_key(&rs, ids[0], fx.workspace, "+6281234567890");
    assert_int_equal(c->envelope->workspace_id, fx.workspace);
    assert_int_equal(c->envelope->whatsapp_account_id, fx.account);
    assert_int_equal(c->envelope->provider, BLAZZ__V1__PROVIDER__PROVIDER_WEBJS);
    assert_string_equal(c->envelope->session_id, fx.session);
    assert_int_equal(c->command_case, BLAZZ__V1__SYNC_COMMAND__COMMAND_MESSAGE);
    assert_int_equal(c->message->chat_type, BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_PRIVATE);
    assert_string_equal(c->message->contact_phone, "+6281234567890");
    assert_string_equal(c->message->contact_jid, "6281234567890@s.whatsapp.net");
    assert_string_equal(c->message->contact_name, "Budi");
    assert_string_equal(c->message->body, "Halo, apa kabar?");
    assert_int_equal(c->message->message_type, BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT);
    assert_int_equal(c->message->timestamp_ms, 1700000000000LL);
    assert_string_equal(ingest_records_find(&rs, ids[0])->event_id, ids[0]);
    blazz__v1__sync_command__free_unpacked(c, NULL);

    c = ingest_records_sync_of(&rs, ids[1]);
    expect_key(&rs, ids[1], fx.workspace, "120363012345678901@g.us");
    assert_int_equal(c->message->chat_type, BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_GROUP);
    assert_string_equal(c->message->group_jid, "120363012345678901@g.us");
    assert_string_equal(c->message->group_name, "Tim Sales");
    assert_string_equal(c->message->sender_phone, "+6289876543210");
    assert_string_equal(c->message->sender_jid, "6289876543210@s.whatsapp.net");
    assert_string_equal(c->message->contact_phone, "");
    blazz__v1__sync_command__free_unpacked(c, NULL);

    c = ingest_records_sync_of(&rs, ids[2]);
    expect_key(&rs, ids[2], fx.workspace, "+6281234567890");
    assert_int_equal(c->command_case, BLAZZ__V1__SYNC_COMMAND__COMMAND_RECEIPT);
    assert_int_equal(c->receipt->status, BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_READ);
    assert_string_equal(c->receipt->wam_id, "true_6281234567890@c.us_C3");
    assert_string_equal(c->receipt->recipient_phone, "+6281234567890");
    blazz__v1__sync_command__free_unpacked(c, NULL);

    c = ingest_records_sync_of(&rs, ids[3]);
    expect_key(&rs, ids[3], fx.workspace, "session");
    assert_int_equal(c->command_case, BLAZZ__V1__SYNC_COMMAND__COMMAND_SESSION_STATUS);
    assert_int_equal(c->session_status->status, BLAZZ__V1__SESSION_STATE__SESSION_STATE_DISCONNECTED);
    assert_int_equal(c->session_status->reason, BLAZZ__V1__DISCONNECT_REASON__DISCONNECT_REASON_TIMEOUT);
    assert_non_null(c->session_status->instance);
    assert_int_equal(c->session_status->instance->index, 2);
    assert_int_equal(c->envelope->occurred_at_ms, 1700000300000LL);
    blazz__v1__sync_command__free_unpacked(c, NULL);

    c = ingest_records_sync_of(&rs, ids[4]);
    expect_key(&rs, ids[4], fx.workspace, "session");
    assert_int_equal(c->command_case, BLAZZ__V1__SYNC_COMMAND__COMMAND_HISTORY_SYNC);
    assert_int_equal(c->history_sync->n_chats, 50);
    assert_int_equal(c->history_sync->total_chats, 50);
    assert_string_equal(c->history_sync->chats[7]->contact_phone, "+6281200000007");
    assert_int_equal(c->history_sync->chats[7]->n_messages, 1);
    assert_string_equal(c->history_sync->chats[7]->messages[0]->contact_phone, "+6281200000007");
    assert_int_equal(c->history_sync->chats[7]->messages[0]->chat_type,
                     BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_PRIVATE);
    blazz__v1__sync_command__free_unpacked(c, NULL);

    c = ingest_records_sync_of(&rs, ids[5]);
    expect_key(&rs, ids[5], fx.workspace, "+6281111111111");
    assert_string_equal(c->message->contact_jid, "6281111111111@s.whatsapp.net");
    blazz__v1__sync_command__free_unpacked(c, NULL);
    ingest_records_free(&rs);

    /* A retry of the same POST is the same event: dropped as a duplicate. */
    snprintf(json, sizeof json,
             "{\"session_id\":\"%s\",\"contact_phone\":\"6281234567890@c.us\",\"message_body\":"
             "\"Halo, apa kabar?\",\"message_type\":\"chat\",\"timestamp\":1700000000,"
             "\"message_id\":\"false_6281234567890@c.us_A1\"}", fx.session);
    char again[BZ_UUID_STR_SIZE];
    r = post_json(json);
    ingest_fx_accepted_id(&r, again);
    assert_string_equal(again, ids[0]);
}

/* ---- 2. signatures ------------------------------------------------------ */

static void test_bad_signature_is_401_and_produces_nothing(void **state)
{
    (void)state;
    char bad_id[BZ_UUID_STR_SIZE], marker_id[BZ_UUID_STR_SIZE], json[1024];
    assert_int_equal(bz_uuid_v4(bad_id, NULL), BZ_OK);
    snprintf(json, sizeof json,
             "{\"event_id\":\"%s\",\"session_id\":\"%s\",\"contact_phone\":\"6281234567890\","
             "\"message_body\":\"forged\",\"timestamp\":1700000000,\"message_id\":\"forged-1\"}",
             bad_id, fx.session);
    http_reply r = http("POST", "/v1/events", json, strlen(json), "application/json",
                        "X-WhatsApp-Signature",
                        "0000000000000000000000000000000000000000000000000000000000000000");
    assert_int_equal(r.status, 401);
    r = http("POST", "/v1/events", json, strlen(json), "application/json", NULL, NULL);
    assert_int_equal(r.status, 401);
    char sig[BZ_HMAC_SHA256_HEX_SIZE];
    bz_hmac_sha256_hex("wrong-secret", 12, json, strlen(json), sig, NULL);
    r = http("POST", "/v1/events", json, strlen(json), "application/json", "X-WhatsApp-Signature", sig);
    assert_int_equal(r.status, 401);

    /* A good event after the forged ones: once it is through, the forged
     * ones would have been too. */
    snprintf(json, sizeof json,
             "{\"session_id\":\"%s\",\"contact_phone\":\"6281234567890\",\"message_body\":\"marker\","
             "\"timestamp\":1700000000,\"message_id\":\"marker-1\"}", fx.session);
    r = post_json(json);
    ingest_fx_accepted_id(&r, marker_id);
    const char *want[] = {marker_id};
    records rs = {0};
    wait_for(fx.sync, want, 1, &rs);
    assert_null(ingest_records_find(&rs, bad_id));
    ingest_records_read(fx.raw, &rs);
    assert_null(ingest_records_find(&rs, bad_id));
    ingest_records_read(fx.dlq, &rs);
    assert_null(ingest_records_find(&rs, bad_id));
    ingest_records_free(&rs);
}

/* ---- 3. invalid input ---------------------------------------------------- */

/* A JSON object of exactly size bytes (spaces inside the braces), sent
 * as a careful client sends a large body: with Expect: 100-continue, so an
 * answer decided by the headers (413) comes before the body. Without it
 * the client may still be sending when ingest closes the connection after
 * that answer, and read a reset instead (make test on 85808e9: 'a body of
 * 952001 bytes: expected 413, got 0'); docs/openapi.yaml says so. */
static void expect_body_of_size(size_t size, long status)
{
    char *body = malloc(size + 1);
    memset(body, ' ', size);
    body[0] = '{';
    body[size - 1] = '}';
    body[size] = '\0';
    char url[128];
    itest_gateway_headers h;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/events", fx.port);
    assert_int_equal(itest_gateway_sign(fx.gateway, INGEST_FX_SECRET, body, size,
                                        "Content-Type: application/json", &h),
                     BZ_OK);
    const char *lines[8];
    size_t n = 0;
    for (; h.lines[n]; n++)
        lines[n] = h.lines[n];
    lines[n++] = "Expect: 100-continue";
    lines[n] = NULL;
    http_reply r;
    itest_http("POST", url, body, size, lines, 30000, &r);
    free(body);
    if (r.status != status)
        fail_msg("a body of %zu bytes: expected %ld, got %ld: %s", size, status, r.status, r.body);
}

/* A history batch of group chats whose participants are bare 13-digit
 * phone numbers, at least min_bytes packed. Normalization gives every
 * participant a phone with '+' and a JID: close to three times the bytes.
 * Returns heap bytes the caller frees. */
static uint8_t *participants_event(const char *event_id, size_t min_bytes, size_t *len)
{
    enum { PER_CHAT = 4000, CHATS = 50 };
    static char phones[PER_CHAT * CHATS][24];
    static char group_jids[CHATS][40];
    static Blazz__V1__GroupParticipant parts[PER_CHAT * CHATS];
    static Blazz__V1__GroupParticipant *part_ptrs[PER_CHAT * CHATS];
    static Blazz__V1__SyncedChat chats[CHATS];
    static Blazz__V1__SyncedChat *chat_ptrs[CHATS];
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    Blazz__V1__HistorySyncBatch h = BLAZZ__V1__HISTORY_SYNC_BATCH__INIT;
    Blazz__V1__InboundEvent ev = BLAZZ__V1__INBOUND_EVENT__INIT;
    env.event_id = (char *)event_id;
    env.session_id = fx.session;
    env.occurred_at_ms = 1700000000000;
    env.source = "itest";
    h.sync_id = "big";
    h.batch_total = 1;
    ev.envelope = &env;
    ev.payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_HISTORY_SYNC;
    ev.history_sync = &h;
    h.chats = chat_ptrs;
    size_t size = 0;
    for (int i = 0; i < PER_CHAT * CHATS && size < min_bytes; i++) {
        int c = i / PER_CHAT;
        if (i % PER_CHAT == 0) {
            blazz__v1__synced_chat__init(&chats[c]);
            snprintf(group_jids[c], sizeof group_jids[c], "1203630000000000%02d@g.us", c);
            chats[c].chat_type = BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_GROUP;
            chats[c].group_jid = group_jids[c];
            chats[c].group_name = "big";
            chats[c].participants = &part_ptrs[i];
            chat_ptrs[c] = &chats[c];
            h.n_chats = (size_t)c + 1;
            h.total_chats = c + 1;
        }
        snprintf(phones[i], sizeof phones[i], "62812%08d", i);
        blazz__v1__group_participant__init(&parts[i]);
        parts[i].phone = phones[i];
        part_ptrs[i] = &parts[i];
        chats[c].n_participants++;
        if (i % 64 == 0 || size + 64 * 20 >= min_bytes)
            size = blazz__v1__inbound_event__get_packed_size(&ev);
    }
    assert_true(size >= min_bytes);
    uint8_t *buf = malloc(size);
    *len = blazz__v1__inbound_event__pack(&ev, buf);
    return buf;
}

/* A protobuf body well under the body limit whose normalized event is over
 * the record limit cannot be accepted; it is 413, not "retry" (503). */
static void test_body_growing_past_the_record_limit_is_413(void **state)
{
    (void)state;
    char id[BZ_UUID_STR_SIZE];
    bz_uuid_v4(id, NULL);
    size_t len;
    uint8_t *body = participants_event(id, 600000, &len);
    assert_true(len < BZ_INBOUND_BODY_MAX_BYTES);
    http_reply r = post_signed(body, len, "application/x-protobuf");
    free(body);
    if (r.status != 413 || !strstr(r.body, "\"error\":\"too_large\""))
        fail_msg("expected 413 too_large, got %ld: %s", r.status, r.body);
}

static void test_invalid_http_input_is_400_naming_the_field(void **state)
{
    (void)state;
    char json[1024];
    const char *s = fx.session;
    expect_400("{\"session_id\": oops", "decode_error", "body");
    /* (a message without message_id is accepted: its id is derived) */
    snprintf(json, sizeof json, "{\"session_id\":\"%s\",\"message_id\":\"m\","
             "\"message_body\":\"x\",\"timestamp\":1700000000}", s);
    expect_400(json, "missing_field", "message.contact_phone");
    snprintf(json, sizeof json, "{\"contact_phone\":\"6281234567890\",\"message_id\":\"m\","
             "\"timestamp\":1700000000}");
    expect_400(json, "missing_field", "envelope.session_id");
    /* issue 49: gateways name a session's credentials file by its id */
    snprintf(json, sizeof json, "{\"session_id\":\"../x\",\"contact_phone\":\"6281234567890\","
             "\"message_id\":\"m\",\"timestamp\":1700000000}");
    expect_400(json, "invalid_field", "envelope.session_id");
    snprintf(json, sizeof json, "{\"session_id\":\"%s\",\"contact_phone\":\"12ab\","
             "\"message_id\":\"m\",\"timestamp\":1700000000}", s);
    expect_400(json, "invalid_field", "message.contact_phone");
    snprintf(json, sizeof json, "{\"session_id\":\"%s\",\"group_jid\":\"6281234567890@c.us\","
             "\"message_id\":\"m\",\"timestamp\":1700000000}", s);
    expect_400(json, "invalid_field", "message.group_jid");
    snprintf(json, sizeof json, "{\"session_id\":\"%s\",\"group_jid\":\"120363012345678901@g.us\","
             "\"message_id\":\"m\",\"timestamp\":1700000000}", s);
    expect_400(json, "missing_field", "message.sender_phone");
    snprintf(json, sizeof json, "{\"session_id\":\"%s\",\"contact_phone\":\"6281234567890\","
             "\"message_id\":\"m\",\"timestamp\":4102444800}", s);
    expect_400(json, "invalid_field", "message.timestamp_ms");
    snprintf(json, sizeof json, "{\"event_id\":\"not-a-uuid\",\"session_id\":\"%s\","
             "\"contact_phone\":\"6281234567890\",\"message_id\":\"m\",\"timestamp\":1700000000}", s);
    expect_400(json, "invalid_field", "envelope.event_id");
    snprintf(json, sizeof json, "{\"session_id\":\"%s\",\"contact_phone\":\"6281234567890\","
             "\"message_id\":\"m\",\"timestamp\":\"yesterday\"}", s);
    expect_400(json, "invalid_field", "timestamp");
    snprintf(json, sizeof json, "{\"event\":\"receipt\",\"session_id\":\"%s\",\"message_id\":\"m\","
             "\"status\":\"seen\",\"recipient_phone\":\"6281234567890\"}", s);
    expect_400(json, "invalid_field", "status");
    snprintf(json, sizeof json, "{\"event\":\"session_status\",\"session_id\":\"%s\"}", s);
    expect_400(json, "missing_field", "session_status.status");
    snprintf(json, sizeof json, "{\"event\":\"teleport\",\"session_id\":\"%s\"}", s);
    expect_400(json, "invalid_field", "event");

    /* message_body over the seeds' 65,536 bytes */
    size_t big = 70000;
    char *body = malloc(big + 512);
    int n = snprintf(body, 512, "{\"session_id\":\"%s\",\"contact_phone\":\"6281234567890\","
                     "\"message_id\":\"m\",\"timestamp\":1700000000,\"message_body\":\"", s);
    memset(body + n, 'a', big);
    strcpy(body + n + big, "\"}");
    expect_400(body, "invalid_field", "message.body");
    free(body);

    /* 51 chats in one history batch */
    char *history = malloc(16384);
    size_t len = (size_t)snprintf(history, 16384, "{\"event\":\"history_sync\",\"session_id\":\"%s\","
                                  "\"sync_id\":\"r\",\"batch_index\":0,\"batch_total\":1,\"chats\":[", s);
    for (int i = 0; i < 51; i++)
        len += (size_t)snprintf(history + len, 16384 - len, "%s{\"contact_phone\":\"62812000%05d\"}",
                                i ? "," : "", i);
    snprintf(history + len, 16384 - len, "]}");
    expect_400(history, "invalid_field", "chats");
    free(history);

    /* The body limit (the default) is 413 before parsing, also between
     * librdkafka's record limit and 1 MiB; at the limit the body is read. */
    expect_body_of_size(BZ_INBOUND_BODY_MAX_BYTES + 1, 413);
    expect_body_of_size(1000001, 413);
    expect_body_of_size(1048576, 413);
    expect_body_of_size(BZ_INBOUND_BODY_MAX_BYTES, 400);
}

/* As the HTTP edge writes it: stamped with the gateway that signed it. */
static void produce_raw(bz_producer *p, const char *key, const void *value, size_t len)
{
    bz_error err;
    bz_kafka_header stamp = {ITEST_GATEWAY_HEADER, fx.gateway, strlen(fx.gateway)};
    if (bz_producer_send(p, fx.raw, RD_KAFKA_PARTITION_UA, key, strlen(key), value, len, &stamp, 1,
                         NULL, &err) != BZ_OK)
        fail_msg("produce raw: %s", err.msg);
}

static void produce_raw_message(bz_producer *p, const char *event_id, const char *session,
                                int64_t claimed_workspace, const char *phone, const char *wam_id)
{
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    Blazz__V1__InboundEvent ev = BLAZZ__V1__INBOUND_EVENT__INIT;
    Blazz__V1__InboundMessage msg = BLAZZ__V1__INBOUND_MESSAGE__INIT;
    env.event_id = (char *)event_id;
    env.session_id = (char *)session;
    env.workspace_id = claimed_workspace;
    env.occurred_at_ms = 1700000000000;
    env.source = "itest";
    msg.wam_id = (char *)wam_id;
    msg.contact_phone = (char *)phone;
    msg.body = "raw";
    msg.message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT;
    msg.timestamp_ms = 1700000000000;
    ev.envelope = &env;
    ev.payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_MESSAGE;
    ev.message = &msg;
    uint8_t buf[1024];
    size_t len = blazz__v1__inbound_event__pack(&ev, buf);
    produce_raw(p, session, buf, len);
}

static void expect_dead_letter(const records *dlq, const char *event_id, const char *code,
                               const char *mentions)
{
    for (size_t i = 0; i < dlq->count; i++) {
        Blazz__V1__DeadLetter *dl = blazz__v1__dead_letter__unpack(NULL, dlq->items[i].len,
                                                                   dlq->items[i].value);
        assert_non_null(dl);
        int match = strcmp(dl->event_id, event_id) == 0;
        if (match) {
            assert_string_equal(dl->error_code, code);
            if (!strstr(dl->error_message, mentions))
                fail_msg("dead letter %s: message '%s' does not mention %s", event_id,
                         dl->error_message, mentions);
            assert_string_equal(dl->original_topic, fx.raw);
            assert_string_equal(dl->service, "ingest");
        }
        blazz__v1__dead_letter__free_unpacked(dl, NULL);
        if (match)
            return;
    }
    fail_msg("no dead letter for %s", event_id);
}

static void test_raw_problems_are_dead_lettered_with_reason(void **state)
{
    (void)state;
    char unknown[37], deleted[37], mismatch[37], badphone[37], good[37], dup[37];
    bz_uuid_v4(unknown, NULL);
    bz_uuid_v4(deleted, NULL);
    bz_uuid_v4(mismatch, NULL);
    bz_uuid_v4(badphone, NULL);
    bz_uuid_v4(good, NULL);
    bz_uuid_v4(dup, NULL);
    bz_producer *p = itest_producer();
    const char garbage[] = "\xff\xff\xffnot protobuf";
    produce_raw(p, fx.session, garbage, sizeof garbage - 1);
    produce_raw_message(p, unknown, "no-such-session", 0, "6281234567890", "u1");
    produce_raw_message(p, deleted, fx.deleted_session, 0, "6281234567890", "d1");
    produce_raw_message(p, mismatch, fx.session, fx.other_workspace, "6281234567890", "w1");
    produce_raw_message(p, badphone, fx.session, 0, "+0", "p1");
    produce_raw_message(p, dup, fx.session, 0, "6281234567890", "dup1");
    produce_raw_message(p, dup, fx.session, 0, "6281234567890", "dup1");
    produce_raw_message(p, good, fx.session, fx.workspace, "6281234567890", "g1");
    assert_int_equal(bz_producer_flush(p, 10000, NULL), BZ_OK);
    bz_producer_free(p, 1000);

    const char *want_dlq[] = {unknown, deleted, mismatch, badphone};
    records dlq = {0}, sync = {0};
    wait_for(fx.dlq, want_dlq, 4, &dlq);
    expect_dead_letter(&dlq, unknown, "unknown_session", "envelope.session_id");
    expect_dead_letter(&dlq, deleted, "unknown_session", "envelope.session_id");
    expect_dead_letter(&dlq, mismatch, "workspace_mismatch", "envelope.workspace_id");
    expect_dead_letter(&dlq, badphone, "invalid_field", "message.contact_phone");
    int decode_errors = 0;
    for (size_t i = 0; i < dlq.count; i++) {
        Blazz__V1__DeadLetter *dl = blazz__v1__dead_letter__unpack(NULL, dlq.items[i].len,
                                                                   dlq.items[i].value);
        if (strcmp(dl->error_code, "decode_error") == 0) {
            decode_errors++;
            assert_int_equal(dl->original_value.len, sizeof garbage - 1);
            assert_memory_equal(dl->original_value.data, garbage, sizeof garbage - 1);
        }
        blazz__v1__dead_letter__free_unpacked(dl, NULL);
    }
    assert_int_equal(decode_errors, 1);

    const char *want_sync[] = {good, dup};
    wait_for(fx.sync, want_sync, 2, &sync);
    int copies = 0;
    for (size_t i = 0; i < sync.count; i++)
        copies += strcmp(sync.items[i].event_id, dup) == 0;
    assert_int_equal(copies, 1);
    assert_null(ingest_records_find(&sync, mismatch));
    ingest_records_free(&dlq);
    ingest_records_free(&sync);
}

/* What one dead letter (found by event_id, or by the original's size when
 * it had none) says about a record too large to wrap whole. */
typedef struct cut_check {
    const char *event_id;
    const uint8_t *value;
    size_t len;
    const char *code;
    int found;
} cut_check;

static void check_cut_dead_letter(void *ctx, const rd_kafka_message_t *m)
{
    cut_check *c = ctx;
    Blazz__V1__DeadLetter *dl = blazz__v1__dead_letter__unpack(NULL, m->len, m->payload);
    assert_non_null(dl);
    int ours = c->event_id ? strcmp(dl->event_id, c->event_id) == 0
                           : dl->original_value_size == (int64_t)c->len;
    if (ours) {
        c->found++;
        assert_string_equal(dl->error_code, c->code);
        assert_string_equal(dl->original_topic, fx.raw);
        itest_assert_value_cut(dl, c->value, c->len);
    }
    blazz__v1__dead_letter__free_unpacked(dl, NULL);
}

static void expect_cut_dead_letter(const char *event_id, const uint8_t *value, size_t len,
                                   const char *code)
{
    cut_check c = {event_id, value, len, code, 0};
    int64_t deadline = bz_monotonic_ms() + INGEST_FX_WAIT_MS;
    while (!c.found && bz_monotonic_ms() < deadline) {
        itest_consume_all(fx.dlq, check_cut_dead_letter, &c);
        if (!c.found)
            itest_sleep_ms(300);
    }
    if (!c.found)
        fail_msg("no cut dead letter of %zu bytes (%s) on %s (log: %s)", len, code, fx.dlq,
                 fx.log_path);
}

/* Raw records near the record limit: an undecodable one (its dead letter
 * cannot hold it whole) and a valid one whose SyncCommand would be larger
 * than the limit. Both are dead-lettered cut, with size and hash, once, and
 * the event behind them on the same partition goes through. */
static void test_raw_records_near_the_limit_are_dead_lettered_cut(void **state)
{
    (void)state;
    char big_id[BZ_UUID_STR_SIZE], after[BZ_UUID_STR_SIZE];
    bz_uuid_v4(big_id, NULL);
    bz_uuid_v4(after, NULL);
    /* As large as a producer may write: a dead letter adds a few hundred
     * bytes, a SyncCommand more. */
    size_t garbage_len = BZ_KAFKA_RECORD_MAX_BYTES - 100, big_len;
    uint8_t *garbage = malloc(garbage_len);
    for (size_t i = 0; i < garbage_len; i++)
        garbage[i] = (uint8_t)(0xff - i % 7);
    uint8_t *big = participants_event(big_id, BZ_KAFKA_RECORD_MAX_BYTES - 200, &big_len);
    assert_true(bz_kafka_record_size(strlen(fx.session), big_len, NULL, 0) <=
                BZ_KAFKA_RECORD_MAX_BYTES);
    bz_producer *p = itest_producer();
    produce_raw(p, fx.session, garbage, garbage_len);
    produce_raw(p, fx.session, big, big_len);
    produce_raw_message(p, after, fx.session, 0, "6281234567890", "after-big");
    assert_int_equal(bz_producer_flush(p, 30000, NULL), BZ_OK);
    bz_producer_free(p, 1000);

    const char *want[] = {after};
    records sync = {0};
    wait_for(fx.sync, want, 1, &sync);
    ingest_records_free(&sync);
    expect_cut_dead_letter(NULL, garbage, garbage_len, "decode_error");
    expect_cut_dead_letter(big_id, big, big_len, "too_large");
    free(garbage);
    free(big);
}

/* The operator's runbook on a real dead letter: an event for a session
 * that did not exist yet is dead-lettered; `blazzctl dlq tail` shows why;
 * once the account exists, `blazzctl dlq replay` sends it through again
 * and it comes out on chat.sync (ingest must not drop the replay as a
 * duplicate of the event it dead-lettered). */
static void test_dead_letter_is_tailed_and_replayed_with_blazzctl(void **state)
{
    (void)state;
    char late_session[64], event[37], sql[512];
    itest_unique("itest-late-", late_session, sizeof late_session);
    bz_uuid_v4(event, NULL);
    bz_producer *p = itest_producer();
    produce_raw_message(p, event, late_session, 0, "6281234567890", "late1");
    assert_int_equal(bz_producer_flush(p, 10000, NULL), BZ_OK);
    bz_producer_free(p, 1000);
    const char *want[] = {event};
    records dlq = {0}, sync = {0};
    wait_for(fx.dlq, want, 1, &dlq);
    ingest_records_free(&dlq);

    const char *tail[] = {"dlq",    "tail", "wa.inbound.dlq", "--prefix", fx.prefix,
                          "--since", "1h",  "--json",         NULL};
    json_t *shown = itest_blazzctl_json(tail, fx.log_path), *rec, *ours = NULL;
    size_t i;
    json_array_foreach(json_object_get(shown, "records"), i, rec)
        if (strcmp(json_string_value(json_object_get(rec, "event_id")), event) == 0)
            ours = rec;
    assert_non_null(ours);
    assert_string_equal(json_string_value(json_object_get(ours, "error_code")), "unknown_session");
    assert_string_equal(json_string_value(json_object_get(ours, "service")), "ingest");
    assert_string_equal(json_string_value(json_object_get(ours, "original_topic")), fx.raw);
    assert_string_equal(json_string_value(json_object_get(ours, "payload_type")),
                        "blazz.v1.InboundEvent");
    json_decref(shown);

    snprintf(sql, sizeof sql,
             "INSERT INTO whatsapp_accounts (workspace_id, session_id, status, gateway_id) VALUES "
             "(%lld, '%s', 'connected', '%s') RETURNING id", (long long)fx.workspace, late_session,
             fx.gateway);
    itest_pg_int64(fx.conn, sql);
    const char *replay[] = {"dlq",      "replay",          "wa.inbound.dlq", "--prefix",
                            fx.prefix,  "--filter",        "error=unknown_session",
                            "--json",   NULL};
    json_t *done = itest_blazzctl_json(replay, fx.log_path);
    assert_true(json_integer_value(json_object_get(done, "replayed")) >= 1);
    assert_int_equal(json_integer_value(json_object_get(done, "failed")), 0);
    json_decref(done);
    wait_for(fx.sync, want, 1, &sync);
    expect_key(&sync, event, fx.workspace, "+6281234567890");
    ingest_records_free(&sync);
}

/* ---- 4. Meta ------------------------------------------------------------ */

static void test_meta_notification_yields_one_event_per_message_and_status(void **state)
{
    (void)state;
    char url[256];
    snprintf(url, sizeof url, "/v1/meta/webhook?hub.mode=subscribe&hub.verify_token=%s"
             "&hub.challenge=1158201444", INGEST_FX_META_TOKEN);
    http_reply r = http("GET", url, NULL, 0, NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "1158201444");
    r = http("GET", "/v1/meta/webhook?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1",
             NULL, 0, NULL, NULL, NULL);
    assert_int_equal(r.status, 403);

    char body[4096];
    snprintf(body, sizeof body,
             "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"WABA\",\"changes\":[{"
             "\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{"
             "\"display_phone_number\":\"15550001111\",\"phone_number_id\":\"%s\"},"
             "\"contacts\":[{\"profile\":{\"name\":\"Kerry\"},\"wa_id\":\"16315551234\"}],"
             "\"messages\":[{\"from\":\"16315551234\",\"id\":\"wamid.M1\",\"timestamp\":\"1700000500\","
             "\"type\":\"text\",\"text\":{\"body\":\"hello from meta\"}},"
             "{\"from\":\"16315551234\",\"id\":\"wamid.M2\",\"timestamp\":\"1700000501\",\"type\":\"image\","
             "\"image\":{\"id\":\"MEDIA1\",\"mime_type\":\"image/jpeg\",\"sha256\":\"abc\",\"caption\":\"pic\"}}],"
             "\"statuses\":[{\"id\":\"wamid.S1\",\"status\":\"failed\",\"timestamp\":\"1700000502\","
             "\"recipient_id\":\"16315551234\",\"errors\":[{\"code\":131047,\"title\":\"Re-engagement message\"}]}]"
             "}}]}]}", fx.meta_session);
    char sig[8 + BZ_HMAC_SHA256_HEX_SIZE] = "sha256=";
    bz_hmac_sha256_hex(INGEST_FX_META_SECRET, strlen(INGEST_FX_META_SECRET), body, strlen(body), sig + 7, NULL);
    r = http("POST", "/v1/meta/webhook", body, strlen(body), "application/json", "X-Hub-Signature-256",
             "sha256=00");
    assert_int_equal(r.status, 401);
    r = http("POST", "/v1/meta/webhook", body, strlen(body), "application/json", "X-Hub-Signature-256",
             sig);
    assert_int_equal(r.status, 200);

    /* Find the three by reading chat.sync until the Meta account's events
     * are all there. */
    records rs = {0};
    int64_t deadline = bz_monotonic_ms() + INGEST_FX_WAIT_MS;
    Blazz__V1__SyncCommand *found[3] = {0};
    for (;;) {
        ingest_records_read(fx.sync, &rs);
        int n = 0;
        for (size_t i = 0; i < rs.count; i++) {
            Blazz__V1__SyncCommand *c = blazz__v1__sync_command__unpack(NULL, rs.items[i].len,
                                                                        rs.items[i].value);
            if (c && strcmp(c->envelope->session_id, fx.meta_session) == 0 && n < 3)
                found[n++] = c;
            else if (c)
                blazz__v1__sync_command__free_unpacked(c, NULL);
        }
        if (n == 3)
            break;
        for (int i = 0; i < n; i++)
            blazz__v1__sync_command__free_unpacked(found[i], NULL);
        if (bz_monotonic_ms() > deadline)
            fail_msg("Meta events missing on chat.sync (log: %s)", fx.log_path);
        itest_sleep_ms(300);
    }
    int texts = 0, images = 0, failures = 0;
    for (int i = 0; i < 3; i++) {
        Blazz__V1__SyncCommand *c = found[i];
        assert_int_equal(c->envelope->provider, BLAZZ__V1__PROVIDER__PROVIDER_META);
        assert_int_equal(c->envelope->whatsapp_account_id, fx.meta_account);
        assert_int_equal(c->envelope->workspace_id, fx.workspace);
        assert_string_equal(c->conversation, "+16315551234");
        if (c->command_case == BLAZZ__V1__SYNC_COMMAND__COMMAND_MESSAGE &&
            c->message->message_type == BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT) {
            texts++;
            assert_string_equal(c->message->body, "hello from meta");
            assert_string_equal(c->message->contact_name, "Kerry");
            assert_string_equal(c->message->contact_phone, "+16315551234");
            assert_string_equal(c->message->wam_id, "wamid.M1");
        } else if (c->command_case == BLAZZ__V1__SYNC_COMMAND__COMMAND_MESSAGE) {
            images++;
            assert_int_equal(c->message->message_type, BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_IMAGE);
            assert_non_null(c->message->media);
            assert_string_equal(c->message->media->media_id, "MEDIA1");
            assert_string_equal(c->message->media->caption, "pic");
        } else {
            failures++;
            assert_int_equal(c->command_case, BLAZZ__V1__SYNC_COMMAND__COMMAND_RECEIPT);
            assert_int_equal(c->receipt->status, BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_FAILED);
            assert_string_equal(c->receipt->error_code, "131047");
            assert_string_equal(c->receipt->wam_id, "wamid.S1");
        }
        blazz__v1__sync_command__free_unpacked(c, NULL);
    }
    assert_int_equal(texts, 1);
    assert_int_equal(images, 1);
    assert_int_equal(failures, 1);
    ingest_records_free(&rs);
}

/* Sign and post a Meta notification; its HTTP status. */
static long post_meta(const char *body)
{
    char sig[8 + BZ_HMAC_SHA256_HEX_SIZE] = "sha256=";
    bz_hmac_sha256_hex(INGEST_FX_META_SECRET, strlen(INGEST_FX_META_SECRET), body, strlen(body),
                       sig + 7, NULL);
    return http("POST", "/v1/meta/webhook", body, strlen(body), "application/json",
                "X-Hub-Signature-256", sig).status;
}

/* The dead letter `blazzctl dlq tail` shows for the change of field whose
 * payload mentions marker (a new reference), or NULL when none yet. */
static json_t *unhandled_dead_letter(json_t *shown, const char *field, const char *marker)
{
    size_t i;
    json_t *rec;
    json_array_foreach(json_object_get(shown, "records"), i, rec) {
        const char *code = json_string_value(json_object_get(rec, "error_code"));
        json_t *payload = json_object_get(rec, "payload");
        const char *its_field = json_string_value(json_object_get(payload, "field"));
        char *text = payload ? json_dumps(payload, JSON_COMPACT) : NULL;
        int ours = code && strcmp(code, "unhandled_field") == 0 && text &&
                   strstr(text, marker) && its_field && strcmp(its_field, field) == 0;
        free(text);
        if (ours)
            return json_incref(rec);
    }
    return NULL;
}

/* Wait until `blazzctl dlq tail` shows the dead letter of each of the n
 * (field, marker) pairs; each then names its field in its message. */
static void expect_unhandled_dead_letters(const char *const fields[], const char *const markers[],
                                          size_t n)
{
    const char *tail[] = {"dlq",    "tail", "wa.inbound.dlq", "--prefix", fx.prefix,
                          "--since", "1h",  "--json",         NULL};
    int64_t deadline = bz_monotonic_ms() + INGEST_FX_WAIT_MS;
    for (size_t k = 0; k < n;) {
        json_t *shown = itest_blazzctl_json(tail, fx.log_path);
        json_t *rec = unhandled_dead_letter(shown, fields[k], markers[k]);
        json_decref(shown);
        if (!rec) {
            if (bz_monotonic_ms() > deadline)
                fail_msg("no unhandled_field dead letter of %s (%s) (log: %s)", fields[k],
                         markers[k], fx.log_path);
            itest_sleep_ms(300);
            continue;
        }
        const char *msg = json_string_value(json_object_get(rec, "error_message"));
        if (!msg || !strstr(msg, fields[k]))
            fail_msg("dead letter of %s: message '%s' does not name the field", fields[k],
                     msg ? msg : "");
        assert_string_equal(json_string_value(json_object_get(rec, "service")), "ingest");
        assert_string_equal(json_string_value(json_object_get(rec, "payload_type")), "json");
        json_decref(rec);
        k++;
    }
}

/* The chat.sync records of message wam_id; *from_me: whether the last
 * one is the account's own. */
static int messages_stored(const char *wam_id, int *from_me)
{
    records rs = {0};
    int n = 0;
    ingest_records_read(fx.sync, &rs);
    for (size_t i = 0; i < rs.count; i++) {
        Blazz__V1__SyncCommand *c = blazz__v1__sync_command__unpack(NULL, rs.items[i].len,
                                                                    rs.items[i].value);
        if (c && c->command_case == BLAZZ__V1__SYNC_COMMAND__COMMAND_MESSAGE &&
            strcmp(c->message->wam_id, wam_id) == 0) {
            n++;
            *from_me = c->message->from_me;
        }
        if (c)
            blazz__v1__sync_command__free_unpacked(c, NULL);
    }
    ingest_records_free(&rs);
    return n;
}

/* Meta's samples (webhook references: smb_message_echoes; an unknown
 * field): the owner's echo as documented (message_echoes), the same with
 * its array named messages, an echo naming no customer, and a field
 * nobody knows, in one notification of two entries. The documented echo
 * is the owner's own message (from_me) on chat.sync, once; none of the
 * others is a message: each is a dead letter naming its field that
 * blazzctl shows, counted by field; Meta gets 200. */
static void test_meta_fields_not_mapped_are_dead_lettered_not_dropped(void **state)
{
    (void)state;
    char echo[64], echo_as_messages[64], echo_to_nobody[64], future[64], body[4096];
    itest_unique("wamid.ECHO", echo, sizeof echo);
    itest_unique("wamid.ECHOM", echo_as_messages, sizeof echo_as_messages);
    itest_unique("wamid.ECHON", echo_to_nobody, sizeof echo_to_nobody);
    itest_unique("future-", future, sizeof future);
    const char *metric_echo = "blazz_ingest_meta_unhandled_fields_total{field=\"smb_message_echoes\"}";
    const char *metric_other = "blazz_ingest_meta_unhandled_fields_total{field=\"other\"}";
    double echoes_before = itest_metric(fx.admin_port, metric_echo);
    double others_before = itest_metric(fx.admin_port, metric_other);
    snprintf(body, sizeof body,
             "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"102290129340398\","
             "\"changes\":[{\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{"
             "\"display_phone_number\":\"15550783881\",\"phone_number_id\":\"%s\"},"
             "\"message_echoes\":[{\"from\":\"15550783881\",\"to\":\"16505551234\",\"id\":\"%s\","
             "\"timestamp\":\"1739321024\",\"type\":\"text\",\"text\":{\"body\":\"Here's the info "
             "you requested! https://www.meta.com/quest/quest-3/\"}}]},"
             "\"field\":\"smb_message_echoes\"},"
             "{\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{"
             "\"display_phone_number\":\"15550783881\",\"phone_number_id\":\"%s\"},"
             "\"messages\":[{\"from\":\"15550783881\",\"to\":\"16505551234\",\"id\":\"%s\","
             "\"timestamp\":\"1739321025\",\"type\":\"text\",\"text\":{\"body\":\"On my way\"}}]},"
             "\"field\":\"smb_message_echoes\"},"
             "{\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{"
             "\"display_phone_number\":\"15550783881\",\"phone_number_id\":\"%s\"},"
             "\"message_echoes\":[{\"from\":\"15550783881\",\"id\":\"%s\","
             "\"timestamp\":\"1739321025\",\"type\":\"text\",\"text\":{\"body\":\"To whom?\"}}]},"
             "\"field\":\"smb_message_echoes\"}]},"
             "{\"id\":\"102290129340398\",\"time\":1739321026,\"changes\":[{\"value\":{"
             "\"marker\":\"%s\"},\"field\":\"some_future_field\"}]}]}",
             fx.meta_session, echo, fx.meta_session, echo_as_messages, fx.meta_session,
             echo_to_nobody, future);
    assert_int_equal(post_meta(body), 200);

    const char *fields[] = {"smb_message_echoes", "smb_message_echoes", "some_future_field"};
    const char *markers[] = {echo_as_messages, echo_to_nobody, future};
    expect_unhandled_dead_letters(fields, markers, 3);
    /* the request was answered once every record was acknowledged: its
     * messages are on chat.sync by now */
    int from_me = 0;
    assert_int_equal(messages_stored(echo, &from_me), 1);
    assert_true(from_me);
    assert_int_equal(messages_stored(echo_as_messages, &from_me), 0);
    assert_int_equal(messages_stored(echo_to_nobody, &from_me), 0);
    assert_true(itest_metric(fx.admin_port, metric_echo) - (echoes_before > 0 ? echoes_before : 0) >= 2);
    assert_true(itest_metric(fx.admin_port, metric_other) - (others_before > 0 ? others_before : 0) >= 1);
}

/* A Meta message for a number not registered yet is dead-lettered
 * unknown_session; once the number exists, `blazzctl dlq replay` sends it
 * to wa.inbound.raw under the Meta gateway's name (the edge's header), and
 * the Kafka path takes it as Meta's: a gateway's event claiming to be
 * Meta's is refused, a replayed Meta dead letter is not. */
static void test_meta_dead_letter_is_replayed_as_metas(void **state)
{
    (void)state;
    char late[80], wamid[48], body[2048], sql[512];
    snprintf(late, sizeof late, "%s7", fx.meta_session); /* another number of this run's */
    snprintf(wamid, sizeof wamid, "wamid.late.%d", itest_random(100000, 999999));
    snprintf(body, sizeof body,
             "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"102290129340398\","
             "\"changes\":[{\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{"
             "\"display_phone_number\":\"15550783881\",\"phone_number_id\":\"%s\"},"
             "\"contacts\":[{\"profile\":{\"name\":\"Kerry Fisher\"},\"wa_id\":\"16315551181\"}],"
             "\"messages\":[{\"from\":\"16315551181\",\"id\":\"%s\",\"timestamp\":\"%lld\","
             "\"type\":\"text\",\"text\":{\"body\":\"anyone there?\"}}]},"
             "\"field\":\"messages\"}]}]}",
             late, wamid, (long long)time(NULL));
    /* answered once its dead letter is acknowledged */
    assert_int_equal(post_meta(body), 200);
    int from_me = 0;
    assert_int_equal(messages_stored(wamid, &from_me), 0);

    snprintf(sql, sizeof sql,
             "INSERT INTO whatsapp_accounts (workspace_id, session_id, provider_type, status, "
             "gateway_id) VALUES (%lld, '%s', 'meta', 'connected', '%s') RETURNING id",
             (long long)fx.workspace, late, fx.meta_gateway);
    itest_pg_int64(fx.conn, sql);
    const char *replay[] = {"dlq",     "replay",   "wa.inbound.dlq", "--prefix", fx.prefix,
                            "--filter", "error=unknown_session", "--json", NULL};
    json_t *done = itest_blazzctl_json(replay, fx.log_path);
    assert_true(json_integer_value(json_object_get(done, "replayed")) >= 1);
    json_decref(done);
    for (int i = 0; i < 300 && messages_stored(wamid, &from_me) == 0; i++)
        itest_sleep_ms(100);
    assert_int_equal(messages_stored(wamid, &from_me), 1);
    assert_false(from_me);
}

/* ---- 5. SIGKILL on the Kafka path --------------------------------------- */

static void publish_crash_workload(char (*ids)[BZ_UUID_STR_SIZE], char (*bad)[BZ_UUID_STR_SIZE])
{
    bz_producer *p = itest_producer();
    for (int i = 0; i < CRASH_EVENTS; i++) {
        char phone[32], wam[32];
        bz_uuid_v4(ids[i], NULL);
        snprintf(phone, sizeof phone, "62812%07d", i % 500);
        snprintf(wam, sizeof wam, "crash-%d", i);
        produce_raw_message(p, ids[i], fx.session, 0, phone, wam);
        if (i % (CRASH_EVENTS / CRASH_INVALID) == 0) {
            int b = i / (CRASH_EVENTS / CRASH_INVALID);
            bz_uuid_v4(bad[b], NULL);
            produce_raw_message(p, bad[b], "no-such-session", 0, phone, wam);
        }
    }
    assert_int_equal(bz_producer_flush(p, 60000, NULL), BZ_OK);
    bz_producer_free(p, 1000);
}

typedef struct tally {
    const char (*ids)[BZ_UUID_STR_SIZE];
    int n;
    int *seen;
    int total;
} tally;

static int cmp_ids(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static void count_record(void *ctx, const rd_kafka_message_t *m)
{
    tally *t = ctx;
    char id[BZ_UUID_STR_SIZE];
    itest_header_text(m, "event_id", id, sizeof id);
    const char (*hit)[BZ_UUID_STR_SIZE] = bsearch(id, t->ids, (size_t)t->n, sizeof *t->ids, cmp_ids);
    if (hit) {
        t->seen[hit - t->ids]++;
        t->total++;
    }
}

/* Read topic until every id appeared at least once, then check each exactly once. */
static void expect_exactly_once(const char *topic, char (*ids)[BZ_UUID_STR_SIZE], int n)
{
    qsort(ids, (size_t)n, sizeof *ids, cmp_ids);
    tally t = {.ids = (const char (*)[BZ_UUID_STR_SIZE])ids, .n = n, .seen = calloc((size_t)n, sizeof(int))};
    int64_t deadline = bz_monotonic_ms() + INGEST_FX_WAIT_MS;
    int distinct = 0;
    for (;;) {
        memset(t.seen, 0, (size_t)n * sizeof(int));
        t.total = 0;
        itest_consume_all(topic, count_record, &t);
        distinct = 0;
        for (int i = 0; i < n; i++)
            distinct += t.seen[i] > 0;
        if (distinct == n || bz_monotonic_ms() > deadline)
            break;
        itest_sleep_ms(500);
    }
    int dupes = 0;
    for (int i = 0; i < n; i++)
        dupes += t.seen[i] > 1;
    printf("# %s: %d distinct of %d, %d records, %d duplicated ids\n", topic, distinct, n, t.total,
           dupes);
    free(t.seen);
    assert_int_equal(distinct, n);
    assert_int_equal(dupes, 0);
}

static void test_sigkill_mid_stream_loses_and_repeats_nothing(void **state)
{
    (void)state;
    static char ids[CRASH_EVENTS][BZ_UUID_STR_SIZE], bad[CRASH_INVALID][BZ_UUID_STR_SIZE];
    publish_crash_workload(ids, bad);
    int64_t t0 = bz_monotonic_ms();
    for (int kill_round = 0; kill_round < 3; kill_round++) {
        itest_sleep_ms(itest_random(1500, 3500));
        kill(fx.ingest, SIGKILL);
        itest_wait(fx.ingest);
        ingest_fx_start(&fx);
    }
    expect_exactly_once(fx.sync, ids, CRASH_EVENTS);
    expect_exactly_once(fx.dlq, bad, CRASH_INVALID);
    printf("# %d raw events through 3 SIGKILLs in %.1f s\n", CRASH_EVENTS,
           (double)(bz_monotonic_ms() - t0) / 1000.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gateway_events_become_sync_commands),
        cmocka_unit_test(test_bad_signature_is_401_and_produces_nothing),
        cmocka_unit_test(test_invalid_http_input_is_400_naming_the_field),
        cmocka_unit_test(test_body_growing_past_the_record_limit_is_413),
        cmocka_unit_test(test_raw_problems_are_dead_lettered_with_reason),
        cmocka_unit_test(test_raw_records_near_the_limit_are_dead_lettered_cut),
        cmocka_unit_test(test_dead_letter_is_tailed_and_replayed_with_blazzctl),
        cmocka_unit_test(test_meta_dead_letter_is_replayed_as_metas),
        cmocka_unit_test(test_meta_notification_yields_one_event_per_message_and_status),
        cmocka_unit_test(test_meta_fields_not_mapped_are_dead_lettered_not_dropped),
        cmocka_unit_test(test_sigkill_mid_stream_loses_and_repeats_nothing),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
