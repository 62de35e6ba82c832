/*
 * sweep.c - removing the sessions the rules pick, one bounded batch per
 * transaction.
 *
 * Per rule, candidates are first listed without locks, up to 50,000 at a
 * time (one pass over the table), then removed batch_size at a time. A
 * batch, inside one transaction:
 *   1. select the listed ids again under the rule, FOR UPDATE SKIP LOCKED
 *      (libs/wa/session_cleanup.c): the rule is re-checked on every row locked, a
 *      row that changed or was removed since the listing drops out, and rows
 *      another sweeper holds are skipped rather than waited for;
 *   2. one statement soft-deletes them (deleted_at, status, disconnect
 *      tracking, last_cleanup_at) and inserts their session_cleanup_logs
 *      rows, returning the log ids;
 *   3. one statement inserts the outbox rows: per removal a SessionCommand
 *      DESTROY for wa.session.commands (key session_id, carrying the
 *      assigned instance) and a SessionEvent REMOVED for session.events
 *      (key whatsapp_account_id).
 * A crash anywhere rolls the whole batch back; a committed removal is no
 * longer a candidate (deleted_at is set). So no session is ever logged or
 * destroyed twice, whatever runs concurrently or dies half-way.
 *
 * Timer sweeps (cl_sweep_run) commit after every batch and may pause between
 * batches, so no transaction holds row locks on whatsapp_accounts for long.
 * Manual requests (cl_sweep_in_txn) run the same batches inside the
 * consumer's transaction, so their Kafka offset commits with their effects.
 *
 * Disconnect tracking after a removal: status 'disconnected'; stale_qr sets
 * reason qr_expired, manual_request user_initiated, duplicate unknown (the
 * session itself was fine; the details name the keeper); disconnected_24h
 * keeps the original disconnected_at and reason and appends the original
 * details, since those describe the real disconnect.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blazz/v1/session.pb-c.h"
#include "cleanup.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/signals.h"
#include "core/uuid.h"
#include "kafka/outbox.h"
#include "kafka/topics.h"
#include "pg/columns.h"

#define SQL_NOW "to_timestamp($3::bigint / 1000.0)"

/* Candidates listed per pass before they are removed batch by batch. */
#define CL_LIST_CHUNK 50000

static const char sql_remove[] =
    "WITH target AS (SELECT * FROM unnest($1::bigint[], $2::text[]) AS t(id, details)), "
    "upd AS (UPDATE whatsapp_accounts a SET deleted_at = " SQL_NOW ", status = 'disconnected', "
    "is_active = false, "
    "disconnected_at = CASE WHEN $4::text = 'disconnected_24h' "
    "THEN coalesce(a.disconnected_at, " SQL_NOW ") ELSE " SQL_NOW " END, "
    "disconnect_reason = CASE $4::text WHEN 'stale_qr' THEN 'qr_expired' "
    "WHEN 'disconnected_24h' THEN coalesce(a.disconnect_reason, 'timeout') "
    "WHEN 'manual_request' THEN 'user_initiated' ELSE 'unknown' END, "
    "disconnect_details = 'removed by cleanup (' || $4::text || '): ' || t.details || "
    "CASE WHEN $4::text = 'disconnected_24h' AND a.disconnect_details IS NOT NULL "
    "THEN '; ' || a.disconnect_details ELSE '' END, "
    "last_cleanup_at = " SQL_NOW " "
    "FROM target t WHERE a.id = t.id AND a.deleted_at IS NULL "
    "RETURNING a.id, a.workspace_id, a.session_id, a.disconnect_reason, a.disconnect_details), "
    "logs AS (INSERT INTO session_cleanup_logs (workspace_id, whatsapp_account_id, session_id, "
    "cleanup_type, reason, details, executed_by, executed_at) "
    "SELECT u.workspace_id, u.id, u.session_id, $5::text, $4::text, "
    "u.disconnect_details || $6::text, (SELECT id FROM users WHERE id = $7::bigint), " SQL_NOW " "
    "FROM upd u RETURNING id, whatsapp_account_id, executed_by) "
    "SELECT u.id, l.id, coalesce(l.executed_by, 0), u.disconnect_reason, u.disconnect_details "
    "FROM upd u JOIN logs l ON l.whatsapp_account_id = u.id ORDER BY u.id";

const char *cl_type_name(cl_type type)
{
    switch (type) {
    case CL_TYPE_MANUAL: return "manual";
    case CL_TYPE_SCHEDULED: return "scheduled";
    case CL_TYPE_AUTOMATIC: return "automatic";
    }
    return "scheduled";
}

bz_status cl_spec_init(cl_ctx *ctx, cl_sweep_spec *spec, cl_type type, bz_error *err)
{
    memset(spec, 0, sizeof *spec);
    spec->type = type;
    spec->rules = CL_SESSION_RULES;
    spec->retention = 1;
    spec->thresholds_s[BZ_CLEANUP_RULE_STALE_QR] = ctx->s.stale_qr_s;
    spec->thresholds_s[BZ_CLEANUP_RULE_DISCONNECTED] = ctx->s.disconnected_s;
    if (bz_uuid_v4(spec->trace_id, err) != BZ_OK)
        return bz_wrap(err, "start sweep");
    return cl_clock_now_ms(&ctx->clock, &spec->now_ms, err);
}

/* ---- protobuf mapping ------------------------------------------------------------- */

/* "qr_scanning" + "SESSION_STATE_" -> SESSION_STATE_QR_SCANNING's value, 0 if unknown. */
static int enum_from_text(const ProtobufCEnumDescriptor *desc, const char *prefix, const char *text)
{
    if (!text)
        return 0;
    char name[96];
    size_t o = (size_t)snprintf(name, sizeof name, "%s", prefix);
    for (const char *p = text; *p && o + 1 < sizeof name; p++)
        name[o++] = (char)(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
    name[o] = '\0';
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value_by_name(desc, name);
    return v ? v->value : 0;
}

static Blazz__V1__CleanupType cleanup_type_enum(cl_type type)
{
    switch (type) {
    case CL_TYPE_MANUAL: return BLAZZ__V1__CLEANUP_TYPE__CLEANUP_TYPE_MANUAL;
    case CL_TYPE_AUTOMATIC: return BLAZZ__V1__CLEANUP_TYPE__CLEANUP_TYPE_AUTOMATIC;
    case CL_TYPE_SCHEDULED: break;
    }
    return BLAZZ__V1__CLEANUP_TYPE__CLEANUP_TYPE_SCHEDULED;
}

/* What one removal tells the world. */
typedef struct removal {
    const bz_cleanup_candidate *c;
    int64_t log_id;
    int64_t executed_by;
    const char *disconnect_reason;
    const char *details;
} removal;

static void fill_envelope(Blazz__V1__Envelope *env, const cl_sweep_spec *spec,
                          const bz_cleanup_candidate *c, char *event_id)
{
    env->event_id = event_id;
    env->occurred_at_ms = spec->now_ms;
    env->produced_at_ms = bz_wall_ms();
    env->source = CL_SOURCE;
    env->workspace_id = c->workspace_id;
    env->session_id = (char *)(c->session_id ? c->session_id : "");
    env->whatsapp_account_id = c->id;
    env->provider = c->provider_type && strcmp(c->provider_type, "meta") == 0
                        ? BLAZZ__V1__PROVIDER__PROVIDER_META
                        : BLAZZ__V1__PROVIDER__PROVIDER_WEBJS;
    env->trace_id = (char *)spec->trace_id;
}

/* The instance that serves the session: its assignment, else the seeds'
 * default routing workspace_id % instance_count when configured, else
 * unknown (NULL). */
static Blazz__V1__InstanceRef *instance_of(const cl_ctx *ctx, const bz_cleanup_candidate *c,
                                           Blazz__V1__InstanceRef *ref)
{
    if (c->instance_index >= 0)
        ref->index = c->instance_index;
    else if (ctx->s.instance_count > 0)
        ref->index = (int32_t)(c->workspace_id % ctx->s.instance_count);
    else
        return NULL;
    ref->url = (char *)(c->instance_url ? c->instance_url : "");
    /* an instance under the backbone's command acts on its assignment's */
    ref->epoch = c->assignment_epoch;
    return ref;
}

/* Pack msg and queue it on the batch with the sweep's trace id. */
static bz_status add_row(bz_outbox_batch *o, const cl_sweep_spec *spec, bz_topic topic,
                         const char *key, const char *event_id, const ProtobufCMessage *msg,
                         bz_error *err)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return bz_fail(err, BZ_ERR_NOMEM, "build outbox row %s: out of memory", event_id);
    protobuf_c_message_pack(msg, buf);
    bz_status st = bz_outbox_batch_add(o, bz_topic_base(topic), event_id, key, strlen(key), buf,
                                       len, spec->trace_id, err);
    free(buf);
    return st;
}

static bz_status add_removal_rows(const cl_ctx *ctx, const cl_sweep_spec *spec,
                                  bz_cleanup_rule rule, const removal *r, bz_outbox_batch *o,
                                  bz_error *err)
{
    const bz_cleanup_candidate *c = r->c;
    char command_id[BZ_UUID_STR_SIZE], event_id[BZ_UUID_STR_SIZE];
    if (bz_uuid_v4(command_id, err) != BZ_OK || bz_uuid_v4(event_id, err) != BZ_OK)
        return bz_wrap(err, "remove account %" PRId64, c->id);
    Blazz__V1__CleanupReason reason = (Blazz__V1__CleanupReason)enum_from_text(
        &blazz__v1__cleanup_reason__descriptor, "CLEANUP_REASON_", bz_cleanup_rule_reason(rule));
    Blazz__V1__InstanceRef ref = BLAZZ__V1__INSTANCE_REF__INIT;
    Blazz__V1__InstanceRef *instance = instance_of(ctx, c, &ref);

    Blazz__V1__Envelope cenv = BLAZZ__V1__ENVELOPE__INIT;
    fill_envelope(&cenv, spec, c, command_id);
    Blazz__V1__SessionCommand cmd = BLAZZ__V1__SESSION_COMMAND__INIT;
    cmd.envelope = &cenv;
    cmd.action = BLAZZ__V1__SESSION_ACTION__SESSION_ACTION_DESTROY;
    cmd.assigned_instance = instance;
    cmd.reason = (char *)(r->details ? r->details : "");
    cmd.cleanup_reason = reason;
    cmd.requested_by = (char *)(spec->requested_by ? spec->requested_by : "");
    bz_status st = add_row(o, spec, BZ_TOPIC_WA_SESSION_COMMANDS,
                           c->session_id ? c->session_id : "", command_id, &cmd.base, err);
    if (st != BZ_OK)
        return st;

    Blazz__V1__Envelope eenv = BLAZZ__V1__ENVELOPE__INIT;
    fill_envelope(&eenv, spec, c, event_id);
    Blazz__V1__SessionRemoval rem = BLAZZ__V1__SESSION_REMOVAL__INIT;
    rem.reason = reason;
    rem.cleanup_type = cleanup_type_enum(spec->type);
    rem.executed_by = r->executed_by;
    rem.cleanup_log_id = r->log_id;
    rem.requested_by = cmd.requested_by;
    Blazz__V1__SessionEvent ev = BLAZZ__V1__SESSION_EVENT__INIT;
    ev.envelope = &eenv;
    ev.kind = BLAZZ__V1__SESSION_EVENT_KIND__SESSION_EVENT_KIND_REMOVED;
    ev.status = BLAZZ__V1__SESSION_STATE__SESSION_STATE_DISCONNECTED;
    ev.previous_status = (Blazz__V1__SessionState)enum_from_text(
        &blazz__v1__session_state__descriptor, "SESSION_STATE_", c->status);
    ev.disconnect_reason = (Blazz__V1__DisconnectReason)enum_from_text(
        &blazz__v1__disconnect_reason__descriptor, "DISCONNECT_REASON_", r->disconnect_reason);
    ev.details = cmd.reason;
    ev.phone_number = (char *)(c->phone_number ? c->phone_number : "");
    ev.changed_at_ms = spec->now_ms;
    ev.instance = instance;
    ev.removal = &rem;
    ev.account_uuid = (char *)(c->uuid ? c->uuid : "");
    ev.health_score = c->health_score;
    char key[24];
    snprintf(key, sizeof key, "%" PRId64, c->id);
    return add_row(o, spec, BZ_TOPIC_SESSION_EVENTS, key, event_id, &ev.base, err);
}

/* "; requested by blazzctl (user 7): text" for manual sweeps, "" otherwise.
 * Heap memory, NULL when out of memory. */
static char *request_suffix(const cl_sweep_spec *spec)
{
    if (spec->type != CL_TYPE_MANUAL)
        return strdup("");
    char user[40] = "";
    if (spec->executed_by)
        snprintf(user, sizeof user, " (user %" PRId64 ")", spec->executed_by);
    const char *who = spec->requested_by && *spec->requested_by ? spec->requested_by : "unknown";
    const char *note = spec->note ? spec->note : "";
    char *out = NULL;
    if (asprintf(&out, "; requested by %s%s%s%s", who, user, *note ? ": " : "", note) < 0)
        return NULL;
    return out;
}

static bz_status run_remove(PGconn *conn, const cl_sweep_spec *spec, bz_cleanup_rule rule,
                            const bz_cleanup_batch *batch, PGresult **out, bz_error *err)
{
    int64_t *ids = malloc(batch->n * sizeof *ids);
    const char **details = malloc(batch->n * sizeof *details);
    char *ids_text = NULL, *details_text = NULL, *suffix = request_suffix(spec);
    bz_status st = BZ_OK;
    if (ids && details && suffix) {
        for (size_t i = 0; i < batch->n; i++) {
            ids[i] = batch->items[i].id;
            details[i] = batch->items[i].details ? batch->items[i].details : "";
        }
        ids_text = bz_pg_int64_array(ids, batch->n);
        details_text = bz_pg_text_array(details, batch->n);
    }
    if (!ids_text || !details_text) {
        st = bz_fail(err, BZ_ERR_NOMEM, "remove %zu sessions: out of memory", batch->n);
    } else {
        char now[24], executed_by[24];
        snprintf(now, sizeof now, "%" PRId64, spec->now_ms);
        snprintf(executed_by, sizeof executed_by, "%" PRId64, spec->executed_by);
        const char *params[] = {ids_text, details_text, now, bz_cleanup_rule_reason(rule),
                                cl_type_name(spec->type), suffix, executed_by};
        PGresult *res = PQexecParams(conn, sql_remove, 7, NULL, params, NULL, NULL, 0);
        st = bz_pg_check(conn, res, "soft-delete sessions and log them", err);
        if (st == BZ_OK)
            *out = res;
        else
            PQclear(res);
    }
    free(ids);
    free(details);
    free(ids_text);
    free(details_text);
    free(suffix);
    return st;
}

/* Outbox rows for every removed row; removed rows are a subset of the
 * batch, both in id order. */
static bz_status publish_removals(const cl_ctx *ctx, PGconn *conn, const cl_sweep_spec *spec,
                                  bz_cleanup_rule rule, const bz_cleanup_batch *batch,
                                  const PGresult *removed, bz_error *err)
{
    size_t n = (size_t)PQntuples(removed);
    if (n == 0)
        return BZ_OK;
    bz_outbox_batch *o;
    bz_status st = bz_outbox_batch_new(&o, err);
    if (st != BZ_OK)
        return bz_wrap(err, "build outbox rows for %zu removals", n);
    size_t j = 0;
    for (size_t i = 0; st == BZ_OK && i < n; i++) {
        int64_t id = strtoll(PQgetvalue(removed, (int)i, 0), NULL, 10);
        while (j < batch->n && batch->items[j].id != id)
            j++;
        if (j == batch->n) {
            st = bz_fail(err, BZ_ERR_INTERNAL, "removed account %" PRId64 " not in the batch", id);
            break;
        }
        removal r = {.c = &batch->items[j],
                     .log_id = strtoll(PQgetvalue(removed, (int)i, 1), NULL, 10),
                     .executed_by = strtoll(PQgetvalue(removed, (int)i, 2), NULL, 10),
                     .disconnect_reason = PQgetvalue(removed, (int)i, 3),
                     .details = PQgetvalue(removed, (int)i, 4)};
        st = add_removal_rows(ctx, spec, rule, &r, o, err);
    }
    if (st == BZ_OK)
        st = bz_outbox_batch_write(conn, o, err);
    bz_outbox_batch_free(o);
    return st;
}

/* Remove the listed ids in conn's open transaction: the rule is evaluated
 * again on exactly these rows, locked, so a row that changed or went since
 * it was listed, or that another sweeper holds, is left alone. */
static bz_status remove_listed(cl_ctx *ctx, PGconn *conn, const cl_sweep_spec *spec,
                               bz_cleanup_rule rule, const int64_t *ids, size_t nids,
                               size_t *removed, bz_error *err)
{
    bz_cleanup_query q = {.rule = rule,
                          .now_ms = spec->now_ms,
                          .threshold_s = spec->thresholds_s[rule],
                          .workspace_id = spec->workspace_id,
                          .account_id = spec->account_id,
                          .limit = (int)nids,
                          .lock = 1,
                          .ids = ids,
                          .nids = nids};
    bz_cleanup_batch batch;
    PGresult *res = NULL;
    *removed = 0;
    bz_status st = bz_cleanup_select(conn, &q, &batch, err);
    if (st == BZ_OK && batch.n > 0)
        st = run_remove(conn, spec, rule, &batch, &res, err);
    if (st == BZ_OK && res)
        st = publish_removals(ctx, conn, spec, rule, &batch, res, err);
    if (st == BZ_OK)
        *removed = res ? (size_t)PQntuples(res) : 0;
    PQclear(res);
    bz_cleanup_batch_free(&batch);
    return st;
}

/* remove_listed in a transaction of its own (timer sweeps). */
static bz_status remove_listed_committed(cl_ctx *ctx, PGconn *conn, const cl_sweep_spec *spec,
                                         bz_cleanup_rule rule, const int64_t *ids, size_t nids,
                                         size_t *removed, bz_error *err)
{
    bz_status st = bz_pg_begin(conn, err);
    if (st == BZ_OK)
        st = remove_listed(ctx, conn, spec, rule, ids, nids, removed, err);
    if (st == BZ_OK)
        st = bz_pg_commit(conn, err);
    if (st != BZ_OK)
        bz_pg_rollback(conn);
    return st;
}

static void count_removed(cl_ctx *ctx, const cl_sweep_spec *spec, bz_cleanup_rule rule, size_t n,
                          cl_sweep_result *out)
{
    out->removed[rule] += n;
    if (ctx->have_metrics && n)
        bz_counter_add(bz_counter_family_with(ctx->m.removed, bz_cleanup_rule_reason(rule),
                                              cl_type_name(spec->type)),
                       n);
}

static int stopping(cl_ctx *ctx)
{
    return atomic_load(&ctx->stop) || bz_shutdown_requested();
}

/* List up to CL_LIST_CHUNK candidates above *after_id without locking;
 * their ids (heap, caller frees) in *ids. */
static bz_status list_candidates(PGconn *conn, const cl_sweep_spec *spec,
                                 bz_cleanup_rule rule, int64_t *after_id, int64_t **ids,
                                 size_t *n, bz_error *err)
{
    bz_cleanup_query q = {.rule = rule,
                          .now_ms = spec->now_ms,
                          .threshold_s = spec->thresholds_s[rule],
                          .workspace_id = spec->workspace_id,
                          .account_id = spec->account_id,
                          .after_id = *after_id,
                          .limit = CL_LIST_CHUNK};
    bz_cleanup_batch list;
    *ids = NULL;
    *n = 0;
    bz_status st = bz_cleanup_select(conn, &q, &list, err);
    if (st == BZ_OK && list.n && !(*ids = malloc(list.n * sizeof **ids)))
        st = bz_fail(err, BZ_ERR_NOMEM, "list %zu %s candidates", list.n,
                     bz_cleanup_rule_reason(rule));
    for (size_t i = 0; st == BZ_OK && i < list.n; i++)
        (*ids)[i] = list.items[i].id;
    if (st == BZ_OK) {
        *n = list.n;
        *after_id = list.last_id;
    }
    bz_cleanup_batch_free(&list);
    return st;
}

/* Every candidate of one rule: list a chunk, remove it batch by batch (each
 * batch committed on its own when own_txns, else inside the caller's
 * transaction), until a chunk comes back short. */
static bz_status sweep_rule(cl_ctx *ctx, PGconn *conn, const cl_sweep_spec *spec,
                            bz_cleanup_rule rule, int own_txns, cl_sweep_result *out,
                            bz_error *err)
{
    int64_t after_id = 0;
    size_t listed;
    do {
        int64_t *ids = NULL;
        bz_status st = list_candidates(conn, spec, rule, &after_id, &ids, &listed, err);
        for (size_t i = 0; st == BZ_OK && i < listed; i += (size_t)ctx->s.batch_size) {
            if (own_txns && stopping(ctx))
                break;
            size_t n = listed - i < (size_t)ctx->s.batch_size ? listed - i
                                                                : (size_t)ctx->s.batch_size;
            size_t removed = 0;
            st = own_txns ? remove_listed_committed(ctx, conn, spec, rule, ids + i, n, &removed, err)
                          : remove_listed(ctx, conn, spec, rule, ids + i, n, &removed, err);
            if (st != BZ_OK)
                break;
            count_removed(ctx, spec, rule, removed, out);
            if (own_txns && ctx->s.batch_pause_ms > 0 && i + n < listed)
                bz_sleep_ms(ctx->s.batch_pause_ms);
        }
        free(ids);
        if (st != BZ_OK)
            return bz_wrap(err, "sweep %s up to account id %" PRId64,
                           bz_cleanup_rule_reason(rule), after_id);
        if (own_txns && stopping(ctx))
            return BZ_OK;
    } while (listed == CL_LIST_CHUNK);
    return BZ_OK;
}

/* Every rule of spec, then retention: in the caller's transaction, or
 * (own_txns) each batch committed on its own and stopping between them.
 * The store's objects belong to no transaction, so only a sweep that
 * commits its own removes them. */
static bz_status sweep_rules(cl_ctx *ctx, PGconn *conn, const cl_sweep_spec *spec, int own_txns,
                             cl_sweep_result *out, bz_error *err)
{
    bz_status st = BZ_OK;
    for (int rule = 0; st == BZ_OK && rule < BZ_CLEANUP_RULE_COUNT; rule++)
        if (spec->rules & (1u << rule))
            st = sweep_rule(ctx, conn, spec, (bz_cleanup_rule)rule, own_txns, out, err);
    if (st == BZ_OK && spec->retention && !(own_txns && stopping(ctx)))
        st = cl_retention_purge(ctx, conn, spec->now_ms, out, err);
    if (st == BZ_OK && own_txns && spec->retention && !spec->dry_run && !stopping(ctx))
        st = cl_media_purge(ctx, conn, spec->now_ms, out, err);
    return st;
}

bz_status cl_sweep_in_txn(cl_ctx *ctx, PGconn *conn, const cl_sweep_spec *spec,
                          cl_sweep_result *out, bz_error *err)
{
    return sweep_rules(ctx, conn, spec, 0, out, err);
}

/* ---- timer sweeps ----------------------------------------------------------------- */

static bz_status advisory_lock(PGconn *conn, int take, int *got, bz_error *err)
{
    char key[24];
    snprintf(key, sizeof key, "%lld", (long long)CL_SWEEP_LOCK_KEY);
    const char *params[] = {key};
    PGresult *res = PQexecParams(conn,
                                 take ? "SELECT pg_try_advisory_lock($1::bigint)"
                                      : "SELECT pg_advisory_unlock($1::bigint)",
                                 1, NULL, params, NULL, NULL, 0);
    bz_status st = bz_pg_check(conn, res, take ? "take the sweep lock" : "release the sweep lock",
                               err);
    if (st == BZ_OK && got)
        *got = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return st;
}


bz_status cl_sweep_run(cl_ctx *ctx, bz_pg *pg, const cl_sweep_spec *spec, cl_sweep_result *out,
                       bz_error *err)
{
    bz_status st = bz_pg_ensure(pg, err);
    if (st != BZ_OK)
        return st;
    PGconn *conn = bz_pg_conn(pg);
    int got = 1;
    if (ctx->s.advisory_lock && (st = advisory_lock(conn, 1, &got, err)) != BZ_OK) {
        bz_pg_reset(pg);
        return st;
    }
    if (!got)
        return bz_fail(err, BZ_ERR_CONFLICT, "sweep: another instance holds the sweep lock");
    st = sweep_rules(ctx, conn, spec, 1, out, err);
    if (st == BZ_ERR_TRANSIENT)
        bz_pg_reset(pg); /* the session may be gone or mid-transaction */
    bz_error unlock_err;
    if (st != BZ_ERR_TRANSIENT && ctx->s.advisory_lock &&
        advisory_lock(conn, 0, NULL, &unlock_err) != BZ_OK) {
        /* A session we cannot talk to would keep the lock: drop it. */
        bz_warn("sweep: %s; reconnecting to release it", unlock_err.msg);
        bz_pg_reset(pg);
    }
    return st;
}

/* ---- dry runs --------------------------------------------------------------------- */

#define PREVIEW_LOG_MAX 1000

typedef struct preview_ctx {
    cl_ctx *ctx;
    const cl_sweep_spec *spec;
    cl_sweep_result *out;
} preview_ctx;

static void log_candidate(void *arg, bz_cleanup_rule rule, const bz_cleanup_candidate *c)
{
    preview_ctx *p = arg;
    if (p->out->previewed++ < PREVIEW_LOG_MAX)
        bz_log_event(BZ_LOG_INFO, NULL, p->spec->trace_id,
                     "dry run: would remove account %" PRId64 " (session %s, workspace %" PRId64
                     ", status %s): %s: %s",
                     c->id, c->session_id ? c->session_id : "", c->workspace_id,
                     c->status ? c->status : "", bz_cleanup_rule_reason(rule),
                     c->details ? c->details : "");
    if (p->ctx->have_metrics)
        bz_counter_inc(bz_counter_family_with(p->ctx->m.dry_run, bz_cleanup_rule_reason(rule)));
}

bz_status cl_sweep_preview(cl_ctx *ctx, PGconn *conn, const cl_sweep_spec *spec,
                           cl_sweep_result *out, bz_error *err)
{
    bz_cleanup_rule rules[BZ_CLEANUP_RULE_COUNT];
    size_t n = 0;
    for (int rule = 0; rule < BZ_CLEANUP_RULE_COUNT; rule++)
        if (spec->rules & (1u << rule))
            rules[n++] = (bz_cleanup_rule)rule;
    preview_ctx p = {.ctx = ctx, .spec = spec, .out = out};
    bz_status st = bz_cleanup_preview(conn, rules, n, spec->thresholds_s, spec->now_ms,
                              spec->workspace_id, spec->account_id, ctx->s.batch_size,
                              log_candidate, &p, err);
    if (st == BZ_OK)
        bz_log_event(BZ_LOG_INFO, NULL, spec->trace_id,
                     "dry run: %" PRIu64 " sessions would be removed (workspace %" PRId64
                     ", requested by %s)",
                     out->previewed, spec->workspace_id,
                     spec->requested_by && *spec->requested_by ? spec->requested_by : "-");
    return st;
}
