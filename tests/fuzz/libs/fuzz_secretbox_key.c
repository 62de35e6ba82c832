/*
 * fuzz_secretbox_key.c - the parser of the key that encrypts webhook secrets
 * at rest (bz_secretbox_key_parse, libs/core/secretbox.c), fed the text a
 * configuration value or environment variable holds.
 *
 * Properties, against other decoders (libs/wa's hex; base64 written here,
 * as libs/wa's refuses the non-zero padding bits OpenSSL, and so the key
 * parser, accept): after trimming surrounding whitespace, the text is
 * accepted exactly when it is 64 hex digits (either case) or 44 characters
 * of standard base64 encoding 32 bytes (43 alphabet characters and one '='),
 * the key is those 32 bytes and holds at least 16 distinct byte values
 * (weak keys are refused), and a refusal is BZ_ERR_CONFIG; an accepted key
 * seals and opens a secret. Accepted means the key parsed.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/secretbox.h"
#include "fuzz_target.h"
#include "wa/signature.h"

static int base64_digit(int c)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = c ? strchr(alphabet, c) : NULL;
    return p ? (int)(p - alphabet) : -1;
}

/* The key text (s, n) stands for, or 0 when it is not a key. */
static int expected_key(const char *s, size_t n, uint8_t key[BZ_SECRETBOX_KEY_LEN])
{
    size_t got;
    if (n == 64)
        return bz_hex_decode(s, n, key, BZ_SECRETBOX_KEY_LEN, &got, NULL) == BZ_OK;
    if (n != 44 || s[43] != '=')
        return 0;
    uint8_t bytes[33];
    uint32_t acc = 0;
    int bits = 0;
    size_t out = 0;
    for (size_t i = 0; i < 43; i++) {
        int d = base64_digit((unsigned char)s[i]);
        if (d < 0)
            return 0;
        acc = acc << 6 | (uint32_t)d;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            bytes[out++] = (uint8_t)(acc >> bits);
        }
    }
    memcpy(key, bytes, BZ_SECRETBOX_KEY_LEN);
    return 1;
}

static int is_strong(const uint8_t key[BZ_SECRETBOX_KEY_LEN])
{
    int distinct = 0;
    for (int v = 0; v < 256; v++)
        distinct += memchr(key, v, BZ_SECRETBOX_KEY_LEN) != NULL;
    return distinct >= 16;
}

static void check_key_works(const uint8_t key[BZ_SECRETBOX_KEY_LEN])
{
    static const char secret[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    uint8_t nonce[BZ_SECRETBOX_NONCE_LEN], *sealed;
    size_t sealed_len, plain_len;
    char *plain;
    BZ_FUZZ_CHECK(bz_secretbox_seal(key, secret, sizeof secret - 1, "7", 1, nonce, &sealed,
                                    &sealed_len, NULL) == BZ_OK);
    BZ_FUZZ_CHECK(bz_secretbox_open(key, sealed, sealed_len, nonce, "7", 1, &plain, &plain_len,
                                    NULL) == BZ_OK);
    BZ_FUZZ_CHECK(plain_len == sizeof secret - 1 && strcmp(plain, secret) == 0);
    OPENSSL_cleanse(plain, plain_len);
    free(plain);
    free(sealed);
}

static int fuzz_secretbox_key(const uint8_t *data, size_t size)
{
    char text[256];
    bz_fuzz_text(data, size, text, sizeof text);
    const char *s = text;
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    uint8_t key[BZ_SECRETBOX_KEY_LEN], want[BZ_SECRETBOX_KEY_LEN];
    bz_error err;
    bz_status st = bz_secretbox_key_parse(text, key, &err);
    int valid = expected_key(s, n, want) && is_strong(want);
    BZ_FUZZ_CHECK((st == BZ_OK) == valid);
    if (st != BZ_OK) {
        BZ_FUZZ_CHECK(st == BZ_ERR_CONFIG);
        return BZ_FUZZ_REJECTED;
    }
    BZ_FUZZ_CHECK(memcmp(key, want, sizeof key) == 0);
    check_key_works(key);
    return BZ_FUZZ_ACCEPTED;
}

static const bz_fuzz_expect expect[] = {
    {"hex", BZ_FUZZ_ACCEPTED},
    {"base64", BZ_FUZZ_ACCEPTED},
    {"hex_short", BZ_FUZZ_REJECTED},
    {"base64_33_bytes", BZ_FUZZ_REJECTED},
    {"base64_inner_padding", BZ_FUZZ_REJECTED},
    {"hex_all_zero", BZ_FUZZ_REJECTED},
    {"hex_pattern", BZ_FUZZ_REJECTED},
    {NULL, 0},
};

BZ_FUZZ_TARGET_EXPECTING(fuzz_secretbox_key, expect)
