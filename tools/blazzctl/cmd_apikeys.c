/*
 * cmd_apikeys.c - `blazzctl apikeys create|list|revoke`: the CRM's API keys
 * for ingest's /v1/messages and /v1/chats/read (libs/core/api_key.h).
 *
 * `create` draws a key, stores only the SHA-256 of its secret and prints
 * the whole key once, on stdout (nothing else ever shows it again; it is
 * never logged and never read from argv). `list` shows a workspace's keys
 * without secrets. `revoke` marks a key revoked: ingest refuses it within
 * its cache time (crm.api_key_cache_s). All SQL is parameterized.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <openssl/crypto.h>

#include "blazzctl.h"
#include "core/api_key.h"
#include "core/hex.h"
#include "pg/pg.h"

static const char apikeys_help[] =
    "usage: blazzctl apikeys create --workspace W --name NAME [--created-by USER] [--json]\n"
    "       blazzctl apikeys list --workspace W [--json]\n"
    "       blazzctl apikeys revoke KEY_ID [--json]\n"
    "\n"
    "create:  a new key for the workspace, printed once (bzk_<key_id>_<secret>): the\n"
    "         CRM sends it as \"Authorization: Bearer <key>\". Only its hash is stored.\n"
    "list:    the workspace's keys: id, name, created, last used, revoked.\n"
    "revoke:  refuse the key from now on (ingest within crm.api_key_cache_s).\n"
    "\n"
    "  --dsn DSN   PostgreSQL (default $BLAZZ_PG_DSN)\n"
    "  --json      print the outcome as JSON\n"
    "  --help      this text\n";

#define SQL_CREATE                                                                               \
    "INSERT INTO api_keys (workspace_id, key_id, secret_sha256, name, created_by) "              \
    "VALUES ($1, $2, decode($3, 'hex'), $4, (SELECT id FROM users WHERE id = nullif($5, '')::bigint)) " \
    "RETURNING id"
#define SQL_LIST                                                                                 \
    "SELECT key_id, name, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), " \
    "coalesce(to_char(last_used_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), ''), "   \
    "coalesce(to_char(revoked_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '') "      \
    "FROM api_keys WHERE workspace_id = $1 ORDER BY id"
#define SQL_REVOKE                                                                               \
    "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE key_id = $1 "           \
    "RETURNING workspace_id"

typedef struct apikeys_options {
    const char *action, *key_id, *workspace, *name, *created_by, *dsn;
    int json;
} apikeys_options;

static int apikeys_option(void *opts, int option, char *value)
{
    apikeys_options *o = opts;
    switch (option) {
    case 'w': o->workspace = value; break;
    case 'n': o->name = value; break;
    case 'c': o->created_by = value; break;
    case 'd': o->dsn = value; break;
    case 'j': o->json = 1; break;
    }
    return 0;
}

static int parse_apikeys_options(int argc, char **argv, apikeys_options *o)
{
    static const struct option longopts[] = {
        {"workspace", required_argument, NULL, 'w'}, {"name", required_argument, NULL, 'n'},
        {"created-by", required_argument, NULL, 'c'}, {"dsn", required_argument, NULL, 'd'},
        {"json", no_argument, NULL, 'j'},            {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    static const bz_ctl_command_line cl = {"apikeys", apikeys_help, longopts, apikeys_option, 0};
    int rc = bz_ctl_read_options(argc, argv, &cl, o);
    if (rc != BZ_CTL_OPTIONS_RUN)
        return rc;
    if (optind >= argc) {
        bz_ctl_usage_error("apikeys", "say one of create, list, revoke");
        return 1;
    }
    o->action = argv[optind];
    o->key_id = optind + 1 < argc ? argv[optind + 1] : NULL;
    if (bz_ctl_dsn_setting("apikeys", o->dsn, &o->dsn))
        return 1;
    int revoke = strcmp(o->action, "revoke") == 0;
    if (optind + 1 + revoke != argc || (revoke && !o->key_id) ||
        (!revoke && !o->workspace) || !o->dsn ||
        (strcmp(o->action, "create") == 0 && !o->name)) {
        bz_ctl_usage_error("apikeys", "missing or extra arguments for '%s' (or no $BLAZZ_PG_DSN)",
                           o->action);
        return 1;
    }
    return 0;
}

static bz_status run(PGconn *conn, const char *what, const char *sql, int n,
                     const char *const *params, PGresult **out, bz_error *err)
{
    PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
    bz_status st = bz_pg_check(conn, res, what, err);
    if (st != BZ_OK)
        PQclear(res);
    else
        *out = res;
    return st;
}

static int create_key(PGconn *conn, const apikeys_options *o)
{
    bz_error err;
    bz_error_clear(&err);
    char key[BZ_API_KEY_SIZE], key_id[BZ_API_KEY_ID_LEN + 1], hex[2 * BZ_API_KEY_HASH_LEN + 1];
    uint8_t hash[BZ_API_KEY_HASH_LEN];
    if (bz_api_key_generate(key, key_id, hash, &err) != BZ_OK)
        return bz_ctl_fail("apikeys create", &err);
    bz_hex_encode(hash, sizeof hash, hex, sizeof hex, NULL);
    const char *params[] = {o->workspace, key_id, hex, o->name,
                            o->created_by ? o->created_by : ""};
    PGresult *res = NULL;
    int rc = 0;
    if (run(conn, "store API key", SQL_CREATE, 5, params, &res, &err) != BZ_OK)
        rc = bz_ctl_fail("apikeys create", &err);
    else if (o->json)
        rc = bz_ctl_print_json(json_pack("{s:s, s:s, s:s}", "key_id", key_id, "name", o->name,
                                         "key", key));
    else
        printf("%s\n(key id %s; this is the only time the key is shown)\n", key, key_id);
    PQclear(res);
    OPENSSL_cleanse(key, sizeof key);
    return rc;
}

static json_t *key_json(const PGresult *res, int i)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s}", "key_id", PQgetvalue(res, i, 0), "name",
                     PQgetvalue(res, i, 1), "created_at", PQgetvalue(res, i, 2), "last_used_at",
                     PQgetvalue(res, i, 3), "revoked_at", PQgetvalue(res, i, 4));
}

static void print_key(const PGresult *res, int i)
{
    printf("%s  %-24s created %s  last used %s%s%s\n", PQgetvalue(res, i, 0),
           PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
           *PQgetvalue(res, i, 3) ? PQgetvalue(res, i, 3) : "never",
           *PQgetvalue(res, i, 4) ? "  REVOKED " : "", PQgetvalue(res, i, 4));
}

static int list_keys(PGconn *conn, const apikeys_options *o)
{
    bz_error err;
    bz_error_clear(&err);
    const char *params[] = {o->workspace};
    PGresult *res = NULL;
    if (run(conn, "list API keys", SQL_LIST, 1, params, &res, &err) != BZ_OK)
        return bz_ctl_fail("apikeys list", &err);
    int rc = bz_ctl_print_rows(res, o->json, key_json, print_key);
    PQclear(res);
    return rc;
}

static int revoke_key(PGconn *conn, const apikeys_options *o)
{
    bz_error err;
    bz_error_clear(&err);
    const char *params[] = {o->key_id};
    PGresult *res = NULL;
    if (run(conn, "revoke API key", SQL_REVOKE, 1, params, &res, &err) != BZ_OK)
        return bz_ctl_fail("apikeys revoke", &err);
    int found = PQntuples(res) == 1;
    PQclear(res);
    if (!found) {
        fprintf(stderr, "blazzctl apikeys revoke: no key %s\n", o->key_id);
        return 1;
    }
    if (o->json)
        return bz_ctl_print_json(json_pack("{s:s, s:b}", "key_id", o->key_id, "revoked", 1));
    printf("key %s revoked\n", o->key_id);
    return 0;
}

int bz_ctl_cmd_apikeys(int argc, char **argv)
{
    apikeys_options o;
    memset(&o, 0, sizeof o);
    int rc = parse_apikeys_options(argc, argv, &o);
    if (rc)
        return rc == BZ_CTL_OPTIONS_HELP ? 0 : 1;
    PGconn *conn = bz_ctl_connect_pg("apikeys", o.dsn);
    if (!conn)
        return 1;
    if (strcmp(o.action, "create") == 0)
        rc = create_key(conn, &o);
    else if (strcmp(o.action, "list") == 0)
        rc = list_keys(conn, &o);
    else if (strcmp(o.action, "revoke") == 0)
        rc = revoke_key(conn, &o);
    else
        bz_ctl_usage_error("apikeys", "unknown action '%s'", o.action), rc = 1;
    PQfinish(conn);
    return rc;
}
