/*
 * command.c - decoding chat.sync records and the enum <-> text vocabulary.
 *
 * Ingest already validated and normalized what it forwards (sync.proto), so
 * the checks here are the ones chat-sync's rules depend on: an envelope with
 * an event id, a resolved workspace and account, and for each command kind
 * the keys it is applied by. Anything else is rejected with a stable reason
 * and goes to chat.sync.dlq.
 *
 * Text values follow proto/README.md: the enum name after its prefix,
 * lower-cased (DELIVERY_STATUS_READ <-> "read").
 */
#include <string.h>

#include "chat_sync.h"
#include "core/uuid.h"
#include "wa/meta_group.h"

#define MAX_HISTORY_CHATS 1000

const char *cs_person_key(const char *phone, const char *bsuid, const char *jid)
{
    if (phone && *phone)
        return phone;
    if (bsuid && *bsuid)
        return bsuid;
    return jid ? jid : "";
}

const char *cs_lid_of(const char *jid)
{
    size_t n = jid ? strlen(jid) : 0;
    return n > 4 && strcmp(jid + n - 4, "@lid") == 0 ? jid : "";
}

static bz_status check_message(const Blazz__V1__InboundMessage *m, const char *fallback_phone,
                               const char *fallback_bsuid, const char *fallback_jid,
                               const char *fallback_group, int chat_type, bz_error *err)
{
    if (!m->wam_id || !*m->wam_id)
        return bz_reject(err, "missing_wam_id", "message without wam_id");
    if (chat_type == BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_GROUP) {
        const char *jid = *m->group_jid ? m->group_jid : fallback_group;
        if (!bz_group_key_valid(jid))
            return bz_reject(err, "invalid_group_jid",
                             "group message %s: group_jid '%s' is not a group JID or Meta group id",
                             m->wam_id, jid);
    } else if (chat_type == BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_PRIVATE) {
        const char *key = cs_person_key(*m->contact_phone ? m->contact_phone : fallback_phone,
                                        *m->contact_bsuid ? m->contact_bsuid : fallback_bsuid,
                                        *m->contact_jid ? m->contact_jid : fallback_jid);
        if (!*key)
            return bz_reject(err, "missing_contact",
                             "private message %s without contact phone, BSUID or JID",
                             m->wam_id);
    } else {
        return bz_reject(err, "missing_chat_type", "message %s without chat_type", m->wam_id);
    }
    return BZ_OK;
}

static bz_status check_history(const Blazz__V1__HistorySyncBatch *h, bz_error *err)
{
    if (!h->sync_id || !*h->sync_id)
        return bz_reject(err, "invalid_history_sync", "history sync batch without sync_id");
    /* batch_total 0: a run of unknown size, ended by its last batch (Meta) */
    if (h->batch_total < 0 || h->batch_index < 0 ||
        (h->batch_total > 0 && h->batch_index >= h->batch_total))
        return bz_reject(err, "invalid_history_sync", "history sync %s: batch %d of %d", h->sync_id,
                         h->batch_index, h->batch_total);
    if (h->n_chats > MAX_HISTORY_CHATS)
        return bz_reject(err, "invalid_history_sync", "history sync %s: %zu chats in one batch",
                         h->sync_id, h->n_chats);
    for (size_t i = 0; i < h->n_chats; i++) {
        const Blazz__V1__SyncedChat *c = h->chats[i];
        if (c->chat_type == BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_GROUP) {
            if (!bz_group_key_valid(c->group_jid))
                return bz_reject(err, "invalid_group_jid", "history sync %s chat %zu: bad group JID",
                                 h->sync_id, i);
        } else if (c->chat_type == BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_PRIVATE) {
            if (!*cs_person_key(c->contact_phone, c->contact_bsuid, c->contact_jid))
                return bz_reject(err, "missing_contact", "history sync %s chat %zu: no contact",
                                 h->sync_id, i);
        } else {
            return bz_reject(err, "missing_chat_type", "history sync %s chat %zu: no chat_type",
                             h->sync_id, i);
        }
        for (size_t j = 0; j < c->n_messages; j++) {
            bz_status st = check_message(c->messages[j], c->contact_phone, c->contact_bsuid,
                                         c->contact_jid, c->group_jid, c->chat_type, err);
            if (st != BZ_OK)
                return bz_wrap(err, "history sync %s chat %zu", h->sync_id, i);
        }
    }
    return BZ_OK;
}

/* A heartbeat names its gateway (ingest sets it) and instance, and no
 * account: it is the instance's, not a session's. */
static bz_status check_heartbeat(const Blazz__V1__Envelope *env,
                                 const Blazz__V1__InstanceHeartbeat *h, bz_error *err)
{
    if (!h->instance || h->instance->index < 0 || h->instance->index > INT16_MAX)
        return bz_reject(err, "missing_instance", "event %s: heartbeat without an instance index",
                         env->event_id);
    if (!bz_gateway_id_valid(h->gateway_id))
        return bz_reject(err, "missing_gateway", "event %s: heartbeat without a valid gateway",
                         env->event_id);
    if (!*h->boot_id || h->capacity < 0)
        return bz_reject(err, "invalid_heartbeat",
                         "event %s: heartbeat without boot_id or with capacity %d", env->event_id,
                         h->capacity);
    return BZ_OK;
}

static int is_year_month(const char *s)
{
    for (int i = 0; i < 7; i++)
        if (i == 4 ? s[i] != '-' : (s[i] < '0' || s[i] > '9'))
            return 0;
    return s[7] == '\0';
}

/* A volume tier names its month, category, market and band (0073). */
static bz_status check_volume_tier(const Blazz__V1__Envelope *env, const char *waba_id,
                                   const Blazz__V1__VolumeTier *t, bz_error *err)
{
    if (!is_year_month(t->effective_month) || !*t->pricing_category || !*t->region || !*t->tier)
        return bz_reject(err, "invalid_notice",
                         "event %s: volume tier update of WABA %s without a month (YYYY-MM), a "
                         "category, a region and a tier: '%s', '%s', '%s', '%s'",
                         env->event_id, waba_id, t->effective_month, t->pricing_category,
                         t->region, t->tier);
    return BZ_OK;
}

/* A business notice is its WABA's and workspace's (ingest resolved it from
 * the WABA), not one account's. */
static bz_status check_business_notice(const Blazz__V1__Envelope *env,
                                       const Blazz__V1__BusinessNotice *n, bz_error *err)
{
    if (env->workspace_id <= 0 || !*n->waba_id)
        return bz_reject(err, "unresolved_account",
                         "event %s: business notice of WABA '%s' without its workspace",
                         env->event_id, n->waba_id);
    if (n->notice_case == BLAZZ__V1__BUSINESS_NOTICE__NOTICE_TEMPLATE) {
        if (!*n->template_->name || !*n->template_->language)
            return bz_reject(err, "invalid_notice",
                             "event %s: template notice of WABA %s without a name and language",
                             env->event_id, n->waba_id);
        return BZ_OK;
    }
    if (n->notice_case == BLAZZ__V1__BUSINESS_NOTICE__NOTICE_ACCOUNT) {
        const Blazz__V1__AccountNotice *a = n->account;
        if (a->volume_tier)
            return check_volume_tier(env, n->waba_id, a->volume_tier, err);
        if (!*n->field || (!*a->event && !*a->messaging_limit && !*a->business_limit))
            return bz_reject(err, "invalid_notice",
                             "event %s: account notice of WABA %s without a field, an event or "
                             "a limit", env->event_id, n->waba_id);
        return BZ_OK;
    }
    return bz_reject(err, "invalid_notice", "event %s: business notice of WABA %s names nothing",
                     env->event_id, n->waba_id);
}

static bz_status check_command(const Blazz__V1__SyncCommand *cmd, bz_error *err)
{
    const Blazz__V1__Envelope *env = cmd->envelope;
    if (!env || !env->event_id || !*env->event_id)
        return bz_reject(err, "missing_event_id", "sync command without envelope.event_id");
    if (cmd->command_case == BLAZZ__V1__SYNC_COMMAND__COMMAND_INSTANCE_HEARTBEAT)
        return check_heartbeat(env, cmd->instance_heartbeat, err);
    if (cmd->command_case == BLAZZ__V1__SYNC_COMMAND__COMMAND_BUSINESS_NOTICE)
        return check_business_notice(env, cmd->business_notice, err);
    if (env->workspace_id <= 0 || env->whatsapp_account_id <= 0)
        return bz_reject(err, "unresolved_account",
                         "event %s: workspace_id %lld / whatsapp_account_id %lld not resolved",
                         env->event_id, (long long)env->workspace_id,
                         (long long)env->whatsapp_account_id);
    switch (cmd->command_case) {
    case BLAZZ__V1__SYNC_COMMAND__COMMAND_MESSAGE:
        return check_message(cmd->message, "", "", "", "", cmd->message->chat_type, err);
    case BLAZZ__V1__SYNC_COMMAND__COMMAND_RECEIPT:
        /* a send that never reached WhatsApp has no message id, only ours */
        if (!*cmd->receipt->wam_id && !bz_uuid_is_valid(cmd->receipt->client_reference))
            return bz_reject(err, "missing_wam_id",
                             "event %s: receipt without wam_id or client_reference",
                             env->event_id);
        if (cmd->receipt->status == BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_UNSPECIFIED)
            return bz_reject(err, "missing_status", "event %s: receipt without status", env->event_id);
        return BZ_OK;
    case BLAZZ__V1__SYNC_COMMAND__COMMAND_SESSION_STATUS:
        if (!cs_session_text(cmd->session_status->status))
            return bz_reject(err, "missing_status", "event %s: session status unspecified",
                             env->event_id);
        /* the backbone's own state, never a gateway's report */
        if (cmd->session_status->status ==
            BLAZZ__V1__SESSION_STATE__SESSION_STATE_PENDING_ASSIGNMENT)
            return bz_reject(err, "invalid_status",
                             "event %s: pending_assignment is not a gateway's to report",
                             env->event_id);
        return BZ_OK;
    case BLAZZ__V1__SYNC_COMMAND__COMMAND_HISTORY_SYNC:
        return check_history(cmd->history_sync, err);
    case BLAZZ__V1__SYNC_COMMAND__COMMAND_GROUP_UPDATE:
        if (!bz_group_key_valid(cmd->group_update->group_jid))
            return bz_reject(err, "invalid_group_jid", "event %s: group update for '%s'",
                             env->event_id, cmd->group_update->group_jid);
        return BZ_OK;
    case BLAZZ__V1__SYNC_COMMAND__COMMAND_CONTACT_UPDATE:
        if (!*cs_person_key(cmd->contact_update->contact_phone, cmd->contact_update->contact_bsuid,
                            cmd->contact_update->contact_jid))
            return bz_reject(err, "missing_contact", "event %s: contact update names no contact",
                             env->event_id);
        return BZ_OK;
    case BLAZZ__V1__SYNC_COMMAND__COMMAND_CALL:
        if (!*cmd->call->call_id || !*cs_person_key(cmd->call->contact_phone,
                                                    cmd->call->contact_bsuid, ""))
            return bz_reject(err, "missing_contact",
                             "event %s: call '%s' names no call id or no customer", env->event_id,
                             cmd->call->call_id);
        return BZ_OK;
    default:
        return bz_reject(err, "unknown_command", "event %s: no command set (newer producer?)",
                         env->event_id);
    }
}

bz_status cs_command_decode(const void *data, size_t len, Blazz__V1__SyncCommand **out,
                            bz_error *err)
{
    Blazz__V1__SyncCommand *cmd = blazz__v1__sync_command__unpack(NULL, len, data);
    if (!cmd)
        return bz_reject(err, "decode_error", "not a blazz.v1.SyncCommand (%zu bytes)", len);
    bz_status st = check_command(cmd, err);
    if (st != BZ_OK) {
        blazz__v1__sync_command__free_unpacked(cmd, NULL);
        return st;
    }
    *out = cmd;
    return BZ_OK;
}

void cs_command_free(Blazz__V1__SyncCommand *cmd)
{
    if (cmd)
        blazz__v1__sync_command__free_unpacked(cmd, NULL);
}

/* ---- vocabulary ---------------------------------------------------------------- */

static const char *const delivery_names[] = {NULL, "pending", "sent", "delivered",
                                             "read", "played", "failed"};
static const char *const session_names[] = {NULL,           "qr_scanning",  "authenticated",
                                            "connected",    "disconnected", "failed",
                                            "pending_assignment"};
static const char *const disconnect_names[] = {"unknown",    "user_initiated", "instance_restart",
                                               "timeout",    "error",          "qr_expired",
                                               "unknown",    "credentials_missing"};
static const char *const message_type_names[] = {
    "unknown", "text", "image", "video", "audio", "voice", "document", "sticker", "location",
    "contacts", "interactive", "button", "reaction", "template", "revoked", "system", "unknown",
    "edit"};

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

static int lookup(const char *const *names, int n, const char *text, int start)
{
    if (!text)
        return 0;
    for (int i = start; i < n; i++)
        if (names[i] && strcmp(names[i], text) == 0)
            return i;
    return 0;
}

const char *cs_provider_text(int provider)
{
    return provider == BLAZZ__V1__PROVIDER__PROVIDER_META ? "meta" : "webjs";
}

int cs_provider_from_text(const char *text)
{
    return text && strcmp(text, "meta") == 0 ? BLAZZ__V1__PROVIDER__PROVIDER_META
                                             : BLAZZ__V1__PROVIDER__PROVIDER_WEBJS;
}

const char *cs_delivery_text(int status)
{
    return status > 0 && status < COUNT(delivery_names) ? delivery_names[status] : NULL;
}

int cs_delivery_from_text(const char *text)
{
    /* campaign-sender's "queued" has no receipt counterpart: not yet sent */
    if (text && strcmp(text, "queued") == 0)
        return BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_PENDING;
    return lookup(delivery_names, COUNT(delivery_names), text, 1);
}

const char *cs_session_text(int state)
{
    return state > 0 && state < COUNT(session_names) ? session_names[state] : NULL;
}

int cs_session_from_text(const char *text)
{
    return lookup(session_names, COUNT(session_names), text, 1);
}

const char *cs_disconnect_text(int reason)
{
    return reason >= 0 && reason < COUNT(disconnect_names) ? disconnect_names[reason] : "unknown";
}

int cs_disconnect_from_text(const char *text)
{
    return lookup(disconnect_names, COUNT(disconnect_names), text, 1);
}

const char *cs_message_type_text(int type)
{
    return type >= 0 && type < COUNT(message_type_names) ? message_type_names[type] : "unknown";
}

int cs_message_type_from_text(const char *text)
{
    int t = lookup(message_type_names, COUNT(message_type_names), text, 1);
    return t ? t : BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_UNKNOWN;
}
