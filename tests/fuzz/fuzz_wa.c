/*
 * fuzz_wa.c - libFuzzer target for the WhatsApp parsers that see untrusted
 * bytes: phone normalization, JID canonicalization, the base64 decoder and
 * the Standard Webhooks signature header.
 *
 * Beyond "does not crash", it checks the properties callers rely on: an
 * accepted phone is canonical E.164 and normalizes to itself; an accepted JID
 * canonicalizes to itself with the same kind, and a user JID maps to a phone
 * and back; decoded base64 re-encodes to the same text. Not part of the
 * Makefile; build by hand:
 *   clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
 *     -Ilibs tests/fuzz/fuzz_wa.c libs/wa/phone.c libs/wa/jid.c libs/wa/signature.c \
 *     libs/core/status.c -lcrypto -o fuzz_wa
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wa/jid.h"
#include "wa/phone.h"
#include "wa/signature.h"

#define CHECK(cond)                                                                               \
    do {                                                                                          \
        if (!(cond))                                                                              \
            abort();                                                                              \
    } while (0)

static void fuzz_phone(const char *data, size_t size)
{
    char out[BZ_PHONE_E164_SIZE], again[BZ_PHONE_E164_SIZE];
    if (bz_phone_normalize_n(data, size, "62", out, sizeof out, NULL) != BZ_OK)
        return;
    CHECK(bz_phone_is_e164(out));
    CHECK(bz_phone_normalize(out, NULL, again, sizeof again, NULL) == BZ_OK);
    CHECK(strcmp(out, again) == 0);
}

static void fuzz_jid(const char *data, size_t size)
{
    char out[BZ_JID_SIZE], again[BZ_JID_SIZE], phone[BZ_PHONE_E164_SIZE], back[BZ_JID_SIZE];
    bz_jid_kind kind, kind_again;
    if (bz_jid_canonicalize_n(data, size, out, sizeof out, &kind, NULL) != BZ_OK)
        return;
    CHECK(bz_jid_canonicalize(out, again, sizeof again, &kind_again, NULL) == BZ_OK);
    CHECK(strcmp(out, again) == 0 && kind == kind_again);
    CHECK(bz_jid_is_group(out) == (kind == BZ_JID_GROUP));
    if (kind != BZ_JID_USER)
        return;
    CHECK(bz_jid_to_phone(out, phone, sizeof phone, NULL) == BZ_OK);
    CHECK(bz_jid_from_phone(phone, back, sizeof back, NULL) == BZ_OK);
    CHECK(strcmp(out, back) == 0);
}

static void fuzz_base64(const char *data, size_t size)
{
    unsigned char bytes[256];
    char text[BZ_BASE64_ENCODED_SIZE(sizeof bytes)];
    size_t n;
    if (bz_base64_decode(data, size, bytes, sizeof bytes, &n, NULL) != BZ_OK)
        return;
    CHECK(bz_base64_encode(bytes, n, text, sizeof text, NULL) == BZ_OK);
    CHECK(strlen(text) == size && memcmp(text, data, size) == 0);
}

static void fuzz_stdwebhooks_header(const char *data, size_t size)
{
    char header[512];
    if (size >= sizeof header)
        size = sizeof header - 1;
    memcpy(header, data, size);
    header[size] = '\0';
    /* Random headers must never verify against a fixed secret. */
    CHECK(bz_stdwebhooks_verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_1", "1000", "{}", 2,
                                header, 1000, 0, NULL) != BZ_OK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    fuzz_phone(text, size);
    fuzz_jid(text, size);
    fuzz_base64(text, size);
    fuzz_stdwebhooks_header(text, size);
    return 0;
}
