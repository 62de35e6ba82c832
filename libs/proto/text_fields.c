/*
 * text_fields.c - find a string field that is not UTF-8 (see
 * text_fields.h). A field's storage is read at its descriptor offset: a
 * repeated field is an array of n_<field> values (quantifier_offset), a
 * oneof member only when the oneof's case slot names it.
 */
#include "proto/text_fields.h"

#include <stdint.h>
#include <string.h>

#include "core/utf8.h"

static const char *first_in_value(const ProtobufCFieldDescriptor *f, const void *value)
{
    if (f->type == PROTOBUF_C_TYPE_STRING) {
        const char *s = *(const char *const *)value;
        return s && !bz_utf8_valid(s, strlen(s)) ? f->name : NULL;
    }
    return bz_proto_first_non_utf8(*(const ProtobufCMessage *const *)value);
}

static const char *first_in_field(const ProtobufCFieldDescriptor *f, const char *base)
{
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        size_t n = *(const size_t *)(base + f->quantifier_offset);
        const char *items = *(const char *const *)(base + f->offset);
        for (size_t i = 0; i < n; i++) {
            const char *bad = first_in_value(f, items + i * sizeof(void *));
            if (bad)
                return bad;
        }
        return NULL;
    }
    if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
        *(const uint32_t *)(base + f->quantifier_offset) != f->id)
        return NULL;
    return first_in_value(f, base + f->offset);
}

const char *bz_proto_first_non_utf8(const ProtobufCMessage *msg)
{
    if (!msg)
        return NULL;
    const ProtobufCMessageDescriptor *type = msg->descriptor;
    for (unsigned i = 0; i < type->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &type->fields[i];
        if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        const char *bad = first_in_field(f, (const char *)msg);
        if (bad)
            return bad;
    }
    return NULL;
}
