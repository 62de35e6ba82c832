/*
 * circuit.c - closed / open / half-open breaker (see circuit.h).
 */
#include "circuit.h"

void wh_circuit_init(wh_circuit *c, const wh_circuit_config *cfg)
{
    c->cfg = *cfg;
    if (c->cfg.window < 1)
        c->cfg.window = 1;
    if (c->cfg.window > 64)
        c->cfg.window = 64;
    if (c->cfg.min_requests < 1)
        c->cfg.min_requests = 1;
    if (c->cfg.min_requests > c->cfg.window)
        c->cfg.min_requests = c->cfg.window;
    if (c->cfg.open_max_ms < c->cfg.open_ms)
        c->cfg.open_max_ms = c->cfg.open_ms;
    c->state = WH_CIRCUIT_CLOSED;
    c->history = 0;
    c->recorded = 0;
    c->open_until_ms = 0;
    c->current_open_ms = c->cfg.open_ms;
    c->probe_in_flight = false;
    c->consecutive_timeouts = 0;
}

int wh_circuit_failures(const wh_circuit *c)
{
    uint64_t mask = c->cfg.window == 64 ? ~0ULL : (1ULL << c->cfg.window) - 1;
    return __builtin_popcountll(c->history & mask);
}

static void open_circuit(wh_circuit *c, int64_t now_ms, int64_t for_ms)
{
    c->state = WH_CIRCUIT_OPEN;
    c->current_open_ms = for_ms > c->cfg.open_max_ms ? c->cfg.open_max_ms : for_ms;
    c->open_until_ms = now_ms + c->current_open_ms;
    c->probe_in_flight = false;
}

bool wh_circuit_would_allow(const wh_circuit *c, int64_t now_ms)
{
    switch (c->state) {
    case WH_CIRCUIT_CLOSED: return true;
    case WH_CIRCUIT_OPEN: return now_ms >= c->open_until_ms;
    case WH_CIRCUIT_HALF_OPEN: return !c->probe_in_flight;
    }
    return false;
}

bool wh_circuit_allow(wh_circuit *c, int64_t now_ms)
{
    if (c->state == WH_CIRCUIT_OPEN && now_ms >= c->open_until_ms) {
        c->state = WH_CIRCUIT_HALF_OPEN;
        c->probe_in_flight = false;
    }
    if (c->state == WH_CIRCUIT_CLOSED)
        return true;
    if (c->state == WH_CIRCUIT_HALF_OPEN && !c->probe_in_flight) {
        c->probe_in_flight = true;
        return true;
    }
    return false;
}

void wh_circuit_record(wh_circuit *c, bool success, int64_t now_ms)
{
    c->consecutive_timeouts = 0;
    if (c->cfg.disabled)
        return;
    if (c->state == WH_CIRCUIT_HALF_OPEN) {
        if (success) {
            c->state = WH_CIRCUIT_CLOSED;
            c->history = 0;
            c->recorded = 0;
            c->current_open_ms = c->cfg.open_ms;
            c->probe_in_flight = false;
        } else {
            open_circuit(c, now_ms, c->current_open_ms * 2);
        }
        return;
    }
    if (c->state == WH_CIRCUIT_OPEN)
        return; /* attempts started before it opened: already accounted for */
    c->history = (c->history << 1) | (success ? 0u : 1u);
    if (c->recorded < c->cfg.window)
        c->recorded++;
    if (c->recorded >= c->cfg.min_requests &&
        (double)wh_circuit_failures(c) >= c->cfg.failure_ratio * (double)c->recorded)
        open_circuit(c, now_ms, c->cfg.open_ms);
}

void wh_circuit_record_timeout(wh_circuit *c, int64_t now_ms)
{
    int timeouts = c->consecutive_timeouts + 1;
    wh_circuit_record(c, false, now_ms);
    if (c->cfg.disabled)
        return;
    c->consecutive_timeouts = timeouts;
    if (c->state == WH_CIRCUIT_CLOSED && c->cfg.timeouts_to_open > 0 &&
        timeouts >= c->cfg.timeouts_to_open)
        open_circuit(c, now_ms, c->cfg.open_ms);
}
