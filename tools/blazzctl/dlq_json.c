/*
 * dlq_json.c - one record of a dead-letter topic as JSON, and as text for
 * people (see dlq_json.h).
 *
 * The JSON is what `blazzctl dlq tail --json` prints and what the text is
 * printed from, so both show the same fields: where the record came from,
 * who gave up on it and why, its attempts and failure times, its original
 * headers and its payload. A payload too large to keep whole was cut by
 * the writer: its full size and SHA-256 are shown, and replay skips it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blazzctl.h"
#include "core/hex.h"
#include "core/timespec.h"
#include "dlq_json.h"
#include "kafka/topics.h"
#include "pbjson.h"

#define HEX_PREVIEW_BYTES 48

json_t *bz_ctl_time_json(int64_t ms)
{
    if (ms <= 0)
        return json_null();
    char text[40];
    bz_time_format(ms, text, sizeof text);
    return json_string(text);
}

/* Text as a JSON string under name when it is UTF-8, else base64 under
 * name + "_base64". */
static void set_bytes(json_t *obj, const char *name, const uint8_t *data, size_t len)
{
    json_t *s = json_stringn((const char *)data, len);
    if (s) {
        json_object_set_new(obj, name, s);
        return;
    }
    char key[64];
    snprintf(key, sizeof key, "%s_base64", name);
    json_object_set_new(obj, key, bz_ctl_json_base64(data, len));
}

/* A protobuf string field: bytes from whoever wrote the dead letter (a
 * receiver's reply can end up in error_message), not necessarily UTF-8. */
static void set_text(json_t *obj, const char *name, const char *text)
{
    set_bytes(obj, name, (const uint8_t *)text, strlen(text));
}

static json_t *hex_json(const uint8_t *data, size_t len)
{
    char *hex = bz_hex_dup("", data, len);
    if (!hex)
        return NULL;
    json_t *out = json_string(hex);
    free(hex);
    return out;
}

static json_t *headers_json(const Blazz__V1__DeadLetter *dl)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < dl->n_original_headers; i++) {
        const Blazz__V1__Header *hdr = dl->original_headers[i];
        json_t *h = json_object();
        if (h) {
            set_text(h, "key", hdr->key);
            set_bytes(h, "value", hdr->value.data, hdr->value.len);
        }
        json_array_append_new(arr, h);
    }
    return arr;
}

/* A JSON document (webhook-dispatcher dead-letters the webhook body it
 * could not deliver), or NULL. Protobuf never starts with '{' or '[': those
 * bytes would open a group, which proto3 does not have. */
static json_t *json_payload(const Blazz__V1__DeadLetter *dl)
{
    const uint8_t *v = dl->original_value.data;
    if (dl->original_value.len == 0 || (v[0] != '{' && v[0] != '['))
        return NULL;
    return json_loadb((const char *)v, dl->original_value.len, 0, NULL);
}

/* 1 when the dead letter keeps only the start of the original value. */
int bz_ctl_payload_is_cut(const Blazz__V1__DeadLetter *dl)
{
    return dl->original_value_size > (int64_t)dl->original_value.len;
}

/* The payload as the message of its original topic when it decodes so. */
static void set_payload(json_t *obj, const Blazz__V1__DeadLetter *dl)
{
    json_object_set_new(obj, "payload_truncated", json_boolean(bz_ctl_payload_is_cut(dl)));
    if (bz_ctl_payload_is_cut(dl)) {
        json_object_set_new(obj, "original_value_size", json_integer(dl->original_value_size));
        json_object_set_new(obj, "original_value_sha256",
                            hex_json(dl->original_value_sha256.data,
                                     dl->original_value_sha256.len));
    }
    const char *base = bz_ctl_topic_base_of(dl->original_topic);
    const ProtobufCMessageDescriptor *type = base ? bz_ctl_topic_message_type(base) : NULL;
    json_t *decoded = json_payload(dl);
    if (decoded)
        json_object_set_new(obj, "payload_type", json_string("json"));
    else
        json_object_set_new(obj, "payload_type", type ? json_string(type->name) : json_null());
    json_object_set_new(obj, "payload_bytes", json_integer((json_int_t)dl->original_value.len));
    if (!decoded && type)
        decoded = bz_ctl_pb_decode_json(type, dl->original_value.data, dl->original_value.len);
    json_object_set_new(obj, "payload_decoded", json_boolean(decoded != NULL));
    if (decoded) {
        json_object_set_new(obj, "payload", decoded);
        return;
    }
    json_object_set_new(obj, "payload_hex", hex_json(dl->original_value.data,
                                                     dl->original_value.len));
    json_object_set_new(obj, "payload_base64", bz_ctl_json_base64(dl->original_value.data,
                                                              dl->original_value.len));
}

/* The value of header name on m as a new JSON string, or null. */
static json_t *header_json(const rd_kafka_message_t *m, const char *name)
{
    rd_kafka_headers_t *hdrs = NULL;
    const void *value;
    size_t size;
    if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(hdrs, name, &value, &size) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        !value)
        return json_null();
    json_t *s = json_stringn(value, size);
    return s ? s : json_null();
}

/* A record whose value is not a DeadLetter still shows what its dlt-*
 * headers say, so a broken producer can be traced. */
static void set_undecodable(json_t *obj, const rd_kafka_message_t *m)
{
    json_object_set_new(obj, "dead_letter_decoded", json_false());
    json_object_set_new(obj, "original_topic", header_json(m, "dlt-original-topic"));
    json_object_set_new(obj, "service", header_json(m, "dlt-service"));
    json_object_set_new(obj, "error_code", header_json(m, "dlt-error-code"));
    json_object_set_new(obj, "error_message", header_json(m, "dlt-exception-message"));
    json_object_set_new(obj, "raw_base64", bz_ctl_json_base64(m->payload, m->len));
}

void bz_ctl_set_dead_letter(json_t *obj, const Blazz__V1__DeadLetter *dl)
{
    json_object_set_new(obj, "dead_letter_decoded", json_true());
    set_text(obj, "original_topic", dl->original_topic);
    json_object_set_new(obj, "original_partition", json_integer(dl->original_partition));
    json_object_set_new(obj, "original_offset", json_integer(dl->original_offset));
    set_bytes(obj, "original_key", dl->original_key.data, dl->original_key.len);
    set_text(obj, "event_id", dl->event_id);
    set_text(obj, "service", dl->service);
    set_text(obj, "error_code", dl->error_code);
    set_text(obj, "error_message", dl->error_message);
    json_object_set_new(obj, "attempts", json_integer(dl->attempts));
    json_object_set_new(obj, "first_failed_at", bz_ctl_time_json(dl->first_failed_at_ms));
    json_object_set_new(obj, "last_failed_at", bz_ctl_time_json(dl->last_failed_at_ms));
    json_object_set_new(obj, "original_headers", headers_json(dl));
    set_payload(obj, dl);
}

json_t *bz_ctl_dlq_record_json(const rd_kafka_message_t *m, const Blazz__V1__DeadLetter *dl)
{
    rd_kafka_timestamp_type_t type;
    json_t *obj = json_pack("{s:i, s:I}", "dlq_partition", (int)m->partition, "dlq_offset",
                            (json_int_t)m->offset);
    if (!obj)
        return NULL;
    json_object_set_new(obj, "dlq_timestamp",
                        bz_ctl_time_json(rd_kafka_message_timestamp(m, &type)));
    if (dl)
        bz_ctl_set_dead_letter(obj, dl);
    else
        set_undecodable(obj, m);
    return obj;
}

static const char *json_text(const json_t *obj, const char *key, const char *fallback)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s && *s ? s : fallback;
}

/* A text field as set_text left it: the text, else its base64. */
static const char *json_shown(const json_t *obj, const char *key, const char *fallback)
{
    char b64[64];
    snprintf(b64, sizeof b64, "%s_base64", key);
    return json_text(obj, key, json_text(obj, b64, fallback));
}

static void print_payload_line(const json_t *r)
{
    json_t *payload = json_object_get(r, "payload");
    if (payload) {
        char *text = json_dumps(payload, JSON_COMPACT | JSON_PRESERVE_ORDER);
        printf("    payload   %s %s\n", json_text(r, "payload_type", "?"), text ? text : "?");
        free(text);
        return;
    }
    const char *hex = json_text(r, "payload_hex", "");
    size_t shown = strlen(hex) > 2 * HEX_PREVIEW_BYTES ? 2 * HEX_PREVIEW_BYTES : strlen(hex);
    printf("    payload   %" JSON_INTEGER_FORMAT " bytes, not a %s: %.*s%s\n",
           json_integer_value(json_object_get(r, "payload_bytes")),
           json_text(r, "payload_type", "known message"), (int)shown, hex,
           strlen(hex) > shown ? "..." : "");
}

void bz_ctl_print_dlq_record(const json_t *r)
{
    printf("%s  dlq[%" JSON_INTEGER_FORMAT "]@%" JSON_INTEGER_FORMAT "  %s  by %s\n",
           json_text(r, "dlq_timestamp", "-"),
           json_integer_value(json_object_get(r, "dlq_partition")),
           json_integer_value(json_object_get(r, "dlq_offset")), json_shown(r, "error_code", "?"),
           json_shown(r, "service", "?"));
    if (!json_is_true(json_object_get(r, "dead_letter_decoded"))) {
        printf("    (value is not a blazz.v1.DeadLetter; original topic %s)\n    error     %s\n",
               json_shown(r, "original_topic", "?"), json_shown(r, "error_message", "-"));
        return;
    }
    printf("    original  %s[%" JSON_INTEGER_FORMAT "]@%" JSON_INTEGER_FORMAT "  key %s  event %s\n",
           json_shown(r, "original_topic", "?"),
           json_integer_value(json_object_get(r, "original_partition")),
           json_integer_value(json_object_get(r, "original_offset")),
           json_text(r, "original_key", json_object_get(r, "original_key_base64") ? "(binary)"
                                                                                  : "-"),
           json_shown(r, "event_id", "-"));
    printf("    error     %s\n", json_shown(r, "error_message", "-"));
    printf("    failed    %" JSON_INTEGER_FORMAT " attempt(s), first %s, last %s\n",
           json_integer_value(json_object_get(r, "attempts")),
           json_text(r, "first_failed_at", "-"), json_text(r, "last_failed_at", "-"));
    if (json_is_true(json_object_get(r, "payload_truncated")))
        printf("    original  value cut to %" JSON_INTEGER_FORMAT " of %" JSON_INTEGER_FORMAT
               " bytes, sha256 %s (not replayable)\n",
               json_integer_value(json_object_get(r, "payload_bytes")),
               json_integer_value(json_object_get(r, "original_value_size")),
               json_text(r, "original_value_sha256", "-"));
    print_payload_line(r);
}

void bz_ctl_count_in(json_t *obj, const char *key)
{
    json_t *n = json_object_get(obj, key);
    json_object_set_new(obj, key, json_integer(n ? json_integer_value(n) + 1 : 1));
}
