/*
 * test_ingest_parsers.c - ingest's parsing modules beyond what the fuzz
 * targets check (their corpora replay as test_corpus_ingest_*): a Meta
 * notification maps to one event per message and status with the right
 * types (the corpus file all_types.json, found under tests/fuzz/corpus or
 * BLAZZ_FUZZ_CORPUS), derived event ids are stable, and the duplicate
 * window forgets what a rolled-back transaction added.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dedupe.h"
#include "event_id.h"
#include "event_tree.h"
#include "gateway_json.h"
#include "meta_webhook.h"

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
        cmocka_unit_test(test_meta_maps_every_message_and_status),
        cmocka_unit_test(test_derived_event_ids_are_stable),
        cmocka_unit_test(test_dedupe_window_commit_and_rollback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
