/*
 * crm_conversations.c - the CRM's inbox over HTTP (issue 54: conversations
 * over HTTP; crm_conversations.h).
 *
 * The inbox is read_contract.sql's: crm_inbox_of (migration 0075) pages the
 * workspace's conversations, contacts and groups, by their latest message,
 * newest first, contacts before groups at one time, then id descending,
 * each with its latest message and unread count, along the inbox indexes
 * (by session: the account ones). The function takes the workspace from
 * the API key here, since ingest's pooled connections serve every
 * workspace and bypass row level security.
 *
 * A page's cursor is crm_page.h's (a time and a number) with the kind
 * folded into the number: a contact's id plus 10^17, a group's as it is.
 * Descending, that number orders contacts before groups at one time and
 * each kind by id, the inbox's own order, so the cursor stays the opaque
 * c1_<µs>_<n> every list answers, its number at most 18 digits as
 * openapi.yaml's PageCursor states. Identity ids stay far below 10^17.
 */
#include "crm/crm_conversations.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <string.h>

#include "crm/crm_rows.h"
#include "pg/pg.h"

#define CONVERSATIONS_PATH "/v1/conversations"
#define CONTACT_FOLD "100000000000000000" /* 10^17 */

#define CONVERSATION_COLUMNS                                                                     \
    "kind, id, uuid::text, name, " ING_CRM_E164_OR_NULL("phone") ", "                            \
    "participants_count, whatsapp_account_id, unread_messages, " ING_CRM_MS("latest_at") ", "    \
    "last_message_uuid::text, last_message_direction, NULLIF(last_message_body, ''), "           \
    "last_message_type, last_message_status, provider_type, " ING_CRM_US("latest_at") ", "       \
    "CASE WHEN kind = 'contact' THEN id + " CONTACT_FOLD " ELSE id END"
enum {
    CV_KIND, CV_ID, CV_UUID, CV_NAME, CV_PHONE, CV_PARTICIPANTS, CV_ACCOUNT, CV_UNREAD,
    CV_LATEST, CV_LAST_UUID, CV_LAST_DIRECTION, CV_LAST_BODY, CV_LAST_TYPE, CV_LAST_STATUS,
    CV_PROVIDER, CV_CURSOR_US, CV_CURSOR_NUMBER
};

/* The workspace's ($1) conversations after the cursor ($2 latest_at in
 * microseconds, NULL for the first page; $3 its folded number), $4 of
 * them, of the session $5 (NULL: every session). */
#define SQL_CONVERSATIONS                                                                        \
    "SELECT " CONVERSATION_COLUMNS " FROM crm_inbox_of($1::bigint, $5::bigint, "                 \
    ING_CRM_CURSOR_TIME("2", "infinity") ", "                                                    \
    "CASE WHEN $3::bigint >= " CONTACT_FOLD " THEN 'contact' ELSE 'group' END, "                 \
    "CASE WHEN $3::bigint >= " CONTACT_FOLD " THEN $3::bigint - " CONTACT_FOLD                   \
    " ELSE $3::bigint END, $4::integer)"

int ing_crm_is_conversations_path(const char *url)
{
    return strcmp(url, CONVERSATIONS_PATH) == 0;
}

/* The conversation's latest message, null when it has none but reactions. */
static json_t *last_message_doc(const PGresult *res, int row)
{
    if (PQgetisnull(res, row, CV_LAST_UUID))
        return json_null();
    return json_pack("{s:s,s:o,s:o,s:o,s:o,s:o}",
                     "message_id", PQgetvalue(res, row, CV_LAST_UUID),
                     "direction", ing_crm_text_or_null(res, row, CV_LAST_DIRECTION),
                     "message_type", ing_crm_text_or_null(res, row, CV_LAST_TYPE),
                     "status", ing_crm_text_or_null(res, row, CV_LAST_STATUS),
                     "provider", ing_crm_text_or_null(res, row, CV_PROVIDER),
                     "body", ing_crm_text_or_null(res, row, CV_LAST_BODY));
}

/* A conversation as the inbox shows it: a contact's (contact_id, phone) or
 * a group's (group_id, participants_count), the other's members null. */
static json_t *conversation_doc(const PGresult *res, int row)
{
    int is_contact = strcmp(PQgetvalue(res, row, CV_KIND), "contact") == 0;
    json_t *id = ing_crm_id_or_null(res, row, CV_ID);
    return json_pack("{s:s,s:o,s:o,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o}",
                     "kind", PQgetvalue(res, row, CV_KIND),
                     "contact_id", is_contact ? id : json_null(),
                     "group_id", is_contact ? json_null() : id,
                     "uuid", PQgetvalue(res, row, CV_UUID),
                     "name", ing_crm_text_or_null(res, row, CV_NAME),
                     "phone", ing_crm_text_or_null(res, row, CV_PHONE),
                     "participants_count", ing_crm_id_or_null(res, row, CV_PARTICIPANTS),
                     "whatsapp_account_id", ing_crm_id_or_null(res, row, CV_ACCOUNT),
                     "unread_messages", ing_crm_id_or_null(res, row, CV_UNREAD),
                     "latest_at", ing_crm_time_or_null(res, row, CV_LATEST),
                     "last_message", last_message_doc(res, row));
}

/* ?whatsapp_account_id= into out (cap bytes; "" for every session); 400
 * naming it when it is no positive integer. */
static bz_status read_session_filter(const ing_crm_request *rq, char *out, size_t cap,
                                     bz_error *err)
{
    const char *asked = ing_crm_request_arg(rq, "whatsapp_account_id", NULL);
    out[0] = '\0';
    if (!asked)
        return BZ_OK;
    if (!ing_crm_is_positive_id(asked) || strlen(asked) >= cap)
        return bz_reject(err, "invalid_field",
                         "field whatsapp_account_id: a session is its whatsapp_account_id "
                         "(a positive integer)");
    memcpy(out, asked, strlen(asked) + 1);
    return BZ_OK;
}

void ing_crm_read_conversations(ing_crm_request *rq, const char *body, size_t len)
{
    (void)body;
    (void)len;
    char account[24];
    ing_crm_page_args p = {0};
    bz_error err;
    PGresult *res = NULL;
    bz_status st = read_session_filter(rq, account, sizeof account, &err);
    if (st == BZ_OK)
        st = ing_crm_page_args_read(rq, &p, &err);
    if (st == BZ_OK) {
        const char *params[] = {p.ws, p.has_cursor ? p.at : NULL, p.id, p.rows,
                                account[0] ? account : NULL};
        st = bz_pg_exec_named(rq->pg, "read the workspace's conversations", "conversations",
                              SQL_CONVERSATIONS, 5, params, &res, &err);
    }
    if (st == BZ_OK)
        ing_crm_reply_doc(rq, 200, ing_crm_page_doc(res, PQntuples(res), p.limit,
                                                    "conversations", conversation_doc,
                                                    CV_CURSOR_US, CV_CURSOR_NUMBER));
    else
        ing_crm_refuse(rq, &err);
    PQclear(res);
}
