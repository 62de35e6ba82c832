/*
 * store_s3.c - the S3 backend (store_backend.h, ARCHITECTURE.md §16.1):
 * objects in one bucket of any S3-compatible server, path-style
 * (<endpoint>/<bucket>/<key>).
 *
 * libcurl signs every request (CURLOPT_AWS_SIGV4 "aws:amz:<region>:s3",
 * the keys as user name and password, never on a command line). Each
 * request carries x-amz-content-sha256: the spool's SHA-256 for a PUT (the
 * server checks the body against it, and libcurl signs it as the payload
 * hash instead of reading the file twice), the empty body's hash
 * otherwise, which S3 requires of header-signed requests. A commit is a
 * HEAD (the same bytes stored already: nothing to send) and then one PUT
 * of the spool file.
 *
 * Failures: no answer (connect, timeout, reset) and 5xx, 429 or 408 are
 * BZ_ERR_TRANSIENT, for the caller to retry; 401/403 (keys, clock) are
 * BZ_ERR_CONFIG; a 404 on read is BZ_ERR_NOT_FOUND; anything else BZ_ERR_IO.
 * The S3 error code from the answer's XML goes into the message.
 */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "media/sigv4.h"
#include "media/store_backend.h"

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define CONNECT_TIMEOUT_S 10L
/* A transfer slower than 1 KB/s for 60 s is a dead peer, whatever its size. */
#define LOW_SPEED_BYTES 1024L
#define LOW_SPEED_TIME_S 60L
#define ERROR_BODY_MAX 1024

struct bz_media_s3 {
    CURL *curl;
    char *endpoint; /* no trailing slash */
    char *region;
    char *bucket;
    char *access_key;
    char *secret_key;
    char sigv4[96]; /* "aws:amz:<region>:s3" */
};

/* One request's answer: the sink for a 200 GET, else the start of the
 * body for the error message. */
typedef struct s3_reply {
    CURL *curl;
    bz_media_sink sink;
    void *ctx;
    int sink_stopped;
    char body[ERROR_BODY_MAX];
    size_t body_len;
} s3_reply;

static void free_secret(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

void bz_media_s3_close(bz_media_s3 *s3)
{
    if (!s3)
        return;
    if (s3->curl)
        curl_easy_cleanup(s3->curl);
    free(s3->endpoint);
    free(s3->region);
    free(s3->bucket);
    free_secret(s3->access_key);
    free_secret(s3->secret_key);
    free(s3);
}

static bz_status required(const bz_config *cfg, const char *key, char **out, bz_error *err)
{
    const char *v = bz_config_string(cfg, key);
    if (!v || !*v)
        return bz_fail(err, BZ_ERR_CONFIG, "media store: %s is required when media.location "
                       "is s3", key);
    if (!(*out = strdup(v)))
        return bz_fail(err, BZ_ERR_NOMEM, "media store: out of memory");
    return BZ_OK;
}

static int bucket_name_valid(const char *b)
{
    size_t n = strlen(b);
    return n >= 3 && n <= 63 && strspn(b, "abcdefghijklmnopqrstuvwxyz0123456789.-") == n;
}

bz_status bz_media_s3_open(const bz_config *cfg, bz_media_s3 **out, bz_error *err)
{
    *out = NULL;
    bz_media_s3 *s3 = calloc(1, sizeof *s3);
    if (!s3)
        return bz_fail(err, BZ_ERR_NOMEM, "media store: out of memory");
    bz_status st = required(cfg, "media.s3_endpoint", &s3->endpoint, err);
    if (st == BZ_OK)
        st = required(cfg, "media.s3_region", &s3->region, err);
    if (st == BZ_OK)
        st = required(cfg, "media.s3_bucket", &s3->bucket, err);
    if (st == BZ_OK)
        st = required(cfg, "media.s3_access_key", &s3->access_key, err);
    if (st == BZ_OK)
        st = required(cfg, "media.s3_secret_key", &s3->secret_key, err);
    if (st == BZ_OK && strncmp(s3->endpoint, "http://", 7) != 0 &&
        strncmp(s3->endpoint, "https://", 8) != 0)
        st = bz_fail(err, BZ_ERR_CONFIG, "media store: media.s3_endpoint must be http(s)://");
    if (st == BZ_OK && !bucket_name_valid(s3->bucket))
        st = bz_fail(err, BZ_ERR_CONFIG, "media store: media.s3_bucket \"%.64s\" is not a "
                     "bucket name", s3->bucket);
    if (st == BZ_OK && !(s3->curl = curl_easy_init()))
        st = bz_fail(err, BZ_ERR_NOMEM, "media store: curl_easy_init failed");
    if (st != BZ_OK) {
        bz_media_s3_close(s3);
        return st;
    }
    size_t n = strlen(s3->endpoint);
    while (n > 0 && s3->endpoint[n - 1] == '/')
        s3->endpoint[--n] = '\0';
    snprintf(s3->sigv4, sizeof s3->sigv4, "aws:amz:%s:s3", s3->region);
    *out = s3;
    return BZ_OK;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    s3_reply *r = userdata;
    size_t len = size * nmemb;
    long code = 0;
    curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &code);
    if (code == 200 && r->sink) {
        if (r->sink(r->ctx, data, len) != 0) {
            r->sink_stopped = 1;
            return 0;
        }
        return len;
    }
    size_t room = sizeof r->body - 1 - r->body_len;
    size_t keep = len < room ? len : room;
    memcpy(r->body + r->body_len, data, keep);
    r->body_len += keep;
    r->body[r->body_len] = '\0';
    return len;
}

/* The <Code> of an S3 error answer, into out ("" when there is none). */
static void s3_error_code(const char *body, char *out, size_t cap)
{
    const char *a = strstr(body, "<Code>");
    const char *b = a ? strstr(a, "</Code>") : NULL;
    out[0] = '\0';
    if (a && b)
        snprintf(out, cap, "%.*s", (int)(b - a - 6), a + 6);
}

static bz_status http_failure(const char *what, long code, const s3_reply *r, bz_error *err)
{
    char s3code[64];
    s3_error_code(r->body, s3code, sizeof s3code);
    bz_status st = BZ_ERR_IO;
    if (code >= 500 || code == 429 || code == 408)
        st = BZ_ERR_TRANSIENT;
    else if (code == 401 || code == 403)
        st = BZ_ERR_CONFIG;
    else if (code == 404)
        st = BZ_ERR_NOT_FOUND;
    return bz_fail(err, st, "%s: HTTP %ld %s", what, code, s3code);
}

static bz_status curl_failure(const char *what, CURLcode rc, const s3_reply *r, bz_error *err)
{
    if (r->sink_stopped)
        return bz_fail(err, BZ_ERR_IO, "%s: the reader stopped", what);
    bz_status st = BZ_ERR_TRANSIENT;
    if (rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL)
        st = BZ_ERR_CONFIG;
    else if (rc == CURLE_READ_ERROR || rc == CURLE_OUT_OF_MEMORY)
        st = BZ_ERR_IO;
    return bz_fail(err, st, "%s: %s", what, curl_easy_strerror(rc));
}

/* Options every request shares. */
static int set_common(bz_media_s3 *s3, const char *url, s3_reply *r, struct curl_slist *headers)
{
    CURL *c = s3->curl;
    int rc = 0;
    curl_easy_reset(c);
    rc |= curl_easy_setopt(c, CURLOPT_URL, url);
    rc |= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    rc |= curl_easy_setopt(c, CURLOPT_PROXY, "");
    rc |= curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
    rc |= curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    rc |= curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    rc |= curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
    rc |= curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, LOW_SPEED_BYTES);
    rc |= curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, LOW_SPEED_TIME_S);
    rc |= curl_easy_setopt(c, CURLOPT_AWS_SIGV4, s3->sigv4);
    rc |= curl_easy_setopt(c, CURLOPT_USERNAME, s3->access_key);
    rc |= curl_easy_setopt(c, CURLOPT_PASSWORD, s3->secret_key);
    rc |= curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    rc |= curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    rc |= curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    return rc;
}

/* Send one request for key: method "GET", "HEAD", "PUT" (body: upload,
 * size bytes of SHA-256 sha256_hex) or "DELETE"; *code gets the HTTP
 * status. A GET's 200 body goes to sink. */
static bz_status s3_send(bz_media_s3 *s3, const char *method, const char *key, FILE *upload,
                         uint64_t size, const char *sha256_hex, bz_media_sink sink, void *ctx,
                         long *code, bz_error *err)
{
    char *url = NULL, sha_header[100];
    if (asprintf(&url, "%s/%s/%s", s3->endpoint, s3->bucket, key) < 0)
        return bz_fail(err, BZ_ERR_NOMEM, "s3 %s %s: out of memory", method, key);
    snprintf(sha_header, sizeof sha_header, "x-amz-content-sha256: %s",
             sha256_hex ? sha256_hex : EMPTY_SHA256);
    struct curl_slist *headers = curl_slist_append(NULL, sha_header);
    struct curl_slist *more = headers ? curl_slist_append(headers, "Expect:") : NULL;
    s3_reply r = {.curl = s3->curl, .sink = sink, .ctx = ctx};
    int rc = !more || set_common(s3, url, &r, more);
    if (strcmp(method, "HEAD") == 0)
        rc |= curl_easy_setopt(s3->curl, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "PUT") == 0)
        rc |= curl_easy_setopt(s3->curl, CURLOPT_UPLOAD, 1L) |
              curl_easy_setopt(s3->curl, CURLOPT_READDATA, upload) |
              curl_easy_setopt(s3->curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)size);
    else if (strcmp(method, "DELETE") == 0)
        rc |= curl_easy_setopt(s3->curl, CURLOPT_CUSTOMREQUEST, "DELETE");
    bz_status st = BZ_OK;
    char what[160];
    snprintf(what, sizeof what, "s3 %s %s", method, key);
    if (rc)
        st = bz_fail(err, BZ_ERR_INTERNAL, "%s: curl options refused", what);
    CURLcode cc = st == BZ_OK ? curl_easy_perform(s3->curl) : CURLE_OK;
    if (st == BZ_OK && cc != CURLE_OK)
        st = curl_failure(what, cc, &r, err);
    *code = 0;
    curl_easy_getinfo(s3->curl, CURLINFO_RESPONSE_CODE, code);
    /* HEAD asks whether the object is there, DELETE wants it gone: 404 answers both */
    int absent_answers = strcmp(method, "HEAD") == 0 || strcmp(method, "DELETE") == 0;
    if (st == BZ_OK && *code / 100 != 2 && !(absent_answers && *code == 404))
        st = http_failure(what, *code, &r, err);
    curl_slist_free_all(headers);
    free(url);
    return st;
}

bz_status bz_media_s3_put(bz_media_s3 *s3, const char *key, const char *tmp_path, uint64_t size,
                          const char *sha256_hex, int *existed, bz_error *err)
{
    long code = 0;
    *existed = 0;
    bz_status st = s3_send(s3, "HEAD", key, NULL, 0, NULL, NULL, NULL, &code, err);
    if (st != BZ_OK)
        return st;
    if (code == 200) {
        *existed = 1;
        return BZ_OK;
    }
    FILE *f = fopen(tmp_path, "rb");
    if (!f)
        return bz_fail(err, BZ_ERR_IO, "s3 PUT %s: open spool: %s", key, strerror(errno));
    st = s3_send(s3, "PUT", key, f, size, sha256_hex, NULL, NULL, &code, err);
    fclose(f);
    return st;
}

bz_status bz_media_s3_read(bz_media_s3 *s3, const char *key, bz_media_sink sink, void *ctx,
                           bz_error *err)
{
    long code = 0;
    return s3_send(s3, "GET", key, NULL, 0, NULL, sink, ctx, &code, err);
}

bz_status bz_media_s3_remove(bz_media_s3 *s3, const char *key, bz_error *err)
{
    long code = 0;
    return s3_send(s3, "DELETE", key, NULL, 0, NULL, NULL, NULL, &code, err);
}

bz_status bz_media_s3_link(const bz_media_s3 *s3, const char *key, int64_t now_s, int64_t ttl_s,
                           char **out, bz_error *err)
{
    bz_sigv4_credentials cred = {.access_key = s3->access_key, .secret_key = s3->secret_key,
                                 .region = s3->region, .service = "s3"};
    char path[256];
    snprintf(path, sizeof path, "/%s/%s", s3->bucket, key);
    return bz_sigv4_presign(&cred, "GET", s3->endpoint, path, (time_t)now_s, ttl_s, out, err);
}
