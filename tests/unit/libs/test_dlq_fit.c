/*
 * test_dlq_fit.c - a dead letter always fits the record limit: whole when
 * it can, else with the original value cut (its size and SHA-256 kept), its
 * headers dropped, and at last its key cut, each loss noted in the error
 * message; and as much of the original as fits is kept.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "blazz/v1/dead_letter.pb-c.h"
#include "kafka/dlq.h"
#include "kafka/limits.h"

static const bz_dead_letter_info info = {.error_code = "decode_error",
                                         .error_message = "not a blazz.v1.Envelope",
                                         .service = "unit",
                                         .event_id = "e-1",
                                         .attempts = 1};

static uint8_t *pattern(size_t len)
{
    uint8_t *v = malloc(len ? len : 1);
    for (size_t i = 0; i < len; i++)
        v[i] = (uint8_t)(i * 31 + i / 977);
    return v;
}

static size_t record_size(const bz_dlq_record *rec)
{
    return bz_kafka_record_size(rec->key_len, rec->value_len, rec->headers, rec->nheaders);
}

static Blazz__V1__DeadLetter *build(const bz_dlq_original *o, bz_dlq_record *rec)
{
    bz_error err;
    if (bz_dlq_build(o, &info, rec, &err) != BZ_OK)
        fail_msg("%s", err.msg);
    assert_true(record_size(rec) <= BZ_KAFKA_RECORD_MAX_BYTES);
    Blazz__V1__DeadLetter *dl = blazz__v1__dead_letter__unpack(NULL, rec->value_len, rec->value);
    assert_non_null(dl);
    return dl;
}

static void assert_cut_with_hash(const Blazz__V1__DeadLetter *dl, const uint8_t *value, size_t len)
{
    uint8_t sha[32];
    EVP_Digest(value, len, sha, NULL, EVP_sha256(), NULL);
    assert_int_equal(dl->original_value_size, len);
    assert_int_equal(dl->original_value_sha256.len, 32);
    assert_memory_equal(dl->original_value_sha256.data, sha, 32);
    assert_true(dl->original_value.len < len);
    assert_memory_equal(dl->original_value.data, value, dl->original_value.len);
}

static void a_small_original_is_kept_whole(void **state)
{
    (void)state;
    uint8_t *v = pattern(1000);
    bz_kafka_header h[] = {{"event_id", "e-1", 3}};
    bz_dlq_original o = {.topic = "chat.sync", .partition = 2, .offset = 77, .key = "k",
                         .key_len = 1, .value = v, .value_len = 1000, .headers = h, .nheaders = 1};
    bz_dlq_record rec;
    Blazz__V1__DeadLetter *dl = build(&o, &rec);
    assert_false(rec.value_cut);
    assert_int_equal(dl->original_value.len, 1000);
    assert_memory_equal(dl->original_value.data, v, 1000);
    assert_int_equal(dl->original_value_size, 0);
    assert_int_equal(dl->original_value_sha256.len, 0);
    assert_int_equal(dl->n_original_headers, 1);
    assert_string_equal(dl->error_message, "not a blazz.v1.Envelope");
    assert_int_equal(rec.key_len, 1);
    blazz__v1__dead_letter__free_unpacked(dl, NULL);
    bz_dlq_record_free(&rec);
    free(v);
}

/* The value is cut by exactly what does not fit: the record ends within a
 * few bytes of the limit. */
static void a_value_near_the_limit_is_cut_to_fit(void **state)
{
    (void)state;
    size_t len = BZ_KAFKA_RECORD_MAX_BYTES - 50;
    uint8_t *v = pattern(len);
    bz_kafka_header h[] = {{"event_id", "e-1", 3}, {"trace_id", "t-1", 3}};
    bz_dlq_original o = {.topic = "wa.inbound.raw", .partition = 0, .offset = 5, .key = "sess",
                         .key_len = 4, .value = v, .value_len = len, .headers = h, .nheaders = 2};
    bz_dlq_record rec;
    Blazz__V1__DeadLetter *dl = build(&o, &rec);
    assert_true(rec.value_cut);
    assert_cut_with_hash(dl, v, len);
    assert_true(record_size(&rec) > BZ_KAFKA_RECORD_MAX_BYTES - 16);
    assert_int_equal(dl->n_original_headers, 2);
    assert_non_null(strstr(dl->error_message, "cut to fit the record limit"));
    assert_int_equal(rec.key_len, 4);
    blazz__v1__dead_letter__free_unpacked(dl, NULL);
    bz_dlq_record_free(&rec);
    free(v);
}

/* Headers that alone leave no room are dropped; the value is then kept
 * whole when it fits, and nothing claims it was cut. */
static void headers_that_leave_no_room_are_dropped(void **state)
{
    (void)state;
    size_t hlen = 63000;
    uint8_t *hv = pattern(hlen), *v = pattern(30000);
    bz_kafka_header h[16];
    for (int i = 0; i < 16; i++)
        h[i] = (bz_kafka_header){"big", hv, hlen};
    bz_dlq_original o = {.topic = "chat.sync", .partition = 1, .offset = 9, .key = "k",
                         .key_len = 1, .value = v, .value_len = 30000, .headers = h,
                         .nheaders = 16};
    bz_dlq_record rec;
    Blazz__V1__DeadLetter *dl = build(&o, &rec);
    assert_int_equal(dl->n_original_headers, 0);
    assert_false(rec.value_cut);
    assert_int_equal(dl->original_value.len, 30000);
    assert_int_equal(dl->original_value_size, 0);
    assert_non_null(strstr(dl->error_message, "16 original header(s) dropped"));
    assert_null(strstr(dl->error_message, "cut"));
    blazz__v1__dead_letter__free_unpacked(dl, NULL);
    bz_dlq_record_free(&rec);
    free(hv);
    free(v);
}

/* A key that fills the limit by itself: the dead letter goes without a
 * Kafka key and keeps as much of the original key as fits. */
static void a_huge_key_is_cut_last(void **state)
{
    (void)state;
    size_t klen = BZ_KAFKA_RECORD_MAX_BYTES - 100;
    uint8_t *k = pattern(klen), *v = pattern(5000);
    bz_dlq_original o = {.topic = "chat.sync", .partition = 3, .offset = 1, .key = k,
                         .key_len = klen, .value = v, .value_len = 5000};
    bz_dlq_record rec;
    Blazz__V1__DeadLetter *dl = build(&o, &rec);
    assert_null(rec.key);
    assert_int_equal(rec.key_len, 0);
    assert_true(dl->original_key.len > 0 && dl->original_key.len < klen);
    assert_memory_equal(dl->original_key.data, k, dl->original_key.len);
    assert_int_equal(dl->original_value.len, 0);
    assert_cut_with_hash(dl, v, 5000);
    assert_non_null(strstr(dl->error_message, "produced without a key"));
    blazz__v1__dead_letter__free_unpacked(dl, NULL);
    bz_dlq_record_free(&rec);
    free(k);
    free(v);
}

/* The dlt-* headers repeat the facts, the message with its notes included. */
static void headers_repeat_the_facts(void **state)
{
    (void)state;
    size_t len = 2 * BZ_KAFKA_RECORD_MAX_BYTES;
    uint8_t *v = pattern(len);
    bz_dlq_original o = {.topic = "chat.events", .partition = -1, .offset = -1, .key = "k",
                         .key_len = 1, .value = v, .value_len = len};
    bz_dlq_record rec;
    Blazz__V1__DeadLetter *dl = build(&o, &rec);
    const char *want[][2] = {{"dlt-original-topic", "chat.events"},
                             {"dlt-original-partition", "-1"},
                             {"dlt-original-offset", "-1"},
                             {"dlt-exception-message", dl->error_message},
                             {"dlt-error-code", "decode_error"},
                             {"dlt-service", "unit"},
                             {"event_id", "e-1"}};
    assert_int_equal(rec.nheaders, 7);
    for (size_t i = 0; i < 7; i++) {
        assert_string_equal(rec.headers[i].name, want[i][0]);
        assert_int_equal(rec.headers[i].len, strlen(want[i][1]));
        assert_memory_equal(rec.headers[i].value, want[i][1], rec.headers[i].len);
    }
    blazz__v1__dead_letter__free_unpacked(dl, NULL);
    bz_dlq_record_free(&rec);
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_small_original_is_kept_whole),
        cmocka_unit_test(a_value_near_the_limit_is_cut_to_fit),
        cmocka_unit_test(headers_that_leave_no_room_are_dropped),
        cmocka_unit_test(a_huge_key_is_cut_last),
        cmocka_unit_test(headers_repeat_the_facts),
    };
    return cmocka_run_group_tests_name("dead letter fitting", tests, NULL, NULL);
}
