/*
 * crm_rows.h - a row of the CRM's HTTP reads as JSON (crm_reads.c,
 * crm_contacts.c): its columns, null when the backbone has not filled
 * them (never "" or 0), times ISO 8601 in UTC; and a message, the one
 * shape every read of messages answers (GET /v1/messages/{message_id},
 * a conversation's pages), from the columns ING_CRM_MESSAGE_COLUMNS
 * selects out of chats.
 */
#ifndef ING_CRM_ROWS_H
#define ING_CRM_ROWS_H

#include <jansson.h>
#include <libpq-fe.h>

#include "core/status.h"
#include "crm/crm_request.h"

/* Epoch milliseconds of a timestamp column, NULL when it is. */
#define ING_CRM_MS(col) "(extract(epoch FROM " col ") * 1000)::bigint"

/* A message's columns of chats, in the order ing_crm_message_doc reads
 * them from column 0; ING_CRM_MESSAGE_COLUMN_COUNT of them. */
#define ING_CRM_MESSAGE_COLUMNS                                                                  \
    "uuid::text, message_status, type, chat_type, provider_type, "                               \
    "metadata->>'message_type', wam_id, whatsapp_account_id, contact_id, group_id, user_id, "    \
    "metadata->>'error_code', metadata->>'error_message', " ING_CRM_MS("created_at") ", "        \
    ING_CRM_MS("sent_at") ", " ING_CRM_MS("delivered_at") ", " ING_CRM_MS("read_at")
#define ING_CRM_MESSAGE_COLUMN_COUNT 17

/* The column as a string, an integer, a time, a boolean; null when NULL
 * (a boolean column is never NULL). */
json_t *ing_crm_text_or_null(const PGresult *res, int row, int col);
json_t *ing_crm_id_or_null(const PGresult *res, int row, int col);
json_t *ing_crm_time_or_null(const PGresult *res, int row, int col);
json_t *ing_crm_flag(const PGresult *res, int row, int col);

/* The message of res's row (ING_CRM_MESSAGE_COLUMNS from column 0). */
json_t *ing_crm_message_doc(const PGresult *res, int row);

/* 200 with the document of res's first row when st is BZ_OK, err's
 * refusal else. */
void ing_crm_answer_first_row(ing_crm_request *rq, bz_status st, const PGresult *res,
                              json_t *(*doc_of)(const PGresult *res, int row),
                              const bz_error *err);

#endif
