/*
 * crm_conversations.h - the CRM's inbox over HTTP, on a worker
 * (crm_request.h; crm_routes.c names the handler by path):
 *
 *   GET /v1/conversations                       the workspace's conversations
 *       ?whatsapp_account_id=&limit=&cursor=    (contacts and groups), the
 *                                               latest first, a keyset page
 *                                               at a time
 */
#ifndef ING_CRM_CONVERSATIONS_H
#define ING_CRM_CONVERSATIONS_H

#include <stddef.h>

#include "crm/crm_request.h"

/* 1 when url is /v1/conversations. */
int ing_crm_is_conversations_path(const char *url);

/* GET /v1/conversations: 200 {"conversations","next_cursor"}, 400
 * invalid_field naming whatsapp_account_id, limit or cursor. */
void ing_crm_read_conversations(ing_crm_request *rq, const char *body, size_t len);

#endif
