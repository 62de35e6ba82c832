/*
 * grow.h - the one growable array: room for one more element, by doubling.
 *
 * Many owners keep a plain array with a count and a capacity (ACL lists,
 * job lists, slots, heaps). They all grow it the same way, so the growth
 * lives here: the caller keeps its typed pointer and its count, and asks
 * for room before it stores.
 */
#ifndef BZ_CORE_GROW_H
#define BZ_CORE_GROW_H

#include <stdbool.h>
#include <stddef.h>

/* Make *items hold at least need elements of elem_size bytes: unchanged
 * when *cap already does, else reallocated to the larger of need and
 * double *cap (first_cap when empty). On failure (out of memory, or a size
 * that would overflow) *items and *cap are left as they were and false is
 * returned. *items stays the caller's to free. */
bool bz_grow(void **items, size_t *cap, size_t need, size_t elem_size, size_t first_cap);

#endif
