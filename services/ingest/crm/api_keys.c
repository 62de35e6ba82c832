/*
 * api_keys.c - the API key cache (see api_keys.h): a chained hash map keyed
 * by key id, one mutex around it. The database is asked outside the mutex,
 * so a slow query never holds up other requests.
 *
 * Made-up key ids are what could cost: each is a query, and each fills a
 * place in the cache. So each client address (client_address.h) has a
 * token bucket of lookups that found no key (UNKNOWN_IDS_PER_S, burst
 * UNKNOWN_IDS_BURST); once it is empty, that client's ids not in the cache
 * are refused (429, retry after a second) without a query, while its keys
 * in the cache keep working (an expired one is read again without a
 * charge) and other clients are not touched. A full cache first forgets
 * unknown ids, so a flood never pushes the real keys out.
 */
#include "crm/api_keys.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/api_key.h"
#include "core/clock.h"
#include "core/hash.h"
#include "core/hex.h"
#include "core/log.h"
#include "rate_table.h"

#define NBUCKETS 1024
#define CACHE_MAX 10000
#define TOUCH_EVERY_MS 60000
#define POOL_WAIT_MS 2000
#define UNKNOWN_IDS_PER_S 2.0
#define UNKNOWN_IDS_BURST 20.0
#define CLIENTS_MAX 4096

#define SQL_KEY                                                                                  \
    "SELECT workspace_id, encode(secret_sha256, 'hex'), revoked_at IS NOT NULL FROM api_keys "   \
    "WHERE key_id = $1"
#define SQL_TOUCH "UPDATE api_keys SET last_used_at = now() WHERE key_id = $1"

typedef struct entry {
    struct entry *next;
    char key_id[BZ_API_KEY_ID_LEN + 1];
    int found, revoked;
    int64_t workspace_id;
    uint8_t hash[BZ_API_KEY_HASH_LEN];
    int64_t expires_ms, touched_ms;
} entry;

struct ing_api_keys {
    ing_pg_pool *pool;
    int64_t ttl_ms;
    pthread_mutex_t mu;
    entry *buckets[NBUCKETS];
    size_t count;
    ing_rate_table *unknown_ids; /* per client address */
};

bz_status ing_api_keys_new(ing_pg_pool *pool, int64_t ttl_ms, ing_api_keys **out, bz_error *err)
{
    ing_api_keys *k = calloc(1, sizeof *k);
    if (!k)
        return bz_fail(err, BZ_ERR_NOMEM, "API key cache: out of memory");
    k->pool = pool;
    k->ttl_ms = ttl_ms;
    pthread_mutex_init(&k->mu, NULL);
    bz_status st = ing_rate_table_new(UNKNOWN_IDS_PER_S, UNKNOWN_IDS_BURST, CLIENTS_MAX,
                                      &k->unknown_ids, err);
    if (st != BZ_OK) {
        ing_api_keys_free(k);
        return st;
    }
    *out = k;
    return BZ_OK;
}

/* Drop the entries keep() does not want; all of them when keep is NULL. */
static void forget(ing_api_keys *k, int (*keep)(const entry *))
{
    for (size_t i = 0; i < NBUCKETS; i++)
        for (entry **at = &k->buckets[i]; *at;) {
            entry *e = *at;
            if (keep && keep(e)) {
                at = &e->next;
                continue;
            }
            *at = e->next;
            free(e);
            k->count--;
        }
}

static int is_key(const entry *e)
{
    return e->found;
}

void ing_api_keys_free(ing_api_keys *k)
{
    if (!k)
        return;
    forget(k, NULL);
    ing_rate_table_free(k->unknown_ids);
    pthread_mutex_destroy(&k->mu);
    free(k);
}

static size_t bucket_of(const char *id)
{
    return (size_t)(bz_hash_string(id) % NBUCKETS);
}

typedef enum cache_answer { NOT_CACHED, EXPIRED_KEY, CACHED } cache_answer;

/* What the cache knows of id: a fresh entry (copied to out), a key whose
 * entry expired (read again, never charged as unknown), or nothing. Caller
 * holds mu. */
static cache_answer cached(ing_api_keys *k, const char *id, int64_t now_ms, entry *out)
{
    for (entry *e = k->buckets[bucket_of(id)]; e; e = e->next) {
        if (strcmp(e->key_id, id) != 0)
            continue;
        if (e->expires_ms <= now_ms)
            return e->found ? EXPIRED_KEY : NOT_CACHED;
        *out = *e;
        return CACHED;
    }
    return NOT_CACHED;
}

/* The entry of id, made (zeroed, id set) when there is none; NULL when out
 * of memory. Caller holds mu. */
static entry *entry_of(ing_api_keys *k, const char *id)
{
    if (k->count >= CACHE_MAX)
        forget(k, is_key);
    if (k->count >= CACHE_MAX)
        forget(k, NULL);
    size_t b = bucket_of(id);
    entry *e = k->buckets[b];
    while (e && strcmp(e->key_id, id) != 0)
        e = e->next;
    if (!e && (e = calloc(1, sizeof *e))) {
        snprintf(e->key_id, sizeof e->key_id, "%s", id);
        e->next = k->buckets[b];
        k->buckets[b] = e;
        k->count++;
    }
    return e;
}

static void remember(ing_api_keys *k, const entry *fresh)
{
    pthread_mutex_lock(&k->mu);
    entry *e = entry_of(k, fresh->key_id);
    if (e) {
        entry *next = e->next;
        int64_t touched = e->touched_ms;
        /* a revocation is final (0026): a row read before it was made
         * never takes back the mark ing_api_keys_mark_revoked left */
        int revoked = e->revoked;
        *e = *fresh;
        e->revoked |= revoked;
        e->next = next;
        e->touched_ms = touched;
    }
    pthread_mutex_unlock(&k->mu);
}

void ing_api_keys_mark_revoked(ing_api_keys *k, const char *key_id)
{
    pthread_mutex_lock(&k->mu);
    entry *e = entry_of(k, key_id);
    if (e && !e->found) { /* no key's row cached: read it at its next use, as a key's */
        e->found = 1;
        e->expires_ms = 0;
    }
    if (e)
        e->revoked = 1;
    pthread_mutex_unlock(&k->mu);
}

static bz_status read_key(ing_api_keys *k, const char *id, int64_t now_ms, entry *out,
                          bz_error *err)
{
    bz_pg *pg;
    bz_status st = ing_pg_pool_acquire(k->pool, POOL_WAIT_MS, &pg, err);
    if (st != BZ_OK)
        return st;
    const char *params[] = {id};
    PGresult *res = NULL;
    st = bz_pg_exec_params(bz_pg_conn(pg), "look up API key", SQL_KEY, 1, params, &res, err);
    memset(out, 0, sizeof *out);
    snprintf(out->key_id, sizeof out->key_id, "%s", id);
    out->expires_ms = now_ms + k->ttl_ms;
    if (st == BZ_OK && PQntuples(res) == 1) {
        const char *hex = PQgetvalue(res, 0, 1);
        size_t len = 0;
        out->found = bz_hex_decode(hex, strlen(hex), out->hash, sizeof out->hash, &len, NULL) ==
                         BZ_OK &&
                     len == BZ_API_KEY_HASH_LEN;
        out->workspace_id = bz_pg_get_int64(res, 0, 0);
        out->revoked = PQgetvalue(res, 0, 2)[0] == 't';
    }
    PQclear(res);
    ing_pg_pool_release(k->pool, pg, st == BZ_ERR_TRANSIENT);
    return st;
}

/* Refresh last_used_at at most once a minute per key and instance. */
static void touch(ing_api_keys *k, const char *id, int64_t now_ms)
{
    pthread_mutex_lock(&k->mu);
    int due = 0;
    for (entry *e = k->buckets[bucket_of(id)]; e; e = e->next)
        if (strcmp(e->key_id, id) == 0 && now_ms - e->touched_ms >= TOUCH_EVERY_MS) {
            e->touched_ms = now_ms;
            due = 1;
        }
    pthread_mutex_unlock(&k->mu);
    bz_pg *pg;
    bz_error err;
    if (!due || ing_pg_pool_acquire(k->pool, POOL_WAIT_MS, &pg, &err) != BZ_OK)
        return;
    const char *params[] = {id};
    bz_status st = bz_pg_exec_params(bz_pg_conn(pg), "note API key use", SQL_TOUCH, 1, params,
                                     NULL, &err);
    if (st != BZ_OK)
        bz_warn("ingest: %s", err.msg);
    ing_pg_pool_release(k->pool, pg, st == BZ_ERR_TRANSIENT);
}

/* The key of a "Bearer <key>" value split into its id and the hash of its
 * secret; false when it does not have the shape. */
static bool parse_authorization(const char *authorization, char id[BZ_API_KEY_ID_LEN + 1],
                                uint8_t hash[BZ_API_KEY_HASH_LEN])
{
    return authorization && strncasecmp(authorization, "Bearer ", 7) == 0 &&
           bz_api_key_parse(authorization + 7, id, hash);
}

int ing_api_keys_well_formed(const char *authorization)
{
    char id[BZ_API_KEY_ID_LEN + 1];
    uint8_t hash[BZ_API_KEY_HASH_LEN];
    return parse_authorization(authorization, id, hash);
}

bz_status ing_api_keys_verify(ing_api_keys *k, const char *authorization,
                             const uint8_t client[ING_CLIENT_KEY_LEN], int64_t now_ms,
                             int64_t *workspace_id, bz_error *err)
{
    char id[BZ_API_KEY_ID_LEN + 1];
    uint8_t hash[BZ_API_KEY_HASH_LEN];
    if (!parse_authorization(authorization, id, hash))
        return bz_reject(err, "unauthorized", ING_API_KEY_SHAPE_MESSAGE);
    entry e;
    pthread_mutex_lock(&k->mu);
    cache_answer known = cached(k, id, now_ms, &e);
    pthread_mutex_unlock(&k->mu);
    if (known != CACHED) {
        if (known == NOT_CACHED && ing_rate_table_wait_ms(k->unknown_ids, client,
                                                          ING_CLIENT_KEY_LEN,
                                                          bz_monotonic_ms()) > 0) {
            bz_fail(err, BZ_ERR_TRANSIENT,
                    "field Authorization: too many unknown API keys from this address; retry "
                    "in %d s",
                    ING_API_KEY_RETRY_AFTER_S);
            err->reason = ING_API_KEY_TOO_MANY_UNKNOWN;
            return BZ_ERR_TRANSIENT;
        }
        bz_status st = read_key(k, id, now_ms, &e, err);
        if (st != BZ_OK)
            return bz_wrap(err, "verify API key %s", id);
        remember(k, &e);
        if (!e.found)
            ing_rate_table_take(k->unknown_ids, client, ING_CLIENT_KEY_LEN, bz_monotonic_ms());
    }
    /* compare even for an unknown id, against its zero hash */
    int match = bz_api_key_matches(hash, e.hash) && e.found;
    if (!match)
        return bz_reject(err, "unauthorized", "field Authorization: invalid API key");
    if (e.revoked)
        return bz_reject(err, "revoked", "field Authorization: API key %s was revoked", id);
    touch(k, id, now_ms);
    *workspace_id = e.workspace_id;
    return BZ_OK;
}
