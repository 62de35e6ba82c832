/*
 * blazzctl.h - what every blazzctl command module shares.
 *
 * A command is one function `int bz_ctl_cmd_<name>(int argc, char **argv)`
 * in its own module (cmd_<name>.c), listed once in main.c's command table.
 * argv[0] is the command name; the function returns the process exit code:
 * 0 on success, 1 on any failure after printing a message that names what
 * failed. Connection settings default from the environment (BLAZZ_PG_DSN,
 * BLAZZ_KAFKA_BROKERS, ...) so ops can source the stack's env file once;
 * options.h reads the command line.
 * Output is for humans unless --json asks for one JSON document on stdout.
 */
#ifndef BZ_CTL_H
#define BZ_CTL_H

#include <curl/curl.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "blazz/v1/dead_letter.pb-c.h"
#include "core/keyring.h"
#include "core/status.h"
#include "options.h"

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

/* Connect to PostgreSQL at dsn; NULL after printing "blazzctl COMMAND:
 * connect to PostgreSQL: <why>". The caller PQfinishes what it gets. */
PGconn *bz_ctl_connect_pg(const char *command, const char *dsn);

/* GET url (http or https only, redirects not followed: a request never
 * wanders off the host it was pointed at) with headers (may be NULL),
 * giving up after timeout_ms; the body goes to write(ctx). *status is the
 * HTTP status, 0 without an answer; errbuf (CURL_ERROR_SIZE bytes) says
 * why when there was none. libcurl must be initialised. */
CURLcode bz_ctl_http_get(const char *url, struct curl_slist *headers, long timeout_ms,
                         curl_write_callback write, void *ctx, long *status, char *errbuf);

/* Print "blazzctl <command>: <message>" on stderr and return 1. */
int bz_ctl_fail(const char *command, const bz_error *err);

/* Print doc as indented JSON on stdout and release it; returns 0, or 1 when
 * it could not be written. */
int bz_ctl_print_json(json_t *doc);

/* A listing's rows, each as a JSON object and as a line of text. */
typedef json_t *(*bz_ctl_row_json_fn)(const PGresult *res, int row);
typedef void (*bz_ctl_row_text_fn)(const PGresult *res, int row);

/* Print every row of res: with json, one JSON array of row_json's objects
 * (bz_ctl_print_json), else row_text's lines. The caller keeps res and
 * prints any table header or footer. Returns the exit code. */
int bz_ctl_print_rows(const PGresult *res, int json, bz_ctl_row_json_fn row_json,
                      bz_ctl_row_text_fn row_text);

/* Add what `dlq tail` shows of a decoded dead letter to obj: origin, service,
 * error, attempts, headers and the payload (decoded JSON, else hex and
 * base64). Defined in dlq_json.c; tests/fuzz/blazzctl drives it. */
void bz_ctl_set_dead_letter(json_t *obj, const Blazz__V1__DeadLetter *dl);

#endif
