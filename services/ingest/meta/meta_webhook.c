/*
 * meta_webhook.c - Meta Cloud API notification mapping (see
 * meta_webhook.h). Walks entry[].changes[].value and maps each message and
 * status with small per-type helpers.
 *
 * Every kind Meta documents lands in the one contract with its fields:
 * text, media (image, video, audio and voice notes, document, sticker),
 * location, contacts, interactive replies (button, list, flow) and
 * template quick-reply buttons (interactive_reply; a flow's answers in its
 * response_json, as Meta wrote them), reactions (the target
 * in target_wam_id, an empty emoji removes it), and the kinds the contract
 * has no fields for (system notices, unsupported messages, anything newer)
 * with their raw type, Meta's error and Meta's own object as JSON text in
 * raw_content. No kind is refused: an unknown one is stored as UNKNOWN.
 * Two system messages are no message but a fact about the customer:
 * user_changed_number and user_changed_user_id become a ContactUpdate
 * whose identity_change names the new phone or BSUID, the contact named by
 * the old ones (`from`, system.previous_user_id; decision 0010).
 * A click-to-WhatsApp ad's referral rides along with any kind, whole as
 * JSON text; a status keeps its pricing's category, type and model.
 * A message with a group_id (Meta's group messages webhook) is a group
 * message: the group named by that id, its author the participant by
 * phone and/or BSUID.
 *
 * Changes are dispatched on their field's name: messages/statuses only
 * under `messages` (another field's `messages` array is never taken for
 * customers'), smb_message_echoes (what the owner sent from the WhatsApp
 * Business app on a number shared with the Cloud API) as outbound
 * messages to the customer, user_preferences (a contact stopping or
 * resuming marketing messages) as ContactUpdates carrying the preference,
 * calls (a call's connect and terminate, and the statuses of a call the
 * business placed) as CallEvents of the customer, the caller or the
 * callee by phone and/or BSUID, the template and account fields by name,
 * and every other change (or an echo, user_preferences or calls item of a
 * shape not understood) kept as Meta sent it for a dead letter
 * (meta_dead_letter.h).
 */
#include "meta/meta_webhook.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json_number.h"
#include "events/normalize.h"
#include "events/vocabulary.h"

typedef struct mapping {
    bz_status st;
    bz_error *err;
} mapping;

static const char *str_of(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static void copy(mapping *mp, char **dst, const char *value)
{
    if (mp->st == BZ_OK && value && !ing_str_set(dst, value))
        mp->st = bz_fail(mp->err, BZ_ERR_NOMEM, "map Meta notification: out of memory");
}

/* Meta writes its numbers (error codes, template ids) as JSON numbers,
 * or as strings in some samples: either becomes text. */
static void copy_number_text(mapping *mp, char **dst, json_t *v)
{
    char text[24];
    int64_t number;
    if (bz_json_whole_number(v, &number)) {
        snprintf(text, sizeof text, "%" PRId64, number);
        copy(mp, dst, text);
    } else if (json_is_string(v)) {
        copy(mp, dst, json_string_value(v));
    }
}

/* A whole number Meta writes as a JSON number, or as a string of digits
 * in places (Unix seconds, a call's duration); 0 when v is neither. */
static int whole_number_of(json_t *v, int64_t *out)
{
    if (bz_json_whole_number(v, out))
        return 1;
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    if (!s || !*s || strlen(s) > 18 || strspn(s, "0123456789") != strlen(s))
        return 0;
    *out = strtoll(s, NULL, 10);
    return 1;
}

static int64_t unix_ms_of(json_t *obj, const char *key)
{
    int64_t seconds;
    return whole_number_of(json_object_get(obj, key), &seconds) ? ing_timestamp_ms(seconds) : 0;
}

static void *alloc_or_fail(mapping *mp, void *p)
{
    if (!p && mp->st == BZ_OK)
        mp->st = bz_fail(mp->err, BZ_ERR_NOMEM, "map Meta notification: out of memory");
    return p;
}

static void map_media(mapping *mp, Blazz__V1__InboundMessage *m, json_t *media)
{
    if (!json_is_object(media))
        return;
    m->has_media = 1;
    if (!(m->media = alloc_or_fail(mp, ing_media_new())))
        return;
    copy(mp, &m->media->media_id, str_of(media, "id"));
    copy(mp, &m->media->mime_type, str_of(media, "mime_type"));
    copy(mp, &m->media->sha256, str_of(media, "sha256"));
    copy(mp, &m->media->caption, str_of(media, "caption"));
    copy(mp, &m->media->filename, str_of(media, "filename"));
    copy(mp, &m->media->url, str_of(media, "url"));
    if (json_is_true(json_object_get(media, "voice")))
        m->message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_VOICE;
}

static void map_location(mapping *mp, Blazz__V1__InboundMessage *m, json_t *loc)
{
    if (!json_is_object(loc) || !(m->location = alloc_or_fail(mp, ing_location_new())))
        return;
    m->location->latitude = json_number_value(json_object_get(loc, "latitude"));
    m->location->longitude = json_number_value(json_object_get(loc, "longitude"));
    copy(mp, &m->location->name, str_of(loc, "name"));
    copy(mp, &m->location->address, str_of(loc, "address"));
    copy(mp, &m->location->url, str_of(loc, "url"));
}

/* Meta's contact cards stay JSON text in vcards: chat-sync stores them as
 * they came. */
static void map_contacts(mapping *mp, Blazz__V1__InboundMessage *m, json_t *contacts)
{
    size_t n = json_is_array(contacts) ? json_array_size(contacts) : 0;
    if (n == 0 || n > 64 || !(m->vcards = alloc_or_fail(mp, calloc(n, sizeof *m->vcards))))
        return;
    for (size_t i = 0; i < n && mp->st == BZ_OK; i++) {
        char *text = json_dumps(json_array_get(contacts, i), JSON_COMPACT);
        m->vcards[i] = alloc_or_fail(mp, ing_str_dup(text ? text : "", text ? strlen(text) : 0));
        free(text);
        if (m->vcards[i])
            m->n_vcards = i + 1;
    }
}

/* What was tapped: the reply's id, title and description; the title (for
 * a flow, its body) is also the message body the CRM shows. */
static void map_reply(mapping *mp, Blazz__V1__InboundMessage *m, const char *type, json_t *reply,
                      const char *id_key, const char *title_key)
{
    if (!json_is_object(reply) ||
        !(m->interactive_reply = alloc_or_fail(mp, ing_interactive_reply_new())))
        return;
    Blazz__V1__InteractiveReply *r = m->interactive_reply;
    copy(mp, &r->type, type);
    copy(mp, &r->id, str_of(reply, id_key));
    copy(mp, &r->title, str_of(reply, title_key));
    copy(mp, &r->description, str_of(reply, "description"));
    copy(mp, &m->body, str_of(reply, title_key));
}

static void map_interactive(mapping *mp, Blazz__V1__InboundMessage *m, json_t *inter)
{
    static const char *const kinds[] = {"button_reply", "list_reply", NULL};
    const char *type = str_of(inter, "type");
    for (const char *const *k = kinds; *k; k++)
        if (json_object_get(inter, *k))
            map_reply(mp, m, *k, json_object_get(inter, *k), "id", "title");
    json_t *flow = json_object_get(inter, "nfm_reply");
    if (flow) {
        map_reply(mp, m, "nfm_reply", flow, "name", "body");
        if (m->interactive_reply)
            copy(mp, &m->interactive_reply->response_json, str_of(flow, "response_json"));
    }
    if (!m->interactive_reply && type)
        map_reply(mp, m, type, json_object_get(inter, type), "id", "title");
}

/* Meta's first error of a message (unsupported kinds carry one). */
static void map_error(mapping *mp, Blazz__V1__InboundMessage *m, json_t *errors)
{
    json_t *e = json_array_get(errors, 0);
    if (!json_is_object(e) || !(m->error = alloc_or_fail(mp, ing_provider_error_new())))
        return;
    copy_number_text(mp, &m->error->code, json_object_get(e, "code"));
    const char *title = str_of(e, "title");
    copy(mp, &m->error->title, title ? title : str_of(e, "message"));
    copy(mp, &m->error->details, str_of(json_object_get(e, "error_data"), "details"));
}

/* Meta's object v as compact JSON text in *dst, when it fits
 * ING_RAW_CONTENT_MAX: beyond, it is left out and the message kept (a
 * customer's message is worth more than the object beside it). */
static void copy_json_text(mapping *mp, char **dst, json_t *v)
{
    if (!v)
        return;
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text && strlen(text) <= ING_RAW_CONTENT_MAX)
        copy(mp, dst, text);
    free(text);
}

/* The ad or post a click-to-WhatsApp customer came from, whole: Meta adds
 * fields to it, and the CRM's attribution wants them all. Any kind of
 * message may carry one. */
static void map_referral(mapping *mp, Blazz__V1__InboundMessage *m, json_t *referral)
{
    if (json_is_object(referral))
        copy_json_text(mp, &m->referral_json, referral);
}

static void map_content(mapping *mp, Blazz__V1__InboundMessage *m, json_t *msg, const char *type)
{
    static const char *const media_types[] = {"image", "video", "audio", "document", "sticker", NULL};
    for (const char *const *t = media_types; *t; t++)
        if (strcmp(type, *t) == 0)
            map_media(mp, m, json_object_get(msg, type));
    if (strcmp(type, "text") == 0)
        copy(mp, &m->body, str_of(json_object_get(msg, "text"), "body"));
    else if (strcmp(type, "location") == 0)
        map_location(mp, m, json_object_get(msg, "location"));
    else if (strcmp(type, "contacts") == 0)
        map_contacts(mp, m, json_object_get(msg, "contacts"));
    else if (strcmp(type, "interactive") == 0)
        map_interactive(mp, m, json_object_get(msg, "interactive"));
    else if (strcmp(type, "button") == 0)
        map_reply(mp, m, "button", json_object_get(msg, "button"), "payload", "text");
    else if (strcmp(type, "reaction") == 0) {
        json_t *reaction = json_object_get(msg, "reaction");
        copy(mp, &m->target_wam_id, str_of(reaction, "message_id"));
        copy(mp, &m->reaction_emoji, str_of(reaction, "emoji"));
    } else if (m->message_type == BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_SYSTEM ||
               m->message_type == BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_UNKNOWN) {
        copy(mp, &m->body, str_of(json_object_get(msg, type), "body"));
        /* kinds without fields of their own: Meta's object, as it came */
        copy_json_text(mp, &m->raw_content, json_object_get(msg, type));
    }
    map_error(mp, m, json_object_get(msg, "errors"));
}

static int same_id(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* A phone without the '+' Meta writes in some places (a group message's
 * `from`) and not in others (contacts[].wa_id). */
static const char *digits_of(const char *phone)
{
    return phone && *phone == '+' ? phone + 1 : phone;
}

/* The contacts[] entry of a message's sender: the one whose wa_id (phone)
 * or user_id (BSUID) is the message's, else the first that names neither
 * (Meta's samples list one contact per message). */
static json_t *sender_contact(json_t *contacts, const char *wa_id, const char *user_id)
{
    size_t i;
    json_t *c;
    json_array_foreach(contacts, i, c) {
        const char *id = str_of(c, "wa_id"), *uid = str_of(c, "user_id");
        if (same_id(digits_of(id), digits_of(wa_id)) || same_id(uid, user_id) ||
            (!wa_id && !user_id) ||
            (!id && !uid))
            return c;
    }
    return NULL;
}

/* Who the customer is: the phone (from, withheld for a username user),
 * the business-scoped user id (from_user_id, Meta's contacts[].user_id),
 * its parent and the username (docs/decisions/0010-a-contact-is-a-person-not-a-phone.md);
 * in a group (group_id), the participant who wrote, the group being the
 * conversation. */
static void map_sender(mapping *mp, Blazz__V1__InboundMessage *m, json_t *msg, json_t *contacts)
{
    const char *from = str_of(msg, "from"), *user_id = str_of(msg, "from_user_id");
    json_t *c = sender_contact(contacts, from, user_id);
    const char *parent = str_of(msg, "from_parent_user_id");
    const char *group_id = str_of(msg, "group_id");
    if (group_id) {
        /* Meta's group messages webhook: the conversation is the group,
         * the sender one of its participants, by phone and/or BSUID (Meta's
         * contacts[] entry is that participant, not a private chat) */
        m->chat_type = BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_GROUP;
        copy(mp, &m->group_jid, group_id);
        copy(mp, &m->sender_phone, from);
        copy(mp, &m->sender_bsuid, user_id ? user_id : str_of(c, "user_id"));
        copy(mp, &m->sender_name, str_of(json_object_get(c, "profile"), "name"));
        return;
    }
    copy(mp, &m->contact_phone, from);
    copy(mp, &m->contact_bsuid, user_id ? user_id : str_of(c, "user_id"));
    copy(mp, &m->contact_parent_bsuid, parent ? parent : str_of(c, "parent_user_id"));
    copy(mp, &m->contact_name, str_of(json_object_get(c, "profile"), "name"));
    copy(mp, &m->contact_username, str_of(json_object_get(c, "profile"), "username"));
}

/* A Meta event dated by obj's timestamp, with an empty payload of the
 * given kind (a message, an ack, a call or a contact update); a payload that could
 * not be allocated stays unset (mp knows). */
static Blazz__V1__InboundEvent *new_meta_event(mapping *mp, json_t *obj,
                                               const char *phone_number_id,
                                               Blazz__V1__InboundEvent__PayloadCase payload)
{
    Blazz__V1__InboundEvent *ev = alloc_or_fail(mp, ing_event_new());
    if (!ev)
        return NULL;
    ev->envelope->provider = BLAZZ__V1__PROVIDER__PROVIDER_META;
    ev->envelope->occurred_at_ms = unix_ms_of(obj, "timestamp");
    copy(mp, &ev->envelope->session_id, phone_number_id);
    copy(mp, &ev->envelope->source, "meta");
    void *made;
    if (payload == BLAZZ__V1__INBOUND_EVENT__PAYLOAD_MESSAGE)
        made = ev->message = alloc_or_fail(mp, ing_message_new());
    else if (payload == BLAZZ__V1__INBOUND_EVENT__PAYLOAD_ACK)
        made = ev->ack = alloc_or_fail(mp, ing_ack_new());
    else if (payload == BLAZZ__V1__INBOUND_EVENT__PAYLOAD_CALL)
        made = ev->call = alloc_or_fail(mp, ing_call_new());
    else
        made = ev->contact_update = alloc_or_fail(mp, ing_contact_update_new());
    if (made)
        ev->payload_case = payload;
    return ev;
}

/* A message of the number (its id, time, type, content and the message
 * it quotes), the other party left to the caller: the sender of a
 * customer's message, the addressee of the owner's echo. */
static Blazz__V1__InboundEvent *map_message_of_number(mapping *mp, json_t *msg,
                                                      const char *phone_number_id)
{
    Blazz__V1__InboundEvent *ev =
        new_meta_event(mp, msg, phone_number_id, BLAZZ__V1__INBOUND_EVENT__PAYLOAD_MESSAGE);
    if (!ev || ev->payload_case != BLAZZ__V1__INBOUND_EVENT__PAYLOAD_MESSAGE)
        return ev;
    Blazz__V1__InboundMessage *m = ev->message;
    const char *type = str_of(msg, "type");
    m->chat_type = BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_PRIVATE;
    m->timestamp_ms = ev->envelope->occurred_at_ms;
    copy(mp, &m->wam_id, str_of(msg, "id"));
    copy(mp, &m->raw_type, type);
    m->message_type = ing_message_type_from_text(type);
    json_t *context = json_object_get(msg, "context");
    if (json_is_object(context)) {
        copy(mp, &m->quoted_wam_id, str_of(context, "id"));
        m->is_forwarded = json_is_true(json_object_get(context, "forwarded")) ||
                          json_is_true(json_object_get(context, "frequently_forwarded"));
    }
    if (type)
        map_content(mp, m, msg, type);
    map_referral(mp, m, json_object_get(msg, "referral"));
    return ev;
}

/* The system.type of msg when it is a change of the customer's identity
 * (Meta's system messages webhook reference), else NULL. */
static const char *identity_change_kind(json_t *msg)
{
    const char *type = str_of(msg, "type");
    const char *kind = str_of(json_object_get(msg, "system"), "type");
    if (!type || strcmp(type, "system") != 0 || !kind)
        return NULL;
    return strcmp(kind, "user_changed_number") == 0 || strcmp(kind, "user_changed_user_id") == 0
               ? kind
               : NULL;
}

/* The customer known by its old phone (`from`) and old BSUID
 * (system.previous_user_id, else from_user_id unless that is the new one)
 * now goes by system.wa_id (new_wa_id in older payloads) and
 * system.user_id. What is missing or malformed is left for normalize.c to
 * refuse, naming the field. */
static Blazz__V1__InboundEvent *map_identity_change(mapping *mp, json_t *msg, const char *kind,
                                                    const char *phone_number_id)
{
    Blazz__V1__InboundEvent *ev = new_meta_event(mp, msg, phone_number_id,
                                                 BLAZZ__V1__INBOUND_EVENT__PAYLOAD_CONTACT_UPDATE);
    if (!ev || ev->payload_case != BLAZZ__V1__INBOUND_EVENT__PAYLOAD_CONTACT_UPDATE)
        return ev;
    Blazz__V1__ContactUpdate *u = ev->contact_update;
    json_t *sys = json_object_get(msg, "system");
    const char *new_bsuid = str_of(sys, "user_id"), *old_bsuid = str_of(sys, "previous_user_id");
    const char *from_user_id = str_of(msg, "from_user_id");
    if (!old_bsuid && !same_id(from_user_id, new_bsuid))
        old_bsuid = from_user_id;
    const char *new_phone = str_of(sys, "wa_id");
    u->timestamp_ms = ev->envelope->occurred_at_ms;
    copy(mp, &u->contact_phone, str_of(msg, "from"));
    copy(mp, &u->contact_bsuid, old_bsuid);
    if (!(u->identity_change = alloc_or_fail(mp, ing_identity_change_new())))
        return ev;
    Blazz__V1__IdentityChange *c = u->identity_change;
    copy(mp, &c->kind, kind);
    copy(mp, &c->new_phone, new_phone ? new_phone : str_of(sys, "new_wa_id"));
    copy(mp, &c->new_bsuid, new_bsuid);
    copy(mp, &c->new_parent_bsuid, str_of(sys, "parent_user_id"));
    return ev;
}

static Blazz__V1__InboundEvent *map_message(mapping *mp, json_t *msg, json_t *contacts,
                                            const char *phone_number_id)
{
    const char *kind = identity_change_kind(msg);
    if (kind)
        return map_identity_change(mp, msg, kind, phone_number_id);
    Blazz__V1__InboundEvent *ev = map_message_of_number(mp, msg, phone_number_id);
    if (ev && ev->payload_case == BLAZZ__V1__INBOUND_EVENT__PAYLOAD_MESSAGE)
        map_sender(mp, ev->message, msg, contacts);
    return ev;
}

/* The owner's echo: a message the number sent from the WhatsApp Business
 * app to the customer `to`, as the contract carries a message a
 * whatsapp-web.js phone sent (from_me, the customer as the contact).
 * Meta's echo names no contacts[] and no profile: the contact's name is
 * left as the customer's own messages set it. */
static Blazz__V1__InboundEvent *map_echo(mapping *mp, json_t *echo, json_t *value,
                                         const char *phone_number_id)
{
    (void)value;
    Blazz__V1__InboundEvent *ev = map_message_of_number(mp, echo, phone_number_id);
    if (!ev || ev->payload_case != BLAZZ__V1__INBOUND_EVENT__PAYLOAD_MESSAGE)
        return ev;
    ev->message->from_me = 1;
    copy(mp, &ev->message->contact_phone, str_of(echo, "to"));
    return ev;
}

/* "title: details" of a Meta error (details say why, e.g. the 24-hour
 * window), or its message when it has neither. */
static void copy_error_message(mapping *mp, char **dst, json_t *error)
{
    const char *title = str_of(error, "title");
    const char *details = str_of(json_object_get(error, "error_data"), "details");
    if (!title || !details) {
        copy(mp, dst, title ? title : details ? details : str_of(error, "message"));
        return;
    }
    size_t n = strlen(title) + 2 + strlen(details) + 1;
    char *text = alloc_or_fail(mp, malloc(n));
    if (!text)
        return;
    snprintf(text, n, "%s: %s", title, details);
    copy(mp, dst, text);
    free(text);
}

static Blazz__V1__DeliveryStatus meta_status(const char *text)
{
    if (!text)
        return BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_UNSPECIFIED;
    return ing_delivery_status_from_text(text);
}

static Blazz__V1__InboundEvent *map_status(mapping *mp, json_t *status, const char *phone_number_id)
{
    Blazz__V1__InboundEvent *ev =
        new_meta_event(mp, status, phone_number_id, BLAZZ__V1__INBOUND_EVENT__PAYLOAD_ACK);
    if (!ev || ev->payload_case != BLAZZ__V1__INBOUND_EVENT__PAYLOAD_ACK)
        return ev;
    Blazz__V1__MessageAck *a = ev->ack;
    a->timestamp_ms = ev->envelope->occurred_at_ms;
    a->status = meta_status(str_of(status, "status"));
    copy(mp, &a->wam_id, str_of(status, "id"));
    copy(mp, &a->recipient_phone, str_of(status, "recipient_id"));
    /* BSUIDs: given also when recipient_id is withheld (a username user) */
    copy(mp, &a->recipient_bsuid, str_of(status, "recipient_user_id"));
    copy(mp, &a->recipient_parent_bsuid, str_of(status, "recipient_parent_user_id"));
    copy(mp, &a->client_reference, str_of(status, "biz_opaque_callback_data"));
    json_t *pricing = json_object_get(status, "pricing");
    copy(mp, &a->pricing_category, str_of(pricing, "category"));
    copy(mp, &a->pricing_type, str_of(pricing, "type"));
    copy(mp, &a->pricing_model, str_of(pricing, "pricing_model"));
    json_t *first_error = json_array_get(json_object_get(status, "errors"), 0);
    if (json_is_object(first_error)) {
        copy_number_text(mp, &a->error_code, json_object_get(first_error, "code"));
        copy_error_message(mp, &a->error_message, first_error);
    }
    return ev;
}

static void collect(mapping *mp, ing_events *out, Blazz__V1__InboundEvent *ev)
{
    if (!ev)
        return;
    if (mp->st != BZ_OK || (mp->st = ing_events_push(out, ev, mp->err)) != BZ_OK)
        blazz__v1__inbound_event__free_unpacked(ev, NULL);
}

/* Meta's user_preferences item the backbone acts on: the contact stopped
 * or resumed marketing messages. */
static int preference_understood(json_t *pref)
{
    const char *category = str_of(pref, "category"), *value = str_of(pref, "value");
    return json_is_object(pref) && category && strcmp(category, "marketing_messages") == 0 &&
           value && (strcmp(value, "stop") == 0 || strcmp(value, "resume") == 0);
}

/* One preference as a contact update of the number's contact, named by
 * wa_id (phone) and/or user_id (BSUID), dated by its timestamp. */
static Blazz__V1__InboundEvent *map_preference(mapping *mp, json_t *pref, json_t *value,
                                               const char *phone_number_id)
{
    json_t *contacts = json_object_get(value, "contacts");
    Blazz__V1__InboundEvent *ev = new_meta_event(mp, pref, phone_number_id,
                                                 BLAZZ__V1__INBOUND_EVENT__PAYLOAD_CONTACT_UPDATE);
    if (!ev || ev->payload_case != BLAZZ__V1__INBOUND_EVENT__PAYLOAD_CONTACT_UPDATE)
        return ev;
    Blazz__V1__ContactUpdate *u = ev->contact_update;
    const char *wa_id = str_of(pref, "wa_id"), *user_id = str_of(pref, "user_id");
    json_t *c = sender_contact(contacts, wa_id, user_id);
    copy(mp, &u->contact_phone, wa_id);
    copy(mp, &u->contact_bsuid, user_id ? user_id : str_of(c, "user_id"));
    copy(mp, &u->marketing_preference, str_of(pref, "value"));
    u->timestamp_ms = ev->envelope->occurred_at_ms;
    return ev;
}

/* An echo the backbone maps: an object naming its message (id, type)
 * and its customer (to). */
static int echo_understood(json_t *echo)
{
    return json_is_object(echo) && str_of(echo, "id") && str_of(echo, "type") &&
           str_of(echo, "to");
}

/* A call fact (connect or terminate) the backbone maps: it names its
 * call and what happened. */
static int call_understood(json_t *call)
{
    const char *event = str_of(call, "event");
    return json_is_object(call) && str_of(call, "id") && event &&
           (strcmp(event, "connect") == 0 || strcmp(event, "terminate") == 0);
}

/* A status of a call the business placed (RINGING, ACCEPTED, REJECTED). */
static int call_status_understood(json_t *status)
{
    const char *type = str_of(status, "type");
    return json_is_object(status) && str_of(status, "id") && str_of(status, "status") &&
           (!type || strcmp(type, "call") == 0);
}

static Blazz__V1__Direction call_direction(const char *meta_word)
{
    if (meta_word && strcmp(meta_word, "USER_INITIATED") == 0)
        return BLAZZ__V1__DIRECTION__DIRECTION_INBOUND;
    if (meta_word && strcmp(meta_word, "BUSINESS_INITIATED") == 0)
        return BLAZZ__V1__DIRECTION__DIRECTION_OUTBOUND;
    return BLAZZ__V1__DIRECTION__DIRECTION_UNSPECIFIED;
}

/* Whether the customer is the call's `to`: the business called, or, when
 * Meta does not say who did, `from` is the business's own number. */
static int customer_is_callee(json_t *call, json_t *value, Blazz__V1__Direction direction)
{
    if (direction != BLAZZ__V1__DIRECTION__DIRECTION_UNSPECIFIED)
        return direction == BLAZZ__V1__DIRECTION__DIRECTION_OUTBOUND;
    const char *business = str_of(json_object_get(value, "metadata"), "display_phone_number");
    return same_id(digits_of(str_of(call, "from")), digits_of(business));
}

/* A call event of the number, dated and named by item (its id), with
 * Meta's first error and the business's reference when given. */
static Blazz__V1__InboundEvent *new_call_event(mapping *mp, json_t *item, const char *event,
                                               const char *phone_number_id)
{
    Blazz__V1__InboundEvent *ev =
        new_meta_event(mp, item, phone_number_id, BLAZZ__V1__INBOUND_EVENT__PAYLOAD_CALL);
    if (!ev || ev->payload_case != BLAZZ__V1__INBOUND_EVENT__PAYLOAD_CALL)
        return ev;
    Blazz__V1__CallEvent *c = ev->call;
    c->timestamp_ms = ev->envelope->occurred_at_ms;
    copy(mp, &c->call_id, str_of(item, "id"));
    copy(mp, &c->event, event);
    copy(mp, &c->status, str_of(item, "status"));
    copy(mp, &c->client_reference, str_of(item, "biz_opaque_callback_data"));
    json_t *first_error = json_array_get(json_object_get(item, "errors"), 0);
    if (json_is_object(first_error)) {
        copy_number_text(mp, &c->error_code, json_object_get(first_error, "code"));
        copy_error_message(mp, &c->error_message, first_error);
    }
    return ev;
}

/* A connect or a terminate: the customer is the caller of a call they
 * placed and the callee of one the business placed, by phone and/or
 * BSUID (from_user_id / to_user_id, as messages name them); a terminate
 * says how it ended, when it started and ended and how long it lasted. */
static Blazz__V1__InboundEvent *map_call(mapping *mp, json_t *call, json_t *value,
                                         const char *phone_number_id)
{
    Blazz__V1__InboundEvent *ev =
        new_call_event(mp, call, str_of(call, "event"), phone_number_id);
    if (!ev || ev->payload_case != BLAZZ__V1__INBOUND_EVENT__PAYLOAD_CALL)
        return ev;
    Blazz__V1__CallEvent *c = ev->call;
    c->direction = call_direction(str_of(call, "direction"));
    int callee = customer_is_callee(call, value, c->direction);
    const char *phone = str_of(call, callee ? "to" : "from");
    const char *user_id = str_of(call, callee ? "to_user_id" : "from_user_id");
    json_t *contact = sender_contact(json_object_get(value, "contacts"), phone, user_id);
    copy(mp, &c->contact_phone, phone);
    copy(mp, &c->contact_bsuid, user_id ? user_id : str_of(contact, "user_id"));
    copy(mp, &c->contact_name, str_of(json_object_get(contact, "profile"), "name"));
    c->started_at_ms = unix_ms_of(call, "start_time");
    c->ended_at_ms = unix_ms_of(call, "end_time");
    /* out of range: left unset, the rest of the call kept */
    int64_t duration;
    if (whole_number_of(json_object_get(call, "duration"), &duration) && duration >= 0 &&
        duration <= INT32_MAX)
        c->duration_s = (int32_t)duration;
    return ev;
}

/* A status of a call the business placed: the customer is its recipient. */
static Blazz__V1__InboundEvent *map_call_status(mapping *mp, json_t *status, json_t *value,
                                                const char *phone_number_id)
{
    (void)value;
    Blazz__V1__InboundEvent *ev = new_call_event(mp, status, "status", phone_number_id);
    if (!ev || ev->payload_case != BLAZZ__V1__INBOUND_EVENT__PAYLOAD_CALL)
        return ev;
    ev->call->direction = BLAZZ__V1__DIRECTION__DIRECTION_OUTBOUND;
    copy(mp, &ev->call->contact_phone, str_of(status, "recipient_id"));
    copy(mp, &ev->call->contact_bsuid, str_of(status, "recipient_user_id"));
    return ev;
}

typedef Blazz__V1__InboundEvent *(*item_mapper)(mapping *mp, json_t *item, json_t *value,
                                                const char *phone_number_id);

/* The items of value's array `key` that are understood, each mapped to
 * an event; 0 when the array is missing or empty or some item is not
 * understood (its change is then kept whole as well). */
static int map_items(mapping *mp, json_t *value, const char *key, int (*understood)(json_t *),
                     item_mapper map, ing_events *out)
{
    const char *phone_number_id = str_of(json_object_get(value, "metadata"), "phone_number_id");
    json_t *items = json_object_get(value, key);
    int all = json_is_array(items) && json_array_size(items) > 0;
    size_t i;
    json_t *item;
    json_array_foreach(items, i, item) {
        if (!understood(item))
            all = 0;
        else if (mp->st == BZ_OK)
            collect(mp, out, map(mp, item, value, phone_number_id));
    }
    return all;
}

/* The calls field: its calls[] (connect, terminate) and statuses[] (of
 * calls the business placed), either or both; 0 when it has neither or
 * an item of either is not understood. */
static int map_calls_field(mapping *mp, json_t *value, ing_events *out)
{
    int any = 0, all = 1;
    if (json_object_get(value, "calls")) {
        any = 1;
        all &= map_items(mp, value, "calls", call_understood, map_call, out);
    }
    if (json_object_get(value, "statuses")) {
        any = 1;
        all &= map_items(mp, value, "statuses", call_status_understood, map_call_status, out);
    }
    return any && all;
}

static void map_change_value(mapping *mp, json_t *value, ing_events *out)
{
    const char *phone_number_id = str_of(json_object_get(value, "metadata"), "phone_number_id");
    json_t *contacts = json_object_get(value, "contacts");
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(value, "messages"), i, item) {
        if (mp->st == BZ_OK && json_is_object(item))
            collect(mp, out, map_message(mp, item, contacts, phone_number_id));
    }
    json_array_foreach(json_object_get(value, "statuses"), i, item) {
        if (mp->st == BZ_OK && json_is_object(item))
            collect(mp, out, map_status(mp, item, phone_number_id));
    }
}

/* The explanation Meta gives beside an event, when it gives one. */
static const char *template_detail(json_t *value)
{
    const char *d = str_of(json_object_get(value, "rejection_info"), "reason");
    if (!d)
        d = str_of(json_object_get(value, "other_info"), "description");
    return d;
}

static void map_template_fields(mapping *mp, Blazz__V1__TemplateNotice *t, const char *field,
                                json_t *value)
{
    copy_number_text(mp, &t->template_id, json_object_get(value, "message_template_id"));
    copy(mp, &t->name, str_of(value, "message_template_name"));
    copy(mp, &t->language, str_of(value, "message_template_language"));
    if (strcmp(field, "message_template_status_update") == 0) {
        copy(mp, &t->event, str_of(value, "event"));
        copy(mp, &t->reason, str_of(value, "reason"));
        copy(mp, &t->category, str_of(value, "message_template_category"));
        copy(mp, &t->detail, template_detail(value));
    } else if (strcmp(field, "template_category_update") == 0) {
        copy(mp, &t->category, str_of(value, "new_category"));
    } else {
        copy(mp, &t->quality_score, str_of(value, "new_quality_score"));
    }
}

/* phone_number_quality_update: one number's flag and limits, and the
 * portfolio's. account_update: the WABA's restriction, violation or ban.
 * account_alerts: an alert about the WABA or, named by its id, a number. */
static void map_account_fields(mapping *mp, Blazz__V1__AccountNotice *a, const char *field,
                               json_t *value)
{
    if (strcmp(field, "phone_number_quality_update") == 0) {
        copy_number_text(mp, &a->display_phone_number, json_object_get(value, "display_phone_number"));
        copy(mp, &a->event, str_of(value, "event"));
        copy(mp, &a->messaging_limit, str_of(value, "current_limit"));
        copy(mp, &a->business_limit, str_of(value, "max_daily_conversations_per_business"));
    } else if (strcmp(field, "account_update") == 0) {
        copy_number_text(mp, &a->display_phone_number, json_object_get(value, "phone_number"));
        copy(mp, &a->event, str_of(value, "event"));
        /* Meta lists restrictions; the backbone keeps the first. */
        json_t *r = json_array_get(json_object_get(value, "restriction_info"), 0);
        copy(mp, &a->restriction, str_of(r, "restriction_type"));
        a->restricted_until_ms = unix_ms_of(r, "expiration");
        copy(mp, &a->violation, str_of(json_object_get(value, "violation_info"), "violation_type"));
        json_t *ban = json_object_get(value, "ban_info");
        copy(mp, &a->ban_state, str_of(ban, "waba_ban_state"));
        copy(mp, &a->detail, str_of(ban, "waba_ban_date"));
    } else {
        json_t *alert = json_object_get(value, "alert_info");
        const char *entity = str_of(value, "entity_type");
        if (entity && strcmp(entity, "PHONE_NUMBER") == 0)
            copy_number_text(mp, &a->phone_number_id, json_object_get(value, "entity_id"));
        copy(mp, &a->event, str_of(alert, "alert_type"));
        copy(mp, &a->detail, str_of(alert, "alert_description"));
    }
}

static int listed(const char *const *list, const char *field)
{
    for (const char *const *f = list; field && *f; f++)
        if (strcmp(field, *f) == 0)
            return 1;
    return 0;
}

static const char *const template_fields[] = {"message_template_status_update",
                                              "template_category_update",
                                              "message_template_quality_update", NULL};
static const char *const account_fields[] = {"phone_number_quality_update", "account_update",
                                             "account_alerts", NULL};

/* One notice of the entry's WABA (a template's or the account's standing),
 * dated by the entry's time. */
static Blazz__V1__InboundEvent *map_business_notice(mapping *mp, json_t *entry,
                                                    const char *field, json_t *value)
{
    Blazz__V1__InboundEvent *ev = alloc_or_fail(mp, ing_event_new());
    if (!ev)
        return NULL;
    ev->envelope->provider = BLAZZ__V1__PROVIDER__PROVIDER_META;
    int64_t seconds;
    if (bz_json_whole_number(json_object_get(entry, "time"), &seconds))
        ev->envelope->occurred_at_ms = ing_timestamp_ms(seconds);
    copy(mp, &ev->envelope->source, "meta");
    Blazz__V1__BusinessNotice *n = alloc_or_fail(mp, ing_business_notice_new());
    if (!n)
        return ev;
    ev->business_notice = n;
    ev->payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_BUSINESS_NOTICE;
    copy_number_text(mp, &n->waba_id, json_object_get(entry, "id"));
    copy(mp, &n->field, field);
    if (listed(template_fields, field)) {
        if ((n->template_ = alloc_or_fail(mp, ing_template_notice_new()))) {
            n->notice_case = BLAZZ__V1__BUSINESS_NOTICE__NOTICE_TEMPLATE;
            map_template_fields(mp, n->template_, field, value);
        }
    } else if ((n->account = alloc_or_fail(mp, ing_account_notice_new()))) {
        n->notice_case = BLAZZ__V1__BUSINESS_NOTICE__NOTICE_ACCOUNT;
        map_account_fields(mp, n->account, field, value);
    }
    return ev;
}

/* Meta's fields this build knows of but does not map (or not in every
 * shape): each is its own metric label, any other field is "other" (a
 * bounded label set). */
static const char *const unmapped_fields[] = {
    "smb_message_echoes", "history", "smb_app_state_sync", "calls",
    "group_lifecycle_update", "group_participants_update", "group_settings_update",
    "group_status_update", "business_capability_update", "phone_number_name_update",
    "message_template_components_update", "security", "flows", "user_preferences", NULL};

const char *ing_meta_field_label(const char *field)
{
    return listed(unmapped_fields, field) ? field : "other";
}

void ing_meta_unhandled_free(ing_meta_unhandled *u)
{
    for (size_t i = 0; i < u->count; i++) {
        free(u->items[i].field);
        free(u->items[i].waba_id);
        free(u->items[i].change);
    }
    free(u->items);
    *u = (ing_meta_unhandled){0};
}

/* Keep change (of entry) as Meta sent it, for its dead letter: JSON text,
 * an object unless Meta sent something else. */
static void keep_unhandled(mapping *mp, json_t *entry, json_t *change, const char *field,
                           ing_meta_unhandled *out)
{
    if (!out || mp->st != BZ_OK)
        return;
    if (out->count == out->cap) {
        size_t cap = out->cap ? out->cap * 2 : 4;
        ing_meta_unhandled_change *items = realloc(out->items, cap * sizeof *items);
        if (!alloc_or_fail(mp, items))
            return;
        out->items = items;
        out->cap = cap;
    }
    ing_meta_unhandled_change *u = &out->items[out->count++]; /* freed whole on failure too */
    char waba[24] = "";
    int64_t number;
    const char *id = str_of(entry, "id");
    if (bz_json_whole_number(json_object_get(entry, "id"), &number))
        snprintf(waba, sizeof waba, "%" PRId64, number);
    *u = (ing_meta_unhandled_change){
        .field = alloc_or_fail(mp, ing_str_dup(field ? field : "", field ? strlen(field) : 0)),
        .waba_id = alloc_or_fail(mp, ing_str_dup(id ? id : waba, strlen(id ? id : waba))),
        .change = alloc_or_fail(mp, json_dumps(change, JSON_COMPACT | JSON_ENCODE_ANY))};
}

/* value of field mapped to events: messages and statuses, the owner's
 * echoes, a contact's marketing preference, a template's or the account's
 * notice. 0 when the field, or this shape of it, is not mapped. */
static int map_field(mapping *mp, json_t *entry, const char *field, json_t *value,
                     ing_events *out)
{
    if (strcmp(field, "messages") == 0) {
        map_change_value(mp, value, out);
        return 1;
    }
    if (strcmp(field, "smb_message_echoes") == 0)
        return map_items(mp, value, "message_echoes", echo_understood, map_echo, out);
    if (strcmp(field, "calls") == 0)
        return map_calls_field(mp, value, out);
    if (strcmp(field, "user_preferences") == 0)
        return map_items(mp, value, "user_preferences", preference_understood, map_preference,
                         out);
    if (!listed(template_fields, field) && !listed(account_fields, field))
        return 0;
    collect(mp, out, map_business_notice(mp, entry, field, value));
    return 1;
}

/* One change, by its field; what is not mapped is kept for a dead letter. */
static void map_change(mapping *mp, json_t *entry, json_t *change, ing_events *out,
                       ing_meta_unhandled *unhandled)
{
    json_t *value = json_object_get(change, "value");
    const char *field = str_of(change, "field");
    if (!json_is_object(value) || !field || !map_field(mp, entry, field, value, out))
        keep_unhandled(mp, entry, change, field, unhandled);
}

bz_status ing_meta_parse(const char *body, size_t len, ing_events *out,
                         ing_meta_unhandled *unhandled, bz_error *err)
{
    json_error_t jerr;
    json_t *root = bz_json_loadb_wide(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return bz_reject(err, "decode_error", "field body: invalid JSON at line %d column %d: %s",
                         jerr.line, jerr.column, jerr.text);
    const char *object = str_of(root, "object");
    json_t *entries = json_object_get(root, "entry");
    if (!object || strcmp(object, "whatsapp_business_account") != 0 || !json_is_array(entries)) {
        json_decref(root);
        return bz_reject(err, "decode_error",
                         "field object: not a whatsapp_business_account notification");
    }
    mapping mp = {.st = BZ_OK, .err = err};
    size_t i, j;
    json_t *entry, *change;
    json_array_foreach(entries, i, entry) {
        json_array_foreach(json_object_get(entry, "changes"), j, change) {
            if (mp.st == BZ_OK)
                map_change(&mp, entry, change, out, unhandled);
        }
    }
    json_decref(root);
    return mp.st;
}
