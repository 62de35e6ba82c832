/*
 * dlq_tail.c - `blazzctl dlq tail`: the newest dead letters of a topic, in
 * time order, and with --follow the new ones as they arrive.
 *
 * The records the reader (dlq_reader.h) delivers are kept, sorted by time
 * (then partition and offset) once the reader has caught up, and cut to
 * the newest --limit. Without
 * --follow they are printed then, as one JSON document or as text; with
 * it they are printed at once and every later record as it arrives (one
 * JSON object a line with --json), until Ctrl-C.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blazzctl.h"
#include "core/signals.h"
#include "dlq_json.h"
#include "dlq_options.h"
#include "dlq_reader.h"

typedef struct tail_entry {
    int64_t ts;
    int32_t partition;
    int64_t offset;
    json_t *record;
} tail_entry;

typedef struct tail_run {
    const bz_ctl_dlq_options *o;
    tail_entry *entries;
    size_t count, cap;
    int streaming;
    int failed;
} tail_run;

static void emit_record(const tail_run *t, json_t *record)
{
    if (!t->o->json) {
        bz_ctl_print_dlq_record(record);
    } else {
        char *line = json_dumps(record, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (line)
            puts(line);
        free(line);
    }
    fflush(stdout);
}

static int keep_entry(tail_run *t, const rd_kafka_message_t *m, json_t *record)
{
    if (t->count == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 256;
        tail_entry *grown = realloc(t->entries, cap * sizeof *grown);
        if (!grown) {
            json_decref(record);
            t->failed = 1;
            return 1;
        }
        t->entries = grown;
        t->cap = cap;
    }
    rd_kafka_timestamp_type_t type;
    t->entries[t->count++] = (tail_entry){rd_kafka_message_timestamp(m, &type), m->partition,
                                          m->offset, record};
    return 0;
}

static int tail_on_record(void *ctx, const rd_kafka_message_t *m, const Blazz__V1__DeadLetter *dl)
{
    tail_run *t = ctx;
    json_t *record = bz_ctl_dlq_record_json(m, dl);
    if (!record) {
        t->failed = 1;
        return 1;
    }
    if (t->streaming) {
        emit_record(t, record);
        json_decref(record);
        return 0;
    }
    return keep_entry(t, m, record);
}

static int by_time(const void *a, const void *b)
{
    const tail_entry *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    if (x->partition != y->partition)
        return x->partition < y->partition ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* The window in time order, newest `limit` only; printed at once when
 * following (the stream continues below it), else kept for the document. */
static void tail_on_caught_up(void *ctx)
{
    tail_run *t = ctx;
    if (t->count > 0) /* entries is NULL until the first record */
        qsort(t->entries, t->count, sizeof *t->entries, by_time);
    size_t first = t->o->limit > 0 && t->count > (size_t)t->o->limit
                       ? t->count - (size_t)t->o->limit
                       : 0;
    for (size_t i = 0; i < first; i++)
        json_decref(t->entries[i].record);
    if (first > 0)
        memmove(t->entries, t->entries + first, (t->count - first) * sizeof *t->entries);
    t->count -= first;
    if (!t->o->follow)
        return;
    for (size_t i = 0; i < t->count; i++) {
        emit_record(t, t->entries[i].record);
        json_decref(t->entries[i].record);
    }
    t->count = 0;
    t->streaming = 1;
}

static int print_tail(const tail_run *t)
{
    if (t->o->json) {
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < t->count; i++)
            json_array_append(arr, t->entries[i].record);
        return bz_ctl_print_json(arr ? json_pack("{s:s, s:I, s:o}", "topic", t->o->topic,
                                                 "count", (json_int_t)t->count, "records", arr)
                                     : NULL);
    }
    for (size_t i = 0; i < t->count; i++)
        bz_ctl_print_dlq_record(t->entries[i].record);
    printf("(%zu dead letter(s) on %s)\n", t->count, t->o->topic);
    return 0;
}

int bz_ctl_dlq_tail(const bz_ctl_dlq_options *o)
{
    tail_run t = {.o = o};
    bz_ctl_dlq_window w = {.since_ms = o->since_ms, .until_ms = -1,
                       .tail = o->since_ms < 0 ? o->limit : 0, .follow = o->follow};
    bz_ctl_dlq_reader_fns fns = {.on_record = tail_on_record, .on_caught_up = tail_on_caught_up};
    bz_error err;
    bz_error_clear(&err);
    if (o->follow)
        bz_signals_install_shutdown();
    bz_status st = bz_ctl_dlq_read(o->brokers, o->topic, &w, &fns, &t, &err);
    int rc = 0;
    if (st != BZ_OK)
        rc = bz_ctl_fail("dlq tail", &err);
    else if (t.failed)
        rc = fprintf(stderr, "blazzctl dlq tail: out of memory\n") > 0;
    else if (!o->follow)
        rc = print_tail(&t);
    for (size_t i = 0; i < t.count; i++)
        json_decref(t.entries[i].record);
    free(t.entries);
    return rc;
}
