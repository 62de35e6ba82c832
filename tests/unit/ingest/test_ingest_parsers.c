/*
 * test_ingest_parsers.c - ingest's parsing modules beyond what the fuzz
 * targets check (their corpora replay as test_corpus_ingest_*): a Meta
 * notification maps to one event per message and status with the right
 * types (the corpus file all_types.json, found under tests/fuzz/corpus or
 * BLAZZ_FUZZ_CORPUS), derived event ids are stable, a message without a
 * WhatsApp id (the seeds' notifier) gets a stable derived one, and the
 * duplicate window forgets what a rolled-back transaction added. Whole
 * numbers written with a fraction or an exponent (`5.0`, `1.7e9`: JSON
 * Schema integers, what PHP's json_encode writes for a float) are taken
 * where integers are expected, in gateway and CRM bodies alike; a fraction
 * is still refused. An integer beyond 64 bits in a field ingest does not
 * read is no reason to refuse a Meta notification or a gateway event. A
 * session id a gateway names, in an event or a heartbeat's sessions, is a
 * safe file name (wa/crm_command.h), or the event is refused naming it.
 * Meta's username customers (business-scoped user ids, BSUIDs) are valid
 * without a phone and keyed by the BSUID; a misshapen one is refused
 * naming its field. A click-to-WhatsApp ad's referral, a flow's answers and
 * a status's pricing type and model are kept. Meta's calls webhooks become
 * call events of their customer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/uuid.h"
#include "crm/crm_json.h"
#include "events/event_id.h"
#include "events/event_tree.h"
#include "events/normalize.h"
#include "gateway/gateway_json.h"
#include "kafka_path/dedupe.h"
#include "meta/meta_webhook.h"

static const char *corpus_root(void)
{
    const char *env = getenv("BLAZZ_FUZZ_CORPUS");
    return env && *env ? env : "tests/fuzz/corpus";
}

static uint8_t *read_file(const char *path, size_t *len)
{
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        fail_msg("cannot open %s", path);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    assert_non_null(buf);
    *len = fread(buf, 1, (size_t)n, f);
    fclose(f);
    return buf;
}

/* Meta's notification maps to one event per message and status. */
static void test_meta_maps_every_message_and_status(void **state)
{
    (void)state;
    char path[1024];
    size_t len;
    snprintf(path, sizeof path, "%s/fuzz_ingest_meta/all_types.json", corpus_root());
    uint8_t *data = read_file(path, &len);
    ing_events events = {0};
    assert_int_equal(ing_meta_parse((const char *)data, len, &events, NULL, NULL), BZ_OK);
    assert_int_equal(events.count, 9);
    assert_int_equal(events.items[0]->message->message_type, BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_VOICE);
    assert_int_equal(events.items[3]->message->message_type,
                     BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_INTERACTIVE);
    assert_string_equal(events.items[3]->message->body, "Yes");
    assert_string_equal(events.items[5]->message->reaction_emoji, "\xf0\x9f\x91\x8d");
    assert_true(events.items[6]->message->is_forwarded);
    assert_int_equal(events.items[7]->message->message_type, BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_UNKNOWN);
    assert_string_equal(events.items[8]->ack->client_reference, "ref-1");
    ing_events_free(&events);
    free(data);
}

/* Equal facts give equal derived event ids; a retry is a duplicate. */
static void test_derived_event_ids_are_stable(void **state)
{
    (void)state;
    const char *json = "{\"session_id\":\"s\",\"contact_phone\":\"6281234567890\","
                       "\"message_id\":\"m1\",\"timestamp\":1700000000}";
    Blazz__V1__InboundEvent *a, *b;
    assert_int_equal(ing_gateway_json_parse(json, strlen(json), 1, &a, NULL), BZ_OK);
    assert_int_equal(ing_gateway_json_parse(json, strlen(json), 2, &b, NULL), BZ_OK);
    assert_int_equal(ing_event_id_assign(a, NULL), BZ_OK);
    assert_int_equal(ing_event_id_assign(b, NULL), BZ_OK);
    assert_string_equal(a->envelope->event_id, b->envelope->event_id);
    assert_int_equal(a->envelope->event_id[14], '8');
    blazz__v1__inbound_event__free_unpacked(a, NULL);
    blazz__v1__inbound_event__free_unpacked(b, NULL);
}

/* The seeds' notifier payload (seed 002 DES-5, JSON.stringify of
 * messageData: nulls included, no message id) through parse, event id and
 * normalization; returns the event (caller frees). */
static Blazz__V1__InboundEvent *notifier_event(const char *phone, const char *body, int from_me)
{
    char json[1024];
    snprintf(json, sizeof json,
             "{\"session_id\":\"webjs-1\",\"workspace_id\":1,\"chat_type\":\"private\","
             "\"contact_phone\":\"%s\",\"contact_name\":\"Budi\",\"group_jid\":null,"
             "\"group_name\":null,\"sender_phone\":null,\"sender_name\":null,"
             "\"message_body\":\"%s\",\"message_type\":\"chat\",\"timestamp\":1700000000,"
             "\"has_media\":false%s}",
             phone, body, from_me ? ",\"from_me\":true" : "");
    Blazz__V1__InboundEvent *ev;
    bz_error err;
    char conversation[ING_CONVERSATION_MAX];
    ing_norm_opts opts = {.default_cc = "62", .now_ms = 1800000000000LL,
                                .max_future_ms = 0};
    assert_int_equal(ing_gateway_json_parse(json, strlen(json), 1, &ev, &err), BZ_OK);
    assert_int_equal(ing_event_id_assign(ev, &err), BZ_OK);
    if (ing_normalize(ev, &opts, conversation, &err) != BZ_OK)
        fail_msg("normalize: %s", err.msg);
    return ev;
}

/* A message without id gets one derived from its normalized facts: the
 * same whatever the phone's spelling, different for another body or
 * direction, marked as derived, unchanged by a second normalization. */
static void test_message_without_id_gets_a_stable_derived_id(void **state)
{
    (void)state;
    Blazz__V1__InboundEvent *a = notifier_event("6281234567890@c.us", "Halo", 0);
    Blazz__V1__InboundEvent *b = notifier_event("+6281234567890", "Halo", 0);
    Blazz__V1__InboundEvent *c = notifier_event("6281234567890@c.us", "Halo!", 0);
    Blazz__V1__InboundEvent *d = notifier_event("6281234567890@c.us", "Halo", 1);
    assert_int_equal(strncmp(a->message->wam_id, "derived-", 8), 0);
    assert_int_equal(strlen(a->message->wam_id), 8 + 32);
    assert_true(a->message->wam_id_derived);
    assert_string_equal(a->message->wam_id, b->message->wam_id);
    assert_string_not_equal(a->message->wam_id, c->message->wam_id);
    assert_string_not_equal(a->message->wam_id, d->message->wam_id);
    char first[64], conversation[ING_CONVERSATION_MAX];
    snprintf(first, sizeof first, "%s", a->message->wam_id);
    ing_norm_opts opts = {.default_cc = "62", .now_ms = 1800000000000LL};
    assert_int_equal(ing_normalize(a, &opts, conversation, NULL), BZ_OK);
    assert_string_equal(a->message->wam_id, first);
    /* A given id is kept and not marked. */
    const char *json = "{\"session_id\":\"s\",\"contact_phone\":\"6281234567890\","
                       "\"message_id\":\"m1\",\"timestamp\":1700000000}";
    Blazz__V1__InboundEvent *e;
    assert_int_equal(ing_gateway_json_parse(json, strlen(json), 1, &e, NULL), BZ_OK);
    assert_int_equal(ing_event_id_assign(e, NULL), BZ_OK);
    assert_int_equal(ing_normalize(e, &opts, conversation, NULL), BZ_OK);
    assert_string_equal(e->message->wam_id, "m1");
    assert_false(e->message->wam_id_derived);
    Blazz__V1__InboundEvent *all[] = {a, b, c, d, e};
    for (size_t i = 0; i < 5; i++)
        blazz__v1__inbound_event__free_unpacked(all[i], NULL);
}

/* Parse, assign the event id and normalize one gateway JSON body; the
 * normalizer's verdict (err says why when it refuses). */
static bz_status normalize_json(const char *json, Blazz__V1__InboundEvent **out, bz_error *err)
{
    ing_norm_opts opts = {.default_cc = "62", .now_ms = 1800000000000LL};
    char conversation[ING_CONVERSATION_MAX];
    int64_t received_ms = 1750000000000LL;
    assert_int_equal(ing_gateway_json_parse(json, strlen(json), received_ms, out, err), BZ_OK);
    assert_int_equal(ing_event_id_assign(*out, err), BZ_OK);
    return ing_normalize(*out, &opts, conversation, err);
}

/* A private chat's sender fields carry nothing the contact lacks and are
 * dropped, but only once they are valid: a sender no phone or person JID
 * can be is bad input wherever it stands (Schemathesis sent sender_phone
 * 6700 in a private chat and ingest answered 202). */
static void test_private_chat_sender_must_be_valid_to_be_dropped(void **state)
{
    (void)state;
    const char *senders[] = {"6700", "\"6700\"", "\"not a phone\"",
                             "\"120363012345678901@g.us\""};
    char json[512];
    for (size_t i = 0; i < sizeof senders / sizeof senders[0]; i++) {
        snprintf(json, sizeof json,
                 "{\"session_id\":\"s1\",\"contact_phone\":\"6281234567890\","
                 "\"sender_phone\":%s,\"message_body\":\"hi\",\"timestamp\":1700000000}",
                 senders[i]);
        Blazz__V1__InboundEvent *ev;
        bz_error err;
        if (normalize_json(json, &ev, &err) == BZ_OK)
            fail_msg("sender_phone %s accepted in a private chat", senders[i]);
        assert_string_equal(err.reason, "invalid_field");
        assert_non_null(strstr(err.msg, "sender_phone"));
        blazz__v1__inbound_event__free_unpacked(ev, NULL);
    }
    snprintf(json, sizeof json,
             "{\"session_id\":\"s1\",\"contact_phone\":\"6281234567890\","
             "\"sender_phone\":\"6289876543210@c.us\",\"message_body\":\"hi\","
             "\"timestamp\":1700000000}");
    Blazz__V1__InboundEvent *ev;
    assert_int_equal(normalize_json(json, &ev, NULL), BZ_OK);
    assert_true(ev->message->sender_phone == NULL || ev->message->sender_phone[0] == '\0');
    blazz__v1__inbound_event__free_unpacked(ev, NULL);
}

/* A gateway's event claiming to be Meta's is refused: only ingest's Meta
 * webhook reads Meta's events, and what those may do is not a gateway's,
 * such as a history run of unknown size (batch_total 0) for its session;
 * a gateway's own run must still say its size. */
static void test_a_gateway_claiming_meta_is_refused(void **state)
{
    (void)state;
    const char *claims[] = {
        "\"provider\":\"meta\",\"event\":\"history_sync\",\"sync_id\":\"r1\","
        "\"batch_index\":0,\"batch_total\":0,\"chats\":[]",
        "\"provider\":\"meta\",\"contact_phone\":\"6281234567890\",\"message_body\":\"hi\"",
        "\"event\":\"history_sync\",\"sync_id\":\"r1\",\"batch_index\":0,\"batch_total\":0,"
        "\"chats\":[]",
    };
    const char *refused_field[] = {"envelope.provider", "envelope.provider",
                                   "history_sync.batch_total"};
    char json[512];
    for (size_t i = 0; i < sizeof claims / sizeof claims[0]; i++) {
        snprintf(json, sizeof json, "{\"session_id\":\"s1\",\"timestamp\":1700000000,%s}",
                 claims[i]);
        Blazz__V1__InboundEvent *ev;
        bz_error err;
        if (normalize_json(json, &ev, &err) == BZ_OK)
            fail_msg("accepted from a gateway: %s", json);
        assert_string_equal(err.reason, "invalid_field");
        if (!strstr(err.msg, refused_field[i]))
            fail_msg("%s refused for another reason: %s", json, err.msg);
        blazz__v1__inbound_event__free_unpacked(ev, NULL);
    }
    /* nor may a gateway name a group's member by a BSUID, as only Meta does */
    const char *update = "{\"event\":\"group_update\",\"session_id\":\"s1\","
                         "\"group_jid\":\"120363012345678901@g.us\",\"action\":\"add\","
                         "\"participants\":[{\"phone\":\"6289876543210\"}],"
                         "\"timestamp\":1700000000}";
    Blazz__V1__InboundEvent *ev;
    bz_error err;
    char conversation[ING_CONVERSATION_MAX];
    ing_norm_opts opts = {.default_cc = "62", .now_ms = 1800000000000LL};
    assert_int_equal(ing_gateway_json_parse(update, strlen(update), 0, &ev, &err), BZ_OK);
    assert_int_equal(ing_event_id_assign(ev, &err), BZ_OK);
    assert_true(ing_str_set(&ev->group_update->participants[0]->bsuid, "US.13491208655302741918"));
    assert_int_equal(ing_normalize(ev, &opts, conversation, &err), BZ_ERR_INVALID);
    assert_non_null(strstr(err.msg, "participants[0].bsuid"));
    blazz__v1__inbound_event__free_unpacked(ev, NULL);
}

/* A group message's contact fields are dropped (the group is the chat),
 * but like a private chat's sender only once they name a person or a
 * group (Schemathesis: a group message with contact_phone "1" was
 * accepted 202 although docs/openapi.yaml refuses it). */
static void test_group_message_contact_must_be_valid_to_be_dropped(void **state)
{
    (void)state;
    const char *contacts[] = {"\"contact_phone\":\"1\"", "\"contact_phone\":6700",
                              "\"contact_jid\":\"not a jid\""};
    char json[512];
    for (size_t i = 0; i < sizeof contacts / sizeof contacts[0]; i++) {
        snprintf(json, sizeof json,
                 "{\"session_id\":\"s1\",\"group_jid\":\"120363012345678901@g.us\",%s,"
                 "\"sender_phone\":\"6289876543210\",\"message_body\":\"hi\"}",
                 contacts[i]);
        Blazz__V1__InboundEvent *ev;
        bz_error err;
        if (normalize_json(json, &ev, &err) == BZ_OK)
            fail_msg("%s accepted in a group message", contacts[i]);
        assert_string_equal(err.reason, "invalid_field");
        assert_non_null(strstr(err.msg, "contact_"));
        blazz__v1__inbound_event__free_unpacked(ev, NULL);
    }
    snprintf(json, sizeof json,
             "{\"session_id\":\"s1\",\"group_jid\":\"120363012345678901@g.us\","
             "\"contact_phone\":\"120363012345678901@g.us\","
             "\"sender_phone\":\"6289876543210\",\"message_body\":\"hi\"}");
    Blazz__V1__InboundEvent *ev;
    assert_int_equal(normalize_json(json, &ev, NULL), BZ_OK);
    assert_true(ev->message->contact_phone == NULL || ev->message->contact_phone[0] == '\0');
    blazz__v1__inbound_event__free_unpacked(ev, NULL);
}

/* An empty string is an absent field (docs/openapi.yaml, POST /v1/events):
 * an empty sender or group JID or message id is as if left out, an empty
 * required field is missing_field. */
static void test_empty_strings_are_absent_fields(void **state)
{
    (void)state;
    Blazz__V1__InboundEvent *ev;
    bz_error err;
    const char *private_chat =
        "{\"session_id\":\"s1\",\"event_id\":\"\",\"contact_phone\":13450900,"
        "\"sender_jid\":\"\",\"sender_phone\":\"\",\"group_jid\":\"\",\"message_id\":\"\","
        "\"message_body\":\"hi\"}";
    if (normalize_json(private_chat, &ev, &err) != BZ_OK)
        fail_msg("empty fields refused: %s", err.msg);
    assert_int_equal(ev->message->chat_type, BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_PRIVATE);
    assert_true(ev->message->wam_id_derived);
    assert_true(bz_uuid_is_valid(ev->envelope->event_id));
    blazz__v1__inbound_event__free_unpacked(ev, NULL);
    const char *no_contact =
        "{\"session_id\":\"s1\",\"contact_phone\":\"\",\"message_body\":\"hi\"}";
    assert_int_equal(normalize_json(no_contact, &ev, &err), BZ_ERR_INVALID);
    assert_string_equal(err.reason, "missing_field");
    blazz__v1__inbound_event__free_unpacked(ev, NULL);
}

/* A phone may come as a number, but not a negative one: its text would
 * start with '-', which the phone grammar drops as a separator
 * (Schemathesis: a group_update with actor_phone -10000000000000 was
 * accepted 202). */
static void test_a_negative_number_is_no_phone(void **state)
{
    (void)state;
    const char *events[] = {
        "{\"session_id\":\"s1\",\"event\":\"group_update\",\"group_jid\":\"39@g.us\","
        "\"action\":2,\"actor_phone\":-10000000000000}",
        "{\"session_id\":\"s1\",\"contact_phone\":-6281234567890,\"message_body\":\"hi\"}",
        "{\"session_id\":\"s1\",\"event\":\"receipt\",\"message_id\":\"m1\",\"status\":\"read\","
        "\"recipient_phone\":-6281234567890}"};
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++) {
        Blazz__V1__InboundEvent *ev = NULL;
        bz_error err;
        if (ing_gateway_json_parse(events[i], strlen(events[i]), 1750000000000LL, &ev, &err) ==
            BZ_OK) {
            blazz__v1__inbound_event__free_unpacked(ev, NULL);
            fail_msg("a negative phone accepted: %s", events[i]);
        }
        assert_string_equal(err.reason, "invalid_field");
        assert_non_null(strstr(err.msg, "phone"));
    }
    Blazz__V1__InboundEvent *ev;
    const char *positive =
        "{\"session_id\":\"s1\",\"contact_phone\":6281234567890,\"message_body\":\"hi\"}";
    assert_int_equal(normalize_json(positive, &ev, NULL), BZ_OK);
    assert_string_equal(ev->message->contact_phone, "+6281234567890");
    blazz__v1__inbound_event__free_unpacked(ev, NULL);
}

/* Issue 49: gateways keep a session's credentials in a file named by its
 * id, so an event naming a session outside the safe set is refused (400 at
 * the HTTP edge, a dead letter on the Kafka path) with the field named. */
static void test_session_ids_outside_the_safe_set_are_refused(void **state)
{
    (void)state;
    const struct {
        const char *json, *field;
    } bad[] = {
        {"{\"session_id\":\"../x\",\"contact_phone\":\"6281234567890\","
         "\"message_body\":\"hi\"}",
         "field envelope.session_id:"},
        {"{\"session_id\":\".x\",\"event\":\"session_status\",\"status\":\"connected\"}",
         "field envelope.session_id:"},
        {"{\"event\":\"instance_heartbeat\",\"instance_index\":0,\"boot_id\":\"b1\","
         "\"sessions\":[{\"session_id\":\"ok-1\",\"epoch\":1},"
         "{\"session_id\":\"a/b\",\"epoch\":1}]}",
         "field instance_heartbeat.sessions[1].session_id:"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        Blazz__V1__InboundEvent *ev;
        bz_error err;
        if (normalize_json(bad[i].json, &ev, &err) == BZ_OK)
            fail_msg("accepted: %s", bad[i].json);
        assert_string_equal(err.reason, "invalid_field");
        if (strncmp(err.msg, bad[i].field, strlen(bad[i].field)) != 0)
            fail_msg("%s: refused as \"%s\"", bad[i].json, err.msg);
        blazz__v1__inbound_event__free_unpacked(ev, NULL);
    }
    /* a heartbeat names no session of its own */
    const char *beat = "{\"event\":\"instance_heartbeat\",\"instance_index\":0,"
                       "\"boot_id\":\"b1\",\"sessions\":[{\"session_id\":\"wa-1.x_y\","
                       "\"epoch\":1}]}";
    Blazz__V1__InboundEvent *ev;
    bz_error err;
    if (normalize_json(beat, &ev, &err) != BZ_OK)
        fail_msg("heartbeat refused: %s", err.msg);
    blazz__v1__inbound_event__free_unpacked(ev, NULL);
}

/* Issue 55: the stores an instance reaches and the one a session's
 * credentials are in are names the sweep matches; one that is not a name
 * is refused, naming it. */
static void test_session_stores_are_names(void **state)
{
    (void)state;
    const char *beat = "{\"event\":\"instance_heartbeat\",\"instance_index\":1,"
                       "\"boot_id\":\"b1\",\"storages\":[\"shared\",\"efs:eu-1.a_b\"]}";
    Blazz__V1__InboundEvent *ev;
    bz_error err;
    if (normalize_json(beat, &ev, &err) != BZ_OK)
        fail_msg("heartbeat refused: %s", err.msg);
    assert_int_equal(ev->instance_heartbeat->n_storages, 2);
    assert_string_equal(ev->instance_heartbeat->storages[1], "efs:eu-1.a_b");
    blazz__v1__inbound_event__free_unpacked(ev, NULL);
    const char *status = "{\"session_id\":\"s1\",\"event\":\"session_status\","
                         "\"status\":\"connected\",\"session_storage\":\"shared\","
                         "\"session_storage_verified_at\":1700000000000}";
    if (normalize_json(status, &ev, &err) != BZ_OK)
        fail_msg("session status refused: %s", err.msg);
    assert_string_equal(ev->session_status->session_storage, "shared");
    assert_true(ev->session_status->session_storage_verified_at_ms == 1700000000000LL);
    blazz__v1__inbound_event__free_unpacked(ev, NULL);
    const struct {
        const char *json, *field;
    } bad[] = {
        {"{\"event\":\"instance_heartbeat\",\"instance_index\":0,\"boot_id\":\"b1\","
         "\"storages\":[\"shared\",\"a b\"]}",
         "field instance_heartbeat.storages[1]:"},
        {"{\"event\":\"instance_heartbeat\",\"instance_index\":0,\"boot_id\":\"b1\","
         "\"storages\":[\"\"]}",
         "field instance_heartbeat.storages[0]:"},
        {"{\"session_id\":\"s1\",\"event\":\"session_status\",\"status\":\"connected\","
         "\"session_storage\":\"/mnt/efs\"}",
         "field session_status.session_storage:"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (normalize_json(bad[i].json, &ev, &err) == BZ_OK)
            fail_msg("accepted: %s", bad[i].json);
        if (strncmp(err.msg, bad[i].field, strlen(bad[i].field)) != 0)
            fail_msg("%s: refused as \"%s\"", bad[i].json, err.msg);
        blazz__v1__inbound_event__free_unpacked(ev, NULL);
    }
}

/* The duplicate window forgets what an aborted transaction added. */
static void test_dedupe_window_commit_and_rollback(void **state)
{
    (void)state;
    ing_dedupe *d;
    assert_int_equal(ing_dedupe_new(4, 1000, &d, NULL), BZ_OK);
    const char *ids[] = {"00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002",
                         "00000000-0000-4000-8000-000000000003", "00000000-0000-4000-8000-000000000004",
                         "00000000-0000-4000-8000-000000000005"};
    ing_dedupe_add(d, ids[0], 0);
    ing_dedupe_add(d, ids[1], 0);
    ing_dedupe_commit(d);
    ing_dedupe_add(d, ids[2], 10);
    assert_true(ing_dedupe_seen(d, ids[2], 10));
    ing_dedupe_rollback(d);
    assert_false(ing_dedupe_seen(d, ids[2], 10));
    assert_true(ing_dedupe_seen(d, ids[0], 10));
    /* Full: the oldest committed entry gives way. */
    ing_dedupe_add(d, ids[2], 20);
    ing_dedupe_add(d, ids[3], 20);
    ing_dedupe_add(d, ids[4], 20);
    ing_dedupe_commit(d);
    assert_false(ing_dedupe_seen(d, ids[0], 20));
    assert_true(ing_dedupe_seen(d, ids[1], 20));
    assert_true(ing_dedupe_seen(d, ids[4], 20));
    /* Expiry after the window. */
    assert_false(ing_dedupe_seen(d, ids[1], 2000));
    assert_int_equal(ing_dedupe_size(d), 0);
    ing_dedupe_free(d);
}

static void test_whole_numbers_with_a_fraction_are_integers(void **state)
{
    (void)state;
    bz_error err;
    Blazz__V1__InboundEvent *ev = NULL;
    const char *event = "{\"session_id\":\"s1\",\"contact_phone\":\"+6281234567890\","
                        "\"timestamp\":1.7e9,\"workspace_id\":5.0,\"message_body\":\"hi\"}";
    if (ing_gateway_json_parse(event, strlen(event), 0, &ev, &err) != BZ_OK)
        fail_msg("gateway JSON refused: %s", err.msg);
    assert_int_equal(ev->message->timestamp_ms, 1700000000000LL);
    assert_int_equal(ev->envelope->workspace_id, 5);
    blazz__v1__inbound_event__free_unpacked(ev, NULL);

    const char *fraction = "{\"session_id\":\"s1\",\"contact_phone\":\"+6281234567890\","
                           "\"timestamp\":1700000000.5}";
    assert_int_equal(ing_gateway_json_parse(fraction, strlen(fraction), 0, &ev, &err),
                     BZ_ERR_INVALID);
    assert_string_equal(err.reason, "invalid_field");

    Blazz__V1__SendChatMessage *send = NULL;
    const char *crm = "{\"idempotency_key\":\"k1\",\"contact_id\":743307479.0,"
                      "\"user_id\":3.0,\"body\":\"hi\"}";
    if (ing_crm_json_send(crm, strlen(crm), NULL, "62", &send, &err) != BZ_OK)
        fail_msg("CRM body refused: %s", err.msg);
    assert_int_equal(send->contact_id, 743307479);
    assert_int_equal(send->user_id, 3);
    blazz__v1__send_chat_message__free_unpacked(send, NULL);

    const char *crm_fraction = "{\"idempotency_key\":\"k1\",\"contact_id\":7.5,\"body\":\"x\"}";
    assert_int_equal(ing_crm_json_send(crm_fraction, strlen(crm_fraction), NULL, "62", &send, &err),
                     BZ_ERR_INVALID);
    assert_string_equal(err.msg, "field contact_id: must be an integer");
}

/* The phone's own refusal travels up under the field's name, once: it was
 * formatted from itself and came out as "field contact_phone: field
 * contact_phone: igits, need at least 8)". */
static void test_a_bad_phone_is_refused_in_one_sentence_naming_its_field(void **state)
{
    (void)state;
    bz_error err;
    Blazz__V1__SendChatMessage *send = NULL;
    const char *crm = "{\"idempotency_key\":\"k1\",\"contact_phone\":\"+12345\",\"body\":\"x\"}";
    assert_int_equal(ing_crm_json_send(crm, strlen(crm), NULL, "62", &send, &err),
                     BZ_ERR_INVALID);
    assert_string_equal(err.reason, "invalid_field");
    assert_string_equal(err.msg,
                        "field contact_phone: phone: too short (5 digits, need at least 8)");
}

/* An interactive message's body: Meta's interactive object as the API
 * spells it, each nested member named by its path when refused. */
static void test_an_interactive_list_is_parsed_whole(void **state)
{
    (void)state;
    bz_error err;
    Blazz__V1__SendChatMessage *send = NULL;
    const char *list =
        "{\"idempotency_key\":\"k1\",\"contact_id\":7,\"message_type\":\"interactive\","
        "\"body\":\"Pilih\",\"interactive\":{\"type\":\"list\",\"button\":\"Menu\","
        "\"footer\":\"Toko\",\"sections\":[{\"title\":\"A\",\"rows\":[{\"id\":\"r1\","
        "\"title\":\"Satu\",\"description\":\"d\"},{\"id\":\"r2\",\"title\":\"Dua\"}]},"
        "{\"title\":\"B\",\"rows\":[{\"id\":\"r3\",\"title\":\"Tiga\"}]}]}}";
    if (ing_crm_json_send(list, strlen(list), NULL, "62", &send, &err) != BZ_OK)
        fail_msg("list refused: %s", err.msg);
    assert_int_equal(send->message_type, BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_INTERACTIVE);
    const Blazz__V1__InteractiveMessage *in = send->interactive;
    assert_int_equal(in->kind, BLAZZ__V1__INTERACTIVE_KIND__INTERACTIVE_KIND_LIST);
    assert_string_equal(in->button, "Menu");
    assert_string_equal(in->footer, "Toko");
    assert_int_equal(in->n_sections, 2);
    assert_int_equal(in->sections[0]->n_rows, 2);
    assert_string_equal(in->sections[0]->rows[0]->description, "d");
    assert_string_equal(in->sections[0]->rows[1]->title, "Dua");
    assert_string_equal(in->sections[1]->rows[0]->id, "r3");
    blazz__v1__send_chat_message__free_unpacked(send, NULL);

    const char *flow =
        "{\"idempotency_key\":\"k2\",\"contact_id\":7,\"message_type\":\"interactive\","
        "\"body\":\"Isi\",\"interactive\":{\"type\":\"flow\",\"flow_name\":\"pesanan\","
        "\"flow_cta\":\"Pesan\",\"flow_screen\":\"ORDER\",\"flow_data\":{\"n\":1},"
        "\"flow_mode\":\"draft\"}}";
    if (ing_crm_json_send(flow, strlen(flow), NULL, "62", &send, &err) != BZ_OK)
        fail_msg("flow refused: %s", err.msg);
    in = send->interactive;
    assert_int_equal(in->kind, BLAZZ__V1__INTERACTIVE_KIND__INTERACTIVE_KIND_FLOW);
    assert_string_equal(in->flow_name, "pesanan");
    assert_string_equal(in->flow_screen, "ORDER");
    assert_string_equal(in->flow_data_json, "{\"n\":1}");
    assert_true(in->flow_draft);
    blazz__v1__send_chat_message__free_unpacked(send, NULL);

    static const struct {
        const char *interactive, *msg;
    } bad[] = {
        {"{\"type\":\"carousel\"}",
         "field interactive.type: list, cta_url, location_request or flow"},
        {"{\"type\":\"flow\",\"flow_mode\":\"live\"}",
         "field interactive.flow_mode: draft or published"},
        {"{\"type\":\"flow\",\"flow_data\":[1]}", "field interactive.flow_data: must be an object"},
        {"{\"type\":\"list\",\"sections\":[3]}", "field interactive.sections[0]: must be an object"},
        {"{\"type\":\"list\",\"sections\":[{\"rows\":[{\"id\":\"r\",\"tite\":\"x\"}]}]}",
         "field interactive.sections[0].rows[0].tite: unknown field"},
        {"{\"type\":\"cta_url\",\"url\":5}", "field interactive.url: must be a string"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char body[512];
        snprintf(body, sizeof body,
                 "{\"idempotency_key\":\"k1\",\"contact_id\":7,\"message_type\":"
                 "\"interactive\",\"body\":\"x\",\"interactive\":%s}",
                 bad[i].interactive);
        send = NULL;
        assert_int_equal(ing_crm_json_send(body, strlen(body), NULL, "62", &send, &err),
                         BZ_ERR_INVALID);
        assert_null(send);
        assert_string_equal(err.msg, bad[i].msg);
    }
}

/* A user JID is sent to as its phone, and kept as given so that a contact
 * not found is named by the field the request used (issue 54). */
static void test_a_user_jid_gives_the_phone_and_stays_named(void **state)
{
    (void)state;
    bz_error err;
    Blazz__V1__SendChatMessage *send = NULL;
    const char *crm = "{\"idempotency_key\":\"k1\",\"contact_jid\":"
                      "\"6281234567890@c.us\",\"body\":\"x\"}";
    if (ing_crm_json_send(crm, strlen(crm), NULL, "62", &send, &err) != BZ_OK)
        fail_msg("CRM body refused: %s", err.msg);
    assert_string_equal(send->contact_phone, "+6281234567890");
    assert_string_equal(send->contact_jid, "6281234567890@s.whatsapp.net");
    blazz__v1__send_chat_message__free_unpacked(send, NULL);
}

static void test_integers_beyond_64_bits_are_no_reason_to_refuse(void **state)
{
    (void)state;
    bz_error err;
    const char *meta =
        "{\"object\":\"whatsapp_business_account\",\"extra\":-468494037962740949233696768,"
        "\"entry\":[{\"changes\":[{\"field\":\"messages\",\"value\":{\"metadata\":{\"phone_number_id\":\"1065\"},"
        "\"statuses\":[{\"id\":\"wamid.1\",\"status\":\"failed\",\"timestamp\":1750263773,"
        "\"recipient_id\":\"16505551234\",\"errors\":[{\"code\":131047,\"title\":\"t\"}]}]}}]}]}";
    ing_events events = {0};
    if (ing_meta_parse(meta, strlen(meta), &events, NULL, &err) != BZ_OK)
        fail_msg("Meta notification refused: %s", err.msg);
    assert_int_equal(events.count, 1);
    assert_int_equal(events.items[0]->ack->timestamp_ms, 1750263773000LL);
    assert_string_equal(events.items[0]->ack->error_code, "131047");
    ing_events_free(&events);

    Blazz__V1__InboundEvent *ev = NULL;
    const char *event = "{\"session_id\":\"s1\",\"contact_phone\":\"+6281234567890\","
                        "\"timestamp\":1700000000,\"gateway_extra\":99999999999999999999999}";
    if (ing_gateway_json_parse(event, strlen(event), 0, &ev, &err) != BZ_OK)
        fail_msg("gateway JSON refused: %s", err.msg);
    assert_int_equal(ev->message->timestamp_ms, 1700000000000LL);
    blazz__v1__inbound_event__free_unpacked(ev, NULL);
}

/* A Meta notification parsed and each of its events normalized; the
 * first failure's status, error and the conversations of those before. */
static bz_status meta_normalized(const char *json, ing_events *events,
                                 char conversations[][ING_CONVERSATION_MAX], bz_error *err)
{
    ing_norm_opts opts = {.default_cc = "62", .now_ms = 1800000000000LL, .meta_edge = 1};
    bz_status st = ing_meta_parse(json, strlen(json), events, NULL, err);
    for (size_t i = 0; st == BZ_OK && i < events->count; i++) {
        st = ing_event_id_assign(events->items[i], err);
        if (st == BZ_OK)
            st = ing_normalize(events->items[i], &opts, conversations[i], err);
    }
    return st;
}

/* json normalized into events (want of them, their conversations into
 * conv), or the test fails naming the refusal. */
static void meta_accepted(const char *json, ing_events *events,
                          char conv[][ING_CONVERSATION_MAX], size_t want)
{
    bz_error err;
    if (meta_normalized(json, events, conv, &err) != BZ_OK)
        fail_msg("refused: %s", err.msg);
    assert_int_equal(events->count, want);
}

/* json parsed into events, the changes no event is made of into
 * unhandled, or the test fails naming the refusal. */
static void meta_parsed(const char *json, ing_events *events, ing_meta_unhandled *unhandled)
{
    bz_error err;
    if (ing_meta_parse(json, strlen(json), events, unhandled, &err) != BZ_OK)
        fail_msg("refused: %s", err.msg);
}

/* A notification of the Meta fuzz corpus as text (heap). */
static char *meta_corpus_text(const char *name)
{
    char path[1024];
    size_t len;
    snprintf(path, sizeof path, "%s/fuzz_ingest_meta/%s", corpus_root(), name);
    uint8_t *data = read_file(path, &len);
    char *json = calloc(len + 1, 1);
    assert_non_null(json);
    memcpy(json, data, len);
    free(data);
    return json;
}

/* Meta's documented payloads for a username user (docs: business-scoped
 * user ids): contacts[].user_id and profile.username without wa_id,
 * messages[].from_user_id without from, statuses[].recipient_user_id
 * without recipient_id. The message and the status are valid, keyed by
 * the BSUID, nothing stands for the withheld phone. */
static void test_meta_username_user_is_keyed_by_bsuid(void **state)
{
    (void)state;
    char *json = meta_corpus_text("bsuid_username.json");
    ing_events events = {0};
    char conv[2][ING_CONVERSATION_MAX];
    meta_accepted(json, &events, conv, 2);
    const Blazz__V1__InboundMessage *m = events.items[0]->message;
    assert_string_equal(m->contact_phone, "");
    assert_string_equal(m->contact_bsuid, "US.13491208655302741918");
    assert_string_equal(m->contact_parent_bsuid, "US.ENT.11815799212886844830");
    assert_string_equal(m->contact_username, "@sheena");
    assert_string_equal(m->contact_name, "Sheena Nelson");
    assert_string_equal(conv[0], "US.13491208655302741918");
    const Blazz__V1__MessageAck *a = events.items[1]->ack;
    assert_string_equal(a->recipient_phone, "");
    assert_string_equal(a->recipient_bsuid, "US.13491208655302741918");
    assert_string_equal(a->recipient_parent_bsuid, "US.ENT.11815799212886844830");
    assert_string_equal(conv[1], "US.13491208655302741918");
    ing_events_free(&events);
    free(json);
}

/* Changes are read by their field's name: Meta's owner echo
 * (smb_message_echoes, its message_echoes as documented) is the owner's
 * outbound message to the customer `to`; a messages array under that
 * field, an echo naming no customer, a field nobody knows and a change
 * naming no field are handed back whole (the echo beside the misshapen
 * one still mapped); the messages field beside them is mapped. */
static void test_meta_changes_are_dispatched_by_field(void **state)
{
    (void)state;
    const char *json =
        "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"102290129340398\","
        "\"changes\":[{\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{"
        "\"phone_number_id\":\"106540352242922\"},\"message_echoes\":[{\"from\":\"15550783881\","
        "\"to\":\"16505551234\",\"id\":\"wamid.E1\",\"timestamp\":\"1739321024\",\"type\":\"text\","
        "\"text\":{\"body\":\"hi\"}}]},\"field\":\"smb_message_echoes\"},"
        "{\"value\":{\"metadata\":{\"phone_number_id\":\"106540352242922\"},\"message_echoes\":["
        "{\"from\":\"15550783881\",\"id\":\"wamid.E3\",\"timestamp\":\"1739321024\",\"type\":"
        "\"text\",\"text\":{\"body\":\"to nobody\"}},{\"from\":\"15550783881\",\"to\":"
        "\"+16505551234\",\"id\":\"wamid.E4\",\"timestamp\":\"1739321024\",\"type\":\"image\","
        "\"image\":{\"id\":\"1479537139650973\",\"mime_type\":\"image/jpeg\"}}]},"
        "\"field\":\"smb_message_echoes\"},"
        "{\"value\":{\"metadata\":{\"phone_number_id\":\"106540352242922\"},\"messages\":[{"
        "\"from\":\"15550783881\",\"id\":\"wamid.E2\",\"timestamp\":\"1739321025\",\"type\":\"text\","
        "\"text\":{\"body\":\"hi\"}}]},\"field\":\"smb_message_echoes\"},"
        "{\"value\":{\"metadata\":{\"phone_number_id\":\"106540352242922\"},\"messages\":[{"
        "\"from\":\"16505551234\",\"id\":\"wamid.M1\",\"timestamp\":\"1739321026\",\"type\":\"text\","
        "\"text\":{\"body\":\"hello\"}}]},\"field\":\"messages\"}]},"
        "{\"id\":7,\"changes\":[{\"value\":{\"x\":1},\"field\":\"some_future_field\"},"
        "{\"value\":{\"messages\":[]}}]}]}";
    ing_events events = {0};
    ing_meta_unhandled unhandled = {0};
    meta_parsed(json, &events, &unhandled);
    assert_int_equal(events.count, 3);
    const Blazz__V1__InboundMessage *echo = events.items[0]->message;
    assert_string_equal(echo->wam_id, "wamid.E1");
    assert_true(echo->from_me);
    assert_string_equal(echo->contact_phone, "16505551234");
    assert_string_equal(echo->body, "hi");
    assert_string_equal(events.items[0]->envelope->session_id, "106540352242922");
    assert_int_equal(echo->timestamp_ms, 1739321024000LL);
    const Blazz__V1__InboundMessage *image = events.items[1]->message;
    assert_string_equal(image->wam_id, "wamid.E4");
    assert_true(image->from_me);
    assert_string_equal(image->contact_phone, "+16505551234");
    assert_string_equal(image->media->media_id, "1479537139650973");
    assert_string_equal(events.items[2]->message->wam_id, "wamid.M1");
    assert_false(events.items[2]->message->from_me);
    assert_int_equal(unhandled.count, 4);
    const char *fields[] = {"smb_message_echoes", "smb_message_echoes", "some_future_field", ""};
    const char *wabas[] = {"102290129340398", "102290129340398", "7", "7"};
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(unhandled.items[i].field, fields[i]);
        assert_string_equal(unhandled.items[i].waba_id, wabas[i]);
    }
    assert_non_null(strstr(unhandled.items[0].change, "wamid.E3"));
    assert_non_null(strstr(unhandled.items[1].change, "wamid.E2"));
    assert_string_equal(ing_meta_field_label("smb_message_echoes"), "smb_message_echoes");
    assert_string_equal(ing_meta_field_label("some_future_field"), "other");
    assert_string_equal(ing_meta_field_label(""), "other");
    ing_events_free(&events);
    ing_meta_unhandled_free(&unhandled);
}

/* Meta's volume tier updates (account_update's sample), two bands in one
 * entry: each its own tier and event id (they differ in the band alone);
 * the same notification again, the same ids; an account_update of another
 * event carries no tier whatever else it holds. */
static void test_meta_volume_tiers_are_events_of_their_own(void **state)
{
    (void)state;
    const char *json =
        "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"216141188246170\","
        "\"time\":1743451903,\"changes\":[{\"field\":\"account_update\",\"value\":{\"event\":"
        "\"VOLUME_BASED_PRICING_TIER_UPDATE\",\"volume_tier_info\":{\"effective_month\":"
        "\"2025-11\",\"pricing_category\":\"UTILITY\",\"region\":\"INDIA\",\"tier\":"
        "\"25000001:50000000\",\"tier_update_time\":1743451903}}},{\"field\":\"account_update\","
        "\"value\":{\"event\":\"VOLUME_BASED_PRICING_TIER_UPDATE\",\"volume_tier_info\":{"
        "\"effective_month\":\"2025-11\",\"pricing_category\":\"AUTHENTICATION\",\"region\":"
        "\"INDIA\",\"tier\":\"25000001:50000000\",\"tier_update_time\":1743451903}}},"
        "{\"field\":\"account_update\",\"value\":{\"event\":\"ACCOUNT_VIOLATION\","
        "\"violation_info\":{\"violation_type\":\"SCAM\"},\"volume_tier_info\":{}}}]}]}";
    ing_events first = {0}, again = {0};
    meta_parsed(json, &first, NULL);
    meta_parsed(json, &again, NULL);
    assert_int_equal(first.count, 3);
    for (size_t i = 0; i < first.count; i++) {
        assert_int_equal(ing_event_id_assign(first.items[i], NULL), BZ_OK);
        assert_int_equal(ing_event_id_assign(again.items[i], NULL), BZ_OK);
        assert_string_equal(first.items[i]->envelope->event_id,
                            again.items[i]->envelope->event_id);
    }
    const Blazz__V1__VolumeTier *t = first.items[1]->business_notice->account->volume_tier;
    assert_non_null(t);
    assert_string_equal(t->pricing_category, "AUTHENTICATION");
    assert_string_equal(t->tier, "25000001:50000000");
    assert_int_equal(t->tier_updated_at_ms, 1743451903000LL);
    assert_string_not_equal(first.items[0]->envelope->event_id,
                            first.items[1]->envelope->event_id);
    assert_null(first.items[2]->business_notice->account->volume_tier);
    assert_string_equal(first.items[2]->business_notice->account->violation, "SCAM");
    ing_events_free(&first);
    ing_events_free(&again);
}

/* A messages change in a shape Meta does not document for it, or Meta's
 * value-level errors[] (its reference: system, app or account errors,
 * beside no message), is handed back whole for its dead letter, never
 * answered 200 and dropped; the documented one beside them is mapped. */
static void test_meta_messages_change_of_another_shape_is_kept(void **state)
{
    (void)state;
    const char *json =
        "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"102290129340398\","
        "\"changes\":[{\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\","
        "\"metadata\":{\"display_phone_number\":\"15550783881\",\"phone_number_id\":"
        "\"106540352242922\"},\"errors\":[{\"code\":131000,\"title\":\"Something went wrong\","
        "\"message\":\"Something went wrong\",\"error_data\":{\"details\":\"Message failed to "
        "send because of an unknown error.\"}}]}},"
        "{\"field\":\"messages\",\"value\":{\"metadata\":{"
        "\"phone_number_id\":\"106540352242922\"}}},"
        "{\"field\":\"messages\",\"value\":{\"metadata\":{\"phone_number_id\":\"106540352242922\"},"
        "\"messages\":[\"wamid.X\"]}},"
        "{\"field\":\"messages\",\"value\":{\"metadata\":{\"phone_number_id\":\"106540352242922\"},"
        "\"statuses\":{\"id\":\"wamid.Y\"}}},"
        "{\"field\":\"messages\",\"value\":{\"metadata\":{\"phone_number_id\":\"106540352242922\"},"
        "\"messages\":[{\"from\":\"16505551234\",\"id\":\"wamid.M1\",\"timestamp\":\"1739321026\","
        "\"type\":\"text\",\"text\":{\"body\":\"hello\"}}]}}]}]}";
    ing_events events = {0};
    ing_meta_unhandled unhandled = {0};
    meta_parsed(json, &events, &unhandled);
    assert_int_equal(events.count, 1);
    assert_string_equal(events.items[0]->message->wam_id, "wamid.M1");
    assert_int_equal(unhandled.count, 4);
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(unhandled.items[i].field, "messages");
    assert_non_null(strstr(unhandled.items[0].change, "131000"));
    assert_non_null(strstr(unhandled.items[2].change, "wamid.X"));
    assert_non_null(strstr(unhandled.items[3].change, "wamid.Y"));
    ing_events_free(&events);
    ing_meta_unhandled_free(&unhandled);
}

/* With the phone beside the BSUID the phone stays the key; a misshapen
 * BSUID is refused naming its field; neither a phone nor a BSUID is still
 * a missing field, naming both. */
static void test_meta_bsuid_shape_and_presence(void **state)
{
    (void)state;
    static const char head[] =
        "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"field\":"
        "\"messages\",\"value\":{\"metadata\":{\"phone_number_id\":\"1065\"},";
    struct {
        const char *value, *want_conv, *want_err;
    } cases[] = {
        {"\"contacts\":[{\"wa_id\":\"16505551234\",\"user_id\":\"US.1349\"}],\"messages\":[{"
         "\"from\":\"16505551234\",\"from_user_id\":\"US.1349\",\"id\":\"wamid.1\","
         "\"timestamp\":\"1750263773\",\"type\":\"text\",\"text\":{\"body\":\"x\"}}]",
         "+16505551234", NULL},
        {"\"messages\":[{\"from_user_id\":\"US-1349\",\"id\":\"wamid.1\",\"timestamp\":"
         "\"1750263773\",\"type\":\"text\",\"text\":{\"body\":\"x\"}}]",
         NULL, "field message.contact_bsuid: not a BSUID"},
        {"\"messages\":[{\"from_user_id\":\"US.1349\",\"from_parent_user_id\":\"US.1349\","
         "\"id\":\"wamid.1\",\"timestamp\":\"1750263773\",\"type\":\"text\"}]",
         NULL, "field message.contact_parent_bsuid: not a parent BSUID"},
        {"\"messages\":[{\"id\":\"wamid.1\",\"timestamp\":\"1750263773\",\"type\":\"text\"}]",
         NULL, "field message.contact_phone: required, or message.contact_bsuid"},
        {"\"statuses\":[{\"id\":\"wamid.1\",\"status\":\"read\",\"timestamp\":\"1750263773\","
         "\"recipient_user_id\":\"US.\"}]",
         NULL, "field receipt.recipient_bsuid: not a BSUID"},
        {"\"statuses\":[{\"id\":\"wamid.1\",\"status\":\"read\",\"timestamp\":\"1750263773\"}]",
         NULL, "field receipt.recipient_phone: required, or receipt.recipient_bsuid"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char json[1024];
        snprintf(json, sizeof json, "%s%s}}]}]}", head, cases[i].value);
        ing_events events = {0};
        char conv[1][ING_CONVERSATION_MAX];
        bz_error err = {0};
        bz_status st = meta_normalized(json, &events, conv, &err);
        if (cases[i].want_conv) {
            if (st != BZ_OK)
                fail_msg("case %zu refused: %s", i, err.msg);
            assert_string_equal(conv[0], cases[i].want_conv);
            assert_string_equal(events.items[0]->message->contact_bsuid, "US.1349");
        } else {
            assert_int_equal(st, BZ_ERR_INVALID);
            if (strncmp(err.msg, cases[i].want_err, strlen(cases[i].want_err)) != 0)
                fail_msg("case %zu: got \"%s\", want \"%s...\"", i, err.msg, cases[i].want_err);
        }
        ing_events_free(&events);
    }
}

#define META_GROUP_ID "Y2FwaV9ncm91cDoxNzA1NTU1MDEzOToxMjAzNjM0MDQ2OTQyMzM4MjAZD"

/* A gateway's json, refused naming field: a Meta group id is Meta's to
 * give. */
static void gateway_refused_naming(const char *json, const char *field)
{
    Blazz__V1__InboundEvent *ev = NULL;
    bz_error err;
    if (normalize_json(json, &ev, &err) == BZ_OK)
        fail_msg("accepted from a gateway: %s", json);
    assert_non_null(strstr(err.msg, field));
    blazz__v1__inbound_event__free_unpacked(ev, NULL);
}

/* Meta's group messages webhook (its reference's sample, and the same
 * from a username participant): each message is the group's, keyed by
 * Meta's group_id as it came, its author the participant by phone or by
 * BSUID alone, no contact named. A group message naming no author is
 * refused naming both fields; a gateway cannot name a group by a Meta id. */
static void test_meta_group_message_is_the_groups(void **state)
{
    (void)state;
    char *json = meta_corpus_text("group_messages.json");
    ing_events events = {0};
    char conv[2][ING_CONVERSATION_MAX];
    meta_accepted(json, &events, conv, 2);
    for (size_t i = 0; i < 2; i++) {
        const Blazz__V1__InboundMessage *m = events.items[i]->message;
        assert_int_equal(m->chat_type, BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_GROUP);
        assert_string_equal(m->group_jid, META_GROUP_ID);
        assert_string_equal(conv[i], META_GROUP_ID);
        assert_string_equal(m->contact_phone, "");
        assert_string_equal(m->contact_bsuid, "");
        assert_false(m->from_me);
    }
    const Blazz__V1__InboundMessage *by_phone = events.items[0]->message;
    assert_string_equal(by_phone->sender_phone, "+16505551234");
    assert_string_equal(by_phone->sender_bsuid, "");
    assert_string_equal(by_phone->sender_name, "Sheena Nelson");
    assert_string_equal(by_phone->body, "What do you all think about this?");
    const Blazz__V1__InboundMessage *by_bsuid = events.items[1]->message;
    assert_string_equal(by_bsuid->sender_phone, "");
    assert_string_equal(by_bsuid->sender_bsuid, "US.13491208655302741918");
    assert_string_equal(by_bsuid->sender_name, "Budi");
    ing_events_free(&events);
    free(json);

    const char *anonymous =
        "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"field\":"
        "\"messages\",\"value\":{\"metadata\":{\"phone_number_id\":\"1065\"},\"messages\":[{"
        "\"group_id\":\"" META_GROUP_ID "\",\"id\":\"wamid.1\",\"timestamp\":\"1750263773\","
        "\"type\":\"text\",\"text\":{\"body\":\"x\"}}]}}]}]}";
    ing_events none = {0};
    bz_error err;
    assert_int_equal(meta_normalized(anonymous, &none, conv, &err), BZ_ERR_INVALID);
    assert_string_equal(err.msg, "field message.sender_phone: required, or message.sender_bsuid");
    ing_events_free(&none);

    gateway_refused_naming("{\"session_id\":\"s1\",\"group_jid\":\"" META_GROUP_ID "\","
                           "\"sender_phone\":\"6289876543210\",\"message_body\":\"hi\"}",
                           "group_jid");
}

/* Meta's group messaging page's status webhooks of a message sent to a
 * group (sent, then failed with its error): recipient_type group and the
 * group's id as recipient_id, which is the group's key, no phone; the
 * conversation is the group's, as its messages' is. A gateway's receipt
 * cannot name a group by a Meta id. */
static void test_meta_group_statuses_name_the_group(void **state)
{
    (void)state;
    char *json = meta_corpus_text("group_statuses.json");
    ing_events events = {0};
    char conv[2][ING_CONVERSATION_MAX];
    meta_accepted(json, &events, conv, 2);
    for (size_t i = 0; i < 2; i++) {
        const Blazz__V1__MessageAck *a = events.items[i]->ack;
        assert_string_equal(a->recipient_jid, META_GROUP_ID);
        assert_string_equal(a->recipient_phone, "");
        assert_string_equal(conv[i], META_GROUP_ID);
    }
    assert_int_equal(events.items[0]->ack->status,
                     BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_SENT);
    assert_int_equal(events.items[1]->ack->status,
                     BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_FAILED);
    assert_string_equal(events.items[1]->ack->error_code, "131026");
    ing_events_free(&events);
    free(json);

    gateway_refused_naming("{\"session_id\":\"s1\",\"event\":\"receipt\",\"message_id\":"
                           "\"m1\",\"status\":\"sent\",\"recipient_jid\":\"" META_GROUP_ID "\"}",
                           "receipt.recipient_jid");
}

/* Meta's documented calls webhooks (Calling API, user- and
 * business-initiated calls), two entries of several changes: a customer's
 * call connects (its SDP session, an unknown field here, ignored) and
 * terminates COMPLETED with its times and length; a call the business
 * placed connects, rings (a statuses item of type call) and fails with
 * Meta's error. The customer is the caller, or the callee of the
 * business's call, by phone (E.164) and BSUID, each keyed by it; an item
 * of an event nobody knows is handed back whole. */
static void test_meta_calls_are_call_events_of_their_customer(void **state)
{
    (void)state;
    char *json = meta_corpus_text("calls.json");
    ing_events events = {0};
    char conv[5][ING_CONVERSATION_MAX];
    meta_accepted(json, &events, conv, 5);
    const char *inbound = "wacid.ABGGFjFVU2AfAgo6V-Hc5eCgK5Gh";
    const char *outbound = "wacid.HBgLMTIxODU1NTI4MjgVAgARGCAyODRQIAFRoA";
    const char *ids[] = {inbound, inbound, outbound, outbound, outbound};
    const char *kinds[] = {"connect", "terminate", "connect", "status", "terminate"};
    const char *statuses[] = {"", "COMPLETED", "", "RINGING", "FAILED"};
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(events.items[i]->payload_case, BLAZZ__V1__INBOUND_EVENT__PAYLOAD_CALL);
        const Blazz__V1__CallEvent *c = events.items[i]->call;
        assert_string_equal(c->call_id, ids[i]);
        assert_string_equal(c->event, kinds[i]);
        assert_string_equal(c->status, statuses[i]);
        assert_string_equal(events.items[i]->envelope->session_id, "436666719526789");
        assert_string_equal(conv[i], i < 2 ? "+16315553601" : "+12185552828");
        assert_int_equal(c->direction, i < 2 ? BLAZZ__V1__DIRECTION__DIRECTION_INBOUND
                                             : BLAZZ__V1__DIRECTION__DIRECTION_OUTBOUND);
    }
    const Blazz__V1__CallEvent *connect = events.items[0]->call;
    assert_string_equal(connect->contact_phone, "+16315553601");
    assert_string_equal(connect->contact_bsuid, "US.13491208655302741918");
    assert_string_equal(connect->contact_name, "Sheena Nelson");
    assert_int_equal(connect->timestamp_ms, 1671644824000LL);
    const Blazz__V1__CallEvent *ended = events.items[1]->call;
    assert_int_equal(ended->started_at_ms, 1671644826000LL);
    assert_int_equal(ended->ended_at_ms, 1671644944000LL);
    assert_int_equal(ended->duration_s, 118);
    assert_string_equal(events.items[2]->call->client_reference, "TRx334DUDFTI4Mj");
    assert_string_equal(events.items[3]->call->contact_phone, "+12185552828");
    const Blazz__V1__CallEvent *failed = events.items[4]->call;
    assert_string_equal(failed->contact_phone, "+12185552828");
    assert_string_equal(failed->error_code, "138006");
    assert_non_null(strstr(failed->error_message, "No approved call permission"));
    assert_int_equal(failed->duration_s, 0);
    ing_events_free(&events);
    free(json);

    const char *odd =
        "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"366634483210360\","
        "\"changes\":[{\"field\":\"calls\",\"value\":{\"metadata\":{\"phone_number_id\":"
        "\"436666719526789\"},\"calls\":[{\"id\":\"wacid.X\",\"from\":\"16315553601\","
        "\"event\":\"hold\",\"timestamp\":\"1671644824\"}]}}]}]}";
    ing_events none = {0};
    ing_meta_unhandled unhandled = {0};
    bz_error err;
    if (ing_meta_parse(odd, strlen(odd), &none, &unhandled, &err) != BZ_OK)
        fail_msg("refused: %s", err.msg);
    assert_int_equal(none.count, 0);
    assert_int_equal(unhandled.count, 1);
    assert_string_equal(unhandled.items[0].field, "calls");
    assert_non_null(strstr(unhandled.items[0].change, "hold"));
    assert_string_equal(ing_meta_field_label("calls"), "calls");
    ing_events_free(&none);
    ing_meta_unhandled_free(&unhandled);
}

/* Meta's documented samples (webhook reference, messages/text and
 * messages/status; Flows, "Receiving Flow Response"): a click-to-WhatsApp
 * ad's referral is kept whole as JSON text, welcome_message included; a
 * flow's response_json as Meta wrote it; a status's pricing type and
 * model beside its category; a pricing model in lower case is refused
 * naming its field. */
static void test_meta_keeps_referral_flow_answers_and_pricing(void **state)
{
    (void)state;
    const char *json =
        "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1029\",\"changes\":[{"
        "\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{"
        "\"phone_number_id\":\"1065\"},\"contacts\":[{\"profile\":{\"name\":\"Sheena\"},"
        "\"wa_id\":\"16505551234\"}],\"messages\":[{\"from\":\"16505551234\",\"id\":\"wamid.R1\","
        "\"timestamp\":\"1750263773\",\"type\":\"text\",\"text\":{\"body\":\"Hi\"},\"referral\":{"
        "\"source_url\":\"https://fb.me/3cr4Wqqkv\",\"source_id\":\"120226305854810726\","
        "\"source_type\":\"ad\",\"body\":\"Chat with us\",\"headline\":\"Plants\",\"media_type\":"
        "\"image\",\"image_url\":\"https://scontent.xx.fbcdn.net/v/ad.jpg\",\"ctwa_clid\":"
        "\"Aff-n8ZTODiE79d22\",\"welcome_message\":{\"text\":\"Hi there!\"}}},"
        "{\"from\":\"16505551234\",\"id\":\"wamid.F1\",\"timestamp\":\"1750263774\",\"type\":"
        "\"interactive\",\"interactive\":{\"type\":\"nfm_reply\",\"nfm_reply\":{\"name\":\"flow\","
        "\"body\":\"Sent\",\"response_json\":\"{\\\"flow_token\\\": \\\"T1\\\", \\\"size\\\": "
        "\\\"M\\\"}\"}}}],\"statuses\":[{\"id\":\"wamid.S1\",\"status\":\"delivered\","
        "\"timestamp\":\"1750263775\",\"recipient_id\":\"16505551234\",\"pricing\":{\"billable\":"
        "false,\"pricing_model\":\"PMP\",\"category\":\"service\",\"type\":\"free_entry_point\"}}"
        "]}}]}]}";
    ing_events events = {0};
    char conv[3][ING_CONVERSATION_MAX];
    meta_accepted(json, &events, conv, 3);
    const Blazz__V1__InboundMessage *ad = events.items[0]->message;
    assert_non_null(strstr(ad->referral_json, "\"ctwa_clid\":\"Aff-n8ZTODiE79d22\""));
    assert_non_null(strstr(ad->referral_json, "\"welcome_message\":{\"text\":\"Hi there!\"}"));
    assert_non_null(strstr(ad->referral_json, "\"source_type\":\"ad\""));
    const Blazz__V1__InboundMessage *flow = events.items[1]->message;
    assert_string_equal(flow->referral_json, "");
    assert_string_equal(flow->interactive_reply->type, "nfm_reply");
    assert_string_equal(flow->interactive_reply->response_json,
                        "{\"flow_token\": \"T1\", \"size\": \"M\"}");
    assert_string_equal(flow->body, "Sent");
    const Blazz__V1__MessageAck *a = events.items[2]->ack;
    assert_string_equal(a->pricing_category, "service");
    assert_string_equal(a->pricing_type, "free_entry_point");
    assert_string_equal(a->pricing_model, "PMP");
    ing_events_free(&events);

    char *lower = strdup(json);
    assert_non_null(lower);
    memcpy(strstr(lower, "\"PMP\""), "\"pmp\"", 5);
    ing_events refused = {0};
    bz_error err;
    assert_int_equal(meta_normalized(lower, &refused, conv, &err), BZ_ERR_INVALID);
    assert_non_null(strstr(err.msg, "receipt.pricing_model"));
    ing_events_free(&refused);
    free(lower);
}

/* Meta's history webhook (its reference page's shape, the corpus's
 * history.json): each chunk is a batch of one run per number, numbered by
 * phase and chunk_order, of unknown size; a thread is the private chat of
 * its customer, its messages oldest first whatever order Meta gave, the
 * business's own outbound, a customer's message the owner read already
 * read; the chunk with progress 100 (no threads here) is the run's last
 * batch, place 99 of its chunk, with no chats; a declined sharing
 * (errors[], code 2593109) is a batch of no chats carrying Meta's error,
 * past every chunk's index. Normalized, the phones are E.164 and a chunk
 * delivered again is the same event. */
static void test_meta_history_is_a_history_sync(void **state)
{
    (void)state;
    char *json = meta_corpus_text("history.json");
    ing_events events = {0};
    ing_meta_unhandled unhandled = {0};
    meta_parsed(json, &events, &unhandled);
    assert_int_equal(events.count, 3);
    assert_int_equal(unhandled.count, 0);
    const Blazz__V1__HistorySyncBatch *a = events.items[0]->history_sync;
    const Blazz__V1__HistorySyncBatch *b = events.items[1]->history_sync;
    assert_string_equal(events.items[0]->envelope->session_id, "106540352242922");
    assert_string_equal(a->sync_id, "meta-history:106540352242922");
    assert_int_equal(a->batch_index, 100);
    assert_int_equal(a->batch_total, 0);
    assert_int_equal(a->progress, 55);
    assert_false(a->last);
    assert_int_equal(a->n_chats, 2);
    const Blazz__V1__SyncedChat *c = a->chats[0];
    assert_string_equal(c->contact_phone, "16505551234");
    assert_int_equal(c->n_messages, 2);
    assert_int_equal(c->last_activity_ms, 1739230955000LL);
    assert_string_equal(c->messages[0]->body, "Where is my order?");
    assert_false(c->messages[0]->from_me);
    assert_true(c->messages[0]->is_read);
    assert_string_equal(c->messages[1]->body, "Your order has shipped.");
    assert_true(c->messages[1]->from_me);
    assert_string_equal(c->messages[1]->contact_phone, "16505551234");
    const Blazz__V1__InboundMessage *image = a->chats[1]->messages[0];
    assert_true(image->has_media);
    assert_false(image->is_read);
    assert_string_equal(b->sync_id, a->sync_id);
    assert_int_equal(b->batch_index, 2000199);
    assert_int_equal(b->n_chats, 0);
    assert_int_equal(b->progress, 100);
    assert_true(b->last);
    assert_null(b->error);
    const Blazz__V1__HistorySyncBatch *declined = events.items[2]->history_sync;
    assert_string_equal(declined->sync_id, a->sync_id);
    assert_int_equal(declined->batch_index, 3000000);
    assert_int_equal(declined->n_chats, 0);
    assert_false(declined->last);
    assert_string_equal(declined->error->code, "2593109");
    assert_string_equal(declined->error->title,
                        "History sync is turned off by the business from the WhatsApp Business "
                        "app");
    ing_events_free(&events);
    ing_meta_unhandled_free(&unhandled);

    char conv[3][ING_CONVERSATION_MAX];
    ing_events again = {0};
    meta_accepted(json, &events, conv, 3);
    meta_accepted(json, &again, conv, 3);
    assert_string_equal(conv[0], "session");
    assert_string_equal(events.items[0]->history_sync->chats[0]->contact_phone, "+16505551234");
    assert_string_equal(events.items[0]->envelope->event_id, again.items[0]->envelope->event_id);
    assert_string_not_equal(events.items[0]->envelope->event_id,
                            events.items[1]->envelope->event_id);
    ing_events_free(&events);
    ing_events_free(&again);
    free(json);
}

/* Threads naming people by BSUID (Meta's business-scoped user id page:
 * the fields appear wherever a user is named): a BSUID thread is that
 * customer's chat without a phone; a phone's thread takes the BSUID of its
 * newest message naming one; a from_user_id is a user's whatever BSUID it
 * is (a business has none), a to_user_id the owner's message. Normalized,
 * the BSUID stands in for the phone; a malformed one is refused. */
static void test_meta_history_names_username_customers_by_bsuid(void **state)
{
    (void)state;
    const char *json =
        "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\",\"changes\":[{"
        "\"field\":\"history\",\"value\":{\"metadata\":{\"phone_number_id\":\"1065\"},"
        "\"history\":[{\"metadata\":{\"phase\":0,\"chunk_order\":1,\"progress\":50},"
        "\"threads\":[{\"id\":\"US.1349\",\"messages\":["
        "{\"from_user_id\":\"US.1349\",\"id\":\"w1\",\"timestamp\":\"1750000001\","
        "\"type\":\"text\",\"text\":{\"body\":\"Hi\"}},"
        "{\"from\":\"15550783881\",\"to_user_id\":\"US.1349\",\"id\":\"w2\","
        "\"timestamp\":\"1750000002\",\"type\":\"text\",\"text\":{\"body\":\"Hello\"}}]},"
        "{\"id\":\"16505551234\",\"messages\":["
        "{\"from\":\"15550783881\",\"id\":\"w5\",\"timestamp\":\"1750000005\","
        "\"type\":\"text\",\"text\":{\"body\":\"Owner\"}},"
        "{\"from\":\"16505551234\",\"from_user_id\":\"US.2002\",\"id\":\"w3\","
        "\"timestamp\":\"1750000004\",\"type\":\"text\",\"text\":{\"body\":\"New id\"}},"
        "{\"from_user_id\":\"US.2001\",\"id\":\"w4\",\"timestamp\":\"1750000003\","
        "\"type\":\"text\",\"text\":{\"body\":\"Old id\"}}]}]}]}}]}]}";
    ing_events events = {0};
    ing_meta_unhandled unhandled = {0};
    meta_parsed(json, &events, &unhandled);
    assert_int_equal(events.count, 1);
    const Blazz__V1__HistorySyncBatch *h = events.items[0]->history_sync;
    assert_int_equal(h->n_chats, 2);
    const Blazz__V1__SyncedChat *username = h->chats[0], *phone = h->chats[1];
    assert_string_equal(username->contact_phone, "");
    assert_string_equal(username->contact_bsuid, "US.1349");
    assert_false(username->messages[0]->from_me);
    assert_true(username->messages[1]->from_me);
    assert_string_equal(username->messages[1]->contact_phone, "");
    assert_string_equal(username->messages[1]->contact_bsuid, "US.1349");
    assert_string_equal(phone->contact_phone, "16505551234");
    assert_string_equal(phone->contact_bsuid, "US.2002");
    /* newest first as Meta lists them, stored oldest first: w4 (a user's,
     * its older BSUID), w3, w5 (the owner's) */
    assert_string_equal(phone->messages[0]->body, "Old id");
    assert_false(phone->messages[0]->from_me);
    assert_false(phone->messages[1]->from_me);
    assert_true(phone->messages[2]->from_me);
    assert_string_equal(phone->messages[2]->contact_phone, "16505551234");
    ing_events_free(&events);
    ing_meta_unhandled_free(&unhandled);

    char conv[1][ING_CONVERSATION_MAX];
    meta_accepted(json, &events, conv, 1);
    const Blazz__V1__SyncedChat *n = events.items[0]->history_sync->chats[0];
    assert_string_equal(n->contact_bsuid, "US.1349");
    assert_string_equal(n->messages[0]->contact_bsuid, "US.1349");
    assert_string_equal(events.items[0]->history_sync->chats[1]->contact_phone, "+16505551234");
    ing_events_free(&events);

    meta_parsed(json, &events, &unhandled);
    Blazz__V1__InboundEvent *ev = events.items[0];
    assert_int_equal(ing_event_id_assign(ev, NULL), BZ_OK);
    assert_true(ing_str_set(&ev->history_sync->chats[0]->contact_bsuid, "us.1349"));
    ing_norm_opts opts = {.default_cc = "62", .now_ms = 1800000000000LL, .meta_edge = 1};
    bz_error err;
    assert_int_equal(ing_normalize(ev, &opts, conv[0], &err), BZ_ERR_INVALID);
    assert_non_null(strstr(err.msg, "history_sync.chats[0].contact_bsuid"));
    ing_events_free(&events);
    ing_meta_unhandled_free(&unhandled);
}

/* A chunk of 60 threads, one of them of 1,001 messages: 61 synced chats
 * (that thread's customer twice, 1,000 messages then 1), in two batches
 * of at most 50, then the run's last batch of its own (progress 100);
 * every message mapped once. */
static void test_meta_history_chunk_is_cut_into_batches(void **state)
{
    (void)state;
    size_t cap = 256 * 1024, len = 0;
    char *json = malloc(cap);
    assert_non_null(json);
    len += (size_t)snprintf(json + len, cap - len,
                            "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\","
                            "\"changes\":[{\"field\":\"history\",\"value\":{\"metadata\":{"
                            "\"phone_number_id\":\"106540352242922\"},\"history\":[{\"metadata\":{"
                            "\"phase\":1,\"chunk_order\":3,\"progress\":100},\"threads\":[");
    for (int t = 0; t < 60; t++) {
        len += (size_t)snprintf(json + len, cap - len, "%s{\"id\":\"1650555%04d\",\"messages\":[",
                                t ? "," : "", t);
        for (int m = 0; m < (t == 7 ? 1001 : 1); m++)
            len += (size_t)snprintf(json + len, cap - len,
                                    "%s{\"from\":\"1650555%04d\",\"id\":\"wamid.%d.%d\","
                                    "\"timestamp\":\"%d\",\"type\":\"text\",\"text\":{"
                                    "\"body\":\"m\"}}",
                                    m ? "," : "", t, t, m, 1739230000 + m);
        len += (size_t)snprintf(json + len, cap - len, "]}");
    }
    len += (size_t)snprintf(json + len, cap - len, "]}]}}]}]}");
    assert_true(len < cap);
    ing_events events = {0};
    char conv[3][ING_CONVERSATION_MAX];
    meta_accepted(json, &events, conv, 3);
    const Blazz__V1__HistorySyncBatch *a = events.items[0]->history_sync;
    const Blazz__V1__HistorySyncBatch *b = events.items[1]->history_sync;
    const Blazz__V1__HistorySyncBatch *end = events.items[2]->history_sync;
    assert_int_equal(end->batch_index, 1000399);
    assert_true(end->last);
    assert_int_equal(end->n_chats, 0);
    assert_int_equal(a->n_chats, 50);
    assert_int_equal(b->n_chats, 11);
    assert_int_equal(a->batch_index, 1000300);
    assert_int_equal(b->batch_index, 1000301);
    assert_false(a->last);
    assert_false(b->last);
    assert_int_equal(a->chats[7]->n_messages, 1000);
    assert_int_equal(a->chats[8]->n_messages, 1);
    assert_string_equal(a->chats[8]->messages[0]->wam_id, "wamid.7.1000");
    assert_string_equal(a->chats[8]->contact_phone, a->chats[7]->contact_phone);
    size_t messages = 0;
    for (size_t i = 0; i < 50; i++)
        messages += a->chats[i]->n_messages;
    for (size_t i = 0; i < 11; i++)
        messages += b->chats[i]->n_messages;
    assert_int_equal(messages, 1001 + 59);
    ing_events_free(&events);
    free(json);
}

/* Meta's edit and revoke webhooks (coexistence; their reference pages'
 * shapes): an edit of a media message's caption and a revoke each act on
 * the message they name (target_wam_id), the caption the edit's body. */
static void test_meta_edit_and_revoke_name_their_targets(void **state)
{
    (void)state;
    const char *json =
        "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"field\":"
        "\"messages\",\"value\":{\"metadata\":{\"phone_number_id\":\"1065\"},\"contacts\":[{"
        "\"profile\":{\"name\":\"Sheena\"},\"wa_id\":\"16505551234\"}],\"messages\":[{\"from\":"
        "\"16505551234\",\"id\":\"wamid.E\",\"timestamp\":\"1739321024\",\"type\":\"edit\","
        "\"edit\":{\"original_message_id\":\"wamid.O\",\"message\":{\"context\":{\"id\":"
        "\"wamid.C\"},\"type\":\"image\",\"image\":{\"caption\":\"new caption\",\"mime_type\":"
        "\"image/jpeg\",\"id\":\"123\"}}}},{\"from\":\"16505551234\",\"id\":\"wamid.R\","
        "\"timestamp\":\"1739321030\",\"type\":\"revoke\",\"revoke\":{"
        "\"original_message_id\":\"wamid.O\"}}]}}]}]}";
    ing_events events = {0};
    char conv[2][ING_CONVERSATION_MAX];
    meta_accepted(json, &events, conv, 2);
    const Blazz__V1__InboundMessage *edit = events.items[0]->message;
    assert_int_equal(edit->message_type, BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_EDIT);
    assert_string_equal(edit->target_wam_id, "wamid.O");
    assert_string_equal(edit->body, "new caption");
    const Blazz__V1__InboundMessage *revoke = events.items[1]->message;
    assert_int_equal(revoke->message_type, BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_REVOKED);
    assert_string_equal(revoke->target_wam_id, "wamid.O");
    ing_events_free(&events);
}

/* Meta's smb_app_state_sync webhook (its reference page's sample, the
 * corpus's state_sync.json): a contact the owner added or edited in the
 * Business app's address book is an update of that customer's saved name
 * (full_name, else first_name), not of its profile name, dated by its
 * timestamp; a removal takes the saved name away; an item of another type
 * is handed back whole. The three normalize, each with an id of its own. */
static void test_meta_address_book_names_contacts(void **state)
{
    (void)state;
    char *json = meta_corpus_text("state_sync.json");
    ing_events events = {0};
    ing_meta_unhandled unhandled = {0};
    meta_parsed(json, &events, &unhandled);
    assert_int_equal(events.count, 3);
    const Blazz__V1__ContactUpdate *pablo = events.items[0]->contact_update;
    assert_string_equal(pablo->contact_phone, "16505551234");
    assert_string_equal(pablo->saved_name, "Pablo Morales");
    assert_string_equal(pablo->push_name, "");
    assert_false(pablo->saved_name_removed);
    assert_int_equal(pablo->timestamp_ms, 1739321024000LL);
    assert_string_equal(events.items[0]->envelope->session_id, "106540352242922");
    const Blazz__V1__ContactUpdate *gone = events.items[1]->contact_update;
    assert_string_equal(gone->contact_phone, "16505550000");
    assert_string_equal(gone->saved_name, "");
    assert_true(gone->saved_name_removed);
    assert_string_equal(events.items[2]->contact_update->saved_name, "Rosa");
    assert_int_equal(unhandled.count, 1);
    assert_string_equal(unhandled.items[0].field, "smb_app_state_sync");
    assert_non_null(strstr(unhandled.items[0].change, "VIP"));
    ing_events_free(&events);
    ing_meta_unhandled_free(&unhandled);
    free(json);

    ing_events normalized = {0};
    char conv[3][ING_CONVERSATION_MAX];
    json = meta_corpus_text("state_sync.json");
    bz_error err;
    assert_int_equal(meta_normalized(json, &normalized, conv, &err), BZ_OK);
    assert_string_equal(conv[1], "+16505550000");
    assert_string_not_equal(normalized.items[0]->envelope->event_id,
                            normalized.items[1]->envelope->event_id);
    ing_events_free(&normalized);
    free(json);
}

/* Meta's group_participants_update (tests/fuzz/corpus/fuzz_ingest_meta/
 * group_participants.json, shaped as Meta's Groups API webhooks page and
 * business-scoped user ids page print it): a join by invite link (a
 * numeric timestamp), a removal by the BSUID the business gave with a
 * failure beside it, a member leaving, a removal that failed for everyone
 * (no event) and a join request (JOIN_REQUESTED naming the request and its
 * person, not a member). */
static void test_meta_group_members_join_and_leave(void **state)
{
    (void)state;
    char *json = meta_corpus_text("group_participants.json");
    ing_events events = {0};
    ing_meta_unhandled unhandled = {0};
    bz_error err;
    char conv[4][ING_CONVERSATION_MAX];
    if (ing_meta_parse(json, strlen(json), &events, &unhandled, &err) != BZ_OK)
        fail_msg("refused: %s", err.msg);
    assert_int_equal(events.count, 4);
    ing_norm_opts opts = {.default_cc = "62", .now_ms = 1800000000000LL, .meta_edge = 1};
    for (size_t i = 0; i < events.count; i++) {
        assert_int_equal(ing_event_id_assign(events.items[i], &err), BZ_OK);
        if (ing_normalize(events.items[i], &opts, conv[i], &err) != BZ_OK)
            fail_msg("event %zu refused: %s", i, err.msg);
    }
    const Blazz__V1__GroupUpdate *join = events.items[0]->group_update;
    assert_int_equal(join->action, BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_PARTICIPANTS_ADDED);
    assert_int_equal(join->timestamp_ms, 1761888373000LL);
    assert_int_equal(join->n_participants, 1);
    assert_string_equal(join->participants[0]->phone, "+16505551234");
    assert_string_equal(join->participants[0]->bsuid, "US.13491208655302741918");
    assert_string_equal(conv[0], "Y2FwaV9ncm91cDoxNzA1NTU1MDEzOToxMjAzNjM0MDQ2OTQyMzM4MjAZD");
    const Blazz__V1__GroupUpdate *removal = events.items[1]->group_update;
    assert_int_equal(removal->action, BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_PARTICIPANTS_REMOVED);
    assert_int_equal(removal->n_participants, 1);
    assert_string_equal(removal->participants[0]->bsuid, "US.71825466016913376013");
    assert_true(removal->participants[0]->phone == NULL || !*removal->participants[0]->phone);
    assert_true(removal->actor_phone == NULL || !*removal->actor_phone);
    const Blazz__V1__GroupUpdate *left = events.items[2]->group_update;
    assert_int_equal(left->action, BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_PARTICIPANTS_REMOVED);
    assert_string_equal(left->actor_phone, "+16505551234");
    const Blazz__V1__GroupUpdate *asked = events.items[3]->group_update;
    assert_int_equal(asked->action, BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_JOIN_REQUESTED);
    assert_string_equal(asked->join_request_id, "JOIN_REQUEST_ID");
    assert_int_equal(asked->n_participants, 1);
    assert_string_equal(asked->participants[0]->phone, "+16505550000");
    assert_int_equal(unhandled.count, 0);
    ing_events_free(&events);
    ing_meta_unhandled_free(&unhandled);
    free(json);
}

/* Meta's group_lifecycle_update and group_settings_update (the corpus's
 * group_lifecycle.json, shaped as Meta's Groups API webhooks page prints
 * them): a group created (subject, invite link), a create that failed (no
 * event), settings of which only the subject was set, the group deleted,
 * then suspended and its suspension cleared (group_status_update). */
static void test_meta_group_created_renamed_and_deleted(void **state)
{
    (void)state;
    char *json = meta_corpus_text("group_lifecycle.json");
    ing_events events = {0};
    ing_meta_unhandled unhandled = {0};
    meta_parsed(json, &events, &unhandled);
    assert_int_equal(events.count, 5);
    const Blazz__V1__GroupUpdate *made = events.items[0]->group_update;
    assert_int_equal(made->action, BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_CREATED);
    assert_string_equal(made->name, "Customer support");
    assert_string_equal(made->invite_code, "LINK_ID");
    assert_int_equal(made->group_created_at_ms, 1761886979000LL);
    const Blazz__V1__GroupUpdate *renamed = events.items[1]->group_update;
    assert_int_equal(renamed->action, BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_UPDATED);
    assert_string_equal(renamed->name, "Support (EU)");
    assert_true(renamed->description == NULL || !*renamed->description);
    const Blazz__V1__GroupUpdate *deleted = events.items[2]->group_update;
    assert_int_equal(deleted->action, BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_LEFT);
    assert_int_equal(events.items[3]->group_update->action,
                     BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_SUSPENDED);
    assert_int_equal(events.items[4]->group_update->action,
                     BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_SUSPENSION_CLEARED);
    assert_int_equal(events.items[4]->group_update->timestamp_ms, 1761887300000LL);
    assert_int_equal(unhandled.count, 0);
    ing_events_free(&events);
    ing_meta_unhandled_free(&unhandled);
    free(json);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_meta_maps_every_message_and_status),
        cmocka_unit_test(test_derived_event_ids_are_stable),
        cmocka_unit_test(test_message_without_id_gets_a_stable_derived_id),
        cmocka_unit_test(test_a_gateway_claiming_meta_is_refused),
        cmocka_unit_test(test_meta_group_members_join_and_leave),
        cmocka_unit_test(test_meta_group_created_renamed_and_deleted),
        cmocka_unit_test(test_private_chat_sender_must_be_valid_to_be_dropped),
        cmocka_unit_test(test_group_message_contact_must_be_valid_to_be_dropped),
        cmocka_unit_test(test_empty_strings_are_absent_fields),
        cmocka_unit_test(test_a_negative_number_is_no_phone),
        cmocka_unit_test(test_session_ids_outside_the_safe_set_are_refused),
        cmocka_unit_test(test_session_stores_are_names),
        cmocka_unit_test(test_dedupe_window_commit_and_rollback),
        cmocka_unit_test(test_whole_numbers_with_a_fraction_are_integers),
        cmocka_unit_test(test_a_bad_phone_is_refused_in_one_sentence_naming_its_field),
        cmocka_unit_test(test_an_interactive_list_is_parsed_whole),
        cmocka_unit_test(test_a_user_jid_gives_the_phone_and_stays_named),
        cmocka_unit_test(test_integers_beyond_64_bits_are_no_reason_to_refuse),
        cmocka_unit_test(test_meta_username_user_is_keyed_by_bsuid),
        cmocka_unit_test(test_meta_bsuid_shape_and_presence),
        cmocka_unit_test(test_meta_group_message_is_the_groups),
        cmocka_unit_test(test_meta_group_statuses_name_the_group),
        cmocka_unit_test(test_meta_changes_are_dispatched_by_field),
        cmocka_unit_test(test_meta_messages_change_of_another_shape_is_kept),
        cmocka_unit_test(test_meta_volume_tiers_are_events_of_their_own),
        cmocka_unit_test(test_meta_keeps_referral_flow_answers_and_pricing),
        cmocka_unit_test(test_meta_calls_are_call_events_of_their_customer),
        cmocka_unit_test(test_meta_history_is_a_history_sync),
        cmocka_unit_test(test_meta_history_names_username_customers_by_bsuid),
        cmocka_unit_test(test_meta_history_chunk_is_cut_into_batches),
        cmocka_unit_test(test_meta_address_book_names_contacts),
        cmocka_unit_test(test_meta_edit_and_revoke_name_their_targets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
