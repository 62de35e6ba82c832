/*
 * webhook_itest.h - helpers shared by the webhook-dispatcher integration
 * tests and benchmark: a workspace with endpoints, the test receiver and
 * the dispatcher as child processes, ChatEvents produced straight to
 * <prefix>chat.events (or deliveries inserted straight into
 * webhook_retry_queue when Kafka is meant to be away), the receiver's
 * request log read back, the dispatcher's /readyz and /metrics, and the
 * dead letters on <prefix>webhook.dlq counted.
 *
 * Endpoint secrets are stored the way the dispatcher expects them
 * (AES-256-GCM under WH_TEST_KEY, core/secretbox.h); signatures are never
 * computed with project code here: tests verify them independently.
 */
#ifndef WEBHOOK_ITEST_H
#define WEBHOOK_ITEST_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "kafka/producer.h"

#define WH_TEST_KEY "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

typedef struct wh_env {
    char prefix[64];
    char group[64];
    char token[32];
    char record_path[256];
    char receiver_log[256];
    char dispatcher_log[256];
    int port;
    int admin_port; /* the dispatcher's /readyz and /metrics */
    int64_t workspace_id;
    PGconn *conn;
    pid_t receiver, dispatcher;
} wh_env;

/* Unique prefix and group, topics, a workspace, a receiver. */
void wh_env_setup(wh_env *e, const char *name);

/* Stop every child, delete the workspace (its endpoints and deliveries). */
void wh_env_teardown(wh_env *e);

/* Insert an endpoint for url_path on the receiver (e.g. "/ok/a"); secret is
 * stored encrypted. events is a text[] literal such as "{*}". */
int64_t wh_endpoint_add(wh_env *e, const char *url_path, const char *secret, const char *scheme,
                        const char *events, int rate, int concurrency);

/* Start the dispatcher with the test's prefix and group plus the given
 * NULL-terminated "BLAZZ_X=value" settings. */
void wh_dispatcher_start(wh_env *e, const char *const *settings);
void wh_dispatcher_stop(wh_env *e);

/* Start one more dispatcher beside e's (same prefix, group and settings),
 * its admin endpoint on *admin_port and its log at log_path. The caller
 * stops it (SIGTERM + itest_wait). */
pid_t wh_dispatcher_spawn(wh_env *e, const char *const *settings, const char *log_path,
                          int *admin_port);

/* Stop the receiver now (hanging requests end: their connections close). */
void wh_receiver_stop(wh_env *e);

/* GET http://127.0.0.1:admin_port/path: the status (0 when unreachable);
 * *body (if not NULL) receives the body, caller frees. */
long wh_admin_get(int admin_port, const char *path, char **body);

/* What the dispatcher's /readyz says about PostgreSQL (its consumer's
 * "postgresql" and its delivery worker's "delivery postgresql" checks): 1
 * both ok, 0 either down, -1 no answer or neither check. */
int wh_postgres_ready(int admin_port);

/* The value of an unlabelled metric on /metrics, or -1 when absent. */
double wh_metric(int admin_port, const char *name);

/* Wait until the dispatcher's consumer has applied a record: produce one
 * event for a workspace without endpoints and watch kafka_offsets. */
void wh_wait_consuming(wh_env *e);

/* Produce a MESSAGE_CREATED ChatEvent for the workspace; event_id is
 * written to out (37 bytes). produced_at_ms is set to now. */
void wh_produce_message(bz_producer *p, wh_env *e, int64_t workspace_id, char *event_id_out,
                        const char *text);

/* Produce one MESSAGE_CREATED event for e's workspace and flush. */
void wh_produce_one(wh_env *e, char *event_id_out, const char *text);

/* Produce n events for e's workspace at once, all with message text, and
 * flush. */
void wh_produce_many(wh_env *e, int n, const char *text);

/* Produce n events for e's workspace, per_second of them a second, each
 * with its produced wall-clock ms as the message text (for
 * wh_first_attempt_latencies), and flush. */
void wh_produce_paced(wh_env *e, int n, int per_second);

/* Arrival minus produced time (ms) of the requests at path (every request
 * when path is NULL) of events made by wh_produce_paced, sorted; at most
 * cap. Returns how many. */
size_t wh_first_attempt_latencies(const wh_env *e, const char *path, double *out, size_t cap);

/* Insert a due delivery for endpoint_id by hand, as fan-out would (a small
 * JSON payload, max_retries as given), and NOTIFY the dispatcher. The
 * event id is written to event_id_out (37 bytes). */
void wh_insert_delivery(wh_env *e, int64_t endpoint_id, int max_retries, char *event_id_out);

/* True when the record's last header `name` is exactly `value`. */
bool wh_record_header_is(const rd_kafka_message_t *msg, const char *name, const char *value);

/* Dead letters on <prefix>webhook.dlq for endpoint_id: how many, and how
 * many distinct event ids among them (NULL when not wanted). */
size_t wh_dead_letters(wh_env *e, int64_t endpoint_id, size_t *distinct_events);

/* A request's header (lower-case name), or NULL. */
const char *wh_header(json_t *req, const char *name);

/* Every request the receiver recorded so far (a JSON array, caller decrefs). */
json_t *wh_requests(const wh_env *e);

/* Requests whose path starts with path_prefix, in arrival order
 * (borrowed references into all). */
size_t wh_filter(json_t *all, const char *path_prefix, json_t **out, size_t cap);

/* Poll `sql` (one int64) until it returns want, failing after timeout_ms. */
void wh_wait_for(wh_env *e, const char *sql, int64_t want, int timeout_ms);

int64_t wh_int(wh_env *e, const char *sql);

/* An independent Standard Webhooks verifier (OpenSSL only): 1 when one of
 * the space-separated "v1,<base64>" entries of header is
 * HMAC-SHA256(base64decode(secret without whsec_), "id.ts.body"). */
int wh_verify_standard(const char *secret, const char *id, const char *ts, const char *body,
                       const char *header);

#endif
