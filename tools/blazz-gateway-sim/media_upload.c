/*
 * media_upload.c - a gateway's media uploads (see media_upload.h).
 *
 * One libcurl easy handle for the run, so uploads reuse a warm connection
 * to ingest. The request carries the gateway's timestamped signature over
 * the media statement, X-Blazz-Content-SHA256 and the file's type; ingest
 * answers 201 {"media_uuid", ...}. The message then names that uuid and
 * describes the bytes it stands for (type, size, hex SHA-256), as a
 * gateway that downloaded and decrypted WhatsApp's media would.
 */
#include "media_upload.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/sha256.h"
#include "core/text_head.h"
#include "media_bytes.h"
#include "wa/signature.h"

#define UPLOAD_TIMEOUT_MS 10000L
#define EVENTS_PATH "/v1/events"
#define UPLOAD_PATH "/v1/gateway/media"
#define FAILURES_LOGGED 5
#define ANSWER_MAX 1024

struct bz_sim_media_uploader {
    const bz_sim_options *o;
    bz_sim_stats *stats;
    CURL *easy;
    char *base; /* ingest's URL up to /v1 (heap) */
    bz_sim_rng choice;
    int failures_logged;
};

bz_status bz_sim_media_uploader_new(const bz_sim_options *o, bz_sim_stats *stats,
                                    bz_sim_media_uploader **out, bz_error *err)
{
    *out = NULL;
    if (o->media_bytes <= 0.0 || o->mode != BZ_SIM_MODE_HTTP)
        return BZ_OK;
    size_t n = strlen(o->ingest_url), tail = strlen(EVENTS_PATH);
    if (n < tail || strcmp(o->ingest_url + n - tail, EVENTS_PATH) != 0)
        return bz_fail(err, BZ_ERR_CONFIG, "--media-bytes: --ingest-url must end in %s (the "
                                           "uploads go to %s beside it)", EVENTS_PATH,
                       UPLOAD_PATH);
    bz_sim_media_uploader *u = calloc(1, sizeof *u);
    if (u)
        u->base = strndup(o->ingest_url, n - tail);
    if (u && u->base)
        u->easy = curl_easy_init();
    if (!u || !u->base || !u->easy) {
        bz_sim_media_uploader_free(u);
        return bz_fail(err, BZ_ERR_NOMEM, "media uploader: out of memory");
    }
    u->o = o;
    u->stats = stats;
    u->choice.state = o->seed ^ 0x6d65646961ull; /* its own stream: the traffic's is untouched */
    *out = u;
    return BZ_OK;
}

void bz_sim_media_uploader_free(bz_sim_media_uploader *u)
{
    if (!u)
        return;
    curl_easy_cleanup(u->easy);
    free(u->base);
    free(u);
}

static struct curl_slist *upload_headers(const bz_sim_media_uploader *u, const char *session,
                                         const char *sha, const char *mime, bz_error *err)
{
    char statement[BZ_GATEWAY_MEDIA_STATEMENT_MAX];
    size_t len = 0;
    bz_gateway_signature sig;
    bz_status st = bz_gateway_media_statement(BZ_GATEWAY_MEDIA_UPLOAD, session, sha, statement,
                                              sizeof statement, &len, err);
    if (st == BZ_OK)
        st = bz_gateway_sign_request(u->o->key, strlen(u->o->key),
                                     (long long)(bz_wall_ms() / 1000), statement, len, &sig,
                                     err);
    if (st != BZ_OK)
        return NULL;
    char lines[6][160];
    snprintf(lines[0], sizeof lines[0], "Content-Type: %s", mime);
    snprintf(lines[1], sizeof lines[1], "X-Blazz-Gateway: %s", u->o->gateway_id);
    snprintf(lines[2], sizeof lines[2], "X-Blazz-Timestamp: %s", sig.timestamp);
    snprintf(lines[3], sizeof lines[3], "X-Blazz-Key-Id: %s", sig.key_id);
    snprintf(lines[4], sizeof lines[4], "X-WhatsApp-Signature: %s", sig.signature);
    snprintf(lines[5], sizeof lines[5], "X-Blazz-Content-SHA256: %s", sha);
    struct curl_slist *h = NULL;
    for (int i = 0; i < 6; i++) {
        struct curl_slist *more = curl_slist_append(h, lines[i]);
        if (!more) {
            curl_slist_free_all(h);
            bz_fail(err, BZ_ERR_NOMEM, "media upload: out of memory");
            return NULL;
        }
        h = more;
    }
    return h;
}

/* POST the bytes; the uuid ingest answered into uuid. */
static bz_status upload(bz_sim_media_uploader *u, const char *session,
                        const bz_sim_media_bytes *file, const char *sha,
                        char uuid[BZ_UUID_STR_SIZE], bz_error *err)
{
    struct curl_slist *headers = upload_headers(u, session, sha, file->mime_type, err);
    if (!headers)
        return err->code;
    char *escaped = curl_easy_escape(u->easy, session, 0);
    char url[512];
    snprintf(url, sizeof url, "%s%s?session=%s", u->base, UPLOAD_PATH, escaped ? escaped : "");
    curl_free(escaped);
    char answer_text[ANSWER_MAX];
    bz_text_head answer;
    bz_text_head_init(&answer, answer_text, sizeof answer_text);
    CURL *e = u->easy;
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, (const char *)file->data);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)file->len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, UPLOAD_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, bz_text_head_keep);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &answer);
    CURLcode rc = curl_easy_perform(e);
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    if (rc != CURLE_OK)
        return bz_fail(err, BZ_ERR_TRANSIENT, "upload for %s: %s", session,
                       curl_easy_strerror(rc));
    if (status != 201)
        return bz_fail(err, BZ_ERR_INVALID, "upload for %s: HTTP %ld: %s", session, status,
                       answer.text);
    json_t *doc = json_loads(answer.text, 0, NULL);
    const char *given = json_string_value(json_object_get(doc, "media_uuid"));
    bz_status st = given && strlen(given) == BZ_UUID_STR_SIZE - 1
                       ? BZ_OK
                       : bz_fail(err, BZ_ERR_INVALID, "upload for %s: no media_uuid in %s",
                                 session, answer.text);
    if (st == BZ_OK)
        memcpy(uuid, given, BZ_UUID_STR_SIZE);
    json_decref(doc);
    return st;
}

/* The file a message stands for: a photo, or a voice note of its length. */
static bz_status make_file(const Blazz__V1__InboundMessage *msg, bz_sim_media_bytes *file,
                           bz_error *err)
{
    uint64_t seed = 1469598103934665603ull; /* FNV-1a of the message id */
    for (const char *p = msg->wam_id; p && *p; p++)
        seed = (seed ^ (unsigned char)*p) * 1099511628211ull;
    if (msg->message_type == BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_IMAGE)
        return bz_sim_media_png(seed, file, err);
    int seconds = msg->media->duration_seconds > 0 ? msg->media->duration_seconds : 1;
    return bz_sim_media_voice_note(seed, seconds, file, err);
}

static bool wants_bytes(bz_sim_media_uploader *u, const Blazz__V1__InboundMessage *msg)
{
    if (!msg->media || (msg->message_type != BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_IMAGE &&
                        msg->message_type != BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_VOICE))
        return false;
    return bz_sim_rng_chance(&u->choice, u->o->media_bytes);
}

void bz_sim_media_attach(bz_sim_media_uploader *u, bz_sim_arena *a, const char *session,
                         Blazz__V1__InboundMessage *msg)
{
    if (!u || !wants_bytes(u, msg))
        return;
    bz_error err;
    bz_error_clear(&err);
    bz_sim_media_bytes file = {0};
    char sha[BZ_SHA256_HEX_SIZE], uuid[BZ_UUID_STR_SIZE];
    bz_status st = make_file(msg, &file, &err);
    if (st == BZ_OK)
        st = bz_sha256_hex(file.data, file.len, sha, &err);
    if (st == BZ_OK)
        st = upload(u, session, &file, sha, uuid, &err);
    if (st != BZ_OK) {
        atomic_fetch_add(&u->stats->media_upload_failed, 1);
        if (u->failures_logged++ < FAILURES_LOGGED)
            bz_warn("media of %s not uploaded (sent as a reference): %s", msg->wam_id, err.msg);
    } else {
        atomic_fetch_add(&u->stats->media_uploaded, 1);
        atomic_fetch_add(&u->stats->media_bytes_uploaded, file.len);
        Blazz__V1__MediaInfo *m = msg->media;
        m->stored_media_uuid = bz_sim_arena_strdup(a, uuid);
        m->sha256 = bz_sim_arena_strdup(a, sha);
        m->mime_type = (char *)file.mime_type;
        m->size_bytes = (int64_t)file.len;
        m->url = (char *)"";
    }
    bz_sim_media_bytes_free(&file);
}
