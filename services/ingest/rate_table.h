/*
 * rate_table.h - one token bucket (core/token_bucket.h) per key, for the
 * rates ingest keeps per caller: a workspace's CRM requests (crm_api.c),
 * a client address's lookups of unknown API keys (api_keys.c), a verified
 * gateway's requests (gateway_rate.c).
 *
 * A key is up to ING_RATE_KEY_MAX bytes (a longer one is cut there, so
 * every caller's keys must fit: a gateway id of BZ_GATEWAY_ID_MAX does);
 * each slot holds only its key's bytes. Its bucket starts full on first
 * use. The table holds at most max_keys buckets: when full, it forgets the
 * buckets that are full again (keys nobody spent lately), and a new key
 * that still finds no room is refused as if its bucket were empty, so a
 * flood of new keys cannot grow it without bound. Thread-safe: one mutex.
 */
#ifndef ING_RATE_TABLE_H
#define ING_RATE_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define ING_RATE_KEY_MAX 64

typedef struct ing_rate_table ing_rate_table;

/* rate tokens a second, burst at once, per key. Free with
 * ing_rate_table_free. */
bz_status ing_rate_table_new(double rate, double burst, size_t max_keys, ing_rate_table **out,
                             bz_error *err);
void ing_rate_table_free(ing_rate_table *t);

/* Milliseconds until key has a token (0: it has one now), taking none.
 * Monotonic now_ms. */
int64_t ing_rate_table_wait_ms(ing_rate_table *t, const void *key, size_t len, int64_t now_ms);

/* Take one of key's tokens: 0 when taken, else the milliseconds until one
 * will be there. */
int64_t ing_rate_table_take(ing_rate_table *t, const void *key, size_t len, int64_t now_ms);

#endif
