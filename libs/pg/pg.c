/*
 * pg.c - reconnecting PostgreSQL connection (see pg.h).
 *
 * State machine: `conn` is either NULL/bad (down) or OK (up). bz_pg_ensure
 * moves down -> up when the backoff deadline has passed, doubling the backoff
 * after each failed attempt (100 ms up to 5 s) and resetting it on success.
 * Registered statements live in a small array and are prepared on every new
 * session.
 *
 * A session that met a read-only server (25006: a standby, or a primary
 * demoted under us) is dropped like a lost one, though libpq still calls
 * it OK: bz_pg_check sees only the PGconn, so each bz_pg attaches itself to
 * its session as libpq "instance data" of a do-nothing event procedure,
 * and the check marks the owner through it; the next bz_pg_ensure drops
 * the session and fails once, then reconnects, asking for a writable
 * server (target_session_attrs=read-write).
 */
#include "pg/pg.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-events.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/weak_secret.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

typedef struct prepared_stmt {
    char *name;
    char *sql;
} prepared_stmt;

struct bz_pg {
    char *dsn;
    PGconn *conn;
    prepared_stmt *stmts;
    size_t nstmts;
    int64_t next_attempt_ms;
    int backoff_ms;
    int was_up;
    int read_only_seen; /* the session met a read-only server: replace it */
};

#define SQLSTATE_READ_ONLY "25006" /* read_only_sql_transaction */

int bz_pg_sqlstate_is_transient(const char *sqlstate)
{
    if (!sqlstate || strlen(sqlstate) != 5)
        return 1; /* no SQLSTATE: the failure happened on the wire */
    /* Whole classes that describe the server, never the statement. */
    static const char *const transient_classes[] = {
        "08", /* connection exception */
        "53", /* insufficient resources: disk full, out of memory, too many connections */
        "57", /* operator intervention: shutdown, crash, restart, cancel, session timeouts */
        "58", /* system error: I/O outside PostgreSQL */
    };
    static const char *const transient[] = {
        SQLSTATE_READ_ONLY, /* a standby, or a primary demoted during a failover */
        "25P03",            /* idle_in_transaction_session_timeout: the session is gone */
        "40001",            /* serialization_failure */
        "40003",            /* statement_completion_unknown */
        "40P01",            /* deadlock_detected */
        "55P03",            /* lock_not_available */
        /* The schema is behind the code: our statements are fixed text, so
         * a table, column, function or type they name and the database
         * lacks is a migration not applied yet (a new version started
         * before `migrate`), never the record's fault. Retried, the work
         * goes on once the migration ran; dead-lettered, every record of
         * the gap would have to be replayed by hand. */
        "42P01", /* undefined_table */
        "42703", /* undefined_column */
        "42704", /* undefined_object */
        "42883", /* undefined_function */
    };
    for (size_t i = 0; i < sizeof transient_classes / sizeof transient_classes[0]; i++)
        if (strncmp(sqlstate, transient_classes[i], 2) == 0)
            return 1;
    for (size_t i = 0; i < sizeof transient / sizeof transient[0]; i++)
        if (strcmp(sqlstate, transient[i]) == 0)
            return 1;
    return 0;
}

/* The event procedure whose instance data is a session's bz_pg. It has
 * nothing to do on libpq's events; returning 1 lets each one proceed. */
static int owner_event(PGEventId id, void *info, void *pass_through)
{
    (void)id;
    (void)info;
    (void)pass_through;
    return 1;
}

static void attach_owner(bz_pg *pg)
{
    if (!PQregisterEventProc(pg->conn, owner_event, "blazz bz_pg", NULL) ||
        !PQsetInstanceData(pg->conn, owner_event, pg))
        bz_warn("PostgreSQL session: cannot attach its owner; a read-only server will be noticed "
                "only when it drops the session");
}

/* A read-only server cannot take the writes services exist for: mark the
 * session's owner (if it is a bz_pg's) so bz_pg_ensure replaces it. */
static void note_read_only_server(const PGconn *conn, const char *sqlstate)
{
    if (!sqlstate || strcmp(sqlstate, SQLSTATE_READ_ONLY) != 0)
        return;
    bz_pg *owner = PQinstanceData(conn, owner_event);
    if (owner)
        owner->read_only_seen = 1;
}

/* msg (or "unknown error") without the trailing newline libpq adds. */
static void one_line(const char *msg, char *out, size_t cap)
{
    snprintf(out, cap, "%s", msg && *msg ? msg : "unknown error");
    size_t len = strlen(out);
    while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == ' '))
        out[--len] = '\0';
}

/* The SQLSTATE of a failed result; NULL for none (no result, a success). */
static const char *sqlstate_of(const PGresult *res)
{
    return res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
}

bz_status bz_pg_check(PGconn *conn, const PGresult *res, const char *what, bz_error *err)
{
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return BZ_OK;
    const char *sqlstate = sqlstate_of(res);
    note_read_only_server(conn, sqlstate);
    const char *detail = res ? PQresultErrorMessage(res) : NULL;
    if (!detail || !*detail)
        detail = PQerrorMessage(conn);
    int transient = PQstatus(conn) != CONNECTION_OK || bz_pg_sqlstate_is_transient(sqlstate);
    char clean[BZ_ERROR_MSG_MAX];
    one_line(detail, clean, sizeof clean);
    if (transient)
        return bz_fail(err, BZ_ERR_TRANSIENT, "%s: [%s] %s", what, sqlstate ? sqlstate : "-", clean);
    return bz_reject(err, BZ_PG_REJECTED_REASON, "%s: [%s] %s", what, sqlstate ? sqlstate : "-",
                     clean);
}

bz_status bz_pg_exec(PGconn *conn, const char *sql, bz_error *err)
{
    PGresult *res = PQexec(conn, sql);
    bz_status st = bz_pg_check(conn, res, sql, err);
    PQclear(res);
    return st;
}

/* Check res; hand it to *out on success when the caller wants it, else
 * free it. A failure leaves *out NULL: what it held before (a result the
 * caller already cleared, or stack garbage) must never reach its PQclear
 * (campaign-sender died of that in a PostgreSQL switchover). */
static bz_status keep_result(PGconn *conn, PGresult *res, const char *what, PGresult **out,
                             bz_error *err)
{
    bz_status st = bz_pg_check(conn, res, what, err);
    if (st != BZ_OK || !out)
        PQclear(res);
    if (out)
        *out = st == BZ_OK ? res : NULL;
    return st;
}

bz_status bz_pg_exec_prepared(PGconn *conn, const char *name, int nparams,
                              const char *const *values, const int *lengths,
                              const int *formats, PGresult **out, bz_error *err)
{
    PGresult *res = PQexecPrepared(conn, name, nparams, values, lengths, formats, 0);
    return keep_result(conn, res, name, out, err);
}

bz_status bz_pg_exec_params(PGconn *conn, const char *what, const char *sql, int nparams,
                            const char *const *values, PGresult **out, bz_error *err)
{
    PGresult *res = PQexecParams(conn, sql, nparams, NULL, values, NULL, NULL, 0);
    return keep_result(conn, res, what, out, err);
}

#define SQLSTATE_UNKNOWN_STATEMENT "26000"
/* "cached plan must not change result type": a migration changed a column
 * the prepared statement answers */
#define SQLSTATE_STALE_STATEMENT "0A000"

static int has_sqlstate(const PGresult *res, const char *want)
{
    const char *sqlstate = sqlstate_of(res);
    return sqlstate && strcmp(sqlstate, want) == 0;
}

bz_status bz_pg_exec_named(PGconn *conn, const char *what, const char *name, const char *sql,
                           int nparams, const char *const *values, PGresult **out,
                           bz_error *err)
{
    PGresult *res = PQexecPrepared(conn, name, nparams, values, NULL, NULL, 0);
    int stale = has_sqlstate(res, SQLSTATE_STALE_STATEMENT);
    if (stale || has_sqlstate(res, SQLSTATE_UNKNOWN_STATEMENT)) {
        PQclear(res);
        bz_status st = BZ_OK;
        if (stale) {
            char deallocate[128];
            snprintf(deallocate, sizeof deallocate, "DEALLOCATE \"%s\"", name);
            st = bz_pg_exec(conn, deallocate, err);
        }
        if (st == BZ_OK)
            st = keep_result(conn, PQprepare(conn, name, sql, nparams, NULL), what, NULL, err);
        if (st != BZ_OK) {
            if (out)
                *out = NULL;
            return bz_wrap(err, "prepare statement %s", name);
        }
        res = PQexecPrepared(conn, name, nparams, values, NULL, NULL, 0);
    }
    return keep_result(conn, res, what, out, err);
}

bz_status bz_pg_begin(PGconn *conn, bz_error *err)
{
    return bz_pg_exec(conn, "BEGIN", err);
}

bz_status bz_pg_commit(PGconn *conn, bz_error *err)
{
    return bz_pg_exec(conn, "COMMIT", err);
}

void bz_pg_rollback(PGconn *conn)
{
    if (conn && PQstatus(conn) == CONNECTION_OK)
        PQclear(PQexec(conn, "ROLLBACK"));
}

static bz_status prepare_one(PGconn *conn, const prepared_stmt *s, bz_error *err)
{
    PGresult *res = PQprepare(conn, s->name, s->sql, 0, NULL);
    bz_status st = bz_pg_check(conn, res, s->name, err);
    PQclear(res);
    if (st != BZ_OK)
        return bz_wrap(err, "prepare statement %s", s->name);
    return BZ_OK;
}

static PGconn *connect_with_keepalives(const char *dsn)
{
    /* Keywords before dbname are defaults that the DSN may override: libpq
     * expands dbname (a URI or key=value string) over them. read-write makes
     * libpq refuse a standby or read-only server, and try the DSN's next
     * host if it lists several. */
    const char *keys[] = {"connect_timeout", "keepalives", "keepalives_idle",
                          "keepalives_interval", "keepalives_count", "tcp_user_timeout",
                          "application_name", "target_session_attrs", "dbname", NULL};
    const char *vals[] = {"5", "1", "10", "3", "3", "15000", "blazz", "read-write", dsn, NULL};
    return PQconnectdbParams(keys, vals, 1);
}

bz_status bz_pg_connect_like(PGconn *conn, PGconn **out, bz_error *err)
{
    *out = NULL;
    PQconninfoOption *opts = PQconninfo(conn);
    if (!opts)
        return bz_fail(err, BZ_ERR_NOMEM, "open a second PostgreSQL connection: out of memory");
    size_t n = 0;
    while (opts[n].keyword)
        n++;
    const char **keys = calloc(n + 1, sizeof *keys);
    const char **vals = calloc(n + 1, sizeof *vals);
    bz_status st = BZ_OK;
    if (!keys || !vals) {
        st = bz_fail(err, BZ_ERR_NOMEM, "open a second PostgreSQL connection: out of memory");
    } else {
        size_t used = 0;
        for (size_t i = 0; i < n; i++) {
            if (opts[i].val && *opts[i].val) {
                keys[used] = opts[i].keyword;
                vals[used++] = opts[i].val;
            }
        }
        PGconn *second = PQconnectdbParams(keys, vals, 0);
        if (PQstatus(second) == CONNECTION_OK) {
            *out = second;
        } else {
            st = bz_fail(err, BZ_ERR_TRANSIENT, "open a second PostgreSQL connection: %s",
                         PQerrorMessage(second));
            PQfinish(second);
        }
    }
    free(keys);
    free(vals);
    PQconninfoFree(opts);
    return st;
}

static bz_status connect_now(bz_pg *pg, bz_error *err)
{
    if (pg->conn)
        PQfinish(pg->conn);
    pg->conn = connect_with_keepalives(pg->dsn);
    if (PQstatus(pg->conn) != CONNECTION_OK) {
        char why[BZ_ERROR_MSG_MAX];
        one_line(PQerrorMessage(pg->conn), why, sizeof why);
        bz_status st = bz_fail(err, BZ_ERR_TRANSIENT, "connect to PostgreSQL: %s", why);
        PQfinish(pg->conn);
        pg->conn = NULL;
        return st;
    }
    attach_owner(pg);
    for (size_t i = 0; i < pg->nstmts; i++) {
        bz_status st = prepare_one(pg->conn, &pg->stmts[i], err);
        if (st != BZ_OK) {
            PQfinish(pg->conn);
            pg->conn = NULL;
            return st;
        }
    }
    return BZ_OK;
}

bz_status bz_pg_open(const char *dsn, bz_pg **out, bz_error *err)
{
    bz_pg *pg = calloc(1, sizeof *pg);
    if (!pg || !(pg->dsn = strdup(dsn))) {
        free(pg);
        return bz_fail(err, BZ_ERR_NOMEM, "open PostgreSQL connection: out of memory");
    }
    pg->backoff_ms = BACKOFF_MIN_MS;
    bz_error ignored;
    if (bz_pg_ensure(pg, &ignored) != BZ_OK)
        bz_warn("PostgreSQL not reachable yet, will retry: %s", ignored.msg);
    *out = pg;
    return BZ_OK;
}

void bz_pg_close(bz_pg *pg)
{
    if (!pg)
        return;
    if (pg->conn)
        PQfinish(pg->conn);
    for (size_t i = 0; i < pg->nstmts; i++) {
        free(pg->stmts[i].name);
        free(pg->stmts[i].sql);
    }
    free(pg->stmts);
    free(pg->dsn);
    free(pg);
}

bz_status bz_pg_ensure(bz_pg *pg, bz_error *err)
{
    if (pg->read_only_seen) {
        /* Reported like a lost connection, so that callers drop what they
         * tied to the session (LISTEN, advisory locks, leadership). */
        bz_pg_reset(pg);
        return bz_fail(err, BZ_ERR_TRANSIENT,
                       "PostgreSQL session was on a read-only server (a standby or a demoted "
                       "primary): dropped it; the next attempt connects to a writable one");
    }
    if (pg->conn && PQstatus(pg->conn) == CONNECTION_OK)
        return BZ_OK;
    int64_t now = bz_monotonic_ms();
    if (now < pg->next_attempt_ms)
        return bz_fail(err, BZ_ERR_TRANSIENT, "PostgreSQL down; next reconnect in %" PRId64 " ms",
                       pg->next_attempt_ms - now);
    bz_status st = connect_now(pg, err);
    if (st != BZ_OK) {
        pg->next_attempt_ms = now + pg->backoff_ms;
        pg->backoff_ms = pg->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : pg->backoff_ms * 2;
        return st;
    }
    if (pg->was_up)
        bz_info("reconnected to PostgreSQL");
    pg->was_up = 1;
    pg->backoff_ms = BACKOFF_MIN_MS;
    pg->next_attempt_ms = 0;
    return BZ_OK;
}

void bz_pg_reset(bz_pg *pg)
{
    if (pg->conn) {
        PQfinish(pg->conn);
        pg->conn = NULL;
    }
    pg->read_only_seen = 0;
}

void bz_pg_drop_if_closed(bz_pg *pg)
{
    /* An idle session is sent nothing but a notification or the server's
     * farewell (an ErrorResponse, then the end of the stream): libpq reads
     * the message first and meets the end only at a second read. */
    for (int reads = 0; reads < 3; reads++) {
        if (!pg->conn || PQstatus(pg->conn) != CONNECTION_OK)
            return;
        struct pollfd fd = {.fd = PQsocket(pg->conn), .events = POLLIN};
        if (fd.fd < 0 || poll(&fd, 1, 0) <= 0)
            return;
        if (!PQconsumeInput(pg->conn) || PQstatus(pg->conn) != CONNECTION_OK) {
            const char *why = PQerrorMessage(pg->conn);
            bz_info("PostgreSQL closed an idle session (%.*s): reconnecting",
                    (int)strcspn(why, "\n"), why);
            bz_pg_reset(pg);
            return;
        }
    }
}

PGconn *bz_pg_conn(bz_pg *pg)
{
    return pg->conn;
}

/* 1 when libpq had notifications queued (dropped: one is enough). */
static int drain_notifications(PGconn *conn)
{
    int any = 0;
    PGnotify *n;
    while ((n = PQnotifies(conn)) != NULL) {
        PQfreemem(n);
        any = 1;
    }
    return any;
}

/* A NOTIFY that came while a statement ran was read off the socket with
 * its results: it waits in libpq's queue while the socket stays quiet, so
 * that queue is looked at first (else work committed meanwhile would wait
 * for the next notification or the timeout). */
int bz_pg_wait_notify(PGconn *conn, int timeout_ms)
{
    if (drain_notifications(conn))
        return 1;
    struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN};
    if (pfd.fd < 0) {
        bz_sleep_ms(timeout_ms);
        return 0;
    }
    return poll(&pfd, 1, timeout_ms) > 0 && bz_pg_take_notifications(conn);
}

int bz_pg_take_notifications(PGconn *conn)
{
    return PQconsumeInput(conn) && drain_notifications(conn);
}

int bz_pg_wait_notify_or_stop(PGconn *conn, int64_t timeout_ms, int slice_ms,
                              int (*stop)(void *arg), void *arg)
{
    int64_t until = bz_monotonic_ms() + timeout_ms;
    for (int64_t left = timeout_ms; left > 0 && !stop(arg); left = until - bz_monotonic_ms()) {
        int slice = (int)(left < slice_ms ? left : slice_ms);
        if (conn && PQstatus(conn) == CONNECTION_OK) {
            if (bz_pg_wait_notify(conn, slice))
                return 1;
        } else {
            bz_sleep_ms(slice);
        }
    }
    return 0;
}

bz_status bz_pg_prepare(bz_pg *pg, const char *name, const char *sql, bz_error *err)
{
    prepared_stmt *grown = realloc(pg->stmts, (pg->nstmts + 1) * sizeof *grown);
    if (!grown)
        return bz_fail(err, BZ_ERR_NOMEM, "register statement %s: out of memory", name);
    pg->stmts = grown;
    prepared_stmt *s = &pg->stmts[pg->nstmts];
    s->name = strdup(name);
    s->sql = strdup(sql);
    if (!s->name || !s->sql) {
        free(s->name);
        free(s->sql);
        return bz_fail(err, BZ_ERR_NOMEM, "register statement %s: out of memory", name);
    }
    pg->nstmts++;
    if (pg->conn && PQstatus(pg->conn) == CONNECTION_OK)
        return prepare_one(pg->conn, s, err);
    return BZ_OK;
}

/* Decimal text to int64, 0 for anything that is not exactly one integer in
 * range (see bz_pg_get_int64). */
static int64_t int64_from_text(const char *text)
{
    if (!text || !*text)
        return 0;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0')
        return 0;
    return (int64_t)v;
}

int64_t bz_pg_get_int64(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return 0;
    return int64_from_text(PQgetvalue(res, row, col));
}

int64_t bz_pg_affected_rows(PGresult *res)
{
    return int64_from_text(PQcmdTuples(res));
}

/* The password dsn sets (heap, the caller frees), NULL when none or when
 * libpq cannot parse dsn. */
static char *dsn_password(const char *dsn)
{
    PQconninfoOption *opts = dsn ? PQconninfoParse(dsn, NULL) : NULL;
    char *password = NULL;
    for (PQconninfoOption *o = opts; o && o->keyword && !password; o++)
        if (strcmp(o->keyword, "password") == 0 && o->val && *o->val)
            password = strdup(o->val);
    PQconninfoFree(opts);
    return password;
}

int bz_pg_dsn_has_password(const char *dsn)
{
    char *password = dsn_password(dsn);
    int has = password != NULL;
    free(password);
    return has;
}

bz_status bz_pg_dsn_refuse_weak_password(const char *dsn, bz_error *err)
{
    char *password = dsn_password(dsn);
    bz_status st = password ? bz_secret_refuse_short("the password of pg.dsn", password,
                                                     BZ_PASSWORD_LEN_MIN, err)
                            : BZ_OK;
    if (password)
        OPENSSL_cleanse(password, strlen(password));
    free(password);
    return st;
}
