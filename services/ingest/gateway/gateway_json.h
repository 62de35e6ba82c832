/*
 * gateway_json.h - the gateway's JSON payload -> InboundEvent.
 *
 * The format extends the seeds' message webhook (session_id, chat_type,
 * contact_phone, contact_name, group_jid, group_name, sender_phone,
 * sender_name, message_body, message_type, timestamp, has_media) with an
 * "event" discriminator for receipts, session status, history-sync batches
 * and group updates; services/ingest/README.md documents every field with
 * examples. Parsing only maps and type-checks: values are validated and
 * normalized afterwards by normalize.h, and a missing event_id is derived by
 * event_id.h.
 *
 * Timestamps are numbers or digit strings, in seconds (whatsapp-web.js's
 * msg.timestamp) or milliseconds: values below 10^11 are taken as seconds.
 */
#ifndef ING_GATEWAY_JSON_H
#define ING_GATEWAY_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "blazz/v1/inbound.pb-c.h"
#include "core/status.h"

/* Parse len bytes of body. On BZ_OK *out is a new event owned by the caller
 * (free with blazz__v1__inbound_event__free_unpacked(ev, NULL)); its
 * provider is WEBJS unless the body says "meta". received_ms becomes
 * envelope.occurred_at_ms when the body carries no time at all. Failures are
 * BZ_ERR_INVALID ("decode_error" for bad JSON, "invalid_field" or
 * "missing_field" with a "field <name>: " message) or BZ_ERR_NOMEM. */
bz_status ing_gateway_json_parse(const char *body, size_t len, int64_t received_ms,
                                       Blazz__V1__InboundEvent **out, bz_error *err);

#endif
