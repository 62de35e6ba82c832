/*
 * apply_business.c - Meta's notices about a WhatsApp Business Account
 * (BusinessNotice: the template webhooks, ARCHITECTURE.md §12.5, here; the
 * account webhooks in apply_standing.c), applied in the consumer's
 * transaction like everything else.
 *
 * A template notice is one call of blazz_template_report (0032), the one
 * way a report from Meta changes a template (`blazzctl meta templates sync`
 * is the other caller): it finds the row by Meta's key (workspace, WABA,
 * name, language), adopts a CRM-made template of that name and language,
 * or makes one, and ignores a report older than the one it keeps (Meta
 * does not promise order between deliveries). When what the backbone keeps
 * of the template moved (status, category, quality, reason), the row as it
 * stands goes out as TEMPLATE_UPDATED (webhook template.updated); a
 * campaign waiting on the template learns of it from the row itself
 * (services/campaign-sender). Meta's reason and its explanation, when it
 * gives one, are kept together in rejection_reason ("INVALID_FORMAT: ...").
 *
 * A notice applied twice (its record consumed again after a crash before
 * the offsets committed) cannot be: the offsets commit with these writes.
 * A notice Meta repeats has the event id it had (ingest derives it from
 * the values), and ingest drops it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_sync.h"
#include "core/clock.h"

#define SQL_TEMPLATE_REPORT                                                                       \
    "SELECT template_id, changed FROM blazz_template_report($1::bigint, $2, nullif($3, ''), $4, " \
    "$5, nullif($6, ''), nullif(concat_ws(': ', nullif(nullif($7, ''), 'NONE'), "                 \
    "nullif($8, '')), ''), nullif($9, ''), nullif($10, ''), "                                     \
    "to_timestamp($11::bigint / 1000.0))"

/* After the report: a separate statement, since a statement does not see
 * what a function it calls wrote. */
#define SQL_TEMPLATE_ROW                                                                          \
    "SELECT name, language, coalesce(status, ''), coalesce(category, ''), "                       \
    "coalesce(quality_score, ''), coalesce(rejection_reason, ''), "                               \
    "coalesce(meta_template_id, ''), coalesce(meta_waba_id, '') FROM templates WHERE id = $1"

/* When Meta reported it: entry.time, else when ingest took it. */
static int64_t reported_at_ms(const Blazz__V1__Envelope *env)
{
    if (env->occurred_at_ms > 0)
        return env->occurred_at_ms;
    return env->produced_at_ms > 0 ? env->produced_at_ms : bz_wall_ms();
}

/* TEMPLATE_UPDATED with the row id as it stands. */
static bz_status emit_template(cs_batch *b, PGconn *conn, const Blazz__V1__Envelope *env,
                               const Blazz__V1__TemplateNotice *t, const char *id, bz_error *err)
{
    const char *params[] = {id};
    PGresult *res;
    bz_status st = bz_pg_exec_params(conn, "read template", SQL_TEMPLATE_ROW, 1, params, &res, err);
    if (st != BZ_OK)
        return bz_wrap(err, "template %s", id);
    if (PQntuples(res) != 1) {
        PQclear(res);
        return bz_fail(err, BZ_ERR_TRANSIENT, "template %s: gone right after its report", id);
    }
    Blazz__V1__TemplateSnapshot snap = BLAZZ__V1__TEMPLATE_SNAPSHOT__INIT;
    snap.id = strtoll(id, NULL, 10);
    snap.name = PQgetvalue(res, 0, 0);
    snap.language = PQgetvalue(res, 0, 1);
    snap.status = PQgetvalue(res, 0, 2);
    snap.category = PQgetvalue(res, 0, 3);
    snap.quality_score = PQgetvalue(res, 0, 4);
    snap.rejection_reason = PQgetvalue(res, 0, 5);
    snap.meta_template_id = PQgetvalue(res, 0, 6);
    snap.waba_id = PQgetvalue(res, 0, 7);
    snap.event = *t->event ? t->event : "";
    snap.reported_at_ms = reported_at_ms(env);
    st = cs_emit_template_updated(b, env, &snap, err);
    PQclear(res);
    return st;
}

static bz_status apply_template(cs_batch *b, PGconn *conn, const Blazz__V1__SyncCommand *cmd,
                                bz_error *err)
{
    const Blazz__V1__Envelope *env = cmd->envelope;
    const Blazz__V1__BusinessNotice *n = cmd->business_notice;
    const Blazz__V1__TemplateNotice *t = n->template_;
    char ws[24], at[24];
    snprintf(ws, sizeof ws, "%" PRId64, env->workspace_id);
    snprintf(at, sizeof at, "%" PRId64, reported_at_ms(env));
    const char *params[] = {ws,        n->waba_id, t->template_id, t->name,
                            t->language, t->event,  t->reason,      t->detail,
                            t->category, t->quality_score, at};
    PGresult *res;
    bz_status st = bz_pg_exec_params(conn, "apply template report", SQL_TEMPLATE_REPORT, 11,
                                     params, &res, err);
    if (st != BZ_OK)
        return bz_wrap(err, "event %s: template '%s' (%s) of WABA %s", env->event_id, t->name,
                       t->language, n->waba_id);
    char id[24];
    snprintf(id, sizeof id, "%s", PQgetvalue(res, 0, 0));
    int changed = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
    PQclear(res);
    if (b->ctx->have_metrics)
        bz_counter_inc(b->ctx->m.template_reports);
    return changed ? emit_template(b, conn, env, t, id, err) : BZ_OK;
}

static bz_status apply_notice(cs_batch *b, PGconn *conn, const Blazz__V1__SyncCommand *cmd,
                              bz_error *err)
{
    if (cmd->business_notice->notice_case == BLAZZ__V1__BUSINESS_NOTICE__NOTICE_ACCOUNT)
        return cs_apply_account_notice(b, conn, cmd, reported_at_ms(cmd->envelope), err);
    return apply_template(b, conn, cmd, err);
}

bz_status cs_apply_business_notices(cs_ctx *ctx, PGconn *conn,
                                    const Blazz__V1__SyncCommand *const *cmds, size_t n,
                                    bz_error *err)
{
    return cs_apply_own_batch(ctx, conn, cmds, n, apply_notice, err);
}
