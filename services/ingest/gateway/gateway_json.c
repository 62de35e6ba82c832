/*
 * gateway_json.c - gateway JSON -> InboundEvent (see gateway_json.h).
 *
 * A reader context carries the JSON object being read, its field path and
 * the first failure; every getter is a no-op once a failure is recorded, so
 * a payload's mapping reads as a flat list of field copies followed by one
 * status check.
 */
#include "gateway/gateway_json.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json_number.h"
#include "events/event_tree.h"
#include "events/heartbeat.h"
#include "events/normalize.h"
#include "events/vocabulary.h"

#define PARTICIPANTS_READ_MAX 4096

typedef struct reader {
    json_t *obj;
    char base[ING_FIELD_MAX];
    bz_error *err;
    bz_status st;
} reader;

static reader sub_reader(const reader *parent, json_t *obj, const char *name)
{
    reader r = {.obj = obj, .err = parent->err, .st = BZ_OK};
    ing_field_path(r.base, sizeof r.base, "%s%s%s", parent->base,
                         *parent->base ? "." : "", name);
    return r;
}

static void fail_type(reader *r, const char *key, const char *expected)
{
    if (r->st == BZ_OK)
        r->st = bz_reject(r->err, "invalid_field", "field %s%s%s: expected %s", r->base,
                          *r->base ? "." : "", key, expected);
}

static void fail_nomem(reader *r)
{
    if (r->st == BZ_OK)
        r->st = bz_fail(r->err, BZ_ERR_NOMEM, "parse gateway JSON: out of memory");
}

/* A value present and not null. */
static json_t *field(reader *r, const char *key)
{
    if (r->st != BZ_OK)
        return NULL;
    json_t *v = json_object_get(r->obj, key);
    return json_is_null(v) ? NULL : v;
}

/* Strings; integers (also whole numbers written as reals, 5.0) are
 * accepted and written in decimal (ids such as session_id are numbers in
 * the seeds). */
static void get_str(reader *r, const char *key, char **dst)
{
    json_t *v = field(r, key);
    if (!v)
        return;
    char num[24];
    const char *text;
    size_t len;
    int64_t n;
    if (json_is_string(v)) {
        text = json_string_value(v);
        len = json_string_length(v);
    } else if (bz_json_whole_number(v, &n)) {
        len = (size_t)snprintf(num, sizeof num, "%" PRId64, n);
        text = num;
    } else {
        fail_type(r, key, "a string");
        return;
    }
    if (!ing_str_setn(dst, text, len))
        fail_nomem(r);
}

/* A person or a group: a phone or JID as text, or a phone's digits as a
 * number; a negative number is no phone (its '-' would read as a
 * separator). */
static void get_party(reader *r, const char *key, char **dst)
{
    json_t *v = field(r, key);
    int64_t n;
    if (v && bz_json_whole_number(v, &n) && n < 0) {
        fail_type(r, key, "a phone number or JID");
        return;
    }
    get_str(r, key, dst);
}

/* First of two accepted names (e.g. message_body and body). */
static void get_str2(reader *r, const char *key, const char *alias, char **dst)
{
    get_str(r, json_object_get(r->obj, key) ? key : alias, dst);
}

static int64_t get_int(reader *r, const char *key, int64_t min, int64_t max)
{
    json_t *v = field(r, key);
    if (!v)
        return 0;
    int64_t n;
    int digits = json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) < 20 &&
                 strspn(json_string_value(v), "-0123456789") == json_string_length(v);
    if (digits) {
        n = strtoll(json_string_value(v), NULL, 10);
    } else if (!bz_json_whole_number(v, &n)) {
        fail_type(r, key, "an integer");
        return 0;
    }
    if (n < min || n > max) {
        if (r->st == BZ_OK)
            r->st = bz_reject(r->err, "invalid_field", "field %s%s%s: %lld out of range", r->base,
                              *r->base ? "." : "", key, (long long)n);
        return 0;
    }
    return n;
}

static int get_bool(reader *r, const char *key)
{
    json_t *v = field(r, key);
    if (!v)
        return 0;
    if (!json_is_boolean(v)) {
        fail_type(r, key, "true or false");
        return 0;
    }
    return json_is_true(v);
}

static double get_double(reader *r, const char *key)
{
    json_t *v = field(r, key);
    if (!v)
        return 0;
    if (!json_is_number(v)) {
        fail_type(r, key, "a number");
        return 0;
    }
    return json_number_value(v);
}

static int64_t get_timestamp(reader *r, const char *key)
{
    return ing_timestamp_ms(get_int(r, key, 0, INT64_MAX / 2));
}

static json_t *get_object(reader *r, const char *key)
{
    json_t *v = field(r, key);
    if (v && !json_is_object(v)) {
        fail_type(r, key, "an object");
        return NULL;
    }
    return v;
}

static json_t *get_array(reader *r, const char *key, size_t max)
{
    json_t *v = field(r, key);
    if (v && !json_is_array(v)) {
        fail_type(r, key, "an array");
        return NULL;
    }
    if (v && json_array_size(v) > max && r->st == BZ_OK) {
        r->st = bz_reject(r->err, "invalid_field", "field %s%s%s: %zu entries, at most %zu",
                          r->base, *r->base ? "." : "", key, json_array_size(v), max);
        return NULL;
    }
    return v;
}

/* An enum given as text (looked up) or as its protobuf number. */
static int get_enum(reader *r, const char *key, int (*from_text)(const char *), int max)
{
    json_t *v = field(r, key);
    if (!v)
        return 0;
    int64_t number;
    if (bz_json_whole_number(v, &number))
        return (int)get_int(r, key, 0, max);
    if (!json_is_string(v)) {
        fail_type(r, key, "a string");
        return 0;
    }
    int value = from_text(json_string_value(v));
    if (value == 0 && r->st == BZ_OK)
        r->st = bz_reject(r->err, "invalid_field", "field %s%s%s: unknown value", r->base,
                          *r->base ? "." : "", key);
    return value;
}

static int status_from_text(const char *t) { return ing_delivery_status_from_text(t); }
static int state_from_text(const char *t) { return ing_session_state_from_text(t); }
static int reason_from_text(const char *t) { return ing_disconnect_reason_from_text(t); }
static int action_from_text(const char *t) { return ing_group_action_from_text(t); }

static int chat_type_from_text(const char *t)
{
    return strcmp(t, "private") == 0 ? 1 : strcmp(t, "group") == 0 ? 2 : 0;
}

static void read_media(reader *r, Blazz__V1__InboundMessage *m)
{
    json_t *obj = get_object(r, "media");
    if (!obj)
        return;
    if (!(m->media = ing_media_new())) {
        fail_nomem(r);
        return;
    }
    reader mr = sub_reader(r, obj, "media");
    get_str(&mr, "mime_type", &m->media->mime_type);
    get_str(&mr, "url", &m->media->url);
    get_str(&mr, "sha256", &m->media->sha256);
    get_str(&mr, "caption", &m->media->caption);
    get_str(&mr, "filename", &m->media->filename);
    get_str(&mr, "media_id", &m->media->media_id);
    get_str(&mr, "stored_media_uuid", &m->media->stored_media_uuid);
    m->media->size_bytes = get_int(&mr, "size_bytes", 0, INT64_MAX);
    m->media->duration_seconds = (int32_t)get_int(&mr, "duration_seconds", 0, INT32_MAX);
    if (mr.st != BZ_OK)
        r->st = mr.st;
}

static void read_location(reader *r, Blazz__V1__InboundMessage *m)
{
    json_t *obj = get_object(r, "location");
    if (!obj)
        return;
    if (!(m->location = ing_location_new())) {
        fail_nomem(r);
        return;
    }
    reader lr = sub_reader(r, obj, "location");
    m->location->latitude = get_double(&lr, "latitude");
    m->location->longitude = get_double(&lr, "longitude");
    get_str(&lr, "name", &m->location->name);
    get_str(&lr, "address", &m->location->address);
    if (lr.st != BZ_OK)
        r->st = lr.st;
}

static void read_vcards(reader *r, Blazz__V1__InboundMessage *m)
{
    json_t *arr = get_array(r, "vcards", 64);
    if (!arr || json_array_size(arr) == 0)
        return;
    size_t n = json_array_size(arr);
    if (!(m->vcards = calloc(n, sizeof *m->vcards))) {
        fail_nomem(r);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(arr, i);
        if (!json_is_string(v)) {
            fail_type(r, "vcards", "an array of strings");
            return;
        }
        if (!(m->vcards[i] = ing_str_dup(json_string_value(v), json_string_length(v)))) {
            fail_nomem(r);
            return;
        }
        m->n_vcards = i + 1;
    }
}

static void read_message_fields(reader *r, Blazz__V1__InboundMessage *m)
{
    get_str2(r, "message_id", "wam_id", &m->wam_id);
    m->chat_type = get_enum(r, "chat_type", chat_type_from_text, 2);
    get_party(r, "contact_phone", &m->contact_phone);
    get_str(r, "contact_name", &m->contact_name);
    get_party(r, "contact_jid", &m->contact_jid);
    get_str(r, "group_jid", &m->group_jid);
    get_str(r, "group_name", &m->group_name);
    get_party(r, "sender_phone", &m->sender_phone);
    get_str(r, "sender_name", &m->sender_name);
    get_party(r, "sender_jid", &m->sender_jid);
    get_str2(r, "message_body", "body", &m->body);
    get_str(r, "message_type", &m->raw_type);
    m->message_type = ing_str_empty(m->raw_type)
                          ? BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_UNSPECIFIED
                          : ing_message_type_from_text(m->raw_type);
    m->timestamp_ms = get_timestamp(r, "timestamp");
    m->has_media = get_bool(r, "has_media");
    m->from_me = get_bool(r, "from_me");
    m->is_read = get_bool(r, "is_read");
    m->is_forwarded = get_bool(r, "is_forwarded");
    get_str2(r, "quoted_message_id", "quoted_wam_id", &m->quoted_wam_id);
    get_str2(r, "target_message_id", "target_wam_id", &m->target_wam_id);
    get_str(r, "client_reference", &m->client_reference);
    get_str2(r, "reaction", "reaction_emoji", &m->reaction_emoji);
    read_media(r, m);
    read_location(r, m);
    read_vcards(r, m);
}

static void read_participants(reader *r, const char *key, Blazz__V1__GroupParticipant ***list,
                              size_t *n)
{
    json_t *arr = get_array(r, key, PARTICIPANTS_READ_MAX);
    if (!arr || json_array_size(arr) == 0)
        return;
    size_t count = json_array_size(arr);
    /* Repeated message fields are arrays of pointers. */
    if (!(*list = calloc(count, sizeof **list))) { /* NOLINT(bugprone-sizeof-expression) */
        fail_nomem(r);
        return;
    }
    for (size_t i = 0; i < count && r->st == BZ_OK; i++) {
        char name[ING_FIELD_MAX];
        ing_field_path(name, sizeof name, "%s[%zu]", key, i);
        json_t *obj = json_array_get(arr, i);
        if (!json_is_object(obj)) {
            fail_type(r, name, "an object");
            return;
        }
        Blazz__V1__GroupParticipant *p = ing_participant_new();
        if (!p) {
            fail_nomem(r);
            return;
        }
        (*list)[i] = p;
        *n = i + 1;
        reader pr = sub_reader(r, obj, name);
        get_party(&pr, "phone", &p->phone);
        get_party(&pr, "jid", &p->jid);
        get_str(&pr, "name", &p->name);
        p->is_admin = get_bool(&pr, "is_admin");
        p->is_super_admin = get_bool(&pr, "is_super_admin");
        p->joined_at_ms = get_timestamp(&pr, "joined_at");
        if (pr.st != BZ_OK)
            r->st = pr.st;
    }
}

static void read_message(reader *r, Blazz__V1__InboundEvent *ev)
{
    Blazz__V1__InboundMessage *m = ing_message_new();
    if (!m) {
        fail_nomem(r);
        return;
    }
    ev->payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_MESSAGE;
    ev->message = m;
    read_message_fields(r, m);
}

static void read_receipt(reader *r, Blazz__V1__InboundEvent *ev)
{
    Blazz__V1__MessageAck *a = ing_ack_new();
    if (!a) {
        fail_nomem(r);
        return;
    }
    ev->payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_ACK;
    ev->ack = a;
    get_str2(r, "message_id", "wam_id", &a->wam_id);
    json_t *status = field(r, "status");
    int64_t level;
    if (bz_json_whole_number(status, &level)) {
        /* whatsapp-web.js ack levels: -1 error, 0 pending, 1 server,
         * 2 device, 3 read, 4 played. */
        static const int by_ack[] = {6, 1, 2, 3, 4, 5};
        int64_t ack = get_int(r, "status", -1, 4);
        a->status = (Blazz__V1__DeliveryStatus)by_ack[ack + 1];
    } else {
        a->status = get_enum(r, "status", status_from_text, 6);
    }
    get_party(r, "recipient_phone", &a->recipient_phone);
    get_party(r, "recipient_jid", &a->recipient_jid);
    get_str(r, "error_code", &a->error_code);
    get_str(r, "error_message", &a->error_message);
    get_str(r, "client_reference", &a->client_reference);
    a->timestamp_ms = get_timestamp(r, "timestamp");
}

static void read_session_status(reader *r, Blazz__V1__InboundEvent *ev)
{
    Blazz__V1__SessionStatus *s = ing_session_status_new();
    if (!s) {
        fail_nomem(r);
        return;
    }
    ev->payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_SESSION_STATUS;
    ev->session_status = s;
    s->status = get_enum(r, "status", state_from_text, 5);
    s->reason = get_enum(r, "reason", reason_from_text,
                         BLAZZ__V1__DISCONNECT_REASON__DISCONNECT_REASON_CREDENTIALS_MISSING);
    get_str(r, "details", &s->details);
    get_party(r, "phone_number", &s->phone_number);
    get_str(r, "qr_code", &s->qr_code);
    get_str(r, "push_name", &s->push_name);
    get_str(r, "platform", &s->platform);
    s->qr_expires_at_ms = get_timestamp(r, "qr_expires_at");
    get_str(r, "remote_session_path", &s->remote_session_path);
    s->session_file_size_bytes = get_int(r, "session_file_size_bytes", 0, INT64_MAX);
    get_str(r, "session_storage", &s->session_storage);
    s->session_storage_verified_at_ms = get_timestamp(r, "session_storage_verified_at");
    get_str(r, "command_event_id", &s->command_event_id);
    if (field(r, "instance_index") || field(r, "instance_url")) {
        if (!(s->instance = ing_instance_new())) {
            fail_nomem(r);
            return;
        }
        s->instance->index = (int32_t)get_int(r, "instance_index", 0, INT32_MAX);
        get_str(r, "instance_url", &s->instance->url);
    }
}

static void read_synced_chat(reader *r, json_t *obj, Blazz__V1__SyncedChat *c)
{
    reader cr = *r;
    cr.obj = obj;
    c->chat_type = get_enum(&cr, json_object_get(obj, "type") ? "type" : "chat_type",
                            chat_type_from_text, 2);
    get_party(&cr, "contact_phone", &c->contact_phone);
    get_str(&cr, "contact_name", &c->contact_name);
    get_party(&cr, "contact_jid", &c->contact_jid);
    get_str(&cr, "group_jid", &c->group_jid);
    get_str(&cr, "group_name", &c->group_name);
    get_str(&cr, "group_description", &c->group_description);
    get_party(&cr, "group_owner_phone", &c->group_owner_phone);
    read_participants(&cr, "participants", &c->participants, &c->n_participants);
    c->unread_count = (int32_t)get_int(&cr, "unread_count", 0, INT32_MAX);
    c->last_activity_ms = get_timestamp(&cr, json_object_get(obj, "last_activity") ? "last_activity"
                                                                                    : "timestamp");
    c->archived = get_bool(&cr, "archived");
    json_t *msgs = get_array(&cr, "messages", 1000);
    size_t n = msgs ? json_array_size(msgs) : 0;
    if (n && !(c->messages = calloc(n, sizeof *c->messages))) /* NOLINT(bugprone-sizeof-expression) */
        fail_nomem(&cr);
    for (size_t i = 0; i < n && cr.st == BZ_OK; i++) {
        char name[ING_FIELD_MAX];
        ing_field_path(name, sizeof name, "messages[%zu]", i);
        json_t *mobj = json_array_get(msgs, i);
        if (!json_is_object(mobj)) {
            fail_type(&cr, name, "an object");
            break;
        }
        if (!(c->messages[i] = ing_message_new())) {
            fail_nomem(&cr);
            break;
        }
        c->n_messages = i + 1;
        reader mr = sub_reader(&cr, mobj, name);
        read_message_fields(&mr, c->messages[i]);
        cr.st = mr.st;
    }
    r->st = cr.st;
}

static void read_history(reader *r, Blazz__V1__InboundEvent *ev)
{
    Blazz__V1__HistorySyncBatch *h = ing_history_new();
    if (!h) {
        fail_nomem(r);
        return;
    }
    ev->payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_HISTORY_SYNC;
    ev->history_sync = h;
    get_str(r, "sync_id", &h->sync_id);
    h->batch_index = (int32_t)get_int(r, "batch_index", 0, INT32_MAX);
    h->batch_total = (int32_t)get_int(r, "batch_total", 0, INT32_MAX);
    h->total_chats = (int32_t)get_int(r, "total_chats", 0, INT32_MAX);
    json_t *chats = get_array(r, "chats", ING_HISTORY_CHATS_MAX);
    size_t n = chats ? json_array_size(chats) : 0;
    if (n && !(h->chats = calloc(n, sizeof *h->chats))) /* NOLINT(bugprone-sizeof-expression) */
        fail_nomem(r);
    for (size_t i = 0; i < n && r->st == BZ_OK; i++) {
        char name[ING_FIELD_MAX];
        ing_field_path(name, sizeof name, "chats[%zu]", i);
        json_t *obj = json_array_get(chats, i);
        if (!json_is_object(obj)) {
            fail_type(r, name, "an object");
            return;
        }
        if (!(h->chats[i] = ing_synced_chat_new())) {
            fail_nomem(r);
            return;
        }
        h->n_chats = i + 1;
        reader cr = sub_reader(r, obj, name);
        read_synced_chat(&cr, obj, h->chats[i]);
        r->st = cr.st;
    }
}

static void read_group_settings(reader *r, Blazz__V1__GroupUpdate *g)
{
    json_t *obj = get_object(r, "settings");
    if (!obj)
        return;
    if (!(g->settings = malloc(sizeof *g->settings))) {
        fail_nomem(r);
        return;
    }
    blazz__v1__group_settings__init(g->settings);
    reader sr = sub_reader(r, obj, "settings");
    g->settings->announce = get_bool(&sr, "announce");
    g->settings->restrict_info = get_bool(&sr, "restrict");
    if (sr.st != BZ_OK)
        r->st = sr.st;
}

static void read_group_update(reader *r, Blazz__V1__InboundEvent *ev)
{
    Blazz__V1__GroupUpdate *g = ing_group_update_new();
    if (!g) {
        fail_nomem(r);
        return;
    }
    ev->payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_GROUP_UPDATE;
    ev->group_update = g;
    get_str(r, "group_jid", &g->group_jid);
    get_str2(r, "name", "group_name", &g->name);
    get_str(r, "description", &g->description);
    g->action = get_enum(r, "action", action_from_text, 7);
    read_participants(r, "participants", &g->participants, &g->n_participants);
    g->participants_snapshot = get_bool(r, "participants_snapshot");
    get_party(r, "actor_phone", &g->actor_phone);
    get_party(r, "owner_phone", &g->owner_phone);
    g->timestamp_ms = get_timestamp(r, "timestamp");
    g->group_created_at_ms = get_timestamp(r, "group_created_at");
    get_str(r, "invite_code", &g->invite_code);
    get_str(r, "picture_url", &g->picture_url);
    read_group_settings(r, g);
}

static void read_contact_update(reader *r, Blazz__V1__InboundEvent *ev)
{
    Blazz__V1__ContactUpdate *c = malloc(sizeof *c);
    if (!c) {
        fail_nomem(r);
        return;
    }
    blazz__v1__contact_update__init(c);
    ev->payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_CONTACT_UPDATE;
    ev->contact_update = c;
    get_party(r, "contact_phone", &c->contact_phone);
    get_party(r, "contact_jid", &c->contact_jid);
    get_str2(r, "push_name", "contact_name", &c->push_name);
    get_str(r, "saved_name", &c->saved_name);
    c->saved_name_removed = get_bool(r, "saved_name_removed");
    get_str2(r, "profile_picture_url", "profile_picture", &c->profile_picture_url);
    c->timestamp_ms = get_timestamp(r, "timestamp");
    json_t *obj = get_object(r, "business_profile");
    if (!obj)
        return;
    if (!(c->business_profile = malloc(sizeof *c->business_profile))) {
        fail_nomem(r);
        return;
    }
    blazz__v1__business_profile__init(c->business_profile);
    reader br = sub_reader(r, obj, "business_profile");
    get_str(&br, "description", &c->business_profile->description);
    get_str(&br, "category", &c->business_profile->category);
    get_str(&br, "email", &c->business_profile->email);
    get_str(&br, "website", &c->business_profile->website);
    get_str(&br, "address", &c->business_profile->address);
    if (br.st != BZ_OK)
        r->st = br.st;
}

/* A gateway learned that a LID (contact_jid) is a phone (contact_phone):
 * a contact update carrying both, which chat-sync applies as a mapping
 * (both required here; normalize.c checks their forms, and a JID that is
 * no LID makes it an ordinary contact update). */
static void read_contact_mapping(reader *r, Blazz__V1__InboundEvent *ev)
{
    read_contact_update(r, ev);
    if (r->st != BZ_OK)
        return;
    const Blazz__V1__ContactUpdate *c = ev->contact_update;
    if (!c->contact_phone || !*c->contact_phone)
        r->st = bz_reject(r->err, "missing_field", "field contact_phone: required (the phone "
                                                   "the LID stands for)");
    else if (!c->contact_jid || !*c->contact_jid)
        r->st = bz_reject(r->err, "missing_field", "field contact_jid: required (the LID, "
                                                   "<digits>@lid)");
}

/* {"index", "url", "epoch"}: the instance that publishes, and the epoch
 * of the session's assignment it holds. */
static void read_instance_ref(reader *r, const char *key, Blazz__V1__InstanceRef **out)
{
    json_t *obj = get_object(r, key);
    if (!obj)
        return;
    if (!(*out = ing_instance_new())) {
        fail_nomem(r);
        return;
    }
    reader ir = sub_reader(r, obj, key);
    (*out)->index = (int32_t)get_int(&ir, "index", 0, INT16_MAX);
    get_str(&ir, "url", &(*out)->url);
    (*out)->epoch = get_int(&ir, "epoch", 0, INT64_MAX);
    if (ir.st != BZ_OK)
        r->st = ir.st;
}

static void read_leases(reader *r, Blazz__V1__InstanceHeartbeat *h)
{
    json_t *list = get_array(r, "sessions", ING_LEASES_MAX);
    size_t n = json_array_size(list);
    if (n == 0)
        return;
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers, sized as such */
    if (!(h->sessions = calloc(n, sizeof *h->sessions))) {
        fail_nomem(r);
        return;
    }
    for (size_t i = 0; i < n && r->st == BZ_OK; i++) {
        json_t *obj = json_array_get(list, i);
        char name[32];
        snprintf(name, sizeof name, "sessions[%zu]", i);
        if (!json_is_object(obj)) {
            fail_type(r, name, "an object");
            return;
        }
        Blazz__V1__SessionLease *l = ing_lease_new();
        if (!l) {
            fail_nomem(r);
            return;
        }
        h->sessions[h->n_sessions++] = l;
        reader lr = sub_reader(r, obj, name);
        get_str(&lr, "session_id", &l->session_id);
        l->epoch = get_int(&lr, "epoch", 0, INT64_MAX);
        if (lr.st != BZ_OK)
            r->st = lr.st;
    }
}

/* The stores' names as given; normalize checks them. */
static void read_storages(reader *r, Blazz__V1__InstanceHeartbeat *h)
{
    json_t *list = get_array(r, "storages", ING_STORAGES_MAX);
    size_t n = json_array_size(list);
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers, sized as such */
    if (n == 0 || !(h->storages = calloc(n, sizeof *h->storages))) {
        if (n)
            fail_nomem(r);
        return;
    }
    for (size_t i = 0; i < n && r->st == BZ_OK; i++) {
        json_t *v = json_array_get(list, i);
        if (!json_is_string(v)) {
            char name[32];
            snprintf(name, sizeof name, "storages[%zu]", i);
            fail_type(r, name, "a string");
            return;
        }
        /* each its own allocation, "" too: free_unpacked frees every entry
         * of a repeated string */
        if (!(h->storages[h->n_storages] = ing_str_dup(json_string_value(v),
                                                        json_string_length(v)))) {
            fail_nomem(r);
            return;
        }
        h->n_storages++;
    }
}

static void read_heartbeat(reader *r, Blazz__V1__InboundEvent *ev)
{
    Blazz__V1__InstanceHeartbeat *h = ing_heartbeat_new();
    if (!h || !(h->instance = ing_instance_new())) {
        free(h);
        fail_nomem(r);
        return;
    }
    ev->payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_INSTANCE_HEARTBEAT;
    ev->instance_heartbeat = h;
    h->instance->index = (int32_t)get_int(r, "instance_index", 0, INT16_MAX);
    get_str(r, "instance_url", &h->instance->url);
    h->capacity = (int32_t)get_int(r, "capacity", 0, INT32_MAX);
    get_str(r, "boot_id", &h->boot_id);
    h->started_at_ms = get_timestamp(r, "started_at");
    read_leases(r, h);
    read_storages(r, h);
}

static void read_envelope(reader *r, Blazz__V1__Envelope *env, int64_t received_ms)
{
    get_str(r, "session_id", &env->session_id);
    get_str(r, "event_id", &env->event_id);
    get_str(r, "trace_id", &env->trace_id);
    get_str(r, "source", &env->source);
    env->workspace_id = get_int(r, "workspace_id", 0, INT64_MAX);
    env->occurred_at_ms = get_timestamp(r, "occurred_at");
    read_instance_ref(r, "instance", &env->instance);
    json_t *provider = field(r, "provider");
    env->provider = BLAZZ__V1__PROVIDER__PROVIDER_WEBJS;
    if (json_is_string(provider) && strcmp(json_string_value(provider), "meta") == 0)
        env->provider = BLAZZ__V1__PROVIDER__PROVIDER_META;
    else if (provider && !(json_is_string(provider) && strcmp(json_string_value(provider), "webjs") == 0))
        fail_type(r, "provider", "\"webjs\" or \"meta\"");
    /* An event that says nothing about its time happened when the gateway
     * told us. */
    if (env->occurred_at_ms == 0)
        env->occurred_at_ms = get_timestamp(r, "timestamp");
    if (env->occurred_at_ms == 0)
        env->occurred_at_ms = received_ms;
}

bz_status ing_gateway_json_parse(const char *body, size_t len, int64_t received_ms,
                                       Blazz__V1__InboundEvent **out, bz_error *err)
{
    json_error_t jerr;
    json_t *root = bz_json_loadb_wide(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return bz_reject(err, "decode_error", "field body: invalid JSON at line %d column %d: %s",
                         jerr.line, jerr.column, jerr.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return bz_reject(err, "decode_error", "field body: a JSON object is expected");
    }
    Blazz__V1__InboundEvent *ev = ing_event_new();
    if (!ev) {
        json_decref(root);
        return bz_fail(err, BZ_ERR_NOMEM, "parse gateway JSON: out of memory");
    }
    reader r = {.obj = root, .err = err, .st = BZ_OK};
    read_envelope(&r, ev->envelope, received_ms);
    json_t *kind = field(&r, "event");
    const char *name = json_is_string(kind) ? json_string_value(kind) : kind ? "" : "message";
    if (strcmp(name, "message") == 0)
        read_message(&r, ev);
    else if (strcmp(name, "receipt") == 0 || strcmp(name, "ack") == 0)
        read_receipt(&r, ev);
    else if (strcmp(name, "session_status") == 0)
        read_session_status(&r, ev);
    else if (strcmp(name, "history_sync") == 0)
        read_history(&r, ev);
    else if (strcmp(name, "group_update") == 0)
        read_group_update(&r, ev);
    else if (strcmp(name, "contact_update") == 0 || strcmp(name, "contact_changed") == 0)
        read_contact_update(&r, ev);
    else if (strcmp(name, "contact_mapping") == 0)
        read_contact_mapping(&r, ev);
    else if (strcmp(name, "instance_heartbeat") == 0)
        read_heartbeat(&r, ev);
    else if (r.st == BZ_OK)
        r.st = bz_reject(err, "invalid_field", "field event: expected message, receipt, "
                         "session_status, history_sync, group_update, contact_update, "
                         "contact_mapping or instance_heartbeat");
    json_decref(root);
    if (r.st != BZ_OK) {
        blazz__v1__inbound_event__free_unpacked(ev, NULL);
        return r.st;
    }
    *out = ev;
    return BZ_OK;
}
