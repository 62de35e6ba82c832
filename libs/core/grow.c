/*
 * grow.c - the one growable array (see grow.h).
 */
#include "core/grow.h"

#include <stdint.h>
#include <stdlib.h>

bool bz_grow(void **items, size_t *cap, size_t need, size_t elem_size, size_t first_cap)
{
    if (need <= *cap)
        return true;
    size_t next = *cap ? *cap * 2 : first_cap;
    if (next < need)
        next = need;
    if (elem_size == 0 || next > SIZE_MAX / elem_size)
        return false;
    void *grown = realloc(*items, next * elem_size);
    if (!grown)
        return false;
    *items = grown;
    *cap = next;
    return true;
}
