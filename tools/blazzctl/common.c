/*
 * common.c - option defaults, error reporting and JSON output shared by the
 * blazzctl command modules (see blazzctl.h).
 */
#include "blazzctl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/config.h"

const char *bz_ctl_setting(const char *given, const char *env_name, const char *fallback)
{
    if (given)
        return given;
    const char *env = env_name ? getenv(env_name) : NULL;
    if (env && *env)
        return env;
    return fallback;
}

int bz_ctl_fail(const char *command, const bz_error *err)
{
    fprintf(stderr, "blazzctl %s: %s\n", command, err->msg[0] ? err->msg : bz_status_name(err->code));
    return 1;
}

void bz_ctl_usage_error(const char *command, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "blazzctl %s: ", command);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see 'blazzctl %s --help')\n", command);
}

int bz_ctl_print_json(json_t *doc)
{
    if (!doc) {
        fprintf(stderr, "blazzctl: out of memory building JSON output\n");
        return 1;
    }
    int rc = json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(doc);
    if (rc != 0 || fputc('\n', stdout) == EOF || fflush(stdout) != 0) {
        fprintf(stderr, "blazzctl: writing JSON to stdout failed\n");
        return 1;
    }
    return 0;
}

bz_status bz_ctl_parse_int(const char *text, int min, int max, const char *what, int *out,
                           bz_error *err)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min || v > max)
        return bz_fail(err, BZ_ERR_CONFIG, "%s '%s': expected an integer from %d to %d", what,
                       text, min, max);
    *out = (int)v;
    return BZ_OK;
}

bz_status bz_ctl_keyring(bz_keyring *out, bz_error *err)
{
    static const bz_config_key schema[] = {
        {.name = "secrets.keys", .type = BZ_CFG_STRING, .secret = 1},
        {.name = "webhook.secret_key", .type = BZ_CFG_STRING, .secret = 1},
    };
    bz_config *cfg = NULL;
    bz_status st = bz_config_load(schema, 2, NULL, &cfg, err);
    if (st == BZ_OK)
        st = bz_keyring_from_config(cfg, "webhook.secret_key", out, err);
    if (st == BZ_OK && out->count == 0)
        st = bz_fail(err, BZ_ERR_CONFIG, "no keys");
    if (st != BZ_OK)
        bz_wrap(err, "keys (BLAZZ_SECRETS_KEYS or BLAZZ_SECRETS_KEYS_FILE)");
    bz_config_free(cfg);
    return st;
}

PGresult *bz_ctl_exec(PGconn *conn, const char *command, const char *sql, int n,
                      const char *const *params, const int *lengths, const int *formats)
{
    PGresult *res = PQexecParams(conn, sql, n, NULL, params, lengths, formats, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        fprintf(stderr, "blazzctl %s: %s", command, PQresultErrorMessage(res));
        PQclear(res);
        return NULL;
    }
    return res;
}
