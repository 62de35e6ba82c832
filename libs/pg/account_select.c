/*
 * account_select.c - account selection in one indexed query (see
 * account_select.h): the preference order is the ORDER BY, so PostgreSQL
 * returns the winner. The conversation's last account comes from
 * chats_contact_created_idx / chats_group_created_idx (newest first).
 */
#include "pg/account_select.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blazz/v1/common.pb-c.h"
#include "pg/pg.h"

#define LAST_ACCOUNT_OF(col, param)                                                              \
    "(SELECT c.whatsapp_account_id FROM chats c WHERE c." col " = " param " AND "               \
    "c.whatsapp_account_id IS NOT NULL ORDER BY c.created_at DESC LIMIT 1)"

#define SQL_SELECT_ACCOUNT                                                                       \
    "SELECT id, session_id, provider_type, coalesce(assigned_instance_index, -1), "              \
    "coalesce(assigned_instance_url, ''), metadata::text FROM whatsapp_accounts "                \
    "WHERE workspace_id = $1 AND status = 'connected' AND is_active AND deleted_at IS NULL "     \
    "AND ($4::bigint = 0 OR id = $4::bigint) "                                                   \
    "ORDER BY (id = $2::bigint) DESC, (id = coalesce(nullif($3::bigint, 0), "                    \
    LAST_ACCOUNT_OF("contact_id", "$5::bigint") ", " LAST_ACCOUNT_OF("group_id", "$6::bigint")    \
    ")) IS TRUE DESC, is_primary DESC, health_score DESC, id LIMIT 1"

bz_status bz_account_select(PGconn *conn, const bz_account_query *q, bz_account *out, int *found,
                            bz_error *err)
{
    char v[6][24];
    const int64_t ids[6] = {q->workspace_id, q->preferred_id, q->sticky_id,
                            q->only_id,      q->contact_id,   q->group_id};
    const char *params[6];
    for (int i = 0; i < 6; i++) {
        snprintf(v[i], sizeof v[i], "%" PRId64, ids[i]);
        params[i] = v[i];
    }
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(conn, "select sending account", SQL_SELECT_ACCOUNT, 6, params,
                                     &res, err);
    *found = 0;
    if (st == BZ_OK && PQntuples(res) == 1) {
        memset(out, 0, sizeof *out);
        out->id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        snprintf(out->session_id, sizeof out->session_id, "%s", PQgetvalue(res, 0, 1));
        out->provider = strcmp(PQgetvalue(res, 0, 2), "meta") == 0
                            ? BLAZZ__V1__PROVIDER__PROVIDER_META
                            : BLAZZ__V1__PROVIDER__PROVIDER_WEBJS;
        out->instance_index = (int)bz_pg_get_int64(res, 0, 3);
        snprintf(out->instance_url, sizeof out->instance_url, "%s", PQgetvalue(res, 0, 4));
        out->metadata_json = strdup(PQgetvalue(res, 0, 5));
        if (!out->metadata_json)
            st = bz_fail(err, BZ_ERR_NOMEM, "select sending account: out of memory");
        else
            *found = 1;
    }
    PQclear(res);
    return st == BZ_OK ? st : bz_wrap(err, "workspace %" PRId64, q->workspace_id);
}

void bz_account_clear(bz_account *a)
{
    free(a->metadata_json);
    a->metadata_json = NULL;
}
