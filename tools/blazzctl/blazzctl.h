/*
 * blazzctl.h - what every blazzctl command module shares.
 *
 * A command is one function `int bz_ctl_cmd_<name>(int argc, char **argv)`
 * in its own module (cmd_<name>.c), listed once in main.c's command table.
 * argv[0] is the command name; the function returns the process exit code:
 * 0 on success, 1 on any failure after printing a message that names what
 * failed. Connection settings default from the environment (BLAZZ_PG_DSN,
 * BLAZZ_KAFKA_BROKERS, ...) so ops can source the stack's env file once.
 * Output is for humans unless --json asks for one JSON document on stdout.
 */
#ifndef BZ_CTL_H
#define BZ_CTL_H

#include <jansson.h>
#include <libpq-fe.h>

#include "blazz/v1/dead_letter.pb-c.h"
#include "core/keyring.h"
#include "core/status.h"

/* given if not NULL, else the environment variable env_name if set and not
 * empty, else fallback (may be NULL). The result is not owned by the caller. */
const char *bz_ctl_setting(const char *given, const char *env_name, const char *fallback);

/* The keys that seal secrets at rest (core/keyring.h), from the
 * environment only: BLAZZ_SECRETS_KEYS or BLAZZ_SECRETS_KEYS_FILE, else the
 * older single key BLAZZ_WEBHOOK_SECRET_KEY (or its _FILE). Free with
 * bz_keyring_free. */
bz_status bz_ctl_keyring(bz_keyring *out, bz_error *err);

/* PQexecParams on conn; a result that is neither rows nor a completed
 * command is printed as "blazzctl COMMAND: <PostgreSQL's message>", cleared
 * and NULL returned. The caller PQclears what it gets. */
PGresult *bz_ctl_exec(PGconn *conn, const char *command, const char *sql, int n,
                      const char *const *params, const int *lengths, const int *formats);

/* Print "blazzctl <command>: <message>" on stderr and return 1. */
int bz_ctl_fail(const char *command, const bz_error *err);

/* Report a usage mistake: the message, then a hint to run --help. */
void bz_ctl_usage_error(const char *command, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Print doc as indented JSON on stdout and release it; returns 0, or 1 when
 * it could not be written. */
int bz_ctl_print_json(json_t *doc);

/* Parse a decimal integer option in [min, max]; the error names `what`. */
bz_status bz_ctl_parse_int(const char *text, int min, int max, const char *what, int *out,
                           bz_error *err);

/* Add what `dlq tail` shows of a decoded dead letter to obj: origin, service,
 * error, attempts, headers and the payload (decoded JSON, else hex and
 * base64). Defined in cmd_dlq.c; tests/fuzz/blazzctl drives it. */
void bz_ctl_set_dead_letter(json_t *obj, const Blazz__V1__DeadLetter *dl);

#endif
