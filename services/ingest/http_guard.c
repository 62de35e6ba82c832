/*
 * http_guard.c - connection limits, deadlines and the buffered-bytes bound
 * of ingest's public listener (see http_guard.h).
 *
 * Every open connection has a tracker in one list, under one mutex, and
 * counts against its client address in a small chained hash (keyed by
 * client_address.h: IPv4 whole, IPv6 by its /64). A
 * tracker is in one of three phases: idle
 * (opened, or its last request answered), request (request line seen,
 * headers and body coming) and handling (whole request in, answer not yet
 * sent). Each phase change restarts the tracker's clock; bytes received do
 * not, which is the point: an idle timeout that every trickled byte resets
 * let 600 slow connections hold the listener for ever.
 *
 * A sweeper thread looks at every tracker four times a second and cuts a
 * connection idle or mid-request for longer than allowed: shutdown(2) on its
 * socket, which the server then sees as the client leaving. Doing that from
 * another thread is safe because the server reports a connection closed
 * (ing_http_guard_closed, under the same mutex) before it closes the socket,
 * so a tracker in the list always names that connection's open socket.
 *
 * Buffered bytes are counted under the same mutex, three ways: in all
 * (against max_buffered_bytes), per address for requests not yet
 * authenticated (against max_buffered_per_address), and for authenticated
 * requests (what /readyz looks at). A tracker holds its current request's
 * bytes, so an abandoned request gives back what it took when its
 * connection closes.
 *
 * The sweeper also samples the listening socket's accept queue: on a
 * listening socket Linux reports the queue's length in TCP_INFO's
 * tcpi_unacked. A queue that stayed non-empty over the last second of
 * samples means clients wait to be accepted.
 */
#include "http_guard.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client_address.h"
#include "core/clock.h"
#include "core/hash.h"
#include "core/log.h"

#define SWEEP_MS 250
#define QUEUE_SAMPLES 4           /* one second of sweeps */
#define ADDRESS_BUCKETS 1024
#define REPORT_EVERY_MS 10000     /* cuts and refusals are logged as one line per period */

typedef enum phase { PHASE_IDLE, PHASE_REQUEST, PHASE_HANDLING } phase;

typedef struct address_count {
    struct address_count *next;
    uint8_t key[ING_CLIENT_KEY_LEN];
    int count;
    size_t unverified; /* bytes of its requests not yet authenticated */
} address_count;

struct ing_http_conn {
    ing_http_conn *prev, *next;
    address_count *address;
    int fd;
    phase phase;
    int64_t since_ms;
    int64_t body_allowance_ms; /* beyond the request deadline (ing_http_guard_allow_body) */
    int cut;
    size_t held;       /* bytes its current request took */
    int authenticated; /* its current request proved its sender */
};

struct ing_http_guard {
    ing_http_guard_config cfg;
    pthread_mutex_t mu;
    ing_http_conn *head;
    int connections, in_request, handling;
    address_count *buckets[ADDRESS_BUCKETS];
    int listen_fd;
    int queue[QUEUE_SAMPLES];
    unsigned queue_at;
    int cut_idle, cut_request;    /* since the last report */
    int64_t reported_ms;
    atomic_int refused_address;   /* since the last report */
    int refused_share, refused_bound; /* since the last report */
    size_t buffered, authenticated; /* bytes: in all, of authenticated requests */
    atomic_int running;
    pthread_t sweeper;
    int sweeper_started;
};

/* ---- per-address counts (under mu) ---------------------------------------- */

static address_count **bucket_of(ing_http_guard *g, const uint8_t key[ING_CLIENT_KEY_LEN])
{
    return &g->buckets[bz_hash_bytes(key, ING_CLIENT_KEY_LEN) % ADDRESS_BUCKETS];
}

/* One more connection from key; NULL when the address is at its limit (or
 * memory ran out). */
static address_count *address_take(ing_http_guard *g, const uint8_t key[ING_CLIENT_KEY_LEN])
{
    address_count **bucket = bucket_of(g, key), *a = *bucket;
    while (a && memcmp(a->key, key, ING_CLIENT_KEY_LEN) != 0)
        a = a->next;
    if (!a) {
        if (!(a = calloc(1, sizeof *a)))
            return NULL;
        memcpy(a->key, key, ING_CLIENT_KEY_LEN);
        a->next = *bucket;
        *bucket = a;
    }
    if (a->count >= g->cfg.max_per_address)
        return NULL;
    a->count++;
    return a;
}

static void address_drop(ing_http_guard *g, address_count *a)
{
    if (--a->count > 0)
        return;
    address_count **link = bucket_of(g, a->key);
    while (*link != a)
        link = &(*link)->next;
    *link = a->next;
    free(a);
}

/* ---- phases (under mu) ---------------------------------------------------- */

static void count_phase(ing_http_guard *g, phase p, int delta)
{
    if (p == PHASE_REQUEST)
        g->in_request += delta;
    else if (p == PHASE_HANDLING)
        g->handling += delta;
}

static void enter_phase(ing_http_guard *g, ing_http_conn *c, phase p)
{
    count_phase(g, c->phase, -1);
    count_phase(g, p, +1);
    c->phase = p;
    c->since_ms = bz_monotonic_ms();
    c->body_allowance_ms = 0;
}

static void count_connections(ing_http_guard *g)
{
    if (g->cfg.metrics)
        bz_gauge_set(g->cfg.metrics->http_connections, g->connections);
}

/* ---- the sweeper ---------------------------------------------------------- */

/* How long c may stay in its phase; 0: as long as it takes. */
static int64_t allowed_ms(const ing_http_guard *g, const ing_http_conn *c)
{
    if (c->phase == PHASE_IDLE)
        return g->cfg.idle_timeout_ms;
    return c->phase == PHASE_REQUEST ? g->cfg.request_deadline_ms + c->body_allowance_ms : 0;
}

/* Counted before the shutdown, as a refusal is (ing_http_guard_opened). */
static void cut(ing_http_guard *g, ing_http_conn *c)
{
    c->cut = 1;
    int idle = c->phase == PHASE_IDLE;
    *(idle ? &g->cut_idle : &g->cut_request) += 1;
    if (g->cfg.metrics)
        bz_counter_inc(bz_counter_family_with(g->cfg.metrics->http_cut, idle ? "idle" : "request"));
    shutdown(c->fd, SHUT_RDWR);
}

/* One line per period for what the limits did, however many clients they
 * hit: a listener under pressure would otherwise log per connection. */
static void report_actions(ing_http_guard *g, int64_t now)
{
    if (now - g->reported_ms < REPORT_EVERY_MS)
        return;
    int address = atomic_exchange(&g->refused_address, 0);
    if (g->cut_idle + g->cut_request + address + g->refused_share + g->refused_bound > 0)
        bz_warn("ingest http: cut %d connections at the request deadline and %d idle ones, refused "
                "%d connections over their address's limit, %d requests over their address's "
                "share of the buffered bytes and %d over the buffered-bytes bound (%d "
                "connections open)",
                g->cut_request, g->cut_idle, address, g->refused_share, g->refused_bound,
                g->connections);
    g->cut_idle = g->cut_request = g->refused_share = g->refused_bound = 0;
    g->reported_ms = now;
}

static int accept_queue_length(int listen_fd)
{
    struct tcp_info info;
    socklen_t len = sizeof info;
    if (listen_fd < 0 || getsockopt(listen_fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0)
        return 0;
    return (int)info.tcpi_unacked;
}

static void sweep(ing_http_guard *g)
{
    pthread_mutex_lock(&g->mu);
    int64_t now = bz_monotonic_ms();
    for (ing_http_conn *c = g->head; c; c = c->next) {
        int64_t limit = allowed_ms(g, c);
        if (!c->cut && limit > 0 && now - c->since_ms > limit)
            cut(g, c);
    }
    int queued = accept_queue_length(g->listen_fd);
    g->queue[g->queue_at++ % QUEUE_SAMPLES] = queued;
    report_actions(g, now);
    pthread_mutex_unlock(&g->mu);
    if (g->cfg.metrics)
        bz_gauge_set(g->cfg.metrics->http_accept_queue, queued);
}

static void *run_sweeper(void *arg)
{
    ing_http_guard *g = arg;
    while (atomic_load(&g->running)) {
        bz_sleep_ms(SWEEP_MS);
        sweep(g);
    }
    return NULL;
}

/* ---- lifecycle ------------------------------------------------------------ */

bz_status ing_http_guard_new(const ing_http_guard_config *cfg, ing_http_guard **out, bz_error *err)
{
    ing_http_guard *g = calloc(1, sizeof *g);
    if (!g)
        return bz_fail(err, BZ_ERR_NOMEM, "ingest http guard: out of memory");
    g->cfg = *cfg;
    g->listen_fd = -1;
    g->reported_ms = bz_monotonic_ms();
    pthread_mutex_init(&g->mu, NULL);
    atomic_store(&g->running, 1);
    if (pthread_create(&g->sweeper, NULL, run_sweeper, g) != 0) {
        ing_http_guard_free(g);
        return bz_fail(err, BZ_ERR_INTERNAL, "ingest http guard: cannot start the sweeper");
    }
    g->sweeper_started = 1;
    *out = g;
    return BZ_OK;
}

void ing_http_guard_free(ing_http_guard *g)
{
    if (!g)
        return;
    atomic_store(&g->running, 0);
    if (g->sweeper_started)
        pthread_join(g->sweeper, NULL);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

void ing_http_guard_watch_listener(ing_http_guard *g, int listen_fd)
{
    pthread_mutex_lock(&g->mu);
    g->listen_fd = listen_fd;
    pthread_mutex_unlock(&g->mu);
}

/* ---- connection events ------------------------------------------------------ */

ing_http_conn *ing_http_guard_opened(ing_http_guard *g, int fd, const struct sockaddr *addr)
{
    uint8_t key[ING_CLIENT_KEY_LEN];
    ing_client_address_key(addr, key);
    pthread_mutex_lock(&g->mu);
    ing_http_conn *c = NULL;
    address_count *a = address_take(g, key);
    if (a && !(c = calloc(1, sizeof *c)))
        address_drop(g, a);
    if (c) {
        c->address = a;
        c->fd = fd;
        c->phase = PHASE_IDLE;
        c->since_ms = bz_monotonic_ms();
        c->next = g->head;
        if (g->head)
            g->head->prev = c;
        g->head = c;
        g->connections++;
        count_connections(g);
    }
    pthread_mutex_unlock(&g->mu);
    if (!c) {
        /* counted before the peer can see the refusal, so a scrape after
         * it counts it (test_ingest_pressure read 0 once, on a busy machine) */
        atomic_fetch_add(&g->refused_address, 1);
        if (g->cfg.metrics)
            bz_counter_inc(bz_counter_family_with(g->cfg.metrics->http_refused, "per_address"));
        shutdown(fd, SHUT_RDWR);
    }
    return c;
}

static void give_back(ing_http_guard *g, ing_http_conn *c);

void ing_http_guard_closed(ing_http_guard *g, ing_http_conn *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&g->mu);
    give_back(g, c);
    if (c->prev)
        c->prev->next = c->next;
    else
        g->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    count_phase(g, c->phase, -1);
    address_drop(g, c->address);
    g->connections--;
    count_connections(g);
    pthread_mutex_unlock(&g->mu);
    free(c);
}

void ing_http_guard_request_started(ing_http_guard *g, ing_http_conn *c)
{
    pthread_mutex_lock(&g->mu);
    enter_phase(g, c, PHASE_REQUEST);
    pthread_mutex_unlock(&g->mu);
}

int ing_http_guard_request_received(ing_http_guard *g, ing_http_conn *c)
{
    pthread_mutex_lock(&g->mu);
    int alive = !c->cut;
    enter_phase(g, c, PHASE_HANDLING);
    pthread_mutex_unlock(&g->mu);
    return alive;
}

void ing_http_guard_allow_body(ing_http_guard *g, ing_http_conn *c, uint64_t bytes)
{
    uint64_t rate = g->cfg.min_body_rate ? g->cfg.min_body_rate : 1;
    pthread_mutex_lock(&g->mu);
    if (c->phase == PHASE_REQUEST)
        c->body_allowance_ms = (int64_t)(bytes / rate * 1000 + bytes % rate * 1000 / rate);
    pthread_mutex_unlock(&g->mu);
}

void ing_http_guard_request_done(ing_http_guard *g, ing_http_conn *c)
{
    pthread_mutex_lock(&g->mu);
    enter_phase(g, c, PHASE_IDLE);
    pthread_mutex_unlock(&g->mu);
}

int ing_http_guard_handling(ing_http_guard *g)
{
    pthread_mutex_lock(&g->mu);
    int n = g->handling;
    pthread_mutex_unlock(&g->mu);
    return n;
}

/* ---- buffered bytes (under mu) ---------------------------------------------- */

static void count_buffered(ing_http_guard *g)
{
    if (g->cfg.metrics)
        bz_gauge_set(g->cfg.metrics->http_buffered_bytes, (double)g->buffered);
}

/* Which limit, if any, bytes more for c would pass. */
static ing_http_room judge_room(const ing_http_guard *g, const ing_http_conn *c, size_t bytes)
{
    if (bytes > g->cfg.max_buffered_bytes - g->buffered)
        return ING_HTTP_ROOM_BOUND_FULL;
    if (!c->authenticated &&
        bytes > g->cfg.max_buffered_per_address - c->address->unverified)
        return ING_HTTP_ROOM_ADDRESS_FULL;
    return ING_HTTP_ROOM;
}

static void count_refusal(ing_http_guard *g, ing_http_room verdict)
{
    int share = verdict == ING_HTTP_ROOM_ADDRESS_FULL;
    *(share ? &g->refused_share : &g->refused_bound) += 1;
    if (g->cfg.metrics)
        bz_counter_inc(bz_counter_family_with(g->cfg.metrics->http_refused,
                                              share ? "address_share" : "buffer_full"));
}

static void give_back(ing_http_guard *g, ing_http_conn *c)
{
    g->buffered -= c->held;
    if (c->authenticated)
        g->authenticated -= c->held;
    else
        c->address->unverified -= c->held;
    c->held = 0;
    c->authenticated = 0;
    count_buffered(g);
}

ing_http_room ing_http_guard_room_for(ing_http_guard *g, ing_http_conn *c, size_t bytes)
{
    pthread_mutex_lock(&g->mu);
    ing_http_room verdict = judge_room(g, c, bytes);
    if (verdict != ING_HTTP_ROOM)
        count_refusal(g, verdict);
    pthread_mutex_unlock(&g->mu);
    return verdict;
}

ing_http_room ing_http_guard_take(ing_http_guard *g, ing_http_conn *c, size_t bytes)
{
    pthread_mutex_lock(&g->mu);
    ing_http_room verdict = judge_room(g, c, bytes);
    if (verdict == ING_HTTP_ROOM) {
        c->held += bytes;
        g->buffered += bytes;
        if (c->authenticated)
            g->authenticated += bytes;
        else
            c->address->unverified += bytes;
        count_buffered(g);
    } else {
        count_refusal(g, verdict);
    }
    pthread_mutex_unlock(&g->mu);
    return verdict;
}

void ing_http_guard_authenticated(ing_http_guard *g, ing_http_conn *c)
{
    pthread_mutex_lock(&g->mu);
    if (!c->authenticated) {
        c->address->unverified -= c->held;
        g->authenticated += c->held;
        c->authenticated = 1;
    }
    pthread_mutex_unlock(&g->mu);
}

void ing_http_guard_give_back(ing_http_guard *g, ing_http_conn *c)
{
    pthread_mutex_lock(&g->mu);
    give_back(g, c);
    pthread_mutex_unlock(&g->mu);
}

/* ---- readiness -------------------------------------------------------------- */

int ing_http_guard_saturated(ing_http_guard *g, char *detail, size_t cap)
{
    pthread_mutex_lock(&g->mu);
    int connections = g->connections, in_request = g->in_request, waiting = g->queue[0];
    for (int i = 1; i < QUEUE_SAMPLES; i++)
        waiting = g->queue[i] < waiting ? g->queue[i] : waiting;
    size_t buffered = g->buffered, authenticated = g->authenticated;
    pthread_mutex_unlock(&g->mu);
    size_t max_buffered = g->cfg.max_buffered_bytes;
    int full = (int64_t)connections * 10 >= (int64_t)g->cfg.max_connections * 9 ||
               (uint64_t)authenticated * 10 >= (uint64_t)max_buffered * 9 || waiting > 0;
    snprintf(detail, cap,
             "%s: connections %d/%d (%d mid-request), buffered %zu/%zu B (%zu authenticated), "
             "%d waiting",
             full ? "saturated" : "listening", connections, g->cfg.max_connections, in_request,
             buffered, max_buffered, authenticated, waiting);
    return full;
}

void ing_http_guard_report(ing_http_guard *g, bz_readiness *report)
{
    char detail[160];
    int full = ing_http_guard_saturated(g, detail, sizeof detail);
    bz_readiness_add(report, "http", !full, "%s", detail);
}
