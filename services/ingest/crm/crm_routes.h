/*
 * crm_routes.h - the route table of the CRM's endpoints: which handler
 * (crm_request.h) answers a path and method. It is the one file that
 * knows the handlers (crm_messages.h, crm_reads.h, crm_contacts.h,
 * crm_sessions.h); the HTTP server hands the one it names to the workers
 * with the request (crm_api.h), which run whatever
 * handler a job carries, and a handler knows only its request: the workers
 * and the handlers know nothing of each other. A GET route of this table
 * only reads: the workers answer it on a replica's connection when
 * crm.read_dsn names one (http_request.c tells them by the method).
 */
#ifndef ING_CRM_ROUTES_H
#define ING_CRM_ROUTES_H

#include <stddef.h>

#include "crm/crm_request.h"

/* The handler of method on url; NULL when there is none, with allow (cap
 * bytes) the methods url takes ("GET, POST"), "" when url is none of the
 * CRM's endpoints. */
ing_crm_handler_fn ing_crm_route_of(const char *url, const char *method, char *allow,
                                    size_t cap);

#endif
