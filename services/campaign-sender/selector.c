/*
 * selector.c - account selection in one indexed query (see selector.h): the
 * preference order is the ORDER BY, so PostgreSQL returns the winner.
 */
#include "selector.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blazz/v1/common.pb-c.h"
#include "pg/pg.h"

#define SQL_SELECT_ACCOUNT                                                                       \
    "SELECT id, session_id, provider_type, coalesce(assigned_instance_index, -1), "              \
    "coalesce(assigned_instance_url, ''), metadata::text FROM whatsapp_accounts "                \
    "WHERE workspace_id = $1 AND status = 'connected' AND is_active AND deleted_at IS NULL "     \
    "AND ($4::bigint = 0 OR id = $4::bigint) "                                                   \
    "ORDER BY (id = $2::bigint) DESC, (id = $3::bigint) DESC, is_primary DESC, "                 \
    "health_score DESC, id LIMIT 1"

bz_status cmp_select_account(PGconn *conn, int64_t workspace_id, int64_t preferred_id,
                             int64_t sticky_id, int64_t only_id, cmp_account *out, int *found,
                             bz_error *err)
{
    char w[24], p[24], s[24], o[24];
    snprintf(w, sizeof w, "%" PRId64, workspace_id);
    snprintf(p, sizeof p, "%" PRId64, preferred_id);
    snprintf(s, sizeof s, "%" PRId64, sticky_id);
    snprintf(o, sizeof o, "%" PRId64, only_id);
    const char *params[] = {w, p, s, o};
    PGresult *res = PQexecParams(conn, SQL_SELECT_ACCOUNT, 4, NULL, params, NULL, NULL, 0);
    bz_status st = bz_pg_check(conn, res, "select sending account", err);
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
    return st == BZ_OK ? st : bz_wrap(err, "workspace %" PRId64, workspace_id);
}

void cmp_account_clear(cmp_account *a)
{
    free(a->metadata_json);
    a->metadata_json = NULL;
}
