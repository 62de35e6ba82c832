/*
 * migrate.h - the schema migrator (ARCHITECTURE.md §4).
 *
 * Migrations are plain SQL files named NNNN_name.sql (NNNN: the version,
 * digits, 1, 2, 3 ... with no gap or duplicate) in one folder. Each file is
 * applied in version order inside its own transaction together with its row
 * in schema_migrations(version, name, checksum, applied_at), where checksum is
 * the hex SHA-256 of the file's bytes; so a failing file leaves no trace and
 * re-running applies only what is new. An applied file whose bytes changed is
 * refused by name: history is never rewritten silently. Concurrent runners
 * (several service replicas starting at once) are serialized by a session
 * advisory lock on a fixed key; the second one finds the work done.
 *
 * schema_migrations is created by the migrator itself, unqualified, so it
 * lands in the first schema of the connection's search_path. Files must not
 * contain BEGIN/COMMIT (the migrator owns the transaction) nor statements
 * that refuse to run in a transaction (CREATE INDEX CONCURRENTLY).
 */
#ifndef BZ_PG_MIGRATE_H
#define BZ_PG_MIGRATE_H

#include <libpq-fe.h>

#include "core/status.h"

/* The advisory lock key that serializes migrators ("blazzmig" in ASCII). */
#define BZ_MIGRATE_LOCK_KEY 0x626c617a7a6d6967LL

typedef struct bz_migrate_report {
    int found;           /* migration files in the folder */
    int applied;         /* applied by this call */
    int already_applied; /* recorded before this call (checksums verified) */
    long long version;   /* highest version recorded after this call (0: none) */
    char last_applied[256]; /* file name of the last one this call applied, or "" */
} bz_migrate_report;

/* Apply the pending migrations of dir on conn (an open connection, not in a
 * transaction). report (may be NULL) is filled on success, and on failure
 * with what was applied before the failing file. Errors name the file:
 * BZ_ERR_INVALID for a bad folder (unparsable name, gap, duplicate, missing
 * file for an applied version, edited applied file, out-of-order file) or a
 * failing migration (rolled back, not recorded); BZ_ERR_TRANSIENT when the
 * connection failed or the server's failure was transient by bz_pg_check's
 * rule (a read-only server, a shutdown, a lock timeout ...); BZ_ERR_IO when
 * the folder or a file cannot be read. */
bz_status bz_migrate_apply(PGconn *conn, const char *dir, bz_migrate_report *report,
                           bz_error *err);

#endif
