/*
 * http_producer.h - the HTTP path's producer: publishes accepted events to
 * wa.inbound.raw (idempotent, acks=all) and wakes the request waiting for
 * them once the broker has settled every one, with no thread blocked per
 * waiting request.
 *
 * A request collects its records in one bz_http_acks:
 *
 *   bz_http_acks *acks = bz_http_acks_new();
 *   bz_http_producer_send(p, ev, gateway, acks);   (once per event)
 *   if (bz_http_acks_await(p, acks, conn, &ok))    settled already: answer now
 *   else                                           conn is suspended; when it is
 *       ...                                        resumed: ok = bz_http_acks_release(p, acks)
 *
 * The delivery report of a request's last record resumes its connection;
 * so does produce_timeout_ms + 1 s without one (counted as not
 * acknowledged), as a safety net. A request that ends without reading the
 * outcome (its connection closed) releases its acks all the same; reports
 * that arrive later free them.
 */
#ifndef BZ_INGEST_HTTP_PRODUCER_H
#define BZ_INGEST_HTTP_PRODUCER_H

#include <microhttpd.h>

#include "blazz/v1/inbound.pb-c.h"
#include "core/status.h"
#include "gateway_auth.h"

typedef struct bz_http_producer_config {
    const char *brokers;
    const char *raw_topic; /* full name */
    int produce_timeout_ms;
    int linger_ms;
} bz_http_producer_config;

typedef struct bz_http_producer bz_http_producer;
typedef struct bz_http_acks bz_http_acks;

/* Create the producer and its poller thread. The config's strings must
 * outlive it. Free with bz_http_producer_free. */
bz_status bz_http_producer_new(const bz_http_producer_config *cfg, bz_http_producer **out,
                               bz_error *err);

/* Flush (at most produce_timeout_ms), stop the poller and free. No request
 * may be waiting (see bz_http_producer_wake_all). */
void bz_http_producer_free(bz_http_producer *p);

/* An empty set of records for one request; NULL when memory ran out. */
bz_http_acks *bz_http_acks_new(void);

/* Queue ev on the raw topic as one of acks' records, with the gateway that
 * signed it in the BZ_INGEST_GATEWAY_HEADER header. Returns 1 when it was
 * queued; 0 when it was not (acks then counts as failed). */
int bz_http_producer_send(bz_http_producer *p, const Blazz__V1__InboundEvent *ev,
                          const char *gateway_id, bz_http_acks *acks);

/* Count acks as failed whatever the broker says (an event of the request
 * could not be sent at all). */
void bz_http_acks_fail(bz_http_producer *p, bz_http_acks *acks);

/* After the last send. Returns 1 when every record is settled already:
 * *ok tells whether all were acknowledged, and acks is freed. Returns 0
 * when some are outstanding: conn (the request's connection, inside its
 * access handler) has been suspended and will be resumed once they settle
 * or are overdue; then call bz_http_acks_release. */
int bz_http_acks_await(bz_http_producer *p, bz_http_acks *acks, struct MHD_Connection *conn,
                       int *ok);

/* The request is done with acks (after its connection was resumed, or when
 * the connection closed first). Returns 1 when every record was
 * acknowledged. acks must not be used again. */
int bz_http_acks_release(bz_http_producer *p, bz_http_acks *acks);

/* Requests whose connection is suspended waiting for the broker. */
int bz_http_producer_waiting(bz_http_producer *p);

/* Give up on every waiting request (not acknowledged) and resume its
 * connection; libmicrohttpd must not be stopped with one suspended. */
void bz_http_producer_wake_all(bz_http_producer *p);

#endif
