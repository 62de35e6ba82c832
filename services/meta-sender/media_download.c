/*
 * media_download.c - the two Graph API requests that bring an inbound
 * message's media (see media_fetch.h; Meta's Cloud API, "Media":
 * "Retrieve media URL" and "Download media").
 *
 * GET /{version}/{media-id} with the account's token answers
 * {"messaging_product", "url", "mime_type", "sha256", "file_size", "id"}:
 * sha256 is the hex digest of the bytes, file_size a number or a string,
 * and the URL is valid for five minutes. The URL is then fetched with the
 * same token (Meta requires it there too); an expired URL answers 4xx, and
 * the way on is to ask for a new one. The body streams into the media
 * store's spool, which counts it against the kind's limit, hashes it and
 * sniffs it, so nothing is held whole in memory. The webhook's sha256
 * (base64 of the digest in Meta's webhooks) is checked too when given.
 * Nothing is followed: no redirects, http(s) only, and the token is never
 * logged. Both requests run on the fetcher thread's own easy handle, so
 * they reuse its connections (Meta's API host and its media host).
 */
#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bytes.h"
#include "core/hex.h"
#include "media_fetch.h"
#include "meta_sender.h"
#include "wa/meta_graph.h"

#define ANSWER_MAX 65536
#define ERROR_BODY_MAX 4096

typedef struct exchange {
    CURL *easy;
    struct curl_slist *headers;
    bz_bytes body; /* the answer (JSON, or an error's body) */
    bz_media_spool *spool; /* a download's destination, for 2xx */
    bz_error spool_err;
    int spool_failed;
} exchange;

static size_t keep_body(exchange *x, const char *data, size_t n, size_t max)
{
    bz_error err;
    bz_status st = bz_bytes_append(&x->body, data, n, max, &err);
    if (st == BZ_ERR_INVALID)
        return x->body.len >= max ? n : 0; /* an oversized error body: keep the head only */
    return st == BZ_OK ? n : 0;
}

static size_t on_data(char *data, size_t size, size_t nmemb, void *ctx)
{
    exchange *x = ctx;
    size_t n = size * nmemb;
    long status = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    if (!x->spool || status < 200 || status > 299)
        return keep_body(x, data, n, x->spool ? ERROR_BODY_MAX : ANSWER_MAX) == n ? n : 0;
    if (bz_media_spool_write(x->spool, data, n, &x->spool_err) != BZ_OK) {
        x->spool_failed = 1;
        return 0;
    }
    return n;
}

/* x on the fetcher's handle easy, reset: its connections stay open from
 * one exchange to the next. */
static bz_status exchange_open(exchange *x, CURL *easy, const ms_media_settings *s,
                               const char *url, const char *token, bz_error *err)
{
    memset(x, 0, sizeof *x);
    bz_error_clear(&x->spool_err);
    curl_easy_reset(easy);
    x->easy = easy;
    size_t cap = strlen(token) + 32;
    char *auth = malloc(cap);
    if (auth) {
        snprintf(auth, cap, "Authorization: Bearer %s", token);
        x->headers = curl_slist_append(NULL, auth);
        OPENSSL_cleanse(auth, cap);
        free(auth);
    }
    if (!x->headers)
        return bz_fail(err, BZ_ERR_NOMEM, "media fetch: out of memory");
    CURL *e = x->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    ms_curl_graph_options(e, s->request_timeout_ms, s->connect_timeout_ms);
    return BZ_OK;
}

static void exchange_close(exchange *x)
{
    for (struct curl_slist *h = x->headers; h; h = h->next)
        OPENSSL_cleanse(h->data, strlen(h->data)); /* it held the token */
    curl_slist_free_all(x->headers);
    curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, NULL); /* the list is gone */
    bz_bytes_free(&x->body);
}

/* Run it; BZ_ERR_TRANSIENT when no answer came. */
static bz_status exchange_run(exchange *x, const char *what, long *status, bz_error *err)
{
    CURLcode rc = curl_easy_perform(x->easy);
    *status = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, status);
    if (rc == CURLE_OK)
        return BZ_OK;
    if (x->spool_failed) {
        *err = x->spool_err;
        return err->code;
    }
    return bz_fail(err, BZ_ERR_TRANSIENT, "%s: %s", what, curl_easy_strerror(rc));
}

/* A sha256 as Meta writes it (64 hex digits, or base64 of the 32 bytes) as
 * 64 lower-case hex digits in out; 0 when it is neither. */
static int sha256_hex_of(const char *given, char out[65])
{
    size_t n = given ? strlen(given) : 0;
    if (n == 64 && strspn(given, "0123456789abcdefABCDEF") == 64) {
        for (size_t i = 0; i < 64; i++)
            out[i] = (char)(given[i] >= 'A' && given[i] <= 'F' ? given[i] - 'A' + 'a' : given[i]);
        out[64] = '\0';
        return 1;
    }
    unsigned char raw[48];
    /* base64 of 32 bytes: 43 symbols and one '=' (EVP_DecodeBlock counts the pad as a byte) */
    if (n != 44 || given[43] != '=' || given[42] == '=' ||
        EVP_DecodeBlock(raw, (const unsigned char *)given, 44) != 33)
        return 0;
    bz_hex_encode(raw, 32, out, 65, NULL);
    return 1;
}

static int64_t size_of(json_t *v)
{
    if (json_is_integer(v))
        return json_integer_value(v);
    if (json_is_string(v)) {
        char *end = NULL;
        long long n = strtoll(json_string_value(v), &end, 10);
        return end && !*end && n >= 0 ? (int64_t)n : -1;
    }
    return -1;
}

static bz_status read_answer(const exchange *x, const ms_media_job *job, ms_media_meta *out,
                             bz_error *err)
{
    json_t *doc = json_loadb(x->body.data ? x->body.data : "", x->body.len, 0, NULL);
    const char *url = json_string_value(json_object_get(doc, "url"));
    const char *mime = json_string_value(json_object_get(doc, "mime_type"));
    const char *sha = json_string_value(json_object_get(doc, "sha256"));
    bz_status st = BZ_OK;
    if (!url || !*url)
        st = bz_reject(err, "media_answer_invalid", "media %s: Graph answer without a url",
                       job->media_id);
    else if (sha && *sha && !sha256_hex_of(sha, out->sha256))
        st = bz_reject(err, "media_answer_invalid", "media %s: Graph answer's sha256 is not one",
                       job->media_id);
    else if (!(out->url = strdup(url)))
        st = bz_fail(err, BZ_ERR_NOMEM, "media %s: out of memory", job->media_id);
    if (st == BZ_OK) {
        snprintf(out->mime_type, sizeof out->mime_type, "%s",
                 mime && *mime ? mime : job->declared_mime);
        out->file_size = size_of(json_object_get(doc, "file_size"));
    }
    json_decref(doc);
    return st;
}

/* A Graph error answer: what may pass is transient, the rest will not. */
static bz_status graph_refusal(const exchange *x, long status, const ms_media_job *job,
                               bz_error *err)
{
    bz_graph_error ge;
    bz_graph_error_read(status, x->body.data, x->body.len, &ge);
    if (ge.kind == BZ_GRAPH_REFUSED)
        return bz_reject(err, "media_unknown", "media %s: Graph refused it (HTTP %ld, %s: %s)",
                         job->media_id, status, ge.label, ge.text);
    return bz_fail(err, BZ_ERR_TRANSIENT, "media %s: HTTP %ld (%s: %s)", job->media_id, status,
                   ge.label, ge.text);
}

bz_status ms_media_ask(const ms_media_settings *s, CURL *easy, const ms_media_job *job,
                       const char *token, ms_media_meta *out, bz_error *err)
{
    memset(out, 0, sizeof *out);
    out->file_size = -1;
    char *escaped = curl_easy_escape(NULL, job->media_id, 0);
    size_t cap = strlen(s->base_url) + strlen(s->api_version) + (escaped ? strlen(escaped) : 0) + 4;
    char *url = escaped ? malloc(cap) : NULL;
    if (url)
        snprintf(url, cap, "%s/%s/%s", s->base_url, s->api_version, escaped);
    curl_free(escaped);
    exchange x = {.easy = easy};
    bz_status st = url ? exchange_open(&x, easy, s, url, token, err)
                       : bz_fail(err, BZ_ERR_NOMEM, "media fetch: out of memory");
    free(url);
    long status = 0;
    if (st == BZ_OK)
        st = exchange_run(&x, "ask Meta for the media URL", &status, err);
    if (st == BZ_OK && (status < 200 || status > 299))
        st = graph_refusal(&x, status, job, err);
    else if (st == BZ_OK)
        st = read_answer(&x, job, out, err);
    exchange_close(&x);
    return st;
}

void ms_media_meta_free(ms_media_meta *m)
{
    free(m->url);
    m->url = NULL;
}

/* The bytes against every digest Meta gave. */
static bz_status check_digest(const ms_media_job *job, const ms_media_meta *meta,
                              const bz_media_object *obj, bz_error *err)
{
    char declared[65];
    if (meta->sha256[0] && strcmp(meta->sha256, obj->sha256) != 0)
        return bz_reject(err, "media_sha256_mismatch",
                         "media %s: bytes hash to %s, Meta says %s", job->media_id, obj->sha256,
                         meta->sha256);
    if (job->declared_sha256[0] && sha256_hex_of(job->declared_sha256, declared) &&
        strcmp(declared, obj->sha256) != 0)
        return bz_reject(err, "media_sha256_mismatch",
                         "media %s: bytes hash to %s, the webhook said %s", job->media_id,
                         obj->sha256, declared);
    return BZ_OK;
}

bz_status ms_media_download(const ms_media_settings *s, CURL *easy, const ms_media_job *job,
                            const char *token, const ms_media_meta *meta, bz_media_spool *spool,
                            bz_media_object *obj, bz_error *err)
{
    exchange x;
    bz_status st = exchange_open(&x, easy, s, meta->url, token, err);
    x.spool = spool;
    long status = 0;
    if (st == BZ_OK)
        st = exchange_run(&x, "download media", &status, err);
    if (st == BZ_OK && status >= 400 && status < 500) {
        st = bz_fail(err, BZ_ERR_TRANSIENT, "media %s: download URL answered HTTP %ld "
                     "(expired?): ask for a new one", job->media_id, status);
        err->reason = "media_url_expired";
    } else if (st == BZ_OK && (status < 200 || status > 299)) {
        st = bz_fail(err, BZ_ERR_TRANSIENT, "media %s: download answered HTTP %ld",
                     job->media_id, status);
    }
    exchange_close(&x);
    if (st == BZ_OK)
        st = bz_media_spool_finish(spool, job->workspace_id, meta->mime_type, obj, err);
    return st == BZ_OK ? check_digest(job, meta, obj, err) : st;
}
