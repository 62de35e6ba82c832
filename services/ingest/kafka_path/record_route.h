/*
 * record_route.h - what the transactional pipeline (txn_pipeline.c) does
 * with one raw inbound record inside its open transaction: route it to
 * chat.sync under its owner's workspace, or dead-letter it
 * (record_route.c says how). The pipeline owns the transaction; this part
 * only queues records in it.
 */
#ifndef ING_RECORD_ROUTE_H
#define ING_RECORD_ROUTE_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "events/sync_route.h"
#include "kafka/producer.h"
#include "kafka_path/pipeline_config.h"

typedef enum ing_record_outcome {
    ING_RECORD_HANDLED,       /* a chat.sync record was queued, or a duplicate dropped */
    ING_RECORD_DEAD_LETTERED, /* a dead letter was queued instead */
    ING_RECORD_RETRY_LATER,   /* PostgreSQL could not answer: abort, rewind, back off */
    ING_RECORD_BROKEN         /* a produce failed: the transaction is unusable */
} ing_record_outcome;

typedef struct ing_record_router {
    const ing_pipeline_config *cfg; /* borrowed */
    bz_producer *producer;          /* the open transaction's (borrowed, set by the pipeline) */
    ing_sync_record record;         /* the record being produced, owned */
} ing_record_router;

/* Route m within r->producer's open transaction. */
ing_record_outcome ing_record_route(ing_record_router *r, const rd_kafka_message_t *m);

/* Free what r owns (its buffer). */
void ing_record_router_clear(ing_record_router *r);

#endif
