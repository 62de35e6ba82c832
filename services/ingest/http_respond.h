/*
 * http_respond.h - the answers of ingest's HTTP endpoints.
 *
 * Errors are JSON, {"error": reason, "field": the field or header at
 * fault, "message": the detail}, counted in metrics->rejected by path
 * ("http", "meta", "crm") and reason; a 503 or a 429 always carries
 * Retry-After.
 * Each function queues the answer on conn and returns what libmicrohttpd's
 * access handler returns.
 */
#ifndef ING_HTTP_RESPOND_H
#define ING_HTTP_RESPOND_H

#include <microhttpd.h>
#include <stdint.h>

#include "core/status.h"
#include "ingest_metrics.h"

enum MHD_Result ing_http_respond(struct MHD_Connection *conn, unsigned status, const char *type,
                                 const char *body);

/* 405, naming the methods the path serves in Allow. */
enum MHD_Result ing_http_respond_method_not_allowed(struct MHD_Connection *conn, const char *allow);

/* metrics may be NULL. */
enum MHD_Result ing_http_respond_error(ing_metrics *metrics, struct MHD_Connection *conn,
                                       unsigned status, const char *path, const char *reason,
                                       const char *field, const char *message);

/* 429 with Retry-After: retry_after_s whole seconds, at least 1. */
enum MHD_Result ing_http_respond_too_many(ing_metrics *metrics, struct MHD_Connection *conn,
                                          const char *path, const char *reason,
                                          const char *message, int64_t retry_after_s);

/* A rejection from the parsers and the normalizer: 400 naming its field,
 * 413 for too_large, 503 when memory ran out. */
enum MHD_Result ing_http_respond_invalid(ing_metrics *metrics, struct MHD_Connection *conn,
                                         const char *path, const bz_error *err);

/* 503: nothing was accepted; why names what failed (e.g. "the broker did
 * not acknowledge the event"). */
enum MHD_Result ing_http_respond_unavailable(ing_metrics *metrics, struct MHD_Connection *conn,
                                             const char *path, const char *why);

/* 413: a body over max_bytes. */
enum MHD_Result ing_http_respond_too_large(ing_metrics *metrics, struct MHD_Connection *conn,
                                           const char *path, size_t max_bytes);

/* 503: no room for another request body. */
enum MHD_Result ing_http_respond_busy(ing_metrics *metrics, struct MHD_Connection *conn,
                                      const char *path);

#endif
