/*
 * payload.h - from a consumed event to the webhook body.
 *
 * Each record of chat.events, session.events or campaign.events becomes one
 * webhook event: a type ("message.created", "message.status",
 * "message.reaction", "message.edited", "message.deleted", "group.updated",
 * "contact.updated", "template.updated", "account.updated", "message.media_ready", "call.updated",
 * "sync.progress",
 * "chat.read", "session.status", "campaign.progress", "campaign.completed";
 * docs/EVENTS.md is the catalogue) and a JSON body
 *   {"id": <event_id>, "type": ..., "timestamp": <ISO 8601 UTC, ms>,
 *    "workspace_id": N, "data": {...}}
 * For messages `data` mirrors the seeds' NewChatEvent payload:
 *   {"chat": {...}, "contact": {...} | null, "group": {...} | null}
 * with the chats/contacts/whatsapp_groups column names ("chat.read": {"read":
 * {messages_read, read_at, up_to, up_to_wam_id, user_id, chat_ids},
 * "contact" | "group"}; "message.reaction", "message.edited",
 * "message.deleted": {"chat" (the target after it), "contact", "group",
 * "action": {wam_id, actor_phone, actor_jid, from_me, emoji, previous_emoji,
 * previous_body, acted_at}}; "group.updated": {"group", "change": {action,
 * changed, participants, actor_phone, changed_at, description, invite_code,
 * picture_url, settings}}; "contact.updated": {"contact", "change":
 * {changed, changed_at, business_profile}}; "template.updated": {"template":
 * {id, name, language, status, category, quality_score, rejection_reason,
 * meta_template_id, waba_id, event, reported_at}}; "account.updated":
 * {"account": {id, phone_number_id, phone_number, waba_id, business_id,
 * flagged, quality_event, messaging_limit, business_limit, account_event,
 * restriction, restricted_until, violation, ban_state, detail}, "field",
 * "event", "reported_at"}; "call.updated": {"call": {call_id, id, uuid,
 * direction, status, whatsapp_account_id, contact_id, connected_at,
 * started_at, ended_at, terminated_at, duration_s, error_code,
 * error_message}, "event", "contact"}); enum values are the
 * PostgreSQL text values ("inbound", "private", "webjs", "delivered").
 * The body is rendered once, at fan-out, and stored; every attempt sends the
 * same bytes.
 *
 * A record carrying the header `webhook-endpoint-id` is a replayed dead
 * letter of webhook.dlq: its value is the stored body itself, to be
 * delivered again to that one endpoint with the same webhook-id.
 */
#ifndef WH_PAYLOAD_H
#define WH_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define WH_REPLAY_HEADER "webhook-endpoint-id"

typedef enum wh_source {
    WH_SOURCE_CHAT = 0,
    WH_SOURCE_SESSION,
    WH_SOURCE_CAMPAIGN
} wh_source;

typedef struct wh_event {
    char event_id[64];
    char type[32];
    int64_t workspace_id;
    int64_t whatsapp_account_id; /* 0 when none */
    int64_t produced_at_ms;
    int64_t replay_endpoint_id;  /* > 0: a dead letter replayed to this endpoint */
    char *body;                  /* heap, NUL-terminated JSON */
    size_t body_len;
} wh_event;

/* Decode a record value of the given source topic and render its body into
 * ev (free with wh_event_clear). Undecodable or incomplete events are
 * BZ_ERR_INVALID with a reason ("decode_error", "missing_event_id",
 * "missing_workspace", "unknown_kind"). */
bz_status wh_event_from_record(wh_source source, const void *value, size_t len,
                                  wh_event *ev, bz_error *err);

/* A replayed delivery: value is a stored body; its id, type and
 * workspace_id are read back from it. */
bz_status wh_event_from_replay(int64_t endpoint_id, const void *value, size_t len,
                                  wh_event *ev, bz_error *err);

void wh_event_clear(wh_event *ev);

#endif
