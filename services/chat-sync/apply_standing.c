/*
 * apply_standing.c - Meta's reports of a Meta account's standing (the
 * phone_number_quality_update, account_update and account_alerts webhooks,
 * ARCHITECTURE.md §12.8), applied in the consumer's transaction.
 *
 * A report is one call of blazz_account_report (0034), which finds the
 * accounts it concerns (the number it names, else every account of the
 * WABA; a portfolio limit reaches every account of the portfolio), ignores
 * it on an account that keeps a later report of the same aspect (Meta does
 * not promise the order of its deliveries) and returns the accounts whose
 * standing moved. Each of those goes out as ACCOUNT_UPDATED (webhook
 * account.updated) with its row as it stands; campaign-sender reads the
 * row itself (a flagged or restricted number's marketing campaigns wait).
 * Exactly once as every chat.sync record: the offsets commit with these
 * writes, and ingest drops a notice Meta repeats.
 *
 * account_update's volume tier update is no standing: it keeps the band
 * the WABA reached in meta_volume_tiers (0073) and tells nobody.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_sync.h"

#define SQL_ACCOUNT_REPORT                                                                        \
    "SELECT account_id FROM blazz_account_report($1::bigint, $2, nullif($3, ''), "                \
    "nullif($4, ''), $5, nullif($6, ''), nullif($7, ''), nullif($8, ''), nullif($9, ''), "        \
    "CASE WHEN $10::bigint > 0 THEN to_timestamp($10::bigint / 1000.0) END, nullif($11, ''), "    \
    "nullif($12, ''), nullif($13, ''), to_timestamp($14::bigint / 1000.0))"

/* After the report: a separate statement, since a statement does not see
 * what a function it calls wrote. */
#define SQL_STANDING_ROW                                                                          \
    "SELECT session_id, coalesce(phone_number, ''), coalesce(meta_waba_id, ''), "                 \
    "coalesce(meta_business_id, ''), meta_flagged, coalesce(meta_quality_event, ''), "            \
    "coalesce(meta_messaging_limit, ''), coalesce(meta_business_limit, ''), "                     \
    "coalesce(meta_account_event, ''), coalesce(meta_restriction, ''), "                          \
    "coalesce((extract(epoch FROM meta_restricted_until) * 1000)::bigint, 0), "                   \
    "coalesce(meta_violation, ''), coalesce(meta_ban_state, ''), "                                \
    "coalesce(meta_account_detail, '') FROM whatsapp_accounts WHERE id = $1"

/* ACCOUNT_UPDATED for account id (the sub-th the report moved). */
static bz_status emit_standing(cs_batch *b, PGconn *conn, const Blazz__V1__SyncCommand *cmd,
                               int64_t reported_at_ms, const char *id, int sub, bz_error *err)
{
    const Blazz__V1__BusinessNotice *n = cmd->business_notice;
    const char *params[] = {id};
    PGresult *res;
    bz_status st = bz_pg_exec_params(conn, "read account standing", SQL_STANDING_ROW, 1, params,
                                     &res, err);
    if (st != BZ_OK)
        return bz_wrap(err, "account %s", id);
    if (PQntuples(res) != 1) {
        PQclear(res);
        return bz_fail(err, BZ_ERR_TRANSIENT, "account %s: gone right after its report", id);
    }
    Blazz__V1__AccountStanding a = BLAZZ__V1__ACCOUNT_STANDING__INIT;
    a.whatsapp_account_id = strtoll(id, NULL, 10);
    a.phone_number_id = PQgetvalue(res, 0, 0);
    a.phone_number = PQgetvalue(res, 0, 1);
    a.waba_id = PQgetvalue(res, 0, 2);
    a.business_id = PQgetvalue(res, 0, 3);
    a.flagged = strcmp(PQgetvalue(res, 0, 4), "t") == 0;
    a.quality_event = PQgetvalue(res, 0, 5);
    a.messaging_limit = PQgetvalue(res, 0, 6);
    a.business_limit = PQgetvalue(res, 0, 7);
    a.account_event = PQgetvalue(res, 0, 8);
    a.restriction = PQgetvalue(res, 0, 9);
    a.restricted_until_ms = strtoll(PQgetvalue(res, 0, 10), NULL, 10);
    a.violation = PQgetvalue(res, 0, 11);
    a.ban_state = PQgetvalue(res, 0, 12);
    a.detail = PQgetvalue(res, 0, 13);
    a.field = n->field;
    a.event = n->account->event;
    a.reported_at_ms = reported_at_ms;
    st = cs_emit_account_updated(b, cmd->envelope, sub, &a, err);
    PQclear(res);
    return st;
}

/* The band is the WABA's, not an account's: no standing moves, nothing
 * is announced. An older report than the row's is ignored (0073). */
#define SQL_VOLUME_TIER                                                                           \
    "INSERT INTO meta_volume_tiers AS t (workspace_id, waba_id, effective_month, "                \
    "pricing_category, region, tier, tier_updated_at, reported_at) VALUES ($1::bigint, $2, $3, "  \
    "$4, $5, $6, CASE WHEN $7::bigint > 0 THEN to_timestamp($7::bigint / 1000.0) END, "           \
    "to_timestamp($8::bigint / 1000.0)) "                                                         \
    "ON CONFLICT (workspace_id, waba_id, effective_month, pricing_category, region) DO UPDATE "   \
    "SET tier = excluded.tier, tier_updated_at = excluded.tier_updated_at, "                      \
    "reported_at = excluded.reported_at "                                                         \
    "WHERE (coalesce(excluded.tier_updated_at, excluded.reported_at), excluded.reported_at) >= "  \
    "(coalesce(t.tier_updated_at, t.reported_at), t.reported_at)"

static bz_status apply_volume_tier(cs_batch *b, PGconn *conn, const Blazz__V1__SyncCommand *cmd,
                                   int64_t reported_at_ms, bz_error *err)
{
    const Blazz__V1__Envelope *env = cmd->envelope;
    const Blazz__V1__BusinessNotice *n = cmd->business_notice;
    const Blazz__V1__VolumeTier *t = n->account->volume_tier;
    char ws[24], updated[24], at[24];
    snprintf(ws, sizeof ws, "%" PRId64, env->workspace_id);
    snprintf(updated, sizeof updated, "%" PRId64, t->tier_updated_at_ms);
    snprintf(at, sizeof at, "%" PRId64, reported_at_ms);
    const char *params[] = {ws,        n->waba_id, t->effective_month, t->pricing_category,
                            t->region, t->tier,    updated,            at};
    bz_status st = bz_pg_exec_params(conn, "apply volume tier", SQL_VOLUME_TIER, 8, params, NULL,
                                     err);
    if (st != BZ_OK)
        return bz_wrap(err, "event %s: %s %s tier of WABA %s in %s", env->event_id,
                       t->effective_month, t->pricing_category, n->waba_id, t->region);
    if (b->ctx->have_metrics)
        bz_counter_inc(b->ctx->m.account_reports);
    return BZ_OK;
}

bz_status cs_apply_account_notice(cs_batch *b, PGconn *conn, const Blazz__V1__SyncCommand *cmd,
                                  int64_t reported_at_ms, bz_error *err)
{
    const Blazz__V1__Envelope *env = cmd->envelope;
    const Blazz__V1__BusinessNotice *n = cmd->business_notice;
    const Blazz__V1__AccountNotice *a = n->account;
    if (a->volume_tier)
        return apply_volume_tier(b, conn, cmd, reported_at_ms, err);
    char ws[24], until[24], at[24];
    snprintf(ws, sizeof ws, "%" PRId64, env->workspace_id);
    snprintf(until, sizeof until, "%" PRId64, a->restricted_until_ms);
    snprintf(at, sizeof at, "%" PRId64, reported_at_ms);
    const char *params[] = {ws,           n->waba_id,        a->display_phone_number,
                            a->phone_number_id, n->field,    a->event,
                            a->messaging_limit, a->business_limit, a->restriction,
                            until,        a->violation,      a->ban_state,
                            a->detail,    at};
    PGresult *res;
    bz_status st = bz_pg_exec_params(conn, "apply account report", SQL_ACCOUNT_REPORT, 14, params,
                                     &res, err);
    if (st != BZ_OK)
        return bz_wrap(err, "event %s: %s %s of WABA %s", env->event_id, n->field, a->event,
                       n->waba_id);
    if (b->ctx->have_metrics)
        bz_counter_inc(b->ctx->m.account_reports);
    for (int i = 0; st == BZ_OK && i < PQntuples(res); i++)
        st = emit_standing(b, conn, cmd, reported_at_ms, PQgetvalue(res, i, 0), i, err);
    PQclear(res);
    return st;
}
