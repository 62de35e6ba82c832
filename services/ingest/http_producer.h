/*
 * http_producer.h - the HTTP path's producer: publishes what the requests
 * brought (idempotent, acks=all) and wakes each request once the broker
 * has settled every one of its records, with no thread blocked per
 * waiting request.
 *
 * A request counts the records it expects in one ing_http_acks; whoever
 * makes a record (the router, http_router.h, on its own thread) sends it
 * or settles it without the broker:
 *
 *   ing_http_acks *acks = ing_http_acks_new();
 *   ing_http_acks_expect(p, acks);                   (once per record to come)
 *   ...  ing_http_producer_send(p, &record, acks)    (its delivery report settles it)
 *   ...  or ing_http_acks_settle(p, acks, outcome)    (settled without the broker)
 *   if (ing_http_acks_await(p, acks, conn, &outcome))  settled already: answer now
 *   else                                           conn is suspended; when it is
 *       ...                                 resumed: outcome = ing_http_acks_release(p, acks)
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

#include "core/status.h"
#include "kafka/producer.h"

typedef struct ing_http_producer_config {
    const char *brokers;
    const char *main_topic; /* full name of the topic most records go to, learned at start */
    int produce_timeout_ms;
    int linger_ms;
} ing_http_producer_config;

typedef struct ing_http_producer ing_http_producer;
typedef struct ing_http_acks ing_http_acks;

/* What became of a request's records: the first failure is kept, so the
 * 503 says which part of the route failed. */
typedef enum ing_http_outcome {
    ING_HTTP_ACKNOWLEDGED,     /* every record acknowledged by the broker */
    ING_HTTP_NOT_ACKNOWLEDGED, /* the broker refused one or did not answer in time */
    ING_HTTP_NOT_ROUTED,       /* one never reached the broker: its owner's lookup failed
                                  or was slow, the router's queue was full, memory ran out */
    ING_HTTP_STOPPING,         /* ingest is stopping and waits for no broker now */
} ing_http_outcome;

/* Create the producer and its poller thread. The config's strings must
 * outlive it. Free with ing_http_producer_free. */
bz_status ing_http_producer_new(const ing_http_producer_config *cfg, ing_http_producer **out,
                               bz_error *err);

/* Flush (at most produce_timeout_ms), stop the poller and free. No request
 * may be waiting (see ing_http_producer_stop_waiting). */
void ing_http_producer_free(ing_http_producer *p);

/* An empty set of records for one request; NULL when memory ran out. */
ing_http_acks *ing_http_acks_new(void);

/* One record of a request; every pointer is borrowed for the call. */
typedef struct ing_http_record {
    const char *topic; /* full name */
    const void *key;
    size_t key_len;
    const void *value;
    size_t len;
    const bz_kafka_header *headers;
    size_t nheaders;
} ing_http_record;

/* acks expects one more record. */
void ing_http_acks_expect(ing_http_producer *p, ing_http_acks *acks);

/* Queue rec (copied) as one of the records acks expects; its delivery
 * report settles it. When it cannot even be queued it is settled as not
 * acknowledged. */
void ing_http_producer_send(ing_http_producer *p, const ing_http_record *rec, ing_http_acks *acks);

/* Settle one of the records acks expects without the broker, as failed
 * with why (the request is answered 503). acks may be freed here, when its
 * request let go of it already. */
void ing_http_acks_settle(ing_http_producer *p, ing_http_acks *acks, ing_http_outcome why);

/* After the last send. Returns 1 when every record is settled already:
 * *outcome tells what became of them, and acks is freed. Returns 0
 * when some are outstanding: conn (the request's connection, inside its
 * access handler) has been suspended and will be resumed once they settle
 * or are overdue; then call ing_http_acks_release. After
 * ing_http_producer_stop_waiting nothing is suspended: with some
 * outstanding it returns 1, *outcome ING_HTTP_STOPPING, and the reports
 * still to come free acks. */
int ing_http_acks_await(ing_http_producer *p, ing_http_acks *acks, struct MHD_Connection *conn,
                       ing_http_outcome *outcome);

/* The request is done with acks (after its connection was resumed, or when
 * the connection closed first). Returns what became of its records (not
 * acknowledged while some are outstanding). acks must not be used again. */
ing_http_outcome ing_http_acks_release(ing_http_producer *p, ing_http_acks *acks);

/* Requests whose connection is suspended waiting for the broker. */
int ing_http_producer_waiting(ing_http_producer *p);

/* Give up on every waiting request (not acknowledged) and resume its
 * connection, and let none wait from now on (ing_http_acks_await):
 * libmicrohttpd must not be stopped with a connection suspended, and a
 * request on a kept-alive connection may come in after this. */
void ing_http_producer_stop_waiting(ing_http_producer *p);

#endif
