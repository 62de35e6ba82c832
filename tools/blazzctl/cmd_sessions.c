/*
 * cmd_sessions.c - `blazzctl sessions`: command whatsapp-web.js sessions as
 * the CRM does through POST /v1/sessions... (a SessionRequest on
 * crm.commands, crm_publish.h; chat-sync applies it and the instance that
 * serves the session gets its command, ARCHITECTURE.md §15), and list the
 * gateway instances the backbone assigns sessions to.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blazzctl.h"
#include "core/uuid.h"
#include "crm_publish.h"
#include "wa/crm_command.h"

static const char sessions_help[] =
    "usage: blazzctl sessions create --workspace W [--session ID] [--gateway G] [--user U]\n"
    "                                [--no-history-sync] [--json]\n"
    "       blazzctl sessions restart|logout|primary --workspace W --session ID [--json]\n"
    "       blazzctl sessions history-sync --workspace W --session ID [--no-history-sync]\n"
    "                                      [--json]\n"
    "       blazzctl sessions instances [--dsn DSN] [--json]\n"
    "\n"
    "create   a new session in workspace W (ID, else a new one), waiting for an instance\n"
    "         of gateway G (else any whatsapp-web.js gateway) with room; its QR code comes\n"
    "         as a session.qr webhook; an operator's create is not held to the\n"
    "         workspace's session quota (crm.sessions_per_workspace, the CRM's);\n"
    "         --no-history-sync: its connects never start the initial history sync\n"
    "restart  restart the session on the instance that serves it\n"
    "logout   log it out (unlink the device); the account stays\n"
    "primary  make it W's primary account (the one that was is demoted)\n"
    "history-sync  switch its initial history sync on (off with --no-history-sync) for\n"
    "         its next connect (restart it to apply at once)\n"
    "instances  the gateway instances, their liveness, capacity and sessions\n"
    "\n"
    "  --brokers B   Kafka (default $BLAZZ_KAFKA_BROKERS)\n"
    "  --prefix P    topic prefix (default $BLAZZ_KAFKA_TOPIC_PREFIX, $BLAZZ_TOPIC_PREFIX or none)\n"
    "  --dsn DSN     PostgreSQL, for instances (default $BLAZZ_PG_DSN)\n"
    "  --json        print the outcome as JSON\n"
    "  --help        this text\n";

typedef struct sessions_options {
    bz_ctl_crm_options crm;
    const char *action, *session, *gateway, *dsn;
    int no_history_sync;
} sessions_options;

static const struct {
    const char *name;
    Blazz__V1__SessionRequestAction action;
} actions[] = {
    {"create", BLAZZ__V1__SESSION_REQUEST_ACTION__SESSION_REQUEST_ACTION_CREATE},
    {"restart", BLAZZ__V1__SESSION_REQUEST_ACTION__SESSION_REQUEST_ACTION_RESTART},
    {"logout", BLAZZ__V1__SESSION_REQUEST_ACTION__SESSION_REQUEST_ACTION_LOGOUT},
    {"primary", BLAZZ__V1__SESSION_REQUEST_ACTION__SESSION_REQUEST_ACTION_PRIMARY},
    {"history-sync", BLAZZ__V1__SESSION_REQUEST_ACTION__SESSION_REQUEST_ACTION_HISTORY_SYNC},
};

static int sessions_option(void *opts, int option, char *value)
{
    sessions_options *o = opts;
    switch (option) {
    case 's': o->session = value; return 0;
    case 'G': o->gateway = value; return 0;
    case 'd': o->dsn = value; return 0;
    case 'N': o->no_history_sync = 1; return 0;
    default: return bz_ctl_crm_option(&o->crm, option, value);
    }
}

static Blazz__V1__SessionRequestAction action_named(const char *name)
{
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
        if (strcmp(actions[i].name, name) == 0)
            return actions[i].action;
    return BLAZZ__V1__SESSION_REQUEST_ACTION__SESSION_REQUEST_ACTION_UNSPECIFIED;
}

static int parse_sessions_options(int argc, char **argv, sessions_options *o)
{
    static const struct option longopts[] = {
        BZ_CTL_CRM_LONGOPTS, {"session", required_argument, NULL, 's'},
        {"gateway", required_argument, NULL, 'G'}, {"dsn", required_argument, NULL, 'd'},
        {"no-history-sync", no_argument, NULL, 'N'}, {NULL, 0, NULL, 0}};
    static const bz_ctl_command_line cl = {"sessions", sessions_help, longopts, sessions_option,
                                           0};
    int rc = bz_ctl_read_options(argc, argv, &cl, o);
    if (rc != BZ_CTL_OPTIONS_RUN)
        return rc;
    if (optind + 1 != argc) {
        bz_ctl_usage_error("sessions", "name one action: create, restart, logout, primary, "
                                       "history-sync or instances");
        return BZ_CTL_OPTIONS_BAD;
    }
    o->action = argv[optind];
    if (strcmp(o->action, "instances") == 0)
        return BZ_CTL_OPTIONS_RUN;
    if (!action_named(o->action)) {
        bz_ctl_usage_error("sessions", "unknown action '%s'", o->action);
        return BZ_CTL_OPTIONS_BAD;
    }
    int takes_sync = strcmp(o->action, "create") == 0 || strcmp(o->action, "history-sync") == 0;
    if (!takes_sync && o->no_history_sync) {
        bz_ctl_usage_error("sessions", "--no-history-sync is create's and history-sync's");
        return BZ_CTL_OPTIONS_BAD;
    }
    if (strcmp(o->action, "create") != 0 && !o->session) {
        bz_ctl_usage_error("sessions", "%s needs --session", o->action);
        return BZ_CTL_OPTIONS_BAD;
    }
    return bz_ctl_crm_kafka("sessions", 0, &o->crm) ? BZ_CTL_OPTIONS_BAD : BZ_CTL_OPTIONS_RUN;
}

static int command_session(const sessions_options *o)
{
    bz_error err;
    bz_error_clear(&err);
    int workspace = 0, user = 0;
    if (bz_ctl_parse_int(o->crm.workspace, 1, 2147483647, "--workspace", &workspace, &err) !=
            BZ_OK ||
        (o->crm.user &&
         bz_ctl_parse_int(o->crm.user, 1, 2147483647, "--user", &user, &err) != BZ_OK))
        return bz_ctl_fail("sessions", &err);
    /* judged whole: the copy below would cut a longer one */
    if (o->session && bz_session_id_check("--session", o->session, &err) != BZ_OK)
        return bz_ctl_fail("sessions", &err);
    char event_id[BZ_UUID_STR_SIZE], session[BZ_SESSION_ID_MAX + 1];
    if (bz_uuid_v4(event_id, &err) != BZ_OK)
        return bz_ctl_fail("sessions", &err);
    snprintf(session, sizeof session, "%s%s", o->session ? "" : "wa-",
             o->session ? o->session : event_id);
    Blazz__V1__SessionRequest r = BLAZZ__V1__SESSION_REQUEST__INIT;
    r.action = action_named(o->action);
    r.gateway_id = (char *)(o->gateway ? o->gateway : "");
    r.user_id = user;
    r.history_sync_off = o->no_history_sync;
    Blazz__V1__CrmCommand cmd = BLAZZ__V1__CRM_COMMAND__INIT;
    cmd.command_case = BLAZZ__V1__CRM_COMMAND__COMMAND_SESSION;
    cmd.session = &r;
    if (bz_ctl_crm_publish_in(&cmd, workspace, BZ_CRM_SESSION_CONVERSATION, session,
                              event_id, o->crm.brokers, o->crm.prefix, &err) != BZ_OK)
        return bz_ctl_fail("sessions", &err);
    if (o->crm.json)
        return bz_ctl_print_json(json_pack("{s:s, s:s, s:s}", "event_id", event_id, "session_id",
                                           session, "action", o->action));
    printf("%s of session %s accepted (event %s)\n", o->action, session, event_id);
    return 0;
}

#define SQL_INSTANCES                                                                             \
    "SELECT i.gateway_id, i.instance_index, coalesce(i.url, ''), i.status, i.capacity, "          \
    "(SELECT count(*) FROM whatsapp_accounts a WHERE a.gateway_id = i.gateway_id AND "            \
    "a.assigned_instance_index = i.instance_index AND a.assignment_epoch > 0 AND "                \
    "a.status <> 'pending_assignment' AND a.deleted_at IS NULL), "                                \
    "round(extract(epoch FROM now() - i.last_heartbeat_at))::bigint, i.boot_id "                   \
    "FROM gateway_instances i ORDER BY i.gateway_id, i.instance_index"

static json_t *instance_json(const PGresult *res, int row)
{
    return json_pack("{s:s, s:I, s:s, s:s, s:I, s:I, s:I, s:s}", "gateway_id",
                     PQgetvalue(res, row, 0), "index",
                     (json_int_t)strtoll(PQgetvalue(res, row, 1), NULL, 10), "url",
                     PQgetvalue(res, row, 2), "status", PQgetvalue(res, row, 3), "capacity",
                     (json_int_t)strtoll(PQgetvalue(res, row, 4), NULL, 10), "sessions",
                     (json_int_t)strtoll(PQgetvalue(res, row, 5), NULL, 10),
                     "seconds_since_heartbeat",
                     (json_int_t)strtoll(PQgetvalue(res, row, 6), NULL, 10), "boot_id",
                     PQgetvalue(res, row, 7));
}

static void instance_text(const PGresult *res, int row)
{
    printf("%-20s %5s  %-5s %5s/%-5s %6ss  %s\n", PQgetvalue(res, row, 0),
           PQgetvalue(res, row, 1), PQgetvalue(res, row, 3), PQgetvalue(res, row, 5),
           PQgetvalue(res, row, 4), PQgetvalue(res, row, 6), PQgetvalue(res, row, 2));
}

static int list_instances(const sessions_options *o)
{
    const char *dsn;
    if (bz_ctl_require_dsn("sessions", o->dsn, &dsn))
        return 1;
    PGconn *conn = bz_ctl_connect_pg("sessions", dsn);
    if (!conn)
        return 1;
    PGresult *res = bz_ctl_exec(conn, "sessions", SQL_INSTANCES, 0, NULL, NULL, NULL);
    int rc = 1;
    if (res) {
        if (!o->crm.json)
            printf("%-20s %5s  %-5s %11s %7s  %s\n", "gateway", "index", "state", "sessions",
                   "beat", "url");
        rc = bz_ctl_print_rows(res, o->crm.json, instance_json, instance_text);
        PQclear(res);
    }
    PQfinish(conn);
    return rc;
}

int bz_ctl_cmd_sessions(int argc, char **argv)
{
    sessions_options o;
    memset(&o, 0, sizeof o);
    int rc = parse_sessions_options(argc, argv, &o);
    if (rc)
        return rc == BZ_CTL_OPTIONS_HELP ? 0 : 1;
    return strcmp(o.action, "instances") == 0 ? list_instances(&o) : command_session(&o);
}
