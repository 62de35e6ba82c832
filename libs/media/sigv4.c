/*
 * sigv4.c - AWS Signature Version 4 presigned URLs (see sigv4.h),
 * following "Authenticating Requests: Using Query Parameters (AWS
 * Signature Version 4)" (ARCHITECTURE.md §16.1):
 *
 *   canonical request = METHOD \n URI \n sorted query \n "host:" host \n \n
 *                       "host" \n "UNSIGNED-PAYLOAD"
 *   string to sign    = "AWS4-HMAC-SHA256" \n time \n scope \n hex(SHA-256(canonical))
 *   signing key       = HMAC(HMAC(HMAC(HMAC("AWS4" secret, date), region), service),
 *                            "aws4_request")
 *
 * Only host is signed, so any client can use the URL as it is; the query
 * names are already in sorted order as written. The host is the
 * endpoint's authority as libcurl (and browsers) send it in Host: without
 * the scheme's default port.
 */
#include "media/sigv4.h"

#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hex.h"
#include "core/sha256.h"

#define SHA256_LEN 32
#define EXPIRES_MAX 604800

static int is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

/* s URI-encoded as SigV4 asks (upper-case hex, unreserved bytes kept) to
 * f; keep_slash keeps '/', keep_escapes keeps "%XX" already there. */
static void uri_encode(FILE *f, const char *s, int keep_slash, int keep_escapes)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (is_unreserved(*p) || (keep_slash && *p == '/'))
            fputc(*p, f);
        else if (keep_escapes && *p == '%' && bz_hex_digit_value(p[1]) >= 0 &&
                 bz_hex_digit_value(p[2]) >= 0)
            fputc('%', f);
        else
            fprintf(f, "%%%02X", *p);
    }
}

/* The authority of endpoint_url (scheme and path dropped, default port
 * too) into host. */
static bz_status endpoint_host(const char *endpoint_url, char *host, size_t cap, bz_error *err)
{
    const char *rest = NULL, *default_port = NULL;
    if (strncmp(endpoint_url, "https://", 8) == 0)
        rest = endpoint_url + 8, default_port = ":443";
    else if (strncmp(endpoint_url, "http://", 7) == 0)
        rest = endpoint_url + 7, default_port = ":80";
    size_t n = rest ? strcspn(rest, "/?#") : 0;
    if (n == 0 || n >= cap)
        return bz_fail(err, BZ_ERR_CONFIG, "sigv4: endpoint \"%.100s\" is not http(s)://host",
                       endpoint_url);
    memcpy(host, rest, n);
    host[n] = '\0';
    size_t dl = strlen(default_port);
    if (n > dl && strcmp(host + n - dl, default_port) == 0)
        host[n - dl] = '\0';
    return BZ_OK;
}

static int hmac(const void *key, size_t keylen, const char *msg, unsigned char out[SHA256_LEN])
{
    unsigned int len = 0;
    return HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg, strlen(msg), out,
                &len) != NULL &&
           len == SHA256_LEN;
}

/* The signature of string_to_sign for date (YYYYMMDD), as hex into sig. */
static bz_status sign(const bz_sigv4_credentials *cred, const char *date,
                      const char *string_to_sign, char sig[2 * SHA256_LEN + 1], bz_error *err)
{
    size_t klen = 4 + strlen(cred->secret_key);
    char *k0 = malloc(klen + 1);
    if (!k0)
        return bz_fail(err, BZ_ERR_NOMEM, "sigv4: out of memory");
    snprintf(k0, klen + 1, "AWS4%s", cred->secret_key);
    unsigned char k[SHA256_LEN], mac[SHA256_LEN];
    int ok = hmac(k0, klen, date, k) && hmac(k, sizeof k, cred->region, k) &&
             hmac(k, sizeof k, cred->service, k) && hmac(k, sizeof k, "aws4_request", k) &&
             hmac(k, sizeof k, string_to_sign, mac);
    OPENSSL_cleanse(k0, klen);
    free(k0);
    OPENSSL_cleanse(k, sizeof k);
    if (!ok)
        return bz_fail(err, BZ_ERR_INTERNAL, "sigv4: HMAC-SHA256 failed");
    return bz_hex_encode(mac, sizeof mac, sig, 2 * SHA256_LEN + 1, err);
}

/* What the canonical request, the string to sign and the URL share: the
 * URI and the query without its signature, into uri and query (heap). */
static bz_status canonical_parts(const bz_sigv4_credentials *cred, const char *path,
                                 const char *date, const char *stamp, int64_t expires_s,
                                 char **uri, char **query)
{
    size_t n;
    FILE *f = open_memstream(uri, &n);
    if (!f)
        return BZ_ERR_NOMEM;
    if (path[0] != '/')
        fputc('/', f);
    uri_encode(f, path, 1, 1);
    if (fclose(f) != 0)
        return BZ_ERR_NOMEM;
    char credential[512];
    snprintf(credential, sizeof credential, "%s/%s/%s/%s/aws4_request", cred->access_key, date,
             cred->region, cred->service);
    if (!(f = open_memstream(query, &n)))
        return BZ_ERR_NOMEM;
    fputs("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=", f);
    uri_encode(f, credential, 0, 0);
    fprintf(f, "&X-Amz-Date=%s&X-Amz-Expires=%" PRId64 "&X-Amz-SignedHeaders=host", stamp,
            expires_s);
    return fclose(f) == 0 ? BZ_OK : BZ_ERR_NOMEM;
}

static int credentials_complete(const bz_sigv4_credentials *c)
{
    return c && c->access_key && *c->access_key && c->secret_key && *c->secret_key &&
           c->region && *c->region && c->service && *c->service;
}

bz_status bz_sigv4_presign(const bz_sigv4_credentials *cred, const char *method,
                           const char *endpoint_url, const char *path, time_t now,
                           int64_t expires_s, char **out, bz_error *err)
{
    *out = NULL;
    if (!credentials_complete(cred) || !method || !path || !endpoint_url)
        return bz_fail(err, BZ_ERR_CONFIG, "sigv4: credentials, region or service missing");
    if (expires_s < 1 || expires_s > EXPIRES_MAX)
        return bz_fail(err, BZ_ERR_CONFIG, "sigv4: expiry %" PRId64 " s not in 1..%d",
                       expires_s, EXPIRES_MAX);
    char host[256], date[9], stamp[17];
    bz_status st = endpoint_host(endpoint_url, host, sizeof host, err);
    if (st != BZ_OK)
        return st;
    struct tm tm;
    if (!gmtime_r(&now, &tm) || !strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm))
        return bz_fail(err, BZ_ERR_INTERNAL, "sigv4: time out of range");
    memcpy(date, stamp, 8);
    date[8] = '\0';
    char *uri = NULL, *query = NULL, *creq = NULL, *sts = NULL;
    if (canonical_parts(cred, path, date, stamp, expires_s, &uri, &query) != BZ_OK ||
        asprintf(&creq, "%s\n%s\n%s\nhost:%s\n\nhost\nUNSIGNED-PAYLOAD", method, uri, query,
                 host) < 0) {
        creq = NULL;
        st = bz_fail(err, BZ_ERR_NOMEM, "sigv4: out of memory");
    }
    char creq_hash[2 * SHA256_LEN + 1], sig[2 * SHA256_LEN + 1];
    if (st == BZ_OK)
        st = bz_sha256_hex(creq, strlen(creq), creq_hash, err);
    if (st == BZ_OK &&
        asprintf(&sts, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", stamp, date,
                 cred->region, cred->service, creq_hash) < 0) {
        sts = NULL;
        st = bz_fail(err, BZ_ERR_NOMEM, "sigv4: out of memory");
    }
    if (st == BZ_OK)
        st = sign(cred, date, sts, sig, err);
    size_t elen = strlen(endpoint_url);
    while (elen > 0 && endpoint_url[elen - 1] == '/')
        elen--;
    if (st == BZ_OK && asprintf(out, "%.*s%s?%s&X-Amz-Signature=%s", (int)elen, endpoint_url,
                                uri, query, sig) < 0) {
        *out = NULL;
        st = bz_fail(err, BZ_ERR_NOMEM, "sigv4: out of memory");
    }
    free(uri);
    free(query);
    free(creq);
    free(sts);
    return st;
}
