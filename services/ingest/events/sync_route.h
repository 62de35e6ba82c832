/*
 * sync_route.h - an inbound event, checked and normalized, made into its
 * chat.sync record: who owns it (its session, the WhatsApp Business
 * Account of a notice, or for an instance heartbeat the gateway that sent
 * it), whether the gateway that sent it may speak for that owner, the
 * owner's workspace and account stamped into its envelope, and the
 * SyncCommand packed under its conversation's key
 * ("<workspace_id>:<conversation>").
 *
 * Both of ingest's routes call it and produce the result their own way:
 * the HTTP path's router (http_router.h) with the idempotent producer,
 * straight to chat.sync; the Kafka path (record_route.h) inside its Kafka
 * transaction. A refusal carries the dead letter's reason
 * (unknown_session, session_not_owned, workspace_mismatch,
 * unknown_business_account, unknown_gateway, too_large).
 */
#ifndef ING_SYNC_ROUTE_H
#define ING_SYNC_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "blazz/v1/inbound.pb-c.h"
#include "core/status.h"
#include "events/normalize.h"
#include "events/sessions.h"
#include "kafka/producer.h"

typedef struct ing_sync_record {
    char key[ING_CONVERSATION_MAX + 24];
    size_t key_len;
    uint8_t *value; /* the packed SyncCommand, heap: ing_sync_record_clear */
    size_t len;
} ing_sync_record;

/* Route ev, sent by gateway ("" when nobody vouches for the sender), in
 * conversation (ing_normalize's). ev's envelope is stamped (workspace,
 * account, produced_at_ms; a session named by its account's id is renamed
 * to the session). BZ_OK fills *out; BZ_ERR_INVALID refuses ev for good,
 * err->reason naming why; BZ_ERR_TRANSIENT when PostgreSQL could not
 * answer; BZ_ERR_NOMEM. */
bz_status ing_sync_route(ing_sessions *sessions, Blazz__V1__InboundEvent *ev, const char *gateway,
                         const char *conversation, ing_sync_record *out, bz_error *err);

/* The chat.sync record's headers: event_id and trace_id, pointing into
 * ev's envelope. */
void ing_sync_headers(const Blazz__V1__InboundEvent *ev, bz_kafka_header out[2]);

/* Free what r owns; r may be routed into again. */
void ing_sync_record_clear(ing_sync_record *r);

#endif
