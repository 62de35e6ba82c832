/*
 * crm_reads.h - what the CRM may read back over HTTP, on a worker
 * (crm_request.h; crm_routes.c names the handlers by path):
 *
 *   GET /v1/messages/{message_id}   one message: where it got to
 *   GET /v1/sessions                the workspace's sessions, a page at a time
 *   GET /v1/sessions/{session_id}   one of them
 */
#ifndef ING_CRM_READS_H
#define ING_CRM_READS_H

#include <stddef.h>

#include "crm/crm_request.h"

/* 1 when url is /v1/messages/{message_id} (one segment after it). */
int ing_crm_is_message_path(const char *url);

/* 1 when url is /v1/sessions/{session_id} (one segment after it). */
int ing_crm_is_session_path(const char *url);

/* GET /v1/messages/{message_id}: 200 with the message, 404 unknown_message. */
void ing_crm_read_message(ing_crm_request *rq, const char *body, size_t len);

/* GET /v1/sessions?limit=&cursor=: 200 {"sessions","next_cursor"}, the
 * workspace's live sessions in every state, oldest first, a keyset page at
 * a time; 400 invalid_field naming limit or cursor. */
void ing_crm_read_sessions(ing_crm_request *rq, const char *body, size_t len);

/* GET /v1/sessions/{session_id}: 200 with it, 404 unknown_session. */
void ing_crm_read_session(ing_crm_request *rq, const char *body, size_t len);

#endif
