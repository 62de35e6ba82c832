/*
 * meta_webhook.c - Meta Cloud API notification mapping (see
 * meta_webhook.h). Walks entry[].changes[].value and maps each message and
 * status with small per-type helpers; the calls field is meta_calls.c's,
 * and what both read and build with is meta_mapping.c's.
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
 * callee by phone and/or BSUID, history (the Business app's chat history
 * shared at onboarding) as history-sync batches (meta_history.c),
 * smb_app_state_sync (the owner's address book) as ContactUpdates naming
 * the saved name, group_participants_update (members who joined or left a
 * group), group_lifecycle_update, group_settings_update and
 * group_status_update (a group made, deleted, renamed, suspended or no
 * more) as GroupUpdates (meta_groups.c), the template and
 * account fields
 * by name, and every other change (or an echo, user_preferences, calls,
 * history, state_sync or group item of a shape not understood, a join
 * request among them) kept as Meta sent it for a dead letter
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
#include "meta/meta_calls.h"
#include "meta/meta_groups.h"
#include "meta/meta_history.h"
#include "meta/meta_mapping.h"

static void map_media(ing_meta_mapping *mp, Blazz__V1__InboundMessage *m, json_t *media)
{
    if (!json_is_object(media))
        return;
    m->has_media = 1;
    if (!(m->media = ing_meta_alloc_or_fail(mp, ing_media_new())))
        return;
    ing_meta_copy(mp, &m->media->media_id, ing_meta_str_of(media, "id"));
    ing_meta_copy(mp, &m->media->mime_type, ing_meta_str_of(media, "mime_type"));
    ing_meta_copy(mp, &m->media->sha256, ing_meta_str_of(media, "sha256"));
    ing_meta_copy(mp, &m->media->caption, ing_meta_str_of(media, "caption"));
    ing_meta_copy(mp, &m->media->filename, ing_meta_str_of(media, "filename"));
    ing_meta_copy(mp, &m->media->url, ing_meta_str_of(media, "url"));
    if (json_is_true(json_object_get(media, "voice")))
        m->message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_VOICE;
}

static void map_location(ing_meta_mapping *mp, Blazz__V1__InboundMessage *m, json_t *loc)
{
    if (!json_is_object(loc) || !(m->location = ing_meta_alloc_or_fail(mp, ing_location_new())))
        return;
    m->location->latitude = json_number_value(json_object_get(loc, "latitude"));
    m->location->longitude = json_number_value(json_object_get(loc, "longitude"));
    ing_meta_copy(mp, &m->location->name, ing_meta_str_of(loc, "name"));
    ing_meta_copy(mp, &m->location->address, ing_meta_str_of(loc, "address"));
    ing_meta_copy(mp, &m->location->url, ing_meta_str_of(loc, "url"));
}

/* Meta's contact cards stay JSON text in vcards: chat-sync stores them as
 * they came. */
static void map_contacts(ing_meta_mapping *mp, Blazz__V1__InboundMessage *m, json_t *contacts)
{
    size_t n = json_is_array(contacts) ? json_array_size(contacts) : 0;
    if (n == 0 || n > 64 || !(m->vcards = ing_meta_alloc_or_fail(mp, calloc(n, sizeof *m->vcards))))
        return;
    for (size_t i = 0; i < n && mp->st == BZ_OK; i++) {
        char *text = json_dumps(json_array_get(contacts, i), JSON_COMPACT);
        m->vcards[i] =
            ing_meta_alloc_or_fail(mp, ing_str_dup(text ? text : "", text ? strlen(text) : 0));
        free(text);
        if (m->vcards[i])
            m->n_vcards = i + 1;
    }
}

/* What was tapped: the reply's id, title and description; the title (for
 * a flow, its body) is also the message body the CRM shows. */
static void map_reply(ing_meta_mapping *mp, Blazz__V1__InboundMessage *m, const char *type,
                      json_t *reply, const char *id_key, const char *title_key)
{
    if (!json_is_object(reply) ||
        !(m->interactive_reply = ing_meta_alloc_or_fail(mp, ing_interactive_reply_new())))
        return;
    Blazz__V1__InteractiveReply *r = m->interactive_reply;
    ing_meta_copy(mp, &r->type, type);
    ing_meta_copy(mp, &r->id, ing_meta_str_of(reply, id_key));
    ing_meta_copy(mp, &r->title, ing_meta_str_of(reply, title_key));
    ing_meta_copy(mp, &r->description, ing_meta_str_of(reply, "description"));
    ing_meta_copy(mp, &m->body, ing_meta_str_of(reply, title_key));
}

static void map_interactive(ing_meta_mapping *mp, Blazz__V1__InboundMessage *m, json_t *inter)
{
    static const char *const kinds[] = {"button_reply", "list_reply", NULL};
    const char *type = ing_meta_str_of(inter, "type");
    for (const char *const *k = kinds; *k; k++)
        if (json_object_get(inter, *k))
            map_reply(mp, m, *k, json_object_get(inter, *k), "id", "title");
    json_t *flow = json_object_get(inter, "nfm_reply");
    if (flow) {
        map_reply(mp, m, "nfm_reply", flow, "name", "body");
        if (m->interactive_reply)
            ing_meta_copy(mp, &m->interactive_reply->response_json,
                          ing_meta_str_of(flow, "response_json"));
    }
    if (!m->interactive_reply && type)
        map_reply(mp, m, type, json_object_get(inter, type), "id", "title");
}

/* Meta's object v as compact JSON text in *dst, when it fits
 * ING_RAW_CONTENT_MAX: beyond, it is left out and the message kept (a
 * customer's message is worth more than the object beside it). */
static void copy_json_text(ing_meta_mapping *mp, char **dst, json_t *v)
{
    if (!v)
        return;
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text && strlen(text) <= ING_RAW_CONTENT_MAX)
        ing_meta_copy(mp, dst, text);
    free(text);
}

/* The ad or post a click-to-WhatsApp customer came from, whole: Meta adds
 * fields to it, and the CRM's attribution wants them all. Any kind of
 * message may carry one. */
static void map_referral(ing_meta_mapping *mp, Blazz__V1__InboundMessage *m, json_t *referral)
{
    if (json_is_object(referral))
        copy_json_text(mp, &m->referral_json, referral);
}

/* Meta's edit webhook (coexistence, a customer's and the owner's echo):
 * the message edited (original_message_id) is the target, and the new
 * text, or the new caption of a media message, the body. */
static void map_edit(ing_meta_mapping *mp, Blazz__V1__InboundMessage *m, json_t *edit)
{
    json_t *message = json_object_get(edit, "message");
    const char *type = ing_meta_str_of(message, "type");
    json_t *content = type ? json_object_get(message, type) : NULL;
    ing_meta_copy(mp, &m->target_wam_id, ing_meta_str_of(edit, "original_message_id"));
    if (type && strcmp(type, "text") == 0)
        ing_meta_copy(mp, &m->body, ing_meta_str_of(content, "body"));
    else
        ing_meta_copy(mp, &m->body, ing_meta_str_of(content, "caption"));
}

static void map_content(ing_meta_mapping *mp, Blazz__V1__InboundMessage *m, json_t *msg,
                        const char *type)
{
    static const char *const media_types[] = {"image", "video", "audio", "document", "sticker",
                                              NULL};
    for (const char *const *t = media_types; *t; t++)
        if (strcmp(type, *t) == 0)
            map_media(mp, m, json_object_get(msg, type));
    if (strcmp(type, "text") == 0)
        ing_meta_copy(mp, &m->body, ing_meta_str_of(json_object_get(msg, "text"), "body"));
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
        ing_meta_copy(mp, &m->target_wam_id, ing_meta_str_of(reaction, "message_id"));
        ing_meta_copy(mp, &m->reaction_emoji, ing_meta_str_of(reaction, "emoji"));
    } else if (strcmp(type, "edit") == 0) {
        map_edit(mp, m, json_object_get(msg, "edit"));
    } else if (strcmp(type, "revoke") == 0) {
        /* Meta's revoke webhook: the message deleted for everyone */
        ing_meta_copy(mp, &m->target_wam_id,
                      ing_meta_str_of(json_object_get(msg, "revoke"), "original_message_id"));
    } else if (m->message_type == BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_SYSTEM ||
               m->message_type == BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_UNKNOWN) {
        ing_meta_copy(mp, &m->body, ing_meta_str_of(json_object_get(msg, type), "body"));
        /* kinds without fields of their own: Meta's object, as it came */
        copy_json_text(mp, &m->raw_content, json_object_get(msg, type));
    }
    /* Meta's first error: unsupported kinds carry one */
    m->error = ing_meta_first_error(mp, json_object_get(msg, "errors"));
}

/* Who the customer is: the phone (from, withheld for a username user),
 * the business-scoped user id (from_user_id, Meta's contacts[].user_id),
 * its parent and the username (docs/decisions/0010-a-contact-is-a-person-not-a-phone.md);
 * in a group (group_id), the participant who wrote, the group being the
 * conversation. */
static void map_sender(ing_meta_mapping *mp, Blazz__V1__InboundMessage *m, json_t *msg,
                       json_t *contacts)
{
    const char *from = ing_meta_str_of(msg, "from");
    const char *user_id = ing_meta_str_of(msg, "from_user_id");
    json_t *c = ing_meta_sender_contact(contacts, from, user_id);
    const char *parent = ing_meta_str_of(msg, "from_parent_user_id");
    const char *group_id = ing_meta_str_of(msg, "group_id");
    if (group_id) {
        /* Meta's group messages webhook: the conversation is the group,
         * the sender one of its participants, by phone and/or BSUID (Meta's
         * contacts[] entry is that participant, not a private chat) */
        m->chat_type = BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_GROUP;
        ing_meta_copy(mp, &m->group_jid, group_id);
        ing_meta_copy(mp, &m->sender_phone, from);
        ing_meta_copy(mp, &m->sender_bsuid, user_id ? user_id : ing_meta_str_of(c, "user_id"));
        ing_meta_copy(mp, &m->sender_name, ing_meta_str_of(json_object_get(c, "profile"), "name"));
        return;
    }
    ing_meta_copy(mp, &m->contact_phone, from);
    ing_meta_copy(mp, &m->contact_bsuid, user_id ? user_id : ing_meta_str_of(c, "user_id"));
    ing_meta_copy(mp, &m->contact_parent_bsuid,
                  parent ? parent : ing_meta_str_of(c, "parent_user_id"));
    ing_meta_copy(mp, &m->contact_name, ing_meta_str_of(json_object_get(c, "profile"), "name"));
    ing_meta_copy(mp, &m->contact_username,
                  ing_meta_str_of(json_object_get(c, "profile"), "username"));
}

/* A message of the number (its id, time, type, content and the message
 * it quotes), the other party left to the caller: the sender of a
 * customer's message, the addressee of the owner's echo, the thread's
 * customer of a history message (meta_history.c). */
Blazz__V1__InboundEvent *ing_meta_map_message_of_number(ing_meta_mapping *mp, json_t *msg,
                                                         const char *phone_number_id)
{
    Blazz__V1__InboundEvent *ev =
        ing_meta_new_event(mp, msg, phone_number_id, BLAZZ__V1__INBOUND_EVENT__PAYLOAD_MESSAGE);
    if (!ev || ev->payload_case != BLAZZ__V1__INBOUND_EVENT__PAYLOAD_MESSAGE)
        return ev;
    Blazz__V1__InboundMessage *m = ev->message;
    const char *type = ing_meta_str_of(msg, "type");
    m->chat_type = BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_PRIVATE;
    m->timestamp_ms = ev->envelope->occurred_at_ms;
    ing_meta_copy(mp, &m->wam_id, ing_meta_str_of(msg, "id"));
    ing_meta_copy(mp, &m->raw_type, type);
    m->message_type = ing_message_type_from_text(type);
    json_t *context = json_object_get(msg, "context");
    if (json_is_object(context)) {
        ing_meta_copy(mp, &m->quoted_wam_id, ing_meta_str_of(context, "id"));
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
    const char *type = ing_meta_str_of(msg, "type");
    const char *kind = ing_meta_str_of(json_object_get(msg, "system"), "type");
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
static Blazz__V1__InboundEvent *map_identity_change(ing_meta_mapping *mp, json_t *msg,
                                                    const char *kind, const char *phone_number_id)
{
    Blazz__V1__InboundEvent *ev = ing_meta_new_event(
        mp, msg, phone_number_id, BLAZZ__V1__INBOUND_EVENT__PAYLOAD_CONTACT_UPDATE);
    if (!ev || ev->payload_case != BLAZZ__V1__INBOUND_EVENT__PAYLOAD_CONTACT_UPDATE)
        return ev;
    Blazz__V1__ContactUpdate *u = ev->contact_update;
    json_t *sys = json_object_get(msg, "system");
    const char *new_bsuid = ing_meta_str_of(sys, "user_id");
    const char *old_bsuid = ing_meta_str_of(sys, "previous_user_id");
    const char *from_user_id = ing_meta_str_of(msg, "from_user_id");
    if (!old_bsuid && !ing_meta_same_id(from_user_id, new_bsuid))
        old_bsuid = from_user_id;
    const char *new_phone = ing_meta_str_of(sys, "wa_id");
    u->timestamp_ms = ev->envelope->occurred_at_ms;
    ing_meta_copy(mp, &u->contact_phone, ing_meta_str_of(msg, "from"));
    ing_meta_copy(mp, &u->contact_bsuid, old_bsuid);
    if (!(u->identity_change = ing_meta_alloc_or_fail(mp, ing_identity_change_new())))
        return ev;
    Blazz__V1__IdentityChange *c = u->identity_change;
    ing_meta_copy(mp, &c->kind, kind);
    ing_meta_copy(mp, &c->new_phone, new_phone ? new_phone : ing_meta_str_of(sys, "new_wa_id"));
    ing_meta_copy(mp, &c->new_bsuid, new_bsuid);
    ing_meta_copy(mp, &c->new_parent_bsuid, ing_meta_str_of(sys, "parent_user_id"));
    return ev;
}

static Blazz__V1__InboundEvent *map_message(ing_meta_mapping *mp, json_t *msg, json_t *contacts,
                                            const char *phone_number_id)
{
    const char *kind = identity_change_kind(msg);
    if (kind)
        return map_identity_change(mp, msg, kind, phone_number_id);
    Blazz__V1__InboundEvent *ev = ing_meta_map_message_of_number(mp, msg, phone_number_id);
    if (ev && ev->payload_case == BLAZZ__V1__INBOUND_EVENT__PAYLOAD_MESSAGE)
        map_sender(mp, ev->message, msg, contacts);
    return ev;
}

/* The owner's echo: a message the number sent from the WhatsApp Business
 * app to the customer `to` (its phone) and/or `to_user_id` (its BSUID, all
 * a username customer is known by), as the contract carries a message a
 * whatsapp-web.js phone sent (from_me, the customer as the contact).
 * Meta's echo names no contacts[] and no profile: the contact's name is
 * left as the customer's own messages set it. */
static Blazz__V1__InboundEvent *map_echo(ing_meta_mapping *mp, json_t *echo, json_t *value,
                                         const char *phone_number_id)
{
    (void)value;
    Blazz__V1__InboundEvent *ev = ing_meta_map_message_of_number(mp, echo, phone_number_id);
    if (!ev || ev->payload_case != BLAZZ__V1__INBOUND_EVENT__PAYLOAD_MESSAGE)
        return ev;
    ev->message->from_me = 1;
    ing_meta_copy(mp, &ev->message->contact_phone, ing_meta_str_of(echo, "to"));
    ing_meta_copy(mp, &ev->message->contact_bsuid, ing_meta_str_of(echo, "to_user_id"));
    ing_meta_copy(mp, &ev->message->contact_parent_bsuid,
                  ing_meta_str_of(echo, "to_parent_user_id"));
    return ev;
}

static Blazz__V1__DeliveryStatus meta_status(const char *text)
{
    if (!text)
        return BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_UNSPECIFIED;
    return ing_delivery_status_from_text(text);
}

static Blazz__V1__InboundEvent *map_status(ing_meta_mapping *mp, json_t *status,
                                           const char *phone_number_id)
{
    Blazz__V1__InboundEvent *ev =
        ing_meta_new_event(mp, status, phone_number_id, BLAZZ__V1__INBOUND_EVENT__PAYLOAD_ACK);
    if (!ev || ev->payload_case != BLAZZ__V1__INBOUND_EVENT__PAYLOAD_ACK)
        return ev;
    Blazz__V1__MessageAck *a = ev->ack;
    a->timestamp_ms = ev->envelope->occurred_at_ms;
    a->status = meta_status(ing_meta_str_of(status, "status"));
    ing_meta_copy(mp, &a->wam_id, ing_meta_str_of(status, "id"));
    /* Meta's group messaging page: a message sent to a group has its
     * statuses with recipient_type "group" and the group's id as
     * recipient_id, which names the group (its key), not a phone */
    const char *recipient_type = ing_meta_str_of(status, "recipient_type");
    int to_group = recipient_type && strcmp(recipient_type, "group") == 0;
    ing_meta_copy(mp, to_group ? &a->recipient_jid : &a->recipient_phone,
                  ing_meta_str_of(status, "recipient_id"));
    /* BSUIDs: given also when recipient_id is withheld (a username user) */
    ing_meta_copy(mp, &a->recipient_bsuid, ing_meta_str_of(status, "recipient_user_id"));
    ing_meta_copy(mp, &a->recipient_parent_bsuid,
                  ing_meta_str_of(status, "recipient_parent_user_id"));
    ing_meta_copy(mp, &a->client_reference, ing_meta_str_of(status, "biz_opaque_callback_data"));
    json_t *pricing = json_object_get(status, "pricing");
    ing_meta_copy(mp, &a->pricing_category, ing_meta_str_of(pricing, "category"));
    ing_meta_copy(mp, &a->pricing_type, ing_meta_str_of(pricing, "type"));
    ing_meta_copy(mp, &a->pricing_model, ing_meta_str_of(pricing, "pricing_model"));
    json_t *first_error = json_array_get(json_object_get(status, "errors"), 0);
    if (json_is_object(first_error)) {
        ing_meta_copy_number_text(mp, &a->error_code, json_object_get(first_error, "code"));
        ing_meta_copy_error_message(mp, &a->error_message, first_error);
    }
    return ev;
}

/* Meta's user_preferences item the backbone acts on: the contact stopped
 * or resumed marketing messages. */
static int preference_understood(json_t *pref)
{
    const char *category = ing_meta_str_of(pref, "category");
    const char *value = ing_meta_str_of(pref, "value");
    return json_is_object(pref) && category && strcmp(category, "marketing_messages") == 0 &&
           value && (strcmp(value, "stop") == 0 || strcmp(value, "resume") == 0);
}

/* One preference as a contact update of the number's contact, named by
 * wa_id (phone) and/or user_id (BSUID), dated by its timestamp. */
static Blazz__V1__InboundEvent *map_preference(ing_meta_mapping *mp, json_t *pref, json_t *value,
                                               const char *phone_number_id)
{
    json_t *contacts = json_object_get(value, "contacts");
    Blazz__V1__InboundEvent *ev = ing_meta_new_event(
        mp, pref, phone_number_id, BLAZZ__V1__INBOUND_EVENT__PAYLOAD_CONTACT_UPDATE);
    if (!ev || ev->payload_case != BLAZZ__V1__INBOUND_EVENT__PAYLOAD_CONTACT_UPDATE)
        return ev;
    Blazz__V1__ContactUpdate *u = ev->contact_update;
    const char *wa_id = ing_meta_str_of(pref, "wa_id"), *user_id = ing_meta_str_of(pref, "user_id");
    json_t *c = ing_meta_sender_contact(contacts, wa_id, user_id);
    ing_meta_copy(mp, &u->contact_phone, wa_id);
    ing_meta_copy(mp, &u->contact_bsuid, user_id ? user_id : ing_meta_str_of(c, "user_id"));
    ing_meta_copy(mp, &u->marketing_preference, ing_meta_str_of(pref, "value"));
    u->timestamp_ms = ev->envelope->occurred_at_ms;
    return ev;
}

/* The name the owner saved a contact under: full_name, else first_name,
 * an empty one being none. */
static const char *saved_name_of(json_t *contact)
{
    const char *full = ing_meta_str_of(contact, "full_name");
    const char *first = ing_meta_str_of(contact, "first_name");
    return full && *full ? full : first && *first ? first : NULL;
}

/* An address-book change the backbone maps: a contact named by its phone,
 * added or edited with a name, or removed. */
static int state_sync_understood(json_t *item)
{
    json_t *contact = json_object_get(item, "contact");
    const char *type = ing_meta_str_of(item, "type"), *action = ing_meta_str_of(item, "action");
    if (!json_is_object(item) || !type || strcmp(type, "contact") != 0 ||
        !ing_meta_str_of(contact, "phone_number") || !action)
        return 0;
    return strcmp(action, "remove") == 0 || (strcmp(action, "add") == 0 && saved_name_of(contact));
}

/* A contact the owner added to or edited in the WhatsApp Business app's
 * address book: an update of that customer's saved name, the one the owner
 * saved (full_name, else first_name), beside the customer's own profile
 * name, dated by the item's metadata.timestamp. A removal takes the saved
 * name away; the customer and their conversation stay the CRM's. */
static Blazz__V1__InboundEvent *map_state_sync(ing_meta_mapping *mp, json_t *item, json_t *value,
                                               const char *phone_number_id)
{
    (void)value;
    Blazz__V1__InboundEvent *ev =
        ing_meta_new_event(mp, json_object_get(item, "metadata"), phone_number_id,
                           BLAZZ__V1__INBOUND_EVENT__PAYLOAD_CONTACT_UPDATE);
    if (!ev || ev->payload_case != BLAZZ__V1__INBOUND_EVENT__PAYLOAD_CONTACT_UPDATE)
        return ev;
    json_t *contact = json_object_get(item, "contact");
    Blazz__V1__ContactUpdate *u = ev->contact_update;
    ing_meta_copy(mp, &u->contact_phone, ing_meta_str_of(contact, "phone_number"));
    u->saved_name_removed = strcmp(ing_meta_str_of(item, "action"), "remove") == 0;
    if (!u->saved_name_removed)
        ing_meta_copy(mp, &u->saved_name, saved_name_of(contact));
    u->timestamp_ms = ev->envelope->occurred_at_ms;
    return ev;
}

/* An echo the backbone maps: an object naming its message (id, type)
 * and its customer (to, to_user_id or both). */
static int echo_understood(json_t *echo)
{
    return json_is_object(echo) && ing_meta_str_of(echo, "id") && ing_meta_str_of(echo, "type") &&
           (ing_meta_str_of(echo, "to") || ing_meta_str_of(echo, "to_user_id"));
}

/* A messages change in a shape Meta documents: messages[] or statuses[]
 * (or both), every item an object. Anything else (value-level errors[],
 * Meta's report of a system, app or account error; neither array; an item
 * of another type) is not mapped: its change is a dead letter, not a 200
 * and nothing. */
static int messages_value_understood(json_t *value)
{
    json_t *lists[] = {json_object_get(value, "messages"), json_object_get(value, "statuses")};
    if (json_object_get(value, "errors") || (!lists[0] && !lists[1]))
        return 0;
    for (size_t l = 0; l < 2; l++) {
        size_t i;
        json_t *item;
        if (lists[l] && !json_is_array(lists[l]))
            return 0;
        json_array_foreach(lists[l], i, item) {
            if (!json_is_object(item))
                return 0;
        }
    }
    return 1;
}

static void map_change_value(ing_meta_mapping *mp, json_t *value, ing_events *out)
{
    const char *phone_number_id =
        ing_meta_str_of(json_object_get(value, "metadata"), "phone_number_id");
    json_t *contacts = json_object_get(value, "contacts");
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(value, "messages"), i, item) {
        if (mp->st == BZ_OK)
            ing_meta_collect(mp, out, map_message(mp, item, contacts, phone_number_id));
    }
    json_array_foreach(json_object_get(value, "statuses"), i, item) {
        if (mp->st == BZ_OK)
            ing_meta_collect(mp, out, map_status(mp, item, phone_number_id));
    }
}

/* The explanation Meta gives beside an event, when it gives one. */
static const char *template_detail(json_t *value)
{
    const char *d = ing_meta_str_of(json_object_get(value, "rejection_info"), "reason");
    if (!d)
        d = ing_meta_str_of(json_object_get(value, "other_info"), "description");
    return d;
}

static void map_template_fields(ing_meta_mapping *mp, Blazz__V1__TemplateNotice *t,
                                const char *field, json_t *value)
{
    ing_meta_copy_number_text(mp, &t->template_id, json_object_get(value, "message_template_id"));
    ing_meta_copy(mp, &t->name, ing_meta_str_of(value, "message_template_name"));
    ing_meta_copy(mp, &t->language, ing_meta_str_of(value, "message_template_language"));
    if (strcmp(field, "message_template_status_update") == 0) {
        ing_meta_copy(mp, &t->event, ing_meta_str_of(value, "event"));
        ing_meta_copy(mp, &t->reason, ing_meta_str_of(value, "reason"));
        ing_meta_copy(mp, &t->category, ing_meta_str_of(value, "message_template_category"));
        ing_meta_copy(mp, &t->detail, template_detail(value));
    } else if (strcmp(field, "template_category_update") == 0) {
        ing_meta_copy(mp, &t->category, ing_meta_str_of(value, "new_category"));
    } else {
        ing_meta_copy(mp, &t->quality_score, ing_meta_str_of(value, "new_quality_score"));
    }
}

/* account_update's VOLUME_BASED_PRICING_TIER_UPDATE: the band the WABA
 * reached. Its volume_tier_info missing or partial still makes a tier, which
 * chat-sync refuses with the event named (a known event of another shape is
 * a dead letter, not a standing report). Another event keeps its standing
 * whatever else it carries. */
static void map_volume_tier(ing_meta_mapping *mp, Blazz__V1__AccountNotice *a, json_t *value)
{
    json_t *info = json_object_get(value, "volume_tier_info");
    const char *event = ing_meta_str_of(value, "event");
    if (!event || strcmp(event, "VOLUME_BASED_PRICING_TIER_UPDATE") != 0)
        return;
    Blazz__V1__VolumeTier *t = ing_meta_alloc_or_fail(mp, ing_volume_tier_new());
    if (!t)
        return;
    a->volume_tier = t;
    ing_meta_copy(mp, &t->effective_month, ing_meta_str_of(info, "effective_month"));
    ing_meta_copy(mp, &t->pricing_category, ing_meta_str_of(info, "pricing_category"));
    ing_meta_copy(mp, &t->region, ing_meta_str_of(info, "region"));
    ing_meta_copy(mp, &t->tier, ing_meta_str_of(info, "tier"));
    t->tier_updated_at_ms = ing_meta_unix_ms_of(info, "tier_update_time");
}

/* phone_number_quality_update: one number's flag and limits, and the
 * portfolio's. account_update: the WABA's restriction, violation or ban.
 * account_alerts: an alert about the WABA or, named by its id, a number. */
static void map_account_fields(ing_meta_mapping *mp, Blazz__V1__AccountNotice *a,
                               const char *field, json_t *value)
{
    if (strcmp(field, "phone_number_quality_update") == 0) {
        ing_meta_copy_number_text(mp, &a->display_phone_number,
                                  json_object_get(value, "display_phone_number"));
        ing_meta_copy(mp, &a->event, ing_meta_str_of(value, "event"));
        ing_meta_copy(mp, &a->messaging_limit, ing_meta_str_of(value, "current_limit"));
        ing_meta_copy(mp, &a->business_limit,
                      ing_meta_str_of(value, "max_daily_conversations_per_business"));
    } else if (strcmp(field, "account_update") == 0) {
        ing_meta_copy_number_text(mp, &a->display_phone_number,
                                  json_object_get(value, "phone_number"));
        ing_meta_copy(mp, &a->event, ing_meta_str_of(value, "event"));
        /* Meta lists restrictions; the backbone keeps the first. */
        json_t *r = json_array_get(json_object_get(value, "restriction_info"), 0);
        ing_meta_copy(mp, &a->restriction, ing_meta_str_of(r, "restriction_type"));
        a->restricted_until_ms = ing_meta_unix_ms_of(r, "expiration");
        ing_meta_copy(mp, &a->violation,
                      ing_meta_str_of(json_object_get(value, "violation_info"), "violation_type"));
        json_t *ban = json_object_get(value, "ban_info");
        ing_meta_copy(mp, &a->ban_state, ing_meta_str_of(ban, "waba_ban_state"));
        ing_meta_copy(mp, &a->detail, ing_meta_str_of(ban, "waba_ban_date"));
        map_volume_tier(mp, a, value);
    } else {
        json_t *alert = json_object_get(value, "alert_info");
        const char *entity = ing_meta_str_of(value, "entity_type");
        if (entity && strcmp(entity, "PHONE_NUMBER") == 0)
            ing_meta_copy_number_text(mp, &a->phone_number_id, json_object_get(value, "entity_id"));
        ing_meta_copy(mp, &a->event, ing_meta_str_of(alert, "alert_type"));
        ing_meta_copy(mp, &a->detail, ing_meta_str_of(alert, "alert_description"));
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
static Blazz__V1__InboundEvent *map_business_notice(ing_meta_mapping *mp, json_t *entry,
                                                    const char *field, json_t *value)
{
    Blazz__V1__InboundEvent *ev = ing_meta_alloc_or_fail(mp, ing_event_new());
    if (!ev)
        return NULL;
    ev->envelope->provider = BLAZZ__V1__PROVIDER__PROVIDER_META;
    int64_t seconds;
    if (bz_json_whole_number(json_object_get(entry, "time"), &seconds))
        ev->envelope->occurred_at_ms = ing_timestamp_ms(seconds);
    ing_meta_copy(mp, &ev->envelope->source, "meta");
    Blazz__V1__BusinessNotice *n = ing_meta_alloc_or_fail(mp, ing_business_notice_new());
    if (!n)
        return ev;
    ev->business_notice = n;
    ev->payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_BUSINESS_NOTICE;
    ing_meta_copy_number_text(mp, &n->waba_id, json_object_get(entry, "id"));
    ing_meta_copy(mp, &n->field, field);
    if (listed(template_fields, field)) {
        if ((n->template_ = ing_meta_alloc_or_fail(mp, ing_template_notice_new()))) {
            n->notice_case = BLAZZ__V1__BUSINESS_NOTICE__NOTICE_TEMPLATE;
            map_template_fields(mp, n->template_, field, value);
        }
    } else if ((n->account = ing_meta_alloc_or_fail(mp, ing_account_notice_new()))) {
        n->notice_case = BLAZZ__V1__BUSINESS_NOTICE__NOTICE_ACCOUNT;
        map_account_fields(mp, n->account, field, value);
    }
    return ev;
}

/* Meta's fields this build knows of but does not map (or not in every
 * shape): each is its own metric label, any other field is "other" (a
 * bounded label set). */
static const char *const unmapped_fields[] = {
    "messages", "smb_message_echoes", "history", "smb_app_state_sync", "calls",
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
static void keep_unhandled(ing_meta_mapping *mp, json_t *entry, json_t *change, const char *field,
                           ing_meta_unhandled *out)
{
    if (!out || mp->st != BZ_OK)
        return;
    if (out->count == out->cap) {
        size_t cap = out->cap ? out->cap * 2 : 4;
        ing_meta_unhandled_change *items = realloc(out->items, cap * sizeof *items);
        /* tested here, not through the helper's answer: clang-analyzer
         * cannot see into meta_mapping.c that the helper hands items back,
         * and would report the block realloc released as freed twice */
        if (!items) {
            ing_meta_alloc_or_fail(mp, NULL);
            return;
        }
        out->items = items;
        out->cap = cap;
    }
    ing_meta_unhandled_change *u = &out->items[out->count++]; /* freed whole on failure too */
    char waba[24] = "";
    int64_t number;
    const char *id = ing_meta_str_of(entry, "id");
    if (bz_json_whole_number(json_object_get(entry, "id"), &number))
        snprintf(waba, sizeof waba, "%" PRId64, number);
    *u = (ing_meta_unhandled_change){
        .field =
            ing_meta_alloc_or_fail(mp, ing_str_dup(field ? field : "", field ? strlen(field) : 0)),
        .waba_id = ing_meta_alloc_or_fail(mp, ing_str_dup(id ? id : waba, strlen(id ? id : waba))),
        .change = ing_meta_alloc_or_fail(mp, json_dumps(change, JSON_COMPACT | JSON_ENCODE_ANY))};
}

/* value of field mapped to events: messages and statuses, the owner's
 * echoes, a contact's marketing preference, a template's or the account's
 * notice. 0 when the field, or this shape of it, is not mapped. */
static int map_field(ing_meta_mapping *mp, json_t *entry, const char *field, json_t *value,
                     ing_events *out)
{
    if (strcmp(field, "messages") == 0) {
        if (!messages_value_understood(value))
            return 0;
        map_change_value(mp, value, out);
        return 1;
    }
    if (strcmp(field, "smb_message_echoes") == 0)
        return ing_meta_map_items(mp, value, "message_echoes", echo_understood, map_echo, out);
    if (strcmp(field, "calls") == 0)
        return ing_meta_map_calls_field(mp, value, out);
    if (strcmp(field, "group_participants_update") == 0)
        return ing_meta_map_group_participants_field(mp, value, out);
    if (strcmp(field, "group_lifecycle_update") == 0 || strcmp(field, "group_settings_update") == 0 ||
        strcmp(field, "group_status_update") == 0)
        return ing_meta_map_group_fields(mp, value, out);
    if (strcmp(field, "history") == 0)
        return ing_meta_map_history_field(mp, entry, value, out);
    if (strcmp(field, "smb_app_state_sync") == 0)
        return ing_meta_map_items(mp, value, "state_sync", state_sync_understood, map_state_sync,
                                  out);
    if (strcmp(field, "user_preferences") == 0)
        return ing_meta_map_items(mp, value, "user_preferences", preference_understood,
                                  map_preference, out);
    if (!listed(template_fields, field) && !listed(account_fields, field))
        return 0;
    ing_meta_collect(mp, out, map_business_notice(mp, entry, field, value));
    return 1;
}

/* One change, by its field; what is not mapped is kept for a dead letter. */
static void map_change(ing_meta_mapping *mp, json_t *entry, json_t *change, ing_events *out,
                       ing_meta_unhandled *unhandled)
{
    json_t *value = json_object_get(change, "value");
    const char *field = ing_meta_str_of(change, "field");
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
    const char *object = ing_meta_str_of(root, "object");
    json_t *entries = json_object_get(root, "entry");
    if (!object || strcmp(object, "whatsapp_business_account") != 0 || !json_is_array(entries)) {
        json_decref(root);
        return bz_reject(err, "decode_error",
                         "field object: not a whatsapp_business_account notification");
    }
    ing_meta_mapping mp = {.st = BZ_OK, .err = err};
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
