/*
 * cmd_secrets.c - `blazzctl secrets status|rotate`: the secrets stored
 * sealed in PostgreSQL (webhook endpoint secrets and, while a rotation's
 * overlap runs, the ones they replaced; gateway signing keys; Meta access
 * tokens) and the keys that seal them (core/keyring.h,
 * ARCHITECTURE.md §9.3).
 *
 * `status` counts each table's secrets by the id of the key that sealed
 * them ("legacy" for rows from before key ids). `rotate` re-seals every
 * secret not sealed with the newest key of the ring (BLAZZ_SECRETS_KEYS):
 * batches of --batch rows in id order, each batch one transaction that
 * locks its rows by id (FOR UPDATE), opens each secret with whichever key its id
 * names and writes it back sealed with the newest key, bound to its row.
 * Services keep running: they hold every key of the ring, so a secret opens
 * before, during and after its rewrite, and a service notices the new
 * ciphertext and opens it again. A secret that does not open (its key is
 * not in the ring, or the row was tampered with) is reported and left
 * alone; the exit code is then 1. The order of a rotation: add the new key
 * at the end of every service's ring and restart them one by one, run
 * `rotate`, then drop the old key. A Meta token keeps its version
 * (updated_at): the token is the same, so meta-sender keeps the one it
 * opened, and Meta's refusal of it still marks it invalid.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <openssl/crypto.h>

#include "blazzctl.h"
#include "pg/pg.h"
#include "wa/signature.h"

static const char secrets_help[] =
    "usage: blazzctl secrets status [--json]\n"
    "       blazzctl secrets rotate [--batch N] [--dry-run] [--json]\n"
    "\n"
    "status: secrets per table and per key id (legacy: sealed before key ids).\n"
    "rotate: re-seal every secret not sealed with the newest key, in batches of N\n"
    "        rows (default 100), one transaction each; running services keep working\n"
    "        as long as every key is in their ring. --dry-run only counts.\n"
    "\n"
    "  --dsn DSN   PostgreSQL (default $BLAZZ_PG_DSN)\n"
    "  keys        $BLAZZ_SECRETS_KEYS or $BLAZZ_SECRETS_KEYS_FILE (ID:KEY,...; the last\n"
    "              one is the newest), else $BLAZZ_WEBHOOK_SECRET_KEY\n"
    "  --json      print the outcome as JSON\n"
    "  --help      this text\n";

/* A Meta access token (up to 4096 bytes, cmd_meta.c) in the sealed form:
 * version, id length, id, nonce, ciphertext, tag. */
#define SECRET_BYTES_MAX (4096 + 2 + BZ_KEY_ID_MAX + BZ_SECRETBOX_NONCE_LEN + BZ_SECRETBOX_TAG_LEN)

/* A table holding sealed secrets: its row id and sealed columns, its scope
 * column (bound into the associated data with the table and the row id)
 * and, when it has rows in the older form, their nonce column and the
 * column that was their associated data. */
typedef struct sealed_table {
    const char *label; /* how status and rotate name it */
    const char *name;
    const char *id_column;
    const char *sealed_column;
    const char *scope_column;
    const char *nonce_column; /* NULL: every row carries its key id */
    const char *legacy_aad_column;
} sealed_table;

static const sealed_table tables[] = {
    {"webhook_endpoints", "webhook_endpoints", "id", "secret_ciphertext", "workspace_id",
     "secret_nonce", "workspace_id"},
    /* the secret a rotation replaced, while it still signs (0071): NULL
     * when there is none, so such rows are neither counted nor taken */
    {"webhook_endpoints_previous", "webhook_endpoints", "id", "previous_secret_ciphertext",
     "workspace_id", "previous_secret_nonce", "workspace_id"},
    {"gateway_keys", "gateway_keys", "id", "secret_ciphertext", "gateway_id", NULL, NULL},
    {"meta_credentials", "meta_credentials", "whatsapp_account_id", "token_ciphertext",
     "workspace_id", "token_nonce", "whatsapp_account_id"},
};

typedef struct secrets_options {
    const char *action, *dsn;
    int batch, dry_run, json;
} secrets_options;

typedef struct table_outcome {
    int64_t rotated, failed, current;
} table_outcome;

static int secrets_option(void *opts, int option, char *value)
{
    secrets_options *o = opts;
    switch (option) {
    case 'd': o->dsn = value; break;
    case 'b': return bz_ctl_option_int("secrets", value, 1, 100000, "batch", &o->batch);
    case 'n': o->dry_run = 1; break;
    case 'j': o->json = 1; break;
    }
    return 0;
}

/* BZ_CTL_OPTIONS_RUN, _BAD or _HELP (options.h). */
static int parse_secrets_options(int argc, char **argv, secrets_options *o)
{
    static const struct option longopts[] = {
        {"dsn", required_argument, NULL, 'd'}, {"batch", required_argument, NULL, 'b'},
        {"dry-run", no_argument, NULL, 'n'},   {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},      {NULL, 0, NULL, 0}};
    static const bz_ctl_command_line cl = {"secrets", secrets_help, longopts, secrets_option, 0};
    o->batch = 100;
    int rc = bz_ctl_read_options(argc, argv, &cl, o);
    if (rc != BZ_CTL_OPTIONS_RUN)
        return rc;
    if (optind + 1 != argc) {
        bz_ctl_usage_error("secrets", "say status or rotate");
        return 1;
    }
    o->action = argv[optind];
    return bz_ctl_require_dsn("secrets", o->dsn, &o->dsn);
}

/* SQL naming the key id a row is sealed with, 'legacy' for the older form. */
static void key_id_expression(const sealed_table *t, char *buf, size_t cap)
{
    if (t->nonce_column)
        snprintf(buf, cap,
                 "CASE WHEN %s IS NOT NULL THEN 'legacy' ELSE convert_from(substring("
                 "%s FROM 3 FOR get_byte(%s, 1)), 'UTF8') END",
                 t->nonce_column, t->sealed_column, t->sealed_column);
    else
        snprintf(buf, cap, "convert_from(substring(%s FROM 3 FOR get_byte(%s, 1)), 'UTF8')",
                 t->sealed_column, t->sealed_column);
}

static PGresult *query(PGconn *conn, const char *sql, int n, const char *const *params,
                       const int *lengths, const int *formats, bz_error *err)
{
    PGresult *res = PQexecParams(conn, sql, n, NULL, params, lengths, formats, 0);
    if (bz_pg_check(conn, res, "secrets", err) != BZ_OK) {
        PQclear(res);
        return NULL;
    }
    return res;
}

static int run_status(const secrets_options *o, PGconn *conn)
{
    json_t *doc = json_object();
    for (size_t i = 0; doc && i < sizeof tables / sizeof tables[0]; i++) {
        char expr[512], sql[768];
        key_id_expression(&tables[i], expr, sizeof expr);
        snprintf(sql, sizeof sql,
                 "SELECT %s AS k, count(*) FROM %s WHERE %s IS NOT NULL GROUP BY k ORDER BY k",
                 expr, tables[i].name, tables[i].sealed_column);
        bz_error err;
        PGresult *res = query(conn, sql, 0, NULL, NULL, NULL, &err);
        if (!res) {
            json_decref(doc);
            return bz_ctl_fail("secrets status", &err);
        }
        json_t *by_key = json_object();
        for (int r = 0; by_key && r < PQntuples(res); r++)
            json_object_set_new(by_key, PQgetvalue(res, r, 0),
                                json_integer(strtoll(PQgetvalue(res, r, 1), NULL, 10)));
        json_object_set_new(doc, tables[i].label, by_key);
        PQclear(res);
    }
    if (o->json)
        return bz_ctl_print_json(doc);
    const char *table;
    json_t *by_key;
    json_object_foreach(doc, table, by_key) {
        const char *key;
        json_t *n;
        printf("%s:", table);
        if (json_object_size(by_key) == 0)
            printf(" none");
        json_object_foreach(by_key, key, n) {
            printf(" %s=%" JSON_INTEGER_FORMAT, key, json_integer_value(n));
        }
        printf("\n");
    }
    json_decref(doc);
    return 0;
}

/* Open one row's secret with the ring and seal it anew; *sealed is heap. */
static bz_status reseal_row(const bz_keyring *ring, const sealed_table *t, PGresult *res, int r,
                            uint8_t **sealed, size_t *sealed_len, bz_error *err)
{
    uint8_t old[SECRET_BYTES_MAX], nonce[BZ_SECRETBOX_NONCE_LEN];
    size_t old_len, nonce_len = 0;
    const char *nonce_hex = PQgetvalue(res, r, 3);
    int legacy = nonce_hex[0] != '\0';
    if (bz_hex_decode(PQgetvalue(res, r, 2), strlen(PQgetvalue(res, r, 2)), old, sizeof old,
                      &old_len, err) != BZ_OK ||
        (legacy && (bz_hex_decode(nonce_hex, strlen(nonce_hex), nonce, sizeof nonce, &nonce_len,
                                  err) != BZ_OK ||
                    nonce_len != BZ_SECRETBOX_NONCE_LEN)))
        return bz_fail(err, BZ_ERR_INVALID, "%s %s: malformed sealed secret", t->name,
                       PQgetvalue(res, r, 0));
    char *plain;
    size_t plain_len;
    const char *legacy_aad = PQgetvalue(res, r, 5);
    bz_status st = legacy ? bz_keyring_open_legacy(ring, old, old_len, nonce, legacy_aad,
                                                   strlen(legacy_aad), &plain, &plain_len, err)
                          : bz_keyring_open_row(ring, t->name, PQgetvalue(res, r, 0),
                                                PQgetvalue(res, r, 1), old, old_len, NULL,
                                                &plain, &plain_len, err);
    if (st != BZ_OK)
        return bz_wrap(err, "%s %s", t->name, PQgetvalue(res, r, 0));
    st = bz_keyring_seal_row(ring, t->name, PQgetvalue(res, r, 0), PQgetvalue(res, r, 1), plain,
                             plain_len, sealed, sealed_len, err);
    OPENSSL_cleanse(plain, plain_len);
    free(plain);
    return st;
}

static bz_status write_row(PGconn *conn, const sealed_table *t, const char *id,
                           const uint8_t *sealed, size_t sealed_len, bz_error *err)
{
    char sql[256];
    if (t->nonce_column)
        snprintf(sql, sizeof sql, "UPDATE %s SET %s = $2, %s = NULL WHERE %s = $1::bigint",
                 t->name, t->sealed_column, t->nonce_column, t->id_column);
    else
        snprintf(sql, sizeof sql, "UPDATE %s SET %s = $2 WHERE %s = $1::bigint", t->name,
                 t->sealed_column, t->id_column);
    const char *params[] = {id, (const char *)sealed};
    int lengths[] = {0, (int)sealed_len}, formats[] = {0, 1};
    PGresult *res = query(conn, sql, 2, params, lengths, formats, err);
    PQclear(res);
    return res ? BZ_OK : err->code;
}

/* The ids of the next --batch rows after *cursor not sealed with the newest
 * key, read without locking, as a PostgreSQL array literal into *ids (heap,
 * the caller frees); *cursor moves to the last of them. Returns how many. */
static int next_candidates(const secrets_options *o, PGconn *conn, const bz_keyring *ring,
                           const sealed_table *t, int64_t *cursor, char **ids, bz_error *err)
{
    char expr[512], sql[1024], after[24], limit[16];
    key_id_expression(t, expr, sizeof expr);
    snprintf(sql, sizeof sql,
             "SELECT coalesce(array_agg(id ORDER BY id)::text, '{}'), count(*), "
             "coalesce(max(id), 0) FROM (SELECT %s AS id FROM %s WHERE %s > $1::bigint AND "
             "%s <> $2 ORDER BY %s LIMIT $3::int) c",
             t->id_column, t->name, t->id_column, expr, t->id_column);
    snprintf(after, sizeof after, "%" PRId64, *cursor);
    snprintf(limit, sizeof limit, "%d", o->batch);
    const char *params[] = {after, bz_keyring_newest(ring)->id, limit};
    PGresult *res = query(conn, sql, 3, params, NULL, NULL, err);
    if (!res)
        return -1;
    int n = (int)strtol(PQgetvalue(res, 0, 1), NULL, 10);
    if (n > 0)
        *cursor = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    *ids = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    if (!*ids) {
        bz_fail(err, BZ_ERR_NOMEM, "%s: ids of a batch: out of memory", t->name);
        return -1;
    }
    return n;
}

/* One batch after id *cursor: the candidates are chosen without a lock,
 * then locked by id (FOR UPDATE) in the batch's transaction and re-sealed
 * unless a concurrent rotation already did. Choosing and locking in one
 * "ORDER BY id LIMIT n FOR UPDATE" was seen to come back empty while the
 * dispatcher was updating the same rows (its endpoint statistics), which
 * ended a rotation half done (tests/integration/test_secrets_rotation.c). Returns
 * how many rows it looked at (0: the table is done). */
static int rotate_batch(const secrets_options *o, PGconn *conn, const bz_keyring *ring,
                        const sealed_table *t, int64_t *cursor, table_outcome *out, bz_error *err)
{
    char *ids = NULL;
    int candidates = next_candidates(o, conn, ring, t, cursor, &ids, err);
    if (candidates <= 0 || o->dry_run) {
        if (candidates > 0)
            out->rotated += candidates;
        free(ids);
        return candidates;
    }
    char expr[512], sql[1024];
    key_id_expression(t, expr, sizeof expr);
    char nonce[128], legacy_aad[128];
    if (t->nonce_column) {
        snprintf(nonce, sizeof nonce, "coalesce(encode(%s, 'hex'), '')", t->nonce_column);
        snprintf(legacy_aad, sizeof legacy_aad, "%s::text", t->legacy_aad_column);
    } else {
        snprintf(nonce, sizeof nonce, "''");
        snprintf(legacy_aad, sizeof legacy_aad, "''");
    }
    snprintf(sql, sizeof sql,
             "SELECT %s::text, %s::text, encode(%s, 'hex'), %s, %s, %s FROM %s "
             "WHERE %s = ANY ($1::bigint[]) AND %s IS NOT NULL ORDER BY %s FOR UPDATE",
             t->id_column, t->scope_column, t->sealed_column, nonce, expr, legacy_aad, t->name,
             t->id_column, t->sealed_column, t->id_column);
    const char *params[] = {ids};
    PGresult *begin = query(conn, "BEGIN", 0, NULL, NULL, NULL, err);
    if (!begin) {
        free(ids);
        return -1;
    }
    PQclear(begin);
    PGresult *res = query(conn, sql, 1, params, NULL, NULL, err);
    free(ids);
    int n = res ? PQntuples(res) : -1;
    for (int r = 0; r < n; r++) {
        if (strcmp(PQgetvalue(res, r, 4), bz_keyring_newest(ring)->id) == 0)
            continue; /* re-sealed meanwhile */
        uint8_t *sealed = NULL;
        size_t sealed_len = 0;
        bz_error row_err;
        if (reseal_row(ring, t, res, r, &sealed, &sealed_len, &row_err) != BZ_OK) {
            fprintf(stderr, "blazzctl secrets rotate: %s (left as it is)\n", row_err.msg);
            out->failed++;
            continue;
        }
        bz_status st = write_row(conn, t, PQgetvalue(res, r, 0), sealed, sealed_len, err);
        free(sealed);
        if (st != BZ_OK) {
            n = -1;
            break;
        }
        out->rotated++;
    }
    PQclear(res);
    PGresult *end = query(conn, n < 0 ? "ROLLBACK" : "COMMIT", 0, NULL, NULL, NULL,
                          n < 0 ? NULL : err);
    if (!end)
        return -1;
    PQclear(end);
    return n < 0 ? -1 : candidates;
}

static bz_status count_current(PGconn *conn, const bz_keyring *ring, const sealed_table *t,
                               table_outcome *out, bz_error *err)
{
    char expr[512], sql[768];
    key_id_expression(t, expr, sizeof expr);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE %s = $1", t->name, expr);
    const char *params[] = {bz_keyring_newest(ring)->id};
    PGresult *res = query(conn, sql, 1, params, NULL, NULL, err);
    if (!res)
        return err->code;
    out->current = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return BZ_OK;
}

static int print_rotation(const secrets_options *o, const bz_keyring *ring,
                          const table_outcome *outcomes)
{
    size_t n = sizeof tables / sizeof tables[0];
    int failed = 0;
    json_t *doc = o->json ? json_pack("{s:s, s:b}", "newest_key", bz_keyring_newest(ring)->id,
                                      "dry_run", o->dry_run)
                          : NULL;
    for (size_t i = 0; i < n; i++) {
        failed |= outcomes[i].failed > 0;
        if (doc)
            json_object_set_new(doc, tables[i].label,
                                json_pack("{s:I, s:I, s:I}", o->dry_run ? "to_rotate" : "rotated",
                                          (json_int_t)outcomes[i].rotated, "failed",
                                          (json_int_t)outcomes[i].failed, "current",
                                          (json_int_t)outcomes[i].current));
        else
            printf("%s: %" PRId64 " %s, %" PRId64 " failed, %" PRId64
                   " sealed with key %s\n",
                   tables[i].label, outcomes[i].rotated, o->dry_run ? "to re-seal" : "re-sealed",
                   outcomes[i].failed, outcomes[i].current, bz_keyring_newest(ring)->id);
    }
    int rc = doc ? bz_ctl_print_json(doc) : 0;
    return failed ? 1 : rc;
}

static int run_rotate(const secrets_options *o, PGconn *conn)
{
    bz_error err;
    bz_error_clear(&err);
    bz_keyring ring;
    if (bz_ctl_keyring(&ring, &err) != BZ_OK)
        return bz_ctl_fail("secrets rotate", &err);
    table_outcome outcomes[sizeof tables / sizeof tables[0]];
    memset(outcomes, 0, sizeof outcomes);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof tables / sizeof tables[0]; i++) {
        int64_t cursor = 0;
        int n;
        while ((n = rotate_batch(o, conn, &ring, &tables[i], &cursor, &outcomes[i], &err)) > 0)
            ;
        if (n < 0 || count_current(conn, &ring, &tables[i], &outcomes[i], &err) != BZ_OK)
            rc = bz_ctl_fail("secrets rotate", &err);
    }
    if (rc == 0)
        rc = print_rotation(o, &ring, outcomes);
    bz_keyring_free(&ring);
    return rc;
}

int bz_ctl_cmd_secrets(int argc, char **argv)
{
    secrets_options o;
    memset(&o, 0, sizeof o);
    int rc = parse_secrets_options(argc, argv, &o);
    if (rc != 0)
        return rc == BZ_CTL_OPTIONS_HELP ? 0 : 1;
    int status = strcmp(o.action, "status") == 0, rotate = strcmp(o.action, "rotate") == 0;
    if (!status && !rotate) {
        bz_ctl_usage_error("secrets", "unknown action '%s' (status or rotate)", o.action);
        return 1;
    }
    PGconn *conn = bz_ctl_connect_pg("secrets", o.dsn);
    if (!conn)
        return 1;
    rc = status ? run_status(&o, conn) : run_rotate(&o, conn);
    PQfinish(conn);
    return rc;
}
