/*
 * fuzz_blazzctl_dlq.c - what `blazzctl dlq tail` makes of a dead-letter
 * record's value: unpack it as a DeadLetter (dlq_reader.c) and build its
 * JSON (bz_ctl_set_dead_letter, dlq_json.c), payload decoding through
 * libs/proto/pbjson.c included.
 *
 * A dead letter is what on-call reads when something went wrong, so nothing
 * in it may vanish: every field is shown (text that is not UTF-8 as base64,
 * under <name>_base64), every original header is listed, and the payload is
 * either decoded JSON or given in hex and base64 that decode back to its
 * bytes. The document must serialize. Accepted means the value was a
 * DeadLetter.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "blazzctl.h"
#include "fuzz_target.h"

/* name is shown as text, or as <name>_base64 */
static void check_shown(const json_t *obj, const char *name)
{
    char key[64];
    snprintf(key, sizeof key, "%s_base64", name);
    BZ_FUZZ_CHECK(json_is_string(json_object_get(obj, name)) ||
                  json_is_string(json_object_get(obj, key)));
}

static void check_base64_is(const json_t *b64, const uint8_t *bytes, size_t len)
{
    BZ_FUZZ_CHECK(json_is_string(b64));
    const char *text = json_string_value(b64);
    size_t tlen = strlen(text);
    BZ_FUZZ_CHECK(tlen == 4 * ((len + 2) / 3));
    unsigned char *out = malloc(tlen / 4 * 3 + 1);
    BZ_FUZZ_CHECK(out != NULL);
    int n = EVP_DecodeBlock(out, (const unsigned char *)text, (int)tlen);
    size_t pad = (tlen >= 1 && text[tlen - 1] == '=') + (tlen >= 2 && text[tlen - 2] == '=');
    BZ_FUZZ_CHECK(n >= 0 && (size_t)n - pad == len && (len == 0 || memcmp(out, bytes, len) == 0));
    free(out);
}

static void check_payload(const json_t *obj, const Blazz__V1__DeadLetter *dl)
{
    BZ_FUZZ_CHECK(json_object_get(obj, "payload_type") != NULL);
    BZ_FUZZ_CHECK(json_integer_value(json_object_get(obj, "payload_bytes")) ==
                  (json_int_t)dl->original_value.len);
    const json_t *decoded = json_object_get(obj, "payload_decoded");
    BZ_FUZZ_CHECK(json_is_boolean(decoded));
    if (json_is_true(decoded)) {
        BZ_FUZZ_CHECK(json_object_get(obj, "payload") != NULL);
        return;
    }
    const json_t *hex = json_object_get(obj, "payload_hex");
    BZ_FUZZ_CHECK(json_is_string(hex) && json_string_length(hex) == 2 * dl->original_value.len);
    for (size_t i = 0; i < dl->original_value.len; i++) {
        char pair[3] = {json_string_value(hex)[2 * i], json_string_value(hex)[2 * i + 1], '\0'};
        char *end;
        unsigned long byte = strtoul(pair, &end, 16);
        BZ_FUZZ_CHECK(*end == '\0' && byte == dl->original_value.data[i]);
    }
    check_base64_is(json_object_get(obj, "payload_base64"), dl->original_value.data,
                    dl->original_value.len);
}

static void check_dead_letter_json(const json_t *obj, const Blazz__V1__DeadLetter *dl)
{
    BZ_FUZZ_CHECK(json_is_true(json_object_get(obj, "dead_letter_decoded")));
    static const char *const texts[] = {"original_topic", "original_key", "event_id", "service",
                                        "error_code", "error_message", NULL};
    for (const char *const *t = texts; *t; t++)
        check_shown(obj, *t);
    BZ_FUZZ_CHECK(json_integer_value(json_object_get(obj, "original_partition")) ==
                  dl->original_partition);
    BZ_FUZZ_CHECK(json_integer_value(json_object_get(obj, "original_offset")) ==
                  dl->original_offset);
    BZ_FUZZ_CHECK(json_integer_value(json_object_get(obj, "attempts")) == dl->attempts);
    const json_t *first = json_object_get(obj, "first_failed_at");
    const json_t *last = json_object_get(obj, "last_failed_at");
    BZ_FUZZ_CHECK((json_is_null(first) || json_is_string(first)) &&
                  (json_is_null(last) || json_is_string(last)));
    const json_t *headers = json_object_get(obj, "original_headers");
    BZ_FUZZ_CHECK(json_is_array(headers) && json_array_size(headers) == dl->n_original_headers);
    for (size_t i = 0; i < json_array_size(headers); i++) {
        check_shown(json_array_get(headers, i), "key");
        check_shown(json_array_get(headers, i), "value");
    }
    check_payload(obj, dl);
}

static int fuzz_blazzctl_dlq(const uint8_t *data, size_t size)
{
    Blazz__V1__DeadLetter *dl = blazz__v1__dead_letter__unpack(NULL, size, data);
    if (!dl)
        return BZ_FUZZ_REJECTED;
    json_t *obj = json_object();
    BZ_FUZZ_CHECK(obj != NULL);
    bz_ctl_set_dead_letter(obj, dl);
    check_dead_letter_json(obj, dl);
    char *text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    BZ_FUZZ_CHECK(text != NULL);
    free(text);
    json_decref(obj);
    blazz__v1__dead_letter__free_unpacked(dl, NULL);
    return BZ_FUZZ_ACCEPTED;
}

static const bz_fuzz_expect expect[] = {
    {"chat_sync_decode_error.pb", BZ_FUZZ_ACCEPTED},
    {"webhook_body.pb", BZ_FUZZ_ACCEPTED},
    {"error_message_not_utf8.pb", BZ_FUZZ_ACCEPTED},
    {"not_a_dead_letter.bin", BZ_FUZZ_REJECTED},
    {NULL, 0},
};

BZ_FUZZ_TARGET_EXPECTING(fuzz_blazzctl_dlq, expect)
