/*
 * sender.h - the send loop thread (see sender.c for how it works).
 */
#ifndef CMP_SENDER_H
#define CMP_SENDER_H

#include "campaign_sender.h"

typedef struct cmp_sender cmp_sender;

/* Start the thread (scheduler always; the send loop when sender.enabled).
 * ctx and dsn must outlive the sender. Free with cmp_sender_stop. */
bz_status cmp_sender_start(const cmp_ctx *ctx, const char *dsn, cmp_sender **out, bz_error *err);

/* Ask the thread to finish its current transaction, join it, free all. */
void cmp_sender_stop(cmp_sender *s);

/* 1 while this instance holds the sender lock (thread-safe). */
int cmp_sender_is_leader(const cmp_sender *s);

#endif
