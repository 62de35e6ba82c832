/*
 * message_content.h - the checks of what an InboundMessage says (its texts,
 * media, location, interactive reply, provider error) and its message type
 * when the event left it unset; normalize.c applies them to every message.
 */
#ifndef ING_MESSAGE_CONTENT_H
#define ING_MESSAGE_CONTENT_H

#include "blazz/v1/inbound.pb-c.h"
#include "core/status.h"
#include "events/normalize.h"

/* Check m's ids and texts and its media, location, interactive reply and
 * provider error; a refusal names the field under base. */
bz_status ing_norm_message_content(Blazz__V1__InboundMessage *m, const char *base, bz_error *err);

/* Check a provider's error (a message's, or a history run's): its code,
 * title and details; a refusal names the field under base. */
bz_status ing_norm_provider_error(const Blazz__V1__ProviderError *e, const char *base,
                                  bz_error *err);

/* Set m's message type from its raw type, or text/unknown, when unset;
 * a value past the known ones becomes unknown. */
void ing_default_message_type(Blazz__V1__InboundMessage *m);

#endif
