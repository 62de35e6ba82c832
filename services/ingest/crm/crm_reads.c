/*
 * crm_reads.c - the CRM's reads over HTTP, on a worker (crm_reads.h).
 *
 * Each read is one indexed statement on the worker's pooled connection,
 * scoped to the key's workspace: a message by its id (chats.uuid, the
 * message_id a send's 202 names), sessions by the workspace (a keyset
 * page, crm_page.h, oldest first) and by id. A
 * row of another workspace is answered exactly as a row that does not
 * exist. Times are ISO 8601 in UTC, null when not reached yet; a column
 * the backbone has not filled is null, never "" or 0. A send accepted
 * (202) is a message only once chat-sync has applied its command, usually
 * within milliseconds: until then it is 404 unknown_message.
 */
#include "crm/crm_reads.h"

#include <jansson.h>

#include "core/uuid.h"
#include "crm/crm_rows.h"
#include "pg/pg.h"
#include "wa/crm_command.h"

#define MESSAGES_PATH "/v1/messages/"
#define SESSIONS_PATH "/v1/sessions/"

#define SQL_MESSAGE                                                                              \
    "SELECT " ING_CRM_MESSAGE_COLUMNS " FROM chats "                                             \
    "WHERE workspace_id = $1 AND uuid = $2::uuid AND deleted_at IS NULL"

/* A session's columns, then its keyset (created_at, id). */
#define SESSION_COLUMNS                                                                          \
    "session_id, id, provider_type, status, phone_number, is_primary, is_active, "               \
    "gateway_id, " ING_CRM_MS("last_connected_at") ", " ING_CRM_MS("disconnected_at") ", "        \
    "disconnect_reason, " ING_CRM_MS("created_at") ", sync_enabled, " ING_CRM_US("created_at")  \
    ", id"
enum {
    SES_ID, SES_ACCOUNT, SES_PROVIDER, SES_STATUS, SES_PHONE, SES_PRIMARY, SES_ACTIVE,
    SES_GATEWAY, SES_CONNECTED, SES_DISCONNECTED, SES_DISCONNECT_REASON, SES_CREATED, SES_SYNC,
    SES_CURSOR_US, SES_CURSOR_ID
};

/* A list of sessions asked for without ?limit=: every one up to 1,000 in
 * one page, as the answer was before it was paged (v0.47.0), so that a
 * client that reads no next_cursor still sees them all. */
#define SESSIONS_UNPAGED 1000

/* The workspace's ($1) live session of id $2. */
#define SQL_SESSION                                                                              \
    "SELECT " SESSION_COLUMNS " FROM whatsapp_accounts WHERE workspace_id = $1 "                 \
    "AND session_id = $2 AND deleted_at IS NULL"

/* The workspace's ($1) live sessions in every state after the cursor ($2
 * created_at in microseconds, NULL for the first page; $3 id), oldest
 * first, $4 of them. */
#define SQL_SESSIONS                                                                             \
    "SELECT " SESSION_COLUMNS " FROM whatsapp_accounts WHERE workspace_id = $1 "                 \
    "AND deleted_at IS NULL "                                                                    \
    "AND (created_at, id) > (" ING_CRM_CURSOR_TIME("2", "-infinity") ", $3::bigint) "            \
    "ORDER BY created_at, id LIMIT $4"

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

void ing_crm_read_sessions(ing_crm_request *rq, const char *body, size_t len)
{
    (void)body;
    (void)len;
    ing_crm_answer_workspace_page(rq, "read the workspace's sessions", "sessions", SQL_SESSIONS,
                                  "sessions", session_doc, SES_CURSOR_US, SES_CURSOR_ID,
                                  SESSIONS_UNPAGED);
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
        st = ing_crm_lookup(rq, "read the session", SQL_SESSION, id, &res, &err);
    if (st == BZ_OK && !res)
        st = ing_crm_not_found(&err, "unknown_session", "session_id", rq->workspace_id);
    ing_crm_answer_first_row(rq, st, res, session_doc, &err);
    PQclear(res);
}
