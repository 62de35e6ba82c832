/*
 * metrics.h - a Prometheus metrics registry that many threads update at once.
 *
 * A service creates one registry, registers its metrics at start-up (each
 * registration hands back a handle the service keeps) and updates them from
 * any thread. Updates are lock-free C11 atomics: counters are 64-bit
 * integers, gauges and histogram sums are doubles kept as bit patterns and
 * changed with compare-and-swap, histogram buckets are atomic counters.
 *
 * A service declares its metrics in one table next to the struct of handles
 * it fills, and registers the table at once:
 *
 *   bz_counter *consumed;
 *   bz_counter_family *dead;
 *   bz_histogram *apply_seconds;
 *   const bz_metric_decl decls[] = {
 *       {.def = {.name = "blazz_consumed_total", .help = "Messages consumed."},
 *        .counter = &consumed},
 *       {.def = {.name = "blazz_dead_lettered_total", .help = "Messages dead-lettered.",
 *                .label_names = (const char *const[]){"reason", NULL}},
 *        .counters = &dead},
 *       {.def = {.name = "blazz_apply_seconds", .help = "Batch apply latency."},
 *        .histogram = &apply_seconds},
 *   };
 *   if (BZ_METRICS_DECLARE(reg, decls, &err) != BZ_OK)
 *       return err.code;
 *   ...
 *   bz_counter_inc(consumed);
 *   bz_counter_inc(bz_counter_family_with(dead, "decode_error"));
 *   bz_histogram_observe(apply_seconds, bz_metrics_clock() - t0);
 *
 * Families are metrics with label names whose children (one per combination
 * of label values) are created on first use. A family has a fixed number of
 * children (BZ_METRICS_FAMILY_MAX, or .max_children); lookups scan them
 * without a lock, only creating a child takes the family's mutex. When the
 * table is full, further label combinations share one child whose label
 * values are all "other", so a runaway label cannot eat memory.
 *
 * The registry also carries process_resident_memory_bytes and
 * process_start_time_seconds, refreshed from /proc when rendered.
 *
 * Names follow Prometheus rules: metric [a-zA-Z_:][a-zA-Z0-9_:]*, label
 * [a-zA-Z_][a-zA-Z0-9_]* not starting with "__"; "le" is reserved for
 * histograms. A name may be registered once per registry.
 */
#ifndef BZ_METRICS_H
#define BZ_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define BZ_METRICS_FAMILY_MAX 64
#define BZ_METRICS_MAX_LABELS 4

typedef struct bz_metrics bz_metrics;
typedef struct bz_counter bz_counter;
typedef struct bz_gauge bz_gauge;
typedef struct bz_histogram bz_histogram;
typedef struct bz_counter_family bz_counter_family;
typedef struct bz_gauge_family bz_gauge_family;
typedef struct bz_histogram_family bz_histogram_family;

typedef struct bz_metric_def {
    const char *name;
    const char *help;
    /* Labels with fixed values on every sample: {"name", "value", ..., NULL}. */
    const char *const *const_labels;
    /* Families only: {"topic", "reason", NULL}, at most BZ_METRICS_MAX_LABELS. */
    const char *const *label_names;
    /* Histograms only: finite, strictly increasing upper bounds; +Inf is
     * implied. NULL selects the default latency buckets, 31 from 0.5 ms to
     * 10 s (metrics.c). */
    const double *buckets;
    size_t n_buckets;
    /* Families only: child capacity; 0 selects BZ_METRICS_FAMILY_MAX. */
    size_t max_children;
} bz_metric_def;

/* The common case: a plain metric with a name and help text only. Use a
 * designated initializer (as above) for anything more; positional ones trip
 * -Wmissing-field-initializers. */
#define BZ_METRIC(metric_name, help_text) (&(bz_metric_def){.name = (metric_name), .help = (help_text)})

/* Create an empty registry (plus the process metrics). *out is owned by the
 * caller and released with bz_metrics_free, which also frees every handle
 * registered in it. */
bz_status bz_metrics_new(bz_metrics **out, bz_error *err);
void bz_metrics_free(bz_metrics *reg);

/* Registration. The def and its strings are copied. On success *out is a
 * handle owned by the registry; on failure (bad name, duplicate, bad buckets,
 * out of memory) *out is NULL and err says which metric and why.
 * Registration is thread-safe but meant for start-up. */
bz_status bz_metrics_counter(bz_metrics *reg, const bz_metric_def *def, bz_counter **out,
                             bz_error *err);
bz_status bz_metrics_gauge(bz_metrics *reg, const bz_metric_def *def, bz_gauge **out,
                           bz_error *err);
bz_status bz_metrics_histogram(bz_metrics *reg, const bz_metric_def *def, bz_histogram **out,
                               bz_error *err);
bz_status bz_metrics_counter_family(bz_metrics *reg, const bz_metric_def *def,
                                    bz_counter_family **out, bz_error *err);
bz_status bz_metrics_gauge_family(bz_metrics *reg, const bz_metric_def *def,
                                  bz_gauge_family **out, bz_error *err);
bz_status bz_metrics_histogram_family(bz_metrics *reg, const bz_metric_def *def,
                                      bz_histogram_family **out, bz_error *err);

/* One metric of a service's table: its definition and where its handle goes.
 * Exactly one handle pointer is set, and its field says the metric's kind
 * (a plural for a family), so the compiler checks each handle's type. */
typedef struct bz_metric_decl {
    bz_metric_def def;
    bz_counter **counter;
    bz_gauge **gauge;
    bz_histogram **histogram;
    bz_counter_family **counters;
    bz_gauge_family **gauges;
    bz_histogram_family **histograms;
} bz_metric_decl;

/* Register the n declarations of decls in their order (the order of the
 * rendered text), each as the bz_metrics_* call of its kind would. The first
 * failure stops: err names its metric, and a declaration with no handle or
 * more than one is BZ_ERR_INTERNAL. Handles of the metrics registered before
 * it stay set (they belong to the registry). */
bz_status bz_metrics_declare(bz_metrics *reg, const bz_metric_decl *decls, size_t n,
                             bz_error *err);

/* bz_metrics_declare for a table that is an array in scope. */
#define BZ_METRICS_DECLARE(reg, decls, err)                                                      \
    bz_metrics_declare((reg), (decls), sizeof(decls) / sizeof((decls)[0]), (err))

/* The child for one combination of label values, passed in the order of
 * label_names, exactly as many as the family has. Never NULL (see "other"
 * above); NULL values read as "". Lock-free once the child exists. */
bz_counter *bz_counter_family_with(bz_counter_family *fam, ...);
bz_gauge *bz_gauge_family_with(bz_gauge_family *fam, ...);
bz_histogram *bz_histogram_family_with(bz_histogram_family *fam, ...);

/* Hot-path updates: lock-free, safe from any thread. */
void bz_counter_inc(bz_counter *c);
void bz_counter_add(bz_counter *c, uint64_t n);
uint64_t bz_counter_value(const bz_counter *c);

void bz_gauge_set(bz_gauge *g, double v);
void bz_gauge_add(bz_gauge *g, double delta); /* negative to decrease */
double bz_gauge_value(const bz_gauge *g);

/* Count v in the first bucket whose upper bound is >= v (Prometheus "le"). */
void bz_histogram_observe(bz_histogram *h, double v);
uint64_t bz_histogram_count(const bz_histogram *h);
double bz_histogram_sum(const bz_histogram *h);

/* Monotonic clock in seconds, for measuring latencies:
 *   double t0 = bz_metrics_clock(); ...; bz_histogram_observe(h, bz_metrics_clock() - t0); */
double bz_metrics_clock(void);

/* Render every metric in registration order as Prometheus text exposition
 * format 0.0.4. *out_text is NUL-terminated heap memory the caller frees;
 * *len excludes the NUL. Only fails with BZ_ERR_NOMEM. */
bz_status bz_metrics_render(bz_metrics *reg, char **out_text, size_t *len);

#endif
