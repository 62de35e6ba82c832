/*
 * migrate.c - applying numbered SQL files in order, once (see migrate.h).
 *
 * The work is split in two phases so that nothing touches the database
 * before the folder is known to be sound:
 *   1. read the folder: parse every NNNN_name.sql, sort by version, refuse
 *      gaps and duplicates, load each file and its SHA-256;
 *   2. under the advisory lock: create schema_migrations if needed, check
 *      every recorded migration against its file (present, same checksum),
 *      then apply the pending files one transaction each.
 * Only the file bodies go through PQexec (trusted SQL from the repository,
 * possibly several statements); everything else is parameterized.
 */
#include "pg/migrate.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "core/sha256.h"
#include "pg/pg.h"

#define MIGRATION_NAME_MAX 256

typedef struct migration_file {
    long long version;
    char name[MIGRATION_NAME_MAX]; /* the file name, e.g. 0003_chats.sql */
    char *body;                    /* file bytes, NUL-terminated */
    size_t len;
    char checksum[2 * 32 + 1]; /* hex SHA-256 of the bytes */
    int applied;               /* already recorded in schema_migrations */
} migration_file;

typedef struct migration_set {
    migration_file *files; /* sorted by version */
    size_t count;
} migration_set;

static const char *const create_table_sql =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version bigint PRIMARY KEY,"
    " name text NOT NULL,"
    " checksum text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now())";

/* The end of a run: set is not used again. */
static void migration_set_free(migration_set *set)
{
    for (size_t i = 0; i < set->count; i++)
        free(set->files[i].body);
    free(set->files);
}

/* Parse "NNNN_name.sql" into its version. 0 if the name does not have that form. */
static int parse_migration_name(const char *name, long long *version)
{
    size_t digits = 0;
    while (isdigit((unsigned char)name[digits]))
        digits++;
    size_t len = strlen(name);
    if (digits == 0 || digits > 18 || name[digits] != '_' || len < digits + 1 + 1 + 4 ||
        strcmp(name + len - 4, ".sql") != 0)
        return 0;
    *version = strtoll(name, NULL, 10);
    return 1;
}

static int has_sql_suffix(const char *name)
{
    size_t len = strlen(name);
    return len >= 4 && strcmp(name + len - 4, ".sql") == 0;
}

static bz_status read_whole_file(const char *path, char **body, size_t *len, bz_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return bz_fail(err, BZ_ERR_IO, "read migration %s: %s", path, strerror(errno));
    size_t cap = 8192, used = 0;
    char *buf = malloc(cap);
    while (buf) {
        used += fread(buf + used, 1, cap - used - 1, f);
        if (used < cap - 1)
            break;
        char *bigger = realloc(buf, cap * 2);
        if (!bigger) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = bigger;
        cap *= 2;
    }
    int failed = ferror(f);
    fclose(f);
    if (!buf)
        return bz_fail(err, BZ_ERR_NOMEM, "read migration %s: out of memory", path);
    if (failed) {
        free(buf);
        return bz_fail(err, BZ_ERR_IO, "read migration %s: read error", path);
    }
    buf[used] = '\0';
    *body = buf;
    *len = used;
    return BZ_OK;
}

static bz_status load_migration(const char *dir, migration_file *m, bz_error *err)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, m->name) >= sizeof path)
        return bz_fail(err, BZ_ERR_IO, "read migration %s/%s: path too long", dir, m->name);
    bz_status st = read_whole_file(path, &m->body, &m->len, err);
    if (st != BZ_OK)
        return st;
    if (memchr(m->body, '\0', m->len))
        return bz_fail(err, BZ_ERR_INVALID, "migration %s: contains a NUL byte", m->name);
    return bz_sha256_hex(m->body, m->len, m->checksum, err);
}

static bz_status add_migration_file(migration_set *set, size_t *cap, const char *name,
                                    long long version, bz_error *err)
{
    if (strlen(name) >= MIGRATION_NAME_MAX)
        return bz_fail(err, BZ_ERR_INVALID, "migration %s: file name too long", name);
    if (!bz_grow((void **)&set->files, cap, set->count + 1, sizeof *set->files, 16))
        return bz_fail(err, BZ_ERR_NOMEM, "list migrations: out of memory");
    migration_file *m = &set->files[set->count++];
    memset(m, 0, sizeof *m);
    m->version = version;
    snprintf(m->name, sizeof m->name, "%s", name);
    return BZ_OK;
}

static bz_status list_migration_files(const char *dir, migration_set *set, bz_error *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return bz_fail(err, BZ_ERR_IO, "open migrations folder %s: %s", dir, strerror(errno));
    size_t cap = 0;
    bz_status st = BZ_OK;
    struct dirent *e;
    while (st == BZ_OK && (e = readdir(d)) != NULL) {
        long long version;
        if (e->d_name[0] == '.' || !has_sql_suffix(e->d_name))
            continue;
        if (!parse_migration_name(e->d_name, &version))
            st = bz_fail(err, BZ_ERR_INVALID,
                         "migration %s/%s: name must be NNNN_name.sql", dir, e->d_name);
        else
            st = add_migration_file(set, &cap, e->d_name, version, err);
    }
    closedir(d);
    return st;
}

static int compare_by_version(const void *a, const void *b)
{
    const migration_file *x = a, *y = b;
    if (x->version != y->version)
        return x->version < y->version ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Versions must run 1, 2, 3 ... so that a lost or doubled file is noticed. */
static bz_status check_sequence(const char *dir, const migration_set *set, bz_error *err)
{
    for (size_t i = 0; i < set->count; i++) {
        const migration_file *m = &set->files[i];
        if (i > 0 && m->version == set->files[i - 1].version)
            return bz_fail(err, BZ_ERR_INVALID, "migrations in %s: %s and %s have the same version %lld",
                           dir, set->files[i - 1].name, m->name, m->version);
        long long expected = i == 0 ? 1 : set->files[i - 1].version + 1;
        if (m->version != expected)
            return bz_fail(err, BZ_ERR_INVALID,
                           "migrations in %s: %s has version %lld, expected %lld (gap in the numbering)",
                           dir, m->name, m->version, expected);
    }
    return BZ_OK;
}

static bz_status read_migration_set(const char *dir, migration_set *set, bz_error *err)
{
    bz_status st = list_migration_files(dir, set, err);
    if (st != BZ_OK)
        return st;
    if (set->count > 1)
        qsort(set->files, set->count, sizeof *set->files, compare_by_version);
    st = check_sequence(dir, set, err);
    for (size_t i = 0; st == BZ_OK && i < set->count; i++)
        st = load_migration(dir, &set->files[i], err);
    return st;
}

/* ---- database side ------------------------------------------------------ */

static int result_ok(const PGresult *res)
{
    ExecStatusType s = PQresultStatus(res);
    return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK || s == PGRES_EMPTY_QUERY;
}

/* Run a statement with text parameters; on success *out (if not NULL) gets
 * the result to PQclear. */
static bz_status run(PGconn *conn, const char *sql, int nparams, const char *const *params,
                     PGresult **out, const char *what, bz_error *err)
{
    PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
    if (!res || !result_ok(res)) {
        bz_status st = bz_pg_check(conn, res, what, err);
        PQclear(res);
        return st;
    }
    if (out)
        *out = res;
    else
        PQclear(res);
    return BZ_OK;
}

static void rollback_quietly(PGconn *conn)
{
    if (PQtransactionStatus(conn) != PQTRANS_IDLE)
        PQclear(PQexec(conn, "ROLLBACK"));
}

static bz_status take_lock(PGconn *conn, int lock, bz_error *err)
{
    char key[32];
    snprintf(key, sizeof key, "%lld", (long long)BZ_MIGRATE_LOCK_KEY);
    const char *params[] = {key};
    return run(conn, lock ? "SELECT pg_advisory_lock($1::bigint)"
                          : "SELECT pg_advisory_unlock($1::bigint)",
               1, params, NULL, lock ? "migrate: take advisory lock" : "migrate: release advisory lock",
               err);
}

static migration_file *file_with_version(migration_set *set, long long version)
{
    for (size_t i = 0; i < set->count; i++)
        if (set->files[i].version == version)
            return &set->files[i];
    return NULL;
}

static bz_status check_recorded_row(migration_set *set, const char *dir, long long version,
                                    const char *name, const char *checksum, bz_error *err)
{
    migration_file *m = file_with_version(set, version);
    if (!m)
        return bz_fail(err, BZ_ERR_INVALID,
                       "migrate: version %lld (%s) is recorded as applied but %s has no such file",
                       version, name, dir);
    if (strcmp(m->checksum, checksum) != 0)
        return bz_fail(err, BZ_ERR_INVALID,
                       "migration %s was edited after it was applied (checksum now %.12s..., "
                       "recorded %.12s...): add a new migration instead",
                       m->name, m->checksum, checksum);
    m->applied = 1;
    return BZ_OK;
}

/* Mark the files already applied, verifying each recorded row against its
 * file; *max_version gets the highest recorded version. */
static bz_status verify_recorded(PGconn *conn, const char *dir, migration_set *set,
                                 long long *max_version, int *count, bz_error *err)
{
    PGresult *res = NULL;
    bz_status st = run(conn, "SELECT version, name, checksum FROM schema_migrations ORDER BY version",
                       0, NULL, &res, "migrate: read schema_migrations", err);
    if (st != BZ_OK)
        return st;
    *max_version = 0;
    *count = PQntuples(res);
    for (int r = 0; st == BZ_OK && r < *count; r++) {
        long long version = strtoll(PQgetvalue(res, r, 0), NULL, 10);
        st = check_recorded_row(set, dir, version, PQgetvalue(res, r, 1), PQgetvalue(res, r, 2),
                                err);
        if (version > *max_version)
            *max_version = version;
    }
    PQclear(res);
    return st;
}

static bz_status run_file_body(PGconn *conn, const migration_file *m, bz_error *err)
{
    char what[MIGRATION_NAME_MAX + 64];
    snprintf(what, sizeof what, "migration %s failed and was rolled back", m->name);
    PGresult *res = PQexec(conn, m->body);
    bz_status st = BZ_OK;
    if (!res || !result_ok(res)) {
        st = bz_pg_check(conn, res, what, err);
        /* Services retry an object the database lacks (the schema behind
         * the code, pg.c); in a migration it is the file's own mistake. */
        const char *sqlstate = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        if (st == BZ_ERR_TRANSIENT && PQstatus(conn) == CONNECTION_OK && sqlstate &&
            strncmp(sqlstate, "42", 2) == 0) {
            char msg[BZ_ERROR_MSG_MAX];
            snprintf(msg, sizeof msg, "%s", err->msg);
            st = bz_fail(err, BZ_ERR_INVALID, "%s", msg);
        }
    } else if (PQtransactionStatus(conn) != PQTRANS_INTRANS)
        st = bz_fail(err, BZ_ERR_INVALID,
                     "migration %s ended the migrator's transaction: remove BEGIN/COMMIT from it",
                     m->name);
    PQclear(res);
    return st;
}

static bz_status apply_one(PGconn *conn, const migration_file *m, bz_error *err)
{
    char version[32];
    snprintf(version, sizeof version, "%lld", m->version);
    const char *params[] = {version, m->name, m->checksum};
    bz_status st = run(conn, "BEGIN", 0, NULL, NULL, "migrate: begin", err);
    if (st == BZ_OK)
        st = run_file_body(conn, m, err);
    if (st == BZ_OK)
        st = run(conn,
                 "INSERT INTO schema_migrations (version, name, checksum, applied_at)"
                 " VALUES ($1::bigint, $2, $3, now())",
                 3, params, NULL, "migrate: record migration", err);
    if (st == BZ_OK)
        st = run(conn, "COMMIT", 0, NULL, NULL, "migrate: commit", err);
    if (st != BZ_OK)
        rollback_quietly(conn);
    return st;
}

static bz_status apply_pending(PGconn *conn, migration_set *set, long long max_version,
                               bz_migrate_report *rep, bz_error *err)
{
    for (size_t i = 0; i < set->count; i++) {
        migration_file *m = &set->files[i];
        if (m->applied)
            continue;
        if (m->version < max_version)
            return bz_fail(err, BZ_ERR_INVALID,
                           "migration %s is older than the applied version %lld: renumber it",
                           m->name, max_version);
        bz_status st = apply_one(conn, m, err);
        if (st != BZ_OK)
            return st;
        rep->applied++;
        rep->version = m->version;
        snprintf(rep->last_applied, sizeof rep->last_applied, "%s", m->name);
    }
    return BZ_OK;
}

/* NOTICEs ("relation already exists, skipping") are expected chatter from
 * idempotent DDL, not something a migrator's user can act on. */
static void discard_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static bz_status migrate_locked(PGconn *conn, const char *dir, migration_set *set,
                                bz_migrate_report *rep, bz_error *err)
{
    bz_status st = run(conn, create_table_sql, 0, NULL, NULL, "migrate: create schema_migrations",
                       err);
    long long max_version = 0;
    if (st == BZ_OK)
        st = verify_recorded(conn, dir, set, &max_version, &rep->already_applied, err);
    rep->version = max_version;
    if (st == BZ_OK)
        st = apply_pending(conn, set, max_version, rep, err);
    return st;
}

bz_status bz_migrate_apply(PGconn *conn, const char *dir, bz_migrate_report *report,
                           bz_error *err)
{
    bz_migrate_report rep;
    memset(&rep, 0, sizeof rep);
    migration_set set = {NULL, 0};
    bz_status st = BZ_OK;
    if (!conn || PQstatus(conn) != CONNECTION_OK)
        st = bz_fail(err, BZ_ERR_TRANSIENT, "migrate: no open database connection");
    else if (PQtransactionStatus(conn) != PQTRANS_IDLE)
        st = bz_fail(err, BZ_ERR_INTERNAL, "migrate: connection is inside a transaction");
    if (st == BZ_OK)
        st = read_migration_set(dir, &set, err);
    rep.found = (int)set.count;
    if (st == BZ_OK)
        st = take_lock(conn, 1, err);
    if (st == BZ_OK) {
        PQnoticeProcessor previous = PQsetNoticeProcessor(conn, discard_notice, NULL);
        st = migrate_locked(conn, dir, &set, &rep, err);
        PQsetNoticeProcessor(conn, previous, NULL);
        if (PQstatus(conn) == CONNECTION_OK) {
            bz_error unlock_err;
            bz_status unlock_st = take_lock(conn, 0, &unlock_err);
            if (st == BZ_OK && unlock_st != BZ_OK) {
                st = unlock_st;
                if (err)
                    *err = unlock_err;
            }
        }
    }
    migration_set_free(&set);
    if (report)
        *report = rep;
    return st;
}
