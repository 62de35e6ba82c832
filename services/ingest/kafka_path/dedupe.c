/*
 * dedupe.c - duplicate window (see dedupe.h).
 *
 * A UUID is folded into 128 bits (hi, lo). The table has a power-of-two
 * number of slots, at least twice the ring capacity, holding ring index + 1
 * (0 = empty); collisions probe linearly and deletions shift the following
 * cluster back so no tombstones are needed.
 */
#include "kafka_path/dedupe.h"

#include <stdlib.h>

#include "core/hex.h"

typedef struct entry {
    uint64_t hi, lo;
    int64_t at_ms;
} entry;

struct ing_dedupe {
    entry *ring;
    size_t cap, head, count, pending;
    uint32_t *slots;
    size_t mask;
    int64_t window_ms;
};

static entry key_of(const char *id)
{
    entry e = {0, 0, 0};
    int digits = 0;
    for (const char *c = id; *c && digits < 32; c++) {
        if (*c == '-')
            continue;
        uint64_t *half = digits < 16 ? &e.hi : &e.lo;
        int value = bz_hex_digit_value((unsigned char)*c);
        *half = (*half << 4) | (uint64_t)(value < 0 ? 0 : value); /* ids are checked before */
        digits++;
    }
    return e;
}

static size_t hash_of(const entry *e)
{
    uint64_t h = e->hi * 0x9e3779b97f4a7c15ULL ^ e->lo * 0xc2b2ae3d27d4eb4fULL;
    return (size_t)(h ^ (h >> 29));
}

bz_status ing_dedupe_new(size_t capacity, int64_t window_ms, ing_dedupe **out, bz_error *err)
{
    if (capacity < 2 || capacity > UINT32_MAX / 4)
        return bz_fail(err, BZ_ERR_CONFIG, "dedupe window: capacity %zu out of range", capacity);
    size_t nslots = 4;
    while (nslots < capacity * 2)
        nslots *= 2;
    ing_dedupe *d = calloc(1, sizeof *d);
    if (d) {
        d->ring = calloc(capacity, sizeof *d->ring);
        d->slots = calloc(nslots, sizeof *d->slots);
    }
    if (!d || !d->ring || !d->slots) {
        ing_dedupe_free(d);
        return bz_fail(err, BZ_ERR_NOMEM, "dedupe window of %zu ids: out of memory", capacity);
    }
    d->cap = capacity;
    d->mask = nslots - 1;
    d->window_ms = window_ms;
    *out = d;
    return BZ_OK;
}

void ing_dedupe_free(ing_dedupe *d)
{
    if (!d)
        return;
    free(d->ring);
    free(d->slots);
    free(d);
}

static size_t find_slot(const ing_dedupe *d, const entry *k)
{
    for (size_t i = hash_of(k) & d->mask;; i = (i + 1) & d->mask) {
        uint32_t s = d->slots[i];
        if (s == 0)
            return i;
        const entry *e = &d->ring[s - 1];
        if (e->hi == k->hi && e->lo == k->lo)
            return i;
    }
}

static void delete_slot(ing_dedupe *d, size_t i)
{
    size_t j = i;
    for (;;) {
        j = (j + 1) & d->mask;
        if (d->slots[j] == 0)
            break;
        size_t home = hash_of(&d->ring[d->slots[j] - 1]) & d->mask;
        int stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (stays)
            continue;
        d->slots[i] = d->slots[j];
        i = j;
    }
    d->slots[i] = 0;
}

static void forget_ring_index(ing_dedupe *d, size_t idx)
{
    size_t slot = find_slot(d, &d->ring[idx]);
    if (d->slots[slot] == idx + 1)
        delete_slot(d, slot);
}

static void expire(ing_dedupe *d, int64_t now_ms)
{
    while (d->count > d->pending && d->ring[d->head].at_ms < now_ms - d->window_ms) {
        forget_ring_index(d, d->head);
        d->head = (d->head + 1) % d->cap;
        d->count--;
    }
}

bool ing_dedupe_seen(ing_dedupe *d, const char *event_id, int64_t now_ms)
{
    expire(d, now_ms);
    entry k = key_of(event_id);
    return d->slots[find_slot(d, &k)] != 0;
}

void ing_dedupe_add(ing_dedupe *d, const char *event_id, int64_t now_ms)
{
    expire(d, now_ms);
    if (d->count == d->cap) {
        if (d->pending == d->count)
            return;
        forget_ring_index(d, d->head);
        d->head = (d->head + 1) % d->cap;
        d->count--;
    }
    entry k = key_of(event_id);
    size_t slot = find_slot(d, &k);
    if (d->slots[slot] != 0)
        return;
    size_t idx = (d->head + d->count) % d->cap;
    k.at_ms = now_ms;
    d->ring[idx] = k;
    d->slots[slot] = (uint32_t)(idx + 1);
    d->count++;
    d->pending++;
}

void ing_dedupe_commit(ing_dedupe *d)
{
    d->pending = 0;
}

void ing_dedupe_rollback(ing_dedupe *d)
{
    while (d->pending > 0) {
        size_t tail = (d->head + d->count - 1) % d->cap;
        forget_ring_index(d, tail);
        d->count--;
        d->pending--;
    }
}

size_t ing_dedupe_size(const ing_dedupe *d)
{
    return d->count;
}
