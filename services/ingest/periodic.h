/*
 * periodic.h - a thread that runs one task at once and then again and
 * again, each run saying how long to wait before the next, until stopped:
 * the PostgreSQL probe (pg_probe.c) and the gateway directory's refresher
 * (gateway_auth.c). Stopping wakes the thread at once; a run in progress
 * is finished first.
 */
#ifndef ING_PERIODIC_H
#define ING_PERIODIC_H

#include <stdint.h>

#include "core/status.h"

/* One run; returns the milliseconds to wait before the next. */
typedef int64_t (*ing_periodic_fn)(void *ctx);

typedef struct ing_periodic ing_periodic;

/* Start the thread; what names it in errors. Stop with ing_periodic_stop. */
bz_status ing_periodic_start(const char *what, ing_periodic_fn run, void *ctx, ing_periodic **out,
                            bz_error *err);

/* Wake the thread, wait for it to end, free it. NULL is a no-op. */
void ing_periodic_stop(ing_periodic *p);

#endif
