/*
 * world.c - create (or find again) the run's workspaces and connected
 * accounts in PostgreSQL; see world.h for the naming rules.
 *
 * Two parameterized statements per row, each idempotent: the workspace is
 * looked up by its sim_key and inserted only when missing; the account is
 * upserted on its unique session_id and, when it already existed, brought
 * back to connected. The statements run in one transaction, so a failed
 * run leaves no half-made world behind.
 */
#include "world.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corpus.h"
#include "pg/pg.h"

static const char WORKSPACE_SQL[] =
    "WITH existing AS ("
    "  SELECT id FROM workspaces WHERE metadata->>'sim_key' = $1 AND deleted_at IS NULL"
    "  ORDER BY id LIMIT 1),"
    " inserted AS ("
    "  INSERT INTO workspaces (name, timezone, metadata)"
    "  SELECT $2, 'Asia/Jakarta', jsonb_build_object('sim_key', $1::text, 'sim_tag', $3::text)"
    "  WHERE NOT EXISTS (SELECT 1 FROM existing) RETURNING id)"
    " SELECT id FROM existing UNION ALL SELECT id FROM inserted";

/* The account is served by the sim's gateway (ARCHITECTURE.md §9.2). */
static const char ACCOUNT_SQL[] =
    "INSERT INTO whatsapp_accounts (workspace_id, session_id, phone_number, provider_type,"
    "  status, assigned_instance_index, assigned_instance_url, is_primary, last_connected_at,"
    "  last_activity_at, metadata, gateway_id)"
    " VALUES ($1, $2, $3, 'webjs', 'connected', $4, $5, $6, now(), now(),"
    "  jsonb_build_object('sync_status', 'pending', 'push_name', $7::text, 'sim_tag', $8::text),"
    "  $9)"
    " ON CONFLICT (session_id) DO UPDATE SET status = 'connected', deleted_at = NULL,"
    "  disconnected_at = NULL, last_connected_at = now(), gateway_id = EXCLUDED.gateway_id"
    " RETURNING id, workspace_id, assigned_instance_index";

/* Run sql with text params and expect exactly one row; its fields go to
 * out_fields (up to nfields, copied as int64). */
static bz_status query_row_int64(PGconn *conn, const char *sql, int nparams,
                                 const char *const *params, int64_t *out_fields, int nfields,
                                 const char *what, bz_error *err)
{
    PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
    bz_status st = bz_pg_check(conn, res, what, err);
    if (st == BZ_OK && (PQntuples(res) != 1 || PQnfields(res) < nfields))
        st = bz_fail(err, BZ_ERR_INTERNAL, "%s: expected one row, got %d", what, PQntuples(res));
    for (int i = 0; st == BZ_OK && i < nfields; i++)
        out_fields[i] = PQgetisnull(res, 0, i) ? -1 : strtoll(PQgetvalue(res, 0, i), NULL, 10);
    PQclear(res);
    return st;
}

static bz_status ensure_workspace(PGconn *conn, const bz_sim_options *o, int index,
                                  const char *business, int64_t *out_id, bz_error *err)
{
    char key[BZ_SIM_TAG_MAX + 16], name[128];
    snprintf(key, sizeof key, "%s:%d", o->tag, index);
    snprintf(name, sizeof name, "%s", business);
    const char *params[] = {key, name, o->tag};
    char what[128];
    snprintf(what, sizeof what, "create workspace %s", key);
    return query_row_int64(conn, WORKSPACE_SQL, 3, params, out_id, 1, what, err);
}

/* Account phones: +62811 followed by 7 digits that differ for every
 * account of the run (7919 is prime to 10^7, so the map is one-to-one). */
static void account_phone(uint64_t seed, size_t global_index, char *out, size_t cap)
{
    uint64_t digits = (global_index * 7919u + seed % 10000000u) % 10000000u;
    snprintf(out, cap, "+62811%07llu", (unsigned long long)digits);
}

static bz_status ensure_account(PGconn *conn, const bz_sim_options *o, bz_sim_account *a,
                                const char *business, bz_error *err)
{
    char ws[24], instance[16], url[64], primary[8];
    snprintf(ws, sizeof ws, "%lld", (long long)a->workspace_id);
    snprintf(instance, sizeof instance, "%d", a->instance_index);
    snprintf(url, sizeof url, "http://instance-%d:3001", a->instance_index);
    snprintf(primary, sizeof primary, "%s", a->account_index == 0 ? "true" : "false");
    snprintf(a->push_name, sizeof a->push_name, "%s CS %d", business, a->account_index + 1);
    const char *params[] = {ws, a->session_id, a->phone, instance, url, primary, a->push_name,
                            o->tag, o->gateway_id};
    char what[200];
    snprintf(what, sizeof what, "upsert account session_id=%s (is gateway %s registered? "
             "blazzctl gateways add)", a->session_id, o->gateway_id);
    int64_t row[3];
    bz_status st = query_row_int64(conn, ACCOUNT_SQL, 9, params, row, 3, what, err);
    if (st != BZ_OK)
        return st;
    a->account_id = row[0];
    a->workspace_id = row[1];
    a->instance_index = (int)row[2];
    return BZ_OK;
}

static bz_status build_world(PGconn *conn, const bz_sim_options *o, bz_sim_world *w,
                             bz_error *err)
{
    size_t per_ws = (size_t)o->accounts_per_workspace;
    for (size_t k = 0; k < w->nworkspaces; k++) {
        const char *business =
            bz_sim_businesses.items[(k + o->seed) % bz_sim_businesses.count];
        bz_status st = ensure_workspace(conn, o, (int)k, business, &w->workspace_ids[k], err);
        if (st != BZ_OK)
            return st;
        for (size_t j = 0; j < per_ws; j++) {
            bz_sim_account *a = &w->accounts[k * per_ws + j];
            a->workspace_id = w->workspace_ids[k];
            a->workspace_index = (int)k;
            a->account_index = (int)j;
            a->instance_index = (int)(a->workspace_id % o->instance_count);
            snprintf(a->session_id, sizeof a->session_id, "sim-%s-w%zu-a%zu", o->tag, k, j);
            account_phone(o->seed, k * per_ws + j, a->phone, sizeof a->phone);
            if ((st = ensure_account(conn, o, a, business, err)) != BZ_OK)
                return st;
        }
    }
    return BZ_OK;
}

bz_status bz_sim_world_create(const bz_sim_options *o, bz_sim_world *out, bz_error *err)
{
    memset(out, 0, sizeof *out);
    out->nworkspaces = (size_t)o->workspaces;
    out->naccounts = out->nworkspaces * (size_t)o->accounts_per_workspace;
    out->workspace_ids = calloc(out->nworkspaces, sizeof *out->workspace_ids);
    out->accounts = calloc(out->naccounts, sizeof *out->accounts);
    if (!out->workspace_ids || !out->accounts) {
        bz_sim_world_free(out);
        return bz_fail(err, BZ_ERR_NOMEM, "create world: out of memory");
    }
    PGconn *conn = PQconnectdb(o->pg_dsn);
    if (PQstatus(conn) != CONNECTION_OK) {
        bz_status st = bz_fail(err, BZ_ERR_TRANSIENT, "create world: connect to PostgreSQL: %s",
                               PQerrorMessage(conn));
        PQfinish(conn);
        bz_sim_world_free(out);
        return st;
    }
    bz_status st = bz_pg_begin(conn, err);
    if (st == BZ_OK)
        st = build_world(conn, o, out, err);
    if (st == BZ_OK)
        st = bz_pg_commit(conn, err);
    else
        bz_pg_rollback(conn);
    PQfinish(conn);
    if (st != BZ_OK) {
        bz_sim_world_free(out);
        return bz_wrap(err, "create world tag=%s", o->tag);
    }
    return BZ_OK;
}

void bz_sim_world_free(bz_sim_world *w)
{
    free(w->workspace_ids);
    free(w->accounts);
    memset(w, 0, sizeof *w);
}
