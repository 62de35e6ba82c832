/*
 * crm_calls.c - a contact's WhatsApp calls over the CRM's HTTP API (issue
 * 53: a CRM shows calls in the conversation; crm_calls.h).
 *
 * A call is no message: chat-sync keeps Meta's calls in `calls` (migration
 * 0060), never in chats, so a conversation's messages do not hold them.
 * The CRM reads them as a list of their own beside the messages, each
 * list with its own cursor, and shows the two by created_at. They are read
 * as read_contract.sql's contact_calls reads them, newest first along
 * calls_contact_idx (workspace_id, contact_id, created_at DESC, id DESC),
 * a keyset page at a time, by the code that pages a conversation
 * (crm_contacts.h's contact list): the contact and its page in one
 * statement, the same limit, cursor and refusals. ingest's role reads the
 * columns answered here and no more (migration 0062).
 *
 * A call's row is made by Meta's first webhook of it and completed by the
 * later ones, so a page read again may show a call further on (its
 * status, end, length) but never moves it: created_at does not change.
 */
#include "crm/crm_calls.h"

#include <jansson.h>
#include <libpq-fe.h>

#include "crm/crm_contacts.h"
#include "crm/crm_rows.h"

#define CALLS_SUFFIX "/calls"

/* contact_calls' columns in its order, times as epoch milliseconds; then
 * the contact and the cursor's time (its id is the first). */
#define CALL_COLUMNS                                                                             \
    "id, uuid::text, meta_call_id, direction, status, " ING_CRM_MS("connected_at") ", "          \
    ING_CRM_MS("started_at") ", " ING_CRM_MS("ended_at") ", " ING_CRM_MS("terminated_at") ", "  \
    "duration_s, error_code, error_message, whatsapp_account_id, " ING_CRM_MS("created_at")     \
    ", contact_id, " ING_CRM_US("created_at")
enum {
    CALL_ID, CALL_UUID, CALL_META_ID, CALL_DIRECTION, CALL_STATUS, CALL_CONNECTED, CALL_STARTED,
    CALL_ENDED, CALL_TERMINATED, CALL_DURATION, CALL_ERROR_CODE, CALL_ERROR_MESSAGE, CALL_ACCOUNT,
    CALL_CREATED, CALL_CONTACT, CALL_CREATED_US
};

#define SQL_CALLS(key)                                                                           \
    ING_CRM_CONTACT_PAGE_SQL(CALL_COLUMNS,                                                       \
                             "calls WHERE workspace_id = $1 AND contact_id = c.id", key)

int ing_crm_is_contact_calls_path(const char *url)
{
    return ing_crm_is_contact_list_path(url, CALLS_SUFFIX);
}

/* A call as the call.updated webhook tells of it (EVENTS.md: id and uuid
 * the row's, call_id Meta's), with when the row was made; what Meta has
 * not said yet is null. */
static json_t *call_doc(const PGresult *res, int row)
{
    return json_pack("{s:o,s:s,s:s,s:o,s:o,s:o,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}",
                     "id", ing_crm_id_or_null(res, row, CALL_ID),
                     "uuid", PQgetvalue(res, row, CALL_UUID),
                     "call_id", PQgetvalue(res, row, CALL_META_ID),
                     "contact_id", ing_crm_id_or_null(res, row, CALL_CONTACT),
                     "whatsapp_account_id", ing_crm_id_or_null(res, row, CALL_ACCOUNT),
                     "direction", ing_crm_text_or_null(res, row, CALL_DIRECTION),
                     "status", PQgetvalue(res, row, CALL_STATUS),
                     "connected_at", ing_crm_time_or_null(res, row, CALL_CONNECTED),
                     "started_at", ing_crm_time_or_null(res, row, CALL_STARTED),
                     "ended_at", ing_crm_time_or_null(res, row, CALL_ENDED),
                     "terminated_at", ing_crm_time_or_null(res, row, CALL_TERMINATED),
                     "duration_s", ing_crm_id_or_null(res, row, CALL_DURATION),
                     "error_code", ing_crm_text_or_null(res, row, CALL_ERROR_CODE),
                     "error_message", ing_crm_text_or_null(res, row, CALL_ERROR_MESSAGE),
                     "created_at", ing_crm_time_or_null(res, row, CALL_CREATED));
}

void ing_crm_read_contact_calls(ing_crm_request *rq, const char *body, size_t len)
{
    (void)body;
    (void)len;
    static const ing_crm_owned_list calls = {
        .owner = &ing_crm_contact_owner,
        .suffix = CALLS_SUFFIX,
        .name = "calls",
        .what = "read the contact's calls",
        .sql_by_uuid = SQL_CALLS("uuid = $2::uuid"),
        .sql_by_id = SQL_CALLS("id = $2::bigint"),
        .statement = "contact_calls",
        .doc_of = call_doc,
        .us_col = CALL_CREATED_US,
        .id_col = CALL_ID,
    };
    ing_crm_read_owned_list(rq, &calls);
}
