/*
 * test_meta_media_out.c - an agent sends stored media through a Meta
 * account (issue 36, ARCHITECTURE.md §16.6), on the real chain: ingest's
 * POST /v1/messages with the CRM's API key naming a chat_media row by its
 * uuid, chat-sync, campaign-sender, meta-sender, the Graph test server.
 *
 * The image is put in the local store as the store lays it out
 * (ws/<workspace>/<sha256> under media.local_dir) with its chat_media row,
 * without depending on ingest's upload endpoint. Sent to 20 contacts, it
 * must reach the server as one upload and 20 messages naming that upload's
 * id, each chats row linked to the media row; once its cached id is stale
 * (expires_at past), the next send uploads it again. Before §16.6 the uuid
 * went to Meta as a media id, which the server refuses (code 100): the
 * sends failed. Its message.created and message.status events on
 * chat.events carry the media (its stored uuid and caption), as the CRM's
 * webhooks show it (issue 54: they said has_media with media null), and
 * so does the message read back over the API, alone and in its
 * conversation (issue 54: the reads had no media).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <openssl/sha.h>

#include "agent_itest.h"
#include "blazz/v1/chat_event.pb-c.h"
#include "core/uuid.h"
#include "itest.h"
#include "kafka/topics.h"
#include "meta_itest.h"
#include "meta_world.h"

#define fx agent_test_fx
#define mw meta_test_world
#define CONTACTS 20

/* A small PNG-looking object in the store and its chat_media row: the
 * row's uuid into uuid, its id returned. */
static int64_t store_image(char *uuid)
{
    unsigned char bytes[512] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    for (size_t i = 8; i < sizeof bytes; i++)
        bytes[i] = (unsigned char)(i * 7);
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(bytes, sizeof bytes, digest);
    char sha[65], dir[1024], path[1200];
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
        snprintf(sha + 2 * i, 3, "%02x", digest[i]);
    /* media.local_dir/ws/<workspace>: the store's layout */
    snprintf(dir, sizeof dir, "%s/media", fx->camp.dir);
    mkdir(dir, 0700);
    snprintf(dir, sizeof dir, "%s/media/ws", fx->camp.dir);
    mkdir(dir, 0700);
    snprintf(dir, sizeof dir, "%s/media/ws/%lld", fx->camp.dir, (long long)mw.ws);
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/%s", dir, sha);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, sizeof bytes, f), sizeof bytes);
    fclose(f);
    int64_t id = agent_int(fx,
                           "INSERT INTO chat_media (workspace_id, name, path, location, type, kind, "
                           "size, sha256, source) VALUES (%lld, 'photo.png', 'ws/%lld/%s', 'local', "
                           "'image/png', 'image', %zu, '%s', 'crm') RETURNING id",
                           (long long)mw.ws, (long long)mw.ws, sha, sizeof bytes, sha);
    char *u = itest_pg_textf(fx->camp.pg, "SELECT uuid FROM chat_media WHERE id = %lld",
                             (long long)id);
    snprintf(uuid, BZ_UUID_STR_SIZE, "%s", u);
    free(u);
    return id;
}

static void send_image(int64_t contact, const char *uuid, const char *idem, char *id)
{
    char fields[512];
    /* the declared type is a lie the row overrides */
    snprintf(fields, sizeof fields,
             "\"contact_id\":%lld,\"whatsapp_account_id\":%lld,\"message_type\":\"document\","
             "\"media\":{\"media_id\":\"%s\",\"caption\":\"foto\"}",
             (long long)contact, (long long)mw.account, uuid);
    meta_world_post_message(fields, idem, id);
}

/* The ids the accepted image messages named, checked all equal to want
 * (NULL: to the first); how many there were. */
static size_t image_ids(const char *want, char *first, size_t cap)
{
    size_t n, k = 0;
    graph_body *b = graph_bodies(&n);
    first[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const char *id = json_string_value(json_object_get(json_object_get(b[i].doc, "image"),
                                                           "id"));
        if (!id)
            continue;
        if (!first[0])
            snprintf(first, cap, "%s", id);
        if (want)
            k += strcmp(id, want) == 0;
        else
            k += strcmp(id, first) == 0;
    }
    graph_bodies_free(b, n);
    return k;
}

static void image_to_twenty_contacts_uploaded_once(void **state)
{
    (void)state;
    meta_world_start("media_out", META_WORLD_PACED, NULL);
    char uuid[BZ_UUID_STR_SIZE], id[BZ_UUID_STR_SIZE];
    int64_t media = store_image(uuid);
    int64_t contacts[CONTACTS];
    for (int i = 0; i < CONTACTS; i++) {
        char phone[32], idem[32];
        snprintf(phone, sizeof phone, "+62813100%05d", i);
        contacts[i] = agent_contact(fx, mw.ws, phone, "Contact");
        meta_world_contact_wrote(contacts[i], 60 * 1000);
        snprintf(idem, sizeof idem, "media-out-%d", i);
        send_image(contacts[i], uuid, idem, id);
    }
    agent_wait(fx, CONTACTS, 120,
               "SELECT count(*) FROM chats WHERE workspace_id = %lld AND type = 'outbound' AND "
               "wam_id LIKE 'wamid.T%%' AND media_id = %lld",
               (long long)mw.ws, (long long)media);
    assert_int_equal(meta_world_count_kind("image"), CONTACTS);
    assert_int_equal(meta_world_count_kind("upload"), 1);
    char meta_id[64];
    assert_int_equal(image_ids(NULL, meta_id, sizeof meta_id), CONTACTS);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM meta_media_uploads WHERE "
                                   "whatsapp_account_id = %lld AND media_id = %lld AND "
                                   "meta_media_id = '%s'",
                               (long long)mw.account, (long long)media, meta_id),
                     1);

    /* a stale id is not trusted: the next send uploads again */
    agent_int(fx, "UPDATE meta_media_uploads SET expires_at = now() - interval '1 second' "
                  "WHERE media_id = %lld RETURNING id", (long long)media);
    send_image(contacts[0], uuid, "media-out-stale", id);
    agent_wait(fx, 1, 90, "SELECT count(*) FROM chats WHERE uuid = '%s' AND wam_id LIKE "
                          "'wamid.T%%' AND media_id = %lld", id, (long long)media);
    assert_int_equal(meta_world_count_kind("upload"), 2);
    char *fresh = itest_pg_textf(fx->camp.pg, "SELECT meta_media_id FROM meta_media_uploads "
                                              "WHERE media_id = %lld", (long long)media);
    assert_string_not_equal(fresh, meta_id);
    char unused[64];
    assert_int_equal(image_ids(fresh, unused, sizeof unused), 1);
    free(fresh);
}

/* The chat.events of one agent's message: its message.created and
 * message.status events, and how many of each carry the stored media. */
typedef struct media_events {
    const char *message_id, *media_uuid;
    int created, created_with_media, statuses, statuses_with_media;
} media_events;

static void count_media_events(void *ctx, const rd_kafka_message_t *m)
{
    media_events *c = ctx;
    Blazz__V1__ChatEvent *ev =
        blazz__v1__chat_event__unpack(NULL, m->len, (const uint8_t *)m->payload);
    if (!ev || !ev->chat || strcmp(ev->chat->uuid, c->message_id) != 0) {
        if (ev)
            blazz__v1__chat_event__free_unpacked(ev, NULL);
        return;
    }
    int media = ev->chat->has_media && ev->chat->media &&
                strcmp(ev->chat->media->stored_media_uuid, c->media_uuid) == 0 &&
                strcmp(ev->chat->media->caption, "foto") == 0;
    if (ev->kind == BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_MESSAGE_CREATED) {
        c->created++;
        c->created_with_media += media;
    } else if (ev->kind == BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_STATUS_CHANGED) {
        c->statuses++;
        c->statuses_with_media += media;
    }
    blazz__v1__chat_event__free_unpacked(ev, NULL);
}

/* An agent's media message carries its media in every event the CRM's
 * webhooks render (message.created, message.status), not has_media with
 * media null (issue 54). */
static void expect_media_in_events(const char *message_id, const char *media_uuid)
{
    char topic[BZ_TOPIC_NAME_MAX];
    snprintf(topic, sizeof topic, "%schat.events", fx->wh.prefix);
    media_events c = {.message_id = message_id, .media_uuid = media_uuid};
    itest_consume_all(topic, count_media_events, &c);
    assert_int_equal(c.created, 1);
    assert_int_equal(c.created_with_media, 1);
    assert_true(c.statuses >= 1);
    assert_int_equal(c.statuses_with_media, c.statuses);
}

/* The message read back over the API (GET /v1/messages/{id}, and in its
 * contact's conversation) shows its media as the webhooks do, the stored
 * bytes' uuid among it (issue 54: media in reads). */
static void expect_media_over_http(const char *message_id, const char *media_uuid,
                                   int64_t contact)
{
    char path[128];
    json_t *doc;
    snprintf(path, sizeof path, "/v1/messages/%s", message_id);
    assert_int_equal(agent_get_json(fx, path, mw.api_key, &doc), 200);
    json_t *media = json_object_get(doc, "media");
    const char *stored = json_string_value(json_object_get(media, "stored_media_uuid"));
    const char *caption = json_string_value(json_object_get(media, "caption"));
    assert_non_null(stored);
    assert_string_equal(stored, media_uuid);
    assert_non_null(caption);
    assert_string_equal(caption, "foto");
    json_t *page;
    snprintf(path, sizeof path, "/v1/contacts/%lld/messages", (long long)contact);
    assert_int_equal(agent_get_json(fx, path, mw.api_key, &page), 200);
    assert_true(json_equal(json_array_get(json_object_get(page, "messages"), 0), doc));
    json_decref(page);
    json_decref(doc);
}

/* Another workspace's media (or none) is refused at the API. */
static void another_workspace_media_refused(void **state)
{
    (void)state;
    meta_world_start("media_ws", META_WORLD_PACED, NULL);
    char uuid[BZ_UUID_STR_SIZE];
    store_image(uuid);
    int64_t other = camp_workspace(&fx->camp);
    agent_int(fx, "UPDATE chat_media SET workspace_id = %lld WHERE uuid = '%s' RETURNING id",
              (long long)other, uuid);
    int64_t contact = agent_contact(fx, mw.ws, "+6281310099999", "Ann");
    meta_world_contact_wrote(contact, 60 * 1000);
    char req[512], resp[512];
    snprintf(req, sizeof req,
             "{\"idempotency_key\":\"media-ws-1\",\"contact_id\":%lld,\"media\":{\"media_id\":"
             "\"%s\"}}",
             (long long)contact, uuid);
    long status = agent_post(fx, "/v1/messages", mw.api_key, req, resp, sizeof resp, NULL, 0);
    assert_int_equal(status, 404);
    assert_non_null(strstr(resp, "unknown_media"));
    /* the same uuid once it is the workspace's goes out (and the chain,
     * meta-sender included, is up before the teardown stops it) */
    agent_int(fx, "UPDATE chat_media SET workspace_id = %lld WHERE uuid = '%s' RETURNING id",
              (long long)mw.ws, uuid);
    char id[BZ_UUID_STR_SIZE];
    send_image(contact, uuid, "media-ws-2", id);
    agent_wait(fx, 1, 90, "SELECT count(*) FROM chats WHERE uuid = '%s' AND wam_id LIKE "
                          "'wamid.T%%' AND media_id IS NOT NULL", id);
    agent_wait(fx, 0, 60, "SELECT count(*) FROM outbox");
    expect_media_in_events(id, uuid);
    expect_media_over_http(id, uuid, contact);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(image_to_twenty_contacts_uploaded_once, agent_test_setup,
                                        meta_world_teardown),
        cmocka_unit_test_setup_teardown(another_workspace_media_refused, agent_test_setup,
                                        meta_world_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
