/*
 * account_select.c - account selection in one indexed query (see
 * account_select.h): the preference order is the ORDER BY, so PostgreSQL
 * returns the winner. The conversation's last account comes from
 * chats_contact_created_idx / chats_group_created_idx (newest first).
 */
#include "wa/account_select.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blazz/v1/common.pb-c.h"
#include "pg/columns.h"
#include "pg/pg.h"

#define LAST_ACCOUNT_OF(col, param)                                                              \
    "(SELECT c.whatsapp_account_id FROM chats c WHERE c." col " = " param " AND "               \
    "c.whatsapp_account_id IS NOT NULL ORDER BY c.created_at DESC LIMIT 1)"

/* One row per question that found an account: its ordinal (1-based) and the
 * winner. The questions are the unnest of seven bigint arrays. */
#define SQL_SELECT_ACCOUNTS                                                                      \
    "SELECT q.ord, a.id, a.session_id, a.provider_type, coalesce(a.assigned_instance_index, -1), " \
    "coalesce(a.assigned_instance_url, ''), a.metadata::text "                                   \
    "FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], "         \
    "$6::bigint[], $7::bigint[]) WITH ORDINALITY "                                                \
    "AS q(ws, preferred, sticky, only_id, contact, grp, provider, ord) "                          \
    "CROSS JOIN LATERAL (SELECT * FROM whatsapp_accounts w "                                     \
    "WHERE w.workspace_id = q.ws AND w.status = 'connected' AND w.is_active "                    \
    "AND w.deleted_at IS NULL AND (q.only_id = 0 OR w.id = q.only_id) "                          \
    "AND NOT EXISTS (SELECT 1 FROM meta_credentials mc WHERE mc.whatsapp_account_id = w.id "     \
    "AND mc.status = 'invalid') "                                                                 \
    "ORDER BY (w.id = q.preferred) DESC, "                                                        \
    "(q.provider = 0 OR (w.provider_type = 'meta') = (q.provider = 2)) DESC, "                    \
    "(w.id = coalesce(nullif(q.sticky, 0), "                                                      \
    LAST_ACCOUNT_OF("contact_id", "q.contact") ", " LAST_ACCOUNT_OF("group_id", "q.grp")          \
    ")) IS TRUE DESC, w.is_primary DESC, w.health_score DESC, w.id LIMIT 1) a"

static bz_status parse_account(const PGresult *res, int row, bz_account *out, bz_error *err)
{
    memset(out, 0, sizeof *out);
    out->id = strtoll(PQgetvalue(res, row, 1), NULL, 10);
    snprintf(out->session_id, sizeof out->session_id, "%s", PQgetvalue(res, row, 2));
    out->provider = strcmp(PQgetvalue(res, row, 3), "meta") == 0
                        ? BLAZZ__V1__PROVIDER__PROVIDER_META
                        : BLAZZ__V1__PROVIDER__PROVIDER_WEBJS;
    out->instance_index = (int)bz_pg_get_int64(res, row, 4);
    snprintf(out->instance_url, sizeof out->instance_url, "%s", PQgetvalue(res, row, 5));
    out->metadata_json = strdup(PQgetvalue(res, row, 6));
    return out->metadata_json ? BZ_OK
                              : bz_fail(err, BZ_ERR_NOMEM, "select sending account: out of memory");
}

bz_status bz_account_select_many(PGconn *conn, const bz_account_query *q, size_t n,
                                 bz_account *out, int *found, bz_error *err)
{
    for (size_t i = 0; i < n; i++)
        found[i] = 0;
    if (n == 0)
        return BZ_OK;
    int64_t *col = malloc(n * sizeof *col);
    char *arrays[7] = {0};
    for (int c = 0; col && c < 7; c++) {
        for (size_t i = 0; i < n; i++) {
            const int64_t v[7] = {q[i].workspace_id, q[i].preferred_id, q[i].sticky_id,
                                  q[i].only_id,      q[i].contact_id,   q[i].group_id,
                                  q[i].provider};
            col[i] = v[c];
        }
        arrays[c] = bz_pg_int64_array(col, n);
    }
    free(col);
    bz_status st = BZ_OK;
    for (int c = 0; c < 7; c++)
        if (!arrays[c])
            st = bz_fail(err, BZ_ERR_NOMEM, "select sending account: out of memory");
    PGresult *res = NULL;
    if (st == BZ_OK)
        st = bz_pg_exec_params(conn, "select sending account", SQL_SELECT_ACCOUNTS, 7,
                               (const char *const *)arrays, &res, err);
    for (int i = 0; st == BZ_OK && i < PQntuples(res); i++) {
        int64_t ord = bz_pg_get_int64(res, i, 0);
        if (ord < 1 || (size_t)ord > n || found[ord - 1])
            continue;
        st = parse_account(res, i, &out[ord - 1], err);
        found[ord - 1] = st == BZ_OK;
    }
    PQclear(res);
    for (int c = 0; c < 7; c++)
        free(arrays[c]);
    if (st != BZ_OK) {
        for (size_t i = 0; i < n; i++)
            if (found[i]) {
                bz_account_clear(&out[i]);
                found[i] = 0;
            }
        return n == 1 ? bz_wrap(err, "workspace %" PRId64, q->workspace_id) : st;
    }
    return BZ_OK;
}

bz_status bz_account_select(PGconn *conn, const bz_account_query *q, bz_account *out, int *found,
                            bz_error *err)
{
    return bz_account_select_many(conn, q, 1, out, found, err);
}

void bz_account_clear(bz_account *a)
{
    free(a->metadata_json);
    a->metadata_json = NULL;
}
