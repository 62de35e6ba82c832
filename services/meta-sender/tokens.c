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
 * live only here, are cleansed when dropped, and are never logged.
 */
#include <inttypes.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "core/hex.h"
#include "core/log.h"
#include "meta_sender.h"
#include "pg/pg.h"

#define SQL_ACCOUNTS                                                                              \
    "SELECT a.id, a.workspace_id, a.session_id, a.metadata::text, "                              \
    "encode(c.token_ciphertext, 'hex'), coalesce(encode(c.token_nonce, 'hex'), ''), "          \
    "coalesce(c.status, ''), "                                                                    \
    "coalesce(c.updated_at::text, '') "                                                           \
    "FROM whatsapp_accounts a LEFT JOIN meta_credentials c ON c.whatsapp_account_id = a.id "    \
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

/* Open a's token: sealed (ct bytes) with a key id when nonce_hex is empty,
 * else in the form from before key ids. */
static bz_status open_sealed_token(ms_account *a, const uint8_t *ct, size_t ct_len,
                                   const char *nonce_hex, const ms_settings *s, bz_error *err)
{
    char id[24], ws[24];
    snprintf(id, sizeof id, "%" PRId64, a->id);
    snprintf(ws, sizeof ws, "%" PRId64, a->workspace_id);
    size_t plain_len;
    if (!*nonce_hex)
        return bz_keyring_open_row(&s->keyring, "meta_credentials", id, ws, ct, ct_len, NULL,
                                   &a->token, &plain_len, err);
    uint8_t nonce[BZ_SECRETBOX_NONCE_LEN];
    size_t nonce_len;
    if (bz_hex_decode(nonce_hex, strlen(nonce_hex), nonce, sizeof nonce, &nonce_len, err) != BZ_OK ||
        nonce_len != sizeof nonce)
        return bz_fail(err, BZ_ERR_INVALID, "malformed nonce");
    /* the associated data of that form: the account id alone */
    return bz_keyring_open_legacy(&s->keyring, ct, ct_len, nonce, id, strlen(id), &a->token,
                                  &plain_len, err);
}

/* Open the sealed token of a (hex ciphertext; hex nonce of the older form
 * or ""). */
static void open_token(ms_account *a, const char *ct_hex, const char *nonce_hex,
                       const ms_settings *s)
{
    drop_token(a);
    a->state = MS_TOKEN_NONE;
    size_t ct_len;
    size_t cap = strlen(ct_hex) / 2 + 1;
    uint8_t *ct = malloc(cap);
    bz_error err;
    bz_error_clear(&err);
    if (s->keyring.count == 0)
        bz_warn("meta account %" PRId64 ": secrets.keys is not set: its token cannot be opened",
                a->id);
    else if (!ct || bz_hex_decode(ct_hex, strlen(ct_hex), ct, cap, &ct_len, &err) != BZ_OK)
        bz_warn("meta account %" PRId64 ": stored token is malformed", a->id);
    else if (open_sealed_token(a, ct, ct_len, nonce_hex, s, &err) != BZ_OK)
        bz_warn("meta account %" PRId64 ": token does not open (its key not in secrets.keys?): %s",
                a->id, err.msg);
    else
        a->state = MS_TOKEN_OPEN;
    free(ct);
}

static ms_account *account_for(ms_accounts *accs, int64_t id, const ms_settings *s, int64_t now)
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
                 1000 + s->rate_guard_ms, now);
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
        ms_account *a = account_for(accs, bz_pg_get_int64(res, row, 0), s, now_ms);
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
