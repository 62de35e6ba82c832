/*
 * gateway_auth.c - gateways' signing keys and session ownership for the
 * HTTP threads (see gateway_auth.h).
 *
 * The key table is an array of gateways, each with its opened keys,
 * replaced whole on every load under a write lock; verifications read it
 * under a read lock. Loading talks to PostgreSQL under a mutex of its own,
 * so concurrent misses cause one query, not one per thread. The owner
 * lookups go through a sessions.h cache behind another mutex.
 */
#include "gateway_auth.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/clock.h"
#include "core/log.h"
#include "pg/pg.h"
#include "sessions.h"
#include "wa/signature.h"

/* Reloads forced by a signature that matched no cached key: at most one
 * per this long, so a flood of bad signatures costs the database at most
 * 20 small queries a second. Under such a flood a key added meanwhile may
 * wait for the next periodic load. */
#define FORCED_RELOAD_SPACING_MS 50
#define SEALED_MAX 1024
#define TIMESTAMP_MAX 20

typedef struct gw_key {
    uint8_t *key;
    size_t len;
    int64_t from_ms, until_ms; /* until 0: open-ended */
} gw_key;

typedef struct gw {
    char id[BZ_GATEWAY_ID_MAX + 1];
    ing_gateway_kind kind;
    gw_key *keys;
    size_t nkeys;
} gw;

typedef struct gw_table {
    gw *items;
    size_t count;
} gw_table;

struct ing_gateway_auth {
    ing_gateway_auth_config cfg;
    pthread_rwlock_t table_mu;
    gw_table table;
    int64_t loaded_ms;       /* monotonic, 0: never */
    pthread_mutex_t load_mu; /* guards pg and last_forced_ms */
    bz_pg *pg;
    int64_t last_forced_ms;
    pthread_mutex_t owners_mu;
    ing_sessions *owners;
};

static const char keys_sql[] =
    "SELECT g.id, g.kind, k.id::text, encode(k.secret_ciphertext, 'hex'), "
    "  (extract(epoch FROM k.valid_from) * 1000)::bigint, "
    "  coalesce((extract(epoch FROM k.valid_until) * 1000)::bigint, 0) "
    "FROM gateways g JOIN gateway_keys k ON k.gateway_id = g.id "
    "WHERE g.disabled_at IS NULL AND (k.valid_until IS NULL OR k.valid_until > now()) "
    "ORDER BY g.id, k.id";

static void table_free(gw_table *t)
{
    for (size_t i = 0; i < t->count; i++) {
        for (size_t k = 0; k < t->items[i].nkeys; k++) {
            OPENSSL_cleanse(t->items[i].keys[k].key, t->items[i].keys[k].len);
            free(t->items[i].keys[k].key);
        }
        free(t->items[i].keys);
    }
    free(t->items);
    t->items = NULL;
    t->count = 0;
}

/* The gateway row r starts, appended to t when it is new. */
static gw *gateway_of_row(gw_table *t, PGresult *res, int r, size_t rows)
{
    const char *id = PQgetvalue(res, r, 0);
    if (t->count > 0 && strcmp(t->items[t->count - 1].id, id) == 0)
        return &t->items[t->count - 1];
    if (!t->items && !(t->items = calloc(rows, sizeof *t->items)))
        return NULL;
    gw *g = &t->items[t->count++];
    snprintf(g->id, sizeof g->id, "%s", id);
    g->kind = strcmp(PQgetvalue(res, r, 1), "meta") == 0 ? ING_GATEWAY_META : ING_GATEWAY_WEBJS;
    g->keys = calloc(rows, sizeof *g->keys);
    return g->keys ? g : NULL;
}

/* Open row r's key into g; a key that does not open is logged and left out
 * (its gateway's requests then fail to verify, which says the same). */
static void add_key(const ing_gateway_auth *a, gw *g, PGresult *res, int r)
{
    uint8_t sealed[SEALED_MAX];
    size_t sealed_len;
    const char *hex = PQgetvalue(res, r, 3), *key_id = PQgetvalue(res, r, 2);
    char *plain = NULL;
    size_t plain_len;
    bz_error err;
    if (bz_hex_decode(hex, strlen(hex), sealed, sizeof sealed, &sealed_len, &err) != BZ_OK ||
        bz_keyring_open_row(a->cfg.keyring, "gateway_keys", key_id, g->id, sealed, sealed_len,
                            NULL, &plain, &plain_len, &err) != BZ_OK) {
        bz_error_log("gateway %s: key %s does not open: %s", g->id, key_id, err.msg);
        return;
    }
    gw_key *k = &g->keys[g->nkeys++];
    k->key = (uint8_t *)plain;
    k->len = plain_len;
    k->from_ms = bz_pg_get_int64(res, r, 4);
    k->until_ms = bz_pg_get_int64(res, r, 5);
}

static bz_status query_keys(ing_gateway_auth *a, gw_table *out, bz_error *err)
{
    bz_status st = bz_pg_ensure(a->pg, err);
    PGresult *res = NULL;
    if (st == BZ_OK) {
        res = PQexec(bz_pg_conn(a->pg), keys_sql);
        st = bz_pg_check(bz_pg_conn(a->pg), res, "load gateway keys", err);
    }
    if (st != BZ_OK) {
        PQclear(res);
        if (st == BZ_ERR_TRANSIENT)
            bz_pg_reset(a->pg);
        return st;
    }
    memset(out, 0, sizeof *out);
    int rows = PQntuples(res);
    for (int r = 0; r < rows; r++) {
        gw *g = gateway_of_row(out, res, r, (size_t)rows);
        if (!g) {
            PQclear(res);
            table_free(out);
            return bz_fail(err, BZ_ERR_NOMEM, "load gateway keys: out of memory");
        }
        add_key(a, g, res, r);
    }
    PQclear(res);
    return BZ_OK;
}

/* Whether to load the table now: never loaded, older than keys_refresh_ms,
 * or (forced, for a request that began at since_ms and matched no key) not
 * loaded since that request began, spaced by FORCED_RELOAD_SPACING_MS. */
static int should_load(ing_gateway_auth *a, int force, int64_t since_ms, int64_t now)
{
    if (a->loaded_ms == 0 || now - a->loaded_ms >= a->cfg.keys_refresh_ms)
        return 1;
    if (!force || a->loaded_ms >= since_ms || now - a->last_forced_ms < FORCED_RELOAD_SPACING_MS)
        return 0;
    a->last_forced_ms = now;
    return 1;
}

/* Load the table when should_load says so. Concurrent callers queue on the
 * mutex, and find the table loaded since they began. */
static bz_status reload(ing_gateway_auth *a, int force, int64_t since_ms, bz_error *err)
{
    pthread_mutex_lock(&a->load_mu);
    int64_t now = bz_monotonic_ms();
    bz_status st = BZ_OK;
    if (should_load(a, force, since_ms, now)) {
        gw_table fresh_table;
        st = query_keys(a, &fresh_table, err);
        if (st == BZ_OK) {
            pthread_rwlock_wrlock(&a->table_mu);
            gw_table old = a->table;
            a->table = fresh_table;
            a->loaded_ms = now;
            pthread_rwlock_unlock(&a->table_mu);
            table_free(&old);
        } else if (a->loaded_ms > 0) {
            bz_warn("gateway keys: %s; using the ones loaded before", err->msg);
            st = BZ_OK;
        }
    }
    pthread_mutex_unlock(&a->load_mu);
    return st;
}

bz_status ing_gateway_auth_new(const ing_gateway_auth_config *cfg, ing_gateway_auth **out,
                              bz_error *err)
{
    ing_gateway_auth *a = calloc(1, sizeof *a);
    if (!a)
        return bz_fail(err, BZ_ERR_NOMEM, "gateway auth: out of memory");
    a->cfg = *cfg;
    pthread_rwlock_init(&a->table_mu, NULL);
    pthread_mutex_init(&a->load_mu, NULL);
    pthread_mutex_init(&a->owners_mu, NULL);
    ing_sessions_config scfg = {.pg_dsn = cfg->pg_dsn, .ttl_ms = cfg->owner_ttl_ms,
                               .negative_ttl_ms = cfg->owner_negative_ttl_ms};
    bz_status st = bz_pg_open(cfg->pg_dsn, &a->pg, err);
    if (st == BZ_OK)
        st = ing_sessions_new(&scfg, &a->owners, err);
    if (st != BZ_OK) {
        ing_gateway_auth_free(a);
        return bz_wrap(err, "gateway auth");
    }
    *out = a;
    return BZ_OK;
}

void ing_gateway_auth_free(ing_gateway_auth *a)
{
    if (!a)
        return;
    table_free(&a->table);
    ing_sessions_free(a->owners);
    bz_pg_close(a->pg);
    pthread_rwlock_destroy(&a->table_mu);
    pthread_mutex_destroy(&a->load_mu);
    pthread_mutex_destroy(&a->owners_mu);
    free(a);
}

/* A timestamp, when given, must be near now; require_timestamp wants one. */
static bz_status check_timestamp(const ing_gateway_auth *a, const char *timestamp, int64_t now_ms,
                                 bz_error *err)
{
    if (!timestamp || !*timestamp)
        return a->cfg.require_timestamp
                   ? bz_reject(err, "timestamp_required", "X-Blazz-Timestamp is required")
                   : BZ_OK;
    char *end = NULL;
    long long ts = strtoll(timestamp, &end, 10);
    size_t tlen = strlen(timestamp);
    if (tlen > TIMESTAMP_MAX || *end != '\0' || ts <= 0)
        return bz_reject(err, "stale_timestamp", "X-Blazz-Timestamp is not Unix seconds");
    int64_t skew = now_ms - (int64_t)ts * 1000;
    if (skew > a->cfg.timestamp_tolerance_ms || -skew > a->cfg.timestamp_tolerance_ms)
        return bz_reject(err, "stale_timestamp",
                         "X-Blazz-Timestamp is %lld s away from now, beyond the tolerance",
                         (long long)((skew < 0 ? -skew : skew) / 1000));
    return BZ_OK;
}

/* One key against the request: Meta's scheme, the gateway scheme with a
 * signed timestamp, or without. */
static bz_status verify_one(const gw_key *key, ing_gateway_kind kind, const char *timestamp,
                            const void *body, size_t len, const char *signature)
{
    if (kind == ING_GATEWAY_META)
        return bz_signature_verify_meta(key->key, key->len, body, len, signature, NULL);
    if (timestamp && *timestamp)
        return bz_signature_verify_timestamped(key->key, key->len, timestamp, body, len,
                                               signature, NULL);
    return bz_signature_verify_hex(key->key, key->len, body, len, signature, NULL);
}

typedef enum match { NO_GATEWAY, NO_MATCH, MATCH, AMBIGUOUS } match;

/* 1 when a key of g valid now verifies the request; all are compared. */
static int gateway_signed(const gw *g, ing_gateway_kind kind, const char *timestamp,
                          const void *body, size_t len, const char *signature, int64_t now_ms)
{
    int signed_by_g = 0;
    for (size_t k = 0; k < g->nkeys; k++) {
        const gw_key *key = &g->keys[k];
        if (key->from_ms > now_ms || (key->until_ms && key->until_ms <= now_ms))
            continue;
        if (verify_one(key, kind, timestamp, body, len, signature) == BZ_OK)
            signed_by_g = 1;
    }
    return signed_by_g;
}

/* Try the keys of the gateway named gateway_id (NULL: of every gateway of
 * the kind, so the time taken does not tell which matched); the signer into
 * signer. A key that verifies for two gateways names neither. */
static match match_keys(ing_gateway_auth *a, const char *gateway_id, ing_gateway_kind kind,
                        const char *timestamp, const void *body, size_t len,
                        const char *signature, int64_t now_ms, char signer[BZ_GATEWAY_ID_MAX + 1])
{
    match m = NO_GATEWAY;
    pthread_rwlock_rdlock(&a->table_mu);
    for (size_t i = 0; i < a->table.count; i++) {
        const gw *g = &a->table.items[i];
        if ((gateway_id && strcmp(g->id, gateway_id) != 0) || g->kind != kind)
            continue;
        if (m == NO_GATEWAY)
            m = NO_MATCH;
        if (!gateway_signed(g, kind, timestamp, body, len, signature, now_ms))
            continue;
        m = m == NO_MATCH ? MATCH : AMBIGUOUS;
        snprintf(signer, BZ_GATEWAY_ID_MAX + 1, "%s", g->id);
    }
    pthread_rwlock_unlock(&a->table_mu);
    return m;
}

bz_status ing_gateway_auth_verify(ing_gateway_auth *a, const char *gateway_id, ing_gateway_kind kind,
                                 const char *timestamp, const void *body, size_t len,
                                 const char *signature, int64_t now_ms,
                                 char signer[BZ_GATEWAY_ID_MAX + 1], bz_error *err)
{
    if (gateway_id && !*gateway_id)
        gateway_id = NULL;
    if (gateway_id && !bz_gateway_id_valid(gateway_id))
        return bz_reject(err, "unknown_gateway", "X-Blazz-Gateway names no valid gateway id");
    const char *named = gateway_id ? gateway_id : "(by key)";
    int64_t started = bz_monotonic_ms();
    /* Meta signs no timestamp: its requests are checked without one */
    bz_status st = kind == ING_GATEWAY_META ? BZ_OK : check_timestamp(a, timestamp, now_ms, err);
    if (st == BZ_OK)
        st = reload(a, 0, started, err);
    if (st != BZ_OK)
        return st;
    match m = match_keys(a, gateway_id, kind, timestamp, body, len, signature, now_ms, signer);
    if (m != MATCH && reload(a, 1, started, err) == BZ_OK)
        m = match_keys(a, gateway_id, kind, timestamp, body, len, signature, now_ms, signer);
    if (m == NO_GATEWAY)
        return bz_reject(err, "unknown_gateway", "gateway %s: unknown, disabled or without a "
                                                 "valid key", named);
    if (m == NO_MATCH)
        return bz_reject(err, "signature_mismatch", "gateway %s: invalid signature", named);
    if (m == AMBIGUOUS)
        return bz_reject(err, "ambiguous_key", "the signature verifies with the keys of more "
                                               "than one gateway: name one in X-Blazz-Gateway");
    return BZ_OK;
}

bz_status ing_gateway_auth_owner(ing_gateway_auth *a, const char *session_id, int64_t now_ms,
                                char owner[BZ_GATEWAY_ID_MAX + 1], bz_error *err)
{
    ing_session_info info;
    pthread_mutex_lock(&a->owners_mu);
    bz_status st = ing_sessions_resolve(a->owners, session_id, now_ms, &info, err);
    pthread_mutex_unlock(&a->owners_mu);
    if (st == BZ_OK)
        snprintf(owner, BZ_GATEWAY_ID_MAX + 1, "%s", info.gateway_id);
    return st;
}
