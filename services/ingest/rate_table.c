/*
 * rate_table.c - token buckets per key (see rate_table.h): a chained hash
 * map under one mutex.
 */
#include "rate_table.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "core/token_bucket.h"

#define NBUCKETS 1024
#define WAIT_NO_ROOM_MS 1000

typedef struct slot {
    struct slot *next;
    bz_token_bucket bucket;
    size_t len;
    uint8_t key[]; /* len bytes */
} slot;

struct ing_rate_table {
    double rate, burst;
    size_t max_keys, count;
    pthread_mutex_t mu;
    slot *slots[NBUCKETS];
};

bz_status ing_rate_table_new(double rate, double burst, size_t max_keys, ing_rate_table **out,
                             bz_error *err)
{
    ing_rate_table *t = calloc(1, sizeof *t);
    if (!t)
        return bz_fail(err, BZ_ERR_NOMEM, "rate table: out of memory");
    t->rate = rate;
    t->burst = burst;
    t->max_keys = max_keys;
    pthread_mutex_init(&t->mu, NULL);
    *out = t;
    return BZ_OK;
}

/* A bucket full again: nobody spent from it lately. */
static int is_rested(slot *s, int64_t now_ms)
{
    bz_token_bucket_wait_ms(&s->bucket, now_ms); /* brings its tokens up to date */
    return s->bucket.tokens >= s->bucket.burst;
}

/* Drop every slot, or only the rested ones. */
static void forget(ing_rate_table *t, int only_rested, int64_t now_ms)
{
    for (size_t i = 0; i < NBUCKETS; i++)
        for (slot **at = &t->slots[i]; *at;) {
            slot *s = *at;
            if (only_rested && !is_rested(s, now_ms)) {
                at = &s->next;
                continue;
            }
            *at = s->next;
            free(s);
            t->count--;
        }
}

void ing_rate_table_free(ing_rate_table *t)
{
    if (!t)
        return;
    forget(t, 0, 0);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

static size_t bucket_of(const uint8_t *key, size_t len)
{
    return (size_t)(bz_hash_bytes(key, len) % NBUCKETS);
}

/* key's slot, made full when new; NULL when there is no room (under mu). */
static slot *slot_of(ing_rate_table *t, const void *key, size_t len, int64_t now_ms)
{
    if (len > ING_RATE_KEY_MAX)
        len = ING_RATE_KEY_MAX;
    size_t b = bucket_of(key, len);
    for (slot *s = t->slots[b]; s; s = s->next)
        if (s->len == len && memcmp(s->key, key, len) == 0)
            return s;
    if (t->count >= t->max_keys)
        forget(t, 1, now_ms);
    slot *s = t->count < t->max_keys ? calloc(1, sizeof *s + len) : NULL;
    if (!s)
        return NULL;
    memcpy(s->key, key, len);
    s->len = len;
    bz_token_bucket_init(&s->bucket, t->rate, t->burst, now_ms);
    s->next = t->slots[b];
    t->slots[b] = s;
    t->count++;
    return s;
}

int64_t ing_rate_table_wait_ms(ing_rate_table *t, const void *key, size_t len, int64_t now_ms)
{
    pthread_mutex_lock(&t->mu);
    slot *s = slot_of(t, key, len, now_ms);
    int64_t wait = s ? bz_token_bucket_wait_ms(&s->bucket, now_ms) : WAIT_NO_ROOM_MS;
    pthread_mutex_unlock(&t->mu);
    return wait;
}

int64_t ing_rate_table_take(ing_rate_table *t, const void *key, size_t len, int64_t now_ms)
{
    pthread_mutex_lock(&t->mu);
    slot *s = slot_of(t, key, len, now_ms);
    int64_t wait = WAIT_NO_ROOM_MS;
    if (s)
        wait = bz_token_bucket_try_take(&s->bucket, now_ms)
                   ? 0
                   : bz_token_bucket_wait_ms(&s->bucket, now_ms);
    pthread_mutex_unlock(&t->mu);
    return wait;
}
