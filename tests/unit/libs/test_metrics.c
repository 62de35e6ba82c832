/*
 * test_metrics.c - the metrics registry: exact sums under concurrent updates,
 * histogram bucket placement on the boundaries, the exact text exposition of
 * a small registry, name validation, family overflow, process metrics, and
 * registration from a declared table (every kind, its order, bad entries).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/metrics.h"

static bz_metrics *new_registry(void)
{
    bz_metrics *reg = NULL;
    bz_error err = {0};
    assert_int_equal(bz_metrics_new(&reg, &err), BZ_OK);
    assert_non_null(reg);
    return reg;
}

/* The rendering, cut before the process metrics that always come last. */
static char *render_own(bz_metrics *reg)
{
    char *text;
    size_t len;
    assert_int_equal(bz_metrics_render(reg, &text, &len), BZ_OK);
    assert_int_equal(strlen(text), len);
    char *process = strstr(text, "# HELP process_resident_memory_bytes");
    assert_non_null(process);
    *process = '\0';
    return text;
}

/* ---- concurrency ------------------------------------------------------- */

#define THREADS 8
#define ITERATIONS 50000

typedef struct hammer {
    bz_counter *counter;
    bz_gauge *gauge;
    bz_histogram *histogram;
    bz_counter_family *family;
    int id;
} hammer;

static void *hammer_metrics(void *arg)
{
    hammer *h = arg;
    static const char *const reasons[] = {"decode_error", "unknown_session", "invalid", "too_big"};
    for (int i = 0; i < ITERATIONS; i++) {
        bz_counter_inc(h->counter);
        bz_gauge_add(h->gauge, 1.0);
        bz_gauge_add(h->gauge, -0.5);
        bz_histogram_observe(h->histogram, (i % 2) ? 0.25 : 2.0);
        bz_counter_inc(bz_counter_family_with(h->family, reasons[(i + h->id) % 4]));
    }
    return NULL;
}

static void test_concurrent_updates_sum_exactly(void **state)
{
    (void)state;
    bz_metrics *reg = new_registry();
    bz_error err = {0};
    hammer base = {0};
    static const double buckets[] = {1.0};
    assert_int_equal(bz_metrics_counter(reg, BZ_METRIC("c_total", "c"), &base.counter, &err), BZ_OK);
    assert_int_equal(bz_metrics_gauge(reg, BZ_METRIC("g", "g"), &base.gauge, &err), BZ_OK);
    assert_int_equal(bz_metrics_histogram(reg, &(bz_metric_def){.name = "h", .help = "h",
                                                                .buckets = buckets,
                                                                .n_buckets = 1},
                                          &base.histogram, &err),
                     BZ_OK);
    assert_int_equal(bz_metrics_counter_family(
                         reg, &(bz_metric_def){.name = "dl_total", .help = "dl",
                                               .label_names = (const char *[]){"reason", NULL}},
                         &base.family, &err),
                     BZ_OK);

    pthread_t threads[THREADS];
    hammer args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = base;
        args[i].id = i;
        assert_int_equal(pthread_create(&threads[i], NULL, hammer_metrics, &args[i]), 0);
    }
    /* Scrape while the threads run: rendering must not disturb them. */
    for (int i = 0; i < 20; i++)
        free(render_own(reg));
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);

    const uint64_t total = (uint64_t)THREADS * ITERATIONS;
    assert_int_equal(bz_counter_value(base.counter), total);
    assert_float_equal(bz_gauge_value(base.gauge), total * 0.5, 0);
    assert_int_equal(bz_histogram_count(base.histogram), total);
    assert_float_equal(bz_histogram_sum(base.histogram), total / 2 * 2.25, 0);
    uint64_t family_total = 0;
    static const char *const reasons[] = {"decode_error", "unknown_session", "invalid", "too_big"};
    for (int r = 0; r < 4; r++) {
        uint64_t v = bz_counter_value(bz_counter_family_with(base.family, reasons[r]));
        assert_int_equal(v, total / 4);
        family_total += v;
    }
    assert_int_equal(family_total, total);

    char *text = render_own(reg);
    char line[128];
    snprintf(line, sizeof line, "h_bucket{le=\"1\"} %llu\n", (unsigned long long)total / 2);
    assert_non_null(strstr(text, line));
    snprintf(line, sizeof line, "h_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)total);
    assert_non_null(strstr(text, line));
    snprintf(line, sizeof line, "dl_total{reason=\"invalid\"} %llu\n",
             (unsigned long long)total / 4);
    assert_non_null(strstr(text, line));
    free(text);
    bz_metrics_free(reg);
}

/* ---- histogram buckets ------------------------------------------------- */

static void test_histogram_bucket_placement_on_boundaries(void **state)
{
    (void)state;
    static const double buckets[] = {0.1, 0.5, 1};
    static const struct {
        double value;
        const char *bucket; /* the smallest le whose cumulative count is 1 */
    } cases[] = {
        {-5, "0.1"},  {0, "0.1"},          {0.1, "0.1"},     {0.1000001, "0.5"},
        {0.5, "0.5"}, {0.5000001, "1"},    {1, "1"},         {1.0000001, "+Inf"},
        {1e9, "+Inf"}, {INFINITY, "+Inf"}, {NAN, "+Inf"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bz_metrics *reg = new_registry();
        bz_histogram *h;
        bz_error err = {0};
        assert_int_equal(bz_metrics_histogram(reg, &(bz_metric_def){.name = "lat_seconds",
                                                                     .help = "x",
                                                                     .buckets = buckets,
                                                                     .n_buckets = 3},
                                              &h, &err),
                         BZ_OK);
        bz_histogram_observe(h, cases[i].value);
        char *text = render_own(reg);
        const char *les[] = {"0.1", "0.5", "1", "+Inf"};
        bool reached = false;
        for (size_t b = 0; b < 4; b++) {
            reached = reached || strcmp(les[b], cases[i].bucket) == 0;
            char line[96];
            snprintf(line, sizeof line, "lat_seconds_bucket{le=\"%s\"} %d\n", les[b],
                     reached ? 1 : 0);
            if (!strstr(text, line))
                fail_msg("value %g: expected line '%s' in:\n%s", cases[i].value, line, text);
        }
        assert_non_null(strstr(text, "lat_seconds_count 1\n"));
        free(text);
        bz_metrics_free(reg);
    }
}

static void test_default_latency_buckets(void **state)
{
    (void)state;
    bz_metrics *reg = new_registry();
    bz_histogram *h;
    bz_error err = {0};
    assert_int_equal(bz_metrics_histogram(reg, BZ_METRIC("apply_seconds", "x"), &h, &err), BZ_OK);
    bz_histogram_observe(h, 0.0005);
    bz_histogram_observe(h, 0.003);
    bz_histogram_observe(h, 11);
    char *text = render_own(reg);
    assert_non_null(strstr(text, "apply_seconds_bucket{le=\"0.0005\"} 1\n"));
    assert_non_null(strstr(text, "apply_seconds_bucket{le=\"0.0025\"} 1\n"));
    assert_non_null(strstr(text, "apply_seconds_bucket{le=\"0.003\"} 2\n"));
    assert_non_null(strstr(text, "apply_seconds_bucket{le=\"0.005\"} 2\n"));
    assert_non_null(strstr(text, "apply_seconds_bucket{le=\"10\"} 2\n"));
    assert_non_null(strstr(text, "apply_seconds_bucket{le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(text, "apply_seconds_sum 11.0035\n"));
    size_t buckets = 0; /* 31 default bounds, and +Inf */
    for (const char *p = text; (p = strstr(p, "apply_seconds_bucket{")); p++)
        buckets++;
    assert_int_equal(buckets, 32);
    free(text);
    bz_metrics_free(reg);
}

/* ---- exact rendering --------------------------------------------------- */

static void test_render_small_registry_exactly(void **state)
{
    (void)state;
    bz_metrics *reg = new_registry();
    bz_error err = {0};
    bz_counter *consumed;
    bz_gauge *lag;
    bz_histogram *apply;
    bz_counter_family *dead;
    bz_gauge_family *depth;
    static const double buckets[] = {0.005, 0.1, 2.5};
    assert_int_equal(
        bz_metrics_counter(reg, &(bz_metric_def){.name = "blazz_consumed_total",
                                                 .help = "Messages consumed.\nFrom Kafka \\ all.",
                                                 .const_labels = (const char *[]){
                                                     "service", "chat-sync", NULL}},
                           &consumed, &err),
        BZ_OK);
    assert_int_equal(bz_metrics_gauge(reg, BZ_METRIC("blazz_lag", "Consumer lag."), &lag, &err),
                     BZ_OK);
    assert_int_equal(bz_metrics_histogram(reg, &(bz_metric_def){.name = "blazz_apply_seconds",
                                                                 .help = "Apply latency.",
                                                                 .const_labels = (const char *[]){
                                                                     "topic", "chat.sync", NULL},
                                                                 .buckets = buckets,
                                                                 .n_buckets = 3},
                                          &apply, &err),
                     BZ_OK);
    assert_int_equal(bz_metrics_counter_family(
                         reg, &(bz_metric_def){.name = "blazz_dead_lettered_total",
                                               .help = "Dead-lettered.",
                                               .label_names = (const char *[]){"topic", "reason", NULL}},
                         &dead, &err),
                     BZ_OK);
    assert_int_equal(bz_metrics_gauge_family(
                         reg, &(bz_metric_def){.name = "blazz_queue_depth", .help = "Depth.",
                                               .label_names = (const char *[]){"queue", NULL}},
                         &depth, &err),
                     BZ_OK);

    bz_counter_add(consumed, 41);
    bz_counter_inc(consumed);
    bz_gauge_set(lag, 12.5);
    bz_gauge_add(lag, -2);
    bz_histogram_observe(apply, 0.005);
    bz_histogram_observe(apply, 0.05);
    bz_histogram_observe(apply, 3);
    bz_counter_inc(bz_counter_family_with(dead, "chat.sync", "decode_error"));
    bz_counter_add(bz_counter_family_with(dead, "chat.sync", "say \"hi\"\\\n"), 2);
    bz_counter_inc(bz_counter_family_with(dead, "chat.sync", "decode_error"));

    static const char expected[] =
        "# HELP blazz_consumed_total Messages consumed.\\nFrom Kafka \\\\ all.\n"
        "# TYPE blazz_consumed_total counter\n"
        "blazz_consumed_total{service=\"chat-sync\"} 42\n"
        "# HELP blazz_lag Consumer lag.\n"
        "# TYPE blazz_lag gauge\n"
        "blazz_lag 10.5\n"
        "# HELP blazz_apply_seconds Apply latency.\n"
        "# TYPE blazz_apply_seconds histogram\n"
        "blazz_apply_seconds_bucket{topic=\"chat.sync\",le=\"0.005\"} 1\n"
        "blazz_apply_seconds_bucket{topic=\"chat.sync\",le=\"0.1\"} 2\n"
        "blazz_apply_seconds_bucket{topic=\"chat.sync\",le=\"2.5\"} 2\n"
        "blazz_apply_seconds_bucket{topic=\"chat.sync\",le=\"+Inf\"} 3\n"
        "blazz_apply_seconds_sum{topic=\"chat.sync\"} 3.055\n"
        "blazz_apply_seconds_count{topic=\"chat.sync\"} 3\n"
        "# HELP blazz_dead_lettered_total Dead-lettered.\n"
        "# TYPE blazz_dead_lettered_total counter\n"
        "blazz_dead_lettered_total{topic=\"chat.sync\",reason=\"decode_error\"} 2\n"
        "blazz_dead_lettered_total{topic=\"chat.sync\",reason=\"say \\\"hi\\\"\\\\\\n\"} 2\n"
        "# HELP blazz_queue_depth Depth.\n"
        "# TYPE blazz_queue_depth gauge\n";
    char *text = render_own(reg);
    assert_string_equal(text, expected);
    free(text);
    bz_metrics_free(reg);
}

static void test_gauge_special_values_render(void **state)
{
    (void)state;
    bz_metrics *reg = new_registry();
    bz_error err = {0};
    bz_gauge *g;
    assert_int_equal(bz_metrics_gauge(reg, BZ_METRIC("g", "g"), &g, &err), BZ_OK);
    static const struct {
        double v;
        const char *line;
    } cases[] = {
        {INFINITY, "g +Inf\n"}, {-INFINITY, "g -Inf\n"}, {NAN, "g NaN\n"},
        {0.1, "g 0.1\n"},       {1e21, "g 1e+21\n"},    {-3, "g -3\n"},
        {1.0 / 3, "g 0.33333333333333331\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bz_gauge_set(g, cases[i].v);
        char *text = render_own(reg);
        if (!strstr(text, cases[i].line))
            fail_msg("expected '%s' in %s", cases[i].line, text);
        free(text);
    }
    bz_metrics_free(reg);
}

/* ---- families ---------------------------------------------------------- */

static void test_family_children_are_stable_and_capped(void **state)
{
    (void)state;
    bz_metrics *reg = new_registry();
    bz_error err = {0};
    bz_counter_family *fam;
    assert_int_equal(bz_metrics_counter_family(
                         reg, &(bz_metric_def){.name = "x_total", .help = "x",
                                               .label_names = (const char *[]){"reason", NULL},
                                               .max_children = 2},
                         &fam, &err),
                     BZ_OK);
    bz_counter *a = bz_counter_family_with(fam, "a");
    assert_ptr_equal(bz_counter_family_with(fam, "a"), a);
    bz_counter *b = bz_counter_family_with(fam, "b");
    assert_ptr_not_equal(a, b);
    bz_counter *c = bz_counter_family_with(fam, "c");
    bz_counter *d = bz_counter_family_with(fam, "d");
    assert_ptr_equal(c, d);
    assert_ptr_not_equal(c, a);
    assert_ptr_not_equal(c, b);
    bz_counter_inc(a);
    bz_counter_inc(c);
    bz_counter_inc(d);
    char *text = render_own(reg);
    assert_non_null(strstr(text, "x_total{reason=\"a\"} 1\n"));
    assert_non_null(strstr(text, "x_total{reason=\"b\"} 0\n"));
    assert_non_null(strstr(text, "x_total{reason=\"other\"} 2\n"));
    assert_null(strstr(text, "reason=\"c\""));
    free(text);
    bz_metrics_free(reg);
}

static void test_histogram_family_children(void **state)
{
    (void)state;
    bz_metrics *reg = new_registry();
    bz_error err = {0};
    bz_histogram_family *fam;
    static const double buckets[] = {1};
    assert_int_equal(bz_metrics_histogram_family(
                         reg, &(bz_metric_def){.name = "t_seconds", .help = "t",
                                               .label_names = (const char *[]){"topic", NULL},
                                               .buckets = buckets, .n_buckets = 1},
                         &fam, &err),
                     BZ_OK);
    bz_histogram_observe(bz_histogram_family_with(fam, "a"), 0.5);
    /* Typed: a bare NULL may be a plain 0 in a variadic call. */
    bz_histogram_observe(bz_histogram_family_with(fam, (const char *)NULL), 2);
    char *text = render_own(reg);
    assert_non_null(strstr(text, "t_seconds_bucket{topic=\"a\",le=\"1\"} 1\n"));
    assert_non_null(strstr(text, "t_seconds_bucket{topic=\"\",le=\"1\"} 0\n"));
    assert_non_null(strstr(text, "t_seconds_count{topic=\"\"} 1\n"));
    free(text);
    bz_metrics_free(reg);
}

/* ---- validation -------------------------------------------------------- */

static void test_bad_definitions_are_refused(void **state)
{
    (void)state;
    static const double not_increasing[] = {0.1, 0.1};
    static const double with_nan[] = {0.1, NAN};
    static const double with_inf[] = {0.1, INFINITY};
    const struct {
        const char *what;
        int kind; /* 0 counter, 1 histogram, 2 counter family, 3 histogram family */
        bz_metric_def def;
        const char *expect;
    } cases[] = {
        {"empty name", 0, {.name = "", .help = "h"}, "invalid name"},
        {"digit first", 0, {.name = "1abc", .help = "h"}, "invalid name '1abc'"},
        {"dash", 0, {.name = "a-b", .help = "h"}, "invalid name 'a-b'"},
        {"space", 0, {.name = "a b", .help = "h"}, "invalid name"},
        {"no help", 0, {.name = "ok_total"}, "help text is required"},
        {"reserved label", 0,
         {.name = "ok_total", .help = "h", .const_labels = (const char *[]){"__x", "v", NULL}},
         "invalid label name '__x'"},
        {"bad label", 2,
         {.name = "ok_total", .help = "h", .label_names = (const char *[]){"a.b", NULL}},
         "invalid label name 'a.b'"},
        {"le on histogram", 3,
         {.name = "ok_seconds", .help = "h", .label_names = (const char *[]){"le", NULL}},
         "reserved"},
        {"le const on histogram", 1,
         {.name = "ok_seconds", .help = "h", .const_labels = (const char *[]){"le", "1", NULL}},
         "reserved"},
        {"label twice", 2,
         {.name = "ok_total", .help = "h", .const_labels = (const char *[]){"a", "1", NULL},
          .label_names = (const char *[]){"a", NULL}},
         "label 'a' given twice"},
        {"family without labels", 2, {.name = "ok_total", .help = "h"}, "needs label names"},
        {"labels on a plain metric", 0,
         {.name = "ok_total", .help = "h", .label_names = (const char *[]){"a", NULL}},
         "_family"},
        {"too many labels", 2,
         {.name = "ok_total", .help = "h",
          .label_names = (const char *[]){"a", "b", "c", "d", "e", NULL}},
         "more than 4 labels"},
        {"const label without value", 0,
         {.name = "ok_total", .help = "h", .const_labels = (const char *[]){"a", NULL}},
         "has no value"},
        {"buckets not increasing", 1,
         {.name = "ok_seconds", .help = "h", .buckets = not_increasing, .n_buckets = 2},
         "strictly increase"},
        {"bucket NaN", 1, {.name = "ok_seconds", .help = "h", .buckets = with_nan, .n_buckets = 2},
         "not finite"},
        {"bucket Inf", 1, {.name = "ok_seconds", .help = "h", .buckets = with_inf, .n_buckets = 2},
         "not finite"},
        {"no buckets", 1, {.name = "ok_seconds", .help = "h", .buckets = with_inf, .n_buckets = 0},
         "no buckets"},
    };
    bz_metrics *reg = new_registry();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bz_error err = {0};
        void *out = (void *)1;
        bz_status st = BZ_OK;
        switch (cases[i].kind) {
        case 0: st = bz_metrics_counter(reg, &cases[i].def, (bz_counter **)&out, &err); break;
        case 1: st = bz_metrics_histogram(reg, &cases[i].def, (bz_histogram **)&out, &err); break;
        case 2: st = bz_metrics_counter_family(reg, &cases[i].def, (bz_counter_family **)&out, &err); break;
        case 3: st = bz_metrics_histogram_family(reg, &cases[i].def, (bz_histogram_family **)&out, &err); break;
        }
        if (st != BZ_ERR_INVALID || !strstr(err.msg, cases[i].expect))
            fail_msg("%s: got %s '%s', wanted invalid '%s'", cases[i].what, bz_status_name(st),
                     err.msg, cases[i].expect);
        assert_null(out);
    }
    /* Nothing half-registered: the names are still free. */
    bz_counter *c;
    bz_error err = {0};
    assert_int_equal(bz_metrics_counter(reg, BZ_METRIC("ok_total", "h"), &c, &err), BZ_OK);
    bz_metrics_free(reg);
}

static void test_duplicate_names_conflict(void **state)
{
    (void)state;
    bz_metrics *reg = new_registry();
    bz_error err = {0};
    bz_counter *c;
    bz_gauge *g;
    assert_int_equal(bz_metrics_counter(reg, BZ_METRIC("dup_total", "h"), &c, &err), BZ_OK);
    assert_int_equal(bz_metrics_gauge(reg, BZ_METRIC("dup_total", "h"), &g, &err), BZ_ERR_CONFLICT);
    assert_non_null(strstr(err.msg, "dup_total"));
    assert_int_equal(bz_metrics_gauge(reg, BZ_METRIC("process_start_time_seconds", "h"), &g, &err),
                     BZ_ERR_CONFLICT);
    bz_metrics_free(reg);
}

/* ---- declared tables --------------------------------------------------- */

/* The "# TYPE" lines of text, one after the other, so that a test can check
 * the order metrics render in. */
static void type_lines(const char *text, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (const char *p = strstr(text, "# TYPE "); p; p = strstr(p + 1, "\n# TYPE ")) {
        if (*p == '\n')
            p++;
        size_t n = strcspn(p, "\n") + 1;
        assert_true(len + n < cap);
        memcpy(out + len, p, n);
        len += n;
        out[len] = '\0';
    }
}

static void test_declare_registers_every_kind_in_order(void **state)
{
    (void)state;
    bz_metrics *reg = new_registry();
    bz_error err = {0};
    bz_counter *sent = NULL;
    bz_gauge *lag = NULL;
    bz_histogram *apply = NULL;
    bz_counter_family *dead = NULL;
    bz_gauge_family *depth = NULL;
    bz_histogram_family *age = NULL;
    static const double buckets[] = {0.5, 2};
    /* Not in the order of the kinds, nor of the names: the table's order is
     * the one that must come out. */
    const bz_metric_decl decls[] = {
        {.def = {.name = "z_queue_depth", .help = "Depth.",
                 .label_names = (const char *const[]){"queue", NULL}},
         .gauges = &depth},
        {.def = {.name = "a_sent_total", .help = "Sent."}, .counter = &sent},
        {.def = {.name = "m_age_seconds", .help = "Age.",
                 .label_names = (const char *const[]){"topic", NULL}},
         .histograms = &age},
        {.def = {.name = "b_apply_seconds", .help = "Apply.", .buckets = buckets,
                 .n_buckets = 2},
         .histogram = &apply},
        {.def = {.name = "y_dead_total", .help = "Dead.",
                 .label_names = (const char *const[]){"reason", NULL}, .max_children = 1},
         .counters = &dead},
        {.def = {.name = "c_lag", .help = "Lag.",
                 .const_labels = (const char *const[]){"group", "g1", NULL}},
         .gauge = &lag},
    };
    assert_int_equal(BZ_METRICS_DECLARE(reg, decls, &err), BZ_OK);
    assert_non_null(sent);
    assert_non_null(lag);
    assert_non_null(apply);
    assert_non_null(dead);
    assert_non_null(depth);
    assert_non_null(age);

    bz_counter_add(sent, 3);
    bz_gauge_set(lag, 7);
    bz_histogram_observe(apply, 1);
    bz_counter_inc(bz_counter_family_with(dead, "decode_error"));
    /* max_children = 1: a second reason shares the "other" child. */
    bz_counter_inc(bz_counter_family_with(dead, "too_big"));
    bz_gauge_set(bz_gauge_family_with(depth, "retry"), 2);
    bz_histogram_observe(bz_histogram_family_with(age, "chat.events"), 0.001);

    char *text = render_own(reg);
    char types[512];
    type_lines(text, types, sizeof types);
    assert_string_equal(types, "# TYPE z_queue_depth gauge\n"
                               "# TYPE a_sent_total counter\n"
                               "# TYPE m_age_seconds histogram\n"
                               "# TYPE b_apply_seconds histogram\n"
                               "# TYPE y_dead_total counter\n"
                               "# TYPE c_lag gauge\n");
    assert_non_null(strstr(text, "\na_sent_total 3\n"));
    assert_non_null(strstr(text, "\nc_lag{group=\"g1\"} 7\n"));
    assert_non_null(strstr(text, "\nb_apply_seconds_bucket{le=\"0.5\"} 0\n"
                                 "b_apply_seconds_bucket{le=\"2\"} 1\n"));
    assert_non_null(strstr(text, "\ny_dead_total{reason=\"decode_error\"} 1\n"
                                 "y_dead_total{reason=\"other\"} 1\n"));
    assert_non_null(strstr(text, "\nz_queue_depth{queue=\"retry\"} 2\n"));
    assert_non_null(strstr(text, "\nm_age_seconds_count{topic=\"chat.events\"} 1\n"));
    free(text);
    bz_metrics_free(reg);
}

/* Declare decls (n of them) in a fresh registry; it must fail with code,
 * naming the metric called name, and leave unregistered the metric called
 * after, which comes after the bad declaration. */
static void expect_declare_fails(const bz_metric_decl *decls, size_t n, bz_status code,
                                 const char *name, const char *after)
{
    bz_metrics *reg = new_registry();
    bz_error err = {0};
    assert_int_equal(bz_metrics_declare(reg, decls, n, &err), code);
    assert_int_equal(err.code, code);
    assert_non_null(strstr(err.msg, name));
    char *text = render_own(reg);
    assert_non_null(strstr(text, "# TYPE first_total counter\n"));
    assert_null(strstr(text, after));
    free(text);
    bz_metrics_free(reg);
}

static void test_declare_refuses_bad_declarations(void **state)
{
    (void)state;
    bz_counter *first = NULL, *c = NULL, *after = NULL;
    bz_gauge *g = NULL;
    const bz_metric_decl no_handle[] = {
        {.def = {.name = "first_total", .help = "h"}, .counter = &first},
        {.def = {.name = "no_handle_total", .help = "h"}},
        {.def = {.name = "after_total", .help = "h"}, .counter = &after},
    };
    expect_declare_fails(no_handle, 3, BZ_ERR_INTERNAL, "no_handle_total", "after_total");
    assert_non_null(first);
    assert_null(after);

    const bz_metric_decl two_handles[] = {
        {.def = {.name = "first_total", .help = "h"}, .counter = &first},
        {.def = {.name = "two_handles", .help = "h"}, .counter = &c, .gauge = &g},
        {.def = {.name = "after_total", .help = "h"}, .counter = &after},
    };
    expect_declare_fails(two_handles, 3, BZ_ERR_INTERNAL, "two_handles", "after_total");
    assert_null(c);
    assert_null(g);
    assert_null(after);

    const bz_metric_decl duplicate[] = {
        {.def = {.name = "first_total", .help = "h"}, .counter = &first},
        {.def = {.name = "first_total", .help = "again"}, .gauge = &g},
        {.def = {.name = "after_total", .help = "h"}, .counter = &after},
    };
    expect_declare_fails(duplicate, 3, BZ_ERR_CONFLICT, "first_total", "after_total");
    assert_null(g);
    assert_null(after);

    /* What the bz_metrics_* call of the kind refuses is refused the same. */
    const bz_metric_decl no_help[] = {
        {.def = {.name = "first_total", .help = "h"}, .counter = &first},
        {.def = {.name = "no_help_total"}, .counter = &c},
        {.def = {.name = "after_total", .help = "h"}, .counter = &after},
    };
    expect_declare_fails(no_help, 3, BZ_ERR_INVALID, "no_help_total", "after_total");
    assert_null(c);
    assert_null(after);
}

/* ---- process metrics --------------------------------------------------- */

static double sample_value(const char *text, const char *name)
{
    char prefix[96];
    snprintf(prefix, sizeof prefix, "\n%s ", name);
    const char *p = strstr(text, prefix);
    assert_non_null(p);
    return strtod(p + strlen(prefix), NULL);
}

static void test_process_metrics_are_rendered(void **state)
{
    (void)state;
    bz_metrics *reg = new_registry();
    char *text;
    size_t len;
    assert_int_equal(bz_metrics_render(reg, &text, &len), BZ_OK);
    assert_non_null(strstr(text, "# TYPE process_resident_memory_bytes gauge\n"));
    assert_non_null(strstr(text, "# TYPE process_start_time_seconds gauge\n"));
    double rss = sample_value(text, "process_resident_memory_bytes");
    double start = sample_value(text, "process_start_time_seconds");
    double now = (double)time(NULL);
    assert_true(rss > 1024 * 1024);
    assert_true(start <= now + 1);
    assert_true(start > now - 600);
    assert_int_equal(text[len - 1], '\n');
    free(text);
    bz_metrics_free(reg);
}

static void test_clock_is_monotonic(void **state)
{
    (void)state;
    double a = bz_metrics_clock();
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, NULL);
    double b = bz_metrics_clock();
    assert_true(b - a >= 0.002);
    assert_true(b - a < 1.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_updates_sum_exactly),
        cmocka_unit_test(test_histogram_bucket_placement_on_boundaries),
        cmocka_unit_test(test_default_latency_buckets),
        cmocka_unit_test(test_render_small_registry_exactly),
        cmocka_unit_test(test_gauge_special_values_render),
        cmocka_unit_test(test_family_children_are_stable_and_capped),
        cmocka_unit_test(test_histogram_family_children),
        cmocka_unit_test(test_bad_definitions_are_refused),
        cmocka_unit_test(test_duplicate_names_conflict),
        cmocka_unit_test(test_declare_registers_every_kind_in_order),
        cmocka_unit_test(test_declare_refuses_bad_declarations),
        cmocka_unit_test(test_process_metrics_are_rendered),
        cmocka_unit_test(test_clock_is_monotonic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
