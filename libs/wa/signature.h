/*
 * signature.h - HMAC-SHA256 webhook signatures: make them, check them.
 *
 * Three schemes meet at Blazz's edges:
 *   gateway   X-WhatsApp-Signature: <hex HMAC-SHA256(secret, raw body)>
 *             (the seeds' scheme, "plain"; hex accepted in either case), or,
 *             "timestamped", with X-Blazz-Timestamp and X-Blazz-Key-Id:
 *             <hex HMAC-SHA256(K, "<timestamp>.<body>")>, where
 *             K = HMAC-SHA256(key, "blazz-gateway-timestamped-v1"): a key of
 *             its own, so no MAC of one mode is ever a MAC of the other (a
 *             timestamped request replayed plain, its body prefixed with
 *             "<timestamp>.", verifies no more), and the key id is the hex
 *             of the first 8 bytes of HMAC-SHA256(key, "blazz-gateway-key-id"),
 *             naming the key without revealing it
 *   Meta      X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, body)>
 *   Standard  webhook-id, webhook-timestamp, webhook-signature:
 *   Webhooks  "v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>",
 *             several space-separated while secrets rotate.
 *
 * Verification checks a candidate's shape (its length, hex digits) before
 * computing any HMAC, since the shape is public and a forged request should
 * cost nothing when it is wrong; then it compares fixed-length digests with
 * CRYPTO_memcmp and never stops early on content, and every Standard Webhooks
 * candidate is compared even after a match. An empty key is refused
 * (BZ_ERR_CONFIG): anyone can compute an HMAC under the empty key. Keys and
 * secrets never appear in error messages.
 *
 * Standard Webhooks secrets are "whsec_" followed by the base64 of the key.
 * As in the reference libraries, a secret without the prefix is taken to be
 * the bare base64 key. The base64 must be the standard alphabet with correct
 * '=' padding; a malformed secret is BZ_ERR_CONFIG.
 *
 * Codecs: hex is core/hex.h's (lowercase out, strict in; included here
 * for the signers' convenience); base64 is the standard alphabet with
 * padding, decoded strictly (no whitespace, no missing or stray '=').
 */
#ifndef BZ_WA_SIGNATURE_H
#define BZ_WA_SIGNATURE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/hex.h"
#include "core/status.h"

#define BZ_HMAC_SHA256_LEN 32
/* 64 hex digits plus the NUL. */
#define BZ_HMAC_SHA256_HEX_SIZE (2 * BZ_HMAC_SHA256_LEN + 1)
/* "v1," + 44 base64 characters. */
#define BZ_STDWEBHOOKS_SIG_LEN (3 + 44)
#define BZ_STDWEBHOOKS_TOLERANCE_S 300
/* Longest decoded Standard Webhooks key accepted. */
#define BZ_STDWEBHOOKS_KEY_MAX 256

/* Bytes needed to base64-encode n bytes, including the NUL. */
#define BZ_BASE64_ENCODED_SIZE(n) (4 * (((n) + 2) / 3) + 1)

/* HMAC-SHA256 of body under key into out. body may be NULL when bodylen is 0. */
bz_status bz_hmac_sha256(const void *key, size_t keylen, const void *body, size_t bodylen,
                         unsigned char out[BZ_HMAC_SHA256_LEN], bz_error *err);

/* Same, as 64 lowercase hex digits plus NUL. */
bz_status bz_hmac_sha256_hex(const void *key, size_t keylen, const void *body, size_t bodylen,
                             char out_hex[BZ_HMAC_SHA256_HEX_SIZE], bz_error *err);


/* Padded standard base64 of in into out; needs BZ_BASE64_ENCODED_SIZE(len). */
bz_status bz_base64_encode(const void *in, size_t len, char *out, size_t cap, bz_error *err);

/* Decode inlen characters of padded standard base64 into out, setting
 * *outlen to the true decoded length (padding excluded). */
bz_status bz_base64_decode(const char *in, size_t inlen, unsigned char *out, size_t cap,
                           size_t *outlen, bz_error *err);

/* Whether a header value has its scheme's public shape, checked before any
 * HMAC is computed: 64 hex digits (X-WhatsApp-Signature), "sha256=" and 64
 * hex digits (X-Hub-Signature-256); surrounding whitespace ignored, NULL
 * is not. */
bool bz_signature_hex_well_formed(const char *header_value);
bool bz_signature_meta_well_formed(const char *header_value);

/* Check a gateway X-WhatsApp-Signature header value (hex HMAC of body,
 * surrounding whitespace ignored). A missing header, a wrong length or a
 * mismatch is BZ_ERR_INVALID. */
bz_status bz_signature_verify_hex(const void *key, size_t keylen, const void *body, size_t bodylen,
                                  const char *header_value, bz_error *err);

/* A gateway's X-WhatsApp-Signature for a request carrying the
 * X-Blazz-Timestamp header timestamp (its text, Unix seconds): hex
 * HMAC-SHA256(K, "<timestamp>.<body>"), K derived from key (above). */
bz_status bz_gateway_sign_timestamped(const void *key, size_t keylen, const char *timestamp,
                                      const void *body, size_t bodylen,
                                      char out_hex[BZ_HMAC_SHA256_HEX_SIZE], bz_error *err);

/* Check such a signature (the header value, whitespace ignored). */
bz_status bz_signature_verify_timestamped(const void *key, size_t keylen, const char *timestamp,
                                          const void *body, size_t bodylen,
                                          const char *header_value, bz_error *err);

/* The X-Blazz-Key-Id of key: 16 lowercase hex digits and the NUL. */
#define BZ_GATEWAY_KEY_ID_LEN 16
bz_status bz_gateway_key_id(const void *key, size_t keylen, char out[BZ_GATEWAY_KEY_ID_LEN + 1],
                            bz_error *err);

/* Whether text has a key id's shape (16 lowercase hex digits). */
bool bz_gateway_key_id_well_formed(const char *text);

/* The header values with which a gateway signs a request in the
 * timestamped mode at unix_s: X-Blazz-Timestamp, X-Blazz-Key-Id and
 * X-WhatsApp-Signature. */
typedef struct bz_gateway_signature {
    char timestamp[24];
    char key_id[BZ_GATEWAY_KEY_ID_LEN + 1];
    char signature[BZ_HMAC_SHA256_HEX_SIZE];
} bz_gateway_signature;

bz_status bz_gateway_sign_request(const void *key, size_t keylen, long long unix_s,
                                  const void *body, size_t bodylen, bz_gateway_signature *out,
                                  bz_error *err);

/* A gateway's media requests carry no signed body (an upload streams into
 * the store before anything could hash it, a read has none), so the
 * timestamped signature covers a statement instead (ARCHITECTURE.md §16.4):
 * "blazz-gateway-media-v1\n<session>\n<sha256 hex>" for an upload,
 * "blazz-gateway-media-read-v1\n<session>\n<uuid>" for a read. The two
 * never read as each other, nor as an event's body (which is protobuf or
 * JSON). BZ_GATEWAY_MEDIA_STATEMENT_MAX bytes hold either with a session of
 * up to 128 bytes. */
typedef enum bz_gateway_media_act {
    BZ_GATEWAY_MEDIA_UPLOAD = 0,
    BZ_GATEWAY_MEDIA_READ
} bz_gateway_media_act;

#define BZ_GATEWAY_MEDIA_STATEMENT_MAX 224

/* The statement of act for session and subject (the upload's declared
 * SHA-256, or the uuid read) into out; its length into *len. A statement
 * that does not fit is BZ_ERR_INVALID. */
bz_status bz_gateway_media_statement(bz_gateway_media_act act, const char *session,
                                     const char *subject, char *out, size_t cap, size_t *len,
                                     bz_error *err);

/* Check a Meta X-Hub-Signature-256 header value: "sha256=<hex>". */
bz_status bz_signature_verify_meta(const void *key, size_t keylen, const void *body,
                                   size_t bodylen, const char *header_value, bz_error *err);

/* Decode a Standard Webhooks secret into key (cap bytes), setting *keylen.
 * The caller should wipe key (OPENSSL_cleanse) when done. */
bz_status bz_stdwebhooks_secret_parse(const char *secret, unsigned char *key, size_t cap,
                                      size_t *keylen, bz_error *err);

/* "whsec_" + base64 of 24 random bytes: the size of key Standard Webhooks'
 * libraries make. */
#define BZ_STDWEBHOOKS_NEW_SECRET_LEN (6 + 32)

/* A fresh Standard Webhooks secret into out (BZ_STDWEBHOOKS_NEW_SECRET_LEN
 * + 1 bytes suffice); the caller wipes it (OPENSSL_cleanse) when done.
 * BZ_ERR_IO when the random generator fails. */
bz_status bz_stdwebhooks_new_secret(char *out, size_t cap, bz_error *err);

/* The webhook-signature header for one secret: "v1,<base64>" into out
 * (BZ_STDWEBHOOKS_SIG_LEN + 1 bytes suffice). msg_id must not be empty. */
bz_status bz_stdwebhooks_sign(const char *secret, const char *msg_id, long long timestamp_s,
                              const void *body, size_t bodylen, char *out, size_t cap,
                              bz_error *err);

/* The same, signed with each of nsecrets secrets (rotation), joined with
 * single spaces: needs nsecrets * (BZ_STDWEBHOOKS_SIG_LEN + 1) bytes. */
bz_status bz_stdwebhooks_sign_all(const char *const *secrets, size_t nsecrets, const char *msg_id,
                                  long long timestamp_s, const void *body, size_t bodylen,
                                  char *out, size_t cap, bz_error *err);

/* Verify a delivery. timestamp_header is the webhook-timestamp value
 * (decimal Unix seconds); it must lie within tolerance_s of now_s
 * (tolerance_s <= 0 means BZ_STDWEBHOOKS_TOLERANCE_S). signature_header is
 * the webhook-signature value: the delivery is accepted when ANY of its
 * space-separated "v1,<base64>" entries matches; entries of other versions
 * are ignored, and a header with no v1 entry is rejected. Rejections are
 * BZ_ERR_INVALID; a malformed secret is BZ_ERR_CONFIG. */
bz_status bz_stdwebhooks_verify(const char *secret, const char *msg_id,
                                const char *timestamp_header, const void *body, size_t bodylen,
                                const char *signature_header, long long now_s,
                                long long tolerance_s, bz_error *err);

#endif
