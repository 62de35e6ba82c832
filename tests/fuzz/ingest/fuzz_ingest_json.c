/*
 * fuzz_ingest_json.c - ingest's gateway JSON path, from raw bytes through
 * normalization, with the properties of fuzz_ingest.h. The replay also pins
 * the hand-written seeds: the well-formed examples are accepted, the broken
 * ones rejected.
 */
#include "fuzz_ingest.h"

static const bz_fuzz_expect expect[] = {
    {"private_message.json", BZ_FUZZ_ACCEPTED}, {"group_message.json", BZ_FUZZ_ACCEPTED},
    {"media_message.json", BZ_FUZZ_ACCEPTED},   {"location_lid.json", BZ_FUZZ_ACCEPTED},
    {"receipt.json", BZ_FUZZ_ACCEPTED},         {"receipt_failed.json", BZ_FUZZ_ACCEPTED},
    {"session_status.json", BZ_FUZZ_ACCEPTED},  {"history.json", BZ_FUZZ_ACCEPTED},
    {"group_update.json", BZ_FUZZ_ACCEPTED},    {"unicode.json", BZ_FUZZ_ACCEPTED},
    {"bad_phone.json", BZ_FUZZ_REJECTED},       {"bad_json.json", BZ_FUZZ_REJECTED},
    {"wrong_types.json", BZ_FUZZ_REJECTED},     {"contact_mapping.json", BZ_FUZZ_ACCEPTED},
    {"contact_mapping_no_phone.json", BZ_FUZZ_REJECTED}, {NULL, 0},
};

BZ_FUZZ_TARGET_EXPECTING(fuzz_ingest_json, expect)
