/*
 * fuzz_ingest_meta.c - ingest's Meta (WhatsApp Cloud API) notification path,
 * from raw bytes through normalization of each event, with the properties of
 * fuzz_ingest.h.
 */
#include "fuzz_ingest.h"

static const bz_fuzz_expect expect[] = {
    {"two_messages_status.json", BZ_FUZZ_ACCEPTED},
    {"all_types.json", BZ_FUZZ_ACCEPTED},
    {"template_notices.json", BZ_FUZZ_ACCEPTED},
    {"account_notices.json", BZ_FUZZ_ACCEPTED},
    {"not_a_notification.json", BZ_FUZZ_REJECTED},
    {NULL, 0},
};

BZ_FUZZ_TARGET_EXPECTING(fuzz_ingest_meta, expect)
