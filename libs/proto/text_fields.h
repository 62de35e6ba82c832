/*
 * text_fields.h - is every string of a protobuf-c message tree UTF-8?
 *
 * proto3 says string fields hold UTF-8, but protobuf-c does not check it
 * when it unpacks. A service that turns a decoded message into JSON
 * (meta-sender: a SendMessage into a Cloud API request) must check first:
 * jansson refuses a string that is not UTF-8, and the member holding it
 * would silently be missing from the document. The walk follows the
 * descriptors like unknown_fields.c: sub-messages, repeated fields, the
 * set member of a oneof.
 */
#ifndef BZ_PROTO_TEXT_FIELDS_H
#define BZ_PROTO_TEXT_FIELDS_H

#include <protobuf-c/protobuf-c.h>

/* The name of the first string field in msg's tree that is not well-formed
 * UTF-8 (core/utf8.h), NULL when all are (or msg is NULL). */
const char *bz_proto_first_non_utf8(const ProtobufCMessage *msg);

#endif
