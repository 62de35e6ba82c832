/*
 * media_upload.c - stored media as a Meta media id: a send whose media is
 * bytes the backbone holds (MediaInfo.stored_media_uuid, a chat_media row)
 * goes to Meta by id, the bytes uploaded once per account
 * (ARCHITECTURE.md §16.6).
 *
 * Before a claimed job's request is built (claim.c), its stored media is
 * resolved: the chat_media row of the send's workspace (another
 * workspace's uuid is not found), then the id meta_media_uploads (0043)
 * holds for (account, row) while expires_at is ahead; without one the
 * bytes are read from the store, uploaded with POST
 * /{phone-number-id}/media (multipart: file, type, messaging_product) and
 * the id Meta answers is kept, trusted for MEDIA_ID_TRUST_DAYS (Meta keeps
 * uploads 30 days). The job's MediaInfo.media_id is then that id, and
 * graph_request.c writes {"id": ...}.
 *
 * One upload per (account, media): the jobs of a round are resolved one
 * after the other on the sender thread, and a round remembers each
 * (account, media) it resolved, the id or the failure, so the 20 sends of
 * one image claimed together make one upload (or one failed attempt); a
 * later round reads the row. The upload is a bounded synchronous request
 * (meta.request_timeout_ms), not a job in the multi handle: it happens
 * once per account and object per 29 days, the sends that need it cannot
 * start before it ends anyway, and a blocking call keeps the ordering
 * "upload, record, then send" plain. The price: the other requests in
 * flight are not driven while it runs (their timeouts still count).
 *
 * Failures become the job's outcome without a request: no answer or a
 * 5xx is transient (MS_RETRY, the send comes back like any retry; an
 * upload whose answer was lost is simply made again: one more object at
 * Meta, never a second message); a token Meta refuses holds the account
 * like any send (MS_TOKEN_INVALID); Meta refusing the upload
 * (media_upload_failed), a uuid the workspace has no row for
 * (media_not_found) or bytes the store no longer has (media_missing) fail
 * the send with that reason.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/uuid.h"
#include "media/kind.h"
#include "media/store.h"
#include "pg/pg.h"
#include "active_sender.h"

/* A day short of Meta's 30: a send claimed just before the id is dropped
 * at Meta would otherwise name an id Meta no longer knows. */
#define MEDIA_ID_TRUST_DAYS "29"
#define UPLOAD_ANSWER_MAX (16 * 1024)

#define SQL_MEDIA                                                                                 \
    "SELECT m.id, m.path, m.type, coalesce(m.name, ''), m.size, coalesce(("                     \
    "  SELECT u.meta_media_id FROM meta_media_uploads u WHERE u.whatsapp_account_id = $2 "      \
    "  AND u.media_id = m.id AND u.expires_at > now()), '') "                                    \
    "FROM chat_media m WHERE m.uuid = $1::uuid AND m.workspace_id = $3"

#define SQL_REMEMBER                                                                              \
    "INSERT INTO meta_media_uploads (whatsapp_account_id, media_id, meta_media_id, expires_at) " \
    "VALUES ($1, $2, $3, now() + interval '" MEDIA_ID_TRUST_DAYS " days') "                     \
    "ON CONFLICT (whatsapp_account_id, media_id) DO UPDATE SET meta_media_id = "                 \
    "EXCLUDED.meta_media_id, uploaded_at = now(), expires_at = EXCLUDED.expires_at"

/* What a round learnt about one (account, media). */
typedef struct resolved {
    struct resolved *next;
    int64_t account_id;
    char uuid[37];
    char meta_id[128]; /* "" when it failed */
    ms_outcome failure;
} resolved;

struct ms_media_round {
    resolved *head;
};

/* The chat_media row a send names, as this module needs it. */
typedef struct media_row {
    int64_t id;
    char *path, *type, *name;
    int64_t size;
} media_row;

typedef struct buffer {
    unsigned char *data;
    size_t len, cap;
    int overflow; /* more bytes came than there was room for */
} buffer;

ms_media_round *ms_media_round_new(void)
{
    return calloc(1, sizeof(ms_media_round));
}

void ms_media_round_free(ms_media_round *r)
{
    if (!r)
        return;
    for (resolved *x = r->head, *next; x; x = next) {
        next = x->next;
        free(x);
    }
    free(r);
}

static void set_failure(ms_outcome *o, ms_verdict v, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void set_failure(ms_outcome *o, ms_verdict v, const char *code, const char *fmt, ...)
{
    memset(o, 0, sizeof *o);
    o->verdict = v;
    snprintf(o->code, sizeof o->code, "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->message, sizeof o->message, fmt, ap);
    va_end(ap);
}

static resolved *remembered(ms_media_round *r, int64_t account_id, const char *uuid)
{
    for (resolved *x = r ? r->head : NULL; x; x = x->next)
        if (x->account_id == account_id && strcmp(x->uuid, uuid) == 0)
            return x;
    return NULL;
}

static void remember_in_round(ms_media_round *r, int64_t account_id, const char *uuid,
                              const char *meta_id, const ms_outcome *failure)
{
    resolved *x = r ? calloc(1, sizeof *x) : NULL;
    if (!x)
        return; /* only a later job of the round resolves it again */
    x->account_id = account_id;
    snprintf(x->uuid, sizeof x->uuid, "%s", uuid);
    snprintf(x->meta_id, sizeof x->meta_id, "%s", meta_id ? meta_id : "");
    if (failure)
        x->failure = *failure;
    x->next = r->head;
    r->head = x;
}

/* The send's MediaInfo names Meta's id from now on. */
static int use_meta_id(Blazz__V1__MediaInfo *media, const char *meta_id)
{
    char *copy = strdup(meta_id);
    if (!copy)
        return 0;
    if (media->media_id != protobuf_c_empty_string)
        free(media->media_id);
    media->media_id = copy;
    return 1;
}

static void media_row_clear(media_row *row)
{
    free(row->path);
    free(row->type);
    free(row->name);
    memset(row, 0, sizeof *row);
}

/* The row of uuid in the job's workspace, and the id cached for the
 * job's account ("" when none is still trusted). *found 0: no such row. */
static bz_status look_up_media(ms_worker *w, const ms_job *j, const char *uuid, media_row *row,
                               char *cached, size_t cap, int *found, bz_error *err)
{
    char acc[24], ws[24];
    snprintf(acc, sizeof acc, "%" PRId64, j->acc->id);
    snprintf(ws, sizeof ws, "%" PRId64, j->row.workspace_id);
    const char *params[] = {uuid, acc, ws};
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(w->conn, "look up stored media", SQL_MEDIA, 3, params, &res,
                                     err);
    *found = st == BZ_OK && PQntuples(res) == 1;
    if (*found) {
        row->id = bz_pg_get_int64(res, 0, 0);
        row->path = strdup(PQgetvalue(res, 0, 1));
        row->type = strdup(PQgetvalue(res, 0, 2));
        row->name = strdup(PQgetvalue(res, 0, 3));
        row->size = bz_pg_get_int64(res, 0, 4);
        snprintf(cached, cap, "%s", PQgetvalue(res, 0, 5));
        if (!row->path || !row->type || !row->name)
            st = bz_fail(err, BZ_ERR_NOMEM, "look up stored media %s: out of memory", uuid);
    }
    PQclear(res);
    return st;
}

static int append_bytes(void *ctx, const void *data, size_t len)
{
    buffer *b = ctx;
    if (b->len + len > b->cap) {
        b->overflow = 1; /* more than the row says: the object is not what was recorded */
        return 1;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

/* The object's bytes, whole: at most its kind's limit (100 MB for a
 * document), once per account and object per MEDIA_ID_TRUST_DAYS. */
static bz_status read_object(ms_worker *w, const media_row *row, buffer *b, bz_error *err)
{
    b->cap = (size_t)(row->size > 0 ? row->size : 1);
    b->data = malloc(b->cap);
    if (!b->data)
        return bz_fail(err, BZ_ERR_NOMEM, "read media %" PRId64 ": out of memory for %" PRId64
                       " bytes", row->id, row->size);
    return bz_media_store_read(w->s->media_store, row->path, append_bytes, b, err);
}

static size_t on_upload_answer(char *data, size_t size, size_t nmemb, void *arg)
{
    buffer *b = arg;
    size_t n = size * nmemb;
    if (b->len + n >= UPLOAD_ANSWER_MAX)
        return n; /* Meta's answer is {"id": ...}: the rest of a huge one is not read */
    memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

static void configure_upload(CURL *e, const ms_settings *s, const char *url,
                             struct curl_slist *headers, curl_mime *form, buffer *answer)
{
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e, CURLOPT_MIMEPOST, form);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_upload_answer);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, answer);
    ms_curl_graph_options(e, s->request_timeout_ms, s->connect_timeout_ms);
}

/* The multipart form Meta documents: file (with its type and a name),
 * type, messaging_product. */
static curl_mime *upload_form(CURL *e, const media_row *row, const buffer *bytes)
{
    curl_mime *form = curl_mime_init(e);
    curl_mimepart *file = form ? curl_mime_addpart(form) : NULL;
    curl_mimepart *type = form ? curl_mime_addpart(form) : NULL;
    curl_mimepart *product = form ? curl_mime_addpart(form) : NULL;
    if (!file || !type || !product) {
        curl_mime_free(form);
        return NULL;
    }
    curl_mime_name(file, "file");
    curl_mime_data(file, (const char *)bytes->data, bytes->len);
    curl_mime_type(file, row->type);
    curl_mime_filename(file, *row->name ? row->name : "media");
    curl_mime_name(type, "type");
    curl_mime_data(type, row->type, CURL_ZERO_TERMINATED);
    curl_mime_name(product, "messaging_product");
    curl_mime_data(product, "whatsapp", CURL_ZERO_TERMINATED);
    return form;
}

/* The id in Meta's 2xx answer {"id": "..."}, "" when there is none. */
static void id_of_answer(const buffer *answer, char *out, size_t cap)
{
    json_t *doc = answer->len ? json_loadb((const char *)answer->data, answer->len, 0, NULL)
                              : NULL;
    const char *id = json_string_value(json_object_get(doc, "id"));
    snprintf(out, cap, "%s", id && strlen(id) < cap ? id : "");
    json_decref(doc);
}

/* What Meta's answer to the upload makes of the send (see the top). */
static void judge_upload(CURLcode rc, long status, const buffer *answer, const char *uuid,
                         const ms_job *j, char *meta_id, size_t cap, ms_outcome *fail)
{
    meta_id[0] = '\0';
    if (rc != CURLE_OK) {
        set_failure(fail, MS_RETRY, "transport_no_answer",
                    "upload media %s account=%" PRId64 ": %s (uploaded again later)", uuid,
                    j->acc->id, curl_easy_strerror(rc));
        return;
    }
    if (status >= 200 && status < 300) {
        id_of_answer(answer, meta_id, cap);
        if (!*meta_id)
            set_failure(fail, MS_FAILED, "media_upload_failed",
                        "upload media %s account=%" PRId64 ": a %ld answer without an id",
                        uuid, j->acc->id, status);
        return;
    }
    ms_outcome o;
    ms_graph_classify(0, status, (const char *)answer->data, answer->len, &o);
    if (o.verdict == MS_FAILED)
        set_failure(fail, MS_FAILED, "media_upload_failed",
                    "upload media %s account=%" PRId64 ": Meta refused it (%s: %s)", uuid,
                    j->acc->id, o.code, o.message);
    else
        set_failure(fail, o.verdict, o.code, "upload media %s account=%" PRId64 ": %s", uuid,
                    j->acc->id, o.message);
}

/* POST {base}/{version}/{phone_number_id}/media with the bytes; the id
 * into meta_id, or the failure into *fail. */
static void upload_bytes(ms_worker *w, const ms_job *j, const char *uuid, const media_row *row,
                         const buffer *bytes, char *meta_id, size_t cap, ms_outcome *fail)
{
    const ms_settings *s = w->s;
    char url[1024], auth[4096];
    snprintf(url, sizeof url, "%s/%s/%s/media", s->base_url, s->api_version,
             j->acc->phone_number_id);
    int n = snprintf(auth, sizeof auth, "Authorization: Bearer %s", j->acc->token);
    unsigned char answer_bytes[UPLOAD_ANSWER_MAX];
    buffer answer = {.data = answer_bytes, .cap = sizeof answer_bytes};
    CURL *e = curl_easy_init();
    struct curl_slist *headers = e && n > 0 && (size_t)n < sizeof auth
                                     ? curl_slist_append(NULL, auth)
                                     : NULL;
    OPENSSL_cleanse(auth, sizeof auth);
    curl_mime *form = headers ? upload_form(e, row, bytes) : NULL;
    if (!form) {
        set_failure(fail, MS_RETRY, "transport_not_sent",
                    "upload media %s account=%" PRId64 ": cannot build the request", uuid,
                    j->acc->id);
    } else {
        configure_upload(e, s, url, headers, form, &answer);
        CURLcode rc = curl_easy_perform(e);
        long status = 0;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        judge_upload(rc, status, &answer, uuid, j, meta_id, cap, fail);
    }
    curl_mime_free(form);
    if (headers)
        OPENSSL_cleanse(headers->data, strlen(headers->data));
    curl_slist_free_all(headers);
    curl_easy_cleanup(e);
}

static void remember_upload(ms_worker *w, const ms_job *j, const media_row *row,
                            const char *meta_id)
{
    char acc[24], media[24];
    snprintf(acc, sizeof acc, "%" PRId64, j->acc->id);
    snprintf(media, sizeof media, "%" PRId64, row->id);
    const char *params[] = {acc, media, meta_id};
    PGresult *res = NULL;
    bz_error err;
    bz_error_clear(&err);
    if (bz_pg_exec_params(w->conn, "remember an uploaded media id", SQL_REMEMBER, 3, params,
                          &res, &err) != BZ_OK)
        bz_warn("media %" PRId64 " account=%" PRId64 ": uploaded as %s but not recorded (%s): "
                "the next send of it uploads it again",
                row->id, j->acc->id, meta_id, err.msg);
    PQclear(res);
}

/* The row's bytes uploaded for the job's account: the id, or *fail. */
static void upload_media(ms_worker *w, const ms_job *j, const char *uuid, const media_row *row,
                         char *meta_id, size_t cap, ms_outcome *fail)
{
    buffer bytes = {0};
    bz_error err;
    bz_error_clear(&err);
    bz_status st = read_object(w, row, &bytes, &err);
    if (st == BZ_ERR_NOT_FOUND || bytes.overflow)
        set_failure(fail, MS_FAILED, "media_missing", "upload media %s account=%" PRId64
                    ": the store does not hold the bytes its row records (%s)", uuid,
                    j->acc->id, err.msg);
    else if (st != BZ_OK)
        set_failure(fail, MS_RETRY, "media_store_unavailable",
                    "upload media %s account=%" PRId64 ": %s", uuid, j->acc->id, err.msg);
    else
        upload_bytes(w, j, uuid, row, &bytes, meta_id, cap, fail);
    free(bytes.data);
    if (*meta_id) {
        bz_info("media %s uploaded for account %" PRId64 " as Meta media %s", uuid, j->acc->id,
                meta_id);
        remember_upload(w, j, row, meta_id);
    }
}

/* Resolve uuid for the job's account: the id into meta_id or *fail. */
static void resolve_media(ms_worker *w, const ms_job *j, const char *uuid, char *meta_id,
                          size_t cap, ms_outcome *fail)
{
    media_row row = {0};
    int found = 0;
    bz_error err;
    bz_error_clear(&err);
    meta_id[0] = '\0';
    if (!bz_uuid_is_valid(uuid))
        set_failure(fail, MS_FAILED, "media_not_found", "send %s: media %.40s is no uuid",
                    j->row.key, uuid);
    else if (look_up_media(w, j, uuid, &row, meta_id, cap, &found, &err) != BZ_OK)
        set_failure(fail, MS_RETRY, "media_store_unavailable", "send %s: %s", j->row.key,
                    err.msg);
    else if (!found)
        set_failure(fail, MS_FAILED, "media_not_found",
                    "send %s: workspace %" PRId64 " has no media %s", j->row.key,
                    j->row.workspace_id, uuid);
    else if (!*meta_id && !ms_is_phone_number_id(j->acc->phone_number_id))
        set_failure(fail, MS_FAILED, "invalid_phone_number_id",
                    "account %" PRId64 "'s session_id is not a Meta phone number id: media %s "
                    "not uploaded", j->acc->id, uuid);
    else if (!*meta_id)
        upload_media(w, j, uuid, &row, meta_id, cap, fail);
    media_row_clear(&row);
}

int ms_media_resolve(ms_worker *w, ms_media_round *r, ms_job *j, ms_outcome *fail)
{
    Blazz__V1__MediaInfo *media = j->row.m ? j->row.m->media : NULL;
    const char *uuid = media ? media->stored_media_uuid : NULL;
    if (!uuid || !*uuid || (media->media_id && *media->media_id) || !j->acc)
        return 1;
    resolved *known = remembered(r, j->acc->id, uuid);
    char meta_id[128];
    if (known) {
        snprintf(meta_id, sizeof meta_id, "%s", known->meta_id);
        *fail = known->failure;
    } else {
        resolve_media(w, j, uuid, meta_id, sizeof meta_id, fail);
        remember_in_round(r, j->acc->id, uuid, meta_id, *meta_id ? NULL : fail);
    }
    if (!*meta_id)
        return 0;
    if (!use_meta_id(media, meta_id)) {
        set_failure(fail, MS_RETRY, "transport_not_sent", "send %s: out of memory", j->row.key);
        return 0;
    }
    return 1;
}
