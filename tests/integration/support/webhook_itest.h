/*
 * webhook_itest.h - helpers shared by the webhook-dispatcher integration
 * tests and benchmark: a workspace with endpoints, the test receiver and
 * the dispatcher as child processes, ChatEvents produced straight to
 * <prefix>chat.events, and the receiver's request log read back.
 *
 * Endpoint secrets are stored the way the dispatcher expects them
 * (AES-256-GCM under WH_TEST_KEY, core/secretbox.h); signatures are never
 * computed with project code here: tests verify them independently.
 */
#ifndef WEBHOOK_ITEST_H
#define WEBHOOK_ITEST_H

#include <jansson.h>
#include <libpq-fe.h>
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

/* Wait until the dispatcher's consumer has applied a record: produce one
 * event for a workspace without endpoints and watch kafka_offsets. */
void wh_wait_consuming(wh_env *e);

/* Produce a MESSAGE_CREATED ChatEvent for the workspace; event_id is
 * written to out (37 bytes). produced_at_ms is set to now. */
void wh_produce_message(bz_producer *p, wh_env *e, int64_t workspace_id, char *event_id_out,
                        const char *text);

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
