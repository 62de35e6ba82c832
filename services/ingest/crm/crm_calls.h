/*
 * crm_calls.h - the CRM's read of a contact's WhatsApp calls over HTTP, on
 * a worker (crm_request.h; crm_routes.c names the handler by path):
 *
 *   GET /v1/contacts/{contact_id}/calls         its calls, newest first,
 *       ?limit=&cursor=                         a keyset page at a time
 */
#ifndef ING_CRM_CALLS_H
#define ING_CRM_CALLS_H

#include <stddef.h>

#include "crm/crm_request.h"

/* 1 when url is /v1/contacts/{contact_id}/calls. */
int ing_crm_is_contact_calls_path(const char *url);

/* GET /v1/contacts/{contact_id}/calls: 200 {"calls","next_cursor"}, 404
 * unknown_contact, 400 invalid_field naming contact_id, limit or cursor. */
void ing_crm_read_contact_calls(ing_crm_request *rq, const char *body, size_t len);

#endif
