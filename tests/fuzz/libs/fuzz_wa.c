/*
 * fuzz_wa.c - the WhatsApp parsers that see untrusted bytes (libs/wa): phone
 * normalization, JID canonicalization, the base64 decoder and the Standard
 * Webhooks signature header; every input goes through all four.
 *
 * Beyond "does not crash", it checks the properties callers rely on: an
 * accepted phone is canonical E.164 and normalizes to itself; an accepted JID
 * canonicalizes to itself with the same kind, and a user JID maps to a phone
 * and back; decoded base64 re-encodes to the same text; a random signature
 * header never verifies. Accepted means the bytes were a phone or a JID.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_target.h"
#include "wa/jid.h"
#include "wa/phone.h"
#include "wa/signature.h"

static int fuzz_phone(const char *data, size_t size)
{
    char out[BZ_PHONE_E164_SIZE], again[BZ_PHONE_E164_SIZE];
    if (bz_phone_normalize_n(data, size, "62", out, sizeof out, NULL) != BZ_OK)
        return 0;
    BZ_FUZZ_CHECK(bz_phone_is_e164(out));
    BZ_FUZZ_CHECK(bz_phone_normalize(out, NULL, again, sizeof again, NULL) == BZ_OK);
    BZ_FUZZ_CHECK(strcmp(out, again) == 0);
    return 1;
}

static int fuzz_jid(const char *data, size_t size)
{
    char out[BZ_JID_SIZE], again[BZ_JID_SIZE], phone[BZ_PHONE_E164_SIZE], back[BZ_JID_SIZE];
    bz_jid_kind kind, kind_again;
    if (bz_jid_canonicalize_n(data, size, out, sizeof out, &kind, NULL) != BZ_OK)
        return 0;
    BZ_FUZZ_CHECK(bz_jid_canonicalize(out, again, sizeof again, &kind_again, NULL) == BZ_OK);
    BZ_FUZZ_CHECK(strcmp(out, again) == 0 && kind == kind_again);
    BZ_FUZZ_CHECK(bz_jid_is_group(out) == (kind == BZ_JID_GROUP));
    if (kind != BZ_JID_USER)
        return 1;
    BZ_FUZZ_CHECK(bz_jid_to_phone(out, phone, sizeof phone, NULL) == BZ_OK);
    BZ_FUZZ_CHECK(bz_jid_from_phone(phone, back, sizeof back, NULL) == BZ_OK);
    BZ_FUZZ_CHECK(strcmp(out, back) == 0);
    return 1;
}

static void fuzz_base64(const char *data, size_t size)
{
    unsigned char bytes[256];
    char text[BZ_BASE64_ENCODED_SIZE(sizeof bytes)];
    size_t n;
    if (bz_base64_decode(data, size, bytes, sizeof bytes, &n, NULL) != BZ_OK)
        return;
    BZ_FUZZ_CHECK(bz_base64_encode(bytes, n, text, sizeof text, NULL) == BZ_OK);
    BZ_FUZZ_CHECK(strlen(text) == size && memcmp(text, data, size) == 0);
}

static void fuzz_stdwebhooks_header(const char *data, size_t size)
{
    char header[512];
    bz_fuzz_text(data, size, header, sizeof header);
    /* Random headers must never verify against a fixed secret. */
    BZ_FUZZ_CHECK(bz_stdwebhooks_verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_1", "1000",
                                        "{}", 2, header, 1000, 0, NULL) != BZ_OK);
}

static int fuzz_wa(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    int phone = fuzz_phone(text, size);
    int jid = fuzz_jid(text, size);
    fuzz_base64(text, size);
    fuzz_stdwebhooks_header(text, size);
    return phone || jid ? BZ_FUZZ_ACCEPTED : BZ_FUZZ_REJECTED;
}

static const bz_fuzz_expect expect[] = {
    {"phone_national", BZ_FUZZ_ACCEPTED},
    {"jid_group", BZ_FUZZ_ACCEPTED},
    {"not_a_phone", BZ_FUZZ_REJECTED},
    {NULL, 0},
};

BZ_FUZZ_TARGET_EXPECTING(fuzz_wa, expect)
