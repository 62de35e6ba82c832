/*
 * media_api.c - the media endpoints (see media_api.h).
 *
 * Each request is a small state machine driven by libmicrohttpd's calls:
 *
 *   upload:  headers -> (405/401/400/415/413 from the headers) -> a key
 *            check on a CRM worker, the connection suspended (a refused
 *            key: 401 when it resumes, before any byte of the body) -> body
 *            chunks into the spool (a body past the kind's limit: the rest
 *            is read and dropped, nothing stored)
 *            -> body complete: the spool finished (sniffed, 415 on a
 *            mismatch) -> a worker commits row and object in one
 *            transaction -> 201;
 *   info:    headers (key shape) -> body complete -> a worker checks the
 *            key, reads the workspace's row and makes its link -> 200/404;
 *   content: headers -> body complete: the link's signature and expiry
 *            checked on the event loop (one HMAC, no query: 403) -> a
 *            worker finds the row in the link's workspace and opens the
 *            object -> the descriptor handed to libmicrohttpd, which sends
 *            it as the client reads (never whole in memory);
 *   gateway read: headers -> the gateway's signature and session judged
 *            on the event loop (gateway_media.h: 401/404), then its request
 *            rate (gateway_rate.h: 429; a gateway's upload too) -> body complete
 *            -> a worker finds the row in the session's workspace (404
 *            unknown_media) and opens the object -> sent as content is; with
 *            an S3 store the worker presigns a GET of the object instead
 *            and the gateway is sent there (307).
 *
 * libmicrohttpd cannot answer in the middle of a body, so an upload
 * refused once its body flows (over the limit) is answered when the body
 * ends; its bytes are dropped as they come and the listener's
 * request deadline bounds how long that takes. The spool's file writes
 * happen on the event loop: local disk writes of at most a chunk. The
 * store is used from one thread at a time (store.h): commits are
 * serialised by the API's lock, spools are each request's own.
 */
#include "media_edge/media_request.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "crm/api_keys.h"
#include "gateway/gateway_rate.h"
#include "http_respond.h"
#include "media/link.h"
#include "media/name.h"

#define PATH "crm"
#define PREFIX "/v1/media"
#define GATEWAY_UPLOAD "/v1/gateway/media"

/* ---- routes ------------------------------------------------------------------------------ */

static int is_uuid_text(const char *s, size_t len)
{
    if (len != ING_MEDIA_UUID_LEN)
        return 0;
    for (size_t i = 0; i < len; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !strchr("0123456789abcdefABCDEF", s[i]))
            return 0;
    }
    return 1;
}

/* After base: "" -> whole, "/{uuid}" -> item, "/{uuid}/content" -> content
 * (ING_MEDIA_ROUTE_NONE: no such route); the uuid into uuid
 * (ING_MEDIA_UUID_LEN + 1 bytes, "" when the segment is not one: such a
 * uuid names no media, which the handlers answer as they answer an
 * unknown one). */
static enum ing_media_route route_under(const char *url, const char *base, char *uuid,
                                        enum ing_media_route whole, enum ing_media_route item,
                                        enum ing_media_route content)
{
    if (strncmp(url, base, strlen(base)) != 0)
        return ING_MEDIA_ROUTE_NONE;
    const char *rest = url + strlen(base);
    if (*rest == '\0')
        return whole;
    size_t len = *rest == '/' ? strcspn(rest + 1, "/") : 0;
    if (len == 0)
        return ING_MEDIA_ROUTE_NONE;
    const char *tail = rest + 1 + len;
    if (uuid)
        snprintf(uuid, ING_MEDIA_UUID_LEN + 1, "%.*s",
                 is_uuid_text(rest + 1, len) ? ING_MEDIA_UUID_LEN : 0, rest + 1);
    if (*tail == '\0')
        return item;
    return strcmp(tail, "/content") == 0 ? content : ING_MEDIA_ROUTE_NONE;
}

static enum ing_media_route route_of(const char *url, char *uuid)
{
    if (strncmp(url, GATEWAY_UPLOAD, strlen(GATEWAY_UPLOAD)) == 0)
        return route_under(url, GATEWAY_UPLOAD, uuid, ING_MEDIA_ROUTE_GATEWAY_UPLOAD,
                           ING_MEDIA_ROUTE_GATEWAY_CONTENT, ING_MEDIA_ROUTE_NONE);
    return route_under(url, PREFIX, uuid, ING_MEDIA_ROUTE_UPLOAD, ING_MEDIA_ROUTE_INFO,
                       ING_MEDIA_ROUTE_CONTENT);
}

/* Whether the request's answer is the object's bytes, sent from its
 * descriptor once a worker opened it. */
static int streams(const ing_media_request *mr)
{
    return mr->route == ING_MEDIA_ROUTE_CONTENT || mr->route == ING_MEDIA_ROUTE_GATEWAY_CONTENT;
}

int ing_media_api_route(const char *url)
{
    return route_of(url, NULL) != ING_MEDIA_ROUTE_NONE;
}

/* ---- answers ----------------------------------------------------------------------------- */

void ing_media_drop_spool(ing_media_request *mr)
{
    bz_media_spool_free(mr->spool);
    mr->spool = NULL;
}

static enum MHD_Result refuse(ing_media_request *mr, struct MHD_Connection *conn, unsigned status,
                              const char *reason, const char *field, const char *message)
{
    ing_media_drop_spool(mr);
    return ing_http_respond_error(mr->api->cfg.metrics, conn, status, PATH, reason, field,
                                  message);
}

unsigned ing_media_status_of_error(const bz_error *err)
{
    if (err->code != BZ_ERR_INVALID)
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    const char *reason = err->reason ? err->reason : "";
    if (strcmp(reason, "media_too_large") == 0)
        return MHD_HTTP_CONTENT_TOO_LARGE;
    if (strcmp(reason, "unsupported_media_type") == 0 || strcmp(reason, "media_type_mismatch") == 0)
        return MHD_HTTP_UNSUPPORTED_MEDIA_TYPE;
    return MHD_HTTP_BAD_REQUEST;
}

/* The store's own failures (a spool's file, its disk) are logged, not
 * told: their text names the server's paths. */
static enum MHD_Result refuse_media_error(ing_media_request *mr, struct MHD_Connection *conn,
                                          const char *field, const bz_error *err)
{
    unsigned status = ing_media_status_of_error(err);
    if (status == MHD_HTTP_SERVICE_UNAVAILABLE) {
        bz_warn("media upload: %s: answered 503", err->msg);
        return refuse(mr, conn, status, "unavailable", "",
                      "the media could not be received; nothing was stored, retry");
    }
    return refuse(mr, conn, status, err->reason ? err->reason : "invalid", field, err->msg);
}

/* The worker's answer, queued; the job is freed. */
static enum MHD_Result answer_from_job(ing_media_request *mr, struct MHD_Connection *conn)
{
    ing_crm_job *job = mr->job;
    mr->job = NULL;
    return ing_crm_api_answer(job, conn);
}

/* ---- the upload's headers ---------------------------------------------------------------- */

static const char *arg(struct MHD_Connection *conn, const char *name)
{
    return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
}

static const char *header(struct MHD_Connection *conn, const char *name)
{
    return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
}

/* The declared type: Content-Type without its parameters, lower case. */
static bz_status read_declared_type(ing_media_request *mr, struct MHD_Connection *conn,
                                    bz_error *err)
{
    const char *type = header(conn, MHD_HTTP_HEADER_CONTENT_TYPE);
    size_t len = type ? strcspn(type, "; \t") : 0;
    if (len == 0 || len >= sizeof mr->mime)
        return bz_reject(err, "unsupported_media_type",
                         "field Content-Type: the media's MIME type is required");
    for (size_t i = 0; i < len; i++)
        mr->mime[i] = (char)(type[i] >= 'A' && type[i] <= 'Z' ? type[i] + 32 : type[i]);
    mr->mime[len] = '\0';
    return BZ_OK;
}

/* The kind: ?kind= when given (it must take the declared type), else the
 * declared type's. A type left to the bytes leaves the kind to them too
 * when none is given. */
static bz_status read_kind(ing_media_request *mr, struct MHD_Connection *conn, bz_error *err)
{
    const char *kind = arg(conn, "kind");
    int type_from_bytes = bz_media_type_is_from_bytes(mr->mime);
    if (!kind && type_from_bytes) {
        mr->kind_from_bytes = 1;
        return BZ_OK;
    }
    if (!kind)
        return bz_media_kind_of_mime(mr->mime, &mr->kind, err);
    bz_status st = bz_media_kind_parse(kind, &mr->kind, err);
    if (st == BZ_OK && !type_from_bytes && !bz_media_kind_accepts(mr->kind, mr->mime))
        return bz_reject(err, "unsupported_media_type", "field Content-Type: %s does not take %s",
                         bz_media_kind_name(mr->kind), mr->mime);
    return st;
}

/* ?filename=: kept as the row's name (media/name.h). Its decoded length,
 * not strlen: "%00" decodes to a NUL that would cut the name short. */
static bz_status read_name(ing_media_request *mr, struct MHD_Connection *conn, bz_error *err)
{
    const char *name = NULL;
    size_t len = 0;
    if (MHD_lookup_connection_value_n(conn, MHD_GET_ARGUMENT_KIND, "filename", strlen("filename"),
                                      &name, &len) != MHD_YES ||
        !name || len == 0)
        return BZ_OK;
    bz_status st = bz_media_name_check(name, len, err);
    if (st == BZ_OK)
        memcpy(mr->name, name, len + 1);
    return st;
}

/* The largest body mr's kind takes: any kind's while the bytes are to
 * name it. */
static uint64_t body_limit(const ing_media_request *mr)
{
    return mr->kind_from_bytes ? bz_media_any_kind_max_bytes()
                               : bz_media_kind_max_bytes(mr->kind);
}

/* The body's declared length, else the kind's limit, into body_max;
 * whether the declared length is over that limit (413). */
static int declared_too_large(ing_media_request *mr, struct MHD_Connection *conn)
{
    const char *length = header(conn, MHD_HTTP_HEADER_CONTENT_LENGTH);
    uint64_t limit = body_limit(mr);
    mr->body_max = length && !header(conn, MHD_HTTP_HEADER_TRANSFER_ENCODING)
                       ? strtoull(length, NULL, 10)
                       : limit;
    return mr->body_max > limit;
}

static enum MHD_Result refuse_too_large(ing_media_request *mr, struct MHD_Connection *conn)
{
    char message[128];
    snprintf(message, sizeof message, "field body: %s%s is at most %" PRIu64 " bytes",
             mr->kind_from_bytes ? "" : "a ",
             mr->kind_from_bytes ? "media" : bz_media_kind_name(mr->kind), body_limit(mr));
    return refuse(mr, conn, MHD_HTTP_CONTENT_TOO_LARGE, "media_too_large", "body", message);
}

/* The sender is known: the body may come. */
static void open_spool(ing_media_request *mr)
{
    bz_error err;
    bz_status st = mr->kind_from_bytes
                       ? bz_media_spool_begin_untyped(mr->api->cfg.store, &mr->spool, &err)
                       : bz_media_spool_begin(mr->api->cfg.store, mr->kind, &mr->spool, &err);
    if (st != BZ_OK) {
        bz_warn("media upload: %s", err.msg);
        mr->refusal = MHD_HTTP_SERVICE_UNAVAILABLE;
        mr->phase = ING_MEDIA_DROPPING;
        return;
    }
    mr->phase = ING_MEDIA_RECEIVING;
}

static enum MHD_Result submit(ing_media_request *mr, struct MHD_Connection *conn, const char *url,
                              int authenticate, ing_crm_task_fn task)
{
    bz_error err;
    mr->job = ing_crm_api_submit_task(mr->api->cfg.crm, conn, url, authenticate,
                                      mr->workspace_id, task, mr, &err);
    if (!mr->job)
        return refuse(mr, conn, MHD_HTTP_SERVICE_UNAVAILABLE, err.reason, "", err.msg);
    mr->phase = authenticate && !task ? ING_MEDIA_AUTHING : ING_MEDIA_WORKING;
    return MHD_YES;
}

static enum MHD_Result admit_upload(ing_media_request *mr, struct MHD_Connection *conn,
                                    const char *method)
{
    if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
        return ing_http_respond_method_not_allowed(conn, "POST");
    if (!ing_api_keys_well_formed(header(conn, MHD_HTTP_HEADER_AUTHORIZATION)))
        return ing_crm_api_refuse_key(mr->api->cfg.crm, conn);
    bz_error err;
    if (read_declared_type(mr, conn, &err) != BZ_OK || read_kind(mr, conn, &err) != BZ_OK)
        return refuse_media_error(mr, conn, err.reason && strcmp(err.reason, "unknown_media_kind") == 0
                                                ? "kind"
                                                : "Content-Type",
                                  &err);
    if (read_name(mr, conn, &err) != BZ_OK)
        return refuse(mr, conn, MHD_HTTP_BAD_REQUEST, "invalid", "filename", err.msg);
    if (declared_too_large(mr, conn))
        return refuse_too_large(mr, conn);
    /* the key first: no byte of the body is read before it verified */
    return submit(mr, conn, PREFIX, 1, NULL);
}

/* A gateway's refusal: 400 for a missing statement, 404 for a session no
 * live account has, 503 before the gateways were read, else 401. */
static enum MHD_Result refuse_gateway(ing_media_request *mr, struct MHD_Connection *conn,
                                      const bz_error *err)
{
    const char *reason = err->reason ? err->reason : "signature_mismatch";
    if (err->code == BZ_ERR_NOT_FOUND)
        return refuse(mr, conn, MHD_HTTP_NOT_FOUND, "unknown_session", "session", err->msg);
    if (err->code != BZ_ERR_INVALID)
        return refuse(mr, conn, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable", "",
                      "gateways could not be checked; nothing was stored, retry");
    if (strcmp(reason, "missing_field") == 0)
        return refuse(mr, conn, MHD_HTTP_BAD_REQUEST, reason, "", err->msg);
    return refuse(mr, conn, MHD_HTTP_UNAUTHORIZED, reason, "X-WhatsApp-Signature", err->msg);
}

/* The signer, verified just now, spends one request of its rate
 * (gateway_rate.h), before a byte of the body is read: 1 with *answer the
 * 429 past it. */
static int over_gateway_rate(ing_media_request *mr, struct MHD_Connection *conn,
                             enum MHD_Result *answer)
{
    return ing_gateway_rate_refused(mr->api->cfg.gateway_rate, mr->api->cfg.metrics, conn, PATH,
                                    mr->claim.gateway, answer);
}

/* As admit_upload, the gateway's signature over its statement in place of
 * an API key (gateway_media.h): judged here, on the event loop. */
static enum MHD_Result admit_gateway_upload(ing_media_request *mr, struct MHD_Connection *conn,
                                            const char *method)
{
    if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
        return ing_http_respond_method_not_allowed(conn, "POST");
    bz_error err;
    if (ing_gateway_media_admit(mr->api->cfg.gateways, conn, bz_wall_ms(), &mr->claim, &err) !=
        BZ_OK)
        return refuse_gateway(mr, conn, &err);
    enum MHD_Result refusal;
    if (over_gateway_rate(mr, conn, &refusal))
        return refusal;
    if (read_declared_type(mr, conn, &err) != BZ_OK || read_kind(mr, conn, &err) != BZ_OK)
        return refuse_media_error(mr, conn, "Content-Type", &err);
    if (read_name(mr, conn, &err) != BZ_OK)
        return refuse(mr, conn, MHD_HTTP_BAD_REQUEST, "invalid", "filename", err.msg);
    if (declared_too_large(mr, conn))
        return refuse_too_large(mr, conn);
    open_spool(mr);
    return MHD_YES;
}

/* A gateway's read (GET /v1/gateway/media/{uuid}?session=): judged on the
 * event loop like its upload; a path naming no uuid names no media. */
static enum MHD_Result admit_gateway_read(ing_media_request *mr, struct MHD_Connection *conn,
                                          const char *method)
{
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0)
        return ing_http_respond_method_not_allowed(conn, "GET");
    if (!mr->uuid[0])
        return refuse(mr, conn, MHD_HTTP_NOT_FOUND, "unknown_media", "media_uuid",
                      "field media_uuid: not a uuid, so no media's");
    bz_error err;
    if (ing_gateway_media_admit_read(mr->api->cfg.gateways, conn, mr->uuid, bz_wall_ms(),
                                     &mr->claim, &err) != BZ_OK)
        return refuse_gateway(mr, conn, &err);
    enum MHD_Result refusal;
    if (over_gateway_rate(mr, conn, &refusal))
        return refusal;
    mr->phase = ING_MEDIA_READY;
    return MHD_YES;
}

static enum MHD_Result admit(ing_media_request *mr, struct MHD_Connection *conn,
                             const char *method)
{
    if (mr->route == ING_MEDIA_ROUTE_GATEWAY_CONTENT)
        return admit_gateway_read(mr, conn, method);
    if (mr->route == ING_MEDIA_ROUTE_UPLOAD)
        return admit_upload(mr, conn, method);
    if (mr->route == ING_MEDIA_ROUTE_GATEWAY_UPLOAD)
        return admit_gateway_upload(mr, conn, method);
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0)
        return ing_http_respond_method_not_allowed(conn, "GET");
    if (mr->route == ING_MEDIA_ROUTE_INFO &&
        !ing_api_keys_well_formed(header(conn, MHD_HTTP_HEADER_AUTHORIZATION)))
        return ing_crm_api_refuse_key(mr->api->cfg.crm, conn);
    mr->phase = ING_MEDIA_READY;
    return MHD_YES;
}

/* ---- the upload's body ------------------------------------------------------------------- */

/* The key check came back: the workspace known and the spool open, or
 * refused on a resume that brought body bytes already (its answer then
 * waits for the body's end). */
static void settle_key_check(ing_media_request *mr)
{
    if (ing_crm_job_answered(mr->job)) {
        mr->phase = ING_MEDIA_DROPPING;
        return;
    }
    mr->workspace_id = ing_crm_job_workspace(mr->job);
    ing_crm_job_free(mr->job);
    mr->job = NULL;
    open_spool(mr);
}

static void receive_chunk(ing_media_request *mr, const char *data, size_t len)
{
    if (mr->phase != ING_MEDIA_RECEIVING)
        return;
    bz_error err;
    if (bz_media_spool_write(mr->spool, data, len, &err) == BZ_OK)
        return;
    mr->refusal = ing_media_status_of_error(&err);
    if (mr->refusal != MHD_HTTP_CONTENT_TOO_LARGE)
        bz_warn("media upload: %s", err.msg);
    bz_media_spool_free(mr->spool);
    mr->spool = NULL;
    mr->phase = ING_MEDIA_DROPPING;
}

/* ---- the end of a request ------------------------------------------------------------------ */

static enum MHD_Result finish_upload(ing_media_request *mr, struct MHD_Connection *conn)
{
    if (mr->phase == ING_MEDIA_DROPPING && mr->job)
        return answer_from_job(mr, conn);
    if (mr->phase == ING_MEDIA_DROPPING && mr->refusal == MHD_HTTP_CONTENT_TOO_LARGE)
        return refuse_too_large(mr, conn);
    if (mr->phase == ING_MEDIA_DROPPING)
        return refuse(mr, conn, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable", "",
                      "the media could not be received; nothing was stored, retry");
    if (mr->route == ING_MEDIA_ROUTE_GATEWAY_UPLOAD)
        return submit(mr, conn, GATEWAY_UPLOAD, 0, ing_media_commit_gateway_upload);
    bz_error err;
    if (bz_media_spool_finish(mr->spool, mr->workspace_id, mr->mime, &mr->obj, &err) != BZ_OK)
        return refuse_media_error(mr, conn, "body", &err);
    return submit(mr, conn, PREFIX, 0, ing_media_commit_upload);
}

/* The link's query checked: 1 when it holds, else 0 with *answer the 403. */
static int link_holds(ing_media_request *mr, struct MHD_Connection *conn, enum MHD_Result *answer)
{
    const char *secret = bz_media_store_link_secret(mr->api->cfg.store);
    const char *workspace = arg(conn, "workspace"), *expires = arg(conn, "expires");
    const char *signature = arg(conn, "signature");
    bz_error err;
    char *end = NULL;
    bz_status st = BZ_ERR_INVALID;
    if (!secret)
        bz_reject(&err, "bad_link_signature", "field signature: this store hands out no links");
    else if (!workspace || !expires || !signature)
        bz_reject(&err, "bad_link_signature",
                  "field signature: workspace, expires and signature are required");
    else {
        int64_t ws = strtoll(workspace, &end, 10);
        int64_t exp = *end ? -1 : strtoll(expires, &end, 10);
        st = *end || ws <= 0 ? bz_reject(&err, "bad_link_signature", "field workspace: not a link's")
                             : bz_media_link_check(secret, mr->uuid, ws, exp, signature,
                                                   bz_wall_ms() / 1000, &err);
        mr->workspace_id = ws;
    }
    if (st == BZ_OK)
        return 1;
    *answer = refuse(mr, conn, MHD_HTTP_FORBIDDEN, err.reason ? err.reason : "bad_link_signature",
                     "signature", err.msg);
    return 0;
}

static enum MHD_Result send_content(ing_media_request *mr, struct MHD_Connection *conn)
{
    struct MHD_Response *resp = MHD_create_response_from_fd64(mr->size, mr->fd);
    if (!resp)
        return MHD_NO;
    mr->fd = -1; /* the response closes it */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, mr->mime);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "private, no-store");
    enum MHD_Result r = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return r;
}

/* An S3 store's object: 307 to its presigned GET (media_tasks.c), which
 * the client follows with no credentials of ours; its own answer carries
 * the bytes and the type they were stored with. */
static enum MHD_Result send_to_link(ing_media_request *mr, struct MHD_Connection *conn)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, mr->link);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "private, no-store");
    enum MHD_Result r = MHD_queue_response(conn, MHD_HTTP_TEMPORARY_REDIRECT, resp);
    MHD_destroy_response(resp);
    return r;
}

/* The last call, or the one after a worker resumed the connection. */
static enum MHD_Result finish(ing_media_request *mr, struct MHD_Connection *conn)
{
    if (mr->phase == ING_MEDIA_WORKING) {
        if (ing_crm_job_answered(mr->job) || !streams(mr))
            return answer_from_job(mr, conn);
        ing_crm_job_free(mr->job);
        mr->job = NULL;
        return mr->link ? send_to_link(mr, conn) : send_content(mr, conn);
    }
    if (mr->route == ING_MEDIA_ROUTE_UPLOAD || mr->route == ING_MEDIA_ROUTE_GATEWAY_UPLOAD)
        return finish_upload(mr, conn);
    if (mr->route == ING_MEDIA_ROUTE_INFO)
        return submit(mr, conn, PREFIX, 1, ing_media_describe);
    if (mr->route == ING_MEDIA_ROUTE_GATEWAY_CONTENT)
        return submit(mr, conn, GATEWAY_UPLOAD, 0, ing_media_open_gateway_content);
    enum MHD_Result refusal;
    if (!link_holds(mr, conn, &refusal))
        return refusal;
    return submit(mr, conn, PREFIX, 0, ing_media_open_content);
}

enum MHD_Result ing_media_request_step(ing_media_request *mr, struct MHD_Connection *conn,
                                       const char *method, const char *data, size_t *size)
{
    if (mr->phase == ING_MEDIA_ADMITTING)
        return admit(mr, conn, method);
    if (mr->phase == ING_MEDIA_AUTHING) {
        /* resumed on its headers, no byte of the body read: a refused key
         * is answered now, and libmicrohttpd closes the connection after
         * it rather than read the body */
        if (*size == 0 && ing_crm_job_answered(mr->job))
            return answer_from_job(mr, conn);
        settle_key_check(mr);
        /* suspended on its headers, the request is handed to the handler
         * again with them when resumed: the body comes after */
        if (*size == 0)
            return MHD_YES;
    }
    if (*size > 0) {
        receive_chunk(mr, data, *size);
        *size = 0;
        return MHD_YES;
    }
    return finish(mr, conn);
}

int ing_media_request_checking_key(const ing_media_request *mr)
{
    return mr->phase == ING_MEDIA_AUTHING;
}

uint64_t ing_media_request_proven_body(const ing_media_request *mr)
{
    return mr->phase == ING_MEDIA_RECEIVING ? mr->body_max : 0;
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

ing_media_request *ing_media_request_new(ing_media_api *media, const char *url)
{
    ing_media_request *mr = calloc(1, sizeof *mr);
    if (!mr)
        return NULL;
    mr->api = media;
    mr->route = route_of(url, mr->uuid);
    mr->fd = -1;
    return mr;
}

void ing_media_request_free(ing_media_request *mr)
{
    if (!mr)
        return;
    if (mr->job && ing_crm_job_done(mr->job))
        ing_crm_job_free(mr->job);
    bz_media_spool_free(mr->spool);
    if (mr->fd >= 0)
        close(mr->fd);
    free(mr->link);
    free(mr);
}

bz_status ing_media_api_new(const ing_media_api_config *cfg, ing_media_api **out, bz_error *err)
{
    ing_media_api *media = calloc(1, sizeof *media);
    if (!media)
        return bz_fail(err, BZ_ERR_NOMEM, "media api: out of memory");
    media->cfg = *cfg;
    pthread_mutex_init(&media->commit_mu, NULL);
    *out = media;
    return BZ_OK;
}

void ing_media_api_free(ing_media_api *media)
{
    if (!media)
        return;
    pthread_mutex_destroy(&media->commit_mu);
    free(media);
}
