/*
 * text_head.h - the first bytes of a stream, kept as text, the rest dropped.
 *
 * An HTTP answer is read for a report or a log line (a probe's reply, the
 * reason a request was refused), where its start says what went wrong and
 * the rest would only cost memory. bz_text_head_keep has the shape of a
 * libcurl CURLOPT_WRITEFUNCTION (with the bz_text_head as CURLOPT_WRITEDATA)
 * and takes every byte, so the transfer itself never fails for a long body.
 */
#ifndef BZ_CORE_TEXT_HEAD_H
#define BZ_CORE_TEXT_HEAD_H

#include <stddef.h>

typedef struct bz_text_head {
    char *text; /* the caller's buffer: always NUL-terminated */
    size_t cap; /* its size, at least 1 */
    size_t len;
} bz_text_head;

/* Keep up to cap - 1 bytes in buf, starting empty. */
void bz_text_head_init(bz_text_head *h, char *buf, size_t cap);

/* Append what still fits of size * n bytes at data to the bz_text_head at
 * head; returns size * n (all of it taken). */
size_t bz_text_head_keep(char *data, size_t size, size_t n, void *head);

#endif
