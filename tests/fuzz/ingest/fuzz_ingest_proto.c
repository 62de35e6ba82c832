/*
 * fuzz_ingest_proto.c - ingest's protobuf path (HTTP application/x-protobuf
 * and wa.inbound.raw), from raw bytes through normalization, with the
 * properties of fuzz_ingest.h. unknown_field_zero.pb is the event that,
 * before ingest dropped unknown fields, normalized into bytes protobuf-c
 * could not unpack. Its history batch carries fixed64 values under field
 * numbers 14 and 15, unknown to HistorySyncBatch: the fuzzer had put them
 * under 6 and 8, which the contract has since defined (last, error), and a
 * known field of another wire type is a malformed message.
 */
#include "fuzz_ingest.h"

static const bz_fuzz_expect expect[] = {
    {"private_message.pb", BZ_FUZZ_ACCEPTED},
    {"group_message.pb", BZ_FUZZ_ACCEPTED},
    {"unknown_field_zero.pb", BZ_FUZZ_ACCEPTED},
    {"bad_phone.pb", BZ_FUZZ_REJECTED},
    {"garbage.bin", BZ_FUZZ_REJECTED},
    {NULL, 0},
};

BZ_FUZZ_TARGET_EXPECTING(fuzz_ingest_proto, expect)
