/*
 * dlq.c - building and producing dead letters (see dlq.h).
 *
 * Building fits the record into the limit in steps, each taken only when
 * the previous one did not suffice: keep everything, cutting the original
 * value if needed (recording its size and SHA-256); drop the original
 * headers; produce without a Kafka key and cut the original key. Each step
 * starts again from the whole value, measures the record as librdkafka
 * will (bz_kafka_record_size) and cuts exactly the excess, so what is kept
 * is as much of the original as fits. Every loss is also noted in the
 * error message, which the dlt-exception-message header repeats.
 */
#include "kafka/dlq.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blazz/v1/dead_letter.pb-c.h"
#include "kafka/limits.h"

#define SHA256_BYTES 32

/* The dead letter being fitted, and the record it goes into. */
typedef struct fitting {
    Blazz__V1__DeadLetter dl;
    Blazz__V1__Header header_store[BZ_DLQ_ORIGINAL_HEADERS_MAX];
    Blazz__V1__Header *header_ptrs[BZ_DLQ_ORIGINAL_HEADERS_MAX];
    uint8_t sha256[SHA256_BYTES];
    int sha256_done;
    size_t value_note_at; /* where the note on a cut value starts in the message */
    const bz_dlq_original *orig;
    bz_dlq_record *rec;
} fitting;

static size_t original_headers_to_proto(fitting *f)
{
    const bz_dlq_original *o = f->orig;
    size_t n = o->nheaders < BZ_DLQ_ORIGINAL_HEADERS_MAX ? o->nheaders
                                                         : BZ_DLQ_ORIGINAL_HEADERS_MAX;
    for (size_t i = 0; i < n; i++) {
        blazz__v1__header__init(&f->header_store[i]);
        f->header_store[i].key = (char *)o->headers[i].name;
        f->header_store[i].value.data = (uint8_t *)o->headers[i].value;
        f->header_store[i].value.len = o->headers[i].value ? o->headers[i].len : 0;
        f->header_ptrs[i] = &f->header_store[i];
    }
    return n;
}

static void set_header(bz_dlq_record *rec, const char *name, const char *value)
{
    rec->headers[rec->nheaders++] = (bz_kafka_header){name, value, strlen(value)};
}

static void fill_record_headers(fitting *f, const bz_dead_letter_info *info)
{
    bz_dlq_record *rec = f->rec;
    snprintf(rec->partition_text, sizeof rec->partition_text, "%" PRId32, f->orig->partition);
    snprintf(rec->offset_text, sizeof rec->offset_text, "%" PRId64, f->orig->offset);
    rec->nheaders = 0;
    set_header(rec, "dlt-original-topic", f->dl.original_topic);
    set_header(rec, "dlt-original-partition", rec->partition_text);
    set_header(rec, "dlt-original-offset", rec->offset_text);
    set_header(rec, "dlt-exception-message", rec->message);
    set_header(rec, "dlt-error-code", f->dl.error_code);
    set_header(rec, "dlt-service", f->dl.service);
    if (info->event_id && *info->event_id)
        set_header(rec, "event_id", info->event_id);
}

static void init_fitting(fitting *f, const bz_dlq_original *orig, const bz_dead_letter_info *info,
                         bz_dlq_record *rec)
{
    memset(rec, 0, sizeof *rec);
    f->sha256_done = 0;
    f->value_note_at = 0;
    f->orig = orig;
    f->rec = rec;
    snprintf(rec->message, sizeof rec->message, "%s",
             info->error_message ? info->error_message : "");
    rec->key = orig->key;
    rec->key_len = orig->key ? orig->key_len : 0;
    Blazz__V1__DeadLetter *dl = &f->dl;
    blazz__v1__dead_letter__init(dl);
    dl->original_topic = (char *)(orig->topic ? orig->topic : "");
    dl->original_partition = orig->partition;
    dl->original_offset = orig->offset;
    dl->original_key.data = (uint8_t *)orig->key;
    dl->original_key.len = rec->key_len;
    dl->original_value.data = (uint8_t *)orig->value;
    dl->original_value.len = orig->value ? orig->value_len : 0;
    dl->n_original_headers = original_headers_to_proto(f);
    dl->original_headers = f->header_ptrs;
    dl->error_code = (char *)(info->error_code ? info->error_code : "unknown");
    dl->error_message = rec->message;
    dl->service = (char *)(info->service ? info->service : "");
    dl->event_id = (char *)(info->event_id ? info->event_id : "");
    dl->attempts = info->attempts;
    dl->first_failed_at_ms = info->first_failed_at_ms;
    dl->last_failed_at_ms = info->last_failed_at_ms;
    fill_record_headers(f, info);
}

/* Bytes by which the record is over the limit (0 when it fits). */
static size_t excess(const fitting *f)
{
    size_t size = bz_kafka_record_size(f->rec->key_len,
                                       blazz__v1__dead_letter__get_packed_size(&f->dl),
                                       f->rec->headers, f->rec->nheaders);
    return size > BZ_KAFKA_RECORD_MAX_BYTES ? size - BZ_KAFKA_RECORD_MAX_BYTES : 0;
}

/* Add a note to the error message (and so to its header) about what the
 * dead letter could not keep. */
static void note(fitting *f, const char *fmt, size_t n)
{
    size_t used = strlen(f->rec->message);
    snprintf(f->rec->message + used, sizeof f->rec->message - used, fmt, n);
    f->rec->headers[3].len = strlen(f->rec->message);
}

/* Forget an earlier cut of the value (a later step may have made room). */
static void uncut_value(fitting *f)
{
    if (!f->rec->value_cut)
        return;
    f->rec->value_cut = 0;
    f->rec->message[f->value_note_at] = '\0';
    f->rec->headers[3].len = f->value_note_at;
    f->dl.original_value_size = 0;
    f->dl.original_value_sha256.len = 0;
}

/* Keep the whole value if it fits now, else cut it by the excess and say
 * what the original was. */
static void fit_value(fitting *f)
{
    Blazz__V1__DeadLetter *dl = &f->dl;
    size_t full = f->orig->value ? f->orig->value_len : 0;
    uncut_value(f);
    dl->original_value.len = full;
    if (excess(f) == 0)
        return;
    if (!f->sha256_done) {
        EVP_Digest(f->orig->value, full, f->sha256, NULL, EVP_sha256(), NULL);
        f->sha256_done = 1;
    }
    f->rec->value_cut = 1;
    dl->original_value_size = (int64_t)full;
    dl->original_value_sha256.data = f->sha256;
    dl->original_value_sha256.len = SHA256_BYTES;
    f->value_note_at = strlen(f->rec->message);
    note(f, "; value of %zu bytes cut to fit the record limit", full);
    size_t over = excess(f);
    dl->original_value.len = over < full ? full - over : 0;
}

static void keep_everything_that_fits(fitting *f)
{
    fit_value(f);
}

static void drop_original_headers(fitting *f)
{
    uncut_value(f);
    note(f, "; %zu original header(s) dropped", f->dl.n_original_headers);
    f->dl.n_original_headers = 0;
    fit_value(f);
}

static void cut_key(fitting *f)
{
    size_t full = f->dl.original_key.len;
    f->rec->key = NULL;
    f->rec->key_len = 0;
    uncut_value(f);
    note(f, "; produced without a key (the original key of %zu bytes left no room)", full);
    fit_value(f);
    size_t over = excess(f);
    f->dl.original_key.len = over < full ? full - over : 0;
}

bz_status bz_dlq_build(const bz_dlq_original *orig, const bz_dead_letter_info *info,
                       bz_dlq_record *out, bz_error *err)
{
    fitting f;
    init_fitting(&f, orig, info, out);
    void (*const steps[])(fitting *) = {keep_everything_that_fits, drop_original_headers,
                                        cut_key};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0] && (i == 0 || excess(&f) > 0); i++)
        steps[i](&f);
    if (excess(&f) > 0)
        return bz_fail(err, BZ_ERR_INTERNAL,
                       "dead letter for %s[%" PRId32 "]@%" PRId64 ": %zu bytes over the record "
                       "limit with the original cut away",
                       f.dl.original_topic, orig->partition, orig->offset, excess(&f));
    out->value_len = blazz__v1__dead_letter__get_packed_size(&f.dl);
    out->value = malloc(out->value_len ? out->value_len : 1);
    if (!out->value)
        return bz_fail(err, BZ_ERR_NOMEM, "encode dead letter for %s[%" PRId32 "]@%" PRId64,
                       f.dl.original_topic, orig->partition, orig->offset);
    blazz__v1__dead_letter__pack(&f.dl, out->value);
    return BZ_OK;
}

void bz_dlq_record_free(bz_dlq_record *rec)
{
    free(rec->value);
    rec->value = NULL;
}

/* The consumed message as an original; headers are borrowed into store. */
static void original_of_message(const rd_kafka_message_t *m, bz_dlq_original *o,
                                bz_kafka_header *store, size_t cap)
{
    *o = (bz_dlq_original){.topic = rd_kafka_topic_name(m->rkt),
                           .partition = m->partition,
                           .offset = m->offset,
                           .key = m->key,
                           .key_len = m->key ? m->key_len : 0,
                           .value = m->payload,
                           .value_len = m->payload ? m->len : 0,
                           .headers = store};
    rd_kafka_headers_t *hdrs = NULL;
    if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR || !hdrs)
        return;
    const char *name;
    const void *value;
    size_t size;
    while (o->nheaders < cap &&
           rd_kafka_header_get_all(hdrs, o->nheaders, &name, &value, &size) ==
               RD_KAFKA_RESP_ERR_NO_ERROR) {
        store[o->nheaders] = (bz_kafka_header){name, value, value ? size : 0};
        o->nheaders++;
    }
}

static bz_status produce_dead_letter(bz_producer *p, const char *dlq_topic,
                                     const bz_dlq_original *orig, const bz_dead_letter_info *info,
                                     bz_delivery *delivery, int wait_ms, bz_error *err)
{
    bz_dlq_record rec;
    bz_status st = bz_dlq_build(orig, info, &rec, err);
    if (st == BZ_OK && wait_ms <= 0)
        st = bz_producer_send(p, dlq_topic, RD_KAFKA_PARTITION_UA, rec.key, rec.key_len,
                              rec.value, rec.value_len, rec.headers, rec.nheaders, delivery, err);
    else if (st == BZ_OK)
        st = bz_producer_send_sync(p, dlq_topic, rec.key, rec.key_len, rec.value, rec.value_len,
                                   rec.headers, rec.nheaders, wait_ms, err);
    bz_dlq_record_free(&rec);
    if (st != BZ_OK)
        return bz_wrap(err, "dead-letter %s[%" PRId32 "]@%" PRId64 " to %s", orig->topic,
                       orig->partition, orig->offset, dlq_topic);
    return BZ_OK;
}

bz_status bz_dlq_send_sync(bz_producer *p, const char *dlq_topic, const rd_kafka_message_t *orig,
                           const bz_dead_letter_info *info, int timeout_ms, bz_error *err)
{
    bz_kafka_header store[BZ_DLQ_ORIGINAL_HEADERS_MAX];
    bz_dlq_original o;
    original_of_message(orig, &o, store, BZ_DLQ_ORIGINAL_HEADERS_MAX);
    return produce_dead_letter(p, dlq_topic, &o, info, NULL, timeout_ms, err);
}

bz_status bz_dlq_send(bz_producer *p, const char *dlq_topic, const rd_kafka_message_t *orig,
                      const bz_dead_letter_info *info, bz_delivery *delivery, bz_error *err)
{
    bz_kafka_header store[BZ_DLQ_ORIGINAL_HEADERS_MAX];
    bz_dlq_original o;
    original_of_message(orig, &o, store, BZ_DLQ_ORIGINAL_HEADERS_MAX);
    return produce_dead_letter(p, dlq_topic, &o, info, delivery, 0, err);
}

bz_status bz_dlq_send_original_sync(bz_producer *p, const char *dlq_topic,
                                    const bz_dlq_original *orig, const bz_dead_letter_info *info,
                                    int timeout_ms, bz_error *err)
{
    return produce_dead_letter(p, dlq_topic, orig, info, NULL, timeout_ms, err);
}
