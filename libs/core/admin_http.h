/*
 * admin_http.h - the small HTTP server every service runs for operators:
 *
 *   GET /healthz  200 "ok\n" as long as the process is up (liveness)
 *   GET /readyz   200 or 503 with a JSON body listing the service's checks
 *   GET /metrics  the metrics registry as Prometheus text format 0.0.4
 *
 * Other paths answer 404; the three paths answer 405 to methods other than
 * GET and HEAD. The server runs on its own thread (libmicrohttpd's internal
 * polling thread), so the service's loops never wait for it.
 *
 * Readiness is decided by a callback the service supplies. It runs on the
 * server thread for every /readyz request, so it must only read state that is
 * safe to read concurrently (atomics, or data under the service's own lock),
 * and it must be quick. It reports each check with bz_readiness_add; the
 * service is ready when every check is ok:
 *
 *   static void readiness(void *ctx, bz_readiness *r)
 *   {
 *       struct app *app = ctx;
 *       bz_readiness_add(r, "kafka", atomic_load(&app->kafka_up), "%s",
 *                        atomic_load(&app->kafka_up) ? "ok" : "down");
 *       bz_readiness_add(r, "partitions", atomic_load(&app->assigned) > 0,
 *                        "%d assigned", atomic_load(&app->assigned));
 *   }
 *
 * Body: {"ready":false,"checks":[{"name":"kafka","ok":true,"detail":"ok"},...]}
 */
#ifndef BZ_ADMIN_HTTP_H
#define BZ_ADMIN_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics.h"
#include "status.h"

#define BZ_READINESS_MAX_CHECKS 16

typedef struct bz_readiness bz_readiness;
typedef struct bz_admin_http bz_admin_http;

/* Fills the report for one /readyz request. */
typedef void (*bz_readiness_fn)(void *ctx, bz_readiness *report);

/* Record one check. name and the formatted detail are copied (truncated to
 * 31 and 127 bytes, bytes that are not UTF-8 shown as '?'); checks beyond
 * BZ_READINESS_MAX_CHECKS are dropped. */
void bz_readiness_add(bz_readiness *report, const char *name, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* What a request is answered: status, content type and body[0..len);
 * owned is the heap memory body points into (free it), or NULL for text
 * of static storage. */
typedef struct bz_admin_answer {
    unsigned status;
    const char *content_type;
    const char *body;
    size_t len;
    char *owned;
} bz_admin_answer;

/* The answer the server gives to method url, with registry (NULL: /metrics
 * is 404) and readiness (NULL: ready, no checks) called as it calls them:
 * the whole of the server's behaviour above libmicrohttpd's parsing. Out
 * of memory is a 500 with static text. */
void bz_admin_http_answer(const char *method, const char *url, bz_metrics *registry,
                          bz_readiness_fn readiness, void *ctx, bz_admin_answer *out);

/* Start serving on listen, written "host:port": "127.0.0.1:9101",
 * "0.0.0.0:9101", "[::1]:9101", "localhost:9101" or ":9101" (all IPv4
 * interfaces); hosts are numeric, never looked up in DNS. Port 0 picks
 * a free port; bz_admin_http_port tells which. registry may be NULL (then
 * /metrics answers 404) and must otherwise outlive the server; readiness may
 * be NULL (always ready, no checks). *out is owned by the caller and released
 * with bz_admin_http_stop. Fails with BZ_ERR_CONFIG for a malformed address
 * and BZ_ERR_IO when the address cannot be bound. */
bz_status bz_admin_http_start(const char *listen, bz_metrics *registry,
                              bz_readiness_fn readiness, void *readiness_ctx,
                              bz_admin_http **out, bz_error *err);

/* The TCP port actually bound. */
uint16_t bz_admin_http_port(const bz_admin_http *server);

/* Stop the server thread, close the socket and free the server. NULL is a
 * no-op. */
void bz_admin_http_stop(bz_admin_http *server);

#endif
