/*
 * cmd_migrate.c - `blazzctl migrate`: apply db/migrations to PostgreSQL.
 *
 * A thin shell over bz_migrate_apply (libs/pg/migrate.h): connect, apply,
 * report. Safe to run from several places at once (the migrator serializes
 * on an advisory lock) and to re-run (a no-op when nothing is new). The DSN
 * is never printed: it may carry a password.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>

#include "blazzctl.h"
#include "pg/migrate.h"

static const char migrate_help[] =
    "usage: blazzctl migrate [--dir DIR] [--dsn DSN] [--json]\n"
    "\n"
    "Apply the pending NNNN_name.sql files of DIR in order, each in its own\n"
    "transaction, recording them in schema_migrations. Refuses edited applied\n"
    "files, gaps and duplicate versions.\n"
    "\n"
    "  --dir DIR   migrations folder (default $BLAZZ_MIGRATIONS_DIR or db/migrations)\n"
    "  --dsn DSN   PostgreSQL connection string (default $BLAZZ_PG_DSN)\n"
    "  --json      print the outcome as JSON\n"
    "  --help      this text\n";

typedef struct migrate_options {
    const char *dir;
    const char *dsn;
    int json;
} migrate_options;

static int migrate_option(void *opts, int option, char *value)
{
    migrate_options *o = opts;
    switch (option) {
    case 'd': o->dir = value; break;
    case 's': o->dsn = value; break;
    case 'j': o->json = 1; break;
    }
    return 0;
}

/* BZ_CTL_OPTIONS_RUN, _BAD or _HELP (options.h). */
static int parse_migrate_options(int argc, char **argv, migrate_options *o)
{
    static const struct option longopts[] = {
        {"dir", required_argument, NULL, 'd'}, {"dsn", required_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},      {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    static const bz_ctl_command_line cl = {"migrate", migrate_help, longopts, migrate_option, 1};
    int rc = bz_ctl_read_options(argc, argv, &cl, o);
    if (rc != BZ_CTL_OPTIONS_RUN)
        return rc;
    if (optind < argc) {
        bz_ctl_usage_error("migrate", "unexpected argument '%s'", argv[optind]);
        return 1;
    }
    o->dir = bz_ctl_setting(o->dir, "BLAZZ_MIGRATIONS_DIR", "db/migrations");
    return bz_ctl_require_dsn("migrate", o->dsn, &o->dsn);
}

static bz_status connect_database(const char *dsn, PGconn **out, bz_error *err)
{
    /* Later keywords override earlier ones, so a DSN's own settings win.
     * Migrations write: like the services, ask for a writable server. */
    const char *keys[] = {"connect_timeout", "application_name", "target_session_attrs", "dbname",
                          NULL};
    const char *values[] = {"10", "blazzctl", "read-write", dsn, NULL};
    PGconn *conn = PQconnectdbParams(keys, values, 1);
    if (!conn)
        return bz_fail(err, BZ_ERR_NOMEM, "connect to PostgreSQL: out of memory");
    if (PQstatus(conn) != CONNECTION_OK) {
        char msg[BZ_ERROR_MSG_MAX];
        snprintf(msg, sizeof msg, "%s", PQerrorMessage(conn));
        msg[strcspn(msg, "\n")] = '\0';
        bz_status st = bz_fail(err, BZ_ERR_TRANSIENT, "connect to PostgreSQL: %s", msg);
        PQfinish(conn);
        return st;
    }
    *out = conn;
    return BZ_OK;
}

static int print_migrate_report(const migrate_options *o, const bz_migrate_report *r)
{
    if (o->json)
        return bz_ctl_print_json(json_pack("{s:s, s:i, s:i, s:i, s:I, s:s}", "dir", o->dir,
                                           "found", r->found, "applied", r->applied,
                                           "already_applied", r->already_applied, "version",
                                           (json_int_t)r->version, "last_applied",
                                           r->last_applied));
    if (r->applied > 0)
        printf("migrate: applied %d migration(s) up to %s; %d were already applied; "
               "schema at version %lld\n",
               r->applied, r->last_applied, r->already_applied, r->version);
    else
        printf("migrate: nothing to apply (%d file(s) in %s); schema at version %lld\n", r->found,
               o->dir, r->version);
    return 0;
}

int bz_ctl_cmd_migrate(int argc, char **argv)
{
    migrate_options o = {NULL, NULL, 0};
    int rc = parse_migrate_options(argc, argv, &o);
    if (rc != 0)
        return rc == BZ_CTL_OPTIONS_HELP ? 0 : 1;
    bz_error err;
    bz_error_clear(&err);
    PGconn *conn = NULL;
    if (connect_database(o.dsn, &conn, &err) != BZ_OK)
        return bz_ctl_fail("migrate", &err);
    bz_migrate_report report;
    bz_status st = bz_migrate_apply(conn, o.dir, &report, &err);
    PQfinish(conn);
    if (st != BZ_OK) {
        if (report.applied > 0)
            fprintf(stderr, "blazzctl migrate: %d migration(s) applied before the failure, up to %s\n",
                    report.applied, report.last_applied);
        return bz_ctl_fail("migrate", &err);
    }
    return print_migrate_report(&o, &report);
}
