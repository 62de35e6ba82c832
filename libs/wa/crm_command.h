/*
 * crm_command.h - the rules of a CrmCommand (proto/blazz/v1/crm.proto) that
 * need no database, shared by everything that writes or reads crm.commands:
 * ingest's HTTP API (crm_api.c), blazzctl send|read and chat-sync.
 *
 *  - bz_crm_command_check: the contract's field rules (a session
 *    request's session id: bz_session_id_valid). A rejection is
 *    BZ_ERR_INVALID with a stable reason and a message "field <name>: ..."
 *    whose <name> is the field as the HTTP API spells it (the proto field
 *    names: "body", "media.url", "template.body_params"), so ingest can put
 *    it in its 400 answer and chat-sync in a dead letter.
 *  - bz_crm_message_id: the message id of a send, derived from the workspace
 *    and the client's idempotency key (a UUID of version-8 layout over
 *    SHA-256), so a retried request names the same message, and the
 *    UNIQUE chats.uuid makes a second row (and a second send) impossible.
 *  - bz_crm_conversation: the conversation part of the record key, as on
 *    chat.sync (phone, else contact JID, else group JID); a session command's
 *    is BZ_CRM_SESSION_CONVERSATION, so a workspace's session commands keep
 *    their order.
 */
#ifndef BZ_WA_CRM_COMMAND_H
#define BZ_WA_CRM_COMMAND_H

#include "blazz/v1/crm.pb-c.h"
#include "core/status.h"
#include "core/uuid.h"

#define BZ_CRM_IDEMPOTENCY_KEY_MAX 128
#define BZ_CRM_TEXT_MAX_CHARS 4096     /* WhatsApp's limit for a text message */
#define BZ_CRM_CAPTION_MAX_CHARS 1024  /* WhatsApp's limit for a media caption */
#define BZ_CRM_URL_MAX 2048
#define BZ_CRM_TEMPLATE_PARAMS_MAX 32
#define BZ_CRM_PARAM_MAX_CHARS 1024
/* Any text of an interactive message but its body (Meta's own limits are
 * smaller: wa/meta_limits.h) */
#define BZ_CRM_INTERACTIVE_TEXT_MAX_CHARS 1024
#define BZ_CRM_FLOW_DATA_MAX 16384 /* a flow's first-screen data, as JSON text */
/* A reaction's emoji: one emoji, which can be a sequence of several code
 * points (skin tone, ZWJ families, flags, keycaps). */
#define BZ_CRM_EMOJI_MAX_CHARS 16
#define BZ_CRM_CONTACT_NAME_MAX_CHARS 256 /* a contact's name (first_name) */

/* A session id (whatsapp_accounts.session_id as gateways spell it): 1 to
 * BZ_SESSION_ID_MAX letters, digits, '.', '_' or '-', not starting with
 * '.' and without "..". Gateways name a session's files after it (its
 * credentials in <storage>/<session id>), so it must be a plain file name:
 * no separator, never "." or "..", not hidden. Meta's phone number ids
 * (digits) are ones. bz_session_id_check refuses anything else as
 * invalid_field naming field, in the one wording every entry uses. */
#define BZ_SESSION_ID_MAX 128
#define BZ_CRM_SESSION_CONVERSATION "session"
int bz_session_id_valid(const char *s);
bz_status bz_session_id_check(const char *field, const char *s, bz_error *err);

/* Check cmd against the contract. BZ_OK or BZ_ERR_INVALID (bz_reject). */
bz_status bz_crm_command_check(const Blazz__V1__CrmCommand *cmd, bz_error *err);

/* The content rules of a send alone (bz_crm_command_check runs them too):
 * its message type's parts and only those, so that a check of what a
 * provider takes can run on a message known to be whole. BZ_OK or
 * BZ_ERR_INVALID (bz_reject). */
bz_status bz_crm_send_content_check(const Blazz__V1__SendChatMessage *s, bz_error *err);

/* An idempotency key as the CRM API takes it (a send's, a new session's
 * Idempotency-Key): 1 to BZ_CRM_IDEMPOTENCY_KEY_MAX printable ASCII
 * characters; BZ_ERR_INVALID (missing_field, invalid_field) else. */
bz_status bz_crm_idempotency_key_check(const char *key, bz_error *err);

/* What s asks a provider to send, as a SendMessage carries it: its type,
 * body (body_text: the text, a template's rendered text or the caption),
 * media, template, interactive message and quoted message (for a reaction: its target; the
 * emoji is then the body). Only content fields of *m are set; they point
 * into s and body_text. */
void bz_crm_send_content(const Blazz__V1__SendChatMessage *s, const char *body_text,
                         Blazz__V1__SendMessage *m);

/* The message id of (workspace_id, idempotency_key) into out. */
void bz_crm_message_id(int64_t workspace_id, const char *idempotency_key,
                       char out[BZ_UUID_STR_SIZE]);

/* Address cmd (its command already set): env becomes its envelope (event
 * and trace id event_id, now, source, workspace) and conversation its
 * conversation. env and the strings must outlive cmd's use. */
void bz_crm_command_address(Blazz__V1__CrmCommand *cmd, Blazz__V1__Envelope *env,
                            char *event_id, int64_t workspace_id, const char *source,
                            const char *conversation);

/* The conversation of a recipient: phone if set, else contact_jid, else
 * group_jid ("" when all are empty). Returns one of its arguments. */
const char *bz_crm_conversation(const char *phone, const char *contact_jid,
                                const char *group_jid);

#endif
