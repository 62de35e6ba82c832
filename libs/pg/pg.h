/*
 * pg.h - a PostgreSQL connection that survives database restarts.
 *
 * bz_pg wraps a libpq connection with the three things every service needs:
 *  - reconnection with exponential backoff (bz_pg_ensure never blocks for
 *    longer than one connect attempt; between attempts it answers TRANSIENT
 *    at once so poll loops stay responsive);
 *  - prepared statements registered once and re-prepared after every
 *    reconnect, since they belong to the server session;
 *  - classification of failures by SQLSTATE into TRANSIENT (retry: server
 *    gone, failover, read-only node, serialization failure, deadlock,
 *    shutdown, too many connections) and INVALID (the statement or data is
 *    wrong and will stay wrong). This is the one classifier: code that
 *    decides whether a database failure may dead-letter work goes through
 *    bz_pg_check or bz_pg_sqlstate_is_transient;
 *  - only writable servers: a session that meets a read-only one (25006,
 *    a standby or a primary demoted in a failover) is replaced at the next
 *    bz_pg_ensure, and connections ask for target_session_attrs=read-write,
 *    so libpq refuses read-only servers (and tries the DSN's next host).
 *
 * Keepalive and timeout parameters and target_session_attrs=read-write are
 * added to the caller's DSN (URI or key=value) unless it sets them itself,
 * so a dead server is noticed in seconds, not hours; a DSN that means to
 * read from a standby says target_session_attrs=any.
 */
#ifndef BZ_PG_H
#define BZ_PG_H

#include <libpq-fe.h>
#include <stdint.h>

#include "core/status.h"

typedef struct bz_pg bz_pg;

/* Allocate a connection object for dsn and try to connect once. A failed
 * first attempt is not an error: the object is returned and bz_pg_ensure
 * keeps trying. Free with bz_pg_close. */
bz_status bz_pg_open(const char *dsn, bz_pg **out, bz_error *err);

/* Close the connection and free everything (NULL is fine). */
void bz_pg_close(bz_pg *pg);

/* Make sure the connection is up, reconnecting (and re-preparing) if it is
 * not and the backoff allows. BZ_OK or BZ_ERR_TRANSIENT. A session that met
 * a read-only server is dropped here with BZ_ERR_TRANSIENT, as if it had
 * been lost (bz_pg_conn is then NULL); the next call reconnects. */
bz_status bz_pg_ensure(bz_pg *pg, bz_error *err);

/* Drop the connection so the next bz_pg_ensure reconnects (after a
 * transient failure left the session in an unknown state). */
void bz_pg_reset(bz_pg *pg);

/* Drop the connection if the server closed it while it sat idle (a restart
 * or failover ends every session, and libpq learns so only when it next
 * reads): its socket is readable although no statement is running. Then
 * the next bz_pg_ensure reconnects at once, instead of the next statement
 * failing for nothing. One poll(2), no round trip. Not for a connection
 * that LISTENs: input it reads here (a notification) would no longer wake
 * a poll on the socket. */
void bz_pg_drop_if_closed(bz_pg *pg);

/* The live libpq connection; valid until the next ensure/reset/close. */
PGconn *bz_pg_conn(bz_pg *pg);

/* Wait on conn, which LISTENs, until a NOTIFY arrives or timeout_ms pass:
 * 1 when one came (or had come with an earlier statement's results; all
 * queued are consumed), 0 otherwise. A connection that broke meanwhile
 * answers 0 and its next statement fails. */
int bz_pg_wait_notify(PGconn *conn, int timeout_ms);

/* Read what conn's socket holds without waiting and drop every queued
 * notification: 1 when there was one, 0 otherwise or when the connection
 * broke (its next statement fails). For a loop that polls the socket
 * itself (beside curl's, say). */
int bz_pg_take_notifications(PGconn *conn);

/* A thread's idle wait: bz_pg_wait_notify for up to timeout_ms in slices
 * of slice_ms, asking stop(arg) before each, so that a shutdown is seen
 * within a slice. conn NULL or broken makes it a plain sleep of the same
 * slices (the caller's next statement reconnects). 1 when a notification
 * came, 0 on the timeout or a stop. */
int bz_pg_wait_notify_or_stop(PGconn *conn, int64_t timeout_ms, int slice_ms,
                              int (*stop)(void *arg), void *arg);

/* Open a second, plain libpq connection with the parameters conn was opened
 * with (PQconninfo): for work that runs beside conn's transaction on another
 * backend. The caller owns *out and closes it with PQfinish. BZ_OK, or
 * BZ_ERR_TRANSIENT when the server refuses the connection. */
bz_status bz_pg_connect_like(PGconn *conn, PGconn **out, bz_error *err);

/* BZ_ERR_CONFIG when dsn carries a password shorter than
 * BZ_PASSWORD_LEN_MIN (core/weak_secret.h), an example value such as
 * .env.example's; a DSN without one (peer or trust authentication, a
 * password file) passes, and so does one libpq cannot parse: connecting
 * reports that. */
bz_status bz_pg_dsn_refuse_weak_password(const char *dsn, bz_error *err);

/* 1 when dsn sets a non-empty password (a DSN libpq cannot parse sets none). */
int bz_pg_dsn_has_password(const char *dsn);

/* Register a statement to be prepared now (if connected) and after every
 * reconnect. name and sql are copied. */
bz_status bz_pg_prepare(bz_pg *pg, const char *name, const char *sql, bz_error *err);

/* The reason of a statement the database refused for good: a failure of
 * the caller's, never the fault of whoever sent the data. */
#define BZ_PG_REJECTED_REASON "database_rejected"

/* The channel the webhook dispatchers LISTEN on, and the statement that
 * wakes them: whoever makes deliveries due (the dispatcher's fan-out, a
 * replay, an endpoint enabled) NOTIFYs it, so that they are attempted now
 * rather than at the next poll. */
#define BZ_PG_WEBHOOK_CHANNEL "blazz_webhook"
#define BZ_PG_WEBHOOK_WAKE_SQL "SELECT pg_notify('" BZ_PG_WEBHOOK_CHANNEL "', '')"

/* The channel meta-sender's media fetchers LISTEN on: chat-sync NOTIFYs it
 * in the transaction that queues fetch jobs, so they are claimed now
 * rather than at the fetchers' next poll (which still finds retries and
 * expired leases). */
#define BZ_PG_MEDIA_FETCH_CHANNEL "blazz_media_fetch"

/* Check a result: BZ_OK for COMMAND_OK / TUPLES_OK, otherwise a classified
 * failure whose message starts with `what`: BZ_ERR_TRANSIENT when the
 * connection is gone or the SQLSTATE is transient, else BZ_ERR_INVALID
 * (reason BZ_PG_REJECTED_REASON). A 25006 on a bz_pg's session also marks
 * it for replacement. Does not free res. */
bz_status bz_pg_check(PGconn *conn, const PGresult *res, const char *what, bz_error *err);

/* Run a parameter-less statement (BEGIN, COMMIT, SAVEPOINT ...). */
bz_status bz_pg_exec(PGconn *conn, const char *sql, bz_error *err);

/* Run a prepared statement with text parameters (lengths/formats may be NULL
 * for all-text). On success *out (if not NULL) receives the result, which the
 * caller must PQclear; on failure *out is set to NULL (PQclear(NULL) is a
 * no-op, so a caller may clear it on every path). */
bz_status bz_pg_exec_prepared(PGconn *conn, const char *name, int nparams,
                              const char *const *values, const int *lengths,
                              const int *formats, PGresult **out, bz_error *err);

/* Run sql with text parameters as an unnamed statement: planned at every
 * execution for the table as it is then, for statements over tables whose
 * size swings (a generic plan made while a queue was empty stays wrong
 * after it fills). `what` starts the failure message. On success *out (if
 * not NULL) receives the result, which the caller must PQclear; on failure
 * *out is set to NULL. */
bz_status bz_pg_exec_params(PGconn *conn, const char *what, const char *sql, int nparams,
                            const char *const *values, PGresult **out, bz_error *err);

/* Run sql with text parameters as the session's prepared statement name,
 * preparing it at its first use in the session (a new session, after a
 * reconnect, has none) and again when a migration changed a column it
 * answers (0A000): parsed and planned once, for a read outside a
 * transaction whose generic plan is as good as a custom one (every
 * parameter a key of the index it walks; a filter whose best index depends
 * on a parameter's value wants bz_pg_exec_params). *out as there. */
bz_status bz_pg_exec_named(PGconn *conn, const char *what, const char *name, const char *sql,
                           int nparams, const char *const *values, PGresult **out,
                           bz_error *err);

bz_status bz_pg_begin(PGconn *conn, bz_error *err);
bz_status bz_pg_commit(PGconn *conn, bz_error *err);
/* Roll back, ignoring failures: used on error paths where the transaction is
 * already doomed or the connection gone. */
void bz_pg_rollback(PGconn *conn);

/* 1 if a SQLSTATE means "try again later", 0 if the failure is permanent.
 * Transient: classes 08 (connection), 53 (resources), 57 (operator
 * intervention: shutdown, restart, cancel), 58 (system), and 25006
 * (read-only), 25P03, 40001, 40003, 40P01, 55P03; no SQLSTATE at all (the
 * wire failed) too. */
int bz_pg_sqlstate_is_transient(const char *sqlstate);

/* The integer in cell (row, col) of a text-format result. 0 when the cell
 * is NULL, empty, not wholly a decimal integer or out of int64 range: the
 * columns read this way are NOT NULL integers, so 0 only ever stands in for
 * a query mistake, the same value atoi gave, but without its undefined
 * behaviour on overflow. */
int64_t bz_pg_get_int64(const PGresult *res, int row, int col);

/* The number of rows a command (INSERT, UPDATE, DELETE ...) touched, parsed
 * from PQcmdTuples; 0 for a result that reports no count. */
int64_t bz_pg_affected_rows(PGresult *res);

#endif
