/*
 * ingest_metrics.h - the metrics ingest exports (blazz_ingest_*), shared by
 * the HTTP API and the Kafka pipeline. Registered once at start-up; every
 * handle is owned by the registry.
 *
 *   blazz_ingest_received_total{path}          events seen (http, meta, kafka)
 *   blazz_ingest_accepted_total{path}          http/meta: stored on chat.sync (or dead-lettered);
 *                                              kafka: produced to chat.sync
 *   blazz_ingest_rejected_total{path,reason}   refused at the edge (4xx) or on the Kafka path
 *   blazz_ingest_dead_lettered_total{reason}   written to wa.inbound.dlq
 *   blazz_ingest_meta_unhandled_fields_total{field}  changes of Meta notifications
 *                                              dead-lettered unmapped (unhandled_field): one
 *                                              of the fields Meta documents that this build
 *                                              does not map, else "other"
 *   blazz_ingest_duplicates_total              dropped by the duplicate window
 *   blazz_ingest_http_request_seconds          request latency, every endpoint
 *   blazz_ingest_http_connections              open connections of the public listener
 *   blazz_ingest_http_buffered_bytes           bytes held by request bodies
 *   blazz_ingest_http_accept_queue             connections waiting to be accepted
 *   blazz_ingest_http_refused_total{reason}    per_address: connection over its address's
 *                                              limit; address_share: unauthenticated body
 *                                              over its address's share (503);
 *                                              buffer_full: body over the buffered-bytes
 *                                              bound (503)
 *   blazz_ingest_http_cut_total{phase}         connections cut at a deadline: idle (no
 *                                              request started), request (not complete)
 *   blazz_ingest_txn_commit_seconds            Kafka transaction commit latency
 *   blazz_ingest_accepted_to_committed_seconds an event's 202 (its raw record's timestamp)
 *                                              to its chat.sync record committed
 *   blazz_ingest_txn_aborts_total              transactions aborted (and rewound)
 *   blazz_ingest_txn_events                    events per committed transaction
 *   blazz_ingest_session_queries_total         session lookups that reached PostgreSQL
 *   blazz_ingest_gateway_hmacs_total           HMACs computed over request bodies to verify
 *                                              gateways' signatures
 *   blazz_ingest_gateway_directory_reads_total{outcome}  reads of the gateways' keys and
 *                                              session owners (ok, failed)
 */
#ifndef ING_METRICS_H
#define ING_METRICS_H

#include "core/metrics.h"
#include "core/status.h"

typedef struct ing_metrics {
    bz_counter_family *received;
    bz_counter_family *accepted;
    bz_counter_family *rejected;
    bz_counter_family *dead_lettered;
    bz_counter_family *meta_unhandled_fields;
    bz_counter *duplicates;
    bz_histogram *http_seconds;
    bz_gauge *http_connections;
    bz_gauge *http_buffered_bytes;
    bz_gauge *http_accept_queue;
    bz_counter_family *http_refused;
    bz_counter_family *http_cut;
    bz_histogram *commit_seconds;
    bz_histogram *accepted_to_committed;
    bz_counter *aborts;
    bz_histogram *txn_events;
    bz_counter *session_queries;
    bz_counter *gateway_hmacs;
    bz_counter_family *gateway_directory_reads;
} ing_metrics;

bz_status ing_metrics_register(bz_metrics *reg, ing_metrics *m, bz_error *err);

#endif
