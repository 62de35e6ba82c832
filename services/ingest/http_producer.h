/*
 * http_producer.h - the HTTP path's producer: publishes accepted events to
 * wa.inbound.raw (idempotent, acks=all) and wakes the request waiting for
 * them once the broker has settled every one, with no thread blocked per
 * waiting request.
 *
 * A request collects its records in one ing_http_acks:
 *
 *   ing_http_acks *acks = ing_http_acks_new();
 *   ing_http_producer_send(p, ev, gateway, acks);   (once per event)
 *   if (ing_http_acks_await(p, acks, conn, &ok))    settled already: answer now
 *   else                                           conn is suspended; when it is
 *       ...                                        resumed: ok = ing_http_acks_release(p, acks)
 *
 * The delivery report of a request's last record resumes its connection;
 * so does produce_timeout_ms + 1 s without one (counted as not
 * acknowledged), as a safety net. A request that ends without reading the
 * outcome (its connection closed) releases its acks all the same; reports
 * that arrive later free them.
 */
#ifndef ING_HTTP_PRODUCER_H
#define ING_HTTP_PRODUCER_H

#include <microhttpd.h>

#include "blazz/v1/inbound.pb-c.h"
#include "core/status.h"
#include "gateway_auth.h"

typedef struct ing_http_producer_config {
    const char *brokers;
    const char *raw_topic; /* full name */
    int produce_timeout_ms;
    int linger_ms;
} ing_http_producer_config;

typedef struct ing_http_producer ing_http_producer;
typedef struct ing_http_acks ing_http_acks;

/* Create the producer and its poller thread. The config's strings must
 * outlive it. Free with ing_http_producer_free. */
bz_status ing_http_producer_new(const ing_http_producer_config *cfg, ing_http_producer **out,
                               bz_error *err);

/* Flush (at most produce_timeout_ms), stop the poller and free. No request
 * may be waiting (see ing_http_producer_wake_all). */
void ing_http_producer_free(ing_http_producer *p);

/* An empty set of records for one request; NULL when memory ran out. */
ing_http_acks *ing_http_acks_new(void);

/* Queue ev on the raw topic as one of acks' records, with the gateway that
 * signed it in the ING_GATEWAY_HEADER header. Returns 1 when it was
 * queued; 0 when it was not (acks then counts as failed). */
int ing_http_producer_send(ing_http_producer *p, const Blazz__V1__InboundEvent *ev,
                          const char *gateway_id, ing_http_acks *acks);

/* Count acks as failed whatever the broker says (an event of the request
 * could not be sent at all). */
void ing_http_acks_fail(ing_http_producer *p, ing_http_acks *acks);

/* After the last send. Returns 1 when every record is settled already:
 * *ok tells whether all were acknowledged, and acks is freed. Returns 0
 * when some are outstanding: conn (the request's connection, inside its
 * access handler) has been suspended and will be resumed once they settle
 * or are overdue; then call ing_http_acks_release. */
int ing_http_acks_await(ing_http_producer *p, ing_http_acks *acks, struct MHD_Connection *conn,
                       int *ok);

/* The request is done with acks (after its connection was resumed, or when
 * the connection closed first). Returns 1 when every record was
 * acknowledged. acks must not be used again. */
int ing_http_acks_release(ing_http_producer *p, ing_http_acks *acks);

/* Requests whose connection is suspended waiting for the broker. */
int ing_http_producer_waiting(ing_http_producer *p);

/* Give up on every waiting request (not acknowledged) and resume its
 * connection; libmicrohttpd must not be stopped with one suspended. */
void ing_http_producer_wake_all(ing_http_producer *p);

#endif
