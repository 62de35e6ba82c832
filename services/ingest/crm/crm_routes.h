/*
 * crm_routes.h - the route table of the CRM's endpoints: which handler
 * (crm_request.h) answers a path. It is the one file that knows the
 * handlers (crm_messages.h, crm_sessions.h); the HTTP server hands the one
 * it names to the workers with the request (crm_api.h), which run whatever
 * handler a job carries, and a handler knows only its request: the workers
 * and the handlers know nothing of each other.
 */
#ifndef ING_CRM_ROUTES_H
#define ING_CRM_ROUTES_H

#include "crm/crm_request.h"

/* The handler of url, NULL when url is none of the CRM's endpoints. */
ing_crm_handler_fn ing_crm_route_of(const char *url);

#endif
