/*
 * meta_webhook.h - Meta WhatsApp Cloud API notifications -> InboundEvents.
 *
 * A notification (object "whatsapp_business_account") holds entries, each
 * with changes whose value carries metadata.phone_number_id (the account's
 * session_id in Blazz), contacts (profile names), messages and statuses.
 * Every message and every status becomes one InboundEvent with
 * provider=META, so Meta and whatsapp-web.js facts look alike downstream.
 * Messages of every documented type are mapped (text, image, video, audio
 * and voice, document, sticker, location, contacts, interactive replies,
 * button, reaction, system, order/unsupported as UNKNOWN); statuses sent,
 * delivered, read and failed keep Meta's error code and title.
 *
 * The template fields of a WhatsApp Business Account
 * (message_template_status_update, template_category_update,
 * message_template_quality_update) name the WABA in entry.id and no phone
 * number: each change becomes one BusinessNotice event, dated entry.time.
 * So do the account fields (phone_number_quality_update, account_update,
 * account_alerts).
 *
 * The field's name decides: only `messages` is read for messages and
 * statuses; smb_message_echoes (coexistence: what the owner sent from the
 * WhatsApp Business app) gives one outbound message (from_me, the
 * customer `to` as its contact) per item of message_echoes, its content
 * mapped as a customer's; user_preferences (a contact stopping or
 * resuming marketing messages) gives one ContactUpdate per item of
 * category marketing_messages with its marketing_preference; calls gives
 * one CallEvent per item of calls (event connect or terminate: the
 * customer is `from` of a USER_INITIATED call and `to` of a
 * BUSINESS_INITIATED one, with from_user_id / to_user_id as its BSUID; a
 * terminate's status, start_time, end_time, duration and first error) and
 * per item of statuses (RINGING, ACCEPTED, REJECTED of a call the
 * business placed, its customer recipient_id / recipient_user_id);
 * history gives HistorySyncBatches (meta_history.h); smb_app_state_sync
 * gives one ContactUpdate per contact the owner added to or edited in the
 * app's address book (its phone_number, the saved full_name or
 * first_name as the name; a removal gives none); group_participants_update,
 * group_lifecycle_update and group_settings_update give GroupUpdates of
 * the members who joined or left and of the group made, deleted or
 * renamed (meta_groups.h). Every other field (group_status_update, ...,
 * and fields nobody knows), a group join request, a change that is
 * no object, names no field or whose value is not an object, an
 * smb_message_echoes change without message_echoes or with an item that
 * names no id, type or `to`, a user_preferences change with an item of
 * another category or value, and a calls change with neither array, or
 * with an item naming no id or of another event, is handed back whole as JSON text, to be
 * dead-lettered with reason unhandled_field (Meta still gets its 200;
 * nothing is dropped without a trace); the items of such a change that
 * are understood still become events.
 *
 * The mapping is lenient inside a message or status: a field of the wrong
 * type is left unset, and the event is still produced, so that validation
 * on the Kafka path dead-letters it with its original bytes and a reason
 * (Meta must get 200 for the notification, or it redelivers all of it).
 * Only a body that is not a notification at all is refused.
 */
#ifndef ING_META_WEBHOOK_H
#define ING_META_WEBHOOK_H

#include <stddef.h>

#include "core/status.h"
#include "events/event_tree.h"

/* A change no event is made of: its field ("" when it named none), the
 * entry's WABA id ("" when none) and the change object as JSON text. */
typedef struct ing_meta_unhandled_change {
    char *field;
    char *waba_id;
    char *change;
} ing_meta_unhandled_change;

typedef struct ing_meta_unhandled {
    ing_meta_unhandled_change *items;
    size_t count, cap;
} ing_meta_unhandled;

void ing_meta_unhandled_free(ing_meta_unhandled *u);

/* Parse len bytes of body and append one event per message, status and
 * business notice to out, and each change no event is made of to
 * unhandled (NULL: not kept). The caller owns both and frees them (with
 * ing_events_free, ing_meta_unhandled_free), also on failure.
 * BZ_ERR_INVALID "decode_error" for a body that is not a notification. */
bz_status ing_meta_parse(const char *body, size_t len, ing_events *out,
                         ing_meta_unhandled *unhandled, bz_error *err);

/* field as a metric label: one of Meta's fields this build knows of but
 * does not map, else "other". */
const char *ing_meta_field_label(const char *field);

#endif
