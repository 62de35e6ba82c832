/*
 * cmd_meta.c - `blazzctl meta token|status`: the access tokens of Meta
 * Cloud API accounts (ARCHITECTURE.md §12).
 *
 * `token` reads the token from a file (--token-file F), from the
 * environment variable BLAZZ_META_ACCESS_TOKEN, or from stdin (the default,
 * or --token-file -), never from argv (argv is visible to every user of
 * the machine), seals it with the newest key of the secrets ring
 * ($BLAZZ_SECRETS_KEYS, whose keys blazz-meta-sender holds too) bound to
 * its row, "meta_credentials:<account>:<workspace>" (core/keyring.h, so
 * `blazzctl secrets rotate` re-seals it like every secret), and stores it
 * in meta_credentials with status 'valid' and a new version (updated_at). That is also how a token
 * Meta refused (code 190) is replaced: meta-sender picks the new version
 * up within a second and sends what waited, campaign-sender resumes the
 * campaigns it paused with reason token_invalid. The token is never printed.
 * `status` lists the Meta accounts with their token state and open sends.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <openssl/crypto.h>

#include "blazzctl.h"
#include "core/keyring.h"

#define TOKEN_MAX 4096

static const char meta_help[] =
    "usage: blazzctl meta token --account ID [--token-file F|-] [--json]\n"
    "       blazzctl meta status [--json]\n"
    "\n"
    "token:   set the Cloud API access token of a Meta account (provider_type meta).\n"
    "         The token is read from --token-file F, else $BLAZZ_META_ACCESS_TOKEN, else\n"
    "         stdin; never from the command line. It is stored sealed; a token Meta\n"
    "         refused is replaced the same way, and the account's sends resume.\n"
    "status:  Meta accounts: token state (valid, invalid, none) and sends waiting.\n"
    "\n"
    "  --dsn DSN   PostgreSQL (default $BLAZZ_PG_DSN)\n"
    "  keys        $BLAZZ_SECRETS_KEYS or $BLAZZ_SECRETS_KEYS_FILE (ID:KEY,...; the newest\n"
    "              seals), else $BLAZZ_WEBHOOK_SECRET_KEY\n"
    "  --json      print the outcome as JSON\n"
    "  --help      this text\n";

typedef struct meta_options {
    const char *action, *dsn, *account, *token_file;
    int json;
} meta_options;

static int meta_option(void *opts, int option, char *value)
{
    meta_options *o = opts;
    switch (option) {
    case 'd': o->dsn = value; break;
    case 'a': o->account = value; break;
    case 'f': o->token_file = value; break;
    case 'j': o->json = 1; break;
    }
    return 0;
}

/* BZ_CTL_OPTIONS_RUN, _BAD or _HELP (options.h). */
static int parse_meta_options(int argc, char **argv, meta_options *o)
{
    static const struct option longopts[] = {
        {"dsn", required_argument, NULL, 'd'},        {"account", required_argument, NULL, 'a'},
        {"token-file", required_argument, NULL, 'f'}, {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},             {NULL, 0, NULL, 0}};
    static const bz_ctl_command_line cl = {"meta", meta_help, longopts, meta_option, 0};
    int rc = bz_ctl_read_options(argc, argv, &cl, o);
    if (rc != BZ_CTL_OPTIONS_RUN)
        return rc;
    if (optind + 1 != argc) {
        bz_ctl_usage_error("meta", "say token or status");
        return 1;
    }
    o->action = argv[optind];
    return bz_ctl_require_dsn("meta", o->dsn, &o->dsn);
}

/* The token, without surrounding whitespace, into buf. */
static bz_status read_token(const meta_options *o, char *buf, size_t cap, bz_error *err)
{
    const char *env = getenv("BLAZZ_META_ACCESS_TOKEN");
    size_t n = 0;
    if (!o->token_file && env && *env) {
        n = strlen(env);
        if (n >= cap)
            return bz_fail(err, BZ_ERR_INVALID, "BLAZZ_META_ACCESS_TOKEN is too long");
        memcpy(buf, env, n);
    } else {
        int from_stdin = !o->token_file || strcmp(o->token_file, "-") == 0;
        FILE *f = from_stdin ? stdin : fopen(o->token_file, "r");
        if (!f)
            return bz_fail(err, BZ_ERR_IO, "cannot read the token file %s", o->token_file);
        n = fread(buf, 1, cap - 1, f);
        int more = fgetc(f) != EOF;
        if (!from_stdin)
            fclose(f);
        if (more)
            return bz_fail(err, BZ_ERR_INVALID, "the token is longer than %d bytes", TOKEN_MAX);
    }
    buf[n] = '\0';
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    size_t start = strspn(buf, " \t\r\n");
    memmove(buf, buf + start, n - start + 1);
    if (!*buf)
        return bz_fail(err, BZ_ERR_INVALID, "the token is empty");
    for (const char *p = buf; *p; p++)
        if (*p < 0x21 || *p > 0x7e)
            return bz_fail(err, BZ_ERR_INVALID, "the token holds a character a header cannot "
                                                "carry");
    return BZ_OK;
}

/* The workspace of Meta account `account` into ws; 0 when there is none. */
static int meta_account_workspace(PGconn *conn, const char *account, char ws[24])
{
    const char *params[] = {account};
    PGresult *res = PQexecParams(conn,
                                 "SELECT workspace_id::text FROM whatsapp_accounts WHERE id = "
                                 "$1::bigint AND provider_type = 'meta'",
                                 1, NULL, params, NULL, NULL, 0);
    int found = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        fprintf(stderr, "blazzctl meta token: %s", PQerrorMessage(conn));
    else if (!found)
        fprintf(stderr, "blazzctl meta token: account %s is not a Meta account\n", account);
    else
        snprintf(ws, 24, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return found;
}

/* Read the token and seal it for the row of account in workspace ws;
 * *sealed is heap (the caller frees). */
static bz_status seal_token(const meta_options *o, const char *account, const char *ws,
                            uint8_t **sealed, size_t *sealed_len, bz_error *err)
{
    bz_keyring ring;
    bz_status st = bz_ctl_keyring(&ring, err);
    if (st != BZ_OK)
        return st;
    char token[TOKEN_MAX + 1];
    st = read_token(o, token, sizeof token, err);
    if (st == BZ_OK)
        st = bz_keyring_seal_row(&ring, "meta_credentials", account, ws, token, strlen(token),
                                 sealed, sealed_len, err);
    OPENSSL_cleanse(token, sizeof token);
    bz_keyring_free(&ring);
    return st;
}

static int run_token(const meta_options *o, PGconn *conn)
{
    if (!o->account) {
        bz_ctl_usage_error("meta token", "--account is required");
        return 1;
    }
    bz_error err;
    bz_error_clear(&err);
    int id_number;
    if (bz_ctl_parse_int(o->account, 1, 2147483647, "account", &id_number, &err) != BZ_OK) {
        bz_ctl_usage_error("meta token", "%s", err.msg);
        return 1;
    }
    /* the row id as meta-sender prints it, bound into the associated data */
    char account[24], ws[24];
    snprintf(account, sizeof account, "%d", id_number);
    if (!meta_account_workspace(conn, account, ws))
        return 1;
    uint8_t *sealed = NULL;
    size_t sealed_len = 0;
    if (seal_token(o, account, ws, &sealed, &sealed_len, &err) != BZ_OK)
        return bz_ctl_fail("meta token", &err);
    const char *params[] = {account, ws, (const char *)sealed};
    int lengths[] = {0, 0, (int)sealed_len};
    int formats[] = {0, 0, 1};
    PGresult *res = PQexecParams(
        conn,
        "INSERT INTO meta_credentials (whatsapp_account_id, workspace_id, token_ciphertext, "
        "token_nonce, status, updated_at) SELECT a.id, a.workspace_id, $3, NULL, 'valid', "
        "clock_timestamp() FROM whatsapp_accounts a WHERE a.id = $1::bigint AND "
        "a.workspace_id = $2::bigint AND a.provider_type = 'meta' "
        "ON CONFLICT (whatsapp_account_id) DO UPDATE SET "
        "token_ciphertext = EXCLUDED.token_ciphertext, token_nonce = NULL, "
        "status = 'valid', invalid_reason = NULL, updated_at = EXCLUDED.updated_at "
        "RETURNING updated_at::text",
        3, NULL, params, lengths, formats, 0);
    free(sealed);
    int rc = 0;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "blazzctl meta token: %s", PQerrorMessage(conn));
        rc = 1;
    } else if (PQntuples(res) != 1) {
        fprintf(stderr, "blazzctl meta token: account %s is not a Meta account of workspace %s\n",
                o->account, ws);
        rc = 1;
    } else if (o->json) {
        rc = bz_ctl_print_json(json_pack("{s:s, s:s, s:s}", "account", o->account, "status",
                                         "valid", "version", PQgetvalue(res, 0, 0)));
    } else {
        printf("account %s: access token set (version %s)\n", o->account, PQgetvalue(res, 0, 0));
    }
    PQclear(res);
    return rc;
}

static int run_status(const meta_options *o, PGconn *conn)
{
    PGresult *res = PQexec(
        conn, "SELECT a.id, a.workspace_id, a.session_id, coalesce(c.status, 'none'), "
              "coalesce(c.invalid_reason, ''), (SELECT count(*) FROM meta_sends s WHERE "
              "s.whatsapp_account_id = a.id AND s.state IN ('queued', 'in_flight')) "
              "FROM whatsapp_accounts a LEFT JOIN meta_credentials c ON "
              "c.whatsapp_account_id = a.id WHERE a.provider_type = 'meta' AND a.deleted_at IS "
              "NULL ORDER BY a.id");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "blazzctl meta status: %s", PQerrorMessage(conn));
        PQclear(res);
        return 1;
    }
    json_t *rows = json_array();
    for (int i = 0; i < PQntuples(res); i++) {
        if (o->json)
            json_array_append_new(
                rows, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "account", PQgetvalue(res, i, 0),
                                "workspace", PQgetvalue(res, i, 1), "phone_number_id",
                                PQgetvalue(res, i, 2), "token", PQgetvalue(res, i, 3), "reason",
                                PQgetvalue(res, i, 4), "waiting", PQgetvalue(res, i, 5)));
        else
            printf("account %s (workspace %s, phone number id %s): token %s%s%s, %s sends "
                   "waiting\n",
                   PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
                   PQgetvalue(res, i, 3), *PQgetvalue(res, i, 4) ? " - " : "",
                   PQgetvalue(res, i, 4), PQgetvalue(res, i, 5));
    }
    PQclear(res);
    if (o->json)
        return bz_ctl_print_json(rows);
    json_decref(rows);
    return 0;
}

int bz_ctl_cmd_meta(int argc, char **argv)
{
    meta_options o = {0};
    int parsed = parse_meta_options(argc, argv, &o);
    if (parsed)
        return parsed == BZ_CTL_OPTIONS_HELP ? 0 : 1;
    if (strcmp(o.action, "token") != 0 && strcmp(o.action, "status") != 0) {
        bz_ctl_usage_error("meta", "unknown action '%s' (token or status)", o.action);
        return 1;
    }
    PGconn *conn = bz_ctl_connect_pg("meta", o.dsn);
    if (!conn)
        return 1;
    int rc = strcmp(o.action, "token") == 0 ? run_token(&o, conn) : run_status(&o, conn);
    PQfinish(conn);
    return rc;
}
