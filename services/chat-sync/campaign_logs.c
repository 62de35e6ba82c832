/*
 * campaign_logs.c - the campaign logs a batch's receipts and sends point
 * at, by client reference or by wamid (see chat_sync.h). Read without
 * locks: chat-sync never writes them.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "chat_sync.h"
#include "core/uuid.h"
#include "load_columns.h"
#include "pg/columns.h"

#define SQL_CAMPAIGN_LOGS                                                                         \
    "SELECT id, uuid::text, campaign_id, contact_id, workspace_id, coalesce(wam_id, '') "         \
    "FROM campaign_logs WHERE uuid = ANY($1::uuid[]) "                                            \
    "UNION SELECT l.id, l.uuid::text, l.campaign_id, l.contact_id, l.workspace_id, l.wam_id "     \
    "FROM campaign_logs l JOIN unnest($2::bigint[], $3::text[]) AS k(ws, wam) "                   \
    "ON l.wam_id = k.wam AND l.workspace_id = k.ws"

static bz_status parse_log(cs_batch *b, const PGresult *res, int i, bz_error *err)
{
    cs_campaign_log *l = cs_arena_alloc(&b->arena, sizeof *l);
    if (!l)
        return oom(err, "load campaign logs");
    l->id = col_int(res, i, 0);
    col_uuid(res, i, 1, l->uuid);
    l->campaign_id = col_int(res, i, 2);
    l->contact_id = col_int(res, i, 3);
    l->workspace_id = col_int(res, i, 4);
    l->wam_id = col_text(b, res, i, 5);
    char *uk = cs_arena_printf(&b->arena, "%s", l->uuid);
    if (!uk || !l->wam_id || cs_map_put(&b->logs_by_uuid, uk, l))
        return oom(err, "load campaign logs");
    if (*l->wam_id) {
        char *wk = cs_arena_printf(&b->arena, "%" PRId64 ":%s", l->workspace_id, l->wam_id);
        if (!wk || cs_map_put(&b->logs_by_wam, wk, l))
            return oom(err, "load campaign logs");
    }
    return BZ_OK;
}

bz_status cs_load_campaign_logs(cs_batch *b, PGconn *conn, int from_chats, bz_error *err)
{
    bz_pg_array a[3];
    bz_pg_array_init_all(a, 3);
    for (size_t i = 0; !from_chats && i < b->campaign_refs.n; i++)
        bz_pg_array_text(&a[0], b->campaign_refs.items[i]);
    for (size_t i = 0; from_chats && i < b->chat_list.n; i++) {
        const cs_chat *c = b->chat_list.items[i];
        if (c->inserted_ord < 0 && bz_uuid_is_valid(c->client_reference) &&
            !cs_map_get(&b->logs_by_uuid, c->client_reference))
            bz_pg_array_text(&a[0], c->client_reference);
    }
    for (size_t i = 0; !from_chats && i < b->nrecs; i++) {
        const Blazz__V1__SyncCommand *cmd = b->recs[i].cmd;
        if (cmd->command_case != BLAZZ__V1__SYNC_COMMAND__COMMAND_RECEIPT)
            continue;
        bz_pg_array_int64(&a[1], cmd->envelope->workspace_id);
        bz_pg_array_text(&a[2], cmd->receipt->wam_id);
    }
    for (size_t i = 0; from_chats && i < b->unparked_recs.n; i++) {
        const Blazz__V1__SyncCommand *cmd = ((const cs_record *)b->unparked_recs.items[i])->cmd;
        if (bz_uuid_is_valid(cmd->receipt->client_reference))
            bz_pg_array_text(&a[0], cmd->receipt->client_reference);
        bz_pg_array_int64(&a[1], cmd->envelope->workspace_id);
        bz_pg_array_text(&a[2], cmd->receipt->wam_id);
    }
    bz_status st = BZ_OK;
    if (a[0].n > 0 || a[1].n > 0) {
        PGresult *res = NULL;
        st = bz_pg_arrays_exec(conn, "find campaign logs", SQL_CAMPAIGN_LOGS, a, 3, &res, err);
        for (int i = 0; st == BZ_OK && i < PQntuples(res); i++)
            st = parse_log(b, res, i, err);
        PQclear(res);
    }
    bz_pg_array_free_all(a, 3);
    return st;
}

cs_campaign_log *cs_find_campaign_log(cs_batch *b, int64_t workspace_id,
                                      const char *client_reference, const char *wam_id)
{
    cs_campaign_log *l = NULL;
    if (client_reference && *client_reference)
        l = cs_map_get(&b->logs_by_uuid, client_reference);
    if (!l && wam_id && *wam_id) {
        char k[512];
        snprintf(k, sizeof k, "%" PRId64 ":%s", workspace_id, wam_id);
        l = cs_map_get(&b->logs_by_wam, k);
    }
    return l && l->workspace_id == workspace_id ? l : NULL;
}
