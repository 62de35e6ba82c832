/*
 * pbjson.c - protobuf-c messages as JSON through their descriptors, and the
 * topic -> message map (see pbjson.h).
 *
 * protobuf-c lays a message out as a C struct whose field offsets, counts
 * (quantifier_offset: n_<field> for repeated fields, the case slot for oneof
 * members) and types are in the descriptor; the walker reads each field at
 * its offset and converts one value at a time, recursing into sub-messages.
 */
#include "pbjson.h"

#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blazz/v1/campaign.pb-c.h"
#include "blazz/v1/chat_event.pb-c.h"
#include "blazz/v1/cleanup.pb-c.h"
#include "blazz/v1/crm.pb-c.h"
#include "blazz/v1/dead_letter.pb-c.h"
#include "blazz/v1/inbound.pb-c.h"
#include "blazz/v1/session.pb-c.h"
#include "blazz/v1/sync.pb-c.h"
#include "kafka/topics.h"

json_t *bz_ctl_json_base64(const uint8_t *data, size_t len)
{
    if (len > (size_t)INT_MAX / 2)
        return NULL;
    char *text = malloc(4 * ((len + 2) / 3) + 1);
    if (!text)
        return NULL;
    EVP_EncodeBlock((unsigned char *)text, data, (int)len);
    json_t *out = json_string(text);
    free(text);
    return out;
}

static json_t *enum_json(const ProtobufCEnumDescriptor *type, int value)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(type, value);
    return v ? json_string(v->name) : json_integer(value);
}

static json_t *uint64_json(uint64_t v)
{
    if (v <= (uint64_t)INT64_MAX)
        return json_integer((json_int_t)v);
    char text[24];
    snprintf(text, sizeof text, "%" PRIu64, v);
    return json_string(text);
}

/* A float or double; JSON has no NaN or infinity, so those are the strings
 * the proto3 JSON mapping uses, rather than a value that looks unset. */
static json_t *real_json(double v)
{
    if (isnan(v))
        return json_string("NaN");
    if (isinf(v))
        return json_string(v > 0 ? "Infinity" : "-Infinity");
    return json_real(v);
}

/* One value of field f stored at p, or NULL when it is the proto3 default
 * and may be left out (only when omit_default). */
static json_t *value_json(const ProtobufCFieldDescriptor *f, const void *p, int omit_default)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: {
        int32_t v = *(const int32_t *)p;
        return omit_default && v == 0 ? NULL : json_integer(v);
    }
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: {
        uint32_t v = *(const uint32_t *)p;
        return omit_default && v == 0 ? NULL : json_integer(v);
    }
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: {
        int64_t v = *(const int64_t *)p;
        return omit_default && v == 0 ? NULL : json_integer((json_int_t)v);
    }
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: {
        uint64_t v = *(const uint64_t *)p;
        return omit_default && v == 0 ? NULL : uint64_json(v);
    }
    case PROTOBUF_C_TYPE_FLOAT: {
        float v = *(const float *)p;
        return omit_default && v == 0 ? NULL : real_json(v);
    }
    case PROTOBUF_C_TYPE_DOUBLE: {
        double v = *(const double *)p;
        return omit_default && v == 0 ? NULL : real_json(v);
    }
    case PROTOBUF_C_TYPE_BOOL: {
        protobuf_c_boolean v = *(const protobuf_c_boolean *)p;
        return omit_default && !v ? NULL : json_boolean(v);
    }
    case PROTOBUF_C_TYPE_ENUM: {
        int v = *(const int *)p;
        return omit_default && v == 0 ? NULL : enum_json(f->descriptor, v);
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *v = *(char *const *)p;
        if (!v || (omit_default && !*v))
            return NULL;
        /* A string that is not UTF-8 (an undecodable record) stays visible. */
        json_t *s = json_stringn(v, strlen(v));
        return s ? s : bz_ctl_json_base64((const uint8_t *)v, strlen(v));
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *v = p;
        return omit_default && v->len == 0 ? NULL : bz_ctl_json_base64(v->data, v->len);
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *v = *(ProtobufCMessage *const *)p;
        return v ? bz_ctl_pb_to_json(v) : NULL;
    }
    }
    return NULL;
}

static size_t element_size(ProtobufCType type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM:
        return sizeof(int);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    return 0;
}

static json_t *repeated_json(const ProtobufCFieldDescriptor *f, const char *base)
{
    size_t n = *(const size_t *)(base + f->quantifier_offset);
    if (n == 0)
        return NULL;
    const char *items = *(char *const *)(base + f->offset);
    size_t size = element_size(f->type);
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        json_t *v = value_json(f, items + i * size, 0);
        if (!v || json_array_append_new(arr, v) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

/* The JSON of field f of the message at base, or NULL when it is absent. */
static json_t *field_json(const ProtobufCFieldDescriptor *f, const char *base)
{
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return repeated_json(f, base);
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        uint32_t set_case = *(const uint32_t *)(base + f->quantifier_offset);
        return set_case == f->id ? value_json(f, base + f->offset, 0) : NULL;
    }
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
        f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE &&
        !*(const protobuf_c_boolean *)(base + f->quantifier_offset))
        return NULL;
    return value_json(f, base + f->offset, f->label != PROTOBUF_C_LABEL_REQUIRED);
}

json_t *bz_ctl_pb_to_json(const ProtobufCMessage *msg)
{
    const ProtobufCMessageDescriptor *type = msg->descriptor;
    const char *base = (const char *)msg;
    json_t *obj = json_object();
    for (unsigned i = 0; obj && i < type->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &type->fields[i];
        json_t *v = field_json(f, base);
        if (v && json_object_set_new(obj, f->name, v) != 0) {
            json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

json_t *bz_ctl_pb_decode_json(const ProtobufCMessageDescriptor *type, const uint8_t *data,
                          size_t len)
{
    ProtobufCMessage *msg = protobuf_c_message_unpack(type, NULL, len, data);
    if (!msg)
        return NULL;
    json_t *out = bz_ctl_pb_to_json(msg);
    protobuf_c_message_free_unpacked(msg, NULL);
    return out;
}

typedef struct topic_type {
    bz_topic topic;
    const ProtobufCMessageDescriptor *type;
} topic_type;

static const topic_type topic_types[] = {
    {BZ_TOPIC_WA_INBOUND_RAW, &blazz__v1__inbound_event__descriptor},
    {BZ_TOPIC_CHAT_SYNC, &blazz__v1__sync_command__descriptor},
    {BZ_TOPIC_CHAT_EVENTS, &blazz__v1__chat_event__descriptor},
    {BZ_TOPIC_SESSION_EVENTS, &blazz__v1__session_event__descriptor},
    {BZ_TOPIC_CAMPAIGN_COMMANDS, &blazz__v1__campaign_command__descriptor},
    {BZ_TOPIC_WA_OUTBOUND, &blazz__v1__send_message__descriptor},
    {BZ_TOPIC_CAMPAIGN_RECEIPTS, &blazz__v1__campaign_receipt__descriptor},
    {BZ_TOPIC_CAMPAIGN_EVENTS, &blazz__v1__campaign_event__descriptor},
    {BZ_TOPIC_WA_SESSION_COMMANDS, &blazz__v1__session_command__descriptor},
    {BZ_TOPIC_CLEANUP_REQUESTS, &blazz__v1__cleanup_request__descriptor},
    {BZ_TOPIC_CRM_COMMANDS, &blazz__v1__crm_command__descriptor},
    {BZ_TOPIC_WA_INBOUND_DLQ, &blazz__v1__dead_letter__descriptor},
    {BZ_TOPIC_CHAT_SYNC_DLQ, &blazz__v1__dead_letter__descriptor},
    {BZ_TOPIC_WEBHOOK_DLQ, &blazz__v1__dead_letter__descriptor},
    {BZ_TOPIC_CAMPAIGN_DLQ, &blazz__v1__dead_letter__descriptor},
    {BZ_TOPIC_CLEANUP_DLQ, &blazz__v1__dead_letter__descriptor},
    {BZ_TOPIC_OUTBOX_DLQ, &blazz__v1__dead_letter__descriptor},
    {BZ_TOPIC_WA_OUTBOUND_DLQ, &blazz__v1__dead_letter__descriptor},
};

const ProtobufCMessageDescriptor *bz_ctl_topic_message_type(const char *base)
{
    bz_topic t;
    if (bz_topic_lookup(base, &t, NULL) != BZ_OK)
        return NULL;
    for (size_t i = 0; i < sizeof topic_types / sizeof topic_types[0]; i++)
        if (topic_types[i].topic == t)
            return topic_types[i].type;
    return NULL;
}

const char *bz_ctl_topic_base_of(const char *topic)
{
    const char *best = NULL;
    size_t len = strlen(topic);
    for (bz_topic t = 0; t < BZ_TOPIC_COUNT; t++) {
        const char *base = bz_topic_base(t);
        size_t blen = strlen(base);
        if (blen <= len && strcmp(topic + len - blen, base) == 0 &&
            (!best || blen > strlen(best)))
            best = base;
    }
    return best;
}
