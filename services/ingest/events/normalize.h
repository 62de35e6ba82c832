/*
 * normalize.h - validation and normalization of one InboundEvent, the step
 * that turns what a producer claims into what chat-sync may trust
 * (sync.proto lists the guarantees).
 *
 * ing_normalize edits the event in place: fields this version does not
 * know are dropped from the whole tree, phones become E.164, JIDs
 * canonical (libs/wa), group vs private is decided from the JIDs, unset
 * enums get their documented defaults, missing timestamps are taken from
 * the envelope (or the other way round), and every text field is checked
 * for length and UTF-8. It also computes the conversation part of the
 * chat.sync key. It needs no database: session -> workspace resolution is
 * the pipeline's job (sessions.h).
 *
 * Normalizing a normalized event changes nothing, so the HTTP path can
 * publish the normalized event to wa.inbound.raw and the Kafka path
 * normalizes it again without harm.
 *
 * Rejections are BZ_ERR_INVALID with reason "missing_field" or
 * "invalid_field", and the message always starts with "field <path>: "
 * (e.g. "field message.contact_phone: too few digits"), so that an HTTP
 * error and a dead letter name the offending field.
 */
#ifndef ING_NORMALIZE_H
#define ING_NORMALIZE_H

#include <stddef.h>
#include <stdint.h>

#include "blazz/v1/inbound.pb-c.h"
#include "core/status.h"
#include "events/field_checks.h"
#include "wa/text_limits.h"

#define ING_BODY_MAX BZ_WA_TEXT_MAX_BYTES
#define ING_NAME_MAX_BYTES 256
#define ING_TEXT_MAX 4096 /* details, captions, urls, error messages */
#define ING_RAW_CONTENT_MAX 16384 /* InboundMessage.raw_content, referral_json */
#define ING_FLOW_RESPONSE_MAX 65536 /* InteractiveReply.response_json: a flow's answers */
#define ING_HISTORY_CHATS_MAX 50 /* the seeds' batch size */
#define ING_HISTORY_MESSAGES_MAX 1000 /* a synced chat's messages */
#define ING_CONVERSATION_MAX 160 /* a BSUID: "CC." and 128 more */

/* 2009-01-01T00:00:00Z: WhatsApp did not exist before; earlier is garbage. */
#define ING_MIN_TIMESTAMP_MS 1230768000000LL

typedef struct ing_norm_opts {
    const char *default_cc;   /* country code for national numbers ("62") */
    int64_t now_ms;           /* wall clock, for the "not in the future" check */
    int64_t max_future_ms;    /* tolerated producer clock skew */
    int meta_edge;            /* read by ingest's Meta webhook: only its events are Meta's */
} ing_norm_opts;

/* A payload's time *ts, taken from fallback when unset: before 2009 or
 * beyond the tolerated skew is refused, unset only when not required. */
bz_status ing_check_timestamp(int64_t *ts, int64_t fallback, int required, const ing_norm_opts *o,
                              const char *field, bz_error *err);

/* A phone that may also arrive as a user JID, no JID field next to it,
 * normalized to E.164 in place (a LID names no phone: unset); a group is
 * refused. */
bz_status ing_norm_phone_only(char **phone, const char *field, const ing_norm_opts *o,
                              bz_error *err);

/* Validate and normalize ev in place and write the conversation key into
 * conversation (ING_CONVERSATION_MAX bytes). ev->envelope->event_id
 * must already be assigned (event_id.h). */
bz_status ing_normalize(Blazz__V1__InboundEvent *ev, const ing_norm_opts *opts,
                              char *conversation, bz_error *err);

#endif
