/*
 * fuzz_webhook_payload.c - webhook bodies (payload.c): a consumed
 * chat.events / session.events / campaign.events record rendered into the
 * body every attempt sends, and a replayed webhook.dlq body read back.
 *
 * The first byte picks the path (0-2: a record of that source, 3: a
 * replayed body), the rest is the record value. An accepted record must give
 * a body that PostgreSQL will store and a receiver can parse: valid UTF-8
 * without NUL, a JSON object whose id, type and workspace_id are the event's
 * (which also go to PostgreSQL as text), a timestamp in ISO 8601 or null,
 * and every key of the webhook contract present in data (message events,
 * reactions, edits and deletes with their action, group and contact changes, reads, sync progress,
 * calls, sessions, campaigns; a value that could
 * not be rendered must fail the event, never drop its key). The body must
 * also survive the replay path unchanged, as it does when an operator
 * replays webhook.dlq. A replayed body is kept byte-exact. A rejection has a
 * documented reason, and unknown_kind only for a kind this build does not
 * render.
 */
#include <string.h>

#include <jansson.h>

#include "blazz/v1/campaign.pb-c.h"
#include "blazz/v1/chat_event.pb-c.h"
#include "blazz/v1/session.pb-c.h"
#include "core/utf8.h"
#include "fuzz_target.h"
#include "payload.h"

/* The keys of each object of the webhook contract (payload.h). */
static const char *const envelope_keys[] = {"id", "type", "timestamp", "workspace_id", "data",
                                            NULL};
static const char *const chat_keys[] = {
    "id", "uuid", "wam_id", "whatsapp_account_id", "contact_id", "group_id", "type", "chat_type",
    "provider_type", "message", "message_type", "message_status", "is_read", "created_at",
    "sent_at", "delivered_at", "read_at", "sender_phone", "sender_name", "has_media", "media",
    "quoted_wam_id", "campaign_id", "user_id", NULL};
static const char *const media_keys[] = {"mime_type", "url", "sha256", "caption", "filename",
                                         "size_bytes", "media_id", "duration_seconds",
                                         "stored_media_uuid", NULL};
static const char *const contact_keys[] = {"id", "uuid", "name", "phone", "full_name",
                                           "unread_messages", "latest_chat_created_at",
                                           "profile_picture", "jid", NULL};
static const char *const group_keys[] = {"id", "uuid", "name", "group_jid", "participants_count",
                                         NULL};
static const char *const status_keys[] = {"previous_status", "status", "error_code",
                                          "error_message", "changed_at", NULL};
static const char *const sync_keys[] = {"whatsapp_account_id", "session_id", "sync_status",
                                        "synced_count", "total_count", "batch_index",
                                        "batch_total", "last_sync_at", "sync_id", NULL};
static const char *const action_keys[] = {"wam_id",         "actor_phone",   "actor_jid",
                                          "actor_bsuid",    "from_me",       "emoji",
                                          "previous_emoji", "previous_body", "acted_at",
                                          NULL};
static const char *const group_change_keys[] = {"action", "changed", "participants",
                                                "actor_phone", "changed_at", "description",
                                                "invite_code", "picture_url", "settings",
                                                "join_request_id", NULL};
static const char *const group_settings_keys[] = {"announce", "restrict", NULL};
static const char *const contact_change_keys[] = {"changed", "changed_at", "business_profile",
                                                  "previous_phone", "previous_bsuid", "bsuid",
                                                  "saved_name", NULL};
static const char *const opt_out_keys[] = {"source", "keyword", "changed_at", "wam_id",
                                           "chat_id", NULL};
static const char *const business_keys[] = {"description", "category", "email", "website",
                                            "address", NULL};
static const char *const template_keys[] = {"id", "name", "language", "status", "category",
                                            "quality_score", "rejection_reason",
                                            "meta_template_id", "waba_id", "event",
                                            "reported_at", NULL};
static const char *const participant_keys[] = {"phone", "jid", "bsuid", "name", "is_admin", NULL};
static const char *const read_keys[] = {"messages_read", "read_at", "up_to", "up_to_wam_id",
                                        "user_id", "chat_ids", NULL};
static const char *const session_keys[] = {
    "kind", "whatsapp_account_id", "account_uuid", "session_id", "status", "previous_status",
    "disconnect_reason", "details", "phone_number", "changed_at", "instance",
    "previous_instance", "removal", "health_score", "is_primary", NULL};
static const char *const session_qr_keys[] = {"whatsapp_account_id", "account_uuid", "session_id",
                                              "qr_code", "expires_at", "instance", NULL};
static const char *const instance_keys[] = {"index", "url", NULL};
static const char *const removal_keys[] = {"reason", "cleanup_type", "executed_by",
                                           "cleanup_log_id", "requested_by", NULL};
static const char *const campaign_keys[] = {"campaign_id", "campaign_uuid", "kind", "status",
                                            "counters", "reason", "actor",
                                            "whatsapp_account_id", "failure_rate", NULL};
static const char *const standing_keys[] = {
    "id",           "phone_number_id", "phone_number",  "waba_id",        "business_id",
    "flagged",      "quality_event",   "messaging_limit", "business_limit", "account_event",
    "restriction",  "restricted_until", "violation",    "ban_state",      "detail",
    NULL};
static const char *const counters_keys[] = {"contacts_count", "pending", "queued",
                                            "messages_sent", "messages_delivered",
                                            "messages_read", "messages_failed",
                                            "messages_skipped", NULL};

static const char *const reasons[] = {"decode_error", "bad_event_id", "missing_event_id",
                                      "missing_workspace", "unknown_kind", "render_error", NULL};

static int listed(const char *const *list, const char *s)
{
    for (; *list; list++)
        if (strcmp(*list, s) == 0)
            return 1;
    return 0;
}

/* obj has exactly the keys of list; optional objects may also be null. */
static void check_keys(const json_t *obj, const char *const *list, int nullable)
{
    if (nullable && json_is_null(obj))
        return;
    BZ_FUZZ_CHECK(json_is_object(obj));
    size_t n = 0;
    for (const char *const *k = list; *k; k++, n++)
        BZ_FUZZ_CHECK(json_object_get(obj, *k) != NULL);
    BZ_FUZZ_CHECK(json_object_size(obj) == n);
}

/* null, or YYYY-MM-DDTHH:MM:SS.mmmZ */
static void check_time(const json_t *t)
{
    if (json_is_null(t))
        return;
    BZ_FUZZ_CHECK(json_is_string(t));
    const char *s = json_string_value(t);
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    BZ_FUZZ_CHECK(strlen(s) == sizeof shape - 1);
    for (size_t i = 0; shape[i]; i++)
        BZ_FUZZ_CHECK(shape[i] == 'd' ? s[i] >= '0' && s[i] <= '9' : s[i] == shape[i]);
}

/* with: the key beside chat, contact and group ("status", "action") or NULL. */
static void check_message_data(const json_t *data, const char *with)
{
    static const char *const keys[] = {"chat", "contact", "group", NULL};
    static const char *const keys_with_status[] = {"chat", "contact", "group", "status", NULL};
    static const char *const keys_with_action[] = {"chat", "contact", "group", "action", NULL};
    check_keys(data, !with ? keys : strcmp(with, "status") == 0 ? keys_with_status
                                                                : keys_with_action, 0);
    const json_t *chat = json_object_get(data, "chat");
    check_keys(chat, chat_keys, 1);
    if (json_is_object(chat)) {
        check_keys(json_object_get(chat, "media"), media_keys, 1);
        check_time(json_object_get(chat, "created_at"));
        check_time(json_object_get(chat, "sent_at"));
        check_time(json_object_get(chat, "delivered_at"));
        check_time(json_object_get(chat, "read_at"));
    }
    const json_t *contact = json_object_get(data, "contact");
    check_keys(contact, contact_keys, 1);
    if (json_is_object(contact))
        check_time(json_object_get(contact, "latest_chat_created_at"));
    check_keys(json_object_get(data, "group"), group_keys, 1);
    if (with && strcmp(with, "status") == 0) {
        const json_t *status = json_object_get(data, "status");
        check_keys(status, status_keys, 1);
        if (json_is_object(status))
            check_time(json_object_get(status, "changed_at"));
    } else if (with) {
        const json_t *action = json_object_get(data, "action");
        check_keys(action, action_keys, 1);
        if (json_is_object(action))
            check_time(json_object_get(action, "acted_at"));
    }
}

static void check_data(const char *type, const json_t *data)
{
    if (strcmp(type, "message.created") == 0) {
        check_message_data(data, NULL);
    } else if (strcmp(type, "message.status") == 0) {
        check_message_data(data, "status");
    } else if (strcmp(type, "message.reaction") == 0 || strcmp(type, "message.edited") == 0 ||
               strcmp(type, "message.deleted") == 0) {
        check_message_data(data, "action");
    } else if (strcmp(type, "group.updated") == 0) {
        static const char *const keys[] = {"group", "change", NULL};
        check_keys(data, keys, 0);
        check_keys(json_object_get(data, "group"), group_keys, 1);
        const json_t *change = json_object_get(data, "change");
        check_keys(change, group_change_keys, 1);
        if (json_is_object(change)) {
            check_time(json_object_get(change, "changed_at"));
            check_keys(json_object_get(change, "settings"), group_settings_keys, 1);
            BZ_FUZZ_CHECK(json_is_array(json_object_get(change, "changed")));
            size_t i;
            json_t *p;
            json_array_foreach(json_object_get(change, "participants"), i, p)
            check_keys(p, participant_keys, 0);
            BZ_FUZZ_CHECK(json_is_array(json_object_get(change, "participants")));
        }
    } else if (strcmp(type, "contact.updated") == 0) {
        static const char *const keys[] = {"contact", "change", NULL};
        check_keys(data, keys, 0);
        check_keys(json_object_get(data, "contact"), contact_keys, 1);
        const json_t *change = json_object_get(data, "change");
        check_keys(change, contact_change_keys, 1);
        if (json_is_object(change)) {
            check_time(json_object_get(change, "changed_at"));
            BZ_FUZZ_CHECK(json_is_array(json_object_get(change, "changed")));
            check_keys(json_object_get(change, "business_profile"), business_keys, 1);
        }
    } else if (strcmp(type, "contact.opted_out") == 0 || strcmp(type, "contact.opted_in") == 0) {
        static const char *const keys[] = {"contact", "opt_out", NULL};
        check_keys(data, keys, 0);
        check_keys(json_object_get(data, "contact"), contact_keys, 1);
        const json_t *change = json_object_get(data, "opt_out");
        check_keys(change, opt_out_keys, 1);
        if (json_is_object(change))
            check_time(json_object_get(change, "changed_at"));
    } else if (strcmp(type, "contact.merged") == 0) {
        static const char *const keys[] = {"contact", "merge", NULL};
        static const char *const merge_keys[] = {"merged_contact_id", "merged_contact_uuid", "lid",
                                                 "phone", "bsuid", "merged_by", "merged_at",
                                                 "chats_moved", NULL};
        check_keys(data, keys, 0);
        check_keys(json_object_get(data, "contact"), contact_keys, 1);
        const json_t *merge = json_object_get(data, "merge");
        check_keys(merge, merge_keys, 1);
        if (json_is_object(merge))
            check_time(json_object_get(merge, "merged_at"));
    } else if (strcmp(type, "template.updated") == 0) {
        static const char *const keys[] = {"template", NULL};
        check_keys(data, keys, 0);
        const json_t *template = json_object_get(data, "template");
        check_keys(template, template_keys, 1);
        if (json_is_object(template))
            check_time(json_object_get(template, "reported_at"));
    } else if (strcmp(type, "account.updated") == 0) {
        static const char *const keys[] = {"account", "field", "event", "reported_at", NULL};
        check_keys(data, keys, 0);
        check_keys(json_object_get(data, "account"), standing_keys, 1);
        check_time(json_object_get(data, "reported_at"));
        const json_t *account = json_object_get(data, "account");
        if (json_is_object(account)) {
            BZ_FUZZ_CHECK(json_is_boolean(json_object_get(account, "flagged")));
            check_time(json_object_get(account, "restricted_until"));
        }
    } else if (strcmp(type, "sync.progress") == 0) {
        check_keys(data, sync_keys, 1);
        if (json_is_object(data))
            check_time(json_object_get(data, "last_sync_at"));
    } else if (strcmp(type, "chat.read") == 0) {
        static const char *const keys[] = {"read", "contact", "group", NULL};
        check_keys(data, keys, 0);
        const json_t *read = json_object_get(data, "read");
        check_keys(read, read_keys, 1);
        if (json_is_object(read)) {
            check_time(json_object_get(read, "read_at"));
            check_time(json_object_get(read, "up_to"));
            BZ_FUZZ_CHECK(json_is_array(json_object_get(read, "chat_ids")));
        }
        check_keys(json_object_get(data, "contact"), contact_keys, 1);
        check_keys(json_object_get(data, "group"), group_keys, 1);
    } else if (strcmp(type, "message.media_ready") == 0) {
        static const char *const keys[] = {"message", "media", NULL};
        static const char *const message_keys[] = {"id", "uuid", "wam_id", NULL};
        static const char *const media_keys[] = {"uuid", "kind", "mime_type", "size", "sha256",
                                                 "filename", NULL};
        check_keys(data, keys, 0);
        check_keys(json_object_get(data, "message"), message_keys, 1);
        check_keys(json_object_get(data, "media"), media_keys, 1);
    } else if (strcmp(type, "call.updated") == 0) {
        static const char *const keys[] = {"call", "event", "contact", NULL};
        static const char *const call_keys[] = {
            "id", "uuid", "call_id", "whatsapp_account_id", "contact_id", "direction", "status",
            "connected_at", "started_at", "ended_at", "terminated_at", "duration_s", "error_code",
            "error_message", NULL};
        check_keys(data, keys, 0);
        check_keys(json_object_get(data, "contact"), contact_keys, 1);
        const json_t *call = json_object_get(data, "call");
        check_keys(call, call_keys, 1);
        if (json_is_object(call))
            check_time(json_object_get(call, "ended_at"));
    } else if (strcmp(type, "session.status") == 0) {
        check_keys(data, session_keys, 0);
        check_time(json_object_get(data, "changed_at"));
        check_keys(json_object_get(data, "instance"), instance_keys, 1);
        check_keys(json_object_get(data, "previous_instance"), instance_keys, 1);
        check_keys(json_object_get(data, "removal"), removal_keys, 1);
    } else if (strcmp(type, "session.qr") == 0) {
        check_keys(data, session_qr_keys, 0);
        check_time(json_object_get(data, "expires_at"));
        check_keys(json_object_get(data, "instance"), instance_keys, 1);
    } else {
        BZ_FUZZ_CHECK(strcmp(type, "campaign.progress") == 0 ||
                      strcmp(type, "campaign.completed") == 0);
        check_keys(data, campaign_keys, 0);
        check_keys(json_object_get(data, "counters"), counters_keys, 1);
    }
}

/* What goes to PostgreSQL as text and to the receiver as the body. */
static void check_stored_text(const wh_event *ev)
{
    BZ_FUZZ_CHECK(ev->body != NULL && strlen(ev->body) == ev->body_len);
    BZ_FUZZ_CHECK(bz_utf8_valid(ev->body, ev->body_len));
    BZ_FUZZ_CHECK(ev->event_id[0] != '\0' && bz_utf8_valid(ev->event_id, strlen(ev->event_id)));
    BZ_FUZZ_CHECK(ev->type[0] != '\0' && bz_utf8_valid(ev->type, strlen(ev->type)));
    BZ_FUZZ_CHECK(ev->workspace_id > 0);
}

static void check_rendered(const wh_event *ev)
{
    check_stored_text(ev);
    json_t *doc = json_loadb(ev->body, ev->body_len, 0, NULL);
    BZ_FUZZ_CHECK(doc != NULL);
    check_keys(doc, envelope_keys, 0);
    BZ_FUZZ_CHECK(strcmp(json_string_value(json_object_get(doc, "id")), ev->event_id) == 0);
    BZ_FUZZ_CHECK(strcmp(json_string_value(json_object_get(doc, "type")), ev->type) == 0);
    BZ_FUZZ_CHECK(json_integer_value(json_object_get(doc, "workspace_id")) == ev->workspace_id);
    check_time(json_object_get(doc, "timestamp"));
    check_data(ev->type, json_object_get(doc, "data"));
    json_decref(doc);

    wh_event again;
    BZ_FUZZ_CHECK(wh_event_from_replay(7, ev->body, ev->body_len, &again, NULL) == BZ_OK);
    BZ_FUZZ_CHECK(strcmp(again.event_id, ev->event_id) == 0 && strcmp(again.type, ev->type) == 0);
    BZ_FUZZ_CHECK(again.workspace_id == ev->workspace_id && again.replay_endpoint_id == 7);
    BZ_FUZZ_CHECK(again.body_len == ev->body_len && memcmp(again.body, ev->body, ev->body_len) == 0);
    wh_event_clear(&again);
}

/* 1 when the record decodes as its source's message with a kind this
 * build renders, so that refusing it as unknown_kind would be a lie. */
static int kind_is_known(int mode, const uint8_t *value, size_t len)
{
    int known = 0;
    if (mode == WH_SOURCE_CHAT) {
        Blazz__V1__ChatEvent *e = blazz__v1__chat_event__unpack(NULL, len, value);
        known = e && e->kind >= 1 && e->kind <= 9;
        blazz__v1__chat_event__free_unpacked(e, NULL);
    } else if (mode == WH_SOURCE_SESSION) {
        Blazz__V1__SessionEvent *e = blazz__v1__session_event__unpack(NULL, len, value);
        known = e && e->kind != 0;
        blazz__v1__session_event__free_unpacked(e, NULL);
    } else if (mode == WH_SOURCE_CAMPAIGN) {
        Blazz__V1__CampaignEvent *e = blazz__v1__campaign_event__unpack(NULL, len, value);
        known = e && e->kind != 0;
        blazz__v1__campaign_event__free_unpacked(e, NULL);
    }
    return known;
}

static int fuzz_webhook_payload(const uint8_t *data, size_t size)
{
    if (size == 0)
        return BZ_FUZZ_REJECTED;
    int mode = data[0] % 4;
    wh_event ev;
    bz_error err;
    bz_status st = mode == 3 ? wh_event_from_replay(9, data + 1, size - 1, &ev, &err)
                             : wh_event_from_record((wh_source)mode, data + 1, size - 1, &ev,
                                                       &err);
    if (st != BZ_OK) {
        BZ_FUZZ_CHECK(st == BZ_ERR_INVALID && err.reason && listed(reasons, err.reason));
        BZ_FUZZ_CHECK(strcmp(err.reason, "unknown_kind") != 0 ||
                      !kind_is_known(mode, data + 1, size - 1));
        BZ_FUZZ_CHECK(ev.body == NULL);
        return BZ_FUZZ_REJECTED;
    }
    if (mode == 3) {
        check_stored_text(&ev);
        BZ_FUZZ_CHECK(ev.replay_endpoint_id == 9);
        BZ_FUZZ_CHECK(ev.body_len == size - 1 && memcmp(ev.body, data + 1, size - 1) == 0);
    } else {
        check_rendered(&ev);
    }
    wh_event_clear(&ev);
    return BZ_FUZZ_ACCEPTED;
}

static const bz_fuzz_expect expect[] = {
    {"chat_message_created.bin", BZ_FUZZ_ACCEPTED},
    {"session_disconnected.bin", BZ_FUZZ_ACCEPTED},
    {"campaign_completed.bin", BZ_FUZZ_ACCEPTED},
    {"chat_message_reaction.bin", BZ_FUZZ_ACCEPTED},
    {"chat_group_updated.bin", BZ_FUZZ_ACCEPTED},
    {"chat_contact_updated.bin", BZ_FUZZ_ACCEPTED},
    {"replay_body.bin", BZ_FUZZ_ACCEPTED},
    {"replay_empty_id.bin", BZ_FUZZ_REJECTED},
    {"replay_nul_byte.bin", BZ_FUZZ_REJECTED},
    {"chat_no_workspace.bin", BZ_FUZZ_REJECTED},
    {"contact_name_not_utf8.bin", BZ_FUZZ_REJECTED},
    {"created_at_past_9999.bin", BZ_FUZZ_REJECTED},
    {NULL, 0},
};

BZ_FUZZ_TARGET_EXPECTING(fuzz_webhook_payload, expect)
