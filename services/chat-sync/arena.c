/*
 * arena.c - bump allocator, hash map and pointer vector (see arena.h).
 */
#include "arena.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "core/hash.h"

#define BLOCK_MIN (64 * 1024)

struct cs_arena_block {
    cs_arena_block *next;
    size_t used, cap;
    _Alignas(16) char data[];
};

struct cs_map_entry {
    cs_map_entry *next;
    uint64_t hash;
    const char *key;
    void *value;
};

void *cs_arena_alloc(cs_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    cs_arena_block *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > BLOCK_MIN ? n : BLOCK_MIN;
        b = malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->cap = cap;
        b->used = 0;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

char *cs_arena_strndup(cs_arena *a, const char *s, size_t n)
{
    char *out = cs_arena_alloc(a, n + 1);
    if (out && n)
        memcpy(out, s, n);
    return out;
}

char *cs_arena_strdup(cs_arena *a, const char *s)
{
    if (!s)
        s = "";
    return cs_arena_strndup(a, s, strlen(s));
}

char *cs_arena_printf(cs_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (len < 0)
        return NULL;
    char *out = cs_arena_alloc(a, (size_t)len + 1);
    if (!out)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(out, (size_t)len + 1, fmt, ap);
    va_end(ap);
    return out;
}

void cs_arena_free(cs_arena *a)
{
    while (a->head) {
        cs_arena_block *next = a->head->next;
        free(a->head);
        a->head = next;
    }
}


void cs_map_init(cs_map *m, cs_arena *arena)
{
    memset(m, 0, sizeof *m);
    m->arena = arena;
}

static int grow(cs_map *m)
{
    size_t nb = m->nbuckets ? m->nbuckets * 2 : 64;
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): the elements are pointers */
    cs_map_entry **buckets = calloc(nb, sizeof *buckets);
    if (!buckets)
        return -1;
    for (size_t i = 0; i < m->nbuckets; i++) {
        cs_map_entry *e = m->buckets[i];
        while (e) {
            cs_map_entry *next = e->next;
            e->next = buckets[e->hash % nb];
            buckets[e->hash % nb] = e;
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = buckets;
    m->nbuckets = nb;
    return 0;
}

static cs_map_entry *find(const cs_map *m, const char *key, uint64_t h)
{
    if (!m->nbuckets)
        return NULL;
    for (cs_map_entry *e = m->buckets[h % m->nbuckets]; e; e = e->next)
        if (e->hash == h && strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

int cs_map_put(cs_map *m, const char *key, void *value)
{
    uint64_t h = bz_hash_string(key);
    cs_map_entry *e = find(m, key, h);
    if (e) {
        e->value = value;
        return 0;
    }
    if ((m->n + 1 > 2 * m->nbuckets) && grow(m) != 0)
        return -1;
    e = cs_arena_alloc(m->arena, sizeof *e);
    if (!e || !(e->key = cs_arena_strdup(m->arena, key)))
        return -1;
    e->hash = h;
    e->value = value;
    e->next = m->buckets[h % m->nbuckets];
    m->buckets[h % m->nbuckets] = e;
    m->n++;
    return 0;
}

void *cs_map_get(const cs_map *m, const char *key)
{
    cs_map_entry *e = find(m, key, bz_hash_string(key));
    return e ? e->value : NULL;
}

void cs_map_free(cs_map *m)
{
    free(m->buckets);
    m->buckets = NULL;
    m->nbuckets = m->n = 0;
}

int cs_vec_push(cs_vec *v, void *p)
{
    if (!bz_grow((void **)&v->items, &v->cap, v->n + 1, sizeof(void *), 32))
        return -1;
    v->items[v->n++] = p;
    return 0;
}

void cs_vec_free(cs_vec *v)
{
    free(v->items);
    v->items = NULL;
    v->n = v->cap = 0;
}
