/*
 * ingest_itest.h - one blazz-ingest under test, for test_ingest (what it
 * does) and test_ingest_outages (what it does while the broker or the
 * database is away): its topic catalogue under a unique prefix, a
 * registered gateway and the Meta app's gateway with their keys, a
 * workspace with a webjs account, a deleted one and a Meta account, the
 * process itself; signed requests to it; and reading what it produced
 * (chat.sync, wa.inbound.raw, wa.inbound.dlq) by event_id.
 */
#ifndef INGEST_ITEST_H
#define INGEST_ITEST_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "blazz/v1/sync.pb-c.h"
#include "core/uuid.h"
#include "itest_http.h"

#define INGEST_FX_SECRET "gateway-test-secret-0123456789abcdef"
#define INGEST_FX_META_SECRET "meta-app-secret-0123456789abcdef"
#define INGEST_FX_META_TOKEN "meta-verify-token"
#define INGEST_FX_MEDIA_LINK_SECRET "media-link-secret-0123456789abcdef"
#define INGEST_FX_WAIT_MS (120 * 1000)

typedef struct ingest_fx {
    char prefix[64];
    char raw[128], sync[128], dlq[128];
    char session[64], deleted_session[64], meta_session[64];
    char gateway[48], meta_gateway[48];
    int64_t workspace, other_workspace, account, meta_account;
    int port, admin_port;
    char log_path[256];
    pid_t ingest;
    PGconn *conn;
} ingest_fx;

/* Everything above, ingest started and ready. */
void ingest_fx_setup(ingest_fx *fx);
/* Stop ingest (a clean exit is required) and close the connection. */
void ingest_fx_teardown(ingest_fx *fx);

/* Start the ingest process again (after a SIGKILL) without waiting. */
void ingest_fx_start(ingest_fx *fx);
void ingest_fx_wait_ready(ingest_fx *fx);

/* One request to ingest, as the registered gateway (X-Blazz-Gateway);
 * sig_header/sig may be NULL. */
itest_http_reply ingest_fx_http(ingest_fx *fx, const char *method, const char *path,
                                const void *body, size_t len, const char *content_type,
                                const char *sig_header, const char *sig);
/* POST /v1/events signed with the gateway's key. */
itest_http_reply ingest_fx_post_signed(ingest_fx *fx, const void *body, size_t len,
                                       const char *content_type);
itest_http_reply ingest_fx_post_json(ingest_fx *fx, const char *json);

/* A gateway's JSON message event for session, its message id message_id,
 * with a fresh event id (into event_id). */
void ingest_message_event_json(const char *session, const char *message_id,
                               char event_id[BZ_UUID_STR_SIZE], char *out, size_t cap);

/* The event_id of a 202 answer (fails the test on any other). */
void ingest_fx_accepted_id(const itest_http_reply *r, char out[BZ_UUID_STR_SIZE]);

/* Records of a topic, with the event_id header of each. */
typedef struct ingest_record {
    char event_id[BZ_UUID_STR_SIZE];
    char key[160];
    uint8_t *value;
    size_t len;
} ingest_record;

typedef struct ingest_records {
    ingest_record *items;
    size_t count, cap;
} ingest_records;

void ingest_records_free(ingest_records *rs);
/* Every record of topic now (replaces what rs held). */
void ingest_records_read(const char *topic, ingest_records *rs);
const ingest_record *ingest_records_find(const ingest_records *rs, const char *event_id);
/* Read topic until every one of the n ids is there, or fail naming fx's log. */
void ingest_records_wait_for(const ingest_fx *fx, const char *topic, const char *const *ids,
                             size_t n, ingest_records *rs);
/* The SyncCommand of event_id in rs (the caller frees it with
 * blazz__v1__sync_command__free_unpacked). */
Blazz__V1__SyncCommand *ingest_records_sync_of(const ingest_records *rs, const char *event_id);

#endif
