/*
 * circuit.h - a per-endpoint circuit breaker.
 *
 * Closed: every attempt may go; the outcomes of the last `window` attempts
 * are remembered. When at least `min_requests` of them are recorded and the
 * failure ratio reaches `failure_ratio`, the circuit opens: no attempts for
 * `open_ms`, so the worker stops claiming the endpoint's backlog and its
 * capacity goes to healthy endpoints. After that it is half-open: exactly
 * one probe may go. A successful probe closes it (fresh window); a failed one
 * re-opens it for twice as long, up to `open_max_ms`.
 *
 * Timeouts open it sooner: `timeouts_to_open` timed-out attempts in a row
 * (nothing answered in between, not even an error) open it at once,
 * whatever the ratio. An endpoint that accepts connections and never
 * answers holds each of its attempts for the whole timeout; waiting for
 * `min_requests` of them kept its backlog claimed for several timeouts.
 *
 * A disabled breaker (webhook.circuit.enabled = false) stays closed.
 *
 * Plain data, owned by one thread; time is passed in (monotonic ms).
 */
#ifndef WH_CIRCUIT_H
#define WH_CIRCUIT_H

#include <stdbool.h>
#include <stdint.h>

typedef enum wh_circuit_state {
    WH_CIRCUIT_CLOSED = 0,
    WH_CIRCUIT_OPEN = 1,
    WH_CIRCUIT_HALF_OPEN = 2
} wh_circuit_state;

typedef struct wh_circuit_config {
    int window;           /* outcomes remembered, 1..64 */
    int min_requests;     /* outcomes needed before the ratio counts */
    double failure_ratio; /* 0 < ratio <= 1 */
    int64_t open_ms;
    int64_t open_max_ms;
    int timeouts_to_open; /* consecutive timeouts that open it; 0: only the ratio */
    bool disabled;        /* never opens: retries follow the schedule alone */
} wh_circuit_config;

typedef struct wh_circuit {
    wh_circuit_config cfg;
    wh_circuit_state state;
    uint64_t history;  /* bit i = 1: failure, newest in bit 0 */
    int recorded;      /* outcomes in history, <= window */
    int64_t open_until_ms;
    int64_t current_open_ms;
    bool probe_in_flight;
    int consecutive_timeouts;
} wh_circuit;

void wh_circuit_init(wh_circuit *c, const wh_circuit_config *cfg);

/* May an attempt start now? In the half-open state this hands out the one
 * probe (and the caller must report its outcome). */
bool wh_circuit_allow(wh_circuit *c, int64_t now_ms);

/* Would an attempt be allowed now, without taking the probe? For deciding
 * whether to claim the endpoint's backlog at all. */
bool wh_circuit_would_allow(const wh_circuit *c, int64_t now_ms);

/* Record the outcome of an attempt that allow() let through: an answer
 * (success or not) or another failure. */
void wh_circuit_record(wh_circuit *c, bool success, int64_t now_ms);

/* Record an attempt that allow() let through and that timed out: a failure
 * that also counts towards timeouts_to_open. */
void wh_circuit_record_timeout(wh_circuit *c, int64_t now_ms);

/* Failures among the remembered outcomes. */
int wh_circuit_failures(const wh_circuit *c);

#endif
