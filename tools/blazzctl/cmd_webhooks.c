/*
 * cmd_webhooks.c - `blazzctl webhooks add|list|disable|enable|replay`:
 * operate the webhook endpoints and deliveries of webhook-dispatcher.
 *
 * `add` seals the signing secret with the newest of the dispatcher's keys
 * (secrets.keys: $BLAZZ_SECRETS_KEYS or its _FILE; core/keyring.h), bound
 * to the new row (table, id, workspace), so the plaintext never reaches
 * the database; the row's id is drawn from its sequence first for that.
 * The secret is read from --secret-file (or standard input with "-") or
 * $BLAZZ_WEBHOOK_ENDPOINT_SECRET, never from the command line; without one
 * a Standard Webhooks secret ("whsec_" + base64 of 24 random bytes) is
 * generated and printed once. `replay` re-queues deliveries selected by endpoint and
 * creation time (optionally only those in one status): they go back to
 * pending with their attempts reset, keep their event id (the webhook-id)
 * and body, and the dispatcher is woken with NOTIFY. All SQL is
 * parameterized.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <openssl/crypto.h>

#include "blazzctl.h"
#include "core/config.h"
#include "pg/columns.h"
#include "pg/pg.h"
#include "wa/signature.h"

static const char webhooks_help[] =
    "usage: blazzctl webhooks add --workspace W --url URL [--secret-file F|-] [--events T,T]\n"
    "                             [--scheme standard|whatsapp_hmac] [--rate N]\n"
    "                             [--concurrency N] [--timeout-ms N] [--name NAME]\n"
    "       blazzctl webhooks list [--workspace W] [--json]\n"
    "       blazzctl webhooks disable --endpoint ID [--reason TEXT]\n"
    "       blazzctl webhooks enable --endpoint ID\n"
    "       blazzctl webhooks replay --endpoint ID --since T [--until T] [--status S]\n"
    "\n"
    "add:     create an endpoint; the secret is stored encrypted. It is read from\n"
    "         --secret-file (- for standard input) or $BLAZZ_WEBHOOK_ENDPOINT_SECRET;\n"
    "         without one a Standard Webhooks secret (whsec_...) is generated and\n"
    "         printed once.\n"
    "         Defaults: --rate 500 (deliveries/s), --concurrency 4, --timeout-ms 10000.\n"
    "         Event types: those of docs/EVENTS.md (message.created, message.status,\n"
    "         session.status, template.updated, account.updated, campaign.progress, ...), or\n"
    "         * (default).\n"
    "list:    endpoints with their state and failure counters.\n"
    "disable: stop deliveries to an endpoint; enable: resume them.\n"
    "replay:  re-deliver the endpoint's deliveries created in [since, until) (T is any\n"
    "         PostgreSQL timestamptz, e.g. 2025-01-31T10:00:00Z), only those in status S\n"
    "         (pending|retrying|success|failed) if given, with the same webhook-id.\n"
    "\n"
    "  --dsn DSN   PostgreSQL (default $BLAZZ_PG_DSN)\n"
    "  keys        $BLAZZ_SECRETS_KEYS or $BLAZZ_SECRETS_KEYS_FILE (ID:KEY,...; the last\n"
    "              one encrypts), else $BLAZZ_WEBHOOK_SECRET_KEY\n"
    "  --json      print the outcome as JSON\n"
    "  --help      this text\n";

typedef struct webhooks_options {
    const char *action, *dsn, *workspace, *url, *secret_file, *events, *scheme, *name;
    const char *endpoint, *reason, *since, *until, *status;
    int rate, concurrency, timeout_ms, json;
} webhooks_options;

static int webhooks_option(void *opts, int option, char *value)
{
    webhooks_options *o = opts;
    switch (option) {
    case 'd': o->dsn = value; break;
    case 'w': o->workspace = value; break;
    case 'u': o->url = value; break;
    case 's': o->secret_file = value; break;
    case 'e': o->events = value; break;
    case 'S': o->scheme = value; break;
    case 'n': o->name = value; break;
    case 'r': return bz_ctl_option_int("webhooks", value, 1, 1000000, "rate", &o->rate);
    case 'c':
        return bz_ctl_option_int("webhooks", value, 1, 10000, "concurrency", &o->concurrency);
    case 't':
        return bz_ctl_option_int("webhooks", value, 1, 3600000, "timeout-ms", &o->timeout_ms);
    case 'E': o->endpoint = value; break;
    case 'R': o->reason = value; break;
    case 'a': o->since = value; break;
    case 'b': o->until = value; break;
    case 'x': o->status = value; break;
    case 'j': o->json = 1; break;
    }
    return 0;
}

/* BZ_CTL_OPTIONS_RUN, _BAD or _HELP (options.h). */
static int parse_webhooks_options(int argc, char **argv, webhooks_options *o)
{
    static const struct option longopts[] = {
        {"dsn", required_argument, NULL, 'd'},
        {"workspace", required_argument, NULL, 'w'}, {"url", required_argument, NULL, 'u'},
        {"secret-file", required_argument, NULL, 's'}, {"events", required_argument, NULL, 'e'},
        {"scheme", required_argument, NULL, 'S'},   {"name", required_argument, NULL, 'n'},
        {"rate", required_argument, NULL, 'r'},     {"concurrency", required_argument, NULL, 'c'},
        {"timeout-ms", required_argument, NULL, 't'}, {"endpoint", required_argument, NULL, 'E'},
        {"reason", required_argument, NULL, 'R'},   {"since", required_argument, NULL, 'a'},
        {"until", required_argument, NULL, 'b'},    {"status", required_argument, NULL, 'x'},
        {"json", no_argument, NULL, 'j'},           {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    static const bz_ctl_command_line cl = {"webhooks", webhooks_help, longopts, webhooks_option,
                                           0};
    /* the column defaults (db/migrations 0008, 0020) */
    o->rate = 500, o->concurrency = 4, o->timeout_ms = 10000;
    int rc = bz_ctl_read_options(argc, argv, &cl, o);
    if (rc != BZ_CTL_OPTIONS_RUN)
        return rc;
    if (optind + 1 != argc) {
        bz_ctl_usage_error("webhooks", "say one of add, list, disable, enable, replay");
        return 1;
    }
    o->action = argv[optind];
    return bz_ctl_require_dsn("webhooks", o->dsn, &o->dsn);
}

static PGresult *run(PGconn *conn, const char *sql, int n, const char *const *params,
                     const int *lengths, const int *formats)
{
    return bz_ctl_exec(conn, "webhooks", sql, n, params, lengths, formats);
}

/* "a,b" -> "{a,b}" for a text[] parameter. */
static char *event_array(const char *events)
{
    const char *list = events && *events ? events : "*";
    size_t n = 1;
    for (const char *p = list; *p; p++)
        n += *p == ',';
    char *copy = strdup(list);
    const char **items = calloc(n, sizeof *items);
    char *text = NULL;
    if (copy && items) {
        size_t i = 0;
        char *save = NULL;
        for (char *tok = strtok_r(copy, ",", &save); tok && i < n; tok = strtok_r(NULL, ",", &save))
            items[i++] = tok;
        text = bz_pg_text_array(items, i);
    }
    free(items);
    free(copy);
    return text;
}

/* The endpoint's signing secret: given (file, stdin, environment) or
 * generated (*generated set). Heap; the caller wipes and frees. */
static char *endpoint_secret(const webhooks_options *o, int *generated, bz_error *err)
{
    char *secret = NULL;
    *generated = 0;
    if (bz_config_read_secret(o->secret_file, "BLAZZ_WEBHOOK_ENDPOINT_SECRET", &secret, err) != BZ_OK)
        return NULL;
    if (secret && *secret)
        return secret;
    free(secret);
    secret = calloc(1, BZ_STDWEBHOOKS_NEW_SECRET_LEN + 1);
    if (!secret) {
        bz_fail(err, BZ_ERR_NOMEM, "out of memory for a secret");
        return NULL;
    }
    if (bz_stdwebhooks_new_secret(secret, BZ_STDWEBHOOKS_NEW_SECRET_LEN + 1, err) != BZ_OK) {
        free(secret);
        return NULL;
    }
    *generated = 1;
    return secret;
}

/* Draw the new row's id, then seal secret bound to it. */
static PGresult *insert_endpoint(const webhooks_options *o, PGconn *conn, const bz_keyring *ring,
                                 const char *secret, const char *scheme, bz_error *err)
{
    PGresult *res = run(conn, "SELECT nextval(pg_get_serial_sequence('webhook_endpoints', 'id'))",
                        0, NULL, NULL, NULL);
    if (!res)
        return NULL;
    char id[24];
    snprintf(id, sizeof id, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    uint8_t *sealed = NULL;
    size_t sealed_len;
    if (bz_keyring_seal_row(ring, "webhook_endpoints", id, o->workspace, secret, strlen(secret),
                            &sealed, &sealed_len, err) != BZ_OK) {
        bz_ctl_fail("webhooks add", err);
        return NULL;
    }
    char *events = event_array(o->events);
    char rate[16], conc[16], timeout[16];
    snprintf(rate, sizeof rate, "%d", o->rate);
    snprintf(conc, sizeof conc, "%d", o->concurrency);
    snprintf(timeout, sizeof timeout, "%d", o->timeout_ms);
    const char *params[] = {id, o->workspace, o->name, o->url, (const char *)sealed, events,
                            scheme, rate, conc, timeout};
    int lengths[10] = {0, 0, 0, 0, (int)sealed_len};
    int formats[10] = {0, 0, 0, 0, 1};
    res = events ? run(conn,
                       "INSERT INTO webhook_endpoints (id, workspace_id, name, url, "
                       "secret_ciphertext, event_types, signature_scheme, rate_limit_per_sec, "
                       "max_concurrency, timeout_ms) VALUES ($1::bigint, $2::bigint, $3, $4, $5, "
                       "$6::text[], $7, $8::int, $9::int, $10::int) RETURNING id, uuid",
                       10, params, lengths, formats)
                 : NULL;
    free(sealed);
    free(events);
    return res;
}

static int run_add(const webhooks_options *o, PGconn *conn)
{
    if (!o->workspace || !o->url) {
        bz_ctl_usage_error("webhooks add", "--workspace and --url are required");
        return 1;
    }
    const char *scheme = o->scheme ? o->scheme : "standard";
    if (strcmp(scheme, "standard") != 0 && strcmp(scheme, "whatsapp_hmac") != 0) {
        bz_ctl_usage_error("webhooks add", "--scheme is standard or whatsapp_hmac");
        return 1;
    }
    bz_error err;
    bz_error_clear(&err);
    bz_keyring ring;
    if (bz_ctl_keyring(&ring, &err) != BZ_OK)
        return bz_ctl_fail("webhooks add", &err);
    int generated;
    char *secret = endpoint_secret(o, &generated, &err);
    PGresult *res = secret ? insert_endpoint(o, conn, &ring, secret, scheme, &err) : NULL;
    bz_keyring_free(&ring);
    int rc = 1;
    if (!secret)
        bz_ctl_fail("webhooks add", &err);
    else if (res && o->json)
        rc = bz_ctl_print_json(json_pack("{s:I, s:s, s:s?}", "id",
                                         (json_int_t)strtoll(PQgetvalue(res, 0, 0), NULL, 10),
                                         "uuid", PQgetvalue(res, 0, 1), "secret",
                                         generated ? secret : NULL));
    else if (res) {
        printf("endpoint %s (%s) added\n", PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
        if (generated)
            printf("signing secret (shown once): %s\n", secret);
        rc = 0;
    }
    if (secret) {
        OPENSSL_cleanse(secret, strlen(secret));
        free(secret);
    }
    PQclear(res);
    return rc;
}

static json_t *endpoint_json(const PGresult *res, int r)
{
    return json_pack("{s:I, s:I, s:s, s:s, s:s, s:b, s:s, s:i, s:i, s:i, s:i}", "id",
                     (json_int_t)strtoll(PQgetvalue(res, r, 0), NULL, 10), "workspace_id",
                     (json_int_t)strtoll(PQgetvalue(res, r, 1), NULL, 10), "url",
                     PQgetvalue(res, r, 2), "event_types", PQgetvalue(res, r, 3),
                     "signature_scheme", PQgetvalue(res, r, 4), "enabled",
                     PQgetvalue(res, r, 5)[0] == 't', "disabled_reason", PQgetvalue(res, r, 6),
                     "consecutive_failures", (int)bz_pg_get_int64(res, r, 7), "last_status_code",
                     (int)bz_pg_get_int64(res, r, 8), "rate_limit_per_sec",
                     (int)bz_pg_get_int64(res, r, 9), "max_concurrency",
                     (int)bz_pg_get_int64(res, r, 10));
}

static void print_endpoint(const PGresult *res, int r)
{
    printf("%-6s %-9s %-8s %-5s %-40s %s", PQgetvalue(res, r, 0), PQgetvalue(res, r, 1),
           PQgetvalue(res, r, 5)[0] == 't' ? "yes" : "no", PQgetvalue(res, r, 7),
           PQgetvalue(res, r, 2), PQgetvalue(res, r, 3));
    if (PQgetvalue(res, r, 6)[0])
        printf("  (disabled: %s)", PQgetvalue(res, r, 6));
    printf("\n");
}

static int run_list(const webhooks_options *o, PGconn *conn)
{
    const char *params[] = {o->workspace};
    PGresult *res = run(conn,
                        "SELECT id, workspace_id, url, array_to_string(event_types, ','), "
                        "signature_scheme, enabled, coalesce(disabled_reason, ''), "
                        "consecutive_failures, coalesce(last_status_code, 0), rate_limit_per_sec, "
                        "max_concurrency FROM webhook_endpoints WHERE deleted_at IS NULL "
                        "AND ($1::bigint IS NULL OR workspace_id = $1::bigint) ORDER BY id",
                        1, params, NULL, NULL);
    if (!res)
        return 1;
    if (!o->json)
        printf("%-6s %-9s %-8s %-5s %-40s %s\n", "ID", "WORKSPACE", "ENABLED", "FAILS", "URL",
               "EVENTS");
    int rc = bz_ctl_print_rows(res, o->json, endpoint_json, print_endpoint);
    if (!o->json)
        printf("(%d endpoint(s))\n", PQntuples(res));
    PQclear(res);
    return rc;
}

static int run_toggle(const webhooks_options *o, PGconn *conn, int enable)
{
    if (!o->endpoint) {
        bz_ctl_usage_error("webhooks", "--endpoint is required");
        return 1;
    }
    const char *reason = o->reason ? o->reason : "disabled by an operator (blazzctl)";
    const char *params[] = {o->endpoint, reason};
    PGresult *res =
        enable ? run(conn,
                     "UPDATE webhook_endpoints SET enabled = true, disabled_reason = NULL, "
                     "disabled_at = NULL, failing_since = NULL, consecutive_failures = 0 "
                     "WHERE id = $1::bigint AND deleted_at IS NULL",
                     1, params, NULL, NULL)
               : run(conn,
                     "UPDATE webhook_endpoints SET enabled = false, disabled_reason = $2, "
                     "disabled_at = now() WHERE id = $1::bigint AND deleted_at IS NULL",
                     2, params, NULL, NULL);
    if (!res)
        return 1;
    int64_t changed = bz_pg_affected_rows(res);
    PQclear(res);
    if (changed == 0) {
        fprintf(stderr, "blazzctl webhooks: endpoint %s not found\n", o->endpoint);
        return 1;
    }
    if (enable)
        PQclear(PQexec(conn, BZ_PG_WEBHOOK_WAKE_SQL));
    printf("endpoint %s %s\n", o->endpoint, enable ? "enabled" : "disabled");
    return 0;
}

static int run_replay(const webhooks_options *o, PGconn *conn)
{
    if (!o->endpoint || !o->since) {
        bz_ctl_usage_error("webhooks replay", "--endpoint and --since are required");
        return 1;
    }
    if (o->status && strcmp(o->status, "pending") != 0 && strcmp(o->status, "retrying") != 0 &&
        strcmp(o->status, "success") != 0 && strcmp(o->status, "failed") != 0) {
        bz_ctl_usage_error("webhooks replay", "--status is pending, retrying, success or failed");
        return 1;
    }
    const char *params[] = {o->endpoint, o->since, o->until, o->status};
    PGresult *res = run(conn,
                        "UPDATE webhook_retry_queue SET status = 'pending', retry_count = 0, "
                        "next_retry_at = now(), last_error = NULL, last_status_code = NULL, "
                        "delivered_at = NULL WHERE endpoint_id = $1::bigint "
                        "AND created_at >= $2::timestamptz "
                        "AND ($3::timestamptz IS NULL OR created_at < $3::timestamptz) "
                        "AND ($4::text IS NULL OR status = $4::text)",
                        4, params, NULL, NULL);
    if (!res)
        return 1;
    int n = (int)bz_pg_affected_rows(res);
    PQclear(res);
    PQclear(PQexec(conn, BZ_PG_WEBHOOK_WAKE_SQL));
    if (o->json)
        return bz_ctl_print_json(json_pack("{s:s, s:i}", "endpoint", o->endpoint, "requeued", n));
    printf("%d deliveries of endpoint %s re-queued (same webhook-id)\n", n, o->endpoint);
    return 0;
}

int bz_ctl_cmd_webhooks(int argc, char **argv)
{
    webhooks_options o;
    memset(&o, 0, sizeof o);
    int rc = parse_webhooks_options(argc, argv, &o);
    if (rc != 0)
        return rc == BZ_CTL_OPTIONS_HELP ? 0 : 1;
    int (*action)(const webhooks_options *, PGconn *) = NULL;
    if (strcmp(o.action, "add") == 0)
        action = run_add;
    else if (strcmp(o.action, "list") == 0)
        action = run_list;
    else if (strcmp(o.action, "replay") == 0)
        action = run_replay;
    else if (strcmp(o.action, "disable") != 0 && strcmp(o.action, "enable") != 0) {
        bz_ctl_usage_error("webhooks", "unknown action '%s'", o.action);
        return 1;
    }
    PGconn *conn = bz_ctl_connect_pg("webhooks", o.dsn);
    if (!conn)
        return 1;
    rc = action ? action(&o, conn) : run_toggle(&o, conn, strcmp(o.action, "enable") == 0);
    PQfinish(conn);
    return rc;
}
