/*
 * crm_send.c - an agent's message becomes its chats row and its queued send,
 * in one transaction (ARCHITECTURE.md §11).
 *
 * For a SendChatMessage, in the consumer's transaction:
 *  1. lock the recipient (contact or group of the command's workspace;
 *     unknown -> dead letter unknown_contact / unknown_group);
 *  2. a template is checked against the workspace's templates and rendered
 *     (libs/pg/crm_template.h; unknown -> unknown_template, wrong parameter
 *     count -> missing_field / invalid_field);
 *  3. choose the sending account like the seeds' ProviderSelector
 *     (libs/pg/account_select.h): the one the command names if connected,
 *     else the one the contact or group last talked to, else the primary,
 *     else the best health_score;
 *  4. insert the row: type outbound, message_status pending, uuid = the
 *     command's message_id, user_id, the content in metadata
 *     (client_reference = message_id, idempotency_key), created_at = when
 *     ingest accepted it; ON CONFLICT (uuid) DO NOTHING, so a repeated
 *     idempotency key (a retried request, a replay) stores nothing and
 *     queues nothing: one row, one send, whatever was repeated;
 *  5. move the contact's latest_chat_created_at and last_message_at (seed
 *     000 Chat::created: any new chat moves both);
 *  6. queue the SendMessage in outbound_queue (campaign-sender releases it
 *     under the account's send budget and reports a failure back on
 *     chat.sync);
 *  7. emit MESSAGE_CREATED for the pending row.
 * With no connected account at all the row is stored failed
 * (no_connected_account) and a STATUS_CHANGED follows the MESSAGE_CREATED;
 * nothing is queued.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_sync.h"
#include "core/clock.h"
#include "pg/account_select.h"
#include "pg/crm_template.h"

#define SQL_INSERT_SEND                                                                           \
    "INSERT INTO chats (uuid, workspace_id, whatsapp_account_id, contact_id, group_id, type, "    \
    "provider_type, chat_type, message_status, metadata, is_read, user_id, created_at) "         \
    "SELECT $1::uuid, $2::bigint, nullif($3::bigint, 0), nullif($4::bigint, 0), "               \
    "nullif($5::bigint, 0), 'outbound', $6, $7, $8, $9::jsonb, true, "                           \
    "(SELECT id FROM users WHERE id = nullif($10::bigint, 0)), to_timestamp($11::bigint / 1000.0) " \
    "ON CONFLICT (uuid) DO NOTHING RETURNING id"

#define SQL_QUEUE_SEND                                                                            \
    "INSERT INTO outbound_queue (workspace_id, chat_id, message_id, whatsapp_account_id, "        \
    "msg_key, payload) VALUES ($1, $2, $3::uuid, $4, $5, decode($6, 'hex'))"

#define NO_ACCOUNT "no_connected_account"

/* What the send is, worked out before anything is written. */
typedef struct send_plan {
    const Blazz__V1__CrmCommand *cmd;
    const Blazz__V1__SendChatMessage *s;
    const char *key;
    cs_contact *contact;
    cs_group *group;
    bz_account account;
    int has_account;
    char *rendered; /* heap: the template's text, or NULL */
    int64_t created_ms;
} send_plan;

static const char *text_of(const send_plan *p)
{
    const Blazz__V1__SendChatMessage *s = p->s;
    if (p->rendered)
        return p->rendered;
    if (*s->body)
        return s->body;
    return s->media && s->media->caption ? s->media->caption : "";
}

static void set_text(json_t *o, const char *name, const char *v)
{
    if (v && *v)
        json_object_set_new(o, name, json_string(v));
}

static json_t *params_json(char *const *params, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(params[i]));
    return a;
}

/* chats.metadata of the row; heap text, NULL when out of memory. */
static char *row_metadata(const send_plan *p)
{
    const Blazz__V1__SendChatMessage *s = p->s;
    json_t *m = json_object();
    json_object_set_new(m, "body", json_string(text_of(p)));
    json_object_set_new(m, "message_type", json_string(cs_message_type_text(s->message_type)));
    json_object_set_new(m, "source", json_string("crm"));
    set_text(m, "client_reference", s->message_id);
    set_text(m, "idempotency_key", s->idempotency_key);
    set_text(m, "quoted_wam_id", s->reply_to_wam_id);
    if (s->media) {
        json_object_set_new(m, "has_media", json_true());
        json_object_set_new(m, "media", cs_media_json(s->media));
    }
    if (s->template_)
        json_object_set_new(m, "template",
                            json_pack("{s:s,s:s,s:o,s:o}", "name", s->template_->name, "language",
                                      s->template_->language ? s->template_->language : "",
                                      "body_params",
                                      params_json(s->template_->body_params,
                                                  s->template_->n_body_params),
                                      "header_params",
                                      params_json(s->template_->header_params,
                                                  s->template_->n_header_params)));
    if (!p->has_account) {
        json_object_set_new(m, "error_code", json_string(NO_ACCOUNT));
        json_object_set_new(m, "error_message",
                            json_string("no connected WhatsApp account in the workspace"));
    }
    char *text = json_dumps(m, JSON_COMPACT);
    json_decref(m);
    return text;
}

/* ---- 1-3: recipient, content, account --------------------------------------------- */

static bz_status plan_send(cs_batch *b, PGconn *conn, send_plan *p, bz_error *err)
{
    const Blazz__V1__SendChatMessage *s = p->s;
    int64_t ws = p->cmd->envelope->workspace_id;
    const char *contact_key = *s->contact_phone ? s->contact_phone : s->contact_jid;
    bz_status st = cs_lock_party(b, conn, ws, s->contact_id, contact_key, s->group_id,
                                 s->group_jid, &p->contact, &p->group, err);
    if (st == BZ_OK && s->message_type == BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEMPLATE) {
        st = bz_crm_template_render(conn, ws, s->template_, &p->rendered, err);
        if (st == BZ_ERR_NOT_FOUND)
            st = bz_reject(err, "unknown_template", "%s", err->msg);
    }
    bz_account_query q = {.workspace_id = ws, .preferred_id = s->whatsapp_account_id,
                          .contact_id = p->contact ? p->contact->id : 0,
                          .group_id = p->group ? p->group->id : 0};
    if (st == BZ_OK)
        st = bz_account_select(conn, &q, &p->account, &p->has_account, err);
    int64_t occurred = p->cmd->envelope->occurred_at_ms;
    p->created_ms = occurred > 0 ? occurred : bz_wall_ms();
    return st;
}

/* ---- 4: the row --------------------------------------------------------------------- */

static bz_status insert_row(PGconn *conn, const send_plan *p, int64_t *chat_id, bz_error *err)
{
    const Blazz__V1__SendChatMessage *s = p->s;
    char *meta = row_metadata(p);
    if (!meta)
        return bz_fail(err, BZ_ERR_TRANSIENT, "store send %s: out of memory", s->message_id);
    char ws[24], acct[24], contact[24], group[24], user[24], created[24];
    snprintf(ws, sizeof ws, "%" PRId64, p->cmd->envelope->workspace_id);
    snprintf(acct, sizeof acct, "%" PRId64, p->has_account ? p->account.id : 0);
    snprintf(contact, sizeof contact, "%" PRId64, p->contact ? p->contact->id : 0);
    snprintf(group, sizeof group, "%" PRId64, p->group ? p->group->id : 0);
    snprintf(user, sizeof user, "%" PRId64, s->user_id);
    snprintf(created, sizeof created, "%" PRId64, p->created_ms);
    const char *params[] = {s->message_id, ws, acct, contact, group,
                            cs_provider_text(p->has_account ? p->account.provider : 0),
                            p->group ? "group" : "private",
                            p->has_account ? "pending" : "failed", meta, user, created};
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(conn, "store the CRM send", SQL_INSERT_SEND, 11, params, &res,
                                     err);
    *chat_id = st == BZ_OK && PQntuples(res) == 1 ? bz_pg_get_int64(res, 0, 0) : 0;
    PQclear(res);
    free(meta);
    return st;
}

/* ---- 6: the queued SendMessage --------------------------------------------------------- */

static void recipient(const send_plan *p, const char **phone, const char **jid)
{
    *phone = *jid = "";
    if (p->group) {
        *jid = p->group->jid;
    } else if (p->contact->phone[0] == '+') {
        *phone = p->contact->phone;
        *jid = p->contact->jid ? p->contact->jid : "";
    } else {
        *jid = p->contact->phone; /* a phone-less contact: its key is its JID */
    }
}

/* The packed SendMessage as hex text for decode(..., 'hex'); heap. */
static char *packed_send_hex(const send_plan *p, int64_t chat_id)
{
    const Blazz__V1__CrmCommand *cmd = p->cmd;
    const Blazz__V1__SendChatMessage *s = p->s;
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    env.event_id = s->message_id;
    env.occurred_at_ms = p->created_ms;
    env.source = "chat-sync";
    env.workspace_id = cmd->envelope->workspace_id;
    env.trace_id = cmd->envelope->trace_id;
    Blazz__V1__SendMessage m = BLAZZ__V1__SEND_MESSAGE__INIT;
    m.envelope = &env;
    m.kind = BLAZZ__V1__SEND_KIND__SEND_KIND_MESSAGE;
    m.idempotency_key = s->message_id;
    m.client_reference = s->message_id;
    recipient(p, (const char **)&m.to_phone, (const char **)&m.to_jid);
    m.message_type = s->message_type;
    m.body = (char *)text_of(p);
    m.template_ = s->template_;
    m.media = s->media;
    m.quoted_wam_id = s->reply_to_wam_id;
    m.contact_id = p->contact ? p->contact->id : 0;
    m.chat_id = chat_id;
    m.user_id = s->user_id;
    size_t len = blazz__v1__send_message__get_packed_size(&m);
    uint8_t *buf = malloc(len ? len : 1);
    char *hex = malloc(len * 2 + 1);
    if (buf && hex) {
        blazz__v1__send_message__pack(&m, buf);
        static const char digits[] = "0123456789abcdef";
        for (size_t i = 0; i < len; i++) {
            hex[2 * i] = digits[buf[i] >> 4];
            hex[2 * i + 1] = digits[buf[i] & 15];
        }
        hex[2 * len] = '\0';
    } else {
        free(hex);
        hex = NULL;
    }
    free(buf);
    return hex;
}

static bz_status queue_send(PGconn *conn, const send_plan *p, int64_t chat_id, bz_error *err)
{
    char *hex = packed_send_hex(p, chat_id);
    if (!hex)
        return bz_fail(err, BZ_ERR_TRANSIENT, "queue send %s: out of memory", p->s->message_id);
    char ws[24], chat[24], acct[24];
    snprintf(ws, sizeof ws, "%" PRId64, p->cmd->envelope->workspace_id);
    snprintf(chat, sizeof chat, "%" PRId64, chat_id);
    snprintf(acct, sizeof acct, "%" PRId64, p->account.id);
    const char *params[] = {ws, chat, p->s->message_id, acct, p->key, hex};
    bz_status st = bz_pg_exec_params(conn, "queue the CRM send", SQL_QUEUE_SEND, 6, params, NULL,
                                     err);
    free(hex);
    return st;
}

/* ---- 5, 7: counters and events ---------------------------------------------------------- */

static void move_counters(cs_contact *c, int64_t created_ms)
{
    if (created_ms > c->latest_chat_ms) {
        c->latest_chat_ms = created_ms;
        c->dirty = 1;
    }
    if (created_ms > c->last_message_ms) {
        c->last_message_ms = created_ms;
        c->dirty = 1;
    }
}

static bz_status emit_events(cs_batch *b, const send_plan *p, int64_t chat_id, bz_error *err)
{
    const Blazz__V1__SendChatMessage *s = p->s;
    cs_chat c = {.id = chat_id,
                 .workspace_id = p->cmd->envelope->workspace_id,
                 .account_id = p->has_account ? p->account.id : 0,
                 .contact_id = p->contact ? p->contact->id : 0,
                 .group_id = p->group ? p->group->id : 0,
                 .wam_id = "",
                 .outbound = 1,
                 .group = p->group != NULL,
                 .provider = p->has_account ? p->account.provider : 0,
                 .status = BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_PENDING,
                 .is_read = 1,
                 .created_ms = p->created_ms,
                 .body = (char *)text_of(p),
                 .client_reference = s->message_id,
                 .quoted_wam_id = s->reply_to_wam_id,
                 .message_type = s->message_type,
                 .has_media = s->media != NULL,
                 .user_id = s->user_id};
    snprintf(c.uuid, sizeof c.uuid, "%s", s->message_id);
    const Blazz__V1__Envelope *env = p->cmd->envelope;
    bz_status st = cs_emit_chat_event(b, env, "message_created", 0,
                                      BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_MESSAGE_CREATED,
                                      &c, NULL, p->key, err);
    if (st != BZ_OK || p->has_account)
        return st;
    Blazz__V1__StatusChange change = BLAZZ__V1__STATUS_CHANGE__INIT;
    change.previous_status = c.status;
    change.status = c.status = BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_FAILED;
    change.error_code = NO_ACCOUNT;
    change.error_message = "no connected WhatsApp account in the workspace";
    change.changed_at_ms = p->created_ms;
    return cs_emit_chat_event(b, env, "status_changed", 0,
                              BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_STATUS_CHANGED, &c,
                              &change, p->key, err);
}

bz_status cs_crm_send(cs_batch *b, PGconn *conn, const Blazz__V1__CrmCommand *cmd,
                      const char *key, bz_error *err)
{
    send_plan p = {.cmd = cmd, .s = cmd->send, .key = key};
    int64_t chat_id = 0;
    bz_status st = plan_send(b, conn, &p, err);
    if (st == BZ_OK)
        st = insert_row(conn, &p, &chat_id, err);
    if (st == BZ_OK && chat_id > 0) {
        if (p.contact)
            move_counters(p.contact, p.created_ms);
        if (p.has_account)
            st = queue_send(conn, &p, chat_id, err);
        if (st == BZ_OK)
            st = emit_events(b, &p, chat_id, err);
    }
    bz_account_clear(&p.account);
    free(p.rendered);
    return st;
}
