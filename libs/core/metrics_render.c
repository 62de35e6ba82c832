/*
 * metrics_render.c - the registry in the Prometheus text exposition format
 * (bz_metrics_render, see metrics.h).
 *
 * A scrape takes the registry lock, so the list does not change under it,
 * but never a family's: children are read up to the count published with
 * release ordering, and histogram buckets are accumulated from one pass, so
 * +Inf and _count agree within a scrape while observations race with it.
 * The process metrics are refreshed first and rendered last.
 */
#include "metrics.h"
#include "metrics_registry.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

static const char *kind_name(metric_kind kind)
{
    return kind == KIND_COUNTER ? "counter" : kind == KIND_GAUGE ? "gauge" : "histogram";
}

/* Write "{const,labels,extra}" or nothing when there are no labels at all.
 * extra is an already formatted 'le="0.5"' or NULL. */
static void put_labels(FILE *f, const metric *m, const child *c, const char *extra)
{
    bool any = m->const_labels[0] || m->n_labels || extra;
    if (!any)
        return;
    fputc('{', f);
    fputs(m->const_labels, f);
    bool sep = m->const_labels[0] != '\0';
    for (size_t i = 0; i < m->n_labels; i++) {
        fprintf(f, "%s%s=\"", sep ? "," : "", m->label_names[i]);
        bz_metrics_put_escaped(f, c->values[i], true);
        fputc('"', f);
        sep = true;
    }
    if (extra)
        fprintf(f, "%s%s", sep ? "," : "", extra);
    fputc('}', f);
}

static void render_histogram(FILE *f, const metric *m, const child *c)
{
    const bz_histogram *h = &c->m.histogram;
    char num[40], le[64];
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= h->n_bounds; i++) {
        cumulative += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        if (i < h->n_bounds) {
            bz_metrics_format_double(num, sizeof num, h->bounds[i]);
            snprintf(le, sizeof le, "le=\"%s\"", num);
        } else {
            snprintf(le, sizeof le, "le=\"+Inf\"");
        }
        fprintf(f, "%s_bucket", m->name);
        put_labels(f, m, c, le);
        fprintf(f, " %llu\n", (unsigned long long)cumulative);
    }
    bz_metrics_format_double(num, sizeof num, bz_histogram_sum(h));
    fprintf(f, "%s_sum", m->name);
    put_labels(f, m, c, NULL);
    fprintf(f, " %s\n%s_count", num, m->name);
    put_labels(f, m, c, NULL);
    fprintf(f, " %llu\n", (unsigned long long)cumulative);
}

static void render_child(FILE *f, const metric *m, const child *c)
{
    char num[40];
    switch (m->kind) {
    case KIND_COUNTER:
        fputs(m->name, f);
        put_labels(f, m, c, NULL);
        fprintf(f, " %llu\n", (unsigned long long)bz_counter_value(&c->m.counter));
        break;
    case KIND_GAUGE:
        bz_metrics_format_double(num, sizeof num, bz_gauge_value(&c->m.gauge));
        fputs(m->name, f);
        put_labels(f, m, c, NULL);
        fprintf(f, " %s\n", num);
        break;
    case KIND_HISTOGRAM:
        render_histogram(f, m, c);
        break;
    }
}

static void render_metric(FILE *f, metric *m)
{
    fprintf(f, "# HELP %s ", m->name);
    bz_metrics_put_escaped(f, m->help, false);
    fprintf(f, "\n# TYPE %s %s\n", m->name, kind_name(m->kind));
    size_t n = atomic_load_explicit(&m->n_children, memory_order_acquire);
    for (size_t i = 0; i < n; i++)
        render_child(f, m, &m->children[i]);
    if (atomic_load_explicit(&m->overflow_used, memory_order_relaxed))
        render_child(f, m, &m->overflow);
}

bz_status bz_metrics_render(bz_metrics *reg, char **out_text, size_t *len)
{
    *out_text = NULL;
    *len = 0;
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    if (!f)
        return BZ_ERR_NOMEM;
    bz_gauge_set(reg->resident_memory, bz_metrics_resident_bytes());
    pthread_mutex_lock(&reg->lock);
    for (metric *m = reg->head; m; m = m->next)
        render_metric(f, m);
    for (metric *m = reg->process; m; m = m->next)
        render_metric(f, m);
    pthread_mutex_unlock(&reg->lock);
    bool failed = ferror(f) != 0;
    if (fclose(f) != 0 || failed) {
        free(text);
        return BZ_ERR_NOMEM;
    }
    *out_text = text;
    *len = size;
    return BZ_OK;
}
