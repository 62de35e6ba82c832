/*
 * ingest_metrics.c - registration of ingest's metrics (see ingest_metrics.h).
 */
#include "ingest_metrics.h"

static const double txn_size_buckets[] = {1, 10, 100, 500, 1000, 2000, 5000, 10000, 50000};

bz_status ing_metrics_register(bz_metrics *reg, ing_metrics *m, bz_error *err)
{
    static const char *const path[] = {"path", NULL};
    static const char *const path_reason[] = {"path", "reason", NULL};
    static const char *const reason[] = {"reason", NULL};
    static const char *const phase[] = {"phase", NULL};
    static const char *const outcome[] = {"outcome", NULL};
    bz_status st = bz_metrics_counter_family(
        reg, &(bz_metric_def){.name = "blazz_ingest_received_total",
                              .help = "Inbound events received, by path.", .label_names = path},
        &m->received, err);
    if (st == BZ_OK)
        st = bz_metrics_counter_family(
            reg, &(bz_metric_def){.name = "blazz_ingest_accepted_total",
                                  .help = "Inbound events accepted, by path.", .label_names = path},
            &m->accepted, err);
    if (st == BZ_OK)
        st = bz_metrics_counter_family(
            reg, &(bz_metric_def){.name = "blazz_ingest_rejected_total",
                                  .help = "Inbound events rejected, by path and reason.",
                                  .label_names = path_reason},
            &m->rejected, err);
    if (st == BZ_OK)
        st = bz_metrics_counter_family(
            reg, &(bz_metric_def){.name = "blazz_ingest_dead_lettered_total",
                                  .help = "Raw events dead-lettered, by reason.",
                                  .label_names = reason},
            &m->dead_lettered, err);
    if (st == BZ_OK)
        st = bz_metrics_counter(reg, BZ_METRIC("blazz_ingest_duplicates_total",
                                               "Events dropped as duplicates of a recent event_id."),
                                &m->duplicates, err);
    if (st == BZ_OK)
        st = bz_metrics_histogram(reg, BZ_METRIC("blazz_ingest_http_request_seconds",
                                                 "HTTP request latency."),
                                  &m->http_seconds, err);
    if (st == BZ_OK)
        st = bz_metrics_gauge(reg, BZ_METRIC("blazz_ingest_http_connections",
                                             "Open connections of the public HTTP listener."),
                              &m->http_connections, err);
    if (st == BZ_OK)
        st = bz_metrics_gauge(reg, BZ_METRIC("blazz_ingest_http_buffered_bytes",
                                             "Bytes held by HTTP request bodies."),
                              &m->http_buffered_bytes, err);
    if (st == BZ_OK)
        st = bz_metrics_gauge(reg, BZ_METRIC("blazz_ingest_http_accept_queue",
                                             "Connections waiting to be accepted."),
                              &m->http_accept_queue, err);
    if (st == BZ_OK)
        st = bz_metrics_counter_family(
            reg, &(bz_metric_def){.name = "blazz_ingest_http_refused_total",
                                  .help = "HTTP connections or requests refused by a limit.",
                                  .label_names = reason},
            &m->http_refused, err);
    if (st == BZ_OK)
        st = bz_metrics_counter_family(
            reg, &(bz_metric_def){.name = "blazz_ingest_http_cut_total",
                                  .help = "HTTP connections cut at a deadline, by phase.",
                                  .label_names = phase},
            &m->http_cut, err);
    if (st == BZ_OK)
        st = bz_metrics_histogram(reg, BZ_METRIC("blazz_ingest_txn_commit_seconds",
                                                 "Kafka transaction commit latency."),
                                  &m->commit_seconds, err);
    if (st == BZ_OK)
        st = bz_metrics_histogram(reg, BZ_METRIC("blazz_ingest_accepted_to_committed_seconds",
                                                 "From an event's 202 to its chat.sync record "
                                                 "committed."),
                                  &m->accepted_to_committed, err);
    if (st == BZ_OK)
        st = bz_metrics_counter(reg, BZ_METRIC("blazz_ingest_txn_aborts_total",
                                               "Kafka transactions aborted and rewound."),
                                &m->aborts, err);
    if (st == BZ_OK)
        st = bz_metrics_histogram(
            reg, &(bz_metric_def){.name = "blazz_ingest_txn_events",
                                  .help = "Raw events per committed transaction.",
                                  .buckets = txn_size_buckets,
                                  .n_buckets = sizeof txn_size_buckets / sizeof txn_size_buckets[0]},
            &m->txn_events, err);
    if (st == BZ_OK)
        st = bz_metrics_counter(reg, BZ_METRIC("blazz_ingest_session_queries_total",
                                               "Session lookups that reached PostgreSQL."),
                                &m->session_queries, err);
    if (st == BZ_OK)
        st = bz_metrics_counter(reg, BZ_METRIC("blazz_ingest_gateway_hmacs_total",
                                               "HMACs computed over request bodies to verify "
                                               "gateways' signatures."),
                                &m->gateway_hmacs, err);
    if (st == BZ_OK)
        st = bz_metrics_counter_family(
            reg, &(bz_metric_def){.name = "blazz_ingest_gateway_directory_reads_total",
                                  .help = "Reads of the gateways' keys and session owners, by "
                                          "outcome.",
                                  .label_names = outcome},
            &m->gateway_directory_reads, err);
    return st;
}
