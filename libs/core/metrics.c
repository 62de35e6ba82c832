/*
 * metrics.c - lock-free Prometheus metrics and their text rendering (see
 * metrics.h).
 *
 * Every registered metric is a "family": a name, help, kind, label names and
 * a fixed array of children allocated at registration. A plain metric is a
 * family without label names whose single child exists from the start.
 * Handles given to services point straight at a child's atomic fields, so an
 * update is one atomic instruction (or a CAS loop for doubles) with no lookup.
 *
 * Children of a labelled family are published by bumping an atomic count
 * with release ordering after the child is fully built; readers load the
 * count with acquire ordering and scan only that prefix, so lookups need no
 * lock while creation takes the family mutex. Slots never move or die before
 * the registry does, which keeps handles valid.
 *
 * Histograms store per-bucket (non-cumulative) counts; rendering accumulates
 * them and derives _count from the same snapshot, so +Inf and _count always
 * agree within one scrape even while observations race with it.
 *
 * The registry list is guarded by a mutex taken by registration and render
 * only. The two process metrics live on a separate list rendered last and
 * refreshed from /proc at render time. The representation is in
 * metrics_registry.h; the text format is written by metrics_render.c.
 */
#include "metrics.h"
#include "metrics_registry.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Fine from 1 ms to 500 ms, where the pipeline's hops live: the latency
 * waterfall (scripts/bench_system.sh, the dashboard) interpolates its
 * quantiles inside these buckets. */
static const double latency_buckets[] = {
    0.0005, 0.001, 0.002, 0.0025, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.0125, 0.015, 0.02,
    0.025,  0.03,  0.04,  0.05,   0.06,  0.075, 0.1,   0.125,  0.15, 0.2,    0.25,  0.3,
    0.4,    0.5,   0.75,  1,      2.5,   5,     10};
static const size_t latency_buckets_len = sizeof latency_buckets / sizeof latency_buckets[0];

#define METRIC_MAX_CONST_LABELS 16

/* ---- atomics on doubles ------------------------------------------------ */

static uint64_t double_bits(double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return bits;
}

static double bits_double(uint64_t bits)
{
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static void atomic_add_double(_Atomic uint64_t *target, double delta)
{
    uint64_t old = atomic_load_explicit(target, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(target, &old,
                                                  double_bits(bits_double(old) + delta),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

/* ---- hot path ---------------------------------------------------------- */

void bz_counter_inc(bz_counter *c)
{
    atomic_fetch_add_explicit(&c->value, 1, memory_order_relaxed);
}

void bz_counter_add(bz_counter *c, uint64_t n)
{
    atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}

uint64_t bz_counter_value(const bz_counter *c)
{
    return atomic_load_explicit(&c->value, memory_order_relaxed);
}

void bz_gauge_set(bz_gauge *g, double v)
{
    atomic_store_explicit(&g->bits, double_bits(v), memory_order_relaxed);
}

void bz_gauge_add(bz_gauge *g, double delta)
{
    atomic_add_double(&g->bits, delta);
}

double bz_gauge_value(const bz_gauge *g)
{
    return bits_double(atomic_load_explicit(&g->bits, memory_order_relaxed));
}

/* Binary search for the first bound >= v; n_bounds (the +Inf bucket) when
 * there is none, which is also where NaN lands. */
static size_t bucket_index(const double *bounds, size_t n, double v)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v <= bounds[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

void bz_histogram_observe(bz_histogram *h, double v)
{
    size_t i = isnan(v) ? h->n_bounds : bucket_index(h->bounds, h->n_bounds, v);
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_add_double(&h->sum_bits, v);
}

uint64_t bz_histogram_count(const bz_histogram *h)
{
    uint64_t total = 0;
    for (size_t i = 0; i <= h->n_bounds; i++)
        total += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
    return total;
}

double bz_histogram_sum(const bz_histogram *h)
{
    return bits_double(atomic_load_explicit(&h->sum_bits, memory_order_relaxed));
}

double bz_metrics_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- validation -------------------------------------------------------- */

static bool is_valid_metric_name(const char *s)
{
    if (!s || !(isalpha((unsigned char)*s) || *s == '_' || *s == ':'))
        return false;
    for (s++; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_' || *s == ':'))
            return false;
    return true;
}

static bool is_valid_label_name(const char *s)
{
    if (!s || !(isalpha((unsigned char)*s) || *s == '_') || strncmp(s, "__", 2) == 0)
        return false;
    for (s++; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_'))
            return false;
    return true;
}

static bz_status check_label_name(const char *metric_name, const char *label, metric_kind kind,
                                  bz_error *err)
{
    if (!is_valid_label_name(label))
        return bz_fail(err, BZ_ERR_INVALID, "register metric %s: invalid label name '%s'",
                       metric_name, label ? label : "(null)");
    if (kind == KIND_HISTOGRAM && strcmp(label, "le") == 0)
        return bz_fail(err, BZ_ERR_INVALID,
                       "register metric %s: label 'le' is reserved for histogram buckets",
                       metric_name);
    return BZ_OK;
}

static bz_status check_buckets(const char *name, const double *b, size_t n, bz_error *err)
{
    if (n == 0)
        return bz_fail(err, BZ_ERR_INVALID, "register histogram %s: no buckets", name);
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(b[i]))
            return bz_fail(err, BZ_ERR_INVALID,
                           "register histogram %s: bucket %zu is not finite (+Inf is implied)",
                           name, i);
        if (i > 0 && !(b[i] > b[i - 1]))
            return bz_fail(err, BZ_ERR_INVALID,
                           "register histogram %s: bucket bounds must strictly increase (%g after %g)",
                           name, b[i], b[i - 1]);
    }
    return BZ_OK;
}

/* ---- text helpers ------------------------------------------------------ */

/* Prometheus label values escape backslash, double quote and newline; HELP
 * text escapes backslash and newline only. */
void bz_metrics_put_escaped(FILE *f, const char *s, bool quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\\\", f);
        else if (*s == '\n')
            fputs("\\n", f);
        else if (quote && *s == '"')
            fputs("\\\"", f);
        else
            fputc(*s, f);
    }
}

/* The shortest decimal that reads back as the same double. */
void bz_metrics_format_double(char *buf, size_t cap, double v)
{
    if (isnan(v)) {
        snprintf(buf, cap, "NaN");
    } else if (isinf(v)) {
        snprintf(buf, cap, v > 0 ? "+Inf" : "-Inf");
    } else {
        snprintf(buf, cap, "%.15g", v);
        if (strtod(buf, NULL) != v)
            snprintf(buf, cap, "%.17g", v);
    }
}

static char *render_const_labels(const char *const *pairs)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return NULL;
    for (size_t i = 0; pairs && pairs[i] && pairs[i + 1]; i += 2) {
        fprintf(f, "%s%s=\"", i ? "," : "", pairs[i]);
        bz_metrics_put_escaped(f, pairs[i + 1], true);
        fputc('"', f);
    }
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

/* ---- building metrics -------------------------------------------------- */

static void free_child(child *c, size_t n_labels, metric_kind kind)
{
    for (size_t i = 0; i < n_labels; i++)
        free(c->values[i]);
    if (kind == KIND_HISTOGRAM)
        free(c->m.histogram.buckets);
}

static void free_metric(metric *m)
{
    if (!m)
        return;
    size_t n = atomic_load(&m->n_children);
    for (size_t i = 0; i < n; i++)
        free_child(&m->children[i], m->n_labels, m->kind);
    free_child(&m->overflow, m->n_labels, m->kind);
    for (size_t i = 0; i < m->n_labels; i++)
        free(m->label_names[i]);
    pthread_mutex_destroy(&m->lock);
    free(m->children);
    free(m->bounds);
    free(m->const_labels);
    free(m->help);
    free(m->name);
    free(m);
}

/* Fill c for m's label values (copied; NULL for a plain metric, which has
 * no labels); false when out of memory, leaving c clean. */
static bool init_child(const metric *m, child *c, const char *const *values)
{
    memset(c, 0, sizeof *c);
    if (m->kind == KIND_HISTOGRAM) {
        c->m.histogram.bounds = m->bounds;
        c->m.histogram.n_bounds = m->n_bounds;
        c->m.histogram.buckets = calloc(m->n_bounds + 1, sizeof *c->m.histogram.buckets);
        if (!c->m.histogram.buckets)
            return false;
    }
    for (size_t i = 0; i < m->n_labels; i++) {
        const char *value = values && values[i] ? values[i] : "";
        if (!(c->values[i] = strdup(value))) {
            free_child(c, i, m->kind);
            memset(c, 0, sizeof *c);
            return false;
        }
    }
    return true;
}

static bz_status check_def(const bz_metric_def *def, metric_kind kind, bool family, bz_error *err)
{
    if (!def || !is_valid_metric_name(def->name))
        return bz_fail(err, BZ_ERR_INVALID, "register metric: invalid name '%s'",
                       def && def->name ? def->name : "(null)");
    if (!def->help || !*def->help)
        return bz_fail(err, BZ_ERR_INVALID, "register metric %s: help text is required",
                       def->name);
    const char *seen[METRIC_MAX_CONST_LABELS + BZ_METRICS_MAX_LABELS];
    size_t n_seen = 0;
    for (size_t i = 0; def->const_labels && def->const_labels[i]; i += 2) {
        if (!def->const_labels[i + 1])
            return bz_fail(err, BZ_ERR_INVALID,
                           "register metric %s: constant label '%s' has no value", def->name,
                           def->const_labels[i]);
        if (n_seen == METRIC_MAX_CONST_LABELS)
            return bz_fail(err, BZ_ERR_INVALID, "register metric %s: too many constant labels",
                           def->name);
        seen[n_seen++] = def->const_labels[i];
    }
    size_t n_labels = 0;
    for (; family && def->label_names && def->label_names[n_labels]; n_labels++) {
        if (n_labels == BZ_METRICS_MAX_LABELS)
            return bz_fail(err, BZ_ERR_INVALID, "register metric %s: more than %d labels",
                           def->name, BZ_METRICS_MAX_LABELS);
        seen[n_seen++] = def->label_names[n_labels];
    }
    if (!family && def->label_names && def->label_names[0])
        return bz_fail(err, BZ_ERR_INVALID,
                       "register metric %s: label names need a *_family registration",
                       def->name);
    if (family && n_labels == 0)
        return bz_fail(err, BZ_ERR_INVALID, "register metric %s: a family needs label names",
                       def->name);
    for (size_t i = 0; i < n_seen; i++) {
        bz_status st = check_label_name(def->name, seen[i], kind, err);
        if (st != BZ_OK)
            return st;
        for (size_t j = 0; j < i; j++)
            if (strcmp(seen[i], seen[j]) == 0)
                return bz_fail(err, BZ_ERR_INVALID, "register metric %s: label '%s' given twice",
                               def->name, seen[i]);
    }
    if (kind == KIND_HISTOGRAM && def->buckets)
        return check_buckets(def->name, def->buckets, def->n_buckets, err);
    return BZ_OK;
}

static metric *build_metric(const bz_metric_def *def, metric_kind kind, bool family)
{
    metric *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->kind = kind;
    pthread_mutex_init(&m->lock, NULL);
    m->capacity = !family ? 1 : def->max_children ? def->max_children : BZ_METRICS_FAMILY_MAX;
    m->children = calloc(m->capacity, sizeof *m->children);
    m->name = strdup(def->name);
    m->help = strdup(def->help);
    m->const_labels = render_const_labels(def->const_labels);
    bool ok = m->children && m->name && m->help && m->const_labels;
    for (; ok && family && def->label_names[m->n_labels]; m->n_labels++)
        ok = (m->label_names[m->n_labels] = strdup(def->label_names[m->n_labels])) != NULL;
    if (ok && kind == KIND_HISTOGRAM) {
        const double *b = def->buckets ? def->buckets : latency_buckets;
        m->n_bounds = def->buckets ? def->n_buckets : latency_buckets_len;
        if ((m->bounds = malloc(m->n_bounds * sizeof *m->bounds)))
            memcpy(m->bounds, b, m->n_bounds * sizeof *m->bounds);
        ok = m->bounds != NULL;
    }
    if (ok && family) {
        const char *other[BZ_METRICS_MAX_LABELS] = {"other", "other", "other", "other"};
        ok = init_child(m, &m->overflow, other);
    }
    if (ok && !family) {
        ok = init_child(m, &m->children[0], NULL);
        atomic_store(&m->n_children, ok ? 1 : 0);
    }
    if (!ok) {
        free_metric(m);
        return NULL;
    }
    return m;
}

static bool name_taken(const metric *list, const char *name)
{
    for (; list; list = list->next)
        if (strcmp(list->name, name) == 0)
            return true;
    return false;
}

static bz_status add_metric(bz_metrics *reg, const bz_metric_def *def, metric_kind kind,
                            bool family, metric **out, bz_error *err)
{
    *out = NULL;
    bz_status st = check_def(def, kind, family, err);
    if (st != BZ_OK)
        return st;
    metric *m = build_metric(def, kind, family);
    if (!m)
        return bz_fail(err, BZ_ERR_NOMEM, "register metric %s: out of memory", def->name);
    pthread_mutex_lock(&reg->lock);
    if (name_taken(reg->head, def->name) || name_taken(reg->process, def->name)) {
        pthread_mutex_unlock(&reg->lock);
        free_metric(m);
        return bz_fail(err, BZ_ERR_CONFLICT, "register metric %s: name already registered",
                       def->name);
    }
    if (reg->tail)
        reg->tail->next = m;
    else
        reg->head = m;
    reg->tail = m;
    pthread_mutex_unlock(&reg->lock);
    *out = m;
    return BZ_OK;
}

bz_status bz_metrics_counter(bz_metrics *reg, const bz_metric_def *def, bz_counter **out,
                             bz_error *err)
{
    metric *m;
    bz_status st = add_metric(reg, def, KIND_COUNTER, false, &m, err);
    *out = st == BZ_OK ? &m->children[0].m.counter : NULL;
    return st;
}

bz_status bz_metrics_gauge(bz_metrics *reg, const bz_metric_def *def, bz_gauge **out,
                           bz_error *err)
{
    metric *m;
    bz_status st = add_metric(reg, def, KIND_GAUGE, false, &m, err);
    *out = st == BZ_OK ? &m->children[0].m.gauge : NULL;
    return st;
}

bz_status bz_metrics_histogram(bz_metrics *reg, const bz_metric_def *def, bz_histogram **out,
                               bz_error *err)
{
    metric *m;
    bz_status st = add_metric(reg, def, KIND_HISTOGRAM, false, &m, err);
    *out = st == BZ_OK ? &m->children[0].m.histogram : NULL;
    return st;
}

bz_status bz_metrics_counter_family(bz_metrics *reg, const bz_metric_def *def,
                                    bz_counter_family **out, bz_error *err)
{
    metric *m;
    bz_status st = add_metric(reg, def, KIND_COUNTER, true, &m, err);
    *out = (bz_counter_family *)m;
    return st;
}

bz_status bz_metrics_gauge_family(bz_metrics *reg, const bz_metric_def *def,
                                  bz_gauge_family **out, bz_error *err)
{
    metric *m;
    bz_status st = add_metric(reg, def, KIND_GAUGE, true, &m, err);
    *out = (bz_gauge_family *)m;
    return st;
}

bz_status bz_metrics_histogram_family(bz_metrics *reg, const bz_metric_def *def,
                                      bz_histogram_family **out, bz_error *err)
{
    metric *m;
    bz_status st = add_metric(reg, def, KIND_HISTOGRAM, true, &m, err);
    *out = (bz_histogram_family *)m;
    return st;
}

/* ---- declared tables --------------------------------------------------- */

static bz_status declare_metric(bz_metrics *reg, const bz_metric_decl *d, bz_error *err)
{
    const bz_metric_def *def = &d->def;
    int handles = (d->counter != NULL) + (d->gauge != NULL) + (d->histogram != NULL) +
                  (d->counters != NULL) + (d->gauges != NULL) + (d->histograms != NULL);
    if (handles != 1)
        return bz_fail(err, BZ_ERR_INTERNAL, "declare metric %s: %s",
                       def->name ? def->name : "(null)",
                       handles ? "more than one handle" : "no handle");
    if (d->counter)
        return bz_metrics_counter(reg, def, d->counter, err);
    if (d->gauge)
        return bz_metrics_gauge(reg, def, d->gauge, err);
    if (d->histogram)
        return bz_metrics_histogram(reg, def, d->histogram, err);
    if (d->counters)
        return bz_metrics_counter_family(reg, def, d->counters, err);
    if (d->gauges)
        return bz_metrics_gauge_family(reg, def, d->gauges, err);
    return bz_metrics_histogram_family(reg, def, d->histograms, err);
}

bz_status bz_metrics_declare(bz_metrics *reg, const bz_metric_decl *decls, size_t n,
                             bz_error *err)
{
    for (size_t i = 0; i < n; i++) {
        bz_status st = declare_metric(reg, &decls[i], err);
        if (st != BZ_OK)
            return st;
    }
    return BZ_OK;
}

/* ---- family children --------------------------------------------------- */

/* The index of the child with these label values among the first n, or n
 * when there is none. */
static size_t find_child(const metric *m, const char *const *values, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const child *c = &m->children[i];
        size_t l = 0;
        while (l < m->n_labels && strcmp(c->values[l], values[l] ? values[l] : "") == 0)
            l++;
        if (l == m->n_labels)
            return i;
    }
    return n;
}

static child *child_for(metric *m, va_list ap)
{
    const char *values[BZ_METRICS_MAX_LABELS] = {0};
    for (size_t i = 0; i < m->n_labels; i++)
        values[i] = va_arg(ap, const char *);

    size_t published = atomic_load_explicit(&m->n_children, memory_order_acquire);
    size_t i = find_child(m, values, published);
    if (i < published)
        return &m->children[i];
    pthread_mutex_lock(&m->lock);
    size_t n = atomic_load_explicit(&m->n_children, memory_order_relaxed);
    i = find_child(m, values, n);
    bool found = i < n;
    /* Not found: i == n, the first free slot. */
    if (!found && n < m->capacity && init_child(m, &m->children[n], values)) {
        atomic_store_explicit(&m->n_children, n + 1, memory_order_release);
        found = true;
    }
    pthread_mutex_unlock(&m->lock);
    if (found)
        return &m->children[i];
    atomic_store_explicit(&m->overflow_used, true, memory_order_relaxed);
    return &m->overflow;
}

bz_counter *bz_counter_family_with(bz_counter_family *fam, ...)
{
    va_list ap;
    va_start(ap, fam);
    child *c = child_for(&fam->m, ap);
    va_end(ap);
    return &c->m.counter;
}

bz_gauge *bz_gauge_family_with(bz_gauge_family *fam, ...)
{
    va_list ap;
    va_start(ap, fam);
    child *c = child_for(&fam->m, ap);
    va_end(ap);
    return &c->m.gauge;
}

bz_histogram *bz_histogram_family_with(bz_histogram_family *fam, ...)
{
    va_list ap;
    va_start(ap, fam);
    child *c = child_for(&fam->m, ap);
    va_end(ap);
    return &c->m.histogram;
}

/* ---- process metrics --------------------------------------------------- */

/* Parse the unsigned decimal at *p (after blanks) into *out and move *p past
 * it; false, leaving *p, when there is none or it overflows. */
static bool take_number(const char **p, unsigned long long *out)
{
    const char *s = *p;
    while (*s == ' ' || *s == '\t')
        s++;
    if (!isdigit((unsigned char)*s))
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0)
        return false;
    *out = v;
    *p = end;
    return true;
}

/* Read up to size - 1 bytes of a /proc file into buf as a string; false when
 * it cannot be opened. */
static bool read_proc_file(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    size_t n = fread(buf, 1, size - 1, f);
    fclose(f);
    buf[n] = '\0';
    return true;
}

/* statm holds sizes in pages: total, then resident. */
double bz_metrics_resident_bytes(void)
{
    char buf[256];
    const char *p = buf;
    unsigned long long size = 0, resident = 0;
    if (!read_proc_file("/proc/self/statm", buf, sizeof buf) || !take_number(&p, &size) ||
        !take_number(&p, &resident))
        return 0;
    return (double)resident * (double)sysconf(_SC_PAGESIZE);
}

/* Boot time (btime in /proc/stat) plus the process's start tick count
 * (field 22 of /proc/self/stat, counted after the parenthesised command name,
 * which may itself contain spaces). Falls back to now. */
static double process_start_seconds(void)
{
    char buf[1024];
    double fallback = (double)time(NULL);
    unsigned long long btime = 0, start_ticks = 0;

    FILE *f = fopen("/proc/stat", "re");
    if (!f)
        return fallback;
    while (fgets(buf, sizeof buf, f)) {
        const char *p = buf + strlen("btime");
        if (strncmp(buf, "btime ", strlen("btime ")) == 0 && take_number(&p, &btime))
            break;
    }
    fclose(f);

    if (!read_proc_file("/proc/self/stat", buf, sizeof buf))
        return fallback;
    const char *p = strrchr(buf, ')');
    if (!p || btime == 0)
        return fallback;
    /* After ") " come fields 3..; starttime is field 22, the 20th of them. */
    p++;
    for (int field = 3; field < 22 && p; field++)
        p = strchr(p + 1, ' ');
    if (!p || !take_number(&p, &start_ticks))
        return fallback;
    return (double)btime + (double)start_ticks / (double)sysconf(_SC_CLK_TCK);
}

static bz_status add_process_metrics(bz_metrics *reg, bz_error *err)
{
    static const bz_metric_def rss = {.name = "process_resident_memory_bytes",
                                      .help = "Resident memory size in bytes."};
    static const bz_metric_def start = {
        .name = "process_start_time_seconds",
        .help = "Start time of the process since unix epoch in seconds."};
    metric *m_rss = build_metric(&rss, KIND_GAUGE, false);
    metric *m_start = build_metric(&start, KIND_GAUGE, false);
    if (!m_rss || !m_start) {
        free_metric(m_rss);
        free_metric(m_start);
        return bz_fail(err, BZ_ERR_NOMEM, "create metrics registry: out of memory");
    }
    m_rss->next = m_start;
    reg->process = m_rss;
    reg->resident_memory = &m_rss->children[0].m.gauge;
    reg->start_time = &m_start->children[0].m.gauge;
    bz_gauge_set(reg->start_time, process_start_seconds());
    return BZ_OK;
}

bz_status bz_metrics_new(bz_metrics **out, bz_error *err)
{
    *out = NULL;
    bz_metrics *reg = calloc(1, sizeof *reg);
    if (!reg)
        return bz_fail(err, BZ_ERR_NOMEM, "create metrics registry: out of memory");
    pthread_mutex_init(&reg->lock, NULL);
    bz_status st = add_process_metrics(reg, err);
    if (st != BZ_OK) {
        bz_metrics_free(reg);
        return st;
    }
    *out = reg;
    return BZ_OK;
}

static void free_list(metric *m)
{
    while (m) {
        metric *next = m->next;
        free_metric(m);
        m = next;
    }
}

void bz_metrics_free(bz_metrics *reg)
{
    if (!reg)
        return;
    free_list(reg->head);
    free_list(reg->process);
    pthread_mutex_destroy(&reg->lock);
    free(reg);
}
