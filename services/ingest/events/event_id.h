/*
 * event_id.h - the event_id of an event whose producer did not give one.
 *
 * ARCHITECTURE.md §2 makes event_id the idempotency key, stable across
 * retries and replays. Gateways posting the seeds' JSON and Meta's webhooks
 * carry no such id, so ingest derives one from the facts that identify the
 * event (session, kind, WhatsApp message id, status, sync batch, ...): a
 * retried POST or a Meta redelivery of the same fact gets the same id and
 * the duplicate window drops it. The id is a UUID (version 8, RFC 9562
 * "custom") made of the first 16 bytes of SHA-256 over those facts.
 * A producer-supplied event_id is always kept; one that is present but not
 * a UUID is invalid input.
 */
#ifndef ING_EVENT_ID_H
#define ING_EVENT_ID_H

#include "blazz/v1/inbound.pb-c.h"
#include "core/status.h"
#include "core/uuid.h"

/* Give ev an event_id when it has none (derived as above) and lowercase a
 * given one. A given id that is not a UUID is BZ_ERR_INVALID
 * "invalid_field". */
bz_status ing_event_id_assign(Blazz__V1__InboundEvent *ev, bz_error *err);

/* A message without a WhatsApp message id (the seeds' Node notifier, DES-5,
 * sends none) gets "derived-" and 32 hex digits of SHA-256 over what
 * identifies it: the session, the chat (group JID, else the contact's
 * phone or JID), the direction, the sender in a group, the timestamp, the
 * type, the body, the media digest, and for a reaction, an edit or a
 * delete its target and emoji. Called on a normalized message the
 * id is the same whatever spelling the producer used for phones and JIDs.
 * What it cannot tell apart: two messages equal in all of these (the same
 * text twice from one party within one timestamp unit, seconds for
 * whatsapp-web.js); what it does not catch: the same message arriving
 * once with its real id and once without. */
#define ING_DERIVED_ID_PREFIX "derived-"
#define ING_DERIVED_ID_SIZE (sizeof ING_DERIVED_ID_PREFIX + 32)
bz_status ing_message_id_derive(const char *session_id, const Blazz__V1__InboundMessage *m,
                                      char out[ING_DERIVED_ID_SIZE], bz_error *err);

#endif
