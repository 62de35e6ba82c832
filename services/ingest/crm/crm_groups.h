/*
 * crm_groups.h - the CRM's read of a group's conversation over HTTP, on a
 * worker (crm_request.h; crm_routes.c names the handler by path):
 *
 *   GET /v1/groups/{group_id}/messages          its messages, newest first,
 *       ?limit=&cursor=                         a keyset page at a time
 */
#ifndef ING_CRM_GROUPS_H
#define ING_CRM_GROUPS_H

#include <stddef.h>

#include "crm/crm_request.h"

/* 1 when url is /v1/groups/{group_id}/messages. */
int ing_crm_is_group_messages_path(const char *url);

/* GET /v1/groups/{group_id}/messages: 200 {"messages","next_cursor"}, 404
 * unknown_group, 400 invalid_field naming group_id, limit or cursor. */
void ing_crm_read_group_messages(ing_crm_request *rq, const char *body, size_t len);

#endif
