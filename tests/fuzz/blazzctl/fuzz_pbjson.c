/*
 * fuzz_pbjson.c - protobuf messages as JSON (tools/blazzctl/pbjson.c), the view
 * blazzctl gives of records and dead-letter payloads, and the topic-name
 * lookups it relies on.
 *
 * The first byte picks one of the message types of the topic catalogue, the
 * rest is a record value. Properties: pbjson decodes exactly what protobuf-c
 * decodes (a message it cannot show as JSON would be reported undecodable),
 * every field the message sets is in the JSON (none looks unset), the JSON
 * serializes, and it depends only on the fields the contract knows:
 * the message re-packed without its unknown fields shows the same JSON.
 * The whole input, as a topic name, maps to the longest catalogue base name
 * it ends with, or to none. Accepted means the value decoded.
 */
#include <string.h>

#include <jansson.h>

#include "fuzz_target.h"
#include "kafka/topics.h"
#include "pbjson.h"
#include "proto/unknown_fields.h"

static const ProtobufCMessageDescriptor *catalogue_type(uint8_t pick)
{
    const ProtobufCMessageDescriptor *types[BZ_TOPIC_COUNT] = {0};
    size_t n = 0;
    for (bz_topic t = 0; t < BZ_TOPIC_COUNT; t++) {
        const ProtobufCMessageDescriptor *type = bz_ctl_topic_message_type(bz_topic_base(t));
        int known = type == NULL;
        for (size_t i = 0; i < n && !known; i++)
            known = types[i] == type;
        if (!known)
            types[n++] = type;
    }
    BZ_FUZZ_CHECK(n > 0);
    return types[pick % n];
}

static void check_topic_base(const uint8_t *data, size_t size)
{
    char topic[300];
    bz_fuzz_text(data, size, topic, sizeof topic);
    size_t len = strlen(topic);
    const char *base = bz_ctl_topic_base_of(topic);
    size_t best = 0;
    for (bz_topic t = 0; t < BZ_TOPIC_COUNT; t++) {
        const char *b = bz_topic_base(t);
        size_t blen = strlen(b);
        if (blen <= len && strcmp(topic + len - blen, b) == 0 && blen > best)
            best = blen;
    }
    BZ_FUZZ_CHECK(best == 0 ? base == NULL : base != NULL && strlen(base) == best);
    if (base)
        BZ_FUZZ_CHECK(strcmp(topic + len - best, base) == 0);
}

/* 1 when the value of singular field f at p is not the proto3 default, so
 * the JSON must show it. */
static int is_set(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: return *(const uint32_t *)p != 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: return *(const uint64_t *)p != 0;
    case PROTOBUF_C_TYPE_FLOAT: return *(const float *)p != 0; /* NaN is set */
    case PROTOBUF_C_TYPE_DOUBLE: return *(const double *)p != 0;
    case PROTOBUF_C_TYPE_BOOL: return *(const protobuf_c_boolean *)p != 0;
    case PROTOBUF_C_TYPE_ENUM: return *(const int *)p != 0;
    case PROTOBUF_C_TYPE_STRING: return *(char *const *)p && **(char *const *)p;
    case PROTOBUF_C_TYPE_BYTES: return ((const ProtobufCBinaryData *)p)->len != 0;
    case PROTOBUF_C_TYPE_MESSAGE: return *(ProtobufCMessage *const *)p != NULL;
    }
    return 0;
}

/* Every field the message sets appears in its JSON (a value JSON cannot
 * hold must not look like an absent one), sub-messages included. */
static void check_nothing_vanished(const ProtobufCMessage *msg, const json_t *j)
{
    BZ_FUZZ_CHECK(json_is_object(j));
    const char *base = (const char *)msg;
    for (unsigned i = 0; i < msg->descriptor->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &msg->descriptor->fields[i];
        const json_t *v = json_object_get(j, f->name);
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            BZ_FUZZ_CHECK(n == 0 || (json_is_array(v) && json_array_size(v) == n));
            ProtobufCMessage *const *items = *(ProtobufCMessage *const *const *)(base + f->offset);
            for (size_t k = 0; f->type == PROTOBUF_C_TYPE_MESSAGE && k < n; k++)
                check_nothing_vanished(items[k], json_array_get(v, k));
            continue;
        }
        int set = (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
                      ? *(const uint32_t *)(base + f->quantifier_offset) == f->id
                      : is_set(f, base + f->offset);
        if (!set)
            continue;
        BZ_FUZZ_CHECK(v != NULL);
        if (f->type == PROTOBUF_C_TYPE_MESSAGE)
            check_nothing_vanished(*(ProtobufCMessage *const *)(base + f->offset), v);
    }
}

static json_t *json_of_repacked(ProtobufCMessage *msg)
{
    bz_proto_drop_unknown_fields(msg);
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *bytes = malloc(len ? len : 1);
    BZ_FUZZ_CHECK(bytes != NULL);
    protobuf_c_message_pack(msg, bytes);
    json_t *j = bz_ctl_pb_decode_json(msg->descriptor, bytes, len);
    free(bytes);
    return j;
}

static int fuzz_pbjson(const uint8_t *data, size_t size)
{
    check_topic_base(data, size);
    if (size == 0)
        return BZ_FUZZ_REJECTED;
    const ProtobufCMessageDescriptor *type = catalogue_type(data[0]);
    ProtobufCMessage *msg = protobuf_c_message_unpack(type, NULL, size - 1, data + 1);
    json_t *j = bz_ctl_pb_decode_json(type, data + 1, size - 1);
    BZ_FUZZ_CHECK((msg != NULL) == (j != NULL));
    if (!msg)
        return BZ_FUZZ_REJECTED;
    check_nothing_vanished(msg, j);
    char *text = json_dumps(j, JSON_COMPACT);
    BZ_FUZZ_CHECK(text != NULL);
    free(text);
    json_t *again = json_of_repacked(msg);
    BZ_FUZZ_CHECK(again != NULL && json_equal(j, again));
    json_decref(again);
    json_decref(j);
    protobuf_c_message_free_unpacked(msg, NULL);
    return BZ_FUZZ_ACCEPTED;
}

static const bz_fuzz_expect expect[] = {
    {"sync_command_receipt.bin", BZ_FUZZ_ACCEPTED},
    {"campaign_event.bin", BZ_FUZZ_ACCEPTED},
    {"truncated.bin", BZ_FUZZ_REJECTED},
    {NULL, 0},
};

BZ_FUZZ_TARGET_EXPECTING(fuzz_pbjson, expect)
