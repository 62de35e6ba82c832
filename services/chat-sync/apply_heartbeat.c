/*
 * apply_heartbeat.c - gateway instances' heartbeats: the registry
 * (gateway_instances) and what an instance must be told (ARCHITECTURE.md
 * §15).
 *
 * A heartbeat (chat.sync, key "0:instance:<gateway>:<index>", so one
 * instance's beats are applied in order) is applied in the consumer's
 * transaction like everything else:
 *  1. the instance's row is locked; a beat older than the last one applied
 *     (a replay) changes nothing;
 *  2. the row takes the beat's URL, capacity, boot id and time (ingest's
 *     clock, envelope.produced_at_ms: the sweep compares it with
 *     PostgreSQL's), and is live again if the sweep had declared it dead;
 *  3. an instance that came back with another boot id lost what it served:
 *     each session still assigned to it gets a RESTART under the epoch it
 *     holds (with shared session storage it resumes without a QR). The
 *     epoch is not raised: the process that held it is gone, and what was
 *     addressed to it is the new process's to send;
 *  4. each session the beat says it serves under an assignment that is not
 *     the session's current one (moved while the instance was frozen, or
 *     logged out) gets a STOP to this instance under the epoch it named, a
 *     LOGOUT when it is logged out (the instance did not act on the one
 *     the logout sent);
 *  5. each session still assigned to this instance that the instance
 *     itself reported lost (disconnected, instance_restart: it let it go
 *     when its lease ran out, during an outage shorter than
 *     sessions.instance_timeout_s, so nothing moved it) and that the beat
 *     does not list gets a RESTART under the epoch it holds, at most one
 *     every 3 s (updated_at), so it is served again;
 *  6. the instance gets a LEASE for the beat: the sessions it serves are
 *     its own until the beat's sending time (never later than ingest's
 *     time, which the sweep counts from) plus its lease. An instance's
 *     lease comes from here and not from the broker's acknowledgement: a
 *     beat the broker took but this consumer did not apply (ingest or
 *     chat-sync stalled, PostgreSQL switching over) renews nothing, so the
 *     instance has let its sessions go before the sweep, which sees only
 *     applied beats, declares it dead;
 *  7. NOTIFY blazz_sessions: room may have appeared for sessions waiting.
 * Commands' ids derive from the beat's event id, so a replayed beat that
 * still applies writes the same commands.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "chat_sync.h"
#include "core/clock.h"
#include "pg/columns.h"

#define SQL_LOCK_INSTANCE                                                                         \
    "SELECT boot_id, status, (extract(epoch FROM last_heartbeat_at) * 1000)::bigint "             \
    "FROM gateway_instances WHERE gateway_id = $1 AND instance_index = $2 FOR UPDATE"

#define SQL_UPSERT_INSTANCE                                                                       \
    "INSERT INTO gateway_instances (gateway_id, instance_index, url, capacity, boot_id, status, " \
    "started_at, last_heartbeat_at, storages) VALUES ($1, $2, nullif($3, ''), $4, $5, 'live', "   \
    "to_timestamp(nullif($6::bigint, 0) / 1000.0), to_timestamp($7::bigint / 1000.0), "           \
    "$8::text[]) "                                                                                \
    "ON CONFLICT (gateway_id, instance_index) DO UPDATE SET url = EXCLUDED.url, "                 \
    "capacity = EXCLUDED.capacity, boot_id = EXCLUDED.boot_id, status = 'live', "                 \
    "declared_dead_at = NULL, started_at = EXCLUDED.started_at, "                                 \
    "last_heartbeat_at = EXCLUDED.last_heartbeat_at, storages = EXCLUDED.storages"

/* The sessions assigned to an instance, to resume after its restart. */
#define SQL_ASSIGNED                                                                              \
    "SELECT " CS_MANAGED_ACCOUNT_COLUMNS " FROM whatsapp_accounts a "                             \
    "WHERE a.gateway_id = $1 AND a.assigned_instance_index = $2 AND a.assignment_epoch > 0 "      \
    "AND " CS_HOLDS_PLACE " AND a.deleted_at IS NULL ORDER BY a.id"

/* Of the leases a beat lists, those that are not their session's current
 * assignment: (session, epoch named, account id or 0, workspace id or 0,
 * whether it is logged out). */
#define SQL_STALE_LEASES                                                                          \
    "SELECT l.sid, l.ep, coalesce(a.id, 0), coalesce(a.workspace_id, 0), "                        \
    "coalesce(" CS_LOGGED_OUT ", false) "                                                         \
    "FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS l(sid, ep, ord) "                   \
    "LEFT JOIN whatsapp_accounts a ON a.session_id = l.sid AND a.deleted_at IS NULL "             \
    "AND a.gateway_id = $3 "                                                                      \
    "WHERE a.id IS NULL OR a.assigned_instance_index IS DISTINCT FROM $4::smallint "              \
    "OR a.assignment_epoch <> l.ep ORDER BY l.ord"

/* Sessions assigned to an instance that it reported lost itself (down,
 * instance_restart, and a report later than the sweep's last move of them:
 * a report that the session is still down, such as an instance refusing
 * to start it without a lease, moves last_activity_at but not
 * disconnected_at) and no longer lists ($3), not asked again in the last
 * 3 s; marked asked (updated_at). */
#define SQL_RELEASED                                                                              \
    "UPDATE whatsapp_accounts a SET updated_at = now() WHERE a.gateway_id = $1 AND "              \
    "a.assigned_instance_index = $2::smallint AND a.assignment_epoch > 0 AND "                    \
    "a.deleted_at IS NULL AND a.status = 'disconnected' AND "                                     \
    "a.disconnect_reason = 'instance_restart' AND "                                               \
    "a.last_activity_at > coalesce(a.last_instance_migration_at, '-infinity'::timestamptz) AND " \
    "a.updated_at < now() - interval '3 seconds' AND NOT (a.session_id = ANY($3::text[])) "       \
    "RETURNING " CS_MANAGED_ACCOUNT_COLUMNS

typedef struct beat {
    const Blazz__V1__Envelope *env;
    const Blazz__V1__InstanceHeartbeat *h;
    char index[16];
    int64_t at_ms;
} beat;

/* Lock the instance's row: *known, its boot id and whether it was live. */
static bz_status lock_instance(cs_batch *b, PGconn *conn, const beat *hb, int *known,
                               int64_t *last_ms, char **boot_id, int *was_live, bz_error *err)
{
    const char *params[] = {hb->h->gateway_id, hb->index};
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(conn, "lock the gateway instance", SQL_LOCK_INSTANCE, 2,
                                     params, &res, err);
    *known = st == BZ_OK && PQntuples(res) == 1;
    if (*known) {
        *boot_id = cs_arena_strdup(&b->arena, PQgetvalue(res, 0, 0));
        *was_live = strcmp(PQgetvalue(res, 0, 1), "live") == 0;
        *last_ms = bz_pg_get_int64(res, 0, 2);
    }
    PQclear(res);
    return st;
}

/* The beat into its instance's row; storages NULL when it lists none. */
static bz_status upsert_instance(PGconn *conn, const beat *hb, bz_error *err)
{
    char capacity[16], started[24], at[24];
    snprintf(capacity, sizeof capacity, "%d", hb->h->capacity);
    snprintf(started, sizeof started, "%" PRId64, hb->h->started_at_ms);
    snprintf(at, sizeof at, "%" PRId64, hb->at_ms);
    bz_pg_array storages;
    bz_pg_array_init(&storages);
    for (size_t i = 0; i < hb->h->n_storages; i++)
        bz_pg_array_text(&storages, hb->h->storages[i]);
    const char *listed = hb->h->n_storages ? bz_pg_array_finish(&storages) : NULL;
    bz_status st;
    if (hb->h->n_storages && !listed) {
        st = bz_fail(err, BZ_ERR_TRANSIENT, "record the heartbeat: out of memory");
    } else {
        const char *params[] = {hb->h->gateway_id, hb->index, hb->h->instance->url, capacity,
                                hb->h->boot_id,    started,   at,                   listed};
        st = bz_pg_exec_params(conn, "record the heartbeat", SQL_UPSERT_INSTANCE, 8, params, NULL,
                               err);
    }
    bz_pg_array_free(&storages);
    return st;
}

/* A RESTART to the beating instance, under the epoch it holds, for each
 * session of res (CS_MANAGED_ACCOUNT_COLUMNS rows); what names the
 * commands' ids. */
static bz_status restart_each(cs_batch *b, const beat *hb, PGresult *res, const char *what,
                              const char *reason, bz_error *err)
{
    bz_status st = BZ_OK;
    for (int i = 0; st == BZ_OK && i < PQntuples(res); i++) {
        cs_account *a = cs_managed_account_parse(b, res, i);
        if (!a)
            return bz_fail(err, BZ_ERR_TRANSIENT, "%s: out of memory", what);
        cs_session_order order = {.action = BLAZZ__V1__SESSION_ACTION__SESSION_ACTION_RESTART,
                                  .instance_index = a->instance_index,
                                  .instance_url = hb->h->instance->url,
                                  .epoch = a->epoch,
                                  .reason = reason};
        st = cs_emit_session_command(b, hb->env, what, i, a, &order, err);
    }
    return st;
}

/* A RESTART, under the epoch it holds, for each session still assigned to
 * an instance that restarted. */
static bz_status resume_sessions(cs_batch *b, PGconn *conn, const beat *hb, bz_error *err)
{
    const char *params[] = {hb->h->gateway_id, hb->index};
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(conn, "read the restarted instance's sessions", SQL_ASSIGNED,
                                     2, params, &res, err);
    if (st == BZ_OK)
        st = restart_each(b, hb, res, "instance_restarted", "the instance restarted", err);
    PQclear(res);
    return st;
}

/* A STOP for each lease that is not its session's current assignment. */
static bz_status stop_stale_leases(cs_batch *b, PGconn *conn, const beat *hb, bz_error *err)
{
    if (hb->h->n_sessions == 0)
        return BZ_OK;
    bz_pg_array a[2];
    bz_pg_array_init(&a[0]);
    bz_pg_array_init(&a[1]);
    for (size_t i = 0; i < hb->h->n_sessions; i++) {
        bz_pg_array_text(&a[0], hb->h->sessions[i]->session_id);
        bz_pg_array_int64(&a[1], hb->h->sessions[i]->epoch);
    }
    const char *sids = bz_pg_array_finish(&a[0]), *eps = bz_pg_array_finish(&a[1]);
    PGresult *res = NULL;
    bz_status st = sids && eps ? BZ_OK
                               : bz_fail(err, BZ_ERR_TRANSIENT, "stale leases: out of memory");
    if (st == BZ_OK) {
        const char *params[] = {sids, eps, hb->h->gateway_id, hb->index};
        st = bz_pg_exec_params(conn, "find the instance's stale leases", SQL_STALE_LEASES, 4,
                               params, &res, err);
    }
    for (int i = 0; st == BZ_OK && i < PQntuples(res); i++) {
        cs_account lost = {.session_id = PQgetvalue(res, i, 0),
                           .id = bz_pg_get_int64(res, i, 2),
                           .workspace_id = bz_pg_get_int64(res, i, 3)};
        int logged_out = strcmp(PQgetvalue(res, i, 4), "t") == 0;
        cs_session_order order = {
            .action = logged_out ? BLAZZ__V1__SESSION_ACTION__SESSION_ACTION_LOGOUT
                                 : BLAZZ__V1__SESSION_ACTION__SESSION_ACTION_STOP,
            .instance_index = hb->h->instance->index,
            .instance_url = hb->h->instance->url,
            .epoch = bz_pg_get_int64(res, i, 1),
            .reason = logged_out ? "the session was logged out"
                                 : "another instance holds the session"};
        if (b->ctx->have_metrics)
            bz_counter_inc(b->ctx->m.fenced_reports);
        st = cs_emit_session_command(b, hb->env, "stale_lease", i, &lost, &order, err);
    }
    PQclear(res);
    bz_pg_array_free_all(a, 2);
    return st;
}

/* A RESTART, under the epoch it holds, for each session the instance let
 * go on its own and nothing moved. */
static bz_status resume_released(cs_batch *b, PGconn *conn, const beat *hb, bz_error *err)
{
    bz_pg_array leases;
    bz_pg_array_init(&leases);
    for (size_t i = 0; i < hb->h->n_sessions; i++)
        bz_pg_array_text(&leases, hb->h->sessions[i]->session_id);
    const char *held = bz_pg_array_finish(&leases);
    PGresult *res = NULL;
    bz_status st = held ? BZ_OK : bz_fail(err, BZ_ERR_TRANSIENT, "released sessions: out of memory");
    if (st == BZ_OK) {
        const char *params[] = {hb->h->gateway_id, hb->index, held};
        st = bz_pg_exec_params(conn, "find the sessions the instance let go", SQL_RELEASED, 3,
                               params, &res, err);
    }
    if (st == BZ_OK)
        st = restart_each(b, hb, res, "released",
                          "the instance let the session go; nothing moved it", err);
    PQclear(res);
    bz_pg_array_free_all(&leases, 1);
    return st;
}

/* The gateway's clock dates the beat's sending; ingest's bounds it, so a
 * gateway clock ahead of ingest's never stretches a lease past what the
 * sweep allows. */
static int64_t beat_sent_at(const beat *hb)
{
    int64_t sent = hb->env->occurred_at_ms;
    return sent > 0 && sent < hb->at_ms ? sent : hb->at_ms;
}

static bz_status apply_one(cs_batch *b, PGconn *conn, const Blazz__V1__SyncCommand *cmd,
                           bz_error *err)
{
    beat hb = {.env = cmd->envelope, .h = cmd->instance_heartbeat};
    snprintf(hb.index, sizeof hb.index, "%d", hb.h->instance->index);
    hb.at_ms = hb.env->produced_at_ms > 0 ? hb.env->produced_at_ms : bz_wall_ms();
    int known = 0, was_live = 0;
    int64_t last_ms = 0;
    char *boot_id = NULL;
    bz_status st = lock_instance(b, conn, &hb, &known, &last_ms, &boot_id, &was_live, err);
    if (st != BZ_OK || (known && hb.at_ms <= last_ms))
        return st;
    st = upsert_instance(conn, &hb, err);
    if (st == BZ_OK && known && was_live && boot_id && strcmp(boot_id, hb.h->boot_id) != 0)
        st = resume_sessions(b, conn, &hb, err);
    if (st == BZ_OK)
        st = stop_stale_leases(b, conn, &hb, err);
    if (st == BZ_OK)
        st = resume_released(b, conn, &hb, err);
    if (st == BZ_OK)
        st = cs_emit_instance_lease(b, hb.env, hb.h->gateway_id, hb.h->instance, hb.h->boot_id,
                                    beat_sent_at(&hb), err);
    if (st == BZ_OK && b->ctx->have_metrics)
        bz_counter_inc(b->ctx->m.heartbeats);
    return st;
}

bz_status cs_apply_heartbeats(cs_ctx *ctx, PGconn *conn, const Blazz__V1__SyncCommand *const *cmds,
                              size_t n, bz_error *err)
{
    bz_status st = cs_apply_own_batch(ctx, conn, cmds, n, apply_one, err);
    if (st == BZ_OK && n > 0)
        st = cs_sessions_notify(conn, err);
    return st;
}
