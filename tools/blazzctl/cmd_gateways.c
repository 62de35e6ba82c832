/*
 * cmd_gateways.c - `blazzctl gateways
 * add|rotate-key|list|bind|grant|revoke|disable|enable`: the gateways
 * ingest accepts events from, their signing keys, the sessions each serves
 * and the workspaces it serves them for (ARCHITECTURE.md §9.2).
 *
 * A key is an HMAC secret the gateway signs its requests with; ingest must
 * read it to verify, so it is stored sealed with the newest key of the ring
 * (core/keyring.h, bound to "gateway_keys:<id>:<gateway>"). It comes from
 * --key-file (or standard input with "-") or $BLAZZ_GATEWAY_KEY, never the
 * command line, and is at least 32 characters (core/weak_secret.h); without
 * one, 32 random bytes in hex are generated and written to --key-out, a new
 * file (mode 600; an existing file or a symlink is refused before anything
 * is changed), or printed once. `rotate-key` adds a key
 * valid at once and ends every older key at now + --overlap (default 24h):
 * during the overlap both verify, so a gateway switches keys without a
 * refused event. `bind` makes a gateway the owner of sessions' live
 * accounts; only an account's gateway may post its events. `grant` and
 * `revoke` edit gateway_workspaces (0046): a gateway granted to workspaces
 * serves only them, one granted to none every workspace, so the first
 * grant closes a shared gateway to the others and the last revoke opens it
 * to all (only with --share); each says which it serves afterwards. The Kafka side
 * of a gateway (its principal's SCRAM user, topic and ACLs) is made with
 * `blazzctl topics ensure --gateway ID` and `blazzctl acls apply --gateway
 * ID=PRINCIPAL`. All SQL is parameterized.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "blazzctl.h"
#include "core/config.h"
#include "core/hex.h"
#include "core/weak_secret.h"
#include "kafka/topics.h"
#include "pg/columns.h"
#include "pg/pg.h"

static const char gateways_help[] =
    "usage: blazzctl gateways add ID [--kind webjs|meta] [--principal P] [--name N]\n"
    "                                [--key-file F|-] [--key-out F] [--json]\n"
    "       blazzctl gateways rotate-key ID [--overlap D] [--key-file F|-] [--key-out F] [--json]\n"
    "       blazzctl gateways bind ID --session S [--session S]...\n"
    "       blazzctl gateways grant ID WORKSPACE | revoke ID WORKSPACE [--share] [--json]\n"
    "       blazzctl gateways list [--json]\n"
    "       blazzctl gateways disable ID | enable ID\n"
    "\n"
    "add:        register a gateway (ID: a-z 0-9 _ -) with its first signing key.\n"
    "            Kafka principal P defaults to gateway-ID.\n"
    "rotate-key: add a new signing key, valid now; older keys stay valid for the\n"
    "            overlap D (90s, 15m, 2h, 1d; default 24h, 0 ends them now).\n"
    "bind:       make ID the gateway of the sessions' live accounts.\n"
    "grant:      let workspace WORKSPACE's sessions use ID. A gateway granted to\n"
    "            workspaces serves only them; one granted to none serves every\n"
    "            workspace (so grant the new workspace before revoking the last).\n"
    "revoke:     take ID away from the workspace. Taking its last workspace away\n"
    "            opens ID to every workspace, so it is refused without --share.\n"
    "list:       gateways, their keys valid now, the sessions they serve and the\n"
    "            workspaces they serve them for.\n"
    "disable:    refuse everything from the gateway; enable undoes it.\n"
    "\n"
    "The key comes from --key-file (- for standard input) or $BLAZZ_GATEWAY_KEY;\n"
    "without one a key is generated and written to --key-out (mode 600) or printed.\n"
    "\n"
    "  --dsn DSN   PostgreSQL (default $BLAZZ_PG_DSN)\n"
    "  keys        $BLAZZ_SECRETS_KEYS or $BLAZZ_SECRETS_KEYS_FILE (the last one seals)\n"
    "  --json      print the outcome as JSON\n"
    "  --help      this text\n";

#define MAX_SESSIONS 256
#define KEY_BYTES 32

typedef struct gateways_options {
    const char *action, *id, *workspace, *dsn, *kind, *principal, *name, *key_file, *key_out,
        *overlap;
    const char *sessions[MAX_SESSIONS];
    size_t nsessions;
    int json;
    int share; /* revoke: the last grant may go, the gateway serving everyone */
} gateways_options;

static int add_session(gateways_options *o, const char *s)
{
    if (o->nsessions == MAX_SESSIONS) {
        bz_ctl_usage_error("gateways", "at most %d --session options", MAX_SESSIONS);
        return 1;
    }
    o->sessions[o->nsessions++] = s;
    return 0;
}

static int gateways_option(void *opts, int option, char *value)
{
    gateways_options *o = opts;
    switch (option) {
    case 'd': o->dsn = value; break;
    case 'k': o->kind = value; break;
    case 'p': o->principal = value; break;
    case 'n': o->name = value; break;
    case 'f': o->key_file = value; break;
    case 'o': o->key_out = value; break;
    case 'v': o->overlap = value; break;
    case 's': return add_session(o, value);
    case 'j': o->json = 1; break;
    case 'S': o->share = 1; break;
    }
    return 0;
}

/* BZ_CTL_OPTIONS_RUN, _BAD or _HELP (options.h). */
static int parse_gateways_options(int argc, char **argv, gateways_options *o)
{
    static const struct option longopts[] = {
        {"dsn", required_argument, NULL, 'd'},      {"kind", required_argument, NULL, 'k'},
        {"principal", required_argument, NULL, 'p'}, {"name", required_argument, NULL, 'n'},
        {"key-file", required_argument, NULL, 'f'}, {"key-out", required_argument, NULL, 'o'},
        {"overlap", required_argument, NULL, 'v'},  {"session", required_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},           {"share", no_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0}};
    static const bz_ctl_command_line cl = {"gateways", gateways_help, longopts, gateways_option,
                                           0};
    int rc = bz_ctl_read_options(argc, argv, &cl, o);
    if (rc != BZ_CTL_OPTIONS_RUN)
        return rc;
    int list = optind < argc && strcmp(argv[optind], "list") == 0;
    int grants = optind < argc && (strcmp(argv[optind], "grant") == 0 ||
                                   strcmp(argv[optind], "revoke") == 0);
    if (argc - optind != (list ? 1 : grants ? 3 : 2)) {
        bz_ctl_usage_error("gateways", "say add, rotate-key, bind, disable or enable and the "
                                       "gateway id, grant or revoke, the gateway id and the "
                                       "workspace id, or list");
        return 1;
    }
    o->action = argv[optind];
    o->id = list ? NULL : argv[optind + 1];
    o->workspace = grants ? argv[optind + 2] : NULL;
    size_t digits = o->workspace ? strspn(o->workspace, "0123456789") : 0;
    if (o->workspace && (digits == 0 || digits > 18 || o->workspace[digits] ||
                         strtoll(o->workspace, NULL, 10) == 0)) {
        bz_ctl_usage_error("gateways", "workspace id '%s': a positive integer", o->workspace);
        return 1;
    }
    if (o->id && !bz_gateway_id_valid(o->id)) {
        bz_ctl_usage_error("gateways", "gateway id '%s': 1 to %d characters of a-z 0-9 _ -",
                           o->id, BZ_GATEWAY_ID_MAX);
        return 1;
    }
    return bz_ctl_require_dsn("gateways", o->dsn, &o->dsn);
}

static PGresult *run(PGconn *conn, const char *sql, int n, const char *const *params,
                     const int *lengths, const int *formats)
{
    return bz_ctl_exec(conn, "gateways", sql, n, params, lengths, formats);
}

static int exec_ok(PGconn *conn, const char *sql, int n, const char *const *params)
{
    PGresult *res = run(conn, sql, n, params, NULL, NULL);
    PQclear(res);
    return res != NULL;
}

/* "90s", "15m", "2h", "1d" or "0" into milliseconds; -1 when malformed. */
static int64_t parse_duration_ms(const char *text)
{
    char *end = NULL;
    errno = 0;
    long long n = strtoll(text, &end, 10);
    if (errno || end == text || n < 0 || n > 3650LL * 86400)
        return -1;
    if (*end == '\0')
        return n == 0 ? 0 : -1;
    int64_t unit = strcmp(end, "s") == 0 ? 1000
                 : strcmp(end, "m") == 0 ? 60000
                 : strcmp(end, "h") == 0 ? 3600000
                 : strcmp(end, "d") == 0 ? 86400000
                                         : -1;
    return unit < 0 ? -1 : n * unit;
}

/* The key: given, or generated (*generated set). Heap; wiped and freed by
 * the caller. */
static char *signing_key(const gateways_options *o, int *generated, bz_error *err)
{
    char *key = NULL;
    *generated = 0;
    if (bz_config_read_secret(o->key_file, "BLAZZ_GATEWAY_KEY", &key, err) != BZ_OK)
        return NULL;
    if (key && *key) {
        if (bz_secret_refuse_short("the gateway key", key, BZ_SIGNING_KEY_LEN_MIN, err) == BZ_OK)
            return key;
        OPENSSL_cleanse(key, strlen(key));
        free(key);
        return NULL;
    }
    free(key);
    unsigned char raw[KEY_BYTES];
    key = malloc(2 * KEY_BYTES + 1);
    if (!key || RAND_bytes(raw, sizeof raw) != 1) {
        free(key);
        bz_fail(err, BZ_ERR_IO, "no random bytes for a key");
        return NULL;
    }
    bz_hex_encode(raw, sizeof raw, key, 2 * KEY_BYTES + 1, NULL);
    OPENSSL_cleanse(raw, sizeof raw);
    *generated = 1;
    return key;
}

/* The file --key-out names, created for the key before anything changes:
 * never an existing file (another key, something a symlink points at),
 * mode 600. Returns its descriptor, or -1 (said on stderr). */
static int create_key_file(const gateways_options *o)
{
    int fd = open(o->key_out, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        fprintf(stderr, "blazzctl gateways: --key-out %s: %s%s\n", o->key_out, strerror(errno),
                errno == EEXIST ? " (a key file is never overwritten; remove it first)" : "");
    return fd;
}

/* Hand a generated key out: into key_fd (closed here) when --key-out was
 * given, else standard output once. */
static int hand_out_key(const gateways_options *o, int key_fd, const char *key)
{
    if (key_fd < 0) {
        if (!o->json)
            printf("signing key (shown once): %s\n", key);
        return 0;
    }
    size_t len = strlen(key);
    int ok = write(key_fd, key, len) == (ssize_t)len && write(key_fd, "\n", 1) == 1;
    if (close(key_fd) != 0)
        ok = 0;
    if (!ok)
        fprintf(stderr, "blazzctl gateways: write %s: %s\n", o->key_out, strerror(errno));
    return ok ? 0 : 1;
}

/* Insert a key of gateway o->id valid from now, sealed bound to its row,
 * inside the caller's transaction. Returns the key row id, or -1. */
static int64_t insert_key(const gateways_options *o, PGconn *conn, const char *key)
{
    bz_error err;
    bz_error_clear(&err);
    bz_keyring ring;
    if (bz_ctl_keyring(&ring, &err) != BZ_OK) {
        bz_ctl_fail("gateways", &err);
        return -1;
    }
    PGresult *res = run(conn, "SELECT nextval(pg_get_serial_sequence('gateway_keys', 'id'))", 0,
                        NULL, NULL, NULL);
    char id[24] = "";
    if (res)
        snprintf(id, sizeof id, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    uint8_t *sealed = NULL;
    size_t sealed_len = 0;
    bz_status st = res ? bz_keyring_seal_row(&ring, "gateway_keys", id, o->id, key, strlen(key),
                                             &sealed, &sealed_len, &err)
                       : BZ_ERR_IO;
    bz_keyring_free(&ring);
    if (st != BZ_OK) {
        if (res)
            bz_ctl_fail("gateways", &err);
        return -1;
    }
    const char *params[] = {id, o->id, (const char *)sealed};
    int lengths[] = {0, 0, (int)sealed_len}, formats[] = {0, 0, 1};
    res = run(conn,
              "INSERT INTO gateway_keys (id, gateway_id, secret_ciphertext) "
              "VALUES ($1::bigint, $2, $3)",
              3, params, lengths, formats);
    free(sealed);
    PQclear(res);
    return res ? strtoll(id, NULL, 10) : -1;
}

/* Run body inside one transaction, with the gateway's key (given or
 * generated) handed out only once the transaction committed. */
static int with_new_key(const gateways_options *o, PGconn *conn,
                        int (*body)(const gateways_options *, PGconn *), const char *done)
{
    bz_error err;
    bz_error_clear(&err);
    int generated;
    char *key = signing_key(o, &generated, &err);
    if (!key)
        return bz_ctl_fail("gateways", &err);
    int key_fd = generated && o->key_out ? create_key_file(o) : -1;
    int64_t key_id = -1;
    int ok = (key_fd >= 0 || !generated || !o->key_out) && exec_ok(conn, "BEGIN", 0, NULL) &&
             body(o, conn) == 0 && (key_id = insert_key(o, conn, key)) > 0 &&
             exec_ok(conn, "COMMIT", 0, NULL);
    if (!ok)
        PQclear(PQexec(conn, "ROLLBACK"));
    if (!ok && key_fd >= 0) {
        close(key_fd);
        unlink(o->key_out);
    }
    int rc = ok ? 0 : 1;
    if (ok && generated)
        rc = hand_out_key(o, key_fd, key);
    if (ok && o->json)
        rc |= bz_ctl_print_json(json_pack("{s:s, s:I, s:s?}", "gateway", o->id, "key_id",
                                          (json_int_t)key_id, "key",
                                          generated && !o->key_out ? key : NULL));
    else if (ok)
        printf("gateway %s: %s (key %" PRId64 ")\n", o->id, done, key_id);
    OPENSSL_cleanse(key, strlen(key));
    free(key);
    return rc;
}

static int insert_gateway(const gateways_options *o, PGconn *conn)
{
    char principal[BZ_GATEWAY_ID_MAX + 16];
    snprintf(principal, sizeof principal, "gateway-%s", o->id);
    const char *params[] = {o->id, o->kind ? o->kind : "webjs",
                            o->principal ? o->principal : principal, o->name};
    return exec_ok(conn,
                   "INSERT INTO gateways (id, kind, kafka_principal, name) "
                   "VALUES ($1, $2, $3, $4)",
                   4, params)
               ? 0
               : 1;
}

/* End the gateway's older keys at now + overlap (those that would outlive it). */
static int end_older_keys(const gateways_options *o, PGconn *conn)
{
    int64_t overlap = parse_duration_ms(o->overlap ? o->overlap : "24h");
    if (overlap < 0) {
        bz_ctl_usage_error("gateways rotate-key", "--overlap '%s': expected 0, or N followed by "
                                                  "s, m, h or d", o->overlap);
        return 1;
    }
    char ms[24];
    snprintf(ms, sizeof ms, "%" PRId64, overlap);
    const char *params[] = {o->id, ms};
    PGresult *res = run(conn, "SELECT 1 FROM gateways WHERE id = $1 FOR UPDATE", 1, params, NULL,
                        NULL);
    int found = res && PQntuples(res) == 1;
    PQclear(res);
    if (!found) {
        if (res)
            fprintf(stderr, "blazzctl gateways: gateway %s not found\n", o->id);
        return 1;
    }
    /* valid_until must stay after valid_from: a key not valid yet ends when it starts */
    return exec_ok(conn,
                   "UPDATE gateway_keys SET valid_until = greatest(valid_from + interval '1 ms', "
                   "  now() + $2::bigint * interval '1 millisecond') "
                   "WHERE gateway_id = $1 AND (valid_until IS NULL OR "
                   "  valid_until > now() + $2::bigint * interval '1 millisecond')",
                   2, params)
               ? 0
               : 1;
}

static int run_bind(const gateways_options *o, PGconn *conn)
{
    if (o->nsessions == 0) {
        bz_ctl_usage_error("gateways bind", "name at least one --session");
        return 1;
    }
    char *sessions = bz_pg_text_array(o->sessions, o->nsessions);
    const char *params[] = {o->id, sessions};
    PGresult *res = sessions ? run(conn,
                                   "UPDATE whatsapp_accounts SET gateway_id = $1 "
                                   "WHERE session_id = ANY ($2::text[]) AND deleted_at IS NULL",
                                   2, params, NULL, NULL)
                             : NULL;
    free(sessions);
    if (!res)
        return 1;
    int64_t n = bz_pg_affected_rows(res);
    PQclear(res);
    printf("gateway %s now serves %" PRId64 " of %zu session(s)\n", o->id, n, o->nsessions);
    return n == (int64_t)o->nsessions ? 0 : 1;
}

/* "every workspace", or the workspaces gateway id is granted to. */
static int print_served(const gateways_options *o, PGconn *conn)
{
    const char *params[] = {o->id};
    PGresult *res = run(conn,
                        "SELECT coalesce(json_agg(workspace_id ORDER BY workspace_id), '[]') "
                        "FROM gateway_workspaces WHERE gateway_id = $1",
                        1, params, NULL, NULL);
    if (!res)
        return 1;
    const char *list = PQgetvalue(res, 0, 0);
    int shared = strcmp(list, "[]") == 0;
    int rc = 0;
    if (o->json)
        rc = bz_ctl_print_json(json_pack("{s:s, s:b, s:o}", "gateway", o->id, "shared", shared,
                                         "workspaces", json_loads(list, 0, NULL)));
    else if (shared)
        printf("gateway %s serves every workspace (granted to none)\n", o->id);
    else
        printf("gateway %s serves only workspaces %s\n", o->id, list);
    PQclear(res);
    return rc;
}

/* grant: a new row, none when there is one; revoke: the row gone. An
 * unknown gateway or workspace is an error; a grant already there or a
 * revoke of none changes nothing and is not. The last grant's revoke
 * opens the gateway to every workspace (an offboarding that forgets it
 * would hand a tenant's gateway to all): refused without --share. */
static int run_grant(const gateways_options *o, PGconn *conn, int grant)
{
    const char *params[] = {o->id, o->workspace};
    PGresult *res = run(conn,
                        "SELECT (SELECT count(*) FROM gateways WHERE id = $1), "
                        "(SELECT count(*) FROM workspaces WHERE id = $2::bigint), "
                        "(SELECT count(*) FROM gateway_workspaces WHERE gateway_id = $1 AND "
                        "workspace_id = $2::bigint), "
                        "(SELECT count(*) FROM gateway_workspaces WHERE gateway_id = $1 AND "
                        "workspace_id <> $2::bigint)",
                        2, params, NULL, NULL);
    if (!res)
        return 1;
    int gateway = PQgetvalue(res, 0, 0)[0] != '0', workspace = PQgetvalue(res, 0, 1)[0] != '0';
    int last_grant = PQgetvalue(res, 0, 2)[0] != '0' && strcmp(PQgetvalue(res, 0, 3), "0") == 0;
    PQclear(res);
    if (!gateway || !workspace) {
        fprintf(stderr, "blazzctl gateways: %s %s not found\n", gateway ? "workspace" : "gateway",
                gateway ? o->workspace : o->id);
        return 1;
    }
    if (!grant && last_grant && !o->share) {
        fprintf(stderr,
                "blazzctl gateways: workspace %s is the last one gateway %s serves; without it "
                "the gateway serves every workspace. Grant the next workspace first, or say "
                "--share to open it to all\n",
                o->workspace, o->id);
        return 1;
    }
    if (!exec_ok(conn,
                 grant ? "INSERT INTO gateway_workspaces (gateway_id, workspace_id) "
                         "VALUES ($1, $2::bigint) ON CONFLICT DO NOTHING"
                       : "DELETE FROM gateway_workspaces WHERE gateway_id = $1 AND "
                         "workspace_id = $2::bigint",
                 2, params))
        return 1;
    return print_served(o, conn);
}

static int run_toggle(const gateways_options *o, PGconn *conn, int enable)
{
    const char *params[] = {o->id};
    PGresult *res = run(conn,
                        enable ? "UPDATE gateways SET disabled_at = NULL WHERE id = $1"
                               : "UPDATE gateways SET disabled_at = now() WHERE id = $1",
                        1, params, NULL, NULL);
    if (!res)
        return 1;
    int64_t n = bz_pg_affected_rows(res);
    PQclear(res);
    if (n == 0) {
        fprintf(stderr, "blazzctl gateways: gateway %s not found\n", o->id);
        return 1;
    }
    printf("gateway %s %s\n", o->id, enable ? "enabled" : "disabled");
    return 0;
}

/* Column 6: the workspaces granted, a JSON array; empty: shared by all. */
static json_t *gateway_json(const PGresult *res, int r)
{
    const char *granted = PQgetvalue(res, r, 6);
    return json_pack("{s:s, s:s, s:s, s:b, s:I, s:I, s:b, s:o}", "id", PQgetvalue(res, r, 0),
                     "kind", PQgetvalue(res, r, 1), "kafka_principal", PQgetvalue(res, r, 2),
                     "disabled", PQgetvalue(res, r, 3)[0] == 't', "valid_keys",
                     (json_int_t)bz_pg_get_int64(res, r, 4), "sessions",
                     (json_int_t)bz_pg_get_int64(res, r, 5), "shared",
                     strcmp(granted, "[]") == 0, "workspaces", json_loads(granted, 0, NULL));
}

static void print_gateway(const PGresult *res, int r)
{
    const char *granted = PQgetvalue(res, r, 6);
    printf("%-20s %-6s %-24s %-9s %-6s %-8s %s\n", PQgetvalue(res, r, 0), PQgetvalue(res, r, 1),
           PQgetvalue(res, r, 2), PQgetvalue(res, r, 3)[0] == 't' ? "yes" : "no",
           PQgetvalue(res, r, 4), PQgetvalue(res, r, 5),
           strcmp(granted, "[]") == 0 ? "all" : granted);
}

static int run_list(const gateways_options *o, PGconn *conn)
{
    PGresult *res = run(conn,
                        "SELECT g.id, g.kind, coalesce(g.kafka_principal, ''), "
                        "  g.disabled_at IS NOT NULL, "
                        "  (SELECT count(*) FROM gateway_keys k WHERE k.gateway_id = g.id "
                        "     AND k.valid_from <= now() AND (k.valid_until IS NULL "
                        "     OR k.valid_until > now())), "
                        "  (SELECT count(*) FROM whatsapp_accounts a WHERE a.gateway_id = g.id "
                        "     AND a.deleted_at IS NULL), "
                        "  (SELECT coalesce(json_agg(w.workspace_id ORDER BY w.workspace_id), "
                        "     '[]') FROM gateway_workspaces w WHERE w.gateway_id = g.id) "
                        "FROM gateways g ORDER BY g.id",
                        0, NULL, NULL, NULL);
    if (!res)
        return 1;
    if (!o->json)
        printf("%-20s %-6s %-24s %-9s %-6s %-8s %s\n", "GATEWAY", "KIND", "PRINCIPAL",
               "DISABLED", "KEYS", "SESSIONS", "WORKSPACES");
    int rc = bz_ctl_print_rows(res, o->json, gateway_json, print_gateway);
    PQclear(res);
    return rc;
}

static int dispatch(const gateways_options *o, PGconn *conn)
{
    if (strcmp(o->action, "add") == 0) {
        if (o->kind && strcmp(o->kind, "webjs") != 0 && strcmp(o->kind, "meta") != 0) {
            bz_ctl_usage_error("gateways add", "--kind is webjs or meta");
            return 1;
        }
        return with_new_key(o, conn, insert_gateway, "added");
    }
    if (strcmp(o->action, "rotate-key") == 0)
        return with_new_key(o, conn, end_older_keys, "new key added");
    if (strcmp(o->action, "bind") == 0)
        return run_bind(o, conn);
    if (strcmp(o->action, "grant") == 0 || strcmp(o->action, "revoke") == 0)
        return run_grant(o, conn, strcmp(o->action, "grant") == 0);
    if (strcmp(o->action, "list") == 0)
        return run_list(o, conn);
    if (strcmp(o->action, "disable") == 0 || strcmp(o->action, "enable") == 0)
        return run_toggle(o, conn, strcmp(o->action, "enable") == 0);
    bz_ctl_usage_error("gateways", "unknown action '%s'", o->action);
    return 1;
}

int bz_ctl_cmd_gateways(int argc, char **argv)
{
    gateways_options o;
    memset(&o, 0, sizeof o);
    int rc = parse_gateways_options(argc, argv, &o);
    if (rc != 0)
        return rc == BZ_CTL_OPTIONS_HELP ? 0 : 1;
    PGconn *conn = bz_ctl_connect_pg("gateways", o.dsn);
    if (!conn)
        return 1;
    rc = dispatch(&o, conn);
    PQfinish(conn);
    return rc;
}
