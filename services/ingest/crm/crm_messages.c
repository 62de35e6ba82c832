/*
 * crm_messages.c - POST /v1/messages (an agent's message) and
 * POST /v1/chats/read (a conversation was read), on a worker (crm_messages.h).
 *
 * A send: body (crm_json.c) -> its message id, derived from the workspace
 * and the idempotency key, which is also the command's event id, so a
 * retried request repeats both -> what it names, looked up in the key's
 * workspace (contact or group, account, user, the message reacted to, the
 * template and its parameters), with Meta's limits and, for anything but a
 * template to a contact, Meta's 24-hour customer-service window when the
 * send's account is known to be Meta's (libs/wa/meta_limits.h,
 * service_window.h) -> one CrmCommand keyed
 * "<workspace_id>:<conversation>" like chat.sync, so a conversation's
 * sends, reads, messages and receipts reach chat-sync in the order they
 * were accepted. A read: the same for the conversation it marks, the
 * message that bounds it and the user.
 */
#include "crm/crm_messages.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sha256.h"
#include "core/uuid.h"
#include "crm/crm_json.h"
#include "crm/crm_request.h"
#include "pg/pg.h"
#include "wa/chat_lookup.h"
#include "wa/crm_command.h"
#include "wa/crm_template.h"
#include "wa/jid.h"
#include "wa/meta_limits.h"
#include "wa/service_window.h"

#define SQL_CONTACT_BY_ID                                                                        \
    "SELECT id, phone, coalesce(metadata->>'jid', '') FROM contacts WHERE workspace_id = $1 "    \
    "AND id = $2 AND deleted_at IS NULL"
/* By its phone column (E.164, or what a phone-less contact holds there)
 * or its LID, which a merged person's LID-only row gave the survivor
 * (decision 0010). */
#define SQL_CONTACT_BY_KEY                                                                       \
    "SELECT id, phone, coalesce(metadata->>'jid', '') FROM contacts WHERE workspace_id = $1 "    \
    "AND (phone = $2 OR lid = $2) AND deleted_at IS NULL ORDER BY phone = $2 DESC LIMIT 1"
#define SQL_GROUP_BY_ID                                                                          \
    "SELECT id, group_jid FROM whatsapp_groups WHERE workspace_id = $1 AND id = $2"
#define SQL_GROUP_BY_JID                                                                         \
    "SELECT id, group_jid FROM whatsapp_groups WHERE workspace_id = $1 AND group_jid = $2"
#define SQL_ACCOUNT                                                                              \
    "SELECT id FROM whatsapp_accounts WHERE workspace_id = $1 AND id = $2 AND deleted_at IS NULL"
#define SQL_USER                                                                                 \
    "SELECT u.id FROM users u JOIN workspace_users m ON m.user_id = u.id "                        \
    "WHERE u.id = $2 AND m.workspace_id = $1 AND u.deleted_at IS NULL"
/* The account a send names, else the one of the conversation's newest
 * message ($3 contact, $4 group), and its provider: the account known at
 * the API. */
#define SQL_KNOWN_ACCOUNT                                                                        \
    "SELECT id, provider_type FROM whatsapp_accounts WHERE workspace_id = $1 AND id = $2 "      \
    "UNION ALL (SELECT a.id, a.provider_type FROM chats c JOIN whatsapp_accounts a ON a.id = "  \
    "c.whatsapp_account_id WHERE $2::bigint = 0 AND c.workspace_id = $1 AND "                    \
    "((c.contact_id = $3 AND $3::bigint > 0) OR (c.group_id = $4 AND $4::bigint > 0)) "          \
    "ORDER BY c.created_at DESC LIMIT 1) LIMIT 1"

/* Stored media of the key's workspace ($1), by uuid ($2). */
#define SQL_STORED_MEDIA                                                                         \
    "SELECT type, kind, coalesce(name, '') FROM chat_media WHERE workspace_id = $1 AND "        \
    "uuid = $2::uuid"

/* The fingerprint of the request a stored message was sent with ($2 its
 * message id), "" for one stored without (before fingerprints, blazzctl). */
#define SQL_SENT_FINGERPRINT                                                                     \
    "SELECT coalesce(metadata->>'request_fingerprint', '') FROM chats WHERE workspace_id = $1 " \
    "AND uuid = $2::uuid"

/* The recipient fields of either command, pointed at. */
typedef struct party {
    int64_t *contact_id, *group_id;
    char **contact_phone, **contact_jid, **group_jid;
} party;

/* The request's field that named the contact: its id, its phone, or its
 * JID (a LID, or a user JID that gave the phone: crm_json.c keeps it). */
static const char *contact_field(const party *p)
{
    char phone[BZ_JID_SIZE];
    bz_error ignored;
    if (*p->contact_id)
        return "contact_id";
    if (**p->contact_phone &&
        (!**p->contact_jid ||
         bz_jid_to_phone(*p->contact_jid, phone, sizeof phone, &ignored) != BZ_OK))
        return "contact_phone";
    return "contact_jid";
}

static bz_status resolve_contact(ing_crm_request *rq, const party *p, bz_error *err)
{
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, *p->contact_id);
    const char *key = **p->contact_phone ? *p->contact_phone : *p->contact_jid;
    PGresult *res = NULL;
    bz_status st = ing_crm_lookup(rq, "look up the contact",
                                  *p->contact_id ? SQL_CONTACT_BY_ID : SQL_CONTACT_BY_KEY,
                                  *p->contact_id ? id : key, &res, err);
    if (st == BZ_OK && !res)
        return ing_crm_not_found(err, "unknown_contact", contact_field(p), rq->workspace_id);
    if (st == BZ_OK) {
        const char *phone = PQgetvalue(res, 0, 1), *jid = PQgetvalue(res, 0, 2);
        *p->contact_id = bz_pg_get_int64(res, 0, 0);
        int e164 = phone[0] == '+';
        st = ing_crm_set_string(p->contact_phone, e164 ? phone : "", err);
        if (st == BZ_OK)
            st = ing_crm_set_string(p->contact_jid, e164 ? jid : phone, err);
    }
    PQclear(res);
    return st;
}

static bz_status resolve_group(ing_crm_request *rq, const party *p, bz_error *err)
{
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, *p->group_id);
    PGresult *res = NULL;
    bz_status st =
        ing_crm_lookup(rq, "look up the group", *p->group_id ? SQL_GROUP_BY_ID : SQL_GROUP_BY_JID,
                       *p->group_id ? id : *p->group_jid, &res, err);
    if (st == BZ_OK && !res)
        return ing_crm_not_found(err, "unknown_group", *p->group_id ? "group_id" : "group_jid",
                                 rq->workspace_id);
    if (st == BZ_OK) {
        *p->group_id = bz_pg_get_int64(res, 0, 0);
        st = ing_crm_set_string(p->group_jid, PQgetvalue(res, 0, 1), err);
    }
    PQclear(res);
    return st;
}

static bz_status resolve_party(ing_crm_request *rq, const party *p, bz_error *err)
{
    if (*p->contact_id < 0 || *p->group_id < 0)
        return bz_reject(err, "invalid_field", "field contact_id: ids are positive");
    int group = *p->group_id || **p->group_jid;
    int contact = *p->contact_id || **p->contact_phone || **p->contact_jid;
    if (group == contact) /* none or both: the contract check names it */
        return BZ_OK;
    return group ? resolve_group(rq, p, err) : resolve_contact(rq, p, err);
}

/* An id the body names must exist (account in the workspace, live user). */
static bz_status check_exists(ing_crm_request *rq, const char *what, const char *sql, int64_t id,
                              const char *reason, const char *field, bz_error *err)
{
    if (id <= 0)
        return BZ_OK;
    char text[24];
    snprintf(text, sizeof text, "%" PRId64, id);
    PGresult *res = NULL;
    bz_status st = ing_crm_lookup(rq, what, sql, text, &res, err);
    PQclear(res);
    if (st == BZ_OK && !res)
        return ing_crm_not_found(err, reason, field, rq->workspace_id);
    return st;
}

/* A message the body names (wam_id) must be in the conversation. */
static bz_status check_message(ing_crm_request *rq, int64_t contact_id, int64_t group_id,
                               const char *wam_id, const char *field, bz_error *err)
{
    if (!*wam_id || (!contact_id && !group_id))
        return BZ_OK;
    int64_t ms;
    int found = 0;
    bz_status st = bz_chat_message_time(rq->pg, rq->workspace_id, contact_id, group_id, wam_id,
                                        &ms, &found, err);
    if (st == BZ_OK && !found)
        st = ing_crm_not_found(err, "unknown_message", field, rq->workspace_id);
    return st;
}

/* The account known at the API for send s (named, else the conversation's):
 * *account its id and *meta 1 when it is a Meta account; *account 0 when
 * none is known. */
static bz_status known_account(ing_crm_request *rq, const Blazz__V1__SendChatMessage *s,
                               int64_t *account, int *meta, bz_error *err)
{
    char ws[24], named[24], contact[24], group[24];
    snprintf(ws, sizeof ws, "%" PRId64, rq->workspace_id);
    snprintf(named, sizeof named, "%" PRId64, s->whatsapp_account_id);
    snprintf(contact, sizeof contact, "%" PRId64, s->contact_id);
    snprintf(group, sizeof group, "%" PRId64, s->group_id);
    const char *params[] = {ws, named, contact, group};
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(rq->pg, "look up the send's account", SQL_KNOWN_ACCOUNT, 4,
                                     params, &res, err);
    int found = st == BZ_OK && PQntuples(res) == 1;
    *account = found ? bz_pg_get_int64(res, 0, 0) : 0;
    *meta = found && strcmp(PQgetvalue(res, 0, 1), "meta") == 0;
    PQclear(res);
    return st;
}

/* A send its known account would take through Meta must keep to Meta's
 * limits, and one only Meta sends (an interactive message) must not name a
 * whatsapp-web.js account (wa/meta_limits.h; without a named account
 * chat-sync chooses a Meta one first): else 400 naming the field. The
 * message is checked whole first, so what is missing or misplaced is
 * named as such, and the rules before the account is looked up, so it is
 * looked up only for a send that breaks one. */
static bz_status check_meta_limits(ing_crm_request *rq, const Blazz__V1__SendChatMessage *s,
                                   bz_error *err)
{
    bz_status st = bz_crm_send_content_check(s, err);
    if (st != BZ_OK)
        return st;
    Blazz__V1__SendMessage m = BLAZZ__V1__SEND_MESSAGE__INIT;
    bz_crm_send_content(s, *s->body ? s->body : s->media ? s->media->caption : "", &m);
    bz_error over_meta, not_webjs;
    int meta_refuses = bz_wa_meta_check(&m, &over_meta) != BZ_OK;
    int webjs_refuses =
        s->whatsapp_account_id &&
        bz_wa_provider_check(BLAZZ__V1__PROVIDER__PROVIDER_WEBJS, &m, &not_webjs) != BZ_OK;
    if (!meta_refuses && !webjs_refuses)
        return BZ_OK;
    int64_t account;
    int meta;
    st = known_account(rq, s, &account, &meta, err);
    if (st != BZ_OK)
        return st;
    if (meta && meta_refuses)
        *err = over_meta;
    else if (account && !meta && webjs_refuses)
        *err = not_webjs;
    else
        return BZ_OK;
    return BZ_ERR_INVALID;
}

/* A message to a contact other than a template, whose known account is
 * Meta's, must be inside the contact's customer-service window with that
 * account (wa/service_window.h): else 422 outside_service_window. */
static bz_status check_service_window(ing_crm_request *rq, const Blazz__V1__SendChatMessage *s,
                                      bz_error *err)
{
    if (!s->contact_id ||
        !bz_wa_service_window_applies(BLAZZ__V1__PROVIDER__PROVIDER_META, s->message_type))
        return BZ_OK;
    int64_t account;
    int meta, open = 0;
    bz_status st = known_account(rq, s, &account, &meta, err);
    if (st != BZ_OK || !meta)
        return st;
    st = bz_wa_service_window_open(rq->pg, &account, &s->contact_id, 1, &open, err);
    return st == BZ_OK && !open ? bz_wa_service_window_refuse(err, account) : st;
}

/* The message type a stored object's kind sends as. */
static Blazz__V1__MessageType type_of_kind(const char *kind)
{
    if (strcmp(kind, "image") == 0)
        return BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_IMAGE;
    if (strcmp(kind, "video") == 0)
        return BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_VIDEO;
    if (strcmp(kind, "audio") == 0)
        return BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_AUDIO;
    if (strcmp(kind, "sticker") == 0)
        return BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_STICKER;
    return BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_DOCUMENT;
}

static int replace_string(char **field, const char *value)
{
    char *copy = strdup(value);
    if (!copy)
        return 0;
    free(*field == protobuf_c_empty_string ? NULL : *field);
    *field = copy;
    return 1;
}

/* media.media_id naming stored media (a uuid: Meta's ids are digits)
 * becomes stored_media_uuid, when it is a chat_media row of the key's
 * workspace: its type and kind are the row's, whatever the body declared
 * (the bytes were sniffed when stored), its name the filename unless one
 * is given. Another workspace's or an unknown uuid: 404 unknown_media. */
static bz_status resolve_stored_media(ing_crm_request *rq, Blazz__V1__SendChatMessage *s,
                                      bz_error *err)
{
    Blazz__V1__MediaInfo *m = s->media;
    if (!m || !m->media_id || !bz_uuid_is_valid(m->media_id))
        return BZ_OK;
    PGresult *res = NULL;
    bz_status st = ing_crm_lookup(rq, "look up stored media", SQL_STORED_MEDIA, m->media_id,
                                  &res, err);
    if (st == BZ_OK && !res)
        return ing_crm_not_found(err, "unknown_media", "media.media_id", rq->workspace_id);
    int ok = st == BZ_OK && replace_string(&m->stored_media_uuid, m->media_id) &&
             replace_string(&m->media_id, "") &&
             replace_string(&m->mime_type, PQgetvalue(res, 0, 0)) &&
             (*m->filename || !*PQgetvalue(res, 0, 2) ||
              replace_string(&m->filename, PQgetvalue(res, 0, 2)));
    if (ok)
        s->message_type = type_of_kind(PQgetvalue(res, 0, 1));
    PQclear(res);
    if (st == BZ_OK && !ok)
        st = bz_fail(err, BZ_ERR_NOMEM, "stored media: out of memory");
    return st;
}

/* ---- one key, one request ------------------------------------------------------------- */

/* s->request_fingerprint: the hex SHA-256 of s as parsed, before anything
 * is looked up (what a lookup adds depends on the database's state, not on
 * the request) and without its key and message id. Parsed, not the raw
 * body: members reordered or spaced are the same request. */
static bz_status fingerprint_request(Blazz__V1__SendChatMessage *s, bz_error *err)
{
    char *key = s->idempotency_key, *id = s->message_id;
    s->idempotency_key = s->message_id = (char *)protobuf_c_empty_string;
    size_t len = blazz__v1__send_chat_message__get_packed_size(s);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf)
        blazz__v1__send_chat_message__pack(s, buf);
    s->idempotency_key = key;
    s->message_id = id;
    char hex[BZ_SHA256_HEX_SIZE];
    bz_status st = buf ? bz_sha256_hex(buf, len, hex, err)
                       : bz_fail(err, BZ_ERR_NOMEM, "fingerprint: out of memory");
    free(buf);
    return st == BZ_OK ? ing_crm_set_string(&s->request_fingerprint, hex, err) : st;
}

/* A key whose message is stored must come with the request it was first
 * sent with (as Stripe's keys): else 409 idempotency_key_reused. A message
 * stored without a fingerprint is taken as the same request. A key reused
 * before chat-sync stored its first message is not seen here
 * (services/ingest/README.md, "One key, one request"). */
static bz_status check_key_reuse(ing_crm_request *rq, const Blazz__V1__SendChatMessage *s,
                                 bz_error *err)
{
    PGresult *res = NULL;
    bz_status st = ing_crm_lookup(rq, "look up the key's message", SQL_SENT_FINGERPRINT,
                                  s->message_id, &res, err);
    int other = st == BZ_OK && res && *PQgetvalue(res, 0, 0) &&
                strcmp(PQgetvalue(res, 0, 0), s->request_fingerprint) != 0;
    PQclear(res);
    if (!other)
        return st;
    return bz_fail_because(err, BZ_ERR_CONFLICT, "idempotency_key_reused",
                           "field idempotency_key: already used for a different message; send "
                           "this one with a new key");
}

/* ---- the commands ----------------------------------------------------------------------- */

static bz_status resolve_send(ing_crm_request *rq, Blazz__V1__SendChatMessage *s, bz_error *err)
{
    party p = {&s->contact_id, &s->group_id, &s->contact_phone, &s->contact_jid, &s->group_jid};
    bz_status st = resolve_party(rq, &p, err);
    if (st == BZ_OK)
        st = check_exists(rq, "look up the account", SQL_ACCOUNT, s->whatsapp_account_id,
                          "unknown_account", "whatsapp_account_id", err);
    if (st == BZ_OK)
        st = check_exists(rq, "look up the user", SQL_USER, s->user_id, "unknown_user",
                          "user_id", err);
    if (st == BZ_OK)
        st = check_message(rq, s->contact_id, s->group_id, s->target_wam_id, "target_wam_id",
                           err);
    if (st == BZ_OK)
        st = resolve_stored_media(rq, s, err);
    if (st == BZ_OK)
        st = check_meta_limits(rq, s, err);
    if (st == BZ_OK)
        st = check_service_window(rq, s, err);
    if (st == BZ_OK && s->template_ && *s->template_->name) {
        bz_crm_template_fill fill;
        st = bz_crm_template_render(rq->pg, rq->workspace_id, s->template_, &fill, err);
        if (st == BZ_ERR_NOT_FOUND)
            st = bz_reclass(err, BZ_ERR_NOT_FOUND, "unknown_template");
        free(fill.rendered);
    }
    return st;
}

static bz_status resolve_read(ing_crm_request *rq, Blazz__V1__MarkChatRead *r, bz_error *err)
{
    party p = {&r->contact_id, &r->group_id, &r->contact_phone, &r->contact_jid, &r->group_jid};
    bz_status st = resolve_party(rq, &p, err);
    if (st == BZ_OK)
        st = check_exists(rq, "look up the user", SQL_USER, r->user_id, "unknown_user",
                          "user_id", err);
    if (st == BZ_OK)
        st = check_message(rq, r->contact_id, r->group_id, r->up_to_wam_id, "up_to_wam_id", err);
    return st;
}

void ing_crm_accept_send(ing_crm_request *rq, const char *body, size_t len)
{
    Blazz__V1__SendChatMessage *s = NULL;
    bz_error err;
    bz_status st = ing_crm_json_send(body, len, ing_crm_request_idempotency_key(rq),
                                     ing_crm_request_config(rq)->default_cc, &s, &err);
    if (st != BZ_OK) {
        ing_crm_refuse(rq, &err);
        return;
    }
    /* the message id is also the command's event id: a retried request
     * repeats both */
    char message_id[BZ_UUID_STR_SIZE];
    bz_crm_message_id(rq->workspace_id, s->idempotency_key, message_id);
    st = fingerprint_request(s, &err);
    if (st == BZ_OK)
        st = ing_crm_set_string(&s->message_id, message_id, &err);
    if (st == BZ_OK && *s->idempotency_key)
        st = check_key_reuse(rq, s, &err);
    if (st == BZ_OK)
        st = resolve_send(rq, s, &err);
    Blazz__V1__CrmCommand cmd = BLAZZ__V1__CRM_COMMAND__INIT;
    cmd.command_case = BLAZZ__V1__CRM_COMMAND__COMMAND_SEND;
    cmd.send = s;
    Blazz__V1__Envelope env;
    if (st == BZ_OK)
        ing_crm_address(rq, &cmd, &env, message_id,
                        bz_crm_conversation(s->contact_phone, s->contact_jid, s->group_jid));
    if (st != BZ_OK)
        ing_crm_refuse(rq, &err);
    else
        ing_crm_publish(rq, &cmd, "message_id", NULL);
    blazz__v1__send_chat_message__free_unpacked(s, NULL);
}

void ing_crm_accept_read(ing_crm_request *rq, const char *body, size_t len)
{
    Blazz__V1__MarkChatRead *mr = NULL;
    bz_error err;
    bz_status st = ing_crm_json_read(body, len, ing_crm_request_config(rq)->default_cc, &mr, &err);
    if (st != BZ_OK) {
        ing_crm_refuse(rq, &err);
        return;
    }
    char event_id[BZ_UUID_STR_SIZE];
    st = resolve_read(rq, mr, &err);
    if (st == BZ_OK)
        st = bz_uuid_v4(event_id, &err);
    Blazz__V1__CrmCommand cmd = BLAZZ__V1__CRM_COMMAND__INIT;
    cmd.command_case = BLAZZ__V1__CRM_COMMAND__COMMAND_MARK_READ;
    cmd.mark_read = mr;
    Blazz__V1__Envelope env;
    if (st == BZ_OK)
        ing_crm_address(rq, &cmd, &env, event_id,
                        bz_crm_conversation(mr->contact_phone, mr->contact_jid, mr->group_jid));
    if (st != BZ_OK)
        ing_crm_refuse(rq, &err);
    else
        ing_crm_publish(rq, &cmd, "event_id", NULL);
    blazz__v1__mark_chat_read__free_unpacked(mr, NULL);
}
