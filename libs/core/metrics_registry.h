/*
 * metrics_registry.h - how the metrics registry holds its metrics, shared by
 * metrics.c (registration, updates, process metrics) and metrics_render.c
 * (the Prometheus text format). Private to libs/core: services see only
 * metrics.h.
 *
 * Every registered metric is a family (struct metric) with a fixed array of
 * children; a handle points straight at a child's atomic fields.
 */
#ifndef BZ_CORE_METRICS_REGISTRY_H
#define BZ_CORE_METRICS_REGISTRY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#include "metrics.h"

typedef enum metric_kind { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM } metric_kind;

struct bz_counter {
    _Atomic uint64_t value;
};

struct bz_gauge {
    _Atomic uint64_t bits; /* a double's bit pattern */
};

struct bz_histogram {
    const double *bounds;       /* the family's, n_bounds long */
    size_t n_bounds;
    _Atomic uint64_t *buckets;  /* n_bounds + 1, the last one is +Inf */
    _Atomic uint64_t sum_bits;
};

typedef struct child {
    char *values[BZ_METRICS_MAX_LABELS];
    union {
        struct bz_counter counter;
        struct bz_gauge gauge;
        struct bz_histogram histogram;
    } m;
} child;

typedef struct metric {
    struct metric *next;
    metric_kind kind;
    char *name;
    char *help;
    char *const_labels; /* pre-escaped 'a="b",c="d"', or "" */
    size_t n_labels;
    char *label_names[BZ_METRICS_MAX_LABELS];
    double *bounds;
    size_t n_bounds;
    size_t capacity;
    child *children;
    _Atomic size_t n_children;
    child overflow;
    atomic_bool overflow_used;
    pthread_mutex_t lock;
} metric;

/* Distinct public family types over one representation. */
struct bz_counter_family {
    metric m;
};
struct bz_gauge_family {
    metric m;
};
struct bz_histogram_family {
    metric m;
};

struct bz_metrics {
    pthread_mutex_t lock;
    metric *head, *tail;
    metric *process; /* process_* metrics, rendered last */
    bz_gauge *resident_memory;
    bz_gauge *start_time;
};

/* Write s with Prometheus escapes: label values (quote) escape backslash,
 * double quote and newline; HELP text backslash and newline only. */
void bz_metrics_put_escaped(FILE *f, const char *s, bool quote);

/* The shortest decimal that reads back as v ("NaN", "+Inf", "-Inf" too). */
void bz_metrics_format_double(char *buf, size_t cap, double v);

/* The process's resident memory in bytes, from /proc/self/statm; 0 when
 * unknown. */
double bz_metrics_resident_bytes(void);

#endif
