/*
 * assign.c - the assignment sweep (see assign.h).
 */
#include "assign.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "lost_sends.h"
#include "pg/leader.h"

#define SWEEP_LOCK_KEY 0x626c617a7a736573LL /* "blazzses" */
#define INSTANCES_MAX 1024
#define AFFINITY_MAX 4096

#define SQL_DECLARE_DEAD                                                                          \
    "UPDATE gateway_instances SET status = 'dead', declared_dead_at = now() "                      \
    "WHERE status = 'live' AND last_heartbeat_at < now() - $1::bigint * interval '1 millisecond' " \
    "RETURNING gateway_id, instance_index"

#define SQL_TO_PLACE                                                                              \
    "SELECT " CS_MANAGED_ACCOUNT_COLUMNS " FROM whatsapp_accounts a "                             \
    "WHERE a.deleted_at IS NULL AND a.provider_type = 'webjs' AND "                               \
    "(a.status = 'pending_assignment' OR (a.assignment_epoch > 0 AND " CS_HOLDS_PLACE " AND "     \
    "EXISTS (SELECT 1 FROM gateway_instances i WHERE i.gateway_id = a.gateway_id AND "            \
    "i.instance_index = a.assigned_instance_index AND i.status = 'dead'))) "                       \
    "ORDER BY a.id LIMIT $1 FOR UPDATE OF a SKIP LOCKED"

/* Live instances of enabled whatsapp-web.js gateways, with every session
 * assigned to them and the stores they reach (names hold no space). */
#define SQL_LIVE_INSTANCES                                                                        \
    "SELECT i.gateway_id, i.instance_index, coalesce(i.url, ''), i.capacity, "                    \
    "(SELECT count(*) FROM whatsapp_accounts a WHERE a.gateway_id = i.gateway_id AND "            \
    "a.assigned_instance_index = i.instance_index AND a.assignment_epoch > 0 AND "                \
    CS_HOLDS_PLACE " AND a.deleted_at IS NULL), i.storages IS NOT NULL, "                         \
    "' ' || array_to_string(i.storages, ' ') || ' ' "                                              \
    "FROM gateway_instances i JOIN gateways g ON g.id = i.gateway_id AND g.kind = 'webjs' "       \
    "AND g.disabled_at IS NULL WHERE i.status = 'live' ORDER BY i.gateway_id, i.instance_index"

/* The live gateways that may not serve some of the round's workspaces
 * ($1): granted to others only (0046). */
#define SQL_REFUSED                                                                               \
    "SELECT DISTINCT i.gateway_id, w.id FROM gateway_instances i "                                \
    "CROSS JOIN unnest($1::bigint[]) AS w (id) WHERE i.status = 'live' AND "                      \
    "NOT blazz_gateway_serves(i.gateway_id, w.id)"

#define SQL_AFFINITY                                                                              \
    "SELECT a.gateway_id, a.assigned_instance_index, a.workspace_id, count(*) "                   \
    "FROM whatsapp_accounts a WHERE a.workspace_id = ANY($1::bigint[]) AND "                      \
    "a.assignment_epoch > 0 AND " CS_HOLDS_PLACE " AND a.deleted_at IS NULL AND "                 \
    "a.gateway_id IS NOT NULL GROUP BY 1, 2, 3"

#define SQL_PLACE                                                                                 \
    "UPDATE whatsapp_accounts SET gateway_id = $2, assigned_instance_index = $3::smallint, "      \
    "assigned_instance_url = nullif($4, ''), previous_instance_index = $5::smallint, "            \
    "instance_migration_count = $6::int, last_instance_migration_at = "                           \
    "CASE WHEN $7::boolean THEN now() ELSE last_instance_migration_at END, "                      \
    "assignment_epoch = $8::bigint, status = $9 WHERE id = $1"

#define SQL_WAIT                                                                                  \
    "UPDATE whatsapp_accounts SET status = 'pending_assignment' WHERE id = $1"

#define SQL_LOST_INSTANCE                                                                         \
    "UPDATE whatsapp_accounts SET disconnected_at = now(), instance_lost_at = now(), "            \
    "disconnect_reason = 'instance_restart', disconnect_details = $2 WHERE id = $1"

typedef struct instance {
    char gateway[BZ_GATEWAY_ID_MAX + 1];
    int index;
    char *url;
    int capacity, load, placed;
    int lists_storages; /* its heartbeats say which stores it reaches */
    char *storages;     /* " a b ": each name between spaces */
} instance;

typedef struct affinity {
    char gateway[BZ_GATEWAY_ID_MAX + 1];
    int index;
    int64_t workspace_id;
    int sessions;
} affinity;

/* A gateway that may not serve a workspace's sessions. */
typedef struct refusal {
    char gateway[BZ_GATEWAY_ID_MAX + 1];
    int64_t workspace_id;
} refusal;

struct cs_assigner {
    cs_assign_config cfg;
    cs_ctx *ctx;
    bz_pg *pg;
    bz_pg_leader leader;
    pthread_t thread;
    atomic_int stop;
    atomic_int leading;
    atomic_int_least64_t last_round_ms;
    char last_error[BZ_ERROR_MSG_MAX];
    pthread_mutex_t mu; /* last_error */
};

/* ---- one round ------------------------------------------------------------------------- */

typedef struct round {
    cs_assigner *s;
    PGconn *conn;
    cs_batch b;
    instance *live;
    size_t nlive;
    affinity *aff;
    size_t naff;
    refusal *refused;
    size_t nrefused;
    char *workspaces; /* the round's workspaces, a bigint[] literal */
} round;

static bz_status declare_dead(round *r, bz_error *err)
{
    char timeout[24];
    snprintf(timeout, sizeof timeout, "%" PRId64, r->s->cfg.instance_timeout_ms);
    const char *params[] = {timeout};
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(r->conn, "declare silent instances dead", SQL_DECLARE_DEAD, 1,
                                     params, &res, err);
    for (int i = 0; st == BZ_OK && i < PQntuples(res); i++) {
        bz_warn("gateway %s instance %s: no heartbeat for %" PRId64 " ms, declared dead; its "
                "sessions move",
                PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), r->s->cfg.instance_timeout_ms);
        if (r->s->ctx->have_metrics)
            bz_counter_inc(r->s->ctx->m.instances_dead);
    }
    PQclear(res);
    return st;
}

static bz_status read_live(round *r, bz_error *err)
{
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(r->conn, "read the live instances", SQL_LIVE_INSTANCES, 0,
                                     NULL, &res, err);
    int n = st == BZ_OK ? PQntuples(res) : 0;
    if (n > INSTANCES_MAX)
        n = INSTANCES_MAX;
    if (n > 0 && !(r->live = cs_arena_alloc(&r->b.arena, (size_t)n * sizeof *r->live)))
        st = bz_fail(err, BZ_ERR_TRANSIENT, "read the live instances: out of memory");
    for (int i = 0; st == BZ_OK && i < n; i++) {
        instance *in = &r->live[r->nlive++];
        snprintf(in->gateway, sizeof in->gateway, "%s", PQgetvalue(res, i, 0));
        in->index = (int)bz_pg_get_int64(res, i, 1);
        in->url = cs_arena_strdup(&r->b.arena, PQgetvalue(res, i, 2));
        in->capacity = (int)bz_pg_get_int64(res, i, 3);
        in->load = (int)bz_pg_get_int64(res, i, 4);
        in->placed = 0;
        in->lists_storages = strcmp(PQgetvalue(res, i, 5), "t") == 0;
        in->storages = cs_arena_strdup(&r->b.arena, PQgetvalue(res, i, 6));
        if (!in->url || !in->storages)
            st = bz_fail(err, BZ_ERR_TRANSIENT, "read the live instances: out of memory");
    }
    PQclear(res);
    return st;
}

static bz_status list_workspaces(round *r, cs_account *const *to_place, int n, bz_error *err)
{
    char *workspaces = cs_arena_alloc(&r->b.arena, (size_t)n * 24 + 3);
    if (!workspaces)
        return bz_fail(err, BZ_ERR_TRANSIENT, "list the round's workspaces: out of memory");
    size_t at = (size_t)sprintf(workspaces, "{");
    for (int i = 0; i < n; i++)
        at += (size_t)sprintf(workspaces + at, "%s%" PRId64, i ? "," : "", to_place[i]->workspace_id);
    sprintf(workspaces + at, "}");
    r->workspaces = workspaces;
    return BZ_OK;
}

/* Every refusal is kept: one left out would let a session onto a gateway
 * of other workspaces. */
static bz_status read_refused(round *r, bz_error *err)
{
    const char *params[] = {r->workspaces};
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(r->conn, "read the gateways granted to others", SQL_REFUSED,
                                     1, params, &res, err);
    int rows = st == BZ_OK ? PQntuples(res) : 0;
    if (rows > 0 && !(r->refused = cs_arena_alloc(&r->b.arena, (size_t)rows * sizeof *r->refused)))
        st = bz_fail(err, BZ_ERR_TRANSIENT, "read the gateways granted to others: out of memory");
    for (int i = 0; st == BZ_OK && i < rows; i++) {
        refusal *f = &r->refused[r->nrefused++];
        snprintf(f->gateway, sizeof f->gateway, "%s", PQgetvalue(res, i, 0));
        f->workspace_id = bz_pg_get_int64(res, i, 1);
    }
    PQclear(res);
    return st;
}

static bz_status read_affinity(round *r, bz_error *err)
{
    const char *params[] = {r->workspaces};
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(r->conn, "read the workspaces' instances", SQL_AFFINITY, 1,
                                     params, &res, err);
    int rows = st == BZ_OK ? PQntuples(res) : 0;
    if (rows > AFFINITY_MAX)
        rows = AFFINITY_MAX;
    if (rows > 0 && !(r->aff = cs_arena_alloc(&r->b.arena, (size_t)rows * sizeof *r->aff)))
        st = bz_fail(err, BZ_ERR_TRANSIENT, "read affinity: out of memory");
    for (int i = 0; st == BZ_OK && i < rows; i++) {
        affinity *f = &r->aff[r->naff++];
        snprintf(f->gateway, sizeof f->gateway, "%s", PQgetvalue(res, i, 0));
        f->index = (int)bz_pg_get_int64(res, i, 1);
        f->workspace_id = bz_pg_get_int64(res, i, 2);
        f->sessions = (int)bz_pg_get_int64(res, i, 3);
    }
    PQclear(res);
    return st;
}

static affinity *affinity_of(round *r, const instance *in, int64_t workspace_id)
{
    for (size_t i = 0; i < r->naff; i++)
        if (r->aff[i].index == in->index && r->aff[i].workspace_id == workspace_id &&
            strcmp(r->aff[i].gateway, in->gateway) == 0)
            return &r->aff[i];
    return NULL;
}

static int refused(const round *r, const char *gateway, int64_t workspace_id)
{
    for (size_t i = 0; i < r->nrefused; i++)
        if (r->refused[i].workspace_id == workspace_id &&
            strcmp(r->refused[i].gateway, gateway) == 0)
            return 1;
    return 0;
}

/* The session's gateway, or any when it names none, if it serves the
 * session's workspace. */
static int serves_gateway(const round *r, const instance *in, const cs_account *a)
{
    return (!*a->gateway_id || strcmp(in->gateway, a->gateway_id) == 0) &&
           !refused(r, in->gateway, a->workspace_id);
}

/* A session whose store is known goes only to an instance that says it
 * reaches that store, or says nothing (a gateway from before the field). */
static int reaches_storage(const instance *in, const cs_account *a)
{
    if (!*a->session_storage || !in->lists_storages)
        return 1;
    char token[80];
    snprintf(token, sizeof token, " %s ", a->session_storage);
    return strstr(in->storages, token) != NULL;
}

static int may_serve(const round *r, const instance *in, const cs_account *a)
{
    return serves_gateway(r, in, a) && reaches_storage(in, a);
}

static int has_room(const round *r, const instance *in)
{
    return in->load < in->capacity && in->placed < r->s->cfg.moves_per_instance;
}

/* Least loaded, keeping a workspace together within the slack. */
static instance *least_loaded(round *r, const cs_account *a)
{
    instance *least = NULL, *together = NULL;
    int together_sessions = 0;
    for (size_t i = 0; i < r->nlive; i++) {
        instance *in = &r->live[i];
        if (may_serve(r, in, a) && has_room(r, in) && (!least || in->load < least->load))
            least = in;
    }
    for (size_t i = 0; least && i < r->nlive; i++) {
        instance *in = &r->live[i];
        affinity *f = affinity_of(r, in, a->workspace_id);
        if (!f || !may_serve(r, in, a) || !has_room(r, in) ||
            in->load > least->load + r->s->cfg.affinity_slack)
            continue;
        if (f->sessions > together_sessions) {
            together = in;
            together_sessions = f->sessions;
        }
    }
    return together ? together : least;
}

/* Seed 003: workspace_id % the gateway's live instances, by index; that
 * instance or none. A session naming no gateway takes the first that
 * serves its workspace. */
static instance *by_workspace(round *r, const cs_account *a)
{
    const char *gateway = *a->gateway_id ? a->gateway_id : NULL;
    for (size_t i = 0; !gateway && i < r->nlive; i++)
        if (serves_gateway(r, &r->live[i], a))
            gateway = r->live[i].gateway;
    if (!gateway || refused(r, gateway, a->workspace_id))
        return NULL;
    size_t first = 0, n = 0;
    for (size_t i = 0; i < r->nlive; i++)
        if (strcmp(r->live[i].gateway, gateway) == 0) {
            if (n++ == 0)
                first = i;
        }
    if (n == 0)
        return NULL;
    instance *in = &r->live[first + (size_t)(a->workspace_id % (int64_t)n)];
    return has_room(r, in) && reaches_storage(in, a) ? in : NULL;
}

/* The input envelope of what one placement writes: its ids derive from
 * (account, epoch), so they are the same whenever it is written. The id
 * lives in the round's arena: the events written from it keep pointing at
 * it until the outbox rows are written. */
static bz_status placement_envelope(round *r, Blazz__V1__Envelope *env, const char *what,
                                    const cs_account *a, int64_t epoch, bz_error *err)
{
    blazz__v1__envelope__init(env);
    char *id = cs_arena_printf(&r->b.arena, "%s/%" PRId64 "/%" PRId64, what, a->id, epoch);
    if (!id)
        return bz_fail(err, BZ_ERR_TRANSIENT, "%s session %" PRId64 ": out of memory", what,
                       a->id);
    env->event_id = id;
    env->occurred_at_ms = bz_wall_ms();
    env->workspace_id = a->workspace_id;
    env->session_id = a->session_id;
    env->whatsapp_account_id = a->id;
    env->trace_id = id;
    return BZ_OK;
}

static bz_status run_params(round *r, const char *what, const char *sql, int n,
                            const char *const *params, bz_error *err)
{
    return bz_pg_exec_params(r->conn, what, sql, n, params, NULL, err);
}

/* A session of a dead instance is not connected anywhere any more. */
static bz_status mark_instance_lost(round *r, cs_account *a, bz_error *err)
{
    if (a->status == BLAZZ__V1__SESSION_STATE__SESSION_STATE_PENDING_ASSIGNMENT)
        return BZ_OK;
    char id[24], details[96];
    snprintf(id, sizeof id, "%" PRId64, a->id);
    snprintf(details, sizeof details, "instance %d of gateway %s stopped heartbeating",
             a->instance_index, a->gateway_id);
    const char *params[] = {id, details};
    a->disconnect_reason = "instance_restart";
    return run_params(r, "record the lost instance", SQL_LOST_INSTANCE, 2, params, err);
}

static bz_status wait_for_room(round *r, cs_account *a, bz_error *err)
{
    if (a->status == BLAZZ__V1__SESSION_STATE__SESSION_STATE_PENDING_ASSIGNMENT)
        return BZ_OK;
    bz_status st = mark_instance_lost(r, a, err);
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, a->id);
    const char *params[] = {id};
    if (st == BZ_OK)
        st = run_params(r, "park the session", SQL_WAIT, 1, params, err);
    int previous = a->status;
    a->status = BLAZZ__V1__SESSION_STATE__SESSION_STATE_PENDING_ASSIGNMENT;
    Blazz__V1__Envelope env;
    if (st == BZ_OK)
        st = placement_envelope(r, &env, "wait", a, a->epoch, err);
    if (st == BZ_OK)
        st = cs_emit_account_event(&r->b, &env, "waiting", 0,
                                   BLAZZ__V1__SESSION_EVENT_KIND__SESSION_EVENT_KIND_STATUS_CHANGED,
                                   a, previous, "no gateway instance has room", err);
    return st;
}

static bz_status place(round *r, cs_account *a, instance *in, bz_error *err)
{
    int moved = a->epoch > 0 && a->has_instance;
    bz_status st = moved ? mark_instance_lost(r, a, err) : BZ_OK;
    int previous = a->status;
    int64_t epoch = a->epoch + 1;
    a->has_previous_instance = moved;
    a->previous_instance_index = moved ? a->instance_index : a->previous_instance_index;
    a->migration_count += moved;
    a->has_instance = 1;
    a->instance_index = in->index;
    a->instance_url = in->url;
    a->gateway_id = in->gateway;
    a->status = a->epoch == 0 ? BLAZZ__V1__SESSION_STATE__SESSION_STATE_QR_SCANNING
                              : BLAZZ__V1__SESSION_STATE__SESSION_STATE_DISCONNECTED;
    char id[24], index[16], prev[16], migrations[16], epoch_text[24];
    snprintf(id, sizeof id, "%" PRId64, a->id);
    snprintf(index, sizeof index, "%d", in->index);
    snprintf(prev, sizeof prev, "%d", a->previous_instance_index);
    snprintf(migrations, sizeof migrations, "%d", a->migration_count);
    snprintf(epoch_text, sizeof epoch_text, "%" PRId64, epoch);
    const char *params[] = {id,         in->gateway,      index,
                            in->url,    a->has_previous_instance ? prev : NULL,
                            migrations, moved ? "true" : "false",
                            epoch_text, cs_session_text(a->status)};
    if (st == BZ_OK)
        st = run_params(r, "assign the session", SQL_PLACE, 9, params, err);
    int64_t held = a->epoch;
    a->epoch = epoch;
    Blazz__V1__Envelope env;
    if (st == BZ_OK)
        st = placement_envelope(r, &env, "assign", a, epoch, err);
    cs_session_order order = {.action = held == 0 ? BLAZZ__V1__SESSION_ACTION__SESSION_ACTION_CREATE
                                                  : BLAZZ__V1__SESSION_ACTION__SESSION_ACTION_RESTART,
                              .instance_index = in->index,
                              .instance_url = in->url,
                              .epoch = epoch,
                              .reason = moved ? "moved from an instance that died" : "new session"};
    if (st == BZ_OK)
        st = cs_emit_session_command(&r->b, &env, "command", 0, a, &order, err);
    if (st == BZ_OK)
        st = cs_emit_account_event(
            &r->b, &env, "event", 0,
            moved ? BLAZZ__V1__SESSION_EVENT_KIND__SESSION_EVENT_KIND_INSTANCE_MIGRATED
                  : BLAZZ__V1__SESSION_EVENT_KIND__SESSION_EVENT_KIND_ASSIGNED,
            a, previous, order.reason, err);
    in->load++;
    in->placed++;
    if (st == BZ_OK && r->s->ctx->have_metrics)
        bz_counter_inc(moved ? r->s->ctx->m.sessions_moved : r->s->ctx->m.sessions_assigned);
    return st;
}

static bz_status place_all(round *r, bz_error *err)
{
    char limit[16];
    snprintf(limit, sizeof limit, "%d", r->s->cfg.sessions_per_round);
    const char *params[] = {limit};
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(r->conn, "find the sessions to place", SQL_TO_PLACE, 1,
                                     params, &res, err);
    int n = st == BZ_OK ? PQntuples(res) : 0;
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers, sized as such */
    cs_account **to_place = n ? cs_arena_alloc(&r->b.arena, (size_t)n * sizeof *to_place) : NULL;
    if (n && !to_place)
        st = bz_fail(err, BZ_ERR_TRANSIENT, "place sessions: out of memory");
    for (int i = 0; st == BZ_OK && i < n; i++)
        if (!(to_place[i] = cs_managed_account_parse(&r->b, res, i)))
            st = bz_fail(err, BZ_ERR_TRANSIENT, "place sessions: out of memory");
    PQclear(res);
    if (st != BZ_OK || n == 0)
        return st;
    st = read_live(r, err);
    if (st == BZ_OK)
        st = list_workspaces(r, to_place, n, err);
    if (st == BZ_OK)
        st = read_refused(r, err);
    if (st == BZ_OK)
        st = read_affinity(r, err);
    for (int i = 0; st == BZ_OK && i < n; i++) {
        instance *in = r->s->cfg.policy == CS_ASSIGN_MODULO ? by_workspace(r, to_place[i])
                                                            : least_loaded(r, to_place[i]);
        st = in ? place(r, to_place[i], in, err) : wait_for_room(r, to_place[i], err);
    }
    return st;
}

static bz_status sweep_round(cs_assigner *s, bz_error *err)
{
    round r = {.s = s, .conn = bz_pg_conn(s->pg)};
    bz_status st = cs_batch_init(&r.b, s->ctx, NULL, NULL, 0, err);
    if (st != BZ_OK)
        return st;
    st = bz_pg_begin(r.conn, err);
    if (st == BZ_OK)
        st = declare_dead(&r, err);
    if (st == BZ_OK)
        st = place_all(&r, err);
    int lost = 0;
    if (st == BZ_OK)
        st = cs_fail_lost_sends(&r.b, r.conn, &lost, err);
    if (st == BZ_OK)
        st = cs_write_outbox(&r.b, r.conn, err);
    if (st == BZ_OK)
        st = bz_pg_commit(r.conn, err);
    else
        bz_pg_rollback(r.conn);
    if (st == BZ_OK && lost > 0 && s->ctx->have_metrics)
        bz_counter_add(s->ctx->m.sends_lost, (uint64_t)lost);
    cs_batch_free(&r.b);
    return st;
}

/* ---- the thread -------------------------------------------------------------------------- */

static void remember_error(cs_assigner *s, const char *msg)
{
    pthread_mutex_lock(&s->mu);
    snprintf(s->last_error, sizeof s->last_error, "%s", msg);
    pthread_mutex_unlock(&s->mu);
}

static void *sweep_main(void *arg)
{
    cs_assigner *s = arg;
    while (!atomic_load(&s->stop)) {
        bz_error err;
        bz_status st = bz_pg_leader_acquire(&s->leader, "session assignment sweep", &err);
        atomic_store(&s->leading, st == BZ_OK);
        if (st == BZ_OK)
            st = sweep_round(s, &err);
        if (st == BZ_OK) {
            atomic_store(&s->last_round_ms, bz_wall_ms());
            remember_error(s, "");
        } else {
            if (err.code != BZ_ERR_CONFLICT)
                bz_warn("session assignment sweep: %s", err.msg);
            remember_error(s, err.code == BZ_ERR_CONFLICT ? "" : err.msg);
            bz_pg_leader_failed(&s->leader);
        }
        bz_pg_leader_wait(&s->leader, s->cfg.interval_ms);
    }
    return NULL;
}

bz_status cs_assigner_start(const cs_assign_config *cfg, cs_ctx *ctx, cs_assigner **out,
                            bz_error *err)
{
    cs_assigner *s = calloc(1, sizeof *s);
    if (!s)
        return bz_fail(err, BZ_ERR_NOMEM, "start the assignment sweep: out of memory");
    s->cfg = *cfg;
    s->ctx = ctx;
    pthread_mutex_init(&s->mu, NULL);
    bz_status st = bz_pg_open(cfg->pg_dsn, &s->pg, err);
    s->leader = (bz_pg_leader){.pg = s->pg, .lock_key = SWEEP_LOCK_KEY,
                               .channel = CS_SESSIONS_CHANNEL};
    if (st == BZ_OK && pthread_create(&s->thread, NULL, sweep_main, s) != 0)
        st = bz_fail(err, BZ_ERR_IO, "start the assignment sweep's thread");
    if (st != BZ_OK) {
        bz_pg_close(s->pg);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return st;
    }
    *out = s;
    return BZ_OK;
}

void cs_assigner_stop(cs_assigner *s)
{
    if (!s)
        return;
    atomic_store(&s->stop, 1);
    pthread_join(s->thread, NULL);
    bz_pg_close(s->pg);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

void cs_assigner_report_readiness(cs_assigner *s, bz_readiness *r)
{
    pthread_mutex_lock(&s->mu);
    int failing = s->last_error[0] != '\0';
    char error[BZ_ERROR_MSG_MAX];
    snprintf(error, sizeof error, "%s", s->last_error);
    pthread_mutex_unlock(&s->mu);
    /* the sweep is this instance's only when it holds the lock; a failing
     * round is reported, not a reason to leave the load balancer */
    bz_readiness_add(r, "sessions", true, "%s%s%s",
                     atomic_load(&s->leading) ? "sweeping" : "standing by",
                     failing ? "; last round failed: " : "", failing ? error : "");
}
