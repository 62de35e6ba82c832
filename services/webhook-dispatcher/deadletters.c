/*
 * deadletters.c - the dead-letter set (see deadletters.h).
 *
 * A singly linked list; every dead letter carries the producer's delivery
 * handle first, so a delivery report leads straight back to it.
 */
#include "deadletters.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blazz/v1/dead_letter.pb-c.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/utf8.h"
#include "pg/columns.h"

typedef enum dl_state {
    DL_CONFIRMING, /* the outcome confirming its claim is not written yet */
    DL_CONFIRMED,  /* the row is on its claim: publish */
    DL_STALE,      /* the row is on another claim: never publish */
    DL_WAITING,    /* published, waiting for the broker */
    DL_ACKED,
    DL_RESEND      /* the broker failed it: publish again */
} dl_state;

struct wh_dead_letter {
    bz_delivery delivery; /* first: the delivery report gets this pointer */
    wh_dead_letter *next;
    dl_state state;
    int64_t id, claims;
    long code;
    const char *error_code;
    char *error;
    uint8_t *value;
    size_t value_len;
    char key[24];
    char event_id[40];
    char endpoint[24];
};

/* The lease renewal: only rows still on the claims their dead letters were
 * made on. */
static const char renew_sql[] =
    "UPDATE webhook_retry_queue q "
    "SET next_retry_at = now() + $3::bigint * interval '1 millisecond' "
    "FROM unnest($1::bigint[], $2::int[]) AS u(id, claims) "
    "WHERE q.id = u.id AND q.claims = u.claims AND q.status NOT IN ('success', 'failed')";

bz_status wh_dead_letters_prepare(bz_pg *pg, bz_error *err)
{
    return bz_pg_prepare(pg, "wh_renew", renew_sql, err);
}

static void on_delivery_report(bz_delivery *d, rd_kafka_resp_err_t err, int32_t partition,
                               int64_t offset)
{
    (void)partition, (void)offset;
    wh_dead_letter *dl = (wh_dead_letter *)d;
    dl->state = err == RD_KAFKA_RESP_ERR_NO_ERROR ? DL_ACKED : DL_RESEND;
}

static bz_status encode(const wh_dead_letters *d, const wh_dead_letter_source *src,
                        wh_dead_letter *dl, bz_error *err)
{
    Blazz__V1__DeadLetter m = BLAZZ__V1__DEAD_LETTER__INIT;
    Blazz__V1__Header h[3], *hp[3];
    static const char *names[3] = {"webhook-endpoint-id", "event_id", "content-type"};
    const char *values[3] = {dl->endpoint, dl->event_id, "application/json"};
    for (int i = 0; i < 3; i++) {
        blazz__v1__header__init(&h[i]);
        h[i].key = (char *)names[i];
        h[i].value.data = (uint8_t *)values[i];
        h[i].value.len = strlen(values[i]);
        hp[i] = &h[i];
    }
    m.original_topic = (char *)src->original_topic;
    m.original_partition = -1;
    m.original_offset = -1;
    m.original_key.data = (uint8_t *)dl->key;
    m.original_key.len = strlen(dl->key);
    m.original_value.data = (uint8_t *)src->body;
    m.original_value.len = src->body_len;
    m.n_original_headers = 3;
    m.original_headers = hp;
    m.error_code = (char *)dl->error_code;
    m.error_message = dl->error;
    m.service = (char *)d->service;
    m.attempts = src->attempts;
    m.first_failed_at_ms = src->created_ms;
    m.last_failed_at_ms = bz_wall_ms();
    m.event_id = dl->event_id;
    dl->value_len = blazz__v1__dead_letter__get_packed_size(&m);
    dl->value = malloc(dl->value_len);
    if (!dl->value)
        return bz_fail(err, BZ_ERR_NOMEM, "dead letter for %s: out of memory", dl->event_id);
    blazz__v1__dead_letter__pack(&m, dl->value);
    return BZ_OK;
}

static void free_dead_letter(wh_dead_letter *dl)
{
    free(dl->error);
    free(dl->value);
    free(dl);
}

wh_dead_letter *wh_dead_letters_add(wh_dead_letters *d,
                                          const wh_dead_letter_source *src)
{
    if (d->count >= d->max_pending) {
        if (!d->full_logged)
            bz_log(BZ_LOG_WARN, "%d dead letters wait for the broker: further undeliverable "
                   "deliveries wait in the table until it answers (delivery %" PRId64 " first)",
                   d->count, src->id);
        d->full_logged = true;
        return NULL;
    }
    wh_dead_letter *dl = calloc(1, sizeof *dl);
    bz_error err;
    if (!dl || !(dl->error = strdup(src->message))) {
        free(dl);
        bz_error_log("dead-letter delivery %" PRId64 ": out of memory; retried later", src->id);
        return NULL;
    }
    bz_utf8_scrub(dl->error); /* a protobuf string */
    dl->delivery.on_done = on_delivery_report;
    dl->state = DL_CONFIRMING;
    dl->id = src->id;
    dl->claims = src->claims;
    dl->code = src->code;
    dl->error_code = src->error_code;
    snprintf(dl->key, sizeof dl->key, "%" PRId64, src->workspace_id);
    snprintf(dl->event_id, sizeof dl->event_id, "%s", src->event_id);
    snprintf(dl->endpoint, sizeof dl->endpoint, "%" PRId64, src->endpoint_id);
    if (encode(d, src, dl, &err) != BZ_OK) {
        bz_log_event(BZ_LOG_WARN, src->event_id, NULL, "dead-letter delivery %" PRId64 ": %s",
                     src->id, err.msg);
        free_dead_letter(dl);
        return NULL;
    }
    dl->next = d->head;
    d->head = dl;
    d->count++;
    return dl;
}

void wh_dead_letters_confirmed(wh_dead_letter *dl, bool applied)
{
    dl->state = applied ? DL_CONFIRMED : DL_STALE;
}

static bz_status publish(wh_dead_letters *d, wh_dead_letter *dl, bz_error *err)
{
    const char *msg = dl->error;
    bz_kafka_header headers[] = {
        {"dlt-exception-message", msg, strlen(msg)},
        {"dlt-error-code", dl->error_code, strlen(dl->error_code)},
        {"dlt-service", d->service, strlen(d->service)},
        {"event_id", dl->event_id, strlen(dl->event_id)},
        {"webhook-endpoint-id", dl->endpoint, strlen(dl->endpoint)},
    };
    dl->state = DL_WAITING;
    return bz_producer_send(d->producer, d->topic, RD_KAFKA_PARTITION_UA, dl->key,
                            strlen(dl->key), dl->value, dl->value_len, headers,
                            sizeof headers / sizeof headers[0], &dl->delivery, err);
}

static void forget(wh_dead_letters *d, wh_dead_letter **link)
{
    wh_dead_letter *dl = *link;
    *link = dl->next;
    free_dead_letter(dl);
    d->count--;
    if (d->count < d->max_pending)
        d->full_logged = false;
}

size_t wh_dead_letters_drain(wh_dead_letters *d, wh_dead_letter_acked_fn acked,
                                void *ctx)
{
    if (!d->head)
        return 0;
    bz_producer_poll(d->producer, 0);
    size_t n = 0;
    wh_dead_letter **link = &d->head;
    while (*link) {
        wh_dead_letter *dl = *link;
        bz_error err;
        if ((dl->state == DL_CONFIRMED || dl->state == DL_RESEND) &&
            publish(d, dl, &err) != BZ_OK)
            dl->state = DL_RESEND;
        if (dl->state == DL_STALE) {
            bz_log_event(BZ_LOG_INFO, dl->event_id, NULL, "delivery %" PRId64 " is on another "
                         "claim now (this one's lease ran out): its dead letter is not sent",
                         dl->id);
            forget(d, link);
        } else if (dl->state == DL_ACKED) {
            acked(ctx, dl->id, dl->claims, dl->error, dl->code);
            n++;
            forget(d, link);
        } else {
            link = &dl->next;
        }
    }
    return n;
}

bool wh_dead_letters_renewal_due(const wh_dead_letters *d, int64_t now_ms)
{
    return d->head && now_ms >= d->next_renew_ms;
}

void wh_dead_letters_renew(wh_dead_letters *d, PGconn *conn, int64_t now_ms)
{
    d->next_renew_ms = now_ms + d->lease_ms / 3;
    size_t n = (size_t)d->count;
    int64_t *ids = calloc(n, sizeof *ids), *claims = calloc(n, sizeof *claims);
    char *id_text = NULL, *claim_text = NULL, lease[24];
    if (ids && claims) {
        size_t i = 0;
        for (wh_dead_letter *dl = d->head; dl && i < n; dl = dl->next, i++) {
            ids[i] = dl->id;
            claims[i] = dl->claims;
        }
        id_text = bz_pg_int64_array(ids, n);
        claim_text = bz_pg_int64_array(claims, n);
    }
    snprintf(lease, sizeof lease, "%" PRId64, d->lease_ms);
    const char *params[] = {id_text, claim_text, lease};
    bz_error err;
    if (!id_text || !claim_text)
        bz_error_log("renew the leases of %zu dead letters: out of memory", n);
    else if (bz_pg_exec_prepared(conn, "wh_renew", 3, params, NULL, NULL, NULL, &err) != BZ_OK)
        bz_log(BZ_LOG_WARN, "renew the leases of %zu dead letters: %s", n, err.msg);
    free(ids), free(claims), free(id_text), free(claim_text);
}

void wh_dead_letters_free(wh_dead_letters *d)
{
    while (d->head) {
        wh_dead_letter *next = d->head->next;
        free_dead_letter(d->head);
        d->head = next;
    }
    d->count = 0;
}
