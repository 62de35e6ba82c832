/*
 * commands.c - campaign.commands: start, pause, resume, cancel.
 *
 * Applied by the exactly-once consumer, so a record is applied once; the
 * transitions are compare-and-set on the status as well (lifecycle.c), so
 * the same command sent twice (two clicks, a replay from the DLQ) changes
 * the campaign once and the second is a logged no-op. The command's
 * envelope must name the workspace that owns the campaign: a command for
 * an unknown campaign or from another workspace is dead-lettered.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "campaign_sender.h"
#include "core/log.h"
#include "pg/pg.h"

#define SQL_OWNER "SELECT workspace_id FROM campaigns WHERE id = $1 AND deleted_at IS NULL"

bz_status cmp_command_check(const Blazz__V1__CampaignCommand *cmd, bz_error *err)
{
    if (!cmd->envelope || !cmd->envelope->event_id || !*cmd->envelope->event_id)
        return bz_reject(err, "missing_event_id", "campaign command without envelope.event_id");
    if (cmd->envelope->workspace_id <= 0)
        return bz_reject(err, "missing_workspace", "campaign command %s: no envelope.workspace_id",
                         cmd->envelope->event_id);
    if (cmd->campaign_id <= 0)
        return bz_reject(err, "missing_campaign", "campaign command %s: no campaign_id",
                         cmd->envelope->event_id);
    if (cmd->action < BLAZZ__V1__CAMPAIGN_ACTION__CAMPAIGN_ACTION_START ||
        cmd->action > BLAZZ__V1__CAMPAIGN_ACTION__CAMPAIGN_ACTION_CANCEL)
        return bz_reject(err, "unknown_action", "campaign command %s: unknown action %d",
                         cmd->envelope->event_id, (int)cmd->action);
    return BZ_OK;
}

static bz_status check_owner(PGconn *conn, const Blazz__V1__CampaignCommand *cmd, bz_error *err)
{
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, cmd->campaign_id);
    const char *params[] = {id};
    PGresult *res;
    bz_status st = bz_pg_exec_params(conn, "look up campaign owner", SQL_OWNER, 1, params, &res,
                                     err);
    if (st != BZ_OK)
        return st;
    int found = PQntuples(res) == 1;
    int64_t owner = found ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    PQclear(res);
    if (!found)
        return bz_reject(err, "unknown_campaign", "command %s: campaign %" PRId64 " does not exist",
                         cmd->envelope->event_id, cmd->campaign_id);
    if (owner != cmd->envelope->workspace_id)
        return bz_reject(err, "workspace_mismatch",
                         "command %s: campaign %" PRId64 " belongs to workspace %" PRId64
                         ", not %" PRId64,
                         cmd->envelope->event_id, cmd->campaign_id, owner,
                         cmd->envelope->workspace_id);
    return BZ_OK;
}

bz_status cmp_command_apply(const cmp_ctx *ctx, PGconn *conn, const Blazz__V1__CampaignCommand *cmd,
                            bz_error *err)
{
    bz_status st = check_owner(conn, cmd, err);
    if (st != BZ_OK)
        return st;
    char actor[160];
    if (cmd->actor && *cmd->actor)
        snprintf(actor, sizeof actor, "%s", cmd->actor);
    else if (cmd->actor_user_id)
        snprintf(actor, sizeof actor, "user:%" PRId64, cmd->actor_user_id);
    else
        snprintf(actor, sizeof actor, "unknown");
    const cmp_actor who = {.actor = actor, .user_id = cmd->actor_user_id, .reason = cmd->reason,
                           .event_id = cmd->envelope->event_id};
    int moved = 0;
    switch (cmd->action) {
    case BLAZZ__V1__CAMPAIGN_ACTION__CAMPAIGN_ACTION_START:
        st = cmp_campaign_start(conn, cmd->campaign_id, &who, &moved, err);
        break;
    case BLAZZ__V1__CAMPAIGN_ACTION__CAMPAIGN_ACTION_PAUSE:
        st = cmp_campaign_pause(conn, cmd->campaign_id, &who, NULL, &moved, err);
        break;
    case BLAZZ__V1__CAMPAIGN_ACTION__CAMPAIGN_ACTION_RESUME:
        st = cmp_campaign_resume(conn, cmd->campaign_id, &who, &moved, err);
        break;
    case BLAZZ__V1__CAMPAIGN_ACTION__CAMPAIGN_ACTION_CANCEL:
        st = cmp_campaign_cancel(conn, cmd->campaign_id, &who, &moved, err);
        break;
    default:
        return bz_reject(err, "unknown_action", "command %s: unknown action %d",
                         cmd->envelope->event_id, (int)cmd->action);
    }
    if (st == BZ_OK)
        bz_counter_inc(ctx->m.commands);
    return st;
}
