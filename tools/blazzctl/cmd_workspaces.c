/*
 * cmd_workspaces.c - `blazzctl workspaces create|list`: the tenants an
 * operator makes, each with its own API keys (`blazzctl apikeys`).
 *
 * A workspace is the operator's to make, never a CRM's: a CRM's API key
 * is scoped to one workspace, and no credential of ingest's public HTTP
 * edge names more than one (docs/SECURITY.md, "The CRM revokes its API
 * keys, nothing more"). So this is done with the operator's own PostgreSQL
 * credential, as the keys are.
 * `create` checks the time zone against PostgreSQL's own list, so that a
 * misspelt one is refused here, not later by a campaign's schedule. All SQL
 * is parameterized.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "blazzctl.h"
#include "pg/pg.h"

static const char workspaces_help[] =
    "usage: blazzctl workspaces create --name NAME [--timezone TZ] [--json]\n"
    "       blazzctl workspaces list [--json]\n"
    "\n"
    "create:  a new workspace (a tenant); prints its id and uuid. --timezone is an\n"
    "         IANA name such as Asia/Jakarta (default UTC). Then give its CRM a key:\n"
    "         blazzctl apikeys create --workspace <id> --name <name>.\n"
    "list:    the live workspaces: id, uuid, name, time zone, created.\n"
    "\n"
    "  --dsn DSN   PostgreSQL (default $BLAZZ_PG_DSN)\n"
    "  --json      print the outcome as JSON\n"
    "  --help      this text\n";

#define WORKSPACE_CREATED                                                                        \
    "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
#define SQL_CREATE                                                                               \
    "INSERT INTO workspaces (name, timezone) SELECT $1, $2 "                                      \
    "WHERE EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $2) "                            \
    "RETURNING id, uuid::text, name, timezone, " WORKSPACE_CREATED
#define SQL_LIST                                                                                 \
    "SELECT id, uuid::text, name, timezone, " WORKSPACE_CREATED " FROM workspaces "               \
    "WHERE deleted_at IS NULL ORDER BY id"

typedef struct workspaces_options {
    const char *action, *name, *timezone, *dsn;
    int json;
} workspaces_options;

static int workspaces_option(void *opts, int option, char *value)
{
    workspaces_options *o = opts;
    switch (option) {
    case 'n': o->name = value; break;
    case 't': o->timezone = value; break;
    case 'd': o->dsn = value; break;
    case 'j': o->json = 1; break;
    }
    return 0;
}

static int parse_workspaces_options(int argc, char **argv, workspaces_options *o)
{
    static const struct option longopts[] = {
        {"name", required_argument, NULL, 'n'}, {"timezone", required_argument, NULL, 't'},
        {"dsn", required_argument, NULL, 'd'},  {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0}};
    static const bz_ctl_command_line cl = {"workspaces", workspaces_help, longopts,
                                           workspaces_option, 0};
    int rc = bz_ctl_read_options(argc, argv, &cl, o);
    if (rc != BZ_CTL_OPTIONS_RUN)
        return rc;
    if (optind + 1 != argc) {
        bz_ctl_usage_error("workspaces", "say one of create, list");
        return 1;
    }
    o->action = argv[optind];
    if (bz_ctl_dsn_setting("workspaces", o->dsn, &o->dsn))
        return 1;
    int create = strcmp(o->action, "create") == 0;
    if (!o->dsn || (create && (!o->name || !o->name[0])) ||
        (!create && (o->name || o->timezone))) {
        bz_ctl_usage_error("workspaces", "missing or extra options for '%s' (or no $BLAZZ_PG_DSN)",
                           o->action);
        return 1;
    }
    return 0;
}

static json_t *workspace_json(const PGresult *res, int i)
{
    return json_pack("{s:I, s:s, s:s, s:s, s:s}", "id",
                     (json_int_t)strtoll(PQgetvalue(res, i, 0), NULL, 10), "uuid",
                     PQgetvalue(res, i, 1), "name", PQgetvalue(res, i, 2), "timezone",
                     PQgetvalue(res, i, 3), "created_at", PQgetvalue(res, i, 4));
}

static void print_workspace(const PGresult *res, int i)
{
    printf("%-6s %s  %-32s %-20s created %s\n", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
           PQgetvalue(res, i, 2), PQgetvalue(res, i, 3), PQgetvalue(res, i, 4));
}

static int create_workspace(PGconn *conn, const workspaces_options *o)
{
    bz_error err;
    PGresult *res = NULL;
    const char *params[] = {o->name, o->timezone ? o->timezone : "UTC"};
    if (bz_pg_exec_params(conn, "create the workspace", SQL_CREATE, 2, params, &res, &err) !=
        BZ_OK)
        return bz_ctl_fail("workspaces create", &err);
    int rc = 0;
    if (PQntuples(res) == 0) {
        fprintf(stderr, "blazzctl workspaces create: unknown time zone '%s' (an IANA name such "
                        "as Asia/Jakarta)\n",
                params[1]);
        rc = 1;
    } else if (o->json) {
        rc = bz_ctl_print_json(workspace_json(res, 0));
    } else {
        print_workspace(res, 0);
    }
    PQclear(res);
    return rc;
}

static int list_workspaces(PGconn *conn, const workspaces_options *o)
{
    bz_error err;
    PGresult *res = NULL;
    if (bz_pg_exec_params(conn, "list the workspaces", SQL_LIST, 0, NULL, &res, &err) != BZ_OK)
        return bz_ctl_fail("workspaces list", &err);
    int rc = bz_ctl_print_rows(res, o->json, workspace_json, print_workspace);
    PQclear(res);
    return rc;
}

int bz_ctl_cmd_workspaces(int argc, char **argv)
{
    workspaces_options o;
    memset(&o, 0, sizeof o);
    int rc = parse_workspaces_options(argc, argv, &o);
    if (rc)
        return rc == BZ_CTL_OPTIONS_HELP ? 0 : 1;
    PGconn *conn = bz_ctl_connect_pg("workspaces", o.dsn);
    if (!conn)
        return 1;
    if (strcmp(o.action, "create") == 0)
        rc = create_workspace(conn, &o);
    else if (strcmp(o.action, "list") == 0)
        rc = list_workspaces(conn, &o);
    else
        bz_ctl_usage_error("workspaces", "unknown action '%s'", o.action), rc = 1;
    PQfinish(conn);
    return rc;
}
