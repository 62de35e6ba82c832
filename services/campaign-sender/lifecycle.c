/*
 * lifecycle.c - campaign state transitions, each one conditional UPDATE
 * (... WHERE status IN (allowed states) RETURNING) plus its event, in the
 * caller's transaction.
 *
 * Because the transition is a compare-and-set on the status, a repeated
 * command, a replayed record or two instances racing all end with one
 * transition and one event: the loser's UPDATE matches no row and is a
 * no-op. Who asked is kept in campaigns.metadata.last_command and travels
 * in the event.
 *
 *   draft | scheduled --start--> running <--pause/resume--> paused
 *   running --all logs final--> completed
 *   any non-final --cancel--> cancelled;  start with a message that cannot be
 *   sent (message.h), or a template Meta does not send, --> failed
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "campaign_sender.h"
#include "core/log.h"
#include "message.h"
#include "pg/pg.h"
#include "wa/account_select.h"

#define SQL_START                                                                                \
    "UPDATE campaigns c SET status = 'running', started_at = coalesce(c.started_at, now()), "    \
    "error_message = NULL, metadata = c.metadata || jsonb_build_object('last_command', $2::jsonb) " \
    "WHERE c.id = $1 AND c.status IN ('draft', 'scheduled') AND c.deleted_at IS NULL "            \
    "RETURNING c.workspace_id, coalesce(c.contact_group_id, 0), "                                \
    "EXISTS (SELECT 1 FROM contact_groups g WHERE g.id = c.contact_group_id "                    \
    "        AND g.deleted_at IS NULL), coalesce(c.whatsapp_account_id, 0)"
#define SQL_MESSAGE                                                                              \
    "SELECT " CMP_MESSAGE_COLUMNS ", " CMP_TEMPLATE_COLUMNS " FROM campaigns c "                 \
    CMP_MESSAGE_JOIN " WHERE c.id = $1"
#define SQL_FAIL "UPDATE campaigns SET status = 'failed', error_message = $2 WHERE id = $1"
#define SQL_COUNT "UPDATE campaigns SET contacts_count = $2::int WHERE id = $1"
#define SQL_PAUSE                                                                                \
    "UPDATE campaigns SET status = 'paused', paused_at = now(), pause_reason = $2, "             \
    "error_message = coalesce($3, error_message), "                                             \
    "metadata = metadata || jsonb_build_object('last_command', $4::jsonb) "                      \
    "WHERE id = $1 AND status = 'running' RETURNING id"
#define SQL_RESUME                                                                               \
    "UPDATE campaigns SET status = 'running', pause_reason = NULL, "                             \
    "metadata = metadata || jsonb_build_object('last_command', $2::jsonb) "                      \
    "WHERE id = $1 AND status = 'paused' RETURNING id"
#define SQL_CANCEL                                                                               \
    "UPDATE campaigns SET status = 'cancelled', cancelled_at = now(), "                          \
    "metadata = metadata || jsonb_build_object('last_command', $2::jsonb) "                      \
    "WHERE id = $1 AND status IN ('draft', 'scheduled', 'running', 'paused') RETURNING id"
#define SQL_COMPLETE                                                                             \
    "UPDATE campaigns SET status = 'completed', completed_at = now() "                            \
    "WHERE id = $1 AND status = 'running' AND NOT EXISTS (SELECT 1 FROM campaign_logs l "        \
    "WHERE l.campaign_id = $1 AND l.status IN ('pending', 'queued')) RETURNING id"

/* The actor as stored in metadata.last_command; heap string or NULL. */
static char *actor_json(const char *action, const cmp_actor *who)
{
    json_t *o = json_object();
    json_object_set_new(o, "action", json_string(action));
    json_object_set_new(o, "actor", json_string(who->actor ? who->actor : "system"));
    if (who->user_id)
        json_object_set_new(o, "actor_user_id", json_integer(who->user_id));
    if (who->reason && *who->reason)
        json_object_set_new(o, "reason", json_string(who->reason));
    if (who->event_id && *who->event_id)
        json_object_set_new(o, "event_id", json_string(who->event_id));
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

/* Run a transition statement; *moved = 1 when it matched the campaign. */
static bz_status transition(PGconn *conn, const char *what, const char *sql, int nparams,
                            const char *const *values, int *moved, bz_error *err)
{
    PGresult *res;
    bz_status st = bz_pg_exec_params(conn, what, sql, nparams, values, &res, err);
    if (st != BZ_OK)
        return st;
    *moved = PQntuples(res) > 0;
    PQclear(res);
    return BZ_OK;
}

static bz_status fail_campaign(PGconn *conn, int64_t id, const char *why, const cmp_actor *who,
                               bz_error *err)
{
    char idtext[24];
    snprintf(idtext, sizeof idtext, "%" PRId64, id);
    const char *params[] = {idtext, why};
    bz_status st = bz_pg_exec_params(conn, "fail campaign", SQL_FAIL, 2, params, NULL, err);
    if (st == BZ_OK)
        st = cmp_event_emit(conn, id, BLAZZ__V1__CAMPAIGN_EVENT_KIND__CAMPAIGN_EVENT_KIND_FAILED,
                            who->actor, why, 0, err);
    if (st == BZ_OK)
        bz_warn("campaign %" PRId64 " failed at start: %s", id, why);
    return st;
}

/* What a started campaign is: its workspace and own account. */
typedef struct start_facts {
    int64_t id, workspace_id, account_id;
    char idtext[24];
} start_facts;

/* A message that compiles can still break Meta's limits on every message,
 * or be a template Meta does not send (template_refused: why, NULL when it
 * sends it or the campaign sends no template): checked when the account the
 * send loop would take now is Meta's. */
static bz_status meta_allows(PGconn *conn, const start_facts *c, const cmp_message *msg,
                             const char *template_refused, int *valid, char *why, size_t cap,
                             bz_error *err)
{
    bz_account acc;
    int found = 0;
    bz_account_query q = {.workspace_id = c->workspace_id, .preferred_id = c->account_id,
                          .provider = msg->extras.provider};
    bz_status st = bz_account_select(conn, &q, &acc, &found, err);
    int meta = st == BZ_OK && found && acc.provider == BLAZZ__V1__PROVIDER__PROVIDER_META;
    bz_error e;
    if (meta && cmp_message_check_meta(msg, &e) != BZ_OK) {
        if (e.code == BZ_ERR_NOMEM)
            st = bz_fail(err, BZ_ERR_NOMEM, "%s", e.msg);
        *valid = 0;
        snprintf(why, cap, "its messages cannot go through Meta account %" PRId64 ": %.400s",
                 acc.id, e.msg);
    } else if (meta && template_refused) {
        *valid = 0;
        snprintf(why, cap, "%s", template_refused);
    }
    if (st == BZ_OK && found)
        bz_account_clear(&acc);
    return st;
}

/* Whether the campaign's message can be sent (message.h): it compiles and,
 * when it would go through a Meta account, keeps to Meta's limits and is
 * not a template Meta does not send; *why says why not. BZ_OK unless
 * PostgreSQL failed or memory ran out. */
static bz_status message_is_valid(PGconn *conn, const start_facts *c, int *valid, char *why,
                                  size_t cap, bz_error *err)
{
    const char *params[] = {c->idtext};
    PGresult *res;
    bz_status st = bz_pg_exec_params(conn, "read the campaign's message", SQL_MESSAGE, 1, params,
                                     &res, err);
    if (st != BZ_OK)
        return st;
    cmp_message_columns cols;
    cmp_message_columns_read(res, 0, 0, &cols);
    char template_why[BZ_ERROR_MSG_MAX];
    int template_sent = cmp_template_sendable(res, 0, CMP_MESSAGE_COLUMN_COUNT, template_why,
                                              sizeof template_why);
    cmp_message msg;
    bz_error e;
    *valid = cmp_message_compile(&cols, &msg, &e) == BZ_OK;
    PQclear(res);
    if (*valid) {
        const char *refused = msg.is_template && !template_sent ? template_why : NULL;
        st = meta_allows(conn, c, &msg, refused, valid, why, cap, err);
        cmp_message_free(&msg);
        return st;
    }
    snprintf(why, cap, "%s", e.msg);
    return e.code == BZ_ERR_NOMEM ? bz_fail(err, BZ_ERR_NOMEM, "%s", e.msg) : BZ_OK;
}

bz_status cmp_campaign_start(PGconn *conn, int64_t id, const cmp_actor *who, int *started,
                             bz_error *err)
{
    *started = 0;
    char idtext[24];
    snprintf(idtext, sizeof idtext, "%" PRId64, id);
    char *actor = actor_json("start", who);
    if (!actor)
        return bz_fail(err, BZ_ERR_NOMEM, "start campaign %" PRId64 ": out of memory", id);
    const char *params[] = {idtext, actor};
    PGresult *res;
    bz_status st = bz_pg_exec_params(conn, "start campaign", SQL_START, 2, params, &res, err);
    free(actor);
    if (st != BZ_OK)
        return bz_wrap(err, "campaign %" PRId64, id);
    if (PQntuples(res) == 0) {
        PQclear(res);
        bz_info("campaign %" PRId64 ": start ignored, not draft or scheduled", id);
        return BZ_OK;
    }
    start_facts c = {.id = id,
                     .workspace_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10),
                     .account_id = strtoll(PQgetvalue(res, 0, 3), NULL, 10)};
    snprintf(c.idtext, sizeof c.idtext, "%s", idtext);
    int64_t workspace_id = c.workspace_id;
    int64_t group_id = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    int group_ok = PQgetvalue(res, 0, 2)[0] == 't';
    PQclear(res);
    char why[BZ_ERROR_MSG_MAX];
    int valid = 0;
    st = message_is_valid(conn, &c, &valid, why, sizeof why, err);
    if (st != BZ_OK)
        return bz_wrap(err, "start campaign %" PRId64, id);
    *started = 1;
    if (!valid)
        return fail_campaign(conn, id, why, who, err);
    if (!group_id || !group_ok)
        return fail_campaign(conn, id, "campaign has no contact group (audience)", who, err);
    int64_t inserted, total;
    st = cmp_audience_expand(conn, id, workspace_id, group_id, &inserted, &total, err);
    if (st == BZ_OK) {
        char count[24];
        snprintf(count, sizeof count, "%" PRId64, total);
        const char *cparams[] = {idtext, count};
        st = bz_pg_exec_params(conn, "store audience size", SQL_COUNT, 2, cparams, NULL, err);
    }
    if (st == BZ_OK)
        st = cmp_event_emit(conn, id, BLAZZ__V1__CAMPAIGN_EVENT_KIND__CAMPAIGN_EVENT_KIND_STARTED,
                            who->actor, who->reason, 0, err);
    if (st != BZ_OK)
        return bz_wrap(err, "start campaign %" PRId64, id);
    bz_info("campaign %" PRId64 " started by %s: %" PRId64 " recipients (%" PRId64 " new logs)", id,
            who->actor ? who->actor : "system", total, inserted);
    return BZ_OK;
}

bz_status cmp_campaign_pause(PGconn *conn, int64_t id, const cmp_actor *who,
                             const char *error_message, int *paused, bz_error *err)
{
    char idtext[24], reason[256];
    snprintf(idtext, sizeof idtext, "%" PRId64, id);
    if (who->reason && *who->reason)
        snprintf(reason, sizeof reason, "%s", who->reason);
    else
        snprintf(reason, sizeof reason, "paused by %s", who->actor ? who->actor : "system");
    char *actor = actor_json("pause", who);
    if (!actor)
        return bz_fail(err, BZ_ERR_NOMEM, "pause campaign %" PRId64 ": out of memory", id);
    const char *params[] = {idtext, reason, error_message, actor};
    bz_status st = transition(conn, "pause campaign", SQL_PAUSE, 4, params, paused, err);
    free(actor);
    if (st == BZ_OK && *paused)
        st = cmp_event_emit(conn, id, BLAZZ__V1__CAMPAIGN_EVENT_KIND__CAMPAIGN_EVENT_KIND_PAUSED,
                            who->actor, error_message ? error_message : reason, 0, err);
    if (st == BZ_OK && *paused)
        bz_info("campaign %" PRId64 " paused: %s", id, error_message ? error_message : reason);
    return st == BZ_OK ? st : bz_wrap(err, "campaign %" PRId64, id);
}

/* resume and cancel share their shape: a transition and its event. */
static bz_status simple_transition(PGconn *conn, int64_t id, const cmp_actor *who,
                                   const char *action, const char *sql,
                                   Blazz__V1__CampaignEventKind kind, int *moved, bz_error *err)
{
    char idtext[24];
    snprintf(idtext, sizeof idtext, "%" PRId64, id);
    char *actor = actor_json(action, who);
    if (!actor)
        return bz_fail(err, BZ_ERR_NOMEM, "%s campaign %" PRId64 ": out of memory", action, id);
    const char *params[] = {idtext, actor};
    bz_status st = transition(conn, action, sql, 2, params, moved, err);
    free(actor);
    if (st == BZ_OK && *moved)
        st = cmp_event_emit(conn, id, kind, who->actor, who->reason, 0, err);
    if (st == BZ_OK)
        bz_info("campaign %" PRId64 ": %s by %s%s", id, action, who->actor ? who->actor : "system",
                *moved ? "" : " ignored (state does not allow it)");
    return st == BZ_OK ? st : bz_wrap(err, "campaign %" PRId64, id);
}

bz_status cmp_campaign_resume(PGconn *conn, int64_t id, const cmp_actor *who, int *resumed,
                              bz_error *err)
{
    return simple_transition(conn, id, who, "resume", SQL_RESUME,
                             BLAZZ__V1__CAMPAIGN_EVENT_KIND__CAMPAIGN_EVENT_KIND_RESUMED, resumed,
                             err);
}

bz_status cmp_campaign_cancel(PGconn *conn, int64_t id, const cmp_actor *who, int *cancelled,
                              bz_error *err)
{
    return simple_transition(conn, id, who, "cancel", SQL_CANCEL,
                             BLAZZ__V1__CAMPAIGN_EVENT_KIND__CAMPAIGN_EVENT_KIND_CANCELLED,
                             cancelled, err);
}

bz_status cmp_campaign_complete_if_done(PGconn *conn, int64_t id, int *completed, bz_error *err)
{
    char idtext[24];
    snprintf(idtext, sizeof idtext, "%" PRId64, id);
    const char *params[] = {idtext};
    bz_status st = transition(conn, "complete campaign", SQL_COMPLETE, 1, params, completed, err);
    if (st == BZ_OK && *completed)
        st = cmp_event_emit(conn, id, BLAZZ__V1__CAMPAIGN_EVENT_KIND__CAMPAIGN_EVENT_KIND_COMPLETED,
                            "system", NULL, 0, err);
    if (st == BZ_OK && *completed)
        bz_info("campaign %" PRId64 " completed", id);
    return st == BZ_OK ? st : bz_wrap(err, "campaign %" PRId64, id);
}
