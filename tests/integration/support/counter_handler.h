/*
 * counter_handler.h - the exactly-once consumer handler used by the crash
 * tests and the benchmark: each record (a blazz.v1.Envelope) inserts one row
 * (event_id, partition, offset) into <table>_applied and adds one to
 * <table>_counter.n. A lost record shows as a missing row, a duplicate as a
 * repeated event_id and an inflated counter. An event_id starting with
 * "poison-" is rejected at apply time, to exercise the isolation of a bad
 * record inside a batch.
 */
#ifndef COUNTER_HANDLER_H
#define COUNTER_HANDLER_H

#include <libpq-fe.h>

#include "kafka/eo_consumer.h"

typedef struct counter_ctx {
    char insert_sql[256];
    char count_sql[256];
} counter_ctx;

extern const bz_eo_handler counter_handler;

/* Fill ctx for the tables <table>_applied and <table>_counter. */
void counter_ctx_init(counter_ctx *ctx, const char *table);

/* Create (or re-create) both tables with the counter at zero. */
int counter_tables_create(PGconn *conn, const char *table);

#endif
