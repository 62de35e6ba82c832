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
 * Other fields are not mapped yet and produce no event.
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

/* Parse len bytes of body and append one event per message, status and
 * template notice to
 * out (which the caller owns and frees with ing_events_free, also on
 * failure). BZ_ERR_INVALID "decode_error" for a body that is not a
 * notification. */
bz_status ing_meta_parse(const char *body, size_t len, ing_events *out,
                               bz_error *err);

#endif
