/*
 * text_head.c - the first bytes of a stream as text (see text_head.h).
 */
#include "core/text_head.h"

#include <string.h>

void bz_text_head_init(bz_text_head *h, char *buf, size_t cap)
{
    h->text = buf;
    h->cap = cap;
    h->len = 0;
    buf[0] = '\0';
}

size_t bz_text_head_keep(char *data, size_t size, size_t n, void *head)
{
    bz_text_head *h = head;
    size_t len = size * n;
    size_t room = h->cap - 1 - h->len;
    size_t take = len < room ? len : room;
    memcpy(h->text + h->len, data, take);
    h->len += take;
    h->text[h->len] = '\0';
    return len;
}
