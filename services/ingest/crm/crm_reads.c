/*
 * crm_reads.c - the CRM's reads over HTTP, on a worker (crm_reads.h).
 *
 * Each read is one indexed statement on the worker's pooled connection,
 * scoped to the key's workspace: a message by its id (chats.uuid, the
 * message_id a send's 202 names), sessions by the workspace (and id). A
 * row of another workspace is answered exactly as a row that does not
 * exist. Times are ISO 8601 in UTC, null when not reached yet; a column
 * the backbone has not filled is null, never "" or 0. A send accepted
 * (202) is a message only once chat-sync has applied its command, usually
 * within milliseconds: until then it is 404 unknown_message.
 */
#include "crm/crm_reads.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/uuid.h"
#include "crm/crm_rows.h"
#include "pg/pg.h"
#include "wa/crm_command.h"

#define MESSAGES_PATH "/v1/messages/"
#define SESSIONS_PATH "/v1/sessions/"

#define SQL_MESSAGE                                                                              \
    "SELECT " ING_CRM_MESSAGE_COLUMNS " FROM chats "                                             \
    "WHERE workspace_id = $1 AND uuid = $2::uuid AND deleted_at IS NULL"

/* The workspace's ($1) live sessions, and with $2 <> '' the one of that id. */
#define SQL_SESSIONS                                                                             \
    "SELECT session_id, id, provider_type, status, phone_number, is_primary, is_active, "         \
    "gateway_id, " ING_CRM_MS("last_connected_at") ", " ING_CRM_MS("disconnected_at") ", "        \
    "disconnect_reason, " ING_CRM_MS("created_at") ", sync_enabled FROM whatsapp_accounts "       \
    "WHERE workspace_id = $1 AND deleted_at IS NULL AND ($2 = '' OR session_id = $2) "            \
    "ORDER BY id LIMIT 1000"
enum {
    SES_ID, SES_ACCOUNT, SES_PROVIDER, SES_STATUS, SES_PHONE, SES_PRIMARY, SES_ACTIVE,
    SES_GATEWAY, SES_CONNECTED, SES_DISCONNECTED, SES_DISCONNECT_REASON, SES_CREATED, SES_SYNC
};

/* The one path segment after prefix, or NULL when url has none or more. */
static const char *segment_after(const char *url, const char *prefix)
{
    size_t len;
    return ing_crm_path_segment(url, prefix, "", &len);
}

int ing_crm_is_message_path(const char *url)
{
    return segment_after(url, MESSAGES_PATH) != NULL;
}

int ing_crm_is_session_path(const char *url)
{
    return segment_after(url, SESSIONS_PATH) != NULL;
}

/* ---- one message ---------------------------------------------------------------------- */

void ing_crm_read_message(ing_crm_request *rq, const char *body, size_t len)
{
    (void)body;
    (void)len;
    const char *id = segment_after(ing_crm_request_path(rq), MESSAGES_PATH);
    bz_error err;
    PGresult *res = NULL;
    bz_status st = BZ_OK;
    if (!id || !bz_uuid_is_valid(id))
        st = bz_reject(&err, "invalid_field",
                       "field message_id: a message id is a UUID, as a send's 202 names it");
    if (st == BZ_OK)
        st = ing_crm_lookup(rq, "look up the message", SQL_MESSAGE, id, &res, &err);
    if (st == BZ_OK && !res)
        st = ing_crm_not_found(&err, "unknown_message", "message_id", rq->workspace_id);
    ing_crm_answer_first_row(rq, st, res, ing_crm_message_doc, &err);
    PQclear(res);
}

/* ---- sessions ------------------------------------------------------------------------- */

static json_t *session_doc(const PGresult *res, int row)
{
    return json_pack("{s:s,s:I,s:s,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}",
                     "session_id", PQgetvalue(res, row, SES_ID),
                     "whatsapp_account_id", (json_int_t)bz_pg_get_int64(res, row, SES_ACCOUNT),
                     "provider", PQgetvalue(res, row, SES_PROVIDER),
                     "status", PQgetvalue(res, row, SES_STATUS),
                     "phone_number", ing_crm_text_or_null(res, row, SES_PHONE),
                     "is_primary", ing_crm_flag(res, row, SES_PRIMARY),
                     "is_active", ing_crm_flag(res, row, SES_ACTIVE),
                     "gateway_id", ing_crm_text_or_null(res, row, SES_GATEWAY),
                     "last_connected_at", ing_crm_time_or_null(res, row, SES_CONNECTED),
                     "disconnected_at", ing_crm_time_or_null(res, row, SES_DISCONNECTED),
                     "disconnect_reason", ing_crm_text_or_null(res, row, SES_DISCONNECT_REASON),
                     "created_at", ing_crm_time_or_null(res, row, SES_CREATED),
                     "history_sync", ing_crm_flag(res, row, SES_SYNC));
}

/* The workspace's sessions (session_id "" for all) into *res. The list is
 * prepared; one session is planned for its id, the only plan that takes
 * the session id's unique index. */
static bz_status read_sessions(ing_crm_request *rq, const char *session_id, PGresult **res,
                               bz_error *err)
{
    char ws[24];
    snprintf(ws, sizeof ws, "%" PRId64, rq->workspace_id);
    const char *params[] = {ws, session_id};
    if (session_id && *session_id)
        return bz_pg_exec_params(rq->pg, "read the session", SQL_SESSIONS, 2, params, res, err);
    return bz_pg_exec_named(rq->pg, "read the workspace's sessions", "sessions", SQL_SESSIONS, 2,
                            params, res, err);
}

void ing_crm_read_sessions(ing_crm_request *rq, const char *body, size_t len)
{
    (void)body;
    (void)len;
    bz_error err;
    PGresult *res = NULL;
    if (read_sessions(rq, "", &res, &err) != BZ_OK) {
        ing_crm_refuse(rq, &err);
        return;
    }
    json_t *list = json_array();
    for (int row = 0; list && row < PQntuples(res); row++)
        if (json_array_append_new(list, session_doc(res, row)) != 0) {
            json_decref(list);
            list = NULL;
        }
    PQclear(res);
    ing_crm_reply_doc(rq, 200, list ? json_pack("{s:o}", "sessions", list) : NULL);
}

void ing_crm_read_session(ing_crm_request *rq, const char *body, size_t len)
{
    (void)body;
    (void)len;
    const char *id = segment_after(ing_crm_request_path(rq), SESSIONS_PATH);
    bz_error err;
    PGresult *res = NULL;
    bz_status st = bz_session_id_check("session_id", id ? id : "", &err);
    if (st == BZ_OK)
        st = read_sessions(rq, id, &res, &err);
    if (st == BZ_OK && PQntuples(res) == 0)
        st = ing_crm_not_found(&err, "unknown_session", "session_id", rq->workspace_id);
    ing_crm_answer_first_row(rq, st, res, session_doc, &err);
    PQclear(res);
}
