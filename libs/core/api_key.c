/*
 * api_key.c - generating, parsing and checking API keys (see api_key.h).
 * Randomness from getrandom(2); the id's characters are drawn without
 * modulo bias (bytes >= 252 are redrawn).
 */
#include "api_key.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

static const char id_chars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static bz_status random_bytes(uint8_t *out, size_t n, bz_error *err)
{
    if (getrandom(out, n, 0) != (ssize_t)n)
        return bz_fail(err, BZ_ERR_IO, "generate API key: getrandom: %s", strerror(errno));
    return BZ_OK;
}

static void hash_secret(const char *secret, uint8_t hash[BZ_API_KEY_HASH_LEN])
{
    unsigned int len = 0;
    EVP_Digest(secret, strlen(secret), hash, &len, EVP_sha256(), NULL);
}

static bz_status make_id(char id[BZ_API_KEY_ID_LEN + 1], bz_error *err)
{
    size_t n = 0;
    while (n < BZ_API_KEY_ID_LEN) {
        uint8_t b[32];
        bz_status st = random_bytes(b, sizeof b, err);
        if (st != BZ_OK)
            return st;
        for (size_t i = 0; i < sizeof b && n < BZ_API_KEY_ID_LEN; i++)
            if (b[i] < 252) /* 252 = 7 * 36 */
                id[n++] = id_chars[b[i] % 36];
    }
    id[n] = '\0';
    return BZ_OK;
}

/* 32 random bytes as 43 characters of unpadded base64url. */
static bz_status make_secret(char secret[BZ_API_KEY_SECRET_LEN + 1], bz_error *err)
{
    uint8_t b[33] = {0}; /* 32 random bytes, padded to whole groups of 3 */
    bz_status st = random_bytes(b, 32, err);
    if (st != BZ_OK)
        return st;
    size_t o = 0;
    for (size_t i = 0; i < sizeof b; i += 3) {
        uint32_t v = (uint32_t)b[i] << 16 | (uint32_t)b[i + 1] << 8 | b[i + 2];
        for (int k = 3; k >= 0 && o < BZ_API_KEY_SECRET_LEN; k--)
            secret[o++] = b64url[(v >> (6 * k)) & 63];
    }
    secret[o] = '\0';
    OPENSSL_cleanse(b, sizeof b);
    return BZ_OK;
}

bz_status bz_api_key_generate(char key[BZ_API_KEY_SIZE], char key_id[BZ_API_KEY_ID_LEN + 1],
                              uint8_t hash[BZ_API_KEY_HASH_LEN], bz_error *err)
{
    char secret[BZ_API_KEY_SECRET_LEN + 1];
    bz_status st = make_id(key_id, err);
    if (st == BZ_OK)
        st = make_secret(secret, err);
    if (st == BZ_OK) {
        hash_secret(secret, hash);
        snprintf(key, BZ_API_KEY_SIZE, "bzk_%s_%s", key_id, secret);
    }
    OPENSSL_cleanse(secret, sizeof secret);
    return st;
}

static bool all_of(const char *s, size_t n, const char *alphabet)
{
    for (size_t i = 0; i < n; i++)
        if (!s[i] || !strchr(alphabet, s[i]))
            return false;
    return true;
}

bool bz_api_key_id_valid(const char *id, size_t len)
{
    return len == BZ_API_KEY_ID_LEN && all_of(id, len, id_chars);
}

bool bz_api_key_parse(const char *key, char key_id[BZ_API_KEY_ID_LEN + 1],
                      uint8_t hash[BZ_API_KEY_HASH_LEN])
{
    if (!key || strlen(key) != BZ_API_KEY_SIZE - 1 || strncmp(key, "bzk_", 4) != 0 ||
        key[4 + BZ_API_KEY_ID_LEN] != '_')
        return false;
    const char *id = key + 4, *secret = id + BZ_API_KEY_ID_LEN + 1;
    if (!all_of(id, BZ_API_KEY_ID_LEN, id_chars) ||
        !all_of(secret, BZ_API_KEY_SECRET_LEN, b64url))
        return false;
    memcpy(key_id, id, BZ_API_KEY_ID_LEN);
    key_id[BZ_API_KEY_ID_LEN] = '\0';
    hash_secret(secret, hash);
    return true;
}

bool bz_api_key_matches(const uint8_t a[BZ_API_KEY_HASH_LEN], const uint8_t b[BZ_API_KEY_HASH_LEN])
{
    return CRYPTO_memcmp(a, b, BZ_API_KEY_HASH_LEN) == 0;
}
