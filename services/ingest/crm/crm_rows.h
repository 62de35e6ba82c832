/*
 * crm_rows.h - a row of the CRM's HTTP reads as JSON (crm_reads.c,
 * crm_contacts.c, crm_webhooks.c): its columns, null when the backbone
 * has not filled them (never "" or 0), times ISO 8601 in UTC; a message,
 * the one shape every read of messages answers (GET /v1/messages/
 * {message_id}, a conversation's pages), from the columns
 * ING_CRM_MESSAGE_COLUMNS selects out of chats; and a keyset page of
 * rows with its next cursor (crm_page.h), its arguments, and a page of
 * the key's workspace answered whole (its endpoints, its API keys).
 */
#ifndef ING_CRM_ROWS_H
#define ING_CRM_ROWS_H

#include <jansson.h>
#include <libpq-fe.h>

#include "core/status.h"
#include "crm/crm_page.h"
#include "crm/crm_request.h"

/* Epoch milliseconds of a timestamp column, NULL when it is. */
#define ING_CRM_MS(col) "(extract(epoch FROM " col ") * 1000)::bigint"
/* Epoch microseconds, exact as PostgreSQL stores them: a keyset cursor's
 * time (crm_page.h). */
#define ING_CRM_US(col) "(extract(epoch FROM " col ") * 1000000)::bigint"

/* A message's columns of chats, in the order ing_crm_message_doc reads
 * them from column 0; ING_CRM_MESSAGE_COLUMN_COUNT of them. Its media is
 * the metadata's, and its bytes the chat_media row chats.media_id links
 * (an agent's upload, a gateway's, Meta's once fetched); in a group, its
 * author is the sender's; the ad a customer came from and the answer to a
 * button, list or flow are the metadata's objects. */
#define ING_CRM_MESSAGE_COLUMNS                                                                  \
    "uuid::text, message_status, type, chat_type, provider_type, "                               \
    "metadata->>'message_type', wam_id, whatsapp_account_id, contact_id, group_id, user_id, "    \
    "metadata->>'error_code', metadata->>'error_message', " ING_CRM_MS("created_at") ", "        \
    ING_CRM_MS("sent_at") ", " ING_CRM_MS("delivered_at") ", " ING_CRM_MS("read_at") ", "        \
    "NULLIF(metadata->>'body', ''), metadata->'media', "                                        \
    "(SELECT uuid::text FROM chat_media WHERE id = chats.media_id), "                            \
    "NULLIF(metadata->>'sender_phone', ''), NULLIF(metadata->>'sender_name', ''), "              \
    "NULLIF(metadata->>'sender_bsuid', ''), metadata->'referral', metadata->'interactive_reply'"
#define ING_CRM_MESSAGE_COLUMN_COUNT 25
/* A page of messages: each message's columns, then its keyset, created_at
 * (ING_CRM_US) and id, at ING_CRM_MESSAGE_COLUMN_COUNT and the next. */
#define ING_CRM_MESSAGE_PAGE_COLUMNS                                                             \
    ING_CRM_MESSAGE_COLUMNS ", " ING_CRM_US("created_at") ", id"
/* A contact's phone column when it is one (E.164), else NULL: the column
 * holds a BSUID or LID for a contact known by it alone (decision 0010). */
#define ING_CRM_E164_OR_NULL(col) "CASE WHEN left(" col ", 1) = '+' THEN " col " END"
/* The path of a conversation's messages after its owner's id. */
#define ING_CRM_MESSAGES_SUFFIX "/messages"

/* The column as a string, an integer, a time, a boolean; null when NULL
 * (a boolean column is never NULL). */
json_t *ing_crm_text_or_null(const PGresult *res, int row, int col);
json_t *ing_crm_id_or_null(const PGresult *res, int row, int col);
json_t *ing_crm_time_or_null(const PGresult *res, int row, int col);
json_t *ing_crm_flag(const PGresult *res, int row, int col);

/* The message of res's row (ING_CRM_MESSAGE_COLUMNS from column 0). */
json_t *ing_crm_message_doc(const PGresult *res, int row);

/* The rows of a page read beside its owner (a contact, an endpoint, by a
 * LEFT JOIN LATERAL): none when its one row is the owner's alone, NULLs. */
int ing_crm_page_rows(const PGresult *res);

/* A keyset page as {"<name>": [each row's doc_of], "next_cursor"}: res
 * holds rows rows (limit + 1 were asked for, the last only to tell that
 * more follow), and when more do next_cursor names the last one shown by
 * its columns us_col (ING_CRM_US) and id_col, else it is null. NULL when
 * out of memory. */
json_t *ing_crm_page_doc(const PGresult *res, int rows, int limit, const char *name,
                         json_t *(*doc_of)(const PGresult *res, int row), int us_col,
                         int id_col);

/* What a page of the key's workspace asks for: its size and where it
 * starts (has_cursor 0: at the first row), as statement parameters. */
typedef struct ing_crm_page_args {
    int limit;
    int has_cursor;
    char ws[24], at[24], id[24], rows[16]; /* rows: limit + 1 */
} ing_crm_page_args;

/* ?limit= and ?cursor= of rq into *p, with the key's workspace; 400
 * naming either. Without ?limit= a page holds p->limit rows when the
 * caller set it (> 0), else ING_CRM_PAGE_DEFAULT. */
bz_status ing_crm_page_args_read(const ing_crm_request *rq, ing_crm_page_args *p,
                                 bz_error *err);

/* Answer rq with a page of the key's workspace: sql, run as what (the
 * session's prepared statement named statement), takes
 * ($1 workspace, $2 the cursor's created_at in microseconds or NULL for
 * the first page, $3 its id, $4 rows: limit + 1) and returns rows whose
 * us_col and id_col are their keyset; the answer is ing_crm_page_doc's
 * {"<name>": [...], "next_cursor"}, or the refusal of a bad limit or
 * cursor. A page not given ?limit= holds default_limit rows. */
void ing_crm_answer_workspace_page(ing_crm_request *rq, const char *what,
                                   const char *statement, const char *sql, const char *name,
                                   json_t *(*doc_of)(const PGresult *res, int row), int us_col,
                                   int id_col, int default_limit);

/* 200 with the document of res's first row when st is BZ_OK, err's
 * refusal else. */
void ing_crm_answer_first_row(ing_crm_request *rq, bz_status st, const PGresult *res,
                              json_t *(*doc_of)(const PGresult *res, int row),
                              const bz_error *err);

#endif
