/*
 * session_rows.c - the whatsapp_accounts rows that session commands,
 * heartbeats and the assignment sweep read and change (ARCHITECTURE.md
 * §15), in the cs_account shape the events are made from, and the wake-up
 * of the sweep.
 *
 * These statements lock or update one row at a time outside the batch
 * model (plan, load, simulate, write): their work is a few rows per record,
 * and the locks they take (FOR UPDATE) serialize them with batches that
 * touch the same accounts.
 */
#include <string.h>

#include "chat_sync.h"

static char *text_at(cs_batch *b, const PGresult *res, int row, int col)
{
    return cs_arena_strdup(&b->arena, PQgetvalue(res, row, col));
}

cs_account *cs_managed_account_parse(cs_batch *b, const PGresult *res, int row)
{
    cs_account *a = cs_arena_alloc(&b->arena, sizeof *a);
    if (!a)
        return NULL;
    memset(a, 0, sizeof *a);
    a->id = bz_pg_get_int64(res, row, 0);
    a->workspace_id = bz_pg_get_int64(res, row, 1);
    snprintf(a->uuid, sizeof a->uuid, "%s", PQgetvalue(res, row, 2));
    a->session_id = text_at(b, res, row, 3);
    a->status = cs_session_from_text(PQgetvalue(res, row, 4));
    a->has_instance = !PQgetisnull(res, row, 5);
    a->instance_index = (int)bz_pg_get_int64(res, row, 5);
    a->instance_url = text_at(b, res, row, 6);
    a->has_previous_instance = !PQgetisnull(res, row, 7);
    a->previous_instance_index = (int)bz_pg_get_int64(res, row, 7);
    a->migration_count = (int)bz_pg_get_int64(res, row, 8);
    a->epoch = bz_pg_get_int64(res, row, 9);
    a->gateway_id = text_at(b, res, row, 10);
    a->phone_number = text_at(b, res, row, 11);
    a->health_score = (int)bz_pg_get_int64(res, row, 12);
    a->is_primary = strcmp(PQgetvalue(res, row, 13), "t") == 0;
    a->logged_out = strcmp(PQgetvalue(res, row, 14), "t") == 0;
    a->session_storage = text_at(b, res, row, 15);
    a->sync_enabled = strcmp(PQgetvalue(res, row, 16), "t") == 0;
    a->session_file_size = -1;
    if (!a->session_id || !a->instance_url || !a->gateway_id || !a->phone_number ||
        !a->session_storage)
        return NULL;
    return a;
}

bz_status cs_sessions_notify(PGconn *conn, bz_error *err)
{
    return bz_pg_exec_params(conn, "wake the assignment sweep",
                             "SELECT pg_notify('" CS_SESSIONS_CHANNEL "', '')", 0, NULL, NULL,
                             err);
}
