/*
 * message_action.c - see message_action.h.
 */
#include "wa/message_action.h"

bool bz_wa_message_is_action(const Blazz__V1__InboundMessage *m)
{
    if (!m || !m->target_wam_id || !*m->target_wam_id)
        return false;
    return m->message_type == BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_REACTION ||
           m->message_type == BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_EDIT ||
           m->message_type == BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_REVOKED;
}
