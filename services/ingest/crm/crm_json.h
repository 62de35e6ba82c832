/*
 * crm_json.h - the JSON bodies of the CRM's endpoints, parsed into the
 * commands of crm.proto (no database: the handlers, crm_messages.c,
 * crm_sessions.c and crm_contact_writes.c, resolve ids afterwards).
 *
 * POST /v1/messages:
 *   {"idempotency_key": "...",            (or the Idempotency-Key header)
 *    "contact_id": 12 | "contact_phone": "+62..." | "contact_jid": "...@lid"
 *      | "group_id": 5 | "group_jid": "...@g.us",
 *    "whatsapp_account_id": 3,            optional
 *    "message_type": "text",              text (default) | image | video | audio |
 *                                         voice | document | sticker | template
 *    "body": "...",                       text
 *    "media": {"url" | "media_id", "mime_type", "caption", "filename"},
 *    "template": {"name", "language", "body_params": [...], "header_params": [...],
 *                 "button_params": [...]},
 *    "reply_to_wam_id": "...", "user_id": 7}
 * POST /v1/chats/read:
 *   {contact or group as above, "up_to_wam_id": "..." | "up_to_ms": 1700000000000,
 *    "user_id": 7}
 * POST /v1/sessions:
 *   {"session_id": "...", "gateway_id": "...", "user_id": 7}   all optional
 * POST /v1/contacts:
 *   {"phone": "+62..." and/or "bsuid": "ID.123...", "name": "..."}
 * PATCH /v1/contacts/{contact_id}:
 *   {"name": "...", "opted_out": true | false}               one or both
 * POST /v1/contacts/{contact_id}/merge:
 *   {"merged_contact_id": 955 | "<uuid>"}
 * PATCH /v1/webhook-endpoints/{endpoint_id}:
 *   {"enabled": false, "disabled_reason": "..."}             reason optional
 * POST /v1/webhook-endpoints/{endpoint_id}/replay:
 *   {"since": "2026-11-27T08:00:00Z", "until": "...",       RFC 3339; until,
 *    "status": "failed" | "success", "cursor": "c1_..."}      status, cursor optional
 *
 * Field names are the proto field names, so a refusal here and one from the
 * contract check (libs/wa/crm_command.h) name fields the same way. Phones
 * are normalized to E.164 (national numbers with default_cc), JIDs
 * canonicalized; a user JID becomes its phone. Unknown fields are refused
 * (a misspelled "text" must not send an empty message).
 */
#ifndef ING_CRM_JSON_H
#define ING_CRM_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "blazz/v1/crm.pb-c.h"
#include "core/status.h"
#include "crm/crm_page.h"

/* Parse a send. On BZ_OK *out is heap memory the caller frees with
 * blazz__v1__send_chat_message__free_unpacked(out, NULL); message_id is
 * left empty (it needs the workspace). idempotency_header may be NULL. */
bz_status ing_crm_json_send(const char *body, size_t len, const char *idempotency_header,
                           const char *default_cc, Blazz__V1__SendChatMessage **out,
                           bz_error *err);

/* Parse a mark-read; free with blazz__v1__mark_chat_read__free_unpacked. */
bz_status ing_crm_json_read(const char *body, size_t len, const char *default_cc,
                           Blazz__V1__MarkChatRead **out, bz_error *err);

/* Parse a session request's body: POST /v1/sessions {"session_id"?,
 * "gateway_id"?, "user_id"?, "history_sync"?}, .../history-sync
 * {"history_sync"}; the other session routes take none (or {}). *out is
 * freed with blazz__v1__session_request__free_unpacked; *session_id is the
 * body's session id (heap, the caller frees it), NULL when absent;
 * *history_sync_named: whether the body named history_sync (true or false). */
bz_status ing_crm_json_session(const char *body, size_t len, Blazz__V1__SessionRequest **out,
                               char **session_id, int *history_sync_named, bz_error *err);

/* Parse a contact's create (create 1: phone, bsuid, name) or change
 * (name, opted_out); free with blazz__v1__contact_request__free_unpacked.
 * What the command needs beyond the body (the contact's id) is left 0. */
bz_status ing_crm_json_contact(const char *body, size_t len, int create, const char *default_cc,
                               Blazz__V1__ContactRequest **out, bz_error *err);

/* Parse a merge's body: the merged contact's reference (its id as
 * decimal text, or the uuid given, unchecked: a lookup tells) into ref
 * (cap bytes). */
bz_status ing_crm_json_merge(const char *body, size_t len, char *ref, size_t cap, bz_error *err);

/* The longest disabled_reason a CRM may give, in characters, and the
 * bytes that many UTF-8 characters take at most, with the NUL. */
#define ING_CRM_REASON_MAX 200
#define ING_CRM_REASON_SIZE (4 * ING_CRM_REASON_MAX + 1)

/* Parse an endpoint's change: *enabled 1 or 0; reason (cap bytes, at least
 * ING_CRM_REASON_SIZE) the disabled_reason given, "" when none (only with
 * enabled false). */
bz_status ing_crm_json_endpoint_change(const char *body, size_t len, int *enabled, char *reason,
                                       size_t cap, bz_error *err);

/* A replay's body: deliveries of status (failed unless given) created in
 * [since, until) (no end unless has_until), given as RFC 3339 date-times,
 * in milliseconds since the epoch; after cursor (the previous call's
 * next_cursor) when has_cursor. */
typedef struct ing_crm_replay {
    int64_t since_ms;
    int64_t until_ms;
    int has_until;
    int has_cursor;
    ing_crm_cursor cursor;
    const char *status; /* static */
} ing_crm_replay;

/* Parse a replay's body into *out. */
bz_status ing_crm_json_replay(const char *body, size_t len, ing_crm_replay *out, bz_error *err);

/* A webhook endpoint the CRM creates: url, name (NULL: none) and
 * event_types as a text[] literal; heap, freed by
 * ing_crm_new_endpoint_free. */
typedef struct ing_crm_new_endpoint {
    char *url;
    char *name;
    char *event_types;
} ing_crm_new_endpoint;

/* The longest endpoint URL (bytes) and name (characters), and the most
 * event types an endpoint names. */
#define ING_CRM_ENDPOINT_URL_MAX 2048
#define ING_CRM_ENDPOINT_NAME_MAX 200
#define ING_CRM_ENDPOINT_TYPES_MAX 32

/* Parse an endpoint's creation ({"url", "name"?, "event_types"?}) into
 * *out: an absolute http(s) URL without credentials or fragment; event
 * types "*" (the default: all) or dotted lower-case names. */
bz_status ing_crm_json_new_endpoint(const char *body, size_t len, ing_crm_new_endpoint *out,
                                    bz_error *err);
void ing_crm_new_endpoint_free(ing_crm_new_endpoint *e);

/* How long a rotated-out signing secret keeps signing when the rotation
 * does not say (a day: a receiver deployed daily picks up the new one),
 * and the longest a rotation may ask (a week). */
#define ING_CRM_SECRET_OVERLAP_DEFAULT_S 86400
#define ING_CRM_SECRET_OVERLAP_MAX_S 604800

/* Parse a secret rotation's body ({"overlap_s"?}, null as absent) into
 * *overlap_s. */
bz_status ing_crm_json_secret_rotation(const char *body, size_t len, int *overlap_s,
                                       bz_error *err);

/* Replace the string field *dst of a command built here (protobuf-c's
 * shared empty default, or a heap copy) with a heap copy of value. */
bz_status ing_crm_set_string(char **dst, const char *value, bz_error *err);

#endif
