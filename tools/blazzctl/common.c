/*
 * common.c - error reporting, JSON output, the secrets ring, PostgreSQL
 * access and HTTP GET shared by the blazzctl command modules (see
 * blazzctl.h).
 */
#include "blazzctl.h"

#include <stdio.h>
#include <stdlib.h>

#include "core/config.h"

int bz_ctl_fail(const char *command, const bz_error *err)
{
    fprintf(stderr, "blazzctl %s: %s\n", command, err->msg[0] ? err->msg : bz_status_name(err->code));
    return 1;
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

int bz_ctl_print_rows(const PGresult *res, int json, bz_ctl_row_json_fn row_json,
                      bz_ctl_row_text_fn row_text)
{
    if (!json) {
        for (int r = 0; r < PQntuples(res); r++)
            row_text(res, r);
        return 0;
    }
    json_t *arr = json_array();
    for (int r = 0; arr && r < PQntuples(res); r++)
        json_array_append_new(arr, row_json(res, r));
    return bz_ctl_print_json(arr);
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

PGconn *bz_ctl_connect_pg(const char *command, const char *dsn)
{
    PGconn *conn = PQconnectdb(dsn);
    if (PQstatus(conn) == CONNECTION_OK)
        return conn;
    fprintf(stderr, "blazzctl %s: connect to PostgreSQL: %s", command, PQerrorMessage(conn));
    PQfinish(conn);
    return NULL;
}

CURLcode bz_ctl_http_get(const char *url, struct curl_slist *headers, long timeout_ms,
                         curl_write_callback write, void *ctx, long *status, char *errbuf)
{
    *status = 0;
    CURL *curl = curl_easy_init();
    if (!curl)
        return CURLE_FAILED_INIT;
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, ctx);
    CURLcode rc = curl_easy_perform(curl);
    if (rc == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(curl);
    return rc;
}
