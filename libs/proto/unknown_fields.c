/*
 * unknown_fields.c - drop unknown fields from a decoded message tree (see
 * unknown_fields.h).
 *
 * The walk reads sub-message pointers at their descriptor offsets: a
 * repeated field is an array of n_<field> pointers (quantifier_offset), a
 * oneof member is only read when the oneof's case slot names it (the
 * members share storage), any other message field is a pointer that may be
 * NULL. Each unknown field's data and the array holding them were allocated
 * separately by protobuf-c's unpack, so both are freed.
 */
#include "proto/unknown_fields.h"

#include <stdint.h>
#include <stdlib.h>

static void drop_own_unknown_fields(ProtobufCMessage *msg)
{
    for (unsigned i = 0; i < msg->n_unknown_fields; i++)
        free(msg->unknown_fields[i].data);
    free(msg->unknown_fields);
    msg->unknown_fields = NULL;
    msg->n_unknown_fields = 0;
}

static void drop_in_message_field(const ProtobufCFieldDescriptor *f, char *base)
{
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        size_t n = *(const size_t *)(base + f->quantifier_offset);
        ProtobufCMessage **items = *(ProtobufCMessage ***)(base + f->offset);
        for (size_t i = 0; i < n; i++)
            bz_proto_drop_unknown_fields(items[i]);
        return;
    }
    if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
        *(const uint32_t *)(base + f->quantifier_offset) != f->id)
        return;
    bz_proto_drop_unknown_fields(*(ProtobufCMessage **)(base + f->offset));
}

void bz_proto_drop_unknown_fields(ProtobufCMessage *msg)
{
    if (!msg)
        return;
    drop_own_unknown_fields(msg);
    const ProtobufCMessageDescriptor *type = msg->descriptor;
    for (unsigned i = 0; i < type->n_fields; i++)
        if (type->fields[i].type == PROTOBUF_C_TYPE_MESSAGE)
            drop_in_message_field(&type->fields[i], (char *)msg);
}
