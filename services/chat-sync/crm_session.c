/*
 * crm_session.c - the CRM commands a whatsapp-web.js session
 * (POST /v1/sessions, /v1/sessions/{id}/restart|logout|primary|history-sync, blazzctl
 * sessions; ARCHITECTURE.md §15), in the consumer's transaction:
 *
 *  - create: a whatsapp_accounts row of the key's workspace, webjs, status
 *    pending_assignment (its gateway, if named, must be an enabled webjs
 *    gateway that serves the workspace: 0046); the assignment sweep gives
 *    it an instance and sends CREATE there. A session id that exists in the
 *    workspace is the same request again and changes nothing; in another
 *    workspace it is refused (session_taken). A workspace that holds the
 *    quota the command carries (crm.sessions_per_workspace of the ingest
 *    that accepted it; 0: none) of live sessions already is refused
 *    (session_quota_exceeded). This count is the one that holds: a
 *    workspace's session commands share one record key, so one consumer
 *    applies them in order, each seeing the rows of those before, whereas
 *    the API's count misses creates accepted but not applied yet. One
 *    STATUS_CHANGED event (pending_assignment);
 *  - restart: the command to the instance that serves the session, under
 *    the epoch it holds (RESTART);
 *  - logout: the session parked at once (disconnected, user_initiated) so
 *    the sweep leaves it alone, and the LOGOUT to its instance under an
 *    epoch raised for it (SQL_LOG_OUT says why); one still waiting for an
 *    instance has none to tell. A logged-out session stays parked where it
 *    was (CS_LOGGED_OUT): restart puts it, like a never-assigned one, back
 *    in the queue, and logging it out again changes nothing;
 *  - primary: the account becomes its workspace's primary and the one that
 *    was is demoted, in this transaction (the unique index of 0030 makes a
 *    second primary impossible); one PRIMARY_CHANGED event per account that
 *    changed;
 *  - history sync: the account's switch (sync_enabled), which the next
 *    CREATE or RESTART of the session carries to its instance (assign.c);
 *    a sync under way is left to finish. No event: the CRM reads the
 *    column.
 * A session of another workspace or none is refused unknown_session (the
 * API answers 404 before that; a blazzctl or replayed command gets its dead
 * letter here).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "chat_sync.h"
#include "wa/crm_command.h"

#define SQL_GATEWAY_OK                                                                            \
    "SELECT 1 FROM gateways WHERE id = $1 AND kind = 'webjs' AND disabled_at IS NULL AND "        \
    "blazz_gateway_serves(id, $2::bigint)"

/* No row when the id exists (the same request again, or another
 * workspace's) or the workspace holds its quota ($5; 0: none) of live
 * sessions already. */
#define SQL_CREATE                                                                                \
    "INSERT INTO whatsapp_accounts AS a (workspace_id, session_id, provider_type, status, "       \
    "gateway_id, created_by, sync_enabled) SELECT $1, $2, 'webjs', 'pending_assignment', "        \
    "nullif($3, ''), (SELECT user_id FROM workspace_users WHERE workspace_id = $1 AND "           \
    "user_id = $4), NOT $6::boolean "                                                             \
    "WHERE $5::bigint = 0 OR (SELECT count(*) FROM whatsapp_accounts h WHERE h.workspace_id = $1 " \
    "AND h.deleted_at IS NULL) < $5::bigint "                                                     \
    "ON CONFLICT (session_id) DO NOTHING RETURNING " CS_MANAGED_ACCOUNT_COLUMNS

#define SQL_SESSION_OWNER "SELECT workspace_id FROM whatsapp_accounts WHERE session_id = $1"

#define SQL_LOCK_SESSION                                                                          \
    "SELECT " CS_MANAGED_ACCOUNT_COLUMNS ", a.provider_type FROM whatsapp_accounts a "            \
    "WHERE a.session_id = $1 AND a.workspace_id = $2 AND a.deleted_at IS NULL FOR UPDATE"

/* A logout parks the session at once (CS_LOGGED_OUT) and, when it was ever
 * assigned, raises its epoch: what an instance says afterwards under the
 * epoch it held is refused and answered with a STOP, so a LOGOUT it never
 * acts on (read after its lease lapsed, or its process restarted first)
 * still leaves the session parked, and neither that instance's restart
 * nor the sweep brings it back. */
#define SQL_LOG_OUT                                                                               \
    "UPDATE whatsapp_accounts SET status = 'disconnected', disconnected_at = now(), "              \
    "disconnect_reason = 'user_initiated', disconnect_details = $2, assignment_epoch = CASE "     \
    "WHEN assignment_epoch > 0 THEN assignment_epoch + 1 ELSE 0 END WHERE id = $1 "              \
    "RETURNING assignment_epoch"

#define SQL_REQUEUE "UPDATE whatsapp_accounts SET status = 'pending_assignment' WHERE id = $1"

#define SQL_SYNC_SWITCH "UPDATE whatsapp_accounts SET sync_enabled = NOT $2::boolean WHERE id = $1"

#define SQL_DEMOTE                                                                                \
    "UPDATE whatsapp_accounts a SET is_primary = false WHERE a.workspace_id = $1 AND "            \
    "a.is_primary AND a.id <> $2 AND a.deleted_at IS NULL RETURNING " CS_MANAGED_ACCOUNT_COLUMNS

#define SQL_PROMOTE                                                                               \
    "UPDATE whatsapp_accounts a SET is_primary = true WHERE a.id = $1 AND NOT a.is_primary "      \
    "RETURNING " CS_MANAGED_ACCOUNT_COLUMNS

typedef struct request {
    cs_batch *b;
    PGconn *conn;
    const Blazz__V1__CrmCommand *cmd;
    const Blazz__V1__SessionRequest *r;
    char workspace[24], user[24];
} request;

static bz_status unknown_session(const request *q, bz_error *err)
{
    return bz_reject(err, "unknown_session",
                     "field session_id: no session %s in workspace %s",
                     q->cmd->envelope->session_id, q->workspace);
}

static bz_status out_of_memory(bz_error *err)
{
    return bz_fail(err, BZ_ERR_TRANSIENT, "session command: out of memory");
}

/* The rows res returned as accounts, each with one event of kind. */
static bz_status emit_for_rows(const request *q, PGresult *res, const char *tag, int kind,
                               int previous_status, bz_error *err)
{
    bz_status st = BZ_OK;
    for (int i = 0; st == BZ_OK && i < PQntuples(res); i++) {
        cs_account *a = cs_managed_account_parse(q->b, res, i);
        st = a ? cs_emit_account_event(q->b, q->cmd->envelope, tag, i, kind, a,
                                       previous_status >= 0 ? previous_status : a->status, NULL,
                                       err)
               : out_of_memory(err);
    }
    return st;
}

static bz_status check_gateway(const request *q, bz_error *err)
{
    if (!*q->r->gateway_id)
        return BZ_OK;
    const char *params[] = {q->r->gateway_id, q->workspace};
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(q->conn, "check the session's gateway", SQL_GATEWAY_OK, 2,
                                     params, &res, err);
    if (st == BZ_OK && PQntuples(res) == 0)
        st = bz_reject(err, "unknown_gateway",
                       "field gateway_id: %s is no enabled whatsapp-web.js gateway of workspace "
                       "%s",
                       q->r->gateway_id, q->workspace);
    PQclear(res);
    return st;
}

static bz_status create(const request *q, bz_error *err)
{
    bz_status st = check_gateway(q, err);
    char quota[16];
    snprintf(quota, sizeof quota, "%" PRIu32, q->r->session_quota);
    const char *params[] = {q->workspace, q->cmd->envelope->session_id, q->r->gateway_id,
                            q->user, quota, q->r->history_sync_off ? "t" : "f"};
    PGresult *res = NULL;
    if (st == BZ_OK)
        st = bz_pg_exec_params(q->conn, "create the session", SQL_CREATE, 6, params, &res, err);
    if (st == BZ_OK && PQntuples(res) == 0) {
        /* there already (the same request again, or another workspace's
         * id), else the workspace is at its quota */
        PQclear(res);
        res = NULL;
        st = bz_pg_exec_params(q->conn, "find the session's workspace", SQL_SESSION_OWNER, 1,
                               params + 1, &res, err);
        if (st == BZ_OK && PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), q->workspace) != 0)
            st = bz_reject(err, "session_taken",
                           "field session_id: %s is another workspace's session",
                           q->cmd->envelope->session_id);
        else if (st == BZ_OK && PQntuples(res) == 0)
            st = bz_reject(err, "session_quota_exceeded",
                           "field session_id: workspace %s holds its limit of %s live sessions",
                           q->workspace, quota);
        PQclear(res);
        return st;
    }
    if (st == BZ_OK)
        st = emit_for_rows(q, res, "session_created",
                           BLAZZ__V1__SESSION_EVENT_KIND__SESSION_EVENT_KIND_STATUS_CHANGED,
                           BLAZZ__V1__SESSION_STATE__SESSION_STATE_UNSPECIFIED, err);
    PQclear(res);
    if (st == BZ_OK)
        st = cs_sessions_notify(q->conn, err);
    return st;
}

/* The session of the request, locked; NULL with err set (unknown_session,
 * or not_webjs when whatsapp_web is asked of a Meta account). */
static cs_account *lock_session(const request *q, int whatsapp_web, bz_error *err)
{
    const char *params[] = {q->cmd->envelope->session_id, q->workspace};
    PGresult *res = NULL;
    cs_account *a = NULL;
    bz_status st = bz_pg_exec_params(q->conn, "lock the session", SQL_LOCK_SESSION, 2, params,
                                     &res, err);
    if (st == BZ_OK && PQntuples(res) == 0)
        unknown_session(q, err);
    else if (st == BZ_OK && whatsapp_web &&
             strcmp(PQgetvalue(res, 0, CS_MANAGED_ACCOUNT_NCOLUMNS), "webjs") != 0)
        bz_reject(err, "not_webjs",
                  "field session_id: %s is a Meta Cloud API number; only whatsapp-web.js "
                  "sessions restart, log out or switch their history sync",
                  q->cmd->envelope->session_id);
    else if (st == BZ_OK && !(a = cs_managed_account_parse(q->b, res, 0)))
        out_of_memory(err);
    PQclear(res);
    return a;
}

static bz_status set_status(const request *q, cs_account *a, const char *sql, int status,
                            bz_error *err)
{
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, a->id);
    const char *params[] = {id};
    bz_status st = bz_pg_exec_params(q->conn, "change the session's status", sql, 1, params,
                                     NULL, err);
    int previous = a->status;
    a->status = status;
    if (st == BZ_OK)
        st = cs_emit_account_event(q->b, q->cmd->envelope, "session_status", 0,
                                   BLAZZ__V1__SESSION_EVENT_KIND__SESSION_EVENT_KIND_STATUS_CHANGED,
                                   a, previous, NULL, err);
    return st;
}

/* Whether an instance serves the session and can be told. */
static int has_instance_to_tell(const cs_account *a)
{
    return a->has_instance && !a->logged_out &&
           a->status != BLAZZ__V1__SESSION_STATE__SESSION_STATE_PENDING_ASSIGNMENT;
}

/* The command to the instance that serves the session, under the epoch it
 * holds (raised by a logout). */
static bz_status tell_instance(const request *q, const cs_account *a, int logout, bz_error *err)
{
    cs_session_order order = {.action = logout ? BLAZZ__V1__SESSION_ACTION__SESSION_ACTION_LOGOUT
                                               : BLAZZ__V1__SESSION_ACTION__SESSION_ACTION_RESTART,
                              .instance_index = a->instance_index,
                              .instance_url = a->instance_url,
                              .epoch = a->epoch,
                              .reason = logout ? "logout requested" : "restart requested",
                              .requested_by = q->cmd->envelope->source};
    return cs_emit_session_command(q->b, q->cmd->envelope, logout ? "logout" : "restart", 0, a,
                                   &order, err);
}

/* The session parked logged out (SQL_LOG_OUT), one STATUS_CHANGED event,
 * and the LOGOUT to its instance if one serves it. */
static bz_status log_out(const request *q, cs_account *a, bz_error *err)
{
    int served = has_instance_to_tell(a);
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, a->id);
    const char *params[] = {id,
                            served ? "logout requested" : "logged out before it had an instance"};
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(q->conn, "log the session out", SQL_LOG_OUT, 2, params, &res,
                                     err);
    if (st == BZ_OK)
        a->epoch = bz_pg_get_int64(res, 0, 0);
    PQclear(res);
    if (st != BZ_OK)
        return st;
    int previous = a->status;
    a->status = BLAZZ__V1__SESSION_STATE__SESSION_STATE_DISCONNECTED;
    a->disconnect_reason = (char *)cs_disconnect_text(
        BLAZZ__V1__DISCONNECT_REASON__DISCONNECT_REASON_USER_INITIATED);
    st = cs_emit_account_event(q->b, q->cmd->envelope, "session_status", 0,
                               BLAZZ__V1__SESSION_EVENT_KIND__SESSION_EVENT_KIND_STATUS_CHANGED, a,
                               previous, NULL, err);
    return st == BZ_OK && served ? tell_instance(q, a, 1, err) : st;
}

static bz_status restart_or_logout(const request *q, int logout, bz_error *err)
{
    cs_account *a = lock_session(q, 1, err);
    if (!a)
        return err->code;
    if (logout)
        return has_instance_to_tell(a) ||
                       a->status == BLAZZ__V1__SESSION_STATE__SESSION_STATE_PENDING_ASSIGNMENT
                   ? log_out(q, a, err)
                   : BZ_OK;
    if (has_instance_to_tell(a))
        return tell_instance(q, a, 0, err);
    if (a->status != BLAZZ__V1__SESSION_STATE__SESSION_STATE_PENDING_ASSIGNMENT) {
        bz_status st = set_status(q, a, SQL_REQUEUE,
                                  BLAZZ__V1__SESSION_STATE__SESSION_STATE_PENDING_ASSIGNMENT, err);
        return st == BZ_OK ? cs_sessions_notify(q->conn, err) : st;
    }
    return BZ_OK;
}

static bz_status make_primary(const request *q, bz_error *err)
{
    cs_account *a = lock_session(q, 0, err);
    if (!a)
        return err->code;
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, a->id);
    const char *demote[] = {q->workspace, id};
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(q->conn, "demote the workspace's primary", SQL_DEMOTE, 2,
                                     demote, &res, err);
    if (st == BZ_OK)
        st = emit_for_rows(q, res, "primary_demoted",
                           BLAZZ__V1__SESSION_EVENT_KIND__SESSION_EVENT_KIND_PRIMARY_CHANGED, -1,
                           err);
    PQclear(res);
    res = NULL;
    const char *promote[] = {id};
    if (st == BZ_OK)
        st = bz_pg_exec_params(q->conn, "make the session primary", SQL_PROMOTE, 1, promote, &res,
                               err);
    if (st == BZ_OK)
        st = emit_for_rows(q, res, "primary_set",
                           BLAZZ__V1__SESSION_EVENT_KIND__SESSION_EVENT_KIND_PRIMARY_CHANGED, -1,
                           err);
    PQclear(res);
    return st;
}

static bz_status switch_history_sync(const request *q, bz_error *err)
{
    cs_account *a = lock_session(q, 1, err);
    if (!a)
        return err->code;
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, a->id);
    const char *params[] = {id, q->r->history_sync_off ? "t" : "f"};
    return bz_pg_exec_params(q->conn, "switch the session's history sync", SQL_SYNC_SWITCH, 2,
                             params, NULL, err);
}

bz_status cs_crm_session(cs_batch *b, PGconn *conn, const Blazz__V1__CrmCommand *cmd,
                         bz_error *err)
{
    request q = {.b = b, .conn = conn, .cmd = cmd, .r = cmd->session};
    snprintf(q.workspace, sizeof q.workspace, "%" PRId64, cmd->envelope->workspace_id);
    snprintf(q.user, sizeof q.user, "%" PRId64, q.r->user_id);
    switch (q.r->action) {
    case BLAZZ__V1__SESSION_REQUEST_ACTION__SESSION_REQUEST_ACTION_CREATE:
        return create(&q, err);
    case BLAZZ__V1__SESSION_REQUEST_ACTION__SESSION_REQUEST_ACTION_RESTART:
        return restart_or_logout(&q, 0, err);
    case BLAZZ__V1__SESSION_REQUEST_ACTION__SESSION_REQUEST_ACTION_LOGOUT:
        return restart_or_logout(&q, 1, err);
    case BLAZZ__V1__SESSION_REQUEST_ACTION__SESSION_REQUEST_ACTION_PRIMARY:
        return make_primary(&q, err);
    case BLAZZ__V1__SESSION_REQUEST_ACTION__SESSION_REQUEST_ACTION_HISTORY_SYNC:
        return switch_history_sync(&q, err);
    default:
        return bz_reject(err, "invalid_field", "field action: unknown session action %d",
                         q.r->action);
    }
}
