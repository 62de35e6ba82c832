/*
 * message_action.h - which inbound messages act on another message instead
 * of being stored as one: a reaction, an edit or a delete for everyone that
 * names its target (InboundMessage.target_wam_id). chat-sync applies them to
 * the target (services/chat-sync/apply_action.c); the gateway simulator's
 * accepted log does not list them as messages to be stored. One definition,
 * so the two can never disagree.
 */
#ifndef BZ_WA_MESSAGE_ACTION_H
#define BZ_WA_MESSAGE_ACTION_H

#include <stdbool.h>

#include "blazz/v1/inbound.pb-c.h"

bool bz_wa_message_is_action(const Blazz__V1__InboundMessage *m);

#endif
