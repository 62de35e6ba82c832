/*
 * http_respond.c - the answers of ingest's HTTP endpoints (see
 * http_respond.h): JSON error bodies naming the reason and the field at
 * fault, each refusal counted by path and reason, Retry-After on every 503
 * and 429.
 */
#include "http_respond.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "events/field_checks.h"

#define RETRY_AFTER_S "1"

/* An answer with an optional extra header (name NULL: none). */
static enum MHD_Result respond_with(struct MHD_Connection *conn, unsigned status,
                                    const char *type, const char *body, const char *name,
                                    const char *value)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, RETRY_AFTER_S);
    if (name)
        MHD_add_response_header(resp, name, value);
    enum MHD_Result r = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return r;
}

enum MHD_Result ing_http_respond(struct MHD_Connection *conn, unsigned status, const char *type,
                                 const char *body)
{
    return respond_with(conn, status, type, body, NULL, NULL);
}

/* 405, naming the methods the path serves (RFC 9110 §15.5.6: Allow is
 * required). */
enum MHD_Result ing_http_respond_method_not_allowed(struct MHD_Connection *conn, const char *allow)
{
    return respond_with(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "application/json",
                                 "{\"error\":\"method_not_allowed\"}\n", MHD_HTTP_HEADER_ALLOW,
                                 allow);
}

/* An error answer, counted, with an optional extra header (name NULL:
 * none). */
static enum MHD_Result respond_error_with(ing_metrics *metrics, struct MHD_Connection *conn,
                                          unsigned status, const char *path, const char *reason,
                                          const char *field, const char *message,
                                          const char *name, const char *value)
{
    char esc_field[ING_FIELD_MAX * 2], esc_msg[BZ_ERROR_MSG_MAX * 2], body[1400];
    bz_json_escape(esc_field, sizeof esc_field, field ? field : "");
    bz_json_escape(esc_msg, sizeof esc_msg, message ? message : "");
    snprintf(body, sizeof body, "{\"error\":\"%s\",\"field\":\"%s\",\"message\":\"%s\"}\n", reason,
             esc_field, esc_msg);
    if (metrics)
        bz_counter_inc(bz_counter_family_with(metrics->rejected, path, reason));
    return respond_with(conn, status, "application/json", body, name, value);
}

enum MHD_Result ing_http_respond_error(ing_metrics *metrics, struct MHD_Connection *conn,
                                       unsigned status, const char *path, const char *reason,
                                       const char *field, const char *message)
{
    return respond_error_with(metrics, conn, status, path, reason, field, message, NULL, NULL);
}

enum MHD_Result ing_http_respond_too_many(ing_metrics *metrics, struct MHD_Connection *conn,
                                          const char *path, const char *reason,
                                          const char *message, int64_t retry_after_s)
{
    char after[24];
    snprintf(after, sizeof after, "%" PRId64, retry_after_s < 1 ? 1 : retry_after_s);
    return respond_error_with(metrics, conn, MHD_HTTP_TOO_MANY_REQUESTS, path, reason, "",
                              message, MHD_HTTP_HEADER_RETRY_AFTER, after);
}

enum MHD_Result ing_http_respond_invalid(ing_metrics *metrics, struct MHD_Connection *conn,
                                         const char *path, const bz_error *err)
{
    if (err->code == BZ_ERR_NOMEM)
        return ing_http_respond_error(metrics, conn, MHD_HTTP_SERVICE_UNAVAILABLE, path,
                                      "out_of_memory", "", "try again");
    char field[ING_FIELD_MAX];
    ing_error_field(err, field);
    int too_large = err->reason && strcmp(err->reason, "too_large") == 0;
    return ing_http_respond_error(
        metrics, conn, too_large ? MHD_HTTP_CONTENT_TOO_LARGE : MHD_HTTP_BAD_REQUEST, path,
        err->reason ? err->reason : "invalid_field", field, err->msg);
}

enum MHD_Result ing_http_respond_unavailable(ing_metrics *metrics, struct MHD_Connection *conn,
                                             const char *path, const char *why)
{
    char message[BZ_ERROR_MSG_MAX];
    snprintf(message, sizeof message, "%s; nothing was accepted, retry", why);
    return ing_http_respond_error(metrics, conn, MHD_HTTP_SERVICE_UNAVAILABLE, path,
                                  "unavailable", "", message);
}

enum MHD_Result ing_http_respond_too_large(ing_metrics *metrics, struct MHD_Connection *conn,
                                           const char *path, size_t max_bytes)
{
    char message[96];
    snprintf(message, sizeof message, "body exceeds %zu bytes", max_bytes);
    return ing_http_respond_error(metrics, conn, MHD_HTTP_CONTENT_TOO_LARGE, path, "too_large",
                                  "body", message);
}

enum MHD_Result ing_http_respond_busy(ing_metrics *metrics, struct MHD_Connection *conn,
                                      const char *path)
{
    return ing_http_respond_error(metrics, conn, MHD_HTTP_SERVICE_UNAVAILABLE, path, "busy", "",
                                  "too many request bodies in flight; nothing was accepted, retry");
}
