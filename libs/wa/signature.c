/*
 * signature.c - HMAC-SHA256 signing and constant-time verification for the
 * gateway, Meta and Standard Webhooks schemes (see signature.h).
 *
 * The MAC is computed with OpenSSL 3's EVP_MAC over a list of parts, so the
 * Standard Webhooks input "<id>.<timestamp>.<body>" is fed piecewise and the
 * body is never copied. The base64 codec is written out here rather than
 * borrowed from EVP_EncodeBlock/EVP_DecodeBlock, whose decoder counts
 * padding as output bytes and tolerates whitespace; ours decodes strictly and
 * reports the exact length (hex is core/hex.c's, as strict).
 *
 * Timing: verification first checks the candidate's shape (length and hex
 * digits: public, fixed by the scheme), so a malformed one costs no HMAC;
 * then it computes the expected digest and compares the two fixed-length
 * buffers with CRYPTO_memcmp, whose time does not depend on where they
 * differ. Decoded keys and
 * expected digests live on the stack and are wiped with OPENSSL_cleanse.
 */
#include "wa/signature.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define SECRET_PREFIX "whsec_"
#define META_PREFIX "sha256="
#define HEX_SIG_LEN (2 * BZ_HMAC_SHA256_LEN)
/* What the gateway scheme's derived MACs cover besides the key: never the
 * body of a request (neither is JSON nor a protobuf InboundEvent). */
#define TIMESTAMPED_LABEL "blazz-gateway-timestamped-v1"
#define KEY_ID_LABEL "blazz-gateway-key-id"
#define STDWEBHOOKS_HEADER_MAX 4096
#define TIMESTAMP_MAX_DIGITS 18

typedef struct mac_part {
    const void *p;
    size_t n;
} mac_part;

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static bz_status fail_openssl(bz_error *err, const char *what)
{
    char reason[160] = "unknown error";
    unsigned long code = ERR_get_error();
    if (code)
        ERR_error_string_n(code, reason, sizeof reason);
    ERR_clear_error();
    return bz_fail(err, BZ_ERR_INTERNAL, "hmac-sha256: %s: %s", what, reason);
}

/* HMAC-SHA256 over the concatenation of parts. */
static bz_status hmac_parts(const void *key, size_t keylen, const mac_part *parts, size_t nparts,
                            unsigned char out[BZ_HMAC_SHA256_LEN], bz_error *err)
{
    if (!key || keylen == 0)
        return bz_fail(err, BZ_ERR_CONFIG, "hmac-sha256: empty key refused");
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    size_t outlen = 0;
    bool ok = ctx && EVP_MAC_init(ctx, key, keylen, params);
    for (size_t i = 0; ok && i < nparts; i++)
        ok = parts[i].n == 0 || EVP_MAC_update(ctx, parts[i].p, parts[i].n);
    ok = ok && EVP_MAC_final(ctx, out, &outlen, BZ_HMAC_SHA256_LEN) &&
         outlen == BZ_HMAC_SHA256_LEN;
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return ok ? BZ_OK : fail_openssl(err, "EVP_MAC failed");
}

bz_status bz_hmac_sha256(const void *key, size_t keylen, const void *body, size_t bodylen,
                         unsigned char out[BZ_HMAC_SHA256_LEN], bz_error *err)
{
    mac_part part = {body, bodylen};
    return hmac_parts(key, keylen, &part, 1, out, err);
}

bz_status bz_hmac_sha256_hex(const void *key, size_t keylen, const void *body, size_t bodylen,
                             char out_hex[BZ_HMAC_SHA256_HEX_SIZE], bz_error *err)
{
    unsigned char mac[BZ_HMAC_SHA256_LEN];
    out_hex[0] = '\0';
    bz_status st = bz_hmac_sha256(key, keylen, body, bodylen, mac, err);
    if (st == BZ_OK)
        st = bz_hex_encode(mac, sizeof mac, out_hex, BZ_HMAC_SHA256_HEX_SIZE, err);
    OPENSSL_cleanse(mac, sizeof mac);
    return st;
}

/* ---- hex ------------------------------------------------------------------ */

/* Decode exactly 2 * n hex digits (checked to be hex) into out. */
static void hex_decode_fixed(const char *hex, unsigned char *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = bz_hex_digit_value((unsigned char)hex[2 * i]);
        int lo = bz_hex_digit_value((unsigned char)hex[2 * i + 1]);
        out[i] = (unsigned char)(hi << 4 | lo);
    }
}

/* ---- base64 --------------------------------------------------------------- */

/* The value of a base64 character, or -1 ('=' included). */
static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

bz_status bz_base64_encode(const void *in, size_t len, char *out, size_t cap, bz_error *err)
{
    const unsigned char *b = in;
    size_t need = BZ_BASE64_ENCODED_SIZE(len);
    if (!out || cap < need)
        return bz_fail(err, BZ_ERR_INTERNAL,
                       "base64 encode: output buffer too small (%zu bytes, need %zu)",
                       out ? cap : 0, need);
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        size_t left = len - i;
        unsigned long v = (unsigned long)b[i] << 16;
        if (left > 1)
            v |= (unsigned long)b[i + 1] << 8;
        if (left > 2)
            v |= b[i + 2];
        out[o++] = b64_alphabet[(v >> 18) & 63];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = left > 1 ? b64_alphabet[(v >> 6) & 63] : '=';
        out[o++] = left > 2 ? b64_alphabet[v & 63] : '=';
    }
    out[o] = '\0';
    return BZ_OK;
}

static size_t base64_padding(const char *in, size_t inlen)
{
    size_t pad = 0;
    if (inlen >= 1 && in[inlen - 1] == '=')
        pad++;
    if (inlen >= 2 && in[inlen - 2] == '=')
        pad++;
    return pad;
}

bz_status bz_base64_decode(const char *in, size_t inlen, unsigned char *out, size_t cap,
                           size_t *outlen, bz_error *err)
{
    *outlen = 0;
    if (inlen % 4 != 0)
        return bz_fail(err, BZ_ERR_INVALID, "base64 decode: length %zu is not a multiple of 4",
                       inlen);
    size_t pad = base64_padding(in, inlen);
    size_t n = inlen / 4 * 3 - pad;
    if (n > cap)
        return bz_fail(err, BZ_ERR_INVALID, "base64 decode: %zu bytes do not fit in %zu", n, cap);

    size_t chars = inlen - pad, o = 0;
    unsigned long acc = 0;
    for (size_t i = 0; i < chars; i++) {
        int v = b64_value(in[i]);
        if (v < 0)
            return bz_fail(err, BZ_ERR_INVALID, "base64 decode: invalid character at offset %zu",
                           i);
        acc = acc << 6 | (unsigned long)v;
        if (i % 4 == 3) {
            out[o++] = (unsigned char)(acc >> 16);
            out[o++] = (unsigned char)(acc >> 8);
            out[o++] = (unsigned char)acc;
            acc = 0;
        }
    }
    /* A padded group: 2 or 3 characters carry 1 or 2 bytes plus unused low
     * bits, which must be zero so that every byte string has one encoding. */
    if (pad == 2) {
        if (acc & 0x0f)
            return bz_fail(err, BZ_ERR_INVALID, "base64 decode: non-zero padding bits");
        out[o++] = (unsigned char)(acc >> 4);
    } else if (pad == 1) {
        if (acc & 0x03)
            return bz_fail(err, BZ_ERR_INVALID, "base64 decode: non-zero padding bits");
        out[o++] = (unsigned char)(acc >> 10);
        out[o++] = (unsigned char)(acc >> 2);
    }
    *outlen = o;
    return BZ_OK;
}

/* ---- gateway and Meta ----------------------------------------------------- */

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Trim ASCII whitespace around s; returns the start and sets *len. */
static const char *trim(const char *s, size_t *len)
{
    size_t n = strlen(s);
    while (n > 0 && is_space(*s)) {
        s++;
        n--;
    }
    while (n > 0 && is_space(s[n - 1]))
        n--;
    *len = n;
    return s;
}

/* Whether len characters at hex are HEX_SIG_LEN hex digits. */
static bool hex_digest_shaped(const char *hex, size_t len)
{
    if (len != HEX_SIG_LEN)
        return false;
    for (size_t i = 0; i < len; i++)
        if (bz_hex_digit_value((unsigned char)hex[i]) < 0)
            return false;
    return true;
}

/* The digest part of a Meta header value (after "sha256="), NULL when the
 * prefix is missing; *len its length. */
static const char *meta_digest(const char *header_value, size_t *len)
{
    size_t n, plen = strlen(META_PREFIX);
    const char *value = trim(header_value, &n);
    if (n < plen || strncasecmp(value, META_PREFIX, plen) != 0)
        return NULL;
    *len = n - plen;
    return value + plen;
}

bool bz_signature_hex_well_formed(const char *header_value)
{
    size_t len;
    const char *hex = header_value ? trim(header_value, &len) : NULL;
    return hex && hex_digest_shaped(hex, len);
}

bool bz_signature_meta_well_formed(const char *header_value)
{
    size_t len = 0;
    const char *hex = header_value ? meta_digest(header_value, &len) : NULL;
    return hex && hex_digest_shaped(hex, len);
}

/* The heart of both hex schemes: the candidate's shape first (public, no
 * HMAC spent on a malformed one), then hexlen hex digits at hex against the
 * HMAC of the concatenated parts, in constant time with respect to
 * content. */
static bz_status verify_hex_parts(const void *key, size_t keylen, const mac_part *parts,
                                  size_t nparts, const char *hex, size_t hexlen, bz_error *err)
{
    if (hexlen != HEX_SIG_LEN)
        return bz_fail(err, BZ_ERR_INVALID, "signature: expected %d hex digits, got %zu",
                       HEX_SIG_LEN, hexlen);
    if (!hex_digest_shaped(hex, hexlen))
        return bz_fail(err, BZ_ERR_INVALID, "signature: not a hex digest");
    unsigned char expected[BZ_HMAC_SHA256_LEN], given[BZ_HMAC_SHA256_LEN];
    bz_status st = hmac_parts(key, keylen, parts, nparts, expected, err);
    if (st != BZ_OK)
        return st;
    hex_decode_fixed(hex, given, sizeof given);
    int differ = CRYPTO_memcmp(expected, given, sizeof expected);
    OPENSSL_cleanse(expected, sizeof expected);
    if (differ)
        return bz_fail(err, BZ_ERR_INVALID, "signature: mismatch");
    return BZ_OK;
}

static bz_status verify_hex_digest(const void *key, size_t keylen, const void *body,
                                   size_t bodylen, const char *hex, size_t hexlen, bz_error *err)
{
    mac_part part = {body, bodylen};
    return verify_hex_parts(key, keylen, &part, 1, hex, hexlen, err);
}

/* The key of the timestamped mode, K = HMAC-SHA256(key, TIMESTAMPED_LABEL):
 * the plain mode's MACs are under key itself, so neither mode's MAC is ever
 * the other's, whatever the body. The caller wipes out. */
static bz_status timestamped_key(const void *key, size_t keylen,
                                 unsigned char out[BZ_HMAC_SHA256_LEN], bz_error *err)
{
    mac_part label = {TIMESTAMPED_LABEL, sizeof TIMESTAMPED_LABEL - 1};
    return hmac_parts(key, keylen, &label, 1, out, err);
}

bz_status bz_gateway_sign_timestamped(const void *key, size_t keylen, const char *timestamp,
                                      const void *body, size_t bodylen,
                                      char out_hex[BZ_HMAC_SHA256_HEX_SIZE], bz_error *err)
{
    mac_part parts[] = {{timestamp, strlen(timestamp)}, {".", 1}, {body, bodylen}};
    unsigned char k[BZ_HMAC_SHA256_LEN], mac[BZ_HMAC_SHA256_LEN];
    out_hex[0] = '\0';
    bz_status st = timestamped_key(key, keylen, k, err);
    if (st == BZ_OK)
        st = hmac_parts(k, sizeof k, parts, 3, mac, err);
    if (st == BZ_OK)
        st = bz_hex_encode(mac, sizeof mac, out_hex, BZ_HMAC_SHA256_HEX_SIZE, err);
    OPENSSL_cleanse(k, sizeof k);
    OPENSSL_cleanse(mac, sizeof mac);
    return st;
}

bz_status bz_signature_verify_timestamped(const void *key, size_t keylen, const char *timestamp,
                                          const void *body, size_t bodylen,
                                          const char *header_value, bz_error *err)
{
    if (!header_value || !timestamp)
        return bz_fail(err, BZ_ERR_INVALID, "signature: missing");
    size_t len;
    const char *hex = trim(header_value, &len);
    mac_part parts[] = {{timestamp, strlen(timestamp)}, {".", 1}, {body, bodylen}};
    unsigned char k[BZ_HMAC_SHA256_LEN];
    bz_status st = timestamped_key(key, keylen, k, err);
    if (st == BZ_OK)
        st = verify_hex_parts(k, sizeof k, parts, 3, hex, len, err);
    OPENSSL_cleanse(k, sizeof k);
    return st;
}

bz_status bz_gateway_key_id(const void *key, size_t keylen, char out[BZ_GATEWAY_KEY_ID_LEN + 1],
                            bz_error *err)
{
    mac_part label = {KEY_ID_LABEL, sizeof KEY_ID_LABEL - 1};
    unsigned char mac[BZ_HMAC_SHA256_LEN];
    out[0] = '\0';
    bz_status st = hmac_parts(key, keylen, &label, 1, mac, err);
    if (st == BZ_OK)
        st = bz_hex_encode(mac, BZ_GATEWAY_KEY_ID_LEN / 2, out, BZ_GATEWAY_KEY_ID_LEN + 1, err);
    OPENSSL_cleanse(mac, sizeof mac);
    return st;
}

bz_status bz_gateway_sign_request(const void *key, size_t keylen, long long unix_s,
                                  const void *body, size_t bodylen, bz_gateway_signature *out,
                                  bz_error *err)
{
    snprintf(out->timestamp, sizeof out->timestamp, "%lld", unix_s);
    bz_status st = bz_gateway_key_id(key, keylen, out->key_id, err);
    if (st == BZ_OK)
        st = bz_gateway_sign_timestamped(key, keylen, out->timestamp, body, bodylen,
                                         out->signature, err);
    return st;
}

bz_status bz_gateway_media_statement(bz_gateway_media_act act, const char *session,
                                     const char *subject, char *out, size_t cap, size_t *len,
                                     bz_error *err)
{
    const char *prefix = act == BZ_GATEWAY_MEDIA_READ ? "blazz-gateway-media-read-v1\n"
                                                      : "blazz-gateway-media-v1\n";
    int n = snprintf(out, cap, "%s%s\n%s", prefix, session, subject);
    if (n < 0 || (size_t)n >= cap)
        return bz_fail(err, BZ_ERR_INVALID, "gateway media statement: session or subject too "
                                            "long");
    *len = (size_t)n;
    return BZ_OK;
}

bool bz_gateway_key_id_well_formed(const char *text)
{
    if (!text || strlen(text) != BZ_GATEWAY_KEY_ID_LEN)
        return false;
    for (size_t i = 0; i < BZ_GATEWAY_KEY_ID_LEN; i++)
        if (!((text[i] >= '0' && text[i] <= '9') || (text[i] >= 'a' && text[i] <= 'f')))
            return false;
    return true;
}

bz_status bz_signature_verify_hex(const void *key, size_t keylen, const void *body, size_t bodylen,
                                  const char *header_value, bz_error *err)
{
    if (!header_value)
        return bz_fail(err, BZ_ERR_INVALID, "signature: missing");
    size_t len;
    const char *hex = trim(header_value, &len);
    return verify_hex_digest(key, keylen, body, bodylen, hex, len, err);
}

bz_status bz_signature_verify_meta(const void *key, size_t keylen, const void *body,
                                   size_t bodylen, const char *header_value, bz_error *err)
{
    if (!header_value)
        return bz_fail(err, BZ_ERR_INVALID, "signature: missing");
    size_t len = 0;
    const char *hex = meta_digest(header_value, &len);
    if (!hex)
        return bz_fail(err, BZ_ERR_INVALID, "signature: expected 'sha256=<hex>'");
    return verify_hex_digest(key, keylen, body, bodylen, hex, len, err);
}

/* ---- Standard Webhooks ---------------------------------------------------- */

bz_status bz_stdwebhooks_secret_parse(const char *secret, unsigned char *key, size_t cap,
                                      size_t *keylen, bz_error *err)
{
    *keylen = 0;
    if (!secret)
        return bz_fail(err, BZ_ERR_CONFIG, "stdwebhooks secret: missing");
    size_t plen = strlen(SECRET_PREFIX);
    const char *b64 = strncmp(secret, SECRET_PREFIX, plen) == 0 ? secret + plen : secret;
    bz_error inner;
    if (bz_base64_decode(b64, strlen(b64), key, cap, keylen, &inner) != BZ_OK) {
        OPENSSL_cleanse(key, cap);
        return bz_fail(err, BZ_ERR_CONFIG, "stdwebhooks secret: expected whsec_<base64>: %s",
                       inner.msg);
    }
    if (*keylen == 0)
        return bz_fail(err, BZ_ERR_CONFIG, "stdwebhooks secret: empty key");
    return BZ_OK;
}

bz_status bz_stdwebhooks_new_secret(char *out, size_t cap, bz_error *err)
{
    unsigned char raw[24];
    size_t plen = strlen(SECRET_PREFIX);
    if (cap < BZ_STDWEBHOOKS_NEW_SECRET_LEN + 1)
        return bz_fail(err, BZ_ERR_INVALID, "stdwebhooks secret: %zu bytes do not hold one", cap);
    if (RAND_bytes(raw, sizeof raw) != 1)
        return bz_fail(err, BZ_ERR_IO, "stdwebhooks secret: no random bytes");
    memcpy(out, SECRET_PREFIX, plen);
    bz_status st = bz_base64_encode(raw, sizeof raw, out + plen, cap - plen, err);
    OPENSSL_cleanse(raw, sizeof raw);
    return st;
}

/* HMAC-SHA256 of "<msg_id>.<timestamp>.<body>" under an already decoded key. */
static bz_status stdwebhooks_mac(const unsigned char *key, size_t keylen, const char *msg_id,
                                 long long timestamp_s, const void *body, size_t bodylen,
                                 unsigned char mac[BZ_HMAC_SHA256_LEN], bz_error *err)
{
    char ts[24];
    int tslen = snprintf(ts, sizeof ts, "%lld", timestamp_s);
    mac_part parts[] = {{msg_id, strlen(msg_id)}, {".", 1}, {ts, (size_t)tslen}, {".", 1},
                        {body, bodylen}};
    return hmac_parts(key, keylen, parts, sizeof parts / sizeof parts[0], mac, err);
}

static bz_status check_message_id(const char *msg_id, bz_error *err)
{
    if (!msg_id || !*msg_id)
        return bz_fail(err, BZ_ERR_INVALID, "stdwebhooks: missing webhook-id");
    return BZ_OK;
}

bz_status bz_stdwebhooks_sign(const char *secret, const char *msg_id, long long timestamp_s,
                              const void *body, size_t bodylen, char *out, size_t cap,
                              bz_error *err)
{
    unsigned char mac[BZ_HMAC_SHA256_LEN];
    if (!out || cap < BZ_STDWEBHOOKS_SIG_LEN + 1)
        return bz_fail(err, BZ_ERR_INTERNAL,
                       "stdwebhooks sign: output buffer too small (%zu bytes, need %d)",
                       out ? cap : 0, BZ_STDWEBHOOKS_SIG_LEN + 1);
    out[0] = '\0';
    bz_status st = check_message_id(msg_id, err);
    if (st != BZ_OK)
        return st;
    if (timestamp_s < 0)
        return bz_fail(err, BZ_ERR_INVALID, "stdwebhooks sign: negative timestamp %lld",
                       timestamp_s);
    unsigned char key[BZ_STDWEBHOOKS_KEY_MAX];
    size_t keylen;
    if ((st = bz_stdwebhooks_secret_parse(secret, key, sizeof key, &keylen, err)) != BZ_OK)
        return st;
    st = stdwebhooks_mac(key, keylen, msg_id, timestamp_s, body, bodylen, mac, err);
    OPENSSL_cleanse(key, sizeof key);
    if (st != BZ_OK)
        return st;
    memcpy(out, "v1,", 3);
    return bz_base64_encode(mac, sizeof mac, out + 3, cap - 3, err);
}

bz_status bz_stdwebhooks_sign_all(const char *const *secrets, size_t nsecrets, const char *msg_id,
                                  long long timestamp_s, const void *body, size_t bodylen,
                                  char *out, size_t cap, bz_error *err)
{
    if (!out || cap == 0)
        return bz_fail(err, BZ_ERR_INTERNAL, "stdwebhooks sign: no output buffer");
    out[0] = '\0';
    if (nsecrets == 0)
        return bz_fail(err, BZ_ERR_CONFIG, "stdwebhooks sign: no secrets");
    size_t used = 0;
    for (size_t i = 0; i < nsecrets; i++) {
        char one[BZ_STDWEBHOOKS_SIG_LEN + 1];
        bz_status st = bz_stdwebhooks_sign(secrets[i], msg_id, timestamp_s, body, bodylen, one,
                                           sizeof one, err);
        if (st != BZ_OK) {
            out[0] = '\0';
            return err ? bz_wrap(err, "secret #%zu", i + 1) : st;
        }
        size_t need = used + (i > 0) + strlen(one) + 1;
        if (need > cap) {
            out[0] = '\0';
            return bz_fail(err, BZ_ERR_INTERNAL,
                           "stdwebhooks sign: output buffer too small (%zu bytes) for %zu signatures",
                           cap, nsecrets);
        }
        used += (size_t)snprintf(out + used, cap - used, "%s%s", i > 0 ? " " : "", one);
    }
    return BZ_OK;
}

/* Parse a webhook-timestamp value: decimal digits only, surrounding
 * whitespace ignored. */
static bz_status parse_timestamp(const char *header, long long *ts, bz_error *err)
{
    if (!header)
        return bz_fail(err, BZ_ERR_INVALID, "stdwebhooks: missing webhook-timestamp");
    size_t len;
    const char *p = trim(header, &len);
    bool ok = len > 0 && len <= TIMESTAMP_MAX_DIGITS;
    long long v = 0;
    for (size_t i = 0; ok && i < len; i++) {
        ok = p[i] >= '0' && p[i] <= '9';
        if (ok)
            v = v * 10 + (p[i] - '0');
    }
    if (!ok)
        return bz_fail(err, BZ_ERR_INVALID,
                       "stdwebhooks: webhook-timestamp is not a decimal Unix time");
    *ts = v;
    return BZ_OK;
}

static bz_status check_timestamp_fresh(long long ts, long long now_s, long long tolerance_s,
                                       bz_error *err)
{
    if (tolerance_s <= 0)
        tolerance_s = BZ_STDWEBHOOKS_TOLERANCE_S;
    /* Unsigned subtraction: the true distance always fits, any sign. */
    bool future = ts > now_s;
    unsigned long long distance = future ? (unsigned long long)ts - (unsigned long long)now_s
                                         : (unsigned long long)now_s - (unsigned long long)ts;
    if (distance > (unsigned long long)tolerance_s)
        return bz_fail(err, BZ_ERR_INVALID,
                       "stdwebhooks: timestamp %lld is %llu s in the %s (tolerance %lld s)", ts,
                       distance, future ? "future" : "past", tolerance_s);
    return BZ_OK;
}

/* Compare every "v1," entry of header against expected; *v1_seen counts
 * them. All entries are examined even after a match. */
static bool any_v1_matches(const char *header, size_t len,
                           const unsigned char expected[BZ_HMAC_SHA256_LEN], size_t *v1_seen)
{
    bool matched = false;
    size_t i = 0;
    *v1_seen = 0;
    while (i < len) {
        while (i < len && header[i] == ' ')
            i++;
        size_t start = i;
        while (i < len && header[i] != ' ')
            i++;
        const char *tok = header + start;
        size_t toklen = i - start;
        if (toklen < 3 || memcmp(tok, "v1,", 3) != 0)
            continue;
        (*v1_seen)++;
        unsigned char given[BZ_HMAC_SHA256_LEN];
        size_t glen;
        if (bz_base64_decode(tok + 3, toklen - 3, given, sizeof given, &glen, NULL) == BZ_OK &&
            glen == sizeof given)
            matched |= CRYPTO_memcmp(expected, given, sizeof given) == 0;
    }
    return matched;
}

static bz_status check_signature_header(const char *header, bz_error *err)
{
    if (!header)
        return bz_fail(err, BZ_ERR_INVALID, "stdwebhooks: missing webhook-signature");
    if (strnlen(header, STDWEBHOOKS_HEADER_MAX + 1) > STDWEBHOOKS_HEADER_MAX)
        return bz_fail(err, BZ_ERR_INVALID, "stdwebhooks: webhook-signature longer than %d bytes",
                       STDWEBHOOKS_HEADER_MAX);
    return BZ_OK;
}

bz_status bz_stdwebhooks_verify(const char *secret, const char *msg_id,
                                const char *timestamp_header, const void *body, size_t bodylen,
                                const char *signature_header, long long now_s,
                                long long tolerance_s, bz_error *err)
{
    unsigned char key[BZ_STDWEBHOOKS_KEY_MAX], expected[BZ_HMAC_SHA256_LEN];
    size_t keylen;
    long long ts = 0;
    bz_status st = bz_stdwebhooks_secret_parse(secret, key, sizeof key, &keylen, err);
    if (st == BZ_OK)
        st = check_message_id(msg_id, err);
    if (st == BZ_OK)
        st = parse_timestamp(timestamp_header, &ts, err);
    if (st == BZ_OK)
        st = check_timestamp_fresh(ts, now_s, tolerance_s, err);
    if (st == BZ_OK)
        st = check_signature_header(signature_header, err);
    if (st == BZ_OK)
        st = stdwebhooks_mac(key, keylen, msg_id, ts, body, bodylen, expected, err);
    OPENSSL_cleanse(key, sizeof key);
    if (st != BZ_OK)
        return st;
    size_t len = strlen(signature_header);
    size_t v1_seen;
    bool matched = any_v1_matches(signature_header, len, expected, &v1_seen);
    OPENSSL_cleanse(expected, sizeof expected);
    if (v1_seen == 0)
        return bz_fail(err, BZ_ERR_INVALID, "stdwebhooks: no v1 signature in webhook-signature");
    if (!matched)
        return bz_fail(err, BZ_ERR_INVALID, "stdwebhooks: no signature matches");
    return BZ_OK;
}
