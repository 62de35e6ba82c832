/*
 * crm_sessions.h - the session routes of the CRM's endpoints: POST
 * /v1/sessions and /v1/sessions/{session_id}/restart|logout|primary|
 * history-sync, the
 * handler a worker runs for them (crm_request.h; crm_routes.c names it by
 * path).
 */
#ifndef ING_CRM_SESSIONS_H
#define ING_CRM_SESSIONS_H

#include <stddef.h>

#include "crm/crm_request.h"

enum {
    ING_CRM_SESSION_NONE,
    ING_CRM_SESSION_CREATE,
    ING_CRM_SESSION_RESTART,
    ING_CRM_SESSION_LOGOUT,
    ING_CRM_SESSION_PRIMARY,
    ING_CRM_SESSION_HISTORY_SYNC
};

/* Which session route url is, the session id into session (cap bytes;
 * NULL: not wanted); ING_CRM_SESSION_NONE when none. */
int ing_crm_session_route(const char *url, char *session, size_t cap);

/* A session command of the request's route; body of len bytes. */
void ing_crm_accept_session(ing_crm_request *rq, const char *body, size_t len);

#endif
