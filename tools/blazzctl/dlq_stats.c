/*
 * dlq_stats.c - `blazzctl dlq stats`: how many dead letters a topic got in
 * a time window, by error code, by service, by original topic and by error
 * code and service together, with the first and last one's time.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "blazzctl.h"
#include "core/timespec.h"
#include "dlq_json.h"
#include "dlq_options.h"
#include "dlq_reader.h"

typedef struct stats_run {
    json_t *by_error, *by_service, *by_topic, *by_pair;
    int64_t total;
    int64_t first_ms, last_ms;
} stats_run;

static int stats_on_record(void *ctx, const rd_kafka_message_t *m, const Blazz__V1__DeadLetter *dl)
{
    stats_run *s = ctx;
    const char *code = dl ? dl->error_code : "(not a DeadLetter)";
    const char *service = dl ? dl->service : "(unknown)";
    bz_ctl_count_in(s->by_error, code);
    bz_ctl_count_in(s->by_service, service);
    bz_ctl_count_in(s->by_topic, dl ? dl->original_topic : "(unknown)");
    char pair[512];
    snprintf(pair, sizeof pair, "%s\t%s", code, service);
    bz_ctl_count_in(s->by_pair, pair);
    rd_kafka_timestamp_type_t type;
    int64_t ts = rd_kafka_message_timestamp(m, &type);
    if (s->total == 0 || ts < s->first_ms)
        s->first_ms = ts;
    if (s->total == 0 || ts > s->last_ms)
        s->last_ms = ts;
    s->total++;
    return 0;
}

static json_t *pairs_json(json_t *by_pair)
{
    json_t *arr = json_array();
    const char *key;
    json_t *n;
    json_object_foreach(by_pair, key, n) {
        const char *tab = strchr(key, '\t');
        json_t *code = json_stringn(key, (size_t)(tab - key));
        json_array_append_new(arr, json_pack("{s:o, s:s, s:O}", "error_code", code, "service",
                                             tab + 1, "count", n));
    }
    return arr;
}

static void print_counts(const char *title, json_t *counts)
{
    printf("%-40s %s\n", title, "COUNT");
    const char *key;
    json_t *n;
    json_object_foreach(counts, key, n) {
        printf("  %-38s %" JSON_INTEGER_FORMAT "\n", key, json_integer_value(n));
    }
}

static int print_stats(const bz_ctl_dlq_options *o, stats_run *s)
{
    if (o->json) {
        return bz_ctl_print_json(json_pack(
            "{s:s, s:o, s:o, s:I, s:o, s:o, s:O, s:O, s:O, s:o}", "topic", o->topic, "since",
            bz_ctl_time_json(o->since_ms), "until", bz_ctl_time_json(o->until_ms), "total",
            (json_int_t)s->total, "first", bz_ctl_time_json(s->total ? s->first_ms : 0), "last",
            bz_ctl_time_json(s->total ? s->last_ms : 0), "by_error_code", s->by_error, "by_service",
            s->by_service, "by_original_topic", s->by_topic, "by_error_and_service",
            pairs_json(s->by_pair)));
    }
    char first[40] = "-", last[40] = "-";
    if (s->total) {
        bz_time_format(s->first_ms, first, sizeof first);
        bz_time_format(s->last_ms, last, sizeof last);
    }
    printf("%s: %" PRId64 " dead letter(s), first %s, last %s\n\n", o->topic, s->total, first,
           last);
    print_counts("ERROR CODE", s->by_error);
    print_counts("SERVICE", s->by_service);
    print_counts("ORIGINAL TOPIC", s->by_topic);
    return 0;
}

int bz_ctl_dlq_stats(const bz_ctl_dlq_options *o)
{
    stats_run s = {json_object(), json_object(), json_object(), json_object(), 0, 0, 0};
    bz_ctl_dlq_window w = {.since_ms = o->since_ms, .until_ms = o->until_ms};
    bz_ctl_dlq_reader_fns fns = {.on_record = stats_on_record};
    bz_error err;
    bz_error_clear(&err);
    int rc;
    if (!s.by_error || !s.by_service || !s.by_topic || !s.by_pair)
        rc = fprintf(stderr, "blazzctl dlq stats: out of memory\n") > 0;
    else if (bz_ctl_dlq_read(o->brokers, o->topic, &w, &fns, &s, &err) != BZ_OK)
        rc = bz_ctl_fail("dlq stats", &err);
    else
        rc = print_stats(o, &s);
    json_decref(s.by_error);
    json_decref(s.by_service);
    json_decref(s.by_topic);
    json_decref(s.by_pair);
    return rc;
}
