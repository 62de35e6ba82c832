/*
 * test_webhook_payload.c - webhook bodies and secrets at rest: a ChatEvent
 * renders as {id, type, timestamp, workspace_id, data} with data mirroring
 * NewChatEvent (chat, contact, group) and enum values as their PostgreSQL
 * text; undecodable or incomplete events are rejected with a reason; event
 * type filters; AES-256-GCM secrets (libs/core/secretbox.h) round-trip,
 * refuse a wrong key, a tampered ciphertext or another workspace's
 * associated data.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "blazz/v1/campaign.pb-c.h"
#include "blazz/v1/chat_event.pb-c.h"
#include "blazz/v1/session.pb-c.h"
#include "core/secretbox.h"
#include "payload.h"

static size_t pack_chat_event(uint8_t *buf, int kind, int64_t workspace)
{
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    env.event_id = "0b7e5a8e-2f59-4a8d-9c7e-1d2f3a4b5c6d";
    env.occurred_at_ms = 1700000000123LL;
    env.workspace_id = workspace;
    Blazz__V1__ChatSnapshot chat = BLAZZ__V1__CHAT_SNAPSHOT__INIT;
    chat.id = 9;
    chat.type = BLAZZ__V1__DIRECTION__DIRECTION_INBOUND;
    chat.chat_type = BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_GROUP;
    chat.provider_type = BLAZZ__V1__PROVIDER__PROVIDER_WEBJS;
    chat.message = "halo";
    chat.message_status = BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_READ;
    chat.group_id = 5;
    Blazz__V1__MediaInfo media = BLAZZ__V1__MEDIA_INFO__INIT;
    media.mime_type = "image/jpeg";
    media.stored_media_uuid = "5d1f0c3e-7b2a-4c9d-8e6f-1a2b3c4d5e6f";
    chat.has_media = 1;
    chat.media = &media;
    Blazz__V1__GroupSnapshot group = BLAZZ__V1__GROUP_SNAPSHOT__INIT;
    group.id = 5;
    group.name = "Keluarga";
    group.participants_count = 12;
    Blazz__V1__ChatEvent ev = BLAZZ__V1__CHAT_EVENT__INIT;
    ev.envelope = &env;
    ev.kind = (Blazz__V1__ChatEventKind)kind;
    ev.chat = &chat;
    ev.group = &group;
    return blazz__v1__chat_event__pack(&ev, buf);
}

static void test_message_created_mirrors_new_chat_event(void **state)
{
    (void)state;
    uint8_t buf[1024];
    size_t len = pack_chat_event(buf, 1, 77);
    wh_event ev;
    assert_int_equal(wh_event_from_record(WH_SOURCE_CHAT, buf, len, &ev, NULL), BZ_OK);
    assert_string_equal(ev.type, "message.created");
    assert_int_equal(ev.workspace_id, 77);
    json_t *doc = json_loads(ev.body, 0, NULL);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "id")),
                        "0b7e5a8e-2f59-4a8d-9c7e-1d2f3a4b5c6d");
    assert_string_equal(json_string_value(json_object_get(doc, "timestamp")),
                        "2023-11-14T22:13:20.123Z");
    json_t *data = json_object_get(doc, "data");
    json_t *chat = json_object_get(data, "chat");
    assert_string_equal(json_string_value(json_object_get(chat, "type")), "inbound");
    assert_string_equal(json_string_value(json_object_get(chat, "chat_type")), "group");
    assert_string_equal(json_string_value(json_object_get(chat, "provider_type")), "webjs");
    assert_string_equal(json_string_value(json_object_get(chat, "message_status")), "read");
    assert_string_equal(json_string_value(json_object_get(chat, "message")), "halo");
    assert_true(json_is_null(json_object_get(chat, "contact_id")));
    /* the stored media the CRM asks GET /v1/media/{uuid} for (§16.4) */
    json_t *media = json_object_get(chat, "media");
    assert_string_equal(json_string_value(json_object_get(media, "stored_media_uuid")),
                        "5d1f0c3e-7b2a-4c9d-8e6f-1a2b3c4d5e6f");
    assert_string_equal(json_string_value(json_object_get(media, "mime_type")), "image/jpeg");
    assert_true(json_is_null(json_object_get(data, "contact")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(data, "group"), "name")),
                        "Keluarga");
    json_decref(doc);
    wh_event_clear(&ev);
}

static void test_kinds_and_rejections(void **state)
{
    (void)state;
    uint8_t buf[1024];
    wh_event ev;
    bz_error err;
    size_t len = pack_chat_event(buf, 2, 77);
    assert_int_equal(wh_event_from_record(WH_SOURCE_CHAT, buf, len, &ev, &err), BZ_OK);
    assert_string_equal(ev.type, "message.status");
    wh_event_clear(&ev);
    len = pack_chat_event(buf, 0, 77);
    assert_int_equal(wh_event_from_record(WH_SOURCE_CHAT, buf, len, &ev, &err),
                     BZ_ERR_INVALID);
    assert_string_equal(err.reason, "unknown_kind");
    len = pack_chat_event(buf, 1, 0);
    assert_int_equal(wh_event_from_record(WH_SOURCE_CHAT, buf, len, &ev, &err),
                     BZ_ERR_INVALID);
    assert_string_equal(err.reason, "missing_workspace");
    assert_int_equal(wh_event_from_record(WH_SOURCE_CHAT, "\xff\xff\xff", 3, &ev, &err),
                     BZ_ERR_INVALID);
    assert_string_equal(err.reason, "decode_error");
}

static void test_replayed_body_is_kept_byte_exact(void **state)
{
    (void)state;
    const char body[] = "{\"id\":\"0b7e5a8e-2f59-4a8d-9c7e-1d2f3a4b5c6d\",\"type\":\"session.status\","
                        "\"timestamp\":null,\"workspace_id\":3,\"data\":{}}";
    wh_event ev;
    assert_int_equal(wh_event_from_replay(12, body, strlen(body), &ev, NULL), BZ_OK);
    assert_int_equal(ev.replay_endpoint_id, 12);
    assert_int_equal(ev.workspace_id, 3);
    assert_string_equal(ev.type, "session.status");
    assert_memory_equal(ev.body, body, strlen(body));
    wh_event_clear(&ev);
    bz_error err;
    assert_int_equal(wh_event_from_replay(12, "[1]", 3, &ev, &err), BZ_ERR_INVALID);
}

static void test_secretbox_round_trip_and_refusals(void **state)
{
    (void)state;
    uint8_t key[32], other[32], nonce[12], *sealed;
    size_t sealed_len, plain_len;
    char *plain;
    bz_error err;
    assert_int_equal(bz_secretbox_key_parse(
                         "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", key,
                         &err), BZ_OK);
    assert_int_equal(bz_secretbox_key_parse("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", other,
                                            &err), BZ_OK);
    assert_memory_equal(key, other, 32); /* the same key, hex and base64 */
    assert_int_equal(bz_secretbox_key_parse("too-short", other, &err), BZ_ERR_CONFIG);
    assert_null(strstr(err.msg, "too-short"));
    const char *secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    assert_int_equal(bz_secretbox_seal(key, secret, strlen(secret), "42", 2, nonce, &sealed,
                                       &sealed_len, &err), BZ_OK);
    assert_int_equal(sealed_len, strlen(secret) + 16);
    assert_null(memmem(sealed, sealed_len, "whsec_", 6));
    assert_int_equal(bz_secretbox_open(key, sealed, sealed_len, nonce, "42", 2, &plain,
                                       &plain_len, &err), BZ_OK);
    assert_string_equal(plain, secret);
    free(plain);
    assert_int_equal(bz_secretbox_open(key, sealed, sealed_len, nonce, "43", 2, &plain,
                                       &plain_len, &err), BZ_ERR_INVALID);
    other[0] ^= 1;
    assert_int_equal(bz_secretbox_open(other, sealed, sealed_len, nonce, "42", 2, &plain,
                                       &plain_len, &err), BZ_ERR_INVALID);
    sealed[3] ^= 0x20;
    assert_int_equal(bz_secretbox_open(key, sealed, sealed_len, nonce, "42", 2, &plain,
                                       &plain_len, &err), BZ_ERR_INVALID);
    free(sealed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_message_created_mirrors_new_chat_event),
        cmocka_unit_test(test_kinds_and_rejections),
        cmocka_unit_test(test_replayed_body_is_kept_byte_exact),
        cmocka_unit_test(test_secretbox_round_trip_and_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
