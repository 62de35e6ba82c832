/*
 * pbjson.h - any protobuf-c message as JSON, and which message a topic carries.
 *
 * bz_ctl_pb_to_json walks a message through its protobuf-c descriptor, so it
 * works for every blazz.v1 message without per-type code. The output follows
 * the proto3 JSON mapping closely enough for people and jq: field names as in
 * the .proto file (snake_case), default values omitted, enums by value name
 * (unknown numbers as integers), bytes as base64, 64-bit integers as JSON
 * numbers (uint64 beyond INT64_MAX as a decimal string), NaN and infinities
 * as "NaN", "Infinity", "-Infinity", the set member of a oneof only.
 *
 * bz_ctl_topic_message_type maps a topic base name to the message its values
 * are (proto/README.md "Topic -> message"), so tools can decode a record
 * knowing only where it came from.
 */
#ifndef BZ_CTL_PBJSON_H
#define BZ_CTL_PBJSON_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

/* The JSON form of msg: a new object the caller owns (json_decref), or NULL
 * when out of memory. */
json_t *bz_ctl_pb_to_json(const ProtobufCMessage *msg);

/* Decode data as a `type` message and return its JSON form (caller owns),
 * or NULL when the bytes are not such a message. */
json_t *bz_ctl_pb_decode_json(const ProtobufCMessageDescriptor *type, const uint8_t *data,
                          size_t len);

/* The message type carried by topic base name base ("chat.sync" ->
 * SyncCommand), or NULL for a name outside the catalogue. Static data. */
const ProtobufCMessageDescriptor *bz_ctl_topic_message_type(const char *base);

/* The catalogue base name that the full topic name `topic` ends with, once
 * any deployment prefix is taken off ("staging.chat.sync" -> "chat.sync"),
 * or NULL when none does. Returns a static string. */
const char *bz_ctl_topic_base_of(const char *topic);

/* base64 of data (standard alphabet, padded) as a new JSON string, or NULL
 * when out of memory. */
json_t *bz_ctl_json_base64(const uint8_t *data, size_t len);

#endif
