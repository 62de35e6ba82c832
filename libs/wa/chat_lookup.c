/*
 * chat_lookup.c - one message of a conversation by message id (see
 * chat_lookup.h).
 */
#include "wa/chat_lookup.h"

#include <inttypes.h>
#include <stdio.h>

#include "pg/pg.h"

#define SQL_MESSAGE_TIME                                                                          \
    "SELECT (extract(epoch FROM created_at) * 1000)::bigint FROM chats "                          \
    "WHERE whatsapp_account_id = ANY(ARRAY(SELECT id FROM whatsapp_accounts "                     \
    "WHERE workspace_id = $1)) AND wam_id = $2 "                                                  \
    "AND (contact_id = nullif($3::bigint, 0) OR group_id = nullif($4::bigint, 0)) "               \
    "ORDER BY created_at DESC LIMIT 1"

bz_status bz_chat_message_time(PGconn *conn, int64_t workspace_id, int64_t contact_id,
                               int64_t group_id, const char *wam_id, int64_t *created_ms,
                               int *found, bz_error *err)
{
    char ws[24], contact[24], group[24];
    snprintf(ws, sizeof ws, "%" PRId64, workspace_id);
    snprintf(contact, sizeof contact, "%" PRId64, contact_id);
    snprintf(group, sizeof group, "%" PRId64, group_id);
    const char *params[] = {ws, wam_id, contact, group};
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(conn, "find the message read up to", SQL_MESSAGE_TIME, 4,
                                     params, &res, err);
    *found = st == BZ_OK && PQntuples(res) == 1;
    if (*found)
        *created_ms = bz_pg_get_int64(res, 0, 0);
    PQclear(res);
    return st;
}
