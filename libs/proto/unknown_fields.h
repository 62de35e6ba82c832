/*
 * unknown_fields.h - forget the fields a decoded protobuf-c message carried
 * that its descriptor does not know.
 *
 * protobuf-c keeps every unrecognised field of a message it unpacks in
 * unknown_fields and writes them back out when the message is packed. A
 * service that re-publishes a message it decoded (ingest: InboundEvent into
 * chat.sync) would so forward bytes it never checked, and protobuf-c itself
 * can produce output it then refuses to read: a field numbered 0 written as
 * the two-byte tag `81 00` passes unpack (which checks only the tag's first
 * byte), is kept as unknown, and is re-packed as the one-byte tag `01` that
 * the next unpack rejects.
 * bz_proto_drop_unknown_fields walks the whole message tree through the
 * descriptors (sub-messages, repeated ones, the set member of a oneof) and
 * frees every unknown field the way protobuf_c_message_free_unpacked does.
 */
#ifndef BZ_PROTO_UNKNOWN_FIELDS_H
#define BZ_PROTO_UNKNOWN_FIELDS_H

#include <protobuf-c/protobuf-c.h>

/* Free the unknown fields of msg and of every message below it. msg must
 * have been unpacked with the default allocator (NULL), which is what frees
 * them. NULL is a no-op. */
void bz_proto_drop_unknown_fields(ProtobufCMessage *msg);

#endif
