/*
 * report.h - the counters of a run and the reports made from them.
 *
 * Both threads (traffic and outbound answering) update one bz_sim_stats, so
 * every counter is a C11 atomic. Send latency (hand-over to broker ack, or
 * request to HTTP answer) goes into a log-scale histogram whose buckets are
 * 10% apart, enough for p50 / p99 without keeping every sample.
 *
 * Three outputs: a key=value status file rewritten while the run goes on
 * (for scripts/run.sh's progress line), and at the end a readable text
 * report or a JSON one (--json).
 */
#ifndef BZ_SIM_REPORT_H
#define BZ_SIM_REPORT_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include "core/status.h"
#include "sim.h"
#include "world.h"

#define BZ_SIM_LATENCY_BUCKETS 192
#define BZ_SIM_HTTP_STATUS_MAX 600

typedef struct bz_sim_stats {
    atomic_uint_fast64_t sent[BZ_SIM_KIND_COUNT];
    atomic_uint_fast64_t accepted;
    atomic_uint_fast64_t http_status[BZ_SIM_HTTP_STATUS_MAX]; /* final non-accepted answers */
    atomic_uint_fast64_t transport_errors; /* http: no answer after every retry */
    atomic_uint_fast64_t kafka_errors;     /* kafka: delivery failed */
    atomic_uint_fast64_t retries;
    atomic_uint_fast64_t latency[BZ_SIM_LATENCY_BUCKETS];
    atomic_uint_fast64_t latency_max_us;
    atomic_uint_fast64_t outbound_received;   /* SendMessages read */
    atomic_uint_fast64_t outbound_duplicates; /* ... whose idempotency key was seen before */
    atomic_uint_fast64_t outbound_failed;     /* ... answered FAILED */
    atomic_uint_fast64_t outbound_reads;      /* MARK_READ commands honoured */
    atomic_uint_fast64_t receipts_pending;    /* scheduled receipts not yet published */
    atomic_uint_fast64_t media_uploaded;       /* files delivered with POST /v1/gateway/media */
    atomic_uint_fast64_t media_bytes_uploaded;
    atomic_uint_fast64_t media_upload_failed;  /* ... refused or unanswered: sent as references */
    int64_t started_ms;
    int64_t ended_ms;
} bz_sim_stats;

void bz_sim_stats_init(bz_sim_stats *s);

void bz_sim_stats_count_sent(bz_sim_stats *s, bz_sim_kind kind);
void bz_sim_stats_count_accepted(bz_sim_stats *s, int64_t latency_us);
void bz_sim_stats_count_http_rejected(bz_sim_stats *s, long status);

uint64_t bz_sim_stats_total_sent(const bz_sim_stats *s);
uint64_t bz_sim_stats_total_rejected(const bz_sim_stats *s);
/* Events sent whose outcome is not known yet. */
uint64_t bz_sim_stats_in_flight(const bz_sim_stats *s);

/* Latency quantile q in (0, 1] in milliseconds (bucket upper bound); 0 when
 * nothing was measured. */
double bz_sim_stats_latency_ms(const bz_sim_stats *s, double q);

/* Rewrite path atomically (temporary file + rename) with the counters as
 * key=value lines and phase=<phase>. */
bz_status bz_sim_report_write_status(const char *path, const bz_sim_stats *s, const char *phase,
                                     bz_error *err);

void bz_sim_report_print_text(FILE *out, const bz_sim_stats *s, const bz_sim_options *o,
                              const bz_sim_world *w);

bz_status bz_sim_report_print_json(FILE *out, const bz_sim_stats *s, const bz_sim_options *o,
                                   const bz_sim_world *w, bz_error *err);

#endif
