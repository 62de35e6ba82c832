/*
 * crm_routes.c - the CRM's paths and their handlers (see crm_routes.h):
 * the two message endpoints by their exact path, the session routes by
 * crm_sessions.c's reading of the path (a session id sits inside it).
 */
#include "crm/crm_routes.h"

#include <string.h>

#include "crm/crm_messages.h"
#include "crm/crm_sessions.h"

ing_crm_handler_fn ing_crm_route_of(const char *url)
{
    if (strcmp(url, "/v1/messages") == 0)
        return ing_crm_accept_send;
    if (strcmp(url, "/v1/chats/read") == 0)
        return ing_crm_accept_read;
    if (ing_crm_session_route(url, NULL, 0) != ING_CRM_SESSION_NONE)
        return ing_crm_accept_session;
    return NULL;
}
