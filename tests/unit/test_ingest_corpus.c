/*
 * test_ingest_corpus.c - replays the checked-in fuzz corpus of ingest
 * (tests/fuzz/corpus/fuzz_ingest_{json,meta,proto}/) through the same
 * parser entry points and property checks as the fuzz targets
 * (tests/fuzz/fuzz_ingest.h): no crash, a defined outcome for every file.
 * It also pins the outcome of the hand-written seeds: the well-formed
 * examples are accepted and the deliberately broken ones rejected, so the
 * corpus keeps covering both sides. The corpus folder is found relative to
 * the working directory (the repository root, as scripts/test.sh runs it) or
 * through BLAZZ_FUZZ_CORPUS; a missing corpus fails the test.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../fuzz/fuzz_ingest.h"
#include "dedupe.h"

typedef fuzz_outcome (*entry_point)(const uint8_t *data, size_t size);

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

/* Run every file of one target's corpus; returns how many were accepted. */
static int replay(const char *target, entry_point fn, int *files)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", corpus_root(), target);
    *files = 0;
    DIR *d = opendir(dir);
    if (!d) {
        fail_msg("corpus folder %s is missing (run from the repository root)", dir);
        return 0;
    }
    struct dirent *e;
    int accepted = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[1024];
        size_t len;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        uint8_t *data = read_file(path, &len);
        accepted += fn(data, len) == FUZZ_ACCEPTED;
        (*files)++;
        free(data);
    }
    closedir(d);
    return accepted;
}

static fuzz_outcome one_file(const char *target, const char *name, entry_point fn)
{
    char path[1024];
    size_t len;
    snprintf(path, sizeof path, "%s/%s/%s", corpus_root(), target, name);
    uint8_t *data = read_file(path, &len);
    fuzz_outcome o = fn(data, len);
    free(data);
    return o;
}

static void test_json_corpus(void **state)
{
    (void)state;
    int files, accepted = replay("fuzz_ingest_json", fuzz_ingest_json, &files);
    assert_true(files >= 10);
    assert_true(accepted > 0 && accepted < files);
    static const char *const good[] = {"private_message.json", "group_message.json",
                                       "media_message.json", "location_lid.json", "receipt.json",
                                       "receipt_failed.json", "session_status.json",
                                       "history.json", "group_update.json", "unicode.json"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (one_file("fuzz_ingest_json", good[i], fuzz_ingest_json) != FUZZ_ACCEPTED)
            fail_msg("%s should be accepted", good[i]);
    assert_int_equal(one_file("fuzz_ingest_json", "bad_phone.json", fuzz_ingest_json), FUZZ_REJECTED);
    assert_int_equal(one_file("fuzz_ingest_json", "bad_json.json", fuzz_ingest_json), FUZZ_REJECTED);
    assert_int_equal(one_file("fuzz_ingest_json", "wrong_types.json", fuzz_ingest_json), FUZZ_REJECTED);
}

static void test_meta_corpus(void **state)
{
    (void)state;
    int files, accepted = replay("fuzz_ingest_meta", fuzz_ingest_meta, &files);
    assert_true(files >= 4);
    assert_true(accepted > 0);
    assert_int_equal(one_file("fuzz_ingest_meta", "two_messages_status.json", fuzz_ingest_meta),
                     FUZZ_ACCEPTED);
    assert_int_equal(one_file("fuzz_ingest_meta", "not_a_notification.json", fuzz_ingest_meta),
                     FUZZ_REJECTED);
}

static void test_proto_corpus(void **state)
{
    (void)state;
    int files, accepted = replay("fuzz_ingest_proto", fuzz_ingest_proto, &files);
    assert_true(files >= 5);
    assert_true(accepted > 0);
}

/* Meta's notification maps to one event per message and status. */
static void test_meta_maps_every_message_and_status(void **state)
{
    (void)state;
    char path[1024];
    size_t len;
    snprintf(path, sizeof path, "%s/fuzz_ingest_meta/all_types.json", corpus_root());
    uint8_t *data = read_file(path, &len);
    bz_ingest_events events = {0};
    assert_int_equal(bz_ingest_meta_parse((const char *)data, len, &events, NULL), BZ_OK);
    assert_int_equal(events.count, 9);
    assert_int_equal(events.items[0]->message->message_type, BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_VOICE);
    assert_int_equal(events.items[3]->message->message_type,
                     BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_INTERACTIVE);
    assert_string_equal(events.items[3]->message->body, "Yes");
    assert_string_equal(events.items[5]->message->reaction_emoji, "\xf0\x9f\x91\x8d");
    assert_true(events.items[6]->message->is_forwarded);
    assert_int_equal(events.items[7]->message->message_type, BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_UNKNOWN);
    assert_string_equal(events.items[8]->ack->client_reference, "ref-1");
    bz_ingest_events_free(&events);
    free(data);
}

/* Equal facts give equal derived event ids; a retry is a duplicate. */
static void test_derived_event_ids_are_stable(void **state)
{
    (void)state;
    const char *json = "{\"session_id\":\"s\",\"contact_phone\":\"6281234567890\","
                       "\"message_id\":\"m1\",\"timestamp\":1700000000}";
    Blazz__V1__InboundEvent *a, *b;
    assert_int_equal(bz_ingest_gateway_json_parse(json, strlen(json), 1, &a, NULL), BZ_OK);
    assert_int_equal(bz_ingest_gateway_json_parse(json, strlen(json), 2, &b, NULL), BZ_OK);
    assert_int_equal(bz_ingest_event_id_assign(a, NULL), BZ_OK);
    assert_int_equal(bz_ingest_event_id_assign(b, NULL), BZ_OK);
    assert_string_equal(a->envelope->event_id, b->envelope->event_id);
    assert_int_equal(a->envelope->event_id[14], '8');
    blazz__v1__inbound_event__free_unpacked(a, NULL);
    blazz__v1__inbound_event__free_unpacked(b, NULL);
}

/* The duplicate window forgets what an aborted transaction added. */
static void test_dedupe_window_commit_and_rollback(void **state)
{
    (void)state;
    bz_dedupe *d;
    assert_int_equal(bz_dedupe_new(4, 1000, &d, NULL), BZ_OK);
    const char *ids[] = {"00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002",
                         "00000000-0000-4000-8000-000000000003", "00000000-0000-4000-8000-000000000004",
                         "00000000-0000-4000-8000-000000000005"};
    bz_dedupe_add(d, ids[0], 0);
    bz_dedupe_add(d, ids[1], 0);
    bz_dedupe_commit(d);
    bz_dedupe_add(d, ids[2], 10);
    assert_true(bz_dedupe_seen(d, ids[2], 10));
    bz_dedupe_rollback(d);
    assert_false(bz_dedupe_seen(d, ids[2], 10));
    assert_true(bz_dedupe_seen(d, ids[0], 10));
    /* Full: the oldest committed entry gives way. */
    bz_dedupe_add(d, ids[2], 20);
    bz_dedupe_add(d, ids[3], 20);
    bz_dedupe_add(d, ids[4], 20);
    bz_dedupe_commit(d);
    assert_false(bz_dedupe_seen(d, ids[0], 20));
    assert_true(bz_dedupe_seen(d, ids[1], 20));
    assert_true(bz_dedupe_seen(d, ids[4], 20));
    /* Expiry after the window. */
    assert_false(bz_dedupe_seen(d, ids[1], 2000));
    assert_int_equal(bz_dedupe_size(d), 0);
    bz_dedupe_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_corpus),
        cmocka_unit_test(test_meta_corpus),
        cmocka_unit_test(test_proto_corpus),
        cmocka_unit_test(test_meta_maps_every_message_and_status),
        cmocka_unit_test(test_derived_event_ids_are_stable),
        cmocka_unit_test(test_dedupe_window_commit_and_rollback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
