/*
 * retention.c - purging rows nobody needs any more, in batches.
 *
 *  - webhook_retry_queue rows delivered (status success) and last touched
 *    more than cleanup.webhook_retention_days ago: the dispatcher is done
 *    with them. Failed and open rows are never purged here (they are the
 *    replay and audit trail). updated_at is the delivery time of a success
 *    row, and (status, updated_at) is indexed.
 *  - pending_receipts rows created more than
 *    cleanup.pending_receipts_retention_days ago: receipts chat-sync parked
 *    for a message it never stored (sent from elsewhere, deleted). A message
 *    that has not come in that long will not come; forgetting its receipts
 *    forgets only statuses no stored message can take. created_at is
 *    indexed (0019). campaign_receipts_waiting rows parked that long go
 *    too, by the same rule: campaign receipts a restore's replay brought
 *    before the campaign start that makes their log (0049), whose start
 *    never came back. parked_at is indexed (0050).
 *  - meta_message_proofs rows older than
 *    cleanup.meta_send_proofs_retention_days (30): what proves a Meta send
 *    reached Meta (chat-sync, from Kafka), read before every Meta send. A
 *    restore queues the sends made after its point again and the replay
 *    writes their proofs anew, so a proof must outlive the longest a
 *    re-queued send may wait to be claimed (a paused campaign); the
 *    backups' 30 days bound that. proven_at is indexed. (The setting keeps
 *    the name of 0045's meta_send_proofs, the proofs as kept before 0058:
 *    copied there by 0066, dropped by 0069.)
 *  - outbox rows older than cleanup.outbox_retention_hours. The relay
 *    deletes every row it published, so a row that old is stuck (its topic
 *    is missing, the relay is down, ...): always counted and warned about,
 *    deleted only when cleanup.outbox_purge is on, since deleting one loses
 *    an event.
 *  - send_ledger rows (campaign-sender's record of every message released to
 *    a provider, ARCHITECTURE.md §11) older than
 *    cleanup.send_ledger_retention_hours: the send budget counts the last
 *    hour only, and the pair rate at most budget.pair_burst *
 *    pair_interval_s (100 min at the largest), so the retention must exceed
 *    an hour (minimum 2).
 *  - webhook endpoints' replaced signing secrets (0071) whose overlap
 *    ended: nothing signs with them any more, so the sealed copy goes
 *    (blazz_forget_replaced_secrets, 0074: cleanup's role never touches a
 *    secret column itself). A workspace holds a few endpoints: one
 *    statement, no batches.
 * Each DELETE takes at most batch_size rows, so with autocommit no
 * statement holds many locks; the loop stops when a batch comes back short.
 * Ages are measured from the service clock's "now" (clock.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "cleanup.h"
#include "core/log.h"

#define SQL_CUTOFF "(to_timestamp($1::bigint / 1000.0) - make_interval(secs => $2::bigint))"

static const char sql_purge_webhooks[] =
    "DELETE FROM webhook_retry_queue WHERE id IN (SELECT id FROM webhook_retry_queue "
    "WHERE status = 'success' AND updated_at < " SQL_CUTOFF " LIMIT $3::bigint)";

static const char sql_purge_ledger[] =
    "DELETE FROM send_ledger WHERE id IN (SELECT id FROM send_ledger "
    "WHERE released_at < " SQL_CUTOFF " ORDER BY released_at LIMIT $3::bigint)";
static const char sql_purge_parked[] =
    "DELETE FROM pending_receipts WHERE id IN (SELECT id FROM pending_receipts "
    "WHERE created_at < " SQL_CUTOFF " LIMIT $3::bigint)";

static const char sql_purge_waiting[] =
    "DELETE FROM campaign_receipts_waiting WHERE id IN (SELECT id FROM campaign_receipts_waiting "
    "WHERE parked_at < " SQL_CUTOFF " LIMIT $3::bigint)";

static const char sql_purge_proofs[] =
    "DELETE FROM meta_message_proofs WHERE (client_reference, wam_id) IN (SELECT "
    "client_reference, wam_id FROM meta_message_proofs WHERE proven_at < " SQL_CUTOFF
    " LIMIT $3::bigint)";

static const char sql_count_stuck[] =
    "SELECT count(*), coalesce(min(id), 0) FROM outbox WHERE created_at < " SQL_CUTOFF;

static const char sql_purge_outbox[] =
    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE created_at < " SQL_CUTOFF
    " ORDER BY id LIMIT $3::bigint)";

/* $2 is 0: an overlap that ended by cleanup's now */
static const char sql_forget_replaced_secrets[] =
    "SELECT blazz_forget_replaced_secrets(" SQL_CUTOFF ")";

/* Run sql with $1 now and $2 age, plus $3 = batch when batch > 0. */
static bz_status run_counted(PGconn *conn, const char *sql, int64_t now_ms, int64_t age_s,
                             int batch, const char *what, PGresult **out, bz_error *err)
{
    char now[24], age[24], limit[24];
    snprintf(now, sizeof now, "%" PRId64, now_ms);
    snprintf(age, sizeof age, "%" PRId64, age_s);
    snprintf(limit, sizeof limit, "%d", batch);
    const char *params[] = {now, age, limit};
    PGresult *res = PQexecParams(conn, sql, batch > 0 ? 3 : 2, NULL, params, NULL, NULL, 0);
    bz_status st = bz_pg_check(conn, res, what, err);
    if (st != BZ_OK) {
        PQclear(res);
        return st;
    }
    *out = res;
    return BZ_OK;
}

/* Repeat a bounded DELETE until it comes back short; total in *purged. */
static bz_status purge_in_batches(cl_ctx *ctx, PGconn *conn, const char *sql, int64_t now_ms,
                                  int64_t age_s, const char *table, uint64_t *purged,
                                  bz_error *err)
{
    for (;;) {
        PGresult *res = NULL;
        char what[64];
        snprintf(what, sizeof what, "purge old %s rows", table);
        bz_status st = run_counted(conn, sql, now_ms, age_s, ctx->s.batch_size, what, &res, err);
        if (st != BZ_OK)
            return st;
        uint64_t n = strtoull(PQcmdTuples(res), NULL, 10);
        PQclear(res);
        *purged += n;
        if (ctx->have_metrics && n)
            bz_counter_add(bz_counter_family_with(ctx->m.purged, table), n);
        if (n < (uint64_t)ctx->s.batch_size || atomic_load(&ctx->stop))
            return BZ_OK;
    }
}

static bz_status check_stuck_outbox(cl_ctx *ctx, PGconn *conn, int64_t now_ms,
                                    cl_sweep_result *out, bz_error *err)
{
    PGresult *res = NULL;
    bz_status st = run_counted(conn, sql_count_stuck, now_ms, ctx->s.outbox_retention_s, 0,
                               "count stuck outbox rows", &res, err);
    if (st != BZ_OK)
        return st;
    int64_t stuck = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    int64_t oldest = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    PQclear(res);
    if (ctx->have_metrics)
        bz_gauge_set(ctx->m.stuck_outbox, (double)stuck);
    if (stuck == 0)
        return BZ_OK;
    bz_log(ctx->s.outbox_purge ? BZ_LOG_ERROR : BZ_LOG_WARN,
           "outbox: %" PRId64 " rows older than %" PRId64 " h were never published (oldest id "
           "%" PRId64 "); %s",
           stuck, ctx->s.outbox_retention_s / 3600, oldest,
           ctx->s.outbox_purge ? "PURGING them now: their events are lost"
                               : "kept (cleanup.outbox_purge is off); check the relay");
    if (!ctx->s.outbox_purge)
        return BZ_OK;
    return purge_in_batches(ctx, conn, sql_purge_outbox, now_ms, ctx->s.outbox_retention_s,
                            "outbox", &out->purged_outbox, err);
}

static bz_status forget_replaced_secrets(cl_ctx *ctx, PGconn *conn, int64_t now_ms,
                                        cl_sweep_result *out, bz_error *err)
{
    PGresult *res = NULL;
    bz_status st = run_counted(conn, sql_forget_replaced_secrets, now_ms, 0, 0,
                               "forget replaced endpoint secrets", &res, err);
    if (st != BZ_OK)
        return st;
    uint64_t n = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    out->forgotten_secrets += n;
    if (ctx->have_metrics && n)
        bz_counter_add(bz_counter_family_with(ctx->m.purged, "webhook_endpoints"), n);
    return BZ_OK;
}

bz_status cl_retention_purge(cl_ctx *ctx, PGconn *conn, int64_t now_ms, cl_sweep_result *out,
                             bz_error *err)
{
    bz_status st = BZ_OK;
    if (ctx->s.webhook_retention_s > 0)
        st = purge_in_batches(ctx, conn, sql_purge_webhooks, now_ms, ctx->s.webhook_retention_s,
                              "webhook_retry_queue", &out->purged_webhooks, err);
    if (st == BZ_OK && ctx->s.ledger_retention_s > 0)
        st = purge_in_batches(ctx, conn, sql_purge_ledger, now_ms, ctx->s.ledger_retention_s,
                              "send_ledger", &out->purged_ledger, err);
    if (st == BZ_OK && ctx->s.parked_retention_s > 0)
        st = purge_in_batches(ctx, conn, sql_purge_parked, now_ms, ctx->s.parked_retention_s,
                              "pending_receipts", &out->purged_parked_receipts, err);
    if (st == BZ_OK && ctx->s.parked_retention_s > 0)
        st = purge_in_batches(ctx, conn, sql_purge_waiting, now_ms, ctx->s.parked_retention_s,
                              "campaign_receipts_waiting", &out->purged_waiting_receipts, err);
    if (st == BZ_OK && ctx->s.proofs_retention_s > 0)
        st = purge_in_batches(ctx, conn, sql_purge_proofs, now_ms, ctx->s.proofs_retention_s,
                              "meta_message_proofs", &out->purged_send_proofs, err);
    if (st == BZ_OK && ctx->s.outbox_retention_s > 0)
        st = check_stuck_outbox(ctx, conn, now_ms, out, err);
    if (st == BZ_OK)
        st = forget_replaced_secrets(ctx, conn, now_ms, out, err);
    return st;
}
