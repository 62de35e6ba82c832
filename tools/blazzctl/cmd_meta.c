/*
 * cmd_meta.c - `blazzctl meta token|business|status|templates sync`: the
 * access tokens of Meta Cloud API accounts and the business behind them
 * (ARCHITECTURE.md §12).
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
 * `business` records the WhatsApp Business Account (WABA) of a Meta account
 * and, optionally, its business portfolio (migration 0032): Meta's
 * templates, limits and account notices are the WABA's. Ids are Meta's
 * numeric ids; a WABA named by an account of another workspace is refused
 * (a trigger holds one workspace per WABA), with the account that names it.
 * Without --portfolio the portfolio is kept while the WABA stays, and
 * cleared when it changes (it was the old WABA's).
 * `status` lists the Meta accounts with their token state, WABA, portfolio
 * and open sends. `templates sync` is meta_templates.c.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <openssl/crypto.h>

#include "blazzctl.h"
#include "core/keyring.h"
#include "meta_templates.h"

#define TOKEN_MAX 4096
#define META_ID_MAX 32

static const char meta_help[] =
    "usage: blazzctl meta token --account ID [--token-file F|-] [--json]\n"
    "       blazzctl meta business --account ID --waba WABA_ID [--portfolio BUSINESS_ID]\n"
    "                              [--json]\n"
    "       blazzctl meta status [--json]\n"
    "       blazzctl meta templates sync --account ID [--json]\n"
    "\n"
    "token:     set the Cloud API access token of a Meta account (provider_type meta).\n"
    "           The token is read from --token-file F, else $BLAZZ_META_ACCESS_TOKEN, else\n"
    "           stdin; never from the command line. It is stored sealed; a token Meta\n"
    "           refused is replaced the same way, and the account's sends resume.\n"
    "business:  record the WhatsApp Business Account of a Meta account and its business\n"
    "           portfolio (Meta's numeric ids). A WABA belongs to one workspace.\n"
    "status:    Meta accounts: token state (valid, invalid, none), WABA, portfolio and\n"
    "           sends waiting.\n"
    "templates sync: read the account's WABA's templates from Meta (every page) and\n"
    "           apply them to the templates table; prints how many were added, changed\n"
    "           and unchanged. Graph API: $BLAZZ_META_BASE_URL, $BLAZZ_META_API_VERSION.\n"
    "\n"
    "  --dsn DSN   PostgreSQL (default $BLAZZ_PG_DSN)\n"
    "  keys        $BLAZZ_SECRETS_KEYS or $BLAZZ_SECRETS_KEYS_FILE (ID:KEY,...; the newest\n"
    "              seals), else $BLAZZ_WEBHOOK_SECRET_KEY\n"
    "  --json      print the outcome as JSON\n"
    "  --help      this text\n";

typedef struct meta_options {
    const char *action, *dsn, *account, *token_file, *waba, *portfolio;
    int json;
} meta_options;

static int meta_option(void *opts, int option, char *value)
{
    meta_options *o = opts;
    switch (option) {
    case 'd': o->dsn = value; break;
    case 'a': o->account = value; break;
    case 'f': o->token_file = value; break;
    case 'w': o->waba = value; break;
    case 'p': o->portfolio = value; break;
    case 'j': o->json = 1; break;
    }
    return 0;
}

/* BZ_CTL_OPTIONS_RUN, _BAD or _HELP (options.h). */
static int parse_meta_options(int argc, char **argv, meta_options *o)
{
    static const struct option longopts[] = {
        {"dsn", required_argument, NULL, 'd'},        {"account", required_argument, NULL, 'a'},
        {"token-file", required_argument, NULL, 'f'}, {"waba", required_argument, NULL, 'w'},
        {"portfolio", required_argument, NULL, 'p'},  {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},             {NULL, 0, NULL, 0}};
    static const bz_ctl_command_line cl = {"meta", meta_help, longopts, meta_option, 0};
    int rc = bz_ctl_read_options(argc, argv, &cl, o);
    if (rc != BZ_CTL_OPTIONS_RUN)
        return rc;
    int templates = optind < argc && strcmp(argv[optind], "templates") == 0;
    if (templates ? optind + 2 != argc || strcmp(argv[optind + 1], "sync") != 0
                  : optind + 1 != argc) {
        bz_ctl_usage_error("meta", "say token, business, status or templates sync");
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

/* The workspace of Meta account `account` into ws; 0 after saying why
 * when there is none. */
static int meta_account_workspace(PGconn *conn, const char *command, const char *account,
                                  char ws[24])
{
    const char *params[] = {account};
    PGresult *res = PQexecParams(conn,
                                 "SELECT workspace_id::text FROM whatsapp_accounts WHERE id = "
                                 "$1::bigint AND provider_type = 'meta'",
                                 1, NULL, params, NULL, NULL, 0);
    int found = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        fprintf(stderr, "blazzctl %s: %s", command, PQerrorMessage(conn));
    else if (!found)
        fprintf(stderr, "blazzctl %s: account %s is not a Meta account\n", command, account);
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

/* --account as the row id prints (meta-sender binds that text into a
 * token's associated data) into account; 0 after the usage error. */
static int account_option(const meta_options *o, const char *command, char account[24])
{
    if (!o->account) {
        bz_ctl_usage_error(command, "--account is required");
        return 0;
    }
    bz_error err;
    bz_error_clear(&err);
    int id_number;
    if (bz_ctl_parse_int(o->account, 1, 2147483647, "account", &id_number, &err) != BZ_OK) {
        bz_ctl_usage_error(command, "%s", err.msg);
        return 0;
    }
    snprintf(account, 24, "%d", id_number);
    return 1;
}

static int run_token(const meta_options *o, PGconn *conn)
{
    char account[24], ws[24];
    if (!account_option(o, "meta token", account))
        return 1;
    if (!meta_account_workspace(conn, "meta token", account, ws))
        return 1;
    bz_error err;
    bz_error_clear(&err);
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

/* One of Meta's ids (a WABA, a business portfolio): 1 to 32 digits. */
static int meta_id_ok(const char *command, const char *option, const char *value)
{
    size_t n = value ? strspn(value, "0123456789") : 0;
    if (n && n <= META_ID_MAX && !value[n])
        return 1;
    bz_ctl_usage_error(command, "%s must be Meta's numeric id (1 to %d digits)", option,
                       META_ID_MAX);
    return 0;
}

/* The refusal of the business update, as its cause: the WABA another
 * workspace's account names (the trigger's unique_violation), else
 * PostgreSQL's own words without the SQL around them. */
static void business_refused(PGconn *conn, const PGresult *res, const char *waba, const char *ws)
{
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    if (!state || strcmp(state, "23505") != 0) {
        fprintf(stderr, "blazzctl meta business: %s\n", primary ? primary : PQerrorMessage(conn));
        return;
    }
    const char *params[] = {waba, ws};
    PGresult *owner = PQexecParams(conn,
                                   "SELECT id, workspace_id FROM whatsapp_accounts WHERE "
                                   "meta_waba_id = $1 AND deleted_at IS NULL AND workspace_id <> "
                                   "$2::bigint ORDER BY id LIMIT 1",
                                   2, NULL, params, NULL, NULL, 0);
    int named = PQresultStatus(owner) == PGRES_TUPLES_OK && PQntuples(owner) == 1;
    fprintf(stderr,
            "blazzctl meta business: WhatsApp Business Account %s belongs to another workspace"
            "%s%s%s%s%s: a WABA's numbers, templates and limits are one workspace's\n",
            waba, named ? " (account " : "", named ? PQgetvalue(owner, 0, 0) : "",
            named ? " of workspace " : "", named ? PQgetvalue(owner, 0, 1) : "", named ? ")" : "");
    PQclear(owner);
}

static int run_business(const meta_options *o, PGconn *conn)
{
    char account[24], ws[24];
    if (!account_option(o, "meta business", account))
        return 1;
    if (!o->waba) {
        bz_ctl_usage_error("meta business", "--waba is required");
        return 1;
    }
    if (!meta_id_ok("meta business", "--waba", o->waba) ||
        (o->portfolio && !meta_id_ok("meta business", "--portfolio", o->portfolio)))
        return 1;
    if (!meta_account_workspace(conn, "meta business", account, ws))
        return 1;
    const char *params[] = {account, o->waba, o->portfolio};
    PGresult *res = PQexecParams(
        conn,
        "UPDATE whatsapp_accounts SET meta_waba_id = $2, meta_business_id = CASE "
        "WHEN $3::text IS NOT NULL THEN $3 WHEN meta_waba_id IS DISTINCT FROM $2 THEN NULL "
        "ELSE meta_business_id END WHERE id = $1::bigint AND provider_type = 'meta' "
        "RETURNING meta_waba_id, coalesce(meta_business_id, '')",
        3, NULL, params, NULL, NULL, 0);
    int rc = 0;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        business_refused(conn, res, o->waba, ws);
        rc = 1;
    } else if (PQntuples(res) != 1) {
        fprintf(stderr, "blazzctl meta business: account %s is not a Meta account\n", account);
        rc = 1;
    } else if (o->json) {
        rc = bz_ctl_print_json(json_pack("{s:s, s:s, s:s, s:s}", "account", account, "workspace",
                                         ws, "waba", PQgetvalue(res, 0, 0), "portfolio",
                                         PQgetvalue(res, 0, 1)));
    } else {
        printf("account %s: WhatsApp Business Account %s%s%s\n", account, PQgetvalue(res, 0, 0),
               *PQgetvalue(res, 0, 1) ? ", business portfolio " : ", no business portfolio",
               PQgetvalue(res, 0, 1));
    }
    PQclear(res);
    return rc;
}

static int run_templates_sync(const meta_options *o, PGconn *conn)
{
    char account[24];
    if (!account_option(o, "meta templates sync", account))
        return 1;
    return bz_ctl_meta_templates_sync(conn, account, o->json);
}

static int run_status(const meta_options *o, PGconn *conn)
{
    PGresult *res = PQexec(
        conn, "SELECT a.id, a.workspace_id, a.session_id, coalesce(c.status, 'none'), "
              "coalesce(c.invalid_reason, ''), (SELECT count(*) FROM meta_sends s WHERE "
              "s.whatsapp_account_id = a.id AND s.state IN ('queued', 'in_flight')), "
              "coalesce(a.meta_waba_id, ''), coalesce(a.meta_business_id, '') "
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
        const char *waba = PQgetvalue(res, i, 6), *portfolio = PQgetvalue(res, i, 7);
        if (o->json)
            json_array_append_new(
                rows, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "account",
                                PQgetvalue(res, i, 0), "workspace", PQgetvalue(res, i, 1),
                                "phone_number_id", PQgetvalue(res, i, 2), "token",
                                PQgetvalue(res, i, 3), "reason", PQgetvalue(res, i, 4), "waiting",
                                PQgetvalue(res, i, 5), "waba", waba, "portfolio", portfolio));
        else
            printf("account %s (workspace %s, phone number id %s, WABA %s, portfolio %s): token "
                   "%s%s%s, %s sends waiting\n",
                   PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
                   *waba ? waba : "none", *portfolio ? portfolio : "none", PQgetvalue(res, i, 3),
                   *PQgetvalue(res, i, 4) ? " - " : "", PQgetvalue(res, i, 4),
                   PQgetvalue(res, i, 5));
    }
    PQclear(res);
    if (o->json)
        return bz_ctl_print_json(rows);
    json_decref(rows);
    return 0;
}

int bz_ctl_cmd_meta(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(const meta_options *o, PGconn *conn);
    } actions[] = {{"token", run_token},
                   {"business", run_business},
                   {"status", run_status},
                   {"templates", run_templates_sync}};
    meta_options o = {0};
    int parsed = parse_meta_options(argc, argv, &o);
    if (parsed)
        return parsed == BZ_CTL_OPTIONS_HELP ? 0 : 1;
    size_t a = 0;
    while (a < sizeof actions / sizeof actions[0] && strcmp(o.action, actions[a].name) != 0)
        a++;
    if (a == sizeof actions / sizeof actions[0]) {
        bz_ctl_usage_error("meta", "unknown action '%s' (token, business, status or templates "
                                   "sync)",
                           o.action);
        return 1;
    }
    PGconn *conn = bz_ctl_connect_pg("meta", o.dsn);
    if (!conn)
        return 1;
    int rc = actions[a].run(&o, conn);
    PQfinish(conn);
    return rc;
}
