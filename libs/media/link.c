/*
 * link.c - the local store's signed, expiring links (see link.h,
 * ARCHITECTURE.md §16.1).
 *
 * The MAC covers "<media_uuid>\n<workspace_id>\n<expires>": fields that
 * cannot contain a newline, so no two triples sign the same text. Checking
 * decodes the candidate only after its shape (64 hex digits) is known, then
 * compares the two 32-byte digests with CRYPTO_memcmp, whose time does not
 * depend on where they differ; the expiry is checked after the signature so
 * that an expired link says so only when it was genuine.
 */
#include "media/link.h"

#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hex.h"

#define MAC_LEN 32
#define UUID_TEXT_MAX 64

/* The raw MAC of the triple under secret. */
static bz_status link_mac(const char *secret, const char *media_uuid, int64_t workspace_id,
                          int64_t expires, unsigned char mac[MAC_LEN], bz_error *err)
{
    if (!secret || !*secret)
        return bz_fail(err, BZ_ERR_CONFIG, "media link: media.link_secret is not set");
    if (!media_uuid || strlen(media_uuid) > UUID_TEXT_MAX || strchr(media_uuid, '\n'))
        return bz_reject(err, "bad_link_signature", "media link: malformed media uuid");
    char text[UUID_TEXT_MAX + 48];
    int n = snprintf(text, sizeof text, "%s\n%" PRId64 "\n%" PRId64, media_uuid, workspace_id,
                     expires);
    unsigned int maclen = 0;
    if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)text, (size_t)n,
              mac, &maclen) ||
        maclen != MAC_LEN)
        return bz_fail(err, BZ_ERR_INTERNAL, "media link: HMAC-SHA256 failed");
    return BZ_OK;
}

bz_status bz_media_link_sign(const char *secret, const char *media_uuid, int64_t workspace_id,
                             int64_t expires, char out[BZ_MEDIA_LINK_SIGNATURE_HEX + 1],
                             bz_error *err)
{
    unsigned char mac[MAC_LEN];
    out[0] = '\0';
    bz_status st = link_mac(secret, media_uuid, workspace_id, expires, mac, err);
    if (st == BZ_OK)
        st = bz_hex_encode(mac, sizeof mac, out, BZ_MEDIA_LINK_SIGNATURE_HEX + 1, err);
    OPENSSL_cleanse(mac, sizeof mac);
    return st;
}

bz_status bz_media_link_make(const char *secret, const char *base_url, const char *media_uuid,
                             int64_t workspace_id, int64_t now_s, int64_t ttl_s, char **out,
                             bz_error *err)
{
    *out = NULL;
    if (!base_url || !*base_url)
        return bz_fail(err, BZ_ERR_CONFIG, "media link: media.link_base_url is not set");
    int64_t expires = now_s + ttl_s;
    char sig[BZ_MEDIA_LINK_SIGNATURE_HEX + 1];
    bz_status st = bz_media_link_sign(secret, media_uuid, workspace_id, expires, sig, err);
    if (st != BZ_OK)
        return st;
    char *url = NULL;
    if (asprintf(&url, "%s/v1/media/%s/content?workspace=%" PRId64 "&expires=%" PRId64
                       "&signature=%s",
                 base_url, media_uuid, workspace_id, expires, sig) < 0)
        return bz_fail(err, BZ_ERR_NOMEM, "media link: out of memory");
    *out = url;
    return BZ_OK;
}

bz_status bz_media_link_check(const char *secret, const char *media_uuid, int64_t workspace_id,
                              int64_t expires, const char *signature_hex, int64_t now_s,
                              bz_error *err)
{
    unsigned char given[MAC_LEN], expected[MAC_LEN];
    size_t given_len = 0;
    bz_error ignored;
    if (!signature_hex || strlen(signature_hex) != BZ_MEDIA_LINK_SIGNATURE_HEX ||
        bz_hex_decode(signature_hex, BZ_MEDIA_LINK_SIGNATURE_HEX, given, sizeof given, &given_len,
                      &ignored) != BZ_OK ||
        given_len != MAC_LEN)
        return bz_reject(err, "bad_link_signature", "media link: signature is not 64 hex digits");
    bz_status st = link_mac(secret, media_uuid, workspace_id, expires, expected, err);
    if (st == BZ_OK && CRYPTO_memcmp(given, expected, MAC_LEN) != 0)
        st = bz_reject(err, "bad_link_signature", "media link: signature does not match");
    else if (st == BZ_OK && expires <= now_s)
        st = bz_reject(err, "link_expired", "media link: expired %" PRId64 " s ago",
                       now_s - expires);
    OPENSSL_cleanse(expected, sizeof expected);
    return st;
}
