/*
 * call.h - a fact of a WhatsApp call on a Meta number (CallEvent: the
 * `calls` webhook field, ARCHITECTURE.md §12), checked like every other
 * event before it goes on. It belongs to its customer's conversation: the
 * conversation part of its chat.sync key is the customer's E.164 phone,
 * else its BSUID, as for the customer's messages, so a call is applied in
 * order with them.
 */
#ifndef ING_CALL_H
#define ING_CALL_H

#include "blazz/v1/inbound.pb-c.h"
#include "core/status.h"
#include "events/normalize.h"

/* Check c (of env) and normalize its phone to E.164; conversation
 * (ING_CONVERSATION_MAX bytes) becomes the customer's key. */
bz_status ing_normalize_call(Blazz__V1__CallEvent *c, const Blazz__V1__Envelope *env,
                             const ing_norm_opts *o, char *conversation, bz_error *err);

#endif
