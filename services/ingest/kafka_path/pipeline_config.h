/*
 * pipeline_config.h - the settings of the Kafka path (txn_pipeline.h):
 * read by the pipeline, which owns the consumer and the transaction, and
 * by the routing of each record inside it (record_route.h), so they stand
 * apart from both.
 */
#ifndef ING_PIPELINE_CONFIG_H
#define ING_PIPELINE_CONFIG_H

#include <stdint.h>

#include "events/sessions.h"
#include "ingest_metrics.h"
#include "kafka_path/dedupe.h"

typedef struct ing_pipeline_config {
    const char *brokers;
    const char *group_id;
    const char *transactional_id;
    const char *topic_prefix; /* to recognize gateway topics */
    const char *raw_topic;  /* full names, prefix applied */
    const char *meta_gateway; /* the gateway id of Meta's events (a replayed dead letter's) */
    const char *sync_topic;
    const char *dlq_topic;
    int txn_max_events;
    int txn_max_ms;
    int transaction_timeout_ms;
    int session_timeout_ms;      /* consumer group session */
    int fetch_wait_ms;           /* broker holds a fetch this long to batch records */
    const char *default_cc;
    int64_t max_future_ms;
    ing_sessions *sessions;       /* borrowed */
    ing_dedupe *dedupe;           /* borrowed */
    ing_metrics *metrics;  /* borrowed, may be NULL */
} ing_pipeline_config;

#endif
