/*
 * worker.h - the delivery worker: claims due deliveries and sends them.
 *
 * A worker thread owns a PostgreSQL connection, a LISTEN connection
 * (channel blazz_webhook, notified by the fan-out at commit), a libcurl
 * multi driver, a producer for webhook.dlq and the in-memory state of every
 * endpoint it has seen (decrypted secrets, token bucket, circuit breaker,
 * in-flight count, a short local queue).
 *
 * Claiming: due rows (status pending | retrying, next_retry_at <= now) are
 * taken endpoint by endpoint (a skip scan finds the endpoints with open
 * rows) with FOR UPDATE SKIP LOCKED, so several dispatcher instances share
 * the queue without blocking each other, and leased by pushing
 * next_retry_at forward by claim_lease_ms: if the process dies, the rows
 * fall due again and another instance delivers them (with the same
 * webhook-id). Each claim increments the row's claim number (claims), and
 * every outcome names the claim it comes from (outcomes.h), so a holder
 * whose lease ran out cannot overwrite the next holder's outcome. A claimed
 * job whose lease would run out before its attempt could time out is handed
 * back instead of sent.
 *
 * Fairness: an endpoint may hold only its share of the worker (fairness.h:
 * its concurrency plus a second of its throughput), a claim takes at most
 * that many rows per endpoint, and endpoints at their share, or whose
 * circuit is open, are skipped, at the cost of one index descent each
 * whatever their backlog. The circuit opens on the failure ratio or on a
 * few timeouts in a row; its open period is written to the endpoint
 * (circuit_open_until) and every instance's claims skip the endpoint until
 * then. So endpoints that never answer hold a few slots each until their
 * circuits open, and healthy endpoints keep being claimed and sent.
 *
 * Sending respects per-endpoint max_concurrency and rate_limit_per_sec
 * (token bucket). Outcomes are written back in batches: success; retrying
 * with next_retry_at from the schedule (jitter, Retry-After as a floor);
 * failed for permanent failures. A 410 disables the endpoint; an endpoint
 * failing continuously for auto_disable_after_ms is disabled too.
 *
 * Exhausted deliveries: the last failure is written at once (retry_count
 * past max_retries, the row leased), and the dead letter is published on
 * webhook.dlq only if that write found the row still on this worker's
 * claim; the row is marked failed once the broker acknowledged it. A row
 * claimed with retry_count past max_retries (its dead letter was never
 * acknowledged) is dead-lettered without another attempt. At most
 * max_pending_dead_letters wait for the broker at once, their leases
 * renewed while they wait; beyond that, exhausted rows wait in the table,
 * leased, and are claimed again later. So a broker outage costs neither
 * unbounded memory nor attempts beyond max_retries nor a second dead
 * letter.
 */
#ifndef WH_WORKER_H
#define WH_WORKER_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "circuit.h"
#include "core/metrics.h"
#include "core/keyring.h"
#include "delivery.h"
#include "kafka/producer.h"
#include "schedule.h"

typedef struct wh_worker_config {
    const char *pg_dsn;
    bz_kafka_settings kafka;
    const char *topic_prefix;      /* to name the source topic in dead letters */
    const char *dlq_topic;         /* full name */
    const char *service;
    const bz_keyring *keyring;     /* borrowed; empty: secrets cannot be opened */
    wh_schedule schedule;
    int64_t retry_after_max_ms;
    int timeout_ms;                /* upper bound of an endpoint's timeout_ms */
    int stop_wait_ms;              /* in-flight attempts' time to finish at a stop */
    wh_delivery_config delivery;
    int claim_batch;
    int max_local_jobs;            /* claimed and not finished, all endpoints */
    int max_pending_dead_letters;  /* waiting for the broker at once */
    int64_t claim_lease_ms;
    int poll_ms;                   /* claim at least this often without NOTIFY */
    wh_circuit_config circuit;
    int64_t auto_disable_after_ms; /* 0: never */
    bz_metrics *metrics;           /* may be NULL */
} wh_worker_config;

typedef struct wh_worker wh_worker;

/* Start the worker thread. The config is copied; its strings must outlive
 * the worker. */
bz_status wh_worker_start(const wh_worker_config *cfg, wh_worker **out, bz_error *err);

/* Stop claiming, give in-flight attempts stop_wait_ms to finish, hand the
 * rest and the unstarted claims back, write every outcome, join, free. */
void wh_worker_stop(wh_worker *w);

/* 1 while the worker's database connection is up (for /readyz); a
 * statement refused for its data does not make it 0. */
int wh_worker_db_up(const wh_worker *w);

/* From the fan-out's thread: rows just committed leased to this worker
 * (leased_row.h's columns; taken: the worker clears it) at leased_at_ms
 * (monotonic) at the earliest, for their first attempts; those it cannot
 * take now fall due for the claims. */
void wh_worker_hand_over(wh_worker *w, PGresult *rows, int64_t leased_at_ms);

/* Its instance id (peers.h), the payload of its fan-out's notifications. */
const char *wh_worker_instance_id(const wh_worker *w);

#endif
