/*
 * cmd_migrate.c - `blazzctl migrate`: apply db/migrations to PostgreSQL.
 *
 * A thin shell over bz_migrate_apply (libs/pg/migrate.h): connect, apply,
 * report. Safe to run from several places at once (the migrator serializes
 * on an advisory lock) and to re-run (a no-op when nothing is new). The DSN
 * is never printed: it may carry a password.
 *
 * Then the services' login roles (0027) get the passwords the environment
 * gives them (BLAZZ_PG_PASSWORD_INGEST, ..._CHAT_SYNC, ...; compose's .env):
 * each is checked like every secret (core/weak_secret.h), hashed here with
 * the server's password_encryption (PQencryptPasswordConn), and only the
 * hash travels in ALTER ROLE. A role without a password in the environment
 * keeps the one it has.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blazzctl.h"
#include "core/weak_secret.h"
#include "pg/migrate.h"

static const char migrate_help[] =
    "usage: blazzctl migrate [--dir DIR] [--dsn DSN] [--json]\n"
    "\n"
    "Apply the pending NNNN_name.sql files of DIR in order, each in its own\n"
    "transaction, recording them in schema_migrations. Refuses edited applied\n"
    "files, gaps and duplicate versions. Then sets the password of each\n"
    "service's login role given by $BLAZZ_PG_PASSWORD_<SERVICE> (INGEST,\n"
    "CHAT_SYNC, WEBHOOK_DISPATCHER, CAMPAIGN_SENDER, CLEANUP, META_SENDER).\n"
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

/* ALTER ROLE role PASSWORD <hash of password>, the hash made here. */
static bz_status set_role_password(PGconn *conn, const char *role, const char *password,
                                   bz_error *err)
{
    char *hash = PQencryptPasswordConn(conn, password, role, NULL);
    char *literal = hash ? PQescapeLiteral(conn, hash, strlen(hash)) : NULL;
    char *ident = PQescapeIdentifier(conn, role, strlen(role));
    bz_status st = BZ_OK;
    if (!hash || !literal || !ident) {
        st = bz_fail(err, BZ_ERR_IO, "hash the password of role %s: %s", role,
                     PQerrorMessage(conn));
    } else {
        char sql[1024];
        snprintf(sql, sizeof sql, "ALTER ROLE %s PASSWORD %s", ident, literal);
        PGresult *res = PQexec(conn, sql);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            st = bz_fail(err, BZ_ERR_IO, "set the password of role %s: %s", role,
                         PQresultErrorMessage(res));
        PQclear(res);
    }
    PQfreemem(hash);
    PQfreemem(literal);
    PQfreemem(ident);
    return st;
}

/* The services' roles whose password the environment gives; *set counts them. */
static bz_status set_service_role_passwords(PGconn *conn, int *set, bz_error *err)
{
    static const char *const services[][2] = {
        {"blazz_ingest", "BLAZZ_PG_PASSWORD_INGEST"},
        {"blazz_chat_sync", "BLAZZ_PG_PASSWORD_CHAT_SYNC"},
        {"blazz_webhook_dispatcher", "BLAZZ_PG_PASSWORD_WEBHOOK_DISPATCHER"},
        {"blazz_campaign_sender", "BLAZZ_PG_PASSWORD_CAMPAIGN_SENDER"},
        {"blazz_cleanup", "BLAZZ_PG_PASSWORD_CLEANUP"},
        {"blazz_meta_sender", "BLAZZ_PG_PASSWORD_META_SENDER"},
    };
    *set = 0;
    for (size_t i = 0; i < sizeof services / sizeof services[0]; i++) {
        const char *password = getenv(services[i][1]);
        if (!password || !*password)
            continue;
        bz_status st = bz_secret_refuse_short(services[i][1], password, BZ_PASSWORD_LEN_MIN, err);
        if (st == BZ_OK)
            st = set_role_password(conn, services[i][0], password, err);
        if (st != BZ_OK)
            return st;
        (*set)++;
    }
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
    int passwords = 0;
    bz_status st = bz_migrate_apply(conn, o.dir, &report, &err);
    if (st == BZ_OK && (st = set_service_role_passwords(conn, &passwords, &err)) != BZ_OK)
        bz_wrap(&err, "after the migrations");
    PQfinish(conn);
    if (passwords > 0 && !o.json)
        printf("migrate: set the password of %d service role(s)\n", passwords);
    if (st != BZ_OK) {
        if (report.applied > 0)
            fprintf(stderr, "blazzctl migrate: %d migration(s) applied before the failure, up to %s\n",
                    report.applied, report.last_applied);
        return bz_ctl_fail("migrate", &err);
    }
    return print_migrate_report(&o, &report);
}
