/*
 * dlq_replay.c - `blazzctl dlq replay`: the original records of the
 * matching dead letters, sent again to their original topics.
 *
 * Only the dead letters that exist when replay starts are read. Each one
 * that matches the filters (any value of a kind, every kind given) goes
 * back with its original key, value and headers through the idempotent
 * producer, or, for a topic only outbox relays write, through PostgreSQL
 * (dlq_replay_db.h). A dead letter whose payload was cut is counted and
 * skipped: its bytes are not the original's. The run fails unless the
 * broker acknowledged every record it was given; re-running is safe, as
 * consumers de-duplicate by event_id. On a terminal, progress is drawn on
 * stderr.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blazzctl.h"
#include "core/clock.h"
#include "dlq_json.h"
#include "dlq_options.h"
#include "dlq_reader.h"
#include "dlq_replay_db.h"
#include "kafka/producer.h"

#define REPLAY_FLUSH_MS 60000

typedef struct replay_run {
    const bz_ctl_dlq_options *o;
    bz_producer *producer;
    bz_ctl_replay_db *db; /* opened for the first record that needs it */
    json_t *by_topic;
    int64_t window, scanned, matched, undecodable, not_replayable, queued;
    bz_delivery_tally sent; /* records replayed: through Kafka, or the database */
    int show_progress;
    int64_t progress_at_ms;
    bz_error send_err;
    int send_failed;
} replay_run;

static int is_listed(const char *value, const char *const *list, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(value, list[i]) == 0)
            return 1;
    return 0;
}

static int matches_filters(const bz_ctl_dlq_filters *f, const Blazz__V1__DeadLetter *dl)
{
    return (f->nerrors == 0 || is_listed(dl->error_code, f->errors, f->nerrors)) &&
           (f->nservices == 0 || is_listed(dl->service, f->services, f->nservices));
}

static void draw_progress(replay_run *r, int final)
{
    if (!r->show_progress)
        return;
    int64_t now = bz_monotonic_ms();
    if (!final && now - r->progress_at_ms < 100)
        return;
    r->progress_at_ms = now;
    int width = 30;
    int filled = r->window > 0 ? (int)(r->scanned * width / r->window) : width;
    if (filled > width)
        filled = width;
    fprintf(stderr, "\rreplay [%.*s%*s] %3d%%  %" PRId64 "/%" PRId64 " scanned, %" PRId64
                    " matched, %" PRIu64 " sent",
            filled, "##############################", width - filled, "",
            r->window > 0 ? (int)(r->scanned * 100 / r->window) : 100, r->scanned, r->window,
            r->matched, r->sent.delivered);
    if (final)
        fputc('\n', stderr);
}

static void replay_on_total(void *ctx, int64_t records)
{
    ((replay_run *)ctx)->window = records;
}

/* Queue dl's original record for its original topic. */
static int republish(replay_run *r, const Blazz__V1__DeadLetter *dl)
{
    bz_kafka_header *headers = calloc(dl->n_original_headers + 1, sizeof *headers);
    if (!headers) {
        bz_fail(&r->send_err, BZ_ERR_NOMEM, "replay: out of memory");
        return 1;
    }
    for (size_t i = 0; i < dl->n_original_headers; i++)
        headers[i] = (bz_kafka_header){dl->original_headers[i]->key,
                                       dl->original_headers[i]->value.data,
                                       dl->original_headers[i]->value.len};
    bz_status st = bz_producer_send(
        r->producer, dl->original_topic, RD_KAFKA_PARTITION_UA,
        dl->original_key.len ? dl->original_key.data : NULL, dl->original_key.len,
        dl->original_value.data, dl->original_value.len, headers, dl->n_original_headers,
        &r->sent.base, &r->send_err);
    free(headers);
    if (st != BZ_OK)
        return 1;
    r->queued++;
    bz_producer_poll(r->producer, 0);
    return 0;
}

/* Send dl through PostgreSQL (dlq_replay_db.h). A record the database
 * cannot take counts as failed; losing the database stops the replay. */
static int replay_through_db(replay_run *r, const Blazz__V1__DeadLetter *dl)
{
    if (!r->db && bz_ctl_replay_db_open(r->o->dsn, &r->db, &r->send_err) != BZ_OK)
        return 1;
    bz_error err;
    bz_error_clear(&err);
    bz_status st = bz_ctl_replay_db_send(r->db, r->o->prefix, dl, &err);
    if (st == BZ_OK) {
        r->queued++;
        r->sent.delivered++;
        return 0;
    }
    if (st == BZ_ERR_INVALID || st == BZ_ERR_NOT_FOUND) {
        fprintf(stderr, "blazzctl dlq replay: %s\n", err.msg);
        r->sent.failed++;
        return 0;
    }
    r->send_err = err;
    return 1;
}

static int replay_on_record(void *ctx, const rd_kafka_message_t *m,
                            const Blazz__V1__DeadLetter *dl)
{
    (void)m;
    replay_run *r = ctx;
    r->scanned++;
    if (!dl || !dl->original_topic[0]) {
        r->undecodable++;
    } else if (matches_filters(&r->o->filters, dl)) {
        r->matched++;
        bz_ctl_count_in(r->by_topic, dl->original_topic);
        if (bz_ctl_payload_is_cut(dl)) {
            r->not_replayable++; /* its bytes are not the original's */
        } else if (r->o->dry_run) {
            /* counted only */
        } else if (bz_ctl_replay_via_db(r->o->prefix, dl) ? replay_through_db(r, dl)
                                                          : republish(r, dl)) {
            r->send_failed = 1;
            return 1;
        }
    }
    draw_progress(r, 0);
    return 0;
}

static int print_replay(const replay_run *r)
{
    const bz_ctl_dlq_options *o = r->o;
    if (o->json)
        return bz_ctl_print_json(json_pack(
            "{s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:O}", "topic", o->topic,
            "dry_run", o->dry_run, "scanned", (json_int_t)r->scanned, "matched",
            (json_int_t)r->matched, "replayed", (json_int_t)r->sent.delivered, "failed",
            (json_int_t)r->sent.failed, "requeued", (json_int_t)bz_ctl_replay_db_requeued(r->db),
            "outboxed", (json_int_t)bz_ctl_replay_db_outboxed(r->db), "not_dead_letters",
            (json_int_t)r->undecodable, "not_replayable", (json_int_t)r->not_replayable,
            "by_original_topic", r->by_topic));
    printf("%s %" PRId64 " of %" PRId64 " dead letter(s) from %s", o->dry_run ? "would replay"
                                                                              : "replayed",
           o->dry_run ? r->matched - r->not_replayable : (int64_t)r->sent.delivered, r->scanned,
           o->topic);
    if (r->undecodable)
        printf(" (%" PRId64 " were not DeadLetters and were skipped)", r->undecodable);
    if (r->not_replayable)
        printf(" (%" PRId64 " had a cut payload and cannot be replayed)", r->not_replayable);
    if (r->db)
        printf(" (through PostgreSQL: %" PRId64 " deliveries re-queued, %" PRId64
               " outbox rows)",
               bz_ctl_replay_db_requeued(r->db), bz_ctl_replay_db_outboxed(r->db));
    printf("\n");
    const char *key;
    json_t *n;
    json_object_foreach(r->by_topic, key, n) {
        printf("  -> %-40s %" JSON_INTEGER_FORMAT "\n", key, json_integer_value(n));
    }
    return 0;
}

static int finish_replay(replay_run *r, bz_status read_st, bz_error *read_err)
{
    bz_error err;
    bz_error_clear(&err);
    if (r->producer && bz_producer_flush(r->producer, REPLAY_FLUSH_MS, &err) != BZ_OK)
        r->send_failed = 1;
    draw_progress(r, 1);
    if (read_st != BZ_OK)
        return bz_ctl_fail("dlq replay", read_err);
    if (r->send_failed && r->send_err.msg[0])
        return bz_ctl_fail("dlq replay", &r->send_err);
    if (r->send_failed || r->sent.failed > 0 || r->sent.delivered != (uint64_t)r->queued) {
        print_replay(r);
        fprintf(stderr,
                "blazzctl dlq replay: %" PRIu64 " of %" PRId64
                " record(s) not acknowledged by the broker; re-running is safe\n",
                (uint64_t)r->queued - r->sent.delivered, r->queued);
        return 1;
    }
    return print_replay(r);
}

int bz_ctl_dlq_replay(const bz_ctl_dlq_options *o)
{
    replay_run r = {.o = o, .by_topic = json_object(),
                    .show_progress = !o->json && isatty(STDERR_FILENO)};
    bz_delivery_tally_init(&r.sent);
    bz_error_clear(&r.send_err);
    bz_error err;
    bz_error_clear(&err);
    if (!r.by_topic)
        return fprintf(stderr, "blazzctl dlq replay: out of memory\n") > 0;
    bz_kafka_settings settings = {.brokers = o->brokers, .client_id = "blazzctl-replay"};
    bz_status st = o->dry_run ? BZ_OK : bz_producer_new(&settings, &r.producer, &err);
    if (st == BZ_OK) {
        bz_ctl_dlq_window w = {.since_ms = o->since_ms, .until_ms = o->until_ms};
        bz_ctl_dlq_reader_fns fns = {.on_record = replay_on_record, .on_total = replay_on_total};
        st = bz_ctl_dlq_read(o->brokers, o->topic, &w, &fns, &r, &err);
    }
    int rc = finish_replay(&r, st, &err);
    if (r.producer)
        bz_producer_free(r.producer, 1000);
    bz_ctl_replay_db_free(r.db);
    json_decref(r.by_topic);
    return rc;
}
