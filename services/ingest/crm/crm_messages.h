/*
 * crm_messages.h - POST /v1/messages (an agent's message) and POST
 * /v1/chats/read (a conversation was read): the handlers a worker runs for
 * them (crm_request.h; crm_routes.c names them by path).
 */
#ifndef ING_CRM_MESSAGES_H
#define ING_CRM_MESSAGES_H

#include <stddef.h>

#include "crm/crm_request.h"

/* A send -> SendChatMessage; a read -> MarkChatRead; body of len bytes. */
void ing_crm_accept_send(ing_crm_request *rq, const char *body, size_t len);
void ing_crm_accept_read(ing_crm_request *rq, const char *body, size_t len);

#endif
