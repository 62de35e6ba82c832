/*
 * arena.h - per-batch memory for chat-sync: a bump allocator and a string
 * keyed hash map whose entries live in it.
 *
 * Applying a batch builds many small objects (row snapshots, keys, copies of
 * strings read from PostgreSQL) that all die together when the batch is done.
 * Allocating them from one arena makes the release a single call and keeps
 * the error paths free of per-object cleanup. The map is a chained hash table
 * (FNV-1a) whose bucket array is the only separate allocation; it doubles
 * when the load factor passes 2.
 */
#ifndef CS_ARENA_H
#define CS_ARENA_H

#include <stddef.h>
#include <stdint.h>

typedef struct cs_arena_block cs_arena_block;

typedef struct cs_arena {
    cs_arena_block *head;
} cs_arena;

/* Zeroed memory that lives until cs_arena_free; NULL when out of memory. */
void *cs_arena_alloc(cs_arena *a, size_t n);

/* Copy of s (NULL reads as ""); NULL when out of memory. */
char *cs_arena_strdup(cs_arena *a, const char *s);

/* Copy of the first n bytes of s, NUL-terminated. */
char *cs_arena_strndup(cs_arena *a, const char *s, size_t n);

/* printf into the arena; NULL when out of memory. */
char *cs_arena_printf(cs_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Release every block. The arena may be reused afterwards. */
void cs_arena_free(cs_arena *a);

typedef struct cs_map_entry cs_map_entry;

typedef struct cs_map {
    cs_map_entry **buckets;
    size_t nbuckets;
    size_t n;
    cs_arena *arena; /* where keys and entries are allocated */
} cs_map;

void cs_map_init(cs_map *m, cs_arena *arena);

/* Insert or replace key -> value (key is copied). 0, or -1 when out of memory. */
int cs_map_put(cs_map *m, const char *key, void *value);

/* The value stored under key, or NULL. */
void *cs_map_get(const cs_map *m, const char *key);

/* Free the bucket array (the entries go with the arena). */
void cs_map_free(cs_map *m);

/* A growable array of pointers (heap, not arena: it may grow a lot). */
typedef struct cs_vec {
    void **items;
    size_t n, cap;
} cs_vec;

/* Append p; 0, or -1 when out of memory. */
int cs_vec_push(cs_vec *v, void *p);
void cs_vec_free(cs_vec *v);

#endif
