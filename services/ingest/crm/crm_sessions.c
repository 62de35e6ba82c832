/*
 * crm_sessions.c - the CRM commands whatsapp-web.js sessions, on a worker
 * (crm_sessions.h; ARCHITECTURE.md §15):
 *
 *   POST /v1/sessions                          create one: 202 with its id at once
 *   POST /v1/sessions/{session_id}/restart     restart it where it runs
 *   POST /v1/sessions/{session_id}/logout      unlink the device, keep the account
 *   POST /v1/sessions/{session_id}/primary     make it the workspace's primary account
 *   POST /v1/sessions/{session_id}/history-sync  {"history_sync": bool}: its
 *                                              initial-sync switch, for its next connect
 *
 * Each becomes one SessionRequest on crm.commands, keyed
 * "<workspace_id>:session" so a workspace's session commands apply in the
 * order they were accepted; chat-sync applies it (crm_session.c there) and
 * the instance serving the session gets its command. What the API can
 * check it does here, in the key's workspace: the session (404
 * unknown_session; 409 not_webjs when a Meta number is asked to restart or
 * log out or switch its sync), for a create the gateway (404 unknown_gateway, also for one
 * granted to other workspaces only: 0046), the session id (409
 * session_taken when another workspace has it) and the workspace's quota
 * of live sessions (409 session_quota_exceeded, crm.sessions_per_workspace,
 * which the command carries: chat-sync checks it again where it creates
 * the row, and its check is the one that holds). A session id, the path's
 * or the body's, must be one a gateway can name a file after
 * (bz_session_id_valid): 400 invalid_field else. A create's session
 * id is the body's, else derived from the workspace and the
 * Idempotency-Key (a retried request names the same session), else new;
 * its answer says the session waits for an instance (session_status
 * pending_assignment, as every new session starts) and whether one had
 * room when it was accepted (waiting_for_room).
 */
#include "crm/crm_sessions.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/uuid.h"
#include "crm/crm_json.h"
#include "crm/crm_request.h"
#include "pg/pg.h"
#include "wa/crm_command.h"

#define SESSIONS_PATH "/v1/sessions"

#define SQL_SESSION_KIND                                                                          \
    "SELECT provider_type FROM whatsapp_accounts WHERE workspace_id = $1 AND session_id = $2 "   \
    "AND deleted_at IS NULL"
#define SQL_SESSION_OWNER "SELECT workspace_id FROM whatsapp_accounts WHERE session_id = $1"
/* A gateway the workspace ($1) may not use (0046) is answered as one that
 * does not exist, so no workspace learns another's gateways. */
#define SQL_GATEWAY                                                                               \
    "SELECT 1 FROM gateways WHERE id = $2 AND kind = 'webjs' AND disabled_at IS NULL AND "        \
    "blazz_gateway_serves(id, $1)"
/* Whether a live instance of the gateway ($1, or any whatsapp-web.js
 * gateway the workspace $2 may use when empty) has room; the sweep
 * decides, this only informs. */
#define SQL_ROOM                                                                                  \
    "SELECT EXISTS (SELECT 1 FROM gateway_instances i JOIN gateways g ON g.id = i.gateway_id "    \
    "AND g.kind = 'webjs' AND g.disabled_at IS NULL WHERE i.status = 'live' AND "                 \
    "($1 = '' OR i.gateway_id = $1) AND blazz_gateway_serves(i.gateway_id, $2::bigint) AND "      \
    "i.capacity > (SELECT count(*) FROM whatsapp_accounts a "                                    \
    "WHERE a.gateway_id = i.gateway_id AND a.assigned_instance_index = i.instance_index AND "     \
    "a.assignment_epoch > 0 AND a.status <> 'pending_assignment' AND a.deleted_at IS NULL))"
/* The workspace's live sessions, which crm.sessions_per_workspace bounds. */
#define SQL_SESSIONS_HELD                                                                         \
    "SELECT count(*) FROM whatsapp_accounts WHERE workspace_id = $1 AND deleted_at IS NULL"
#define SQL_USER                                                                                  \
    "SELECT u.id FROM users u JOIN workspace_users m ON m.user_id = u.id "                        \
    "WHERE u.id = $2 AND m.workspace_id = $1 AND u.deleted_at IS NULL"

static const struct {
    const char *suffix;
    int route;
    Blazz__V1__SessionRequestAction action;
} commands[] = {
    {"/restart", ING_CRM_SESSION_RESTART,
     BLAZZ__V1__SESSION_REQUEST_ACTION__SESSION_REQUEST_ACTION_RESTART},
    {"/logout", ING_CRM_SESSION_LOGOUT,
     BLAZZ__V1__SESSION_REQUEST_ACTION__SESSION_REQUEST_ACTION_LOGOUT},
    {"/primary", ING_CRM_SESSION_PRIMARY,
     BLAZZ__V1__SESSION_REQUEST_ACTION__SESSION_REQUEST_ACTION_PRIMARY},
    {"/history-sync", ING_CRM_SESSION_HISTORY_SYNC,
     BLAZZ__V1__SESSION_REQUEST_ACTION__SESSION_REQUEST_ACTION_HISTORY_SYNC},
};

int ing_crm_session_route(const char *url, char *session, size_t cap)
{
    if (strcmp(url, SESSIONS_PATH) == 0)
        return ING_CRM_SESSION_CREATE;
    size_t prefix = strlen(SESSIONS_PATH "/"), len = strlen(url);
    if (strncmp(url, SESSIONS_PATH "/", prefix) != 0)
        return ING_CRM_SESSION_NONE;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        size_t suffix = strlen(commands[i].suffix);
        if (len <= prefix + suffix || strcmp(url + len - suffix, commands[i].suffix) != 0)
            continue;
        if (session)
            snprintf(session, cap, "%.*s", (int)(len - prefix - suffix), url + prefix);
        return commands[i].route;
    }
    return ING_CRM_SESSION_NONE;
}

static Blazz__V1__SessionRequestAction action_of(int route)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (commands[i].route == route)
            return commands[i].action;
    return BLAZZ__V1__SESSION_REQUEST_ACTION__SESSION_REQUEST_ACTION_CREATE;
}

/* A create's session id: the body's, else one derived from the
 * Idempotency-Key, else a new one. */
static void new_session_id(const ing_crm_request *rq, char out[BZ_SESSION_ID_MAX + 1])
{
    const char *key = ing_crm_request_idempotency_key(rq);
    char id[BZ_UUID_STR_SIZE];
    bz_error err;
    if (key && *key)
        bz_crm_message_id(rq->workspace_id, key, id);
    else if (bz_uuid_v4(id, &err) != BZ_OK)
        id[0] = '\0';
    snprintf(out, BZ_SESSION_ID_MAX + 1, "wa-%s", id);
}

static bz_status check_user(ing_crm_request *rq, int64_t user_id, bz_error *err)
{
    if (user_id <= 0)
        return BZ_OK;
    char text[24];
    snprintf(text, sizeof text, "%" PRId64, user_id);
    PGresult *res = NULL;
    bz_status st = ing_crm_lookup(rq, "look up the user", SQL_USER, text, &res, err);
    PQclear(res);
    return st == BZ_OK && !res
               ? ing_crm_not_found(err, "unknown_user", "user_id", rq->workspace_id)
               : st;
}

/* A session the workspace does not hold yet fits under its quota: the
 * early answer; chat-sync's create, which counts again in its transaction,
 * decides (crm_session.c there). */
static bz_status check_quota(ing_crm_request *rq, uint32_t quota, bz_error *err)
{
    if (quota == 0)
        return BZ_OK;
    char ws[24];
    snprintf(ws, sizeof ws, "%" PRId64, rq->workspace_id);
    const char *params[] = {ws};
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(rq->pg, "count the workspace's sessions", SQL_SESSIONS_HELD,
                                     1, params, &res, err);
    int64_t held = st == BZ_OK ? bz_pg_get_int64(res, 0, 0) : 0;
    PQclear(res);
    if (st == BZ_OK && held >= (int64_t)quota) {
        st = bz_fail(err, BZ_ERR_CONFLICT,
                     "field session_id: workspace %" PRId64 " holds %" PRId64
                     " live sessions, its limit is %" PRIu32 " (crm.sessions_per_workspace)",
                     rq->workspace_id, held, quota);
        err->reason = "session_quota_exceeded";
    }
    return st;
}

/* A new session: its gateway serves whatsapp-web.js and the workspace, its
 * id is not another workspace's, and unless it is the workspace's already
 * (a retry) the workspace has room for it under its quota, which the
 * command carries for chat-sync; *room: whether an instance has room for
 * it now. */
/* Gateways belong to no workspace: one that does not exist, is disabled, is
 * not whatsapp-web.js or is granted to other workspaces only gets one
 * answer, which tells a workspace nothing of the gateways it may not use. */
static bz_status unknown_gateway(bz_error *err)
{
    return bz_fail_because(err, BZ_ERR_NOT_FOUND, "unknown_gateway",
                           "field gateway_id: no enabled whatsapp-web.js gateway by that id "
                           "serves this workspace");
}

static bz_status check_create(ing_crm_request *rq, Blazz__V1__SessionRequest *r,
                              const char *session_id, int *room, bz_error *err)
{
    PGresult *res = NULL;
    bz_status st = BZ_OK;
    if (*r->gateway_id) {
        st = ing_crm_lookup(rq, "look up the gateway", SQL_GATEWAY, r->gateway_id, &res, err);
        if (st == BZ_OK && !res)
            st = unknown_gateway(err);
        PQclear(res);
        res = NULL;
    }
    const char *owner_params[] = {session_id};
    if (st == BZ_OK)
        st = bz_pg_exec_params(rq->pg, "look up the session id", SQL_SESSION_OWNER, 1,
                               owner_params, &res, err);
    int exists = st == BZ_OK && PQntuples(res) == 1;
    if (exists && bz_pg_get_int64(res, 0, 0) != rq->workspace_id) {
        st = bz_fail(err, BZ_ERR_CONFLICT, "field session_id: %s is another workspace's session",
                     session_id);
        err->reason = "session_taken";
    }
    PQclear(res);
    res = NULL;
    r->session_quota = ing_crm_request_config(rq)->sessions_per_workspace;
    if (st == BZ_OK && !exists)
        st = check_quota(rq, r->session_quota, err);
    char ws[24];
    snprintf(ws, sizeof ws, "%" PRId64, rq->workspace_id);
    const char *room_params[] = {r->gateway_id, ws};
    if (st == BZ_OK)
        st = bz_pg_exec_params(rq->pg, "look for an instance with room", SQL_ROOM, 2, room_params,
                               &res, err);
    *room = st == BZ_OK && PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    return st;
}

/* An existing session of the workspace; restart, logout and the sync
 * switch want one of whatsapp-web.js. */
static bz_status check_existing(ing_crm_request *rq, Blazz__V1__SessionRequestAction action,
                                const char *session_id, bz_error *err)
{
    PGresult *res = NULL;
    bz_status st =
        ing_crm_lookup(rq, "look up the session", SQL_SESSION_KIND, session_id, &res, err);
    if (st == BZ_OK && !res)
        return ing_crm_not_found(err, "unknown_session", "session_id", rq->workspace_id);
    if (st == BZ_OK && action != BLAZZ__V1__SESSION_REQUEST_ACTION__SESSION_REQUEST_ACTION_PRIMARY &&
        strcmp(PQgetvalue(res, 0, 0), "webjs") != 0) {
        st = bz_fail(err, BZ_ERR_CONFLICT,
                     "field session_id: %s is a Meta Cloud API number; only whatsapp-web.js "
                     "sessions restart, log out or switch their history sync",
                     session_id);
        err->reason = "not_webjs";
    }
    PQclear(res);
    return st;
}

/* The session id the request is about (path or body) into session_id. */
static bz_status session_of(const ing_crm_request *rq, int route, const char *body_session,
                            char session_id[BZ_SESSION_ID_MAX + 1], bz_error *err)
{
    /* one byte more than an id holds, so that a longer one is refused, not cut */
    char path_session[BZ_SESSION_ID_MAX + 2];
    const char *given = body_session;
    if (route == ING_CRM_SESSION_CREATE) {
        const char *key = ing_crm_request_idempotency_key(rq);
        if (key && *key && bz_crm_idempotency_key_check(key, err) != BZ_OK)
            return err->code;
        if (!body_session || !*body_session) { /* empty: absent, as everywhere in the API */
            new_session_id(rq, session_id);
            given = session_id;
        }
    } else {
        if (body_session)
            return bz_reject(err, "invalid_field",
                             "field session_id: named by the path, not the body");
        ing_crm_session_route(ing_crm_request_path(rq), path_session, sizeof path_session);
        given = path_session;
    }
    bz_status st = bz_session_id_check("session_id", given, err);
    if (st == BZ_OK && given != session_id) /* checked: at most BZ_SESSION_ID_MAX bytes */
        memcpy(session_id, given, strlen(given) + 1);
    return st;
}

void ing_crm_accept_session(ing_crm_request *rq, const char *body, size_t len)
{
    int route = ing_crm_session_route(ing_crm_request_path(rq), NULL, 0);
    Blazz__V1__SessionRequest *r = NULL;
    char *body_session = NULL, session_id[BZ_SESSION_ID_MAX + 1] = "";
    char event_id[BZ_UUID_STR_SIZE];
    int room = 0, sync_named = 0;
    bz_error err;
    bz_status st = ing_crm_json_session(body, len, &r, &body_session, &sync_named, &err);
    if (st == BZ_OK) {
        r->action = action_of(route);
        st = session_of(rq, route, body_session, session_id, &err);
    }
    int takes_sync = route == ING_CRM_SESSION_CREATE || route == ING_CRM_SESSION_HISTORY_SYNC;
    if (st == BZ_OK && route != ING_CRM_SESSION_CREATE &&
        (*r->gateway_id || r->user_id || (sync_named && !takes_sync)))
        st = bz_reject(&err, "invalid_field", "field %s: only a new session takes one",
                       *r->gateway_id ? "gateway_id" : r->user_id ? "user_id" : "history_sync");
    if (st == BZ_OK && route == ING_CRM_SESSION_HISTORY_SYNC && !sync_named)
        st = bz_reject(&err, "missing_field", "field history_sync: required, true or false");
    if (st == BZ_OK)
        st = check_user(rq, r->user_id, &err);
    if (st == BZ_OK)
        st = route == ING_CRM_SESSION_CREATE ? check_create(rq, r, session_id, &room, &err)
                                                   : check_existing(rq, r->action, session_id,
                                                                    &err);
    if (st == BZ_OK)
        st = bz_uuid_v4(event_id, &err);
    if (st != BZ_OK) {
        ing_crm_refuse(rq, &err);
    } else {
        Blazz__V1__CrmCommand cmd = BLAZZ__V1__CRM_COMMAND__INIT;
        cmd.command_case = BLAZZ__V1__CRM_COMMAND__COMMAND_SESSION;
        cmd.session = r;
        Blazz__V1__Envelope env;
        ing_crm_address(rq, &cmd, &env, event_id, BZ_CRM_SESSION_CONVERSATION);
        env.session_id = session_id;
        char extra[BZ_SESSION_ID_MAX * 2 + 128], escaped[BZ_SESSION_ID_MAX * 2 + 1];
        bz_json_escape(escaped, sizeof escaped, session_id);
        if (route == ING_CRM_SESSION_CREATE)
            snprintf(extra, sizeof extra,
                     ",\"session_id\":\"%s\",\"session_status\":\"pending_assignment\","
                     "\"waiting_for_room\":%s",
                     escaped, room ? "false" : "true");
        else
            snprintf(extra, sizeof extra, ",\"session_id\":\"%s\"", escaped);
        ing_crm_publish(rq, &cmd, "event_id", extra);
    }
    if (r)
        blazz__v1__session_request__free_unpacked(r, NULL);
    free(body_session);
}
