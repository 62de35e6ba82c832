/*
 * payload.c - decoding consumed events and rendering webhook bodies (see
 * payload.h) with jansson. Zero values of the protobuf contracts mean "not
 * set" (proto/README.md), so they render as JSON null rather than 0 or "".
 *
 * A value that cannot be rendered (text that is not UTF-8, a time past year
 * 9999) makes its builder return NULL, and every builder passes a NULL on
 * (json_pack fails on it, put() remembers it), so the event is refused with
 * render_error instead of going out without that key.
 */
#include "payload.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "blazz/v1/campaign.pb-c.h"
#include "blazz/v1/chat_event.pb-c.h"
#include "blazz/v1/session.pb-c.h"
#include "core/timespec.h"
#include "core/utf8.h"

static json_t *text_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

static json_t *id_or_null(int64_t id)
{
    return id ? json_integer(id) : json_null();
}

/* The last instant RFC 3339 can write: 9999-12-31T23:59:59.999Z. */
#define TIME_MAX_MS 253402300799999LL

/* ISO 8601 UTC with milliseconds, null for 0, NULL past TIME_MAX_MS. */
static json_t *time_or_null(int64_t ms)
{
    if (ms <= 0)
        return json_null();
    if (ms > TIME_MAX_MS)
        return NULL;
    char buf[32];
    bz_time_format(ms, buf, sizeof buf);
    return json_string(buf);
}

/* The PostgreSQL text of a protobuf enum value: the value's name after the
 * enum's prefix, lower-cased (proto/README.md); null for 0, "unknown" for a
 * value this build does not know. */
static json_t *enum_text(const ProtobufCEnumDescriptor *desc, int value, const char *prefix)
{
    if (value == 0)
        return json_null();
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(desc, value);
    if (!v)
        return json_string("unknown");
    const char *name = v->name;
    size_t plen = strlen(prefix);
    if (strncmp(name, prefix, plen) == 0)
        name += plen;
    char buf[64];
    size_t i = 0;
    for (; name[i] && i + 1 < sizeof buf; i++)
        buf[i] = (char)tolower((unsigned char)name[i]);
    buf[i] = '\0';
    return json_string(buf);
}

/* json_object_set_new that remembers a value it could not make in *ok. */
static void put(json_t *o, const char *key, json_t *value, int *ok)
{
    if (!value || json_object_set_new(o, key, value) != 0)
        *ok = 0;
}

/* o when every put() into it worked, else NULL (o released). */
static json_t *complete(json_t *o, int ok)
{
    if (ok && o)
        return o;
    json_decref(o);
    return NULL;
}

static json_t *media_json(const Blazz__V1__MediaInfo *m)
{
    if (!m)
        return json_null();
    /* stored_media_uuid: the chat_media row chats.media_id links, for
     * GET /v1/media/{uuid} (ARCHITECTURE.md §16.4) */
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:I, s:o, s:i, s:o}", "mime_type",
                     text_or_null(m->mime_type), "url", text_or_null(m->url), "sha256",
                     text_or_null(m->sha256), "caption", text_or_null(m->caption), "filename",
                     text_or_null(m->filename), "size_bytes", (json_int_t)m->size_bytes,
                     "media_id", text_or_null(m->media_id), "duration_seconds",
                     m->duration_seconds, "stored_media_uuid",
                     text_or_null(m->stored_media_uuid));
}

/* o[name] = text parsed, when text is a JSON object; nothing else. */
static void put_object_text(json_t *o, const char *name, const char *text, int *ok)
{
    json_t *doc = text && *text ? json_loads(text, 0, NULL) : NULL;
    if (json_is_object(doc))
        put(o, name, doc, ok);
    else
        json_decref(doc);
}

static json_t *chat_json(const Blazz__V1__ChatSnapshot *c)
{
    if (!c)
        return json_null();
    json_t *o = json_object();
    int ok = o != NULL;
    put(o, "id", id_or_null(c->id), &ok);
    put(o, "uuid", text_or_null(c->uuid), &ok);
    put(o, "wam_id", text_or_null(c->wam_id), &ok);
    put(o, "whatsapp_account_id", id_or_null(c->whatsapp_account_id), &ok);
    put(o, "contact_id", id_or_null(c->contact_id), &ok);
    put(o, "group_id", id_or_null(c->group_id), &ok);
    put(o, "type", enum_text(&blazz__v1__direction__descriptor, c->type, "DIRECTION_"), &ok);
    put(o, "chat_type",
        enum_text(&blazz__v1__chat_type__descriptor, c->chat_type, "CHAT_TYPE_"), &ok);
    put(o, "provider_type",
        enum_text(&blazz__v1__provider__descriptor, c->provider_type, "PROVIDER_"), &ok);
    put(o, "message", json_string(c->message ? c->message : ""), &ok);
    put(o, "message_type",
        enum_text(&blazz__v1__message_type__descriptor, c->message_type, "MESSAGE_TYPE_"), &ok);
    put(o, "message_status",
        enum_text(&blazz__v1__delivery_status__descriptor, c->message_status,
                  "DELIVERY_STATUS_"),
        &ok);
    put(o, "is_read", json_boolean(c->is_read), &ok);
    put(o, "created_at", time_or_null(c->created_at_ms), &ok);
    put(o, "sent_at", time_or_null(c->sent_at_ms), &ok);
    put(o, "delivered_at", time_or_null(c->delivered_at_ms), &ok);
    put(o, "read_at", time_or_null(c->read_at_ms), &ok);
    put(o, "sender_phone", text_or_null(c->sender_phone), &ok);
    put(o, "sender_name", text_or_null(c->sender_name), &ok);
    put(o, "has_media", json_boolean(c->has_media), &ok);
    put(o, "media", media_json(c->media), &ok);
    put(o, "quoted_wam_id", text_or_null(c->quoted_wam_id), &ok);
    put(o, "campaign_id", id_or_null(c->campaign_id), &ok);
    put(o, "user_id", id_or_null(c->user_id), &ok);
    /* only a message that has them: every other chat keeps its shape */
    put_object_text(o, "referral", c->referral_json, &ok);
    put_object_text(o, "interactive_reply", c->interactive_reply_json, &ok);
    return complete(o, ok);
}

static json_t *contact_json(const Blazz__V1__ContactSnapshot *c)
{
    if (!c)
        return json_null();
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:i, s:o, s:o, s:o}", "id", id_or_null(c->id),
                     "uuid", text_or_null(c->uuid), "name", text_or_null(c->name), "phone",
                     text_or_null(c->phone), "full_name", text_or_null(c->full_name),
                     "unread_messages", c->unread_messages, "latest_chat_created_at",
                     time_or_null(c->latest_chat_created_at_ms), "profile_picture",
                     text_or_null(c->profile_picture), "jid", text_or_null(c->jid));
}

static json_t *group_json(const Blazz__V1__GroupSnapshot *g)
{
    if (!g)
        return json_null();
    return json_pack("{s:o, s:o, s:o, s:o, s:i}", "id", id_or_null(g->id), "uuid",
                     text_or_null(g->uuid), "name", text_or_null(g->name), "group_jid",
                     text_or_null(g->group_jid), "participants_count", g->participants_count);
}

static json_t *status_change_json(const Blazz__V1__StatusChange *s)
{
    if (!s)
        return json_null();
    return json_pack("{s:o, s:o, s:o, s:o, s:o}", "previous_status",
                     enum_text(&blazz__v1__delivery_status__descriptor, s->previous_status,
                               "DELIVERY_STATUS_"),
                     "status",
                     enum_text(&blazz__v1__delivery_status__descriptor, s->status,
                               "DELIVERY_STATUS_"),
                     "error_code", text_or_null(s->error_code), "error_message",
                     text_or_null(s->error_message), "changed_at", time_or_null(s->changed_at_ms));
}

static json_t *sync_json(const Blazz__V1__Envelope *env, const Blazz__V1__SyncProgress *p)
{
    if (!p)
        return json_null();
    return json_pack("{s:o, s:o, s:o, s:i, s:i, s:i, s:i, s:o, s:o}", "whatsapp_account_id",
                     id_or_null(env->whatsapp_account_id), "session_id",
                     text_or_null(env->session_id), "sync_status",
                     enum_text(&blazz__v1__sync_status__descriptor, p->sync_status,
                               "SYNC_STATUS_"),
                     "synced_count", p->synced_count, "total_count", p->total_count,
                     "batch_index", p->batch_index, "batch_total", p->batch_total,
                     "last_sync_at", time_or_null(p->last_sync_at_ms), "sync_id",
                     text_or_null(p->sync_id));
}

static json_t *chat_read_json(const Blazz__V1__ChatRead *r)
{
    if (!r)
        return json_null();
    json_t *ids = json_array();
    for (size_t i = 0; i < r->n_chat_ids; i++)
        json_array_append_new(ids, json_integer((json_int_t)r->chat_ids[i]));
    return json_pack("{s:i, s:o, s:o, s:o, s:o, s:o}", "messages_read", r->messages_read,
                     "read_at", time_or_null(r->read_at_ms), "up_to", time_or_null(r->up_to_ms),
                     "up_to_wam_id", text_or_null(r->up_to_wam_id), "user_id",
                     id_or_null(r->user_id), "chat_ids", ids);
}

static json_t *action_json(const Blazz__V1__MessageAction *a)
{
    if (!a)
        return json_null();
    return json_pack("{s:o, s:o, s:o, s:o, s:b, s:o, s:o, s:o, s:o}", "wam_id",
                     text_or_null(a->wam_id), "actor_phone", text_or_null(a->actor_phone),
                     "actor_jid", text_or_null(a->actor_jid), "actor_bsuid",
                     text_or_null(a->actor_bsuid), "from_me", a->from_me, "emoji",
                     text_or_null(a->emoji), "previous_emoji", text_or_null(a->previous_emoji),
                     "previous_body", text_or_null(a->previous_body), "acted_at",
                     time_or_null(a->acted_at_ms));
}

/* A reaction, an edit or a delete: the target as it stands after it, and
 * what was done. */
static json_t *message_action_data(const Blazz__V1__ChatEvent *e)
{
    return json_pack("{s:o, s:o, s:o, s:o}", "chat", chat_json(e->chat), "contact",
                     contact_json(e->contact), "group", group_json(e->group), "action",
                     action_json(e->action));
}

static json_t *participants_json(Blazz__V1__GroupParticipant *const *ps, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        json_t *p = json_pack("{s:o, s:o, s:o, s:o, s:b}", "phone", text_or_null(ps[i]->phone),
                              "jid", text_or_null(ps[i]->jid), "bsuid", text_or_null(ps[i]->bsuid),
                              "name", text_or_null(ps[i]->name), "is_admin",
                              ps[i]->is_admin || ps[i]->is_super_admin);
        if (!p || json_array_append_new(arr, p) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

static json_t *texts_json(char *const *texts, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        json_t *t = json_string(texts[i]);
        if (!t || json_array_append_new(arr, t) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

static json_t *group_settings_json(const Blazz__V1__GroupSettings *s)
{
    if (!s)
        return json_null();
    return json_pack("{s:b, s:b}", "announce", s->announce, "restrict", s->restrict_info);
}

static json_t *group_change_json(const Blazz__V1__GroupChange *c)
{
    if (!c)
        return json_null();
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "action",
                     enum_text(&blazz__v1__group_action__descriptor, c->action, "GROUP_ACTION_"),
                     "changed", texts_json(c->changed, c->n_changed), "participants",
                     participants_json(c->participants, c->n_participants), "actor_phone",
                     text_or_null(c->actor_phone), "changed_at", time_or_null(c->changed_at_ms),
                     "description", text_or_null(c->description), "invite_code",
                     text_or_null(c->invite_code), "picture_url", text_or_null(c->picture_url),
                     "settings", group_settings_json(c->settings), "join_request_id",
                     text_or_null(c->join_request_id));
}

static json_t *business_profile_json(const Blazz__V1__BusinessProfile *bp)
{
    if (!bp)
        return json_null();
    return json_pack("{s:o, s:o, s:o, s:o, s:o}", "description", text_or_null(bp->description),
                     "category", text_or_null(bp->category), "email", text_or_null(bp->email),
                     "website", text_or_null(bp->website), "address", text_or_null(bp->address));
}

static json_t *contact_change_json(const Blazz__V1__ContactChange *c)
{
    if (!c)
        return json_null();
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "changed",
                     texts_json(c->changed, c->n_changed), "changed_at",
                     time_or_null(c->changed_at_ms), "business_profile",
                     business_profile_json(c->business_profile), "previous_phone",
                     text_or_null(c->previous_phone), "previous_bsuid",
                     text_or_null(c->previous_bsuid), "bsuid", text_or_null(c->bsuid),
                     "saved_name", text_or_null(c->saved_name));
}

static json_t *merge_json(const Blazz__V1__ContactMerge *m)
{
    if (!m)
        return json_null();
    return json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:i}", "merged_contact_id",
                     (json_int_t)m->merged_contact_id, "merged_contact_uuid",
                     text_or_null(m->merged_contact_uuid), "lid", text_or_null(m->lid), "phone",
                     text_or_null(m->phone), "bsuid", text_or_null(m->bsuid), "merged_by",
                     text_or_null(m->merged_by), "merged_at", time_or_null(m->merged_at_ms),
                     "chats_moved", m->chats_moved);
}

static json_t *opt_out_json(const Blazz__V1__OptOutChange *c)
{
    if (!c)
        return json_null();
    return json_pack("{s:o, s:o, s:o, s:o, s:o}", "source", text_or_null(c->source), "keyword",
                     text_or_null(c->keyword), "changed_at", time_or_null(c->changed_at_ms),
                     "wam_id", text_or_null(c->wam_id), "chat_id", id_or_null(c->chat_id));
}

static json_t *template_json(const Blazz__V1__TemplateSnapshot *t)
{
    if (!t)
        return json_null();
    json_t *o = json_object();
    int ok = o != NULL;
    put(o, "id", id_or_null(t->id), &ok);
    put(o, "name", text_or_null(t->name), &ok);
    put(o, "language", text_or_null(t->language), &ok);
    put(o, "status", text_or_null(t->status), &ok);
    put(o, "category", text_or_null(t->category), &ok);
    put(o, "quality_score", text_or_null(t->quality_score), &ok);
    put(o, "rejection_reason", text_or_null(t->rejection_reason), &ok);
    put(o, "meta_template_id", text_or_null(t->meta_template_id), &ok);
    put(o, "waba_id", text_or_null(t->waba_id), &ok);
    put(o, "event", text_or_null(t->event), &ok);
    put(o, "reported_at", time_or_null(t->reported_at_ms), &ok);
    return complete(o, ok);
}

/* "call.updated": the call as it stands (0060's row) and the fact that
 * moved it. */
static json_t *call_json(const Blazz__V1__CallSnapshot *c)
{
    if (!c)
        return json_null();
    json_t *o = json_object();
    int ok = o != NULL;
    put(o, "call_id", text_or_null(c->call_id), &ok);
    put(o, "id", id_or_null(c->id), &ok);
    put(o, "uuid", text_or_null(c->uuid), &ok);
    put(o, "direction", enum_text(&blazz__v1__direction__descriptor, c->direction, "DIRECTION_"),
        &ok);
    put(o, "status", text_or_null(c->status), &ok);
    put(o, "whatsapp_account_id", id_or_null(c->whatsapp_account_id), &ok);
    put(o, "contact_id", id_or_null(c->contact_id), &ok);
    put(o, "connected_at", time_or_null(c->connected_at_ms), &ok);
    put(o, "started_at", time_or_null(c->started_at_ms), &ok);
    put(o, "ended_at", time_or_null(c->ended_at_ms), &ok);
    put(o, "terminated_at", time_or_null(c->terminated_at_ms), &ok);
    put(o, "duration_s", json_integer(c->duration_s), &ok);
    put(o, "error_code", text_or_null(c->error_code), &ok);
    put(o, "error_message", text_or_null(c->error_message), &ok);
    return complete(o, ok);
}

static json_t *standing_json(const Blazz__V1__AccountStanding *a)
{
    if (!a)
        return json_null();
    json_t *o = json_object();
    int ok = o != NULL;
    put(o, "id", id_or_null(a->whatsapp_account_id), &ok);
    put(o, "phone_number_id", text_or_null(a->phone_number_id), &ok);
    put(o, "phone_number", text_or_null(a->phone_number), &ok);
    put(o, "waba_id", text_or_null(a->waba_id), &ok);
    put(o, "business_id", text_or_null(a->business_id), &ok);
    put(o, "flagged", json_boolean(a->flagged), &ok);
    put(o, "quality_event", text_or_null(a->quality_event), &ok);
    put(o, "messaging_limit", text_or_null(a->messaging_limit), &ok);
    put(o, "business_limit", text_or_null(a->business_limit), &ok);
    put(o, "account_event", text_or_null(a->account_event), &ok);
    put(o, "restriction", text_or_null(a->restriction), &ok);
    put(o, "restricted_until", time_or_null(a->restricted_until_ms), &ok);
    put(o, "violation", text_or_null(a->violation), &ok);
    put(o, "ban_state", text_or_null(a->ban_state), &ok);
    put(o, "detail", text_or_null(a->detail), &ok);
    return complete(o, ok);
}

static json_t *account_updated_data(const Blazz__V1__AccountStanding *a)
{
    return json_pack("{s:o, s:o, s:o, s:o}", "account", standing_json(a), "field",
                     text_or_null(a ? a->field : NULL), "event", text_or_null(a ? a->event : NULL),
                     "reported_at", time_or_null(a ? a->reported_at_ms : 0));
}

/* "message.media_ready": the message (as the CRM knows it) and its stored
 * media, which GET /v1/media/{uuid} links to (ARCHITECTURE.md §16.2). */
static json_t *media_ready_data(const Blazz__V1__MediaReady *m)
{
    if (!m)
        return json_pack("{s:n, s:n}", "message", "media");
    return json_pack("{s:{s:I, s:o, s:o}, s:{s:o, s:o, s:o, s:I, s:o, s:o}}", "message", "id",
                     (json_int_t)m->chat_id, "uuid", text_or_null(m->chat_uuid), "wam_id",
                     text_or_null(m->wam_id), "media", "uuid", text_or_null(m->media_uuid),
                     "kind", text_or_null(m->kind), "mime_type", text_or_null(m->mime_type),
                     "size", (json_int_t)m->size_bytes, "sha256", text_or_null(m->sha256),
                     "filename", text_or_null(m->filename));
}

static json_t *chat_event_data(const Blazz__V1__ChatEvent *e, const char **type)
{
    switch (e->kind) {
    case BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_MESSAGE_CREATED:
        *type = "message.created";
        return json_pack("{s:o, s:o, s:o}", "chat", chat_json(e->chat), "contact",
                         contact_json(e->contact), "group", group_json(e->group));
    case BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_STATUS_CHANGED:
        *type = "message.status";
        return json_pack("{s:o, s:o, s:o, s:o}", "chat", chat_json(e->chat), "contact",
                         contact_json(e->contact), "group", group_json(e->group), "status",
                         status_change_json(e->status_change));
    case BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_SYNC_PROGRESS:
        *type = "sync.progress";
        return sync_json(e->envelope, e->sync_progress);
    case BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_CHAT_READ:
        *type = "chat.read";
        return json_pack("{s:o, s:o, s:o}", "read", chat_read_json(e->chat_read), "contact",
                         contact_json(e->contact), "group", group_json(e->group));
    case BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_MESSAGE_REACTION:
        *type = "message.reaction";
        return message_action_data(e);
    case BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_MESSAGE_EDITED:
        *type = "message.edited";
        return message_action_data(e);
    case BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_MESSAGE_DELETED:
        *type = "message.deleted";
        return message_action_data(e);
    case BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_CONTACT_UPDATED:
        if (e->merge) {
            *type = "contact.merged";
            return json_pack("{s:o, s:o}", "contact", contact_json(e->contact), "merge",
                             merge_json(e->merge));
        }
        *type = "contact.updated";
        return json_pack("{s:o, s:o}", "contact", contact_json(e->contact), "change",
                         contact_change_json(e->contact_change));
    case BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_CONTACT_OPTED_OUT:
        *type = "contact.opted_out";
        return json_pack("{s:o, s:o}", "contact", contact_json(e->contact), "opt_out",
                         opt_out_json(e->opt_out));
    case BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_CONTACT_OPTED_IN:
        *type = "contact.opted_in";
        return json_pack("{s:o, s:o}", "contact", contact_json(e->contact), "opt_out",
                         opt_out_json(e->opt_out));
    case BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_GROUP_UPDATED:
        *type = "group.updated";
        return json_pack("{s:o, s:o}", "group", group_json(e->group), "change",
                         group_change_json(e->group_change));
    case BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_TEMPLATE_UPDATED:
        *type = "template.updated";
        return json_pack("{s:o}", "template", template_json(e->template_));
    case BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_ACCOUNT_UPDATED:
        *type = "account.updated";
        return account_updated_data(e->account);
    case BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_MEDIA_READY:
        *type = "message.media_ready";
        return media_ready_data(e->media_ready);
    case BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_CALL_UPDATED:
        *type = "call.updated";
        return json_pack("{s:o, s:o, s:o}", "call", call_json(e->call), "event",
                         text_or_null(e->call ? e->call->event : NULL), "contact",
                         contact_json(e->contact));
    default:
        return NULL;
    }
}

static json_t *instance_json(const Blazz__V1__InstanceRef *i)
{
    if (!i)
        return json_null();
    return json_pack("{s:i, s:o}", "index", i->index, "url", text_or_null(i->url));
}

static json_t *removal_json(const Blazz__V1__SessionRemoval *r)
{
    if (!r)
        return json_null();
    return json_pack("{s:o, s:o, s:o, s:o, s:o}", "reason",
                     enum_text(&blazz__v1__cleanup_reason__descriptor, r->reason,
                               "CLEANUP_REASON_"),
                     "cleanup_type",
                     enum_text(&blazz__v1__cleanup_type__descriptor, r->cleanup_type,
                               "CLEANUP_TYPE_"),
                     "executed_by", id_or_null(r->executed_by), "cleanup_log_id",
                     id_or_null(r->cleanup_log_id), "requested_by", text_or_null(r->requested_by));
}

/* session.qr: the code to scan, until when, on which instance. */
static json_t *session_qr_data(const Blazz__V1__SessionEvent *e)
{
    json_t *o = json_object();
    int ok = o != NULL;
    put(o, "whatsapp_account_id", id_or_null(e->envelope->whatsapp_account_id), &ok);
    put(o, "account_uuid", text_or_null(e->account_uuid), &ok);
    put(o, "session_id", text_or_null(e->envelope->session_id), &ok);
    put(o, "qr_code", text_or_null(e->qr_code), &ok);
    put(o, "expires_at", time_or_null(e->qr_expires_at_ms), &ok);
    put(o, "instance", instance_json(e->instance), &ok);
    return complete(o, ok);
}

static json_t *session_event_data(const Blazz__V1__SessionEvent *e, const char **type)
{
    if (e->kind == BLAZZ__V1__SESSION_EVENT_KIND__SESSION_EVENT_KIND_UNSPECIFIED)
        return NULL;
    if (e->kind == BLAZZ__V1__SESSION_EVENT_KIND__SESSION_EVENT_KIND_QR) {
        *type = "session.qr";
        return session_qr_data(e);
    }
    *type = "session.status";
    json_t *o = json_object();
    int ok = o != NULL;
    put(o, "kind",
        enum_text(&blazz__v1__session_event_kind__descriptor, e->kind, "SESSION_EVENT_KIND_"),
        &ok);
    put(o, "whatsapp_account_id", id_or_null(e->envelope->whatsapp_account_id), &ok);
    put(o, "account_uuid", text_or_null(e->account_uuid), &ok);
    put(o, "session_id", text_or_null(e->envelope->session_id), &ok);
    put(o, "status",
        enum_text(&blazz__v1__session_state__descriptor, e->status, "SESSION_STATE_"), &ok);
    put(o, "previous_status",
        enum_text(&blazz__v1__session_state__descriptor, e->previous_status, "SESSION_STATE_"),
        &ok);
    put(o, "disconnect_reason",
        enum_text(&blazz__v1__disconnect_reason__descriptor, e->disconnect_reason,
                  "DISCONNECT_REASON_"),
        &ok);
    put(o, "details", text_or_null(e->details), &ok);
    put(o, "phone_number", text_or_null(e->phone_number), &ok);
    put(o, "changed_at", time_or_null(e->changed_at_ms), &ok);
    put(o, "instance", instance_json(e->instance), &ok);
    put(o, "previous_instance", instance_json(e->previous_instance), &ok);
    put(o, "removal", removal_json(e->removal), &ok);
    put(o, "health_score", json_integer(e->health_score), &ok);
    put(o, "is_primary", json_boolean(e->is_primary), &ok);
    return complete(o, ok);
}

static json_t *counters_json(const Blazz__V1__CampaignCounters *c)
{
    if (!c)
        return json_null();
    return json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i}", "contacts_count",
                     c->contacts_count, "pending", c->pending, "queued", c->queued,
                     "messages_sent", c->messages_sent, "messages_delivered",
                     c->messages_delivered, "messages_read", c->messages_read, "messages_failed",
                     c->messages_failed, "messages_skipped", c->messages_skipped);
}

static json_t *campaign_event_data(const Blazz__V1__CampaignEvent *e, const char **type)
{
    switch (e->kind) {
    case BLAZZ__V1__CAMPAIGN_EVENT_KIND__CAMPAIGN_EVENT_KIND_COMPLETED:
    case BLAZZ__V1__CAMPAIGN_EVENT_KIND__CAMPAIGN_EVENT_KIND_FAILED:
    case BLAZZ__V1__CAMPAIGN_EVENT_KIND__CAMPAIGN_EVENT_KIND_CANCELLED:
        *type = "campaign.completed";
        break;
    case BLAZZ__V1__CAMPAIGN_EVENT_KIND__CAMPAIGN_EVENT_KIND_UNSPECIFIED:
        return NULL;
    default:
        *type = "campaign.progress";
    }
    return json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:f}", "campaign_id",
                     (json_int_t)e->campaign_id, "campaign_uuid", text_or_null(e->campaign_uuid),
                     "kind",
                     enum_text(&blazz__v1__campaign_event_kind__descriptor, e->kind,
                               "CAMPAIGN_EVENT_KIND_"),
                     "status",
                     enum_text(&blazz__v1__campaign_status__descriptor, e->status,
                               "CAMPAIGN_STATUS_"),
                     "counters", counters_json(e->counters), "reason", text_or_null(e->reason),
                     "actor", text_or_null(e->actor), "whatsapp_account_id",
                     id_or_null(e->whatsapp_account_id), "failure_rate", e->failure_rate);
}

static bz_status check_envelope(const Blazz__V1__Envelope *env, bz_error *err)
{
    if (!env || !env->event_id || !*env->event_id)
        return bz_reject(err, "missing_event_id", "event without envelope.event_id");
    if (strlen(env->event_id) >= sizeof(((wh_event *)0)->event_id))
        return bz_reject(err, "bad_event_id", "event_id of %zu bytes is too long",
                         strlen(env->event_id));
    if (env->workspace_id <= 0)
        return bz_reject(err, "missing_workspace", "event %s has no workspace_id", env->event_id);
    return BZ_OK;
}

/* Why a builder gave no data: without a type the kind is one this build
 * does not know, with one a value could not be rendered. */
static bz_status refuse_data(const char *message, const Blazz__V1__Envelope *env, int kind,
                             const char *type, bz_error *err)
{
    if (!type)
        return bz_reject(err, "unknown_kind", "%s %s of unknown kind %d", message,
                         env->event_id, kind);
    return bz_reject(err, "render_error",
                     "%s %s (%s): a value cannot be rendered (text not UTF-8, or a time "
                     "past year 9999)",
                     message, env->event_id, type);
}

/* Fill ev from the envelope and render {id,type,timestamp,workspace_id,data};
 * takes ownership of data. */
static bz_status render(const Blazz__V1__Envelope *env, const char *type, json_t *data,
                        wh_event *ev, bz_error *err)
{
    memset(ev, 0, sizeof *ev);
    snprintf(ev->event_id, sizeof ev->event_id, "%s", env->event_id);
    snprintf(ev->type, sizeof ev->type, "%s", type);
    ev->workspace_id = env->workspace_id;
    ev->whatsapp_account_id = env->whatsapp_account_id;
    ev->produced_at_ms = env->produced_at_ms;
    int64_t at = env->occurred_at_ms > 0 ? env->occurred_at_ms : env->produced_at_ms;
    json_t *doc = json_pack("{s:s, s:s, s:o, s:I, s:o}", "id", env->event_id, "type", type,
                            "timestamp", time_or_null(at), "workspace_id",
                            (json_int_t)env->workspace_id, "data", data);
    ev->body = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(doc);
    if (!ev->body)
        return bz_reject(err, "render_error", "event %s: could not render the JSON body "
                         "(text not UTF-8, or a time past year 9999?)", env->event_id);
    ev->body_len = strlen(ev->body);
    return BZ_OK;
}

bz_status wh_event_from_record(wh_source source, const void *value, size_t len,
                                  wh_event *ev, bz_error *err)
{
    const uint8_t *bytes = value;
    const char *type = NULL;
    json_t *data = NULL;
    bz_status st;
    memset(ev, 0, sizeof *ev);
    if (source == WH_SOURCE_CHAT) {
        Blazz__V1__ChatEvent *e = blazz__v1__chat_event__unpack(NULL, len, bytes);
        if (!e)
            return bz_reject(err, "decode_error", "not a blazz.v1.ChatEvent (%zu bytes)", len);
        st = check_envelope(e->envelope, err);
        if (st == BZ_OK && !(data = chat_event_data(e, &type)))
            st = refuse_data("ChatEvent", e->envelope, (int)e->kind, type, err);
        if (st == BZ_OK)
            st = render(e->envelope, type, data, ev, err);
        blazz__v1__chat_event__free_unpacked(e, NULL);
    } else if (source == WH_SOURCE_SESSION) {
        Blazz__V1__SessionEvent *e = blazz__v1__session_event__unpack(NULL, len, bytes);
        if (!e)
            return bz_reject(err, "decode_error", "not a blazz.v1.SessionEvent (%zu bytes)", len);
        st = check_envelope(e->envelope, err);
        if (st == BZ_OK && !(data = session_event_data(e, &type)))
            st = refuse_data("SessionEvent", e->envelope, (int)e->kind, type, err);
        if (st == BZ_OK)
            st = render(e->envelope, type, data, ev, err);
        blazz__v1__session_event__free_unpacked(e, NULL);
    } else {
        Blazz__V1__CampaignEvent *e = blazz__v1__campaign_event__unpack(NULL, len, bytes);
        if (!e)
            return bz_reject(err, "decode_error", "not a blazz.v1.CampaignEvent (%zu bytes)",
                             len);
        st = check_envelope(e->envelope, err);
        if (st == BZ_OK && !(data = campaign_event_data(e, &type)))
            st = refuse_data("CampaignEvent", e->envelope, (int)e->kind, type, err);
        if (st == BZ_OK)
            st = render(e->envelope, type, data, ev, err);
        blazz__v1__campaign_event__free_unpacked(e, NULL);
    }
    if (st != BZ_OK)
        wh_event_clear(ev);
    return st;
}

bz_status wh_event_from_replay(int64_t endpoint_id, const void *value, size_t len,
                                  wh_event *ev, bz_error *err)
{
    memset(ev, 0, sizeof *ev);
    /* jansson lets a NUL byte through outside strings; the body is stored
     * as PostgreSQL text, which would cut it there. */
    if (!bz_utf8_valid(value, len))
        return bz_reject(err, "decode_error",
                         "replayed webhook delivery for endpoint %lld is not UTF-8 text",
                         (long long)endpoint_id);
    json_error_t jerr;
    json_t *doc = json_loadb(value, len, 0, &jerr);
    const char *id = NULL, *type = NULL;
    json_int_t ws = 0;
    if (!doc || json_unpack(doc, "{s:s, s:s, s:I}", "id", &id, "type", &type, "workspace_id",
                            &ws) != 0 ||
        !*id || strlen(id) >= sizeof ev->event_id || !*type || strlen(type) >= sizeof ev->type ||
        ws <= 0) {
        json_decref(doc);
        return bz_reject(err, "decode_error",
                         "replayed webhook delivery for endpoint %lld is not a webhook body",
                         (long long)endpoint_id);
    }
    snprintf(ev->event_id, sizeof ev->event_id, "%s", id);
    snprintf(ev->type, sizeof ev->type, "%s", type);
    ev->workspace_id = ws;
    ev->replay_endpoint_id = endpoint_id;
    json_decref(doc);
    ev->body = malloc(len + 1);
    if (!ev->body)
        return bz_fail(err, BZ_ERR_NOMEM, "replay for endpoint %lld: out of memory",
                       (long long)endpoint_id);
    memcpy(ev->body, value, len);
    ev->body[len] = '\0';
    ev->body_len = len;
    return BZ_OK;
}

void wh_event_clear(wh_event *ev)
{
    free(ev->body);
    ev->body = NULL;
    ev->body_len = 0;
}
