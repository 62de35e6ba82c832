/*
 * test_wa_signature.c - HMAC-SHA256 against RFC 4231, the hex and base64
 * codecs (RFC 4648 vectors, round trips, cross-checked with OpenSSL's
 * encoder), the gateway and Meta header checks, the gateway's timestamped
 * mode against vectors computed apart (and no MAC of it a plain one), and
 * Standard Webhooks against its published test vector, with tampering,
 * rotation, tolerance and malformed-header cases. Secrets must never reach
 * error messages.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "status_asserts.h"
#include "wa/signature.h"

/* ---- HMAC-SHA256: RFC 4231 ----------------------------------------------- */

typedef struct rfc4231_case {
    unsigned char key[131];
    size_t keylen;
    const char *data;
    const char *mac_hex;
} rfc4231_case;

static void fill(unsigned char *p, unsigned char byte, size_t n)
{
    memset(p, byte, n);
}

static void test_hmac_rfc4231(void **state)
{
    (void)state;
    rfc4231_case cases[3] = {
        {{0}, 20, "Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
        {"Jefe", 4, "what do ya want for nothing?",
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
        {{0}, 131, "Test Using Larger Than Block-Size Key - Hash Key First",
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
    };
    fill(cases[0].key, 0x0b, 20);
    fill(cases[2].key, 0xaa, 131);
    for (size_t i = 0; i < 3; i++) {
        unsigned char mac[BZ_HMAC_SHA256_LEN], want[BZ_HMAC_SHA256_LEN];
        char hex[BZ_HMAC_SHA256_HEX_SIZE];
        size_t wantlen;
        bz_error err = {0};
        assert_int_equal(bz_hmac_sha256(cases[i].key, cases[i].keylen, cases[i].data,
                                        strlen(cases[i].data), mac, &err),
                         BZ_OK);
        assert_int_equal(bz_hex_decode(cases[i].mac_hex, 64, want, sizeof want, &wantlen, &err),
                         BZ_OK);
        assert_int_equal(wantlen, 32);
        assert_memory_equal(mac, want, 32);
        assert_int_equal(bz_hmac_sha256_hex(cases[i].key, cases[i].keylen, cases[i].data,
                                            strlen(cases[i].data), hex, &err),
                         BZ_OK);
        assert_string_equal(hex, cases[i].mac_hex);
    }
}

static void test_hmac_of_empty_body(void **state)
{
    (void)state;
    char hex[BZ_HMAC_SHA256_HEX_SIZE];
    assert_int_equal(bz_hmac_sha256_hex("key", 3, NULL, 0, hex, NULL), BZ_OK);
    assert_string_equal(hex, "5d5d139563c95b5967b9bd9a8c9b233a9dedb45072794cd232dc1b74832607d0");
}

static void test_hmac_refuses_empty_key(void **state)
{
    (void)state;
    unsigned char mac[BZ_HMAC_SHA256_LEN];
    char hex[BZ_HMAC_SHA256_HEX_SIZE] = "garbage";
    bz_error err = {0};
    assert_failure(bz_hmac_sha256("", 0, "body", 4, mac, &err), &err, BZ_ERR_CONFIG,
                   "empty key refused");
    assert_failure(bz_hmac_sha256(NULL, 16, "body", 4, mac, &err), &err, BZ_ERR_CONFIG,
                   "empty key refused");
    assert_failure(bz_hmac_sha256_hex(NULL, 0, "body", 4, hex, &err), &err, BZ_ERR_CONFIG,
                   "empty key refused");
    assert_string_equal(hex, "");
}

/* ---- hex ------------------------------------------------------------------ */

static void test_hex_encode(void **state)
{
    (void)state;
    static const unsigned char bytes[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
    char out[13];
    bz_error err = {0};
    assert_int_equal(bz_hex_encode(bytes, sizeof bytes, out, sizeof out, &err), BZ_OK);
    assert_string_equal(out, "00017f80abff");
    assert_int_equal(bz_hex_encode(bytes, 0, out, 1, &err), BZ_OK);
    assert_string_equal(out, "");
    assert_failure(bz_hex_encode(bytes, sizeof bytes, out, 12, &err), &err, BZ_ERR_INTERNAL,
                   "output buffer too small (12 bytes, need 13)");
}

static void test_hex_decode_accepts_either_case(void **state)
{
    (void)state;
    static const unsigned char want[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
    const char *inputs[] = {"00017f80abff", "00017F80ABFF", "00017f80AbFf"};
    for (size_t i = 0; i < 3; i++) {
        unsigned char out[6];
        size_t n;
        bz_error err = {0};
        assert_int_equal(bz_hex_decode(inputs[i], 12, out, sizeof out, &n, &err), BZ_OK);
        assert_int_equal(n, 6);
        assert_memory_equal(out, want, 6);
    }
}

static void test_hex_decode_rejects_malformed(void **state)
{
    (void)state;
    unsigned char out[8];
    size_t n = 99;
    bz_error err = {0};
    assert_failure(bz_hex_decode("abc", 3, out, sizeof out, &n, &err), &err, BZ_ERR_INVALID,
                   "odd length 3");
    assert_int_equal(n, 0);
    assert_failure(bz_hex_decode("abzd", 4, out, sizeof out, &n, &err), &err, BZ_ERR_INVALID,
                   "non-hex character at offset 2");
    assert_failure(bz_hex_decode("g0", 2, out, sizeof out, &n, &err), &err, BZ_ERR_INVALID,
                   "non-hex character at offset 0");
    assert_failure(bz_hex_decode("0 ", 2, out, sizeof out, &n, &err), &err, BZ_ERR_INVALID,
                   "non-hex character at offset 1");
    assert_failure(bz_hex_decode("000102030405060708", 18, out, sizeof out, &n, &err), &err,
                   BZ_ERR_INVALID, "9 bytes do not fit in 8");
    assert_int_equal(bz_hex_decode("0001020304050607", 16, out, sizeof out, &n, &err), BZ_OK);
    assert_int_equal(n, 8);
    assert_int_equal(bz_hex_decode("", 0, out, 0, &n, &err), BZ_OK);
    assert_int_equal(n, 0);
}

/* Deterministic bytes for round trips; no need for real randomness. */
static void pseudo_random(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (unsigned char)(seed >> 16);
    }
}

static void test_hex_round_trip(void **state)
{
    (void)state;
    for (size_t len = 0; len <= 64; len++) {
        unsigned char in[64], back[64];
        char hex[129];
        size_t n;
        pseudo_random(in, len, (unsigned)len);
        assert_int_equal(bz_hex_encode(in, len, hex, sizeof hex, NULL), BZ_OK);
        assert_int_equal(strlen(hex), 2 * len);
        assert_int_equal(bz_hex_decode(hex, 2 * len, back, sizeof back, &n, NULL), BZ_OK);
        assert_int_equal(n, len);
        assert_memory_equal(in, back, len);
    }
}

/* ---- base64 --------------------------------------------------------------- */

static void test_base64_rfc4648_vectors(void **state)
{
    (void)state;
    const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        char enc[16];
        unsigned char dec[16];
        size_t n = 99;
        bz_error err = {0};
        assert_int_equal(bz_base64_encode(plain[i], strlen(plain[i]), enc, sizeof enc, &err),
                         BZ_OK);
        assert_string_equal(enc, coded[i]);
        assert_int_equal(bz_base64_decode(coded[i], strlen(coded[i]), dec, sizeof dec, &n, &err),
                         BZ_OK);
        assert_int_equal(n, strlen(plain[i]));
        assert_memory_equal(dec, plain[i], n);
    }
}

static void test_base64_round_trip_matches_openssl(void **state)
{
    (void)state;
    for (size_t len = 0; len <= 100; len++) {
        unsigned char in[100], back[100];
        char ours[BZ_BASE64_ENCODED_SIZE(100)];
        unsigned char theirs[BZ_BASE64_ENCODED_SIZE(100)];
        size_t n;
        pseudo_random(in, len, (unsigned)(len * 7 + 1));
        assert_int_equal(bz_base64_encode(in, len, ours, BZ_BASE64_ENCODED_SIZE(len), NULL),
                         BZ_OK);
        int tlen = EVP_EncodeBlock(theirs, in, (int)len);
        assert_int_equal(strlen(ours), (size_t)tlen);
        assert_string_equal(ours, (const char *)theirs);
        assert_int_equal(bz_base64_decode(ours, strlen(ours), back, len, &n, NULL), BZ_OK);
        assert_int_equal(n, len);
        assert_memory_equal(in, back, len);
    }
}

static void test_base64_rejects_malformed(void **state)
{
    (void)state;
    unsigned char out[16];
    size_t n = 99;
    bz_error err = {0};
    struct {
        const char *in;
        const char *want;
    } cases[] = {
        {"Zg=", "length 3 is not a multiple of 4"},
        {"Zm9vY", "length 5 is not a multiple of 4"},
        {"Zm9v\n", "not a multiple of 4"},
        {"Zg=a", "invalid character at offset 2"},
        {"Z===", "invalid character at offset 1"},
        {"====", "invalid character at offset 0"},
        {"Zm 9", "invalid character at offset 2"},
        {"Zm9-", "invalid character at offset 3"}, /* URL-safe alphabet is not standard */
        {"Zm9_", "invalid character at offset 3"},
        {"Zm=9", "invalid character at offset 2"},
        {"Zh==", "non-zero padding bits"},
        {"Zm9=", "non-zero padding bits"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_failure(bz_base64_decode(cases[i].in, strlen(cases[i].in), out, sizeof out, &n,
                                        &err),
                       &err, BZ_ERR_INVALID, cases[i].want);
        assert_int_equal(n, 0);
    }
}

static void test_base64_buffer_boundaries(void **state)
{
    (void)state;
    char enc[9];
    unsigned char dec[6];
    size_t n;
    bz_error err = {0};
    /* 6 bytes encode to 8 characters: 9 bytes with the NUL. */
    assert_int_equal(BZ_BASE64_ENCODED_SIZE(6), 9);
    assert_int_equal(BZ_BASE64_ENCODED_SIZE(4), 9);
    assert_int_equal(BZ_BASE64_ENCODED_SIZE(0), 1);
    assert_int_equal(bz_base64_encode("foobar", 6, enc, 9, &err), BZ_OK);
    assert_failure(bz_base64_encode("foobar", 6, enc, 8, &err), &err, BZ_ERR_INTERNAL,
                   "output buffer too small (8 bytes, need 9)");
    /* Decoding counts padding exactly: "Zm9vYg==" is 4 bytes, not 6. */
    assert_int_equal(bz_base64_decode("Zm9vYg==", 8, dec, 4, &n, &err), BZ_OK);
    assert_int_equal(n, 4);
    assert_failure(bz_base64_decode("Zm9vYg==", 8, dec, 3, &n, &err), &err, BZ_ERR_INVALID,
                   "4 bytes do not fit in 3");
    assert_failure(bz_base64_decode("Zm9vYmFy", 8, dec, 5, &n, &err), &err, BZ_ERR_INVALID,
                   "6 bytes do not fit in 5");
}

/* ---- gateway hex signatures and Meta ------------------------------------- */

static const char gw_key[] = "super-secret-gateway-key";
static const char gw_body[] = "{\"session_id\":\"s1\",\"message_body\":\"Hello World\"}";

static void gateway_hex(char hex[BZ_HMAC_SHA256_HEX_SIZE])
{
    assert_int_equal(
        bz_hmac_sha256_hex(gw_key, strlen(gw_key), gw_body, strlen(gw_body), hex, NULL), BZ_OK);
}

static bz_status verify_gateway(const char *header, bz_error *err)
{
    return bz_signature_verify_hex(gw_key, strlen(gw_key), gw_body, strlen(gw_body), header, err);
}

static void assert_no_secret(const bz_error *err)
{
    assert_null(strstr(err->msg, gw_key));
    assert_null(strstr(err->msg, "MfKQ9r8G"));
}

static void upper(char *s)
{
    for (; *s; s++)
        if (*s >= 'a' && *s <= 'f')
            *s = (char)(*s - 'a' + 'A');
}

static void test_verify_hex_accepts_good_signature(void **state)
{
    (void)state;
    char hex[BZ_HMAC_SHA256_HEX_SIZE], padded[80];
    bz_error err = {0};
    gateway_hex(hex);
    assert_int_equal(verify_gateway(hex, &err), BZ_OK);
    snprintf(padded, sizeof padded, " \t%s\r\n", hex);
    assert_int_equal(verify_gateway(padded, &err), BZ_OK);
    upper(hex);
    assert_int_equal(verify_gateway(hex, &err), BZ_OK);
}

static void test_verify_hex_rejects_tampering(void **state)
{
    (void)state;
    char hex[BZ_HMAC_SHA256_HEX_SIZE];
    bz_error err = {0};
    gateway_hex(hex);

    /* Every position of the signature matters. */
    for (size_t i = 0; i < 64; i++) {
        char bad[BZ_HMAC_SHA256_HEX_SIZE];
        memcpy(bad, hex, sizeof bad);
        bad[i] = bad[i] == '0' ? '1' : '0';
        assert_failure(verify_gateway(bad, &err), &err, BZ_ERR_INVALID, "signature: mismatch");
        assert_no_secret(&err);
    }
    /* So does every byte of the body. */
    char body[sizeof gw_body];
    for (size_t i = 0; i < strlen(gw_body); i++) {
        memcpy(body, gw_body, sizeof body);
        body[i] ^= 0x01;
        assert_failure(bz_signature_verify_hex(gw_key, strlen(gw_key), body, strlen(body), hex,
                                               &err),
                       &err, BZ_ERR_INVALID, "mismatch");
    }
    /* And the key. */
    assert_failure(bz_signature_verify_hex("other-key", 9, gw_body, strlen(gw_body), hex, &err),
                   &err, BZ_ERR_INVALID, "mismatch");
}

static void test_verify_hex_rejects_malformed_headers(void **state)
{
    (void)state;
    char hex[BZ_HMAC_SHA256_HEX_SIZE], buf[80];
    bz_error err = {0};
    gateway_hex(hex);
    assert_failure(verify_gateway(NULL, &err), &err, BZ_ERR_INVALID, "signature: missing");
    assert_failure(verify_gateway("", &err), &err, BZ_ERR_INVALID,
                   "expected 64 hex digits, got 0");
    snprintf(buf, sizeof buf, "%.63s", hex);
    assert_failure(verify_gateway(buf, &err), &err, BZ_ERR_INVALID, "got 63");
    snprintf(buf, sizeof buf, "%s0", hex);
    assert_failure(verify_gateway(buf, &err), &err, BZ_ERR_INVALID, "got 65");
    snprintf(buf, sizeof buf, "sha256=%s", hex);
    assert_failure(verify_gateway(buf, &err), &err, BZ_ERR_INVALID, "got 71");
    memcpy(buf, hex, sizeof hex);
    buf[10] = 'g';
    assert_failure(verify_gateway(buf, &err), &err, BZ_ERR_INVALID, "not a hex digest");
    assert_failure(bz_signature_verify_hex("", 0, gw_body, strlen(gw_body), hex, &err), &err,
                   BZ_ERR_CONFIG, "empty key refused");
}

/* ---- the gateway's timestamped mode ---------------------------------------- */

/* Computed apart (Python's hmac) from the scheme as written in signature.h,
 * for gateways written in other languages to check against. */
#define TS_KEY "test-gateway-key"
#define TS_BODY "{\"session_id\":\"s1\"}"
#define TS_AT "1700000000"
#define TS_KEY_ID "8abb460eb805db66"
#define TS_SIGNATURE "1d180a07601cbd517da1cf86de5271d6f21ede39b8a6e0238a20efe792ef52d9"
/* hex HMAC-SHA256(TS_KEY, "1700000000." TS_BODY): the plain mode's MAC of
 * the body a replay would send */
#define TS_PLAIN_OF_PREFIXED "9553b38482b9c5387498b3713b5e0588bf20613072a2e1daa0b92aeff67eb94a"

static void test_timestamped_mode_matches_its_description(void **state)
{
    (void)state;
    char id[BZ_GATEWAY_KEY_ID_LEN + 1], sig[BZ_HMAC_SHA256_HEX_SIZE];
    bz_error err = {0};
    assert_int_equal(bz_gateway_key_id(TS_KEY, strlen(TS_KEY), id, &err), BZ_OK);
    assert_string_equal(id, TS_KEY_ID);
    assert_true(bz_gateway_key_id_well_formed(id));
    assert_false(bz_gateway_key_id_well_formed("8ABB460EB805DB66"));
    assert_false(bz_gateway_key_id_well_formed("8abb460eb805db6"));
    assert_false(bz_gateway_key_id_well_formed(NULL));
    assert_int_equal(bz_gateway_sign_timestamped(TS_KEY, strlen(TS_KEY), TS_AT, TS_BODY,
                                                 strlen(TS_BODY), sig, &err),
                     BZ_OK);
    assert_string_equal(sig, TS_SIGNATURE);
    assert_int_equal(bz_signature_verify_timestamped(TS_KEY, strlen(TS_KEY), TS_AT, TS_BODY,
                                                     strlen(TS_BODY), TS_SIGNATURE, &err),
                     BZ_OK);
    assert_failure(bz_signature_verify_timestamped(TS_KEY, strlen(TS_KEY), "1700000001", TS_BODY,
                                                   strlen(TS_BODY), TS_SIGNATURE, &err),
                   &err, BZ_ERR_INVALID, "mismatch");
}

/* A timestamped signature is no plain one of the prefixed body, nor the
 * other way round: the two modes share a key but never a MAC. */
static void test_timestamped_and_plain_modes_are_separate(void **state)
{
    (void)state;
    const char *prefixed = TS_AT "." TS_BODY;
    char plain[BZ_HMAC_SHA256_HEX_SIZE];
    bz_error err = {0};
    assert_failure(bz_signature_verify_hex(TS_KEY, strlen(TS_KEY), prefixed, strlen(prefixed),
                                           TS_SIGNATURE, &err),
                   &err, BZ_ERR_INVALID, "mismatch");
    assert_int_equal(bz_hmac_sha256_hex(TS_KEY, strlen(TS_KEY), prefixed, strlen(prefixed), plain,
                                        &err),
                     BZ_OK);
    assert_string_equal(plain, TS_PLAIN_OF_PREFIXED);
    assert_failure(bz_signature_verify_timestamped(TS_KEY, strlen(TS_KEY), TS_AT, TS_BODY,
                                                   strlen(TS_BODY), plain, &err),
                   &err, BZ_ERR_INVALID, "mismatch");
}

static void test_verify_meta(void **state)
{
    (void)state;
    char hex[BZ_HMAC_SHA256_HEX_SIZE], header[80];
    bz_error err = {0};
    gateway_hex(hex);
    snprintf(header, sizeof header, "sha256=%s", hex);
    assert_int_equal(bz_signature_verify_meta(gw_key, strlen(gw_key), gw_body, strlen(gw_body),
                                              header, &err),
                     BZ_OK);
    snprintf(header, sizeof header, "SHA256=%s", hex);
    assert_int_equal(bz_signature_verify_meta(gw_key, strlen(gw_key), gw_body, strlen(gw_body),
                                              header, &err),
                     BZ_OK);

    const char *bad[] = {hex, "sha1=0123", "sha256", "", NULL};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(bz_signature_verify_meta(gw_key, strlen(gw_key), gw_body,
                                                  strlen(gw_body), bad[i], &err),
                         BZ_ERR_INVALID);
    assert_failure(bz_signature_verify_meta(gw_key, strlen(gw_key), gw_body, strlen(gw_body), hex,
                                            &err),
                   &err, BZ_ERR_INVALID, "expected 'sha256=<hex>'");

    snprintf(header, sizeof header, "sha256=%s", hex);
    header[7] = header[7] == 'a' ? 'b' : 'a';
    assert_failure(bz_signature_verify_meta(gw_key, strlen(gw_key), gw_body, strlen(gw_body),
                                            header, &err),
                   &err, BZ_ERR_INVALID, "mismatch");
    assert_failure(bz_signature_verify_meta(gw_key, strlen(gw_key), gw_body, strlen(gw_body),
                                            "sha256=", &err),
                   &err, BZ_ERR_INVALID, "got 0");
}

/* ---- Standard Webhooks ---------------------------------------------------- */

#define SW_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SW_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define SW_TS 1614265330LL
#define SW_TS_TEXT "1614265330"
#define SW_BODY "{\"test\": 2432232314}"
#define SW_SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
#define SW_OTHER_SECRET "whsec_" "c2Vjb25kLXNlY3JldC1mb3Itcm90YXRpb24="

static bz_status sw_verify(const char *secret, const char *id, const char *ts, const char *body,
                           const char *sig, long long now, bz_error *err)
{
    return bz_stdwebhooks_verify(secret, id, ts, body, body ? strlen(body) : 0, sig, now, 0, err);
}

static void test_stdwebhooks_published_vector(void **state)
{
    (void)state;
    char sig[BZ_STDWEBHOOKS_SIG_LEN + 1];
    bz_error err = {0};
    assert_int_equal(bz_stdwebhooks_sign(SW_SECRET, SW_ID, SW_TS, SW_BODY, strlen(SW_BODY), sig,
                                         sizeof sig, &err),
                     BZ_OK);
    assert_string_equal(sig, SW_SIG);
    assert_int_equal(strlen(sig), BZ_STDWEBHOOKS_SIG_LEN);
    assert_int_equal(sw_verify(SW_SECRET, SW_ID, SW_TS_TEXT, SW_BODY, SW_SIG, SW_TS, &err), BZ_OK);
}

static void test_stdwebhooks_secret_without_prefix(void **state)
{
    (void)state;
    char sig[BZ_STDWEBHOOKS_SIG_LEN + 1];
    const char *bare = SW_SECRET + strlen("whsec_");
    assert_int_equal(bz_stdwebhooks_sign(bare, SW_ID, SW_TS, SW_BODY, strlen(SW_BODY), sig,
                                         sizeof sig, NULL),
                     BZ_OK);
    assert_string_equal(sig, SW_SIG);
    assert_int_equal(sw_verify(bare, SW_ID, SW_TS_TEXT, SW_BODY, SW_SIG, SW_TS, NULL), BZ_OK);
}

static void test_stdwebhooks_secret_parse(void **state)
{
    (void)state;
    unsigned char key[BZ_STDWEBHOOKS_KEY_MAX];
    size_t keylen;
    bz_error err = {0};
    assert_int_equal(bz_stdwebhooks_secret_parse(SW_SECRET, key, sizeof key, &keylen, &err),
                     BZ_OK);
    assert_int_equal(keylen, 24);
    assert_int_equal(key[0], 0x31); /* 'M','f' -> 0x31 0xf2 */
    assert_int_equal(key[1], 0xf2);

    struct {
        const char *secret;
        const char *want;
    } bad[] = {
        {"whsec_", "empty key"},
        {"", "empty key"},
        {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS", "not a multiple of 4"},
        {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS!", "invalid character at offset 31"},
        {"whsec_MfKQ9r8G KYqrTwjUPD8ILPZIo2LaLaSw", "not a multiple of 4"},
        {"WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa", "invalid character at offset 5"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_failure(bz_stdwebhooks_secret_parse(bad[i].secret, key, sizeof key, &keylen, &err),
                       &err, BZ_ERR_CONFIG, bad[i].want);
        assert_non_null(strstr(err.msg, "stdwebhooks secret"));
        assert_no_secret(&err);
    }
    assert_failure(bz_stdwebhooks_secret_parse(NULL, key, sizeof key, &keylen, &err), &err,
                   BZ_ERR_CONFIG, "stdwebhooks secret: missing");
    assert_failure(bz_stdwebhooks_secret_parse(SW_SECRET, key, 23, &keylen, &err), &err,
                   BZ_ERR_CONFIG, "24 bytes do not fit in 23");
    /* A malformed secret is a configuration error for sign and verify too. */
    assert_failure(bz_stdwebhooks_sign("whsec_!!!!", SW_ID, SW_TS, "x", 1, (char[64]){0}, 64,
                                       &err),
                   &err, BZ_ERR_CONFIG, "stdwebhooks secret");
    assert_failure(sw_verify("whsec_!!!!", SW_ID, SW_TS_TEXT, SW_BODY, SW_SIG, SW_TS, &err), &err,
                   BZ_ERR_CONFIG, "stdwebhooks secret");
}

static void test_stdwebhooks_rejects_tampering(void **state)
{
    (void)state;
    bz_error err = {0};
    char body[] = SW_BODY, sig[] = SW_SIG, id[] = SW_ID;

    for (size_t i = 0; i < strlen(body); i++) {
        body[i] ^= 0x01;
        assert_failure(sw_verify(SW_SECRET, SW_ID, SW_TS_TEXT, body, SW_SIG, SW_TS, &err), &err,
                       BZ_ERR_INVALID, "no signature matches");
        body[i] ^= 0x01;
    }
    /* Every base64 character after "v1,", except the padding. */
    for (size_t i = 3; i < strlen(sig) - 1; i++) {
        char saved = sig[i];
        sig[i] = saved == 'A' ? 'B' : 'A';
        assert_failure(sw_verify(SW_SECRET, SW_ID, SW_TS_TEXT, SW_BODY, sig, SW_TS, &err), &err,
                       BZ_ERR_INVALID, "no signature matches");
        sig[i] = saved;
    }
    for (size_t i = 0; i < strlen(id); i++) {
        id[i] ^= 0x01;
        assert_failure(sw_verify(SW_SECRET, id, SW_TS_TEXT, SW_BODY, SW_SIG, SW_TS, &err), &err,
                       BZ_ERR_INVALID, "no signature matches");
        id[i] ^= 0x01;
    }
    assert_failure(sw_verify(SW_SECRET, SW_ID, "1614265331", SW_BODY, SW_SIG, SW_TS, &err), &err,
                   BZ_ERR_INVALID, "no signature matches");
    assert_failure(sw_verify(SW_OTHER_SECRET, SW_ID, SW_TS_TEXT, SW_BODY, SW_SIG, SW_TS, &err),
                   &err, BZ_ERR_INVALID, "no signature matches");
    assert_no_secret(&err);
    /* The signature over the same bytes, unchanged, still verifies. */
    assert_int_equal(sw_verify(SW_SECRET, id, SW_TS_TEXT, body, sig, SW_TS, &err), BZ_OK);
}

static void test_stdwebhooks_timestamp_tolerance(void **state)
{
    (void)state;
    bz_error err = {0};
    /* Default tolerance: 300 s either way, inclusive. */
    assert_int_equal(sw_verify(SW_SECRET, SW_ID, SW_TS_TEXT, SW_BODY, SW_SIG, SW_TS + 300, &err),
                     BZ_OK);
    assert_int_equal(sw_verify(SW_SECRET, SW_ID, SW_TS_TEXT, SW_BODY, SW_SIG, SW_TS - 300, &err),
                     BZ_OK);
    assert_failure(sw_verify(SW_SECRET, SW_ID, SW_TS_TEXT, SW_BODY, SW_SIG, SW_TS + 301, &err),
                   &err, BZ_ERR_INVALID, "301 s in the past (tolerance 300 s)");
    assert_failure(sw_verify(SW_SECRET, SW_ID, SW_TS_TEXT, SW_BODY, SW_SIG, SW_TS - 301, &err),
                   &err, BZ_ERR_INVALID, "301 s in the future");
    /* An explicit tolerance. */
    assert_int_equal(bz_stdwebhooks_verify(SW_SECRET, SW_ID, SW_TS_TEXT, SW_BODY, strlen(SW_BODY),
                                           SW_SIG, SW_TS + 10, 10, &err),
                     BZ_OK);
    assert_failure(bz_stdwebhooks_verify(SW_SECRET, SW_ID, SW_TS_TEXT, SW_BODY, strlen(SW_BODY),
                                         SW_SIG, SW_TS + 11, 10, &err),
                   &err, BZ_ERR_INVALID, "tolerance 10 s");
    /* Extreme clocks do not overflow. */
    assert_failure(sw_verify(SW_SECRET, SW_ID, SW_TS_TEXT, SW_BODY, SW_SIG, INT64_MIN, &err),
                   &err, BZ_ERR_INVALID, "in the future");
    assert_failure(sw_verify(SW_SECRET, SW_ID, SW_TS_TEXT, SW_BODY, SW_SIG, INT64_MAX, &err),
                   &err, BZ_ERR_INVALID, "in the past");
}

static void test_stdwebhooks_rejects_malformed_headers(void **state)
{
    (void)state;
    bz_error err = {0};
    const char *bad_ts[] = {"", "abc", "-1614265330", "+1614265330", "1614265330.5",
                            "16142 65330", "1234567890123456789", NULL};
    for (size_t i = 0; i < sizeof bad_ts / sizeof bad_ts[0]; i++)
        assert_int_equal(sw_verify(SW_SECRET, SW_ID, bad_ts[i], SW_BODY, SW_SIG, SW_TS, &err),
                         BZ_ERR_INVALID);
    assert_failure(sw_verify(SW_SECRET, SW_ID, "abc", SW_BODY, SW_SIG, SW_TS, &err), &err,
                   BZ_ERR_INVALID, "not a decimal Unix time");
    assert_failure(sw_verify(SW_SECRET, SW_ID, NULL, SW_BODY, SW_SIG, SW_TS, &err), &err,
                   BZ_ERR_INVALID, "missing webhook-timestamp");
    assert_int_equal(sw_verify(SW_SECRET, SW_ID, " " SW_TS_TEXT " ", SW_BODY, SW_SIG, SW_TS, &err),
                     BZ_OK);

    assert_failure(sw_verify(SW_SECRET, "", SW_TS_TEXT, SW_BODY, SW_SIG, SW_TS, &err), &err,
                   BZ_ERR_INVALID, "missing webhook-id");
    assert_failure(sw_verify(SW_SECRET, NULL, SW_TS_TEXT, SW_BODY, SW_SIG, SW_TS, &err), &err,
                   BZ_ERR_INVALID, "missing webhook-id");
    assert_failure(sw_verify(SW_SECRET, SW_ID, SW_TS_TEXT, SW_BODY, NULL, SW_TS, &err), &err,
                   BZ_ERR_INVALID, "missing webhook-signature");

    const char *no_v1[] = {"", "   ", "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
                           "v1a,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
                           "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
                           "V1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", "v1"};
    for (size_t i = 0; i < sizeof no_v1 / sizeof no_v1[0]; i++)
        assert_failure(sw_verify(SW_SECRET, SW_ID, SW_TS_TEXT, SW_BODY, no_v1[i], SW_TS, &err),
                       &err, BZ_ERR_INVALID, "no v1 signature");

    const char *no_match[] = {"v1,", "v1,!!!!", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE",
                              "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=AAAA",
                              "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE",
                              "v1, g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="};
    for (size_t i = 0; i < sizeof no_match / sizeof no_match[0]; i++)
        assert_failure(sw_verify(SW_SECRET, SW_ID, SW_TS_TEXT, SW_BODY, no_match[i], SW_TS, &err),
                       &err, BZ_ERR_INVALID, "no signature matches");

    char huge[5000];
    memset(huge, ' ', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    memcpy(huge, SW_SIG, strlen(SW_SIG));
    assert_failure(sw_verify(SW_SECRET, SW_ID, SW_TS_TEXT, SW_BODY, huge, SW_TS, &err), &err,
                   BZ_ERR_INVALID, "longer than 4096 bytes");
}

static void test_stdwebhooks_any_candidate_matches(void **state)
{
    (void)state;
    bz_error err = {0};
    const char *headers[] = {
        SW_SIG,
        "  " SW_SIG "  ",
        "v1,bm90IHRoZSBzaWduYXR1cmUgeW91IGFyZSBsb29raW5nIGZvcg== " SW_SIG,
        SW_SIG " v1,bm90IHRoZSBzaWduYXR1cmUgeW91IGFyZSBsb29raW5nIGZvcg==",
        "v1a,ZmFrZQ== v2,xyz " SW_SIG,
        "v1,!!!! " SW_SIG " garbage",
    };
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++)
        if (sw_verify(SW_SECRET, SW_ID, SW_TS_TEXT, SW_BODY, headers[i], SW_TS, &err) != BZ_OK)
            fail_msg("header %zu: %s", i, err.msg);
}

static void test_stdwebhooks_rotation(void **state)
{
    (void)state;
    const char *secrets[] = {SW_SECRET, SW_OTHER_SECRET};
    char header[2 * (BZ_STDWEBHOOKS_SIG_LEN + 1)], other[BZ_STDWEBHOOKS_SIG_LEN + 1];
    bz_error err = {0};
    assert_int_equal(bz_stdwebhooks_sign_all(secrets, 2, SW_ID, SW_TS, SW_BODY, strlen(SW_BODY),
                                             header, sizeof header, &err),
                     BZ_OK);
    assert_int_equal(bz_stdwebhooks_sign(SW_OTHER_SECRET, SW_ID, SW_TS, SW_BODY, strlen(SW_BODY),
                                         other, sizeof other, &err),
                     BZ_OK);
    char want[sizeof header];
    snprintf(want, sizeof want, "%s %s", SW_SIG, other);
    assert_string_equal(header, want);
    /* A receiver holding either secret accepts the delivery. */
    assert_int_equal(sw_verify(SW_SECRET, SW_ID, SW_TS_TEXT, SW_BODY, header, SW_TS, &err), BZ_OK);
    assert_int_equal(sw_verify(SW_OTHER_SECRET, SW_ID, SW_TS_TEXT, SW_BODY, header, SW_TS, &err),
                     BZ_OK);
    assert_failure(sw_verify("whsec_" "dGhpcmQtc2VjcmV0", SW_ID, SW_TS_TEXT, SW_BODY, header,
                             SW_TS, &err),
                   &err, BZ_ERR_INVALID, "no signature matches");

    /* Exactly enough room, then one byte short. */
    assert_int_equal(bz_stdwebhooks_sign_all(secrets, 2, SW_ID, SW_TS, SW_BODY, strlen(SW_BODY),
                                             header, 2 * BZ_STDWEBHOOKS_SIG_LEN + 2, &err),
                     BZ_OK);
    assert_failure(bz_stdwebhooks_sign_all(secrets, 2, SW_ID, SW_TS, SW_BODY, strlen(SW_BODY),
                                           header, 2 * BZ_STDWEBHOOKS_SIG_LEN + 1, &err),
                   &err, BZ_ERR_INTERNAL, "too small");
    assert_string_equal(header, "");
    assert_failure(bz_stdwebhooks_sign_all(secrets, 0, SW_ID, SW_TS, SW_BODY, strlen(SW_BODY),
                                           header, sizeof header, &err),
                   &err, BZ_ERR_CONFIG, "no secrets");
    const char *one_bad[] = {SW_SECRET, "whsec_%%%%"};
    assert_failure(bz_stdwebhooks_sign_all(one_bad, 2, SW_ID, SW_TS, SW_BODY, strlen(SW_BODY),
                                           header, sizeof header, &err),
                   &err, BZ_ERR_CONFIG, "secret #2: stdwebhooks secret");
    assert_string_equal(header, "");
}

static void test_stdwebhooks_sign_rejects_bad_arguments(void **state)
{
    (void)state;
    char sig[BZ_STDWEBHOOKS_SIG_LEN + 1];
    bz_error err = {0};
    assert_failure(bz_stdwebhooks_sign(SW_SECRET, SW_ID, SW_TS, SW_BODY, strlen(SW_BODY), sig,
                                       BZ_STDWEBHOOKS_SIG_LEN, &err),
                   &err, BZ_ERR_INTERNAL, "output buffer too small (47 bytes, need 48)");
    assert_failure(bz_stdwebhooks_sign(SW_SECRET, "", SW_TS, SW_BODY, strlen(SW_BODY), sig,
                                       sizeof sig, &err),
                   &err, BZ_ERR_INVALID, "missing webhook-id");
    assert_failure(bz_stdwebhooks_sign(SW_SECRET, SW_ID, -1, SW_BODY, strlen(SW_BODY), sig,
                                       sizeof sig, &err),
                   &err, BZ_ERR_INVALID, "negative timestamp");
    /* An empty body is a valid thing to sign, and to verify. */
    assert_int_equal(bz_stdwebhooks_sign(SW_SECRET, SW_ID, SW_TS, NULL, 0, sig, sizeof sig, &err),
                     BZ_OK);
    assert_int_equal(bz_stdwebhooks_verify(SW_SECRET, SW_ID, SW_TS_TEXT, NULL, 0, sig, SW_TS, 0,
                                           &err),
                     BZ_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hmac_rfc4231),
        cmocka_unit_test(test_hmac_of_empty_body),
        cmocka_unit_test(test_hmac_refuses_empty_key),
        cmocka_unit_test(test_hex_encode),
        cmocka_unit_test(test_hex_decode_accepts_either_case),
        cmocka_unit_test(test_hex_decode_rejects_malformed),
        cmocka_unit_test(test_hex_round_trip),
        cmocka_unit_test(test_base64_rfc4648_vectors),
        cmocka_unit_test(test_base64_round_trip_matches_openssl),
        cmocka_unit_test(test_base64_rejects_malformed),
        cmocka_unit_test(test_base64_buffer_boundaries),
        cmocka_unit_test(test_verify_hex_accepts_good_signature),
        cmocka_unit_test(test_verify_hex_rejects_tampering),
        cmocka_unit_test(test_verify_hex_rejects_malformed_headers),
        cmocka_unit_test(test_timestamped_mode_matches_its_description),
        cmocka_unit_test(test_timestamped_and_plain_modes_are_separate),
        cmocka_unit_test(test_verify_meta),
        cmocka_unit_test(test_stdwebhooks_published_vector),
        cmocka_unit_test(test_stdwebhooks_secret_without_prefix),
        cmocka_unit_test(test_stdwebhooks_secret_parse),
        cmocka_unit_test(test_stdwebhooks_rejects_tampering),
        cmocka_unit_test(test_stdwebhooks_timestamp_tolerance),
        cmocka_unit_test(test_stdwebhooks_rejects_malformed_headers),
        cmocka_unit_test(test_stdwebhooks_any_candidate_matches),
        cmocka_unit_test(test_stdwebhooks_rotation),
        cmocka_unit_test(test_stdwebhooks_sign_rejects_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
