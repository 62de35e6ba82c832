/*
 * secretbox.c - AES-256-GCM sealing of small secrets (see secretbox.h),
 * on OpenSSL's EVP interface.
 */
#include "secretbox.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "hex.h"
#include "weak_secret.h"

static bz_status parse_hex_key(const char *s, uint8_t *key, bz_error *err)
{
    size_t len;
    if (bz_hex_decode(s, 2 * BZ_SECRETBOX_KEY_LEN, key, BZ_SECRETBOX_KEY_LEN, &len, NULL) != BZ_OK)
        return bz_fail(err, BZ_ERR_CONFIG, "secret key: not valid hex");
    return BZ_OK;
}

static int is_base64_digit(int c)
{
    return isalnum(c) || c == '+' || c == '/';
}

static bz_status parse_base64_key(const char *s, uint8_t *key, bz_error *err)
{
    /* 44 characters decode to 33 bytes including the padding's zero byte. */
    uint8_t buf[36];
    if (s[43] != '=' || s[42] == '=')
        return bz_fail(err, BZ_ERR_CONFIG, "secret key: base64 must encode exactly 32 bytes");
    /* EVP_DecodeBlock reads a '=' inside the text as 'A', so a mangled key
     * would decode to another key instead of being refused. */
    for (size_t i = 0; i < 43; i++)
        if (!is_base64_digit((unsigned char)s[i]))
            return bz_fail(err, BZ_ERR_CONFIG, "secret key: not valid base64");
    if (EVP_DecodeBlock(buf, (const unsigned char *)s, 44) != 33) {
        OPENSSL_cleanse(buf, sizeof buf);
        return bz_fail(err, BZ_ERR_CONFIG, "secret key: not valid base64");
    }
    memcpy(key, buf, BZ_SECRETBOX_KEY_LEN);
    OPENSSL_cleanse(buf, sizeof buf);
    return BZ_OK;
}

static bz_status parse_key_text(const char *text, size_t len, uint8_t key[BZ_SECRETBOX_KEY_LEN],
                                bz_error *err)
{
    if (len == 2 * BZ_SECRETBOX_KEY_LEN)
        return parse_hex_key(text, key, err);
    if (len == 44)
        return parse_base64_key(text, key, err);
    return bz_fail(err, BZ_ERR_CONFIG,
                   "secret key: expected 64 hex digits or 44 base64 characters (32 bytes), "
                   "got %zu characters", len);
}

bz_status bz_secretbox_key_parse(const char *text, uint8_t key[BZ_SECRETBOX_KEY_LEN],
                                 bz_error *err)
{
    if (!text)
        return bz_fail(err, BZ_ERR_CONFIG, "secret key: not set");
    while (isspace((unsigned char)*text))
        text++;
    size_t len = strlen(text);
    while (len > 0 && isspace((unsigned char)text[len - 1]))
        len--;
    bz_status st = parse_key_text(text, len, key, err);
    if (st == BZ_OK)
        st = bz_secret_refuse_weak_key("secret key", key, BZ_SECRETBOX_KEY_LEN, err);
    if (st != BZ_OK)
        OPENSSL_cleanse(key, BZ_SECRETBOX_KEY_LEN);
    return st;
}

bz_status bz_secretbox_seal(const uint8_t key[BZ_SECRETBOX_KEY_LEN], const void *plain,
                            size_t len, const void *aad, size_t aad_len,
                            uint8_t nonce[BZ_SECRETBOX_NONCE_LEN], uint8_t **out,
                            size_t *out_len, bz_error *err)
{
    if (RAND_bytes(nonce, BZ_SECRETBOX_NONCE_LEN) != 1)
        return bz_fail(err, BZ_ERR_IO, "seal secret: no random nonce available");
    uint8_t *buf = malloc(len + BZ_SECRETBOX_TAG_LEN);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, fin = 0, ok = buf && ctx;
    ok = ok && EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce) == 1;
    ok = ok && (!aad || EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)aad_len) == 1);
    ok = ok && EVP_EncryptUpdate(ctx, buf, &n, plain, (int)len) == 1;
    ok = ok && EVP_EncryptFinal_ex(ctx, buf + n, &fin) == 1;
    ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, BZ_SECRETBOX_TAG_LEN,
                                   buf + n + fin) == 1;
    EVP_CIPHER_CTX_free(ctx);
    if (!ok) {
        free(buf);
        return bz_fail(err, buf ? BZ_ERR_INTERNAL : BZ_ERR_NOMEM, "seal secret: AES-256-GCM failed");
    }
    *out = buf;
    *out_len = (size_t)(n + fin) + BZ_SECRETBOX_TAG_LEN;
    return BZ_OK;
}

bz_status bz_secretbox_open(const uint8_t key[BZ_SECRETBOX_KEY_LEN], const uint8_t *sealed,
                            size_t sealed_len, const uint8_t nonce[BZ_SECRETBOX_NONCE_LEN],
                            const void *aad, size_t aad_len, char **out, size_t *out_len,
                            bz_error *err)
{
    if (sealed_len < BZ_SECRETBOX_TAG_LEN)
        return bz_fail(err, BZ_ERR_INVALID, "open secret: ciphertext shorter than the tag");
    size_t clen = sealed_len - BZ_SECRETBOX_TAG_LEN;
    char *buf = malloc(clen + 1);
    if (!buf)
        return bz_fail(err, BZ_ERR_NOMEM, "open secret: out of memory");
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, fin = 0, ok = ctx != NULL;
    ok = ok && EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce) == 1;
    ok = ok && (!aad || EVP_DecryptUpdate(ctx, NULL, &n, aad, (int)aad_len) == 1);
    ok = ok && EVP_DecryptUpdate(ctx, (unsigned char *)buf, &n, sealed, (int)clen) == 1;
    ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, BZ_SECRETBOX_TAG_LEN,
                                   (void *)(sealed + clen)) == 1;
    ok = ok && EVP_DecryptFinal_ex(ctx, (unsigned char *)buf + n, &fin) == 1;
    EVP_CIPHER_CTX_free(ctx);
    if (!ok) {
        OPENSSL_cleanse(buf, clen + 1);
        free(buf);
        return bz_fail(err, BZ_ERR_INVALID,
                       "open secret: authentication failed (wrong key or tampered ciphertext)");
    }
    buf[n + fin] = '\0';
    *out = buf;
    *out_len = (size_t)n + (size_t)fin;
    return BZ_OK;
}
