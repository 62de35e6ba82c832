/*
 * tokens.c - the Meta accounts the worker sends for (see meta_sender.h).
 *
 * Each refresh reads the Meta accounts with open sends (queued or in
 * flight), their metadata.rate_limits.per_second (else meta.account_per_second,
 * capped at meta.max_per_second) and their meta_credentials row. A token is
 * opened with the key its sealed form names (core/keyring.h, bound to
 * "meta_credentials:<account>:<workspace>"; a token sealed before key ids,
 * nonce in token_nonce and the account id as associated data, opens with
 * whichever key of the ring authenticates it) only when its version
 * (updated_at) differs from the one held, so setting
 * a new token with blazzctl is picked up at the next refresh, and Meta's
 * refusal of an old one cannot mark a newer one invalid. Plaintext tokens
 * live only here, are cleansed when dropped, and are never logged. How a
 * token opens lives in wa/meta_graph.h (blazzctl opens it the same way).
 * An account met for the first time (a start, a restart) starts at the
 * pace its meta_throttle row leaves it: the factor after Meta's last
 * throttling answer, recovered for the time since (wa/meta_throttle.h).
 */
#include <inttypes.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "core/log.h"
#include "meta_sender.h"
#include "pg/pg.h"
#include "wa/meta_graph.h"

#define SQL_ACCOUNTS                                                                              \
    "SELECT a.id, a.workspace_id, a.session_id, a.metadata::text, "                              \
    "encode(c.token_ciphertext, 'hex'), coalesce(encode(c.token_nonce, 'hex'), ''), "          \
    "coalesce(c.status, ''), "                                                                    \
    "coalesce(c.updated_at::text, ''), coalesce(t.factor, 1), "                                   \
    "coalesce((extract(epoch FROM clock_timestamp() - t.throttled_at) * 1000)::bigint, 0) "      \
    "FROM whatsapp_accounts a LEFT JOIN meta_credentials c ON c.whatsapp_account_id = a.id "    \
    "LEFT JOIN meta_throttle t ON t.whatsapp_account_id = a.id "                                  \
    "WHERE a.provider_type = 'meta' AND ("                                                         \
    "EXISTS (SELECT 1 FROM meta_sends s WHERE s.whatsapp_account_id = a.id AND s.state = 'queued') " \
    "OR EXISTS (SELECT 1 FROM meta_sends s WHERE s.whatsapp_account_id = a.id "                  \
    "AND s.state = 'in_flight'))"

#define SQL_MARK_INVALID                                                                          \
    "UPDATE meta_credentials SET status = 'invalid', invalid_reason = $3 "                       \
    "WHERE whatsapp_account_id = $1::bigint AND updated_at::text = $2 AND status = 'valid'"

ms_account *ms_accounts_find(ms_accounts *accs, int64_t id)
{
    for (size_t i = 0; i < accs->n; i++)
        if (accs->items[i]->id == id)
            return accs->items[i];
    return NULL;
}

static void drop_token(ms_account *a)
{
    if (a->token) {
        OPENSSL_cleanse(a->token, strlen(a->token));
        free(a->token);
        a->token = NULL;
    }
}

static double rate_of(const char *metadata, const ms_settings *s)
{
    double rate = s->default_per_second;
    json_t *doc = json_loads(metadata, 0, NULL);
    json_t *v = json_object_get(json_object_get(doc, "rate_limits"), "per_second");
    if (json_is_number(v) && json_number_value(v) > 0)
        rate = json_number_value(v);
    json_decref(doc);
    if (s->max_per_second > 0 && rate > s->max_per_second)
        rate = s->max_per_second;
    return rate;
}

/* Open the sealed token of a (hex ciphertext; hex nonce of the older form
 * or ""). */
static void open_token(ms_account *a, const char *ct_hex, const char *nonce_hex,
                       const ms_settings *s)
{
    drop_token(a);
    a->state = MS_TOKEN_NONE;
    char id[24], ws[24];
    snprintf(id, sizeof id, "%" PRId64, a->id);
    snprintf(ws, sizeof ws, "%" PRId64, a->workspace_id);
    bz_error err;
    bz_error_clear(&err);
    if (bz_meta_token_open(&s->keyring, id, ws, ct_hex, nonce_hex, &a->token, &err) != BZ_OK)
        bz_warn("meta account %" PRId64 ": %s", a->id, err.msg);
    else
        a->state = MS_TOKEN_OPEN;
}

/* SQL_ACCOUNTS's columns of the account's throttle state (meta_throttle):
 * the factor after the last throttling answer, how long ago it came. */
#define COL_THROTTLE_FACTOR 8
#define COL_THROTTLED_AGO_MS 9

/* The account's slot; a new one starts at the pace meta_throttle left it
 * (res, row), placed on the monotonic clock the pace runs on. */
static ms_account *account_for(ms_accounts *accs, int64_t id, const ms_settings *s,
                               const PGresult *res, int row, int64_t now)
{
    ms_account *a = ms_accounts_find(accs, id);
    if (a)
        return a;
    if (!bz_grow((void **)&accs->items, &accs->cap, accs->n + 1, sizeof(ms_account *), 16))
        return NULL;
    a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->id = id;
    ms_pace_init(&a->pace, s->default_per_second, s->account_concurrency,
                 1000 + s->rate_guard_ms);
    a->pace.throttle.factor = strtod(PQgetvalue(res, row, COL_THROTTLE_FACTOR), NULL);
    a->pace.throttle.since_ms = now - bz_pg_get_int64(res, row, COL_THROTTLED_AGO_MS);
    accs->items[accs->n++] = a;
    return a;
}

static void apply_row(ms_account *a, const PGresult *res, int row, const ms_settings *s)
{
    a->seen = 1;
    a->workspace_id = bz_pg_get_int64(res, row, 1);
    snprintf(a->phone_number_id, sizeof a->phone_number_id, "%s", PQgetvalue(res, row, 2));
    ms_pace_set_rate(&a->pace, rate_of(PQgetvalue(res, row, 3), s));
    const char *status = PQgetvalue(res, row, 6), *version = PQgetvalue(res, row, 7);
    if (!*status) {
        drop_token(a);
        a->state = MS_TOKEN_NONE;
        a->token_version[0] = '\0';
        return;
    }
    int want_valid = strcmp(status, "valid") == 0;
    if (strcmp(version, a->token_version) == 0 &&
        a->state == (want_valid ? MS_TOKEN_OPEN : MS_TOKEN_REFUSED))
        return;
    snprintf(a->token_version, sizeof a->token_version, "%s", version);
    if (!want_valid) {
        drop_token(a);
        a->state = MS_TOKEN_REFUSED;
        return;
    }
    open_token(a, PQgetvalue(res, row, 4), PQgetvalue(res, row, 5), s);
    if (a->state == MS_TOKEN_OPEN)
        bz_info("meta account %" PRId64 ": access token loaded (version %s)", a->id, version);
}

bz_status ms_accounts_refresh(PGconn *conn, ms_accounts *accs, const ms_settings *s,
                              int64_t now_ms, bz_error *err)
{
    PGresult *res;
    bz_status st = bz_pg_exec_params(conn, "read Meta accounts", SQL_ACCOUNTS, 0, NULL, &res, err);
    if (st != BZ_OK)
        return st;
    for (size_t i = 0; i < accs->n; i++)
        accs->items[i]->seen = 0;
    for (int row = 0; row < PQntuples(res); row++) {
        ms_account *a = account_for(accs, bz_pg_get_int64(res, row, 0), s, res, row, now_ms);
        if (!a) {
            PQclear(res);
            return bz_fail(err, BZ_ERR_NOMEM, "read Meta accounts: out of memory");
        }
        apply_row(a, res, row, s);
    }
    PQclear(res);
    return BZ_OK;
}

bz_status ms_account_mark_invalid(PGconn *conn, ms_account *a, const char *reason, bz_error *err)
{
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, a->id);
    const char *params[] = {id, a->token_version, reason};
    drop_token(a);
    a->state = MS_TOKEN_REFUSED;
    return bz_pg_exec_params(conn, "mark Meta token invalid", SQL_MARK_INVALID, 3, params, NULL,
                             err);
}

void ms_accounts_free(ms_accounts *accs)
{
    for (size_t i = 0; i < accs->n; i++) {
        drop_token(accs->items[i]);
        free(accs->items[i]);
    }
    free(accs->items);
    memset(accs, 0, sizeof *accs);
}
