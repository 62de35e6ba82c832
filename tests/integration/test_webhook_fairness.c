/*
 * test_webhook_fairness.c - a slow or dead endpoint costs only its own share
 * of blazz-webhook-dispatcher.
 *
 * One workspace, one healthy endpoint and 100 endpoints that accept the
 * connection and never answer (their attempts time out only after 5
 * minutes). 200 events fan out to all 101. The healthy endpoint must get
 * every one of its 200 deliveries, exactly once, while not one attempt to
 * a dead endpoint has ended yet: an ordering, not a stopwatch. When the
 * claimed-jobs budget, the claim order or the connections were shared
 * first come first served, the dead endpoints' attempts and queues took
 * everything and the healthy endpoint waited for their timeouts. The
 * latencies themselves are measured by
 * tests/bench/webhook-dispatcher/bench_webhook.c.
 *
 * And an endpoint's own limit holds: with max_concurrency 2 and a receiver
 * that takes 300 ms per request, no request arrives while two others that
 * arrived less than 300 ms before it are still unanswered. (The worker
 * once filed every endpoint under a hash of id 0, so most lookups missed,
 * each claimed row got an endpoint of its own, and the endpoint's limits,
 * circuit and rate were each only one row's.)
 *
 * Those hanging attempts do not hold the dispatcher's stop: SIGTERM with
 * 400 of them open (4 to each, 5-minute timeouts) and it exits 0 within compose's
 * 30 s grace period, every hanging delivery handed back due. It waited
 * for their timeouts, and the grace period's kill left them leased.
 *
 * And a silent name server costs only its endpoint's attempts: the
 * dispatcher runs in a network namespace of the test's own, where the
 * addresses of /etc/resolv.conf's name servers are sockets that receive
 * and never answer (glibc told to wait 30 s a try, 5 tries). An endpoint
 * named by a host name times out resolving (connect timeout 500 ms) and
 * is recorded for its retry while its query is still unanswered; then 20
 * events reach the endpoint named by an address, still unanswered. When
 * libcurl joined its resolver thread at the timeout, the worker's loop
 * waited for getaddrinfo: no outcome was written and nobody was served
 * until the name server's silence ran out.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "itest.h"
#include "itest_netns.h"
#include "webhook_itest.h"

#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define DEAD 100
#define EVENTS 200

static wh_env env;
static bool env_live;

/* The receiver goes first, so a dispatcher still running (a case that
 * failed before its stop) hands back no attempt. */
static int stop_everything(void **state)
{
    (void)state;
    if (env_live) {
        env_live = false;
        wh_receiver_stop(&env);
        wh_env_teardown(&env);
    }
    return 0;
}

static void test_dead_endpoints_do_not_starve_a_healthy_one(void **state)
{
    (void)state;
    wh_env *e = &env;
    wh_env_setup(e, "fair");
    env_live = true;
    char path[1024], healthy_path[1024], sql[512];
    snprintf(healthy_path, sizeof healthy_path, "/ok/fair-%s", e->token);
    int64_t healthy = wh_endpoint_add(e, healthy_path, SECRET, "standard", "{*}", 1000, 4);
    for (int i = 0; i < DEAD; i++) {
        snprintf(path, sizeof path, "/hang/fair-%d-%s", i, e->token);
        wh_endpoint_add(e, path, SECRET, "standard", "{*}", 1000, 4);
    }
    snprintf(sql, sizeof sql,
             "UPDATE webhook_endpoints SET timeout_ms = 300000 WHERE workspace_id = %lld",
             (long long)e->workspace_id);
    itest_pg_exec(e->conn, sql);
    const char *settings[] = {"BLAZZ_WEBHOOK_ALLOW_PRIVATE_TARGETS=true",
                              "BLAZZ_WEBHOOK_TIMEOUT_MS=300000",
                              "BLAZZ_WEBHOOK_CLAIM_LEASE_MS=600000",
                              "BLAZZ_WEBHOOK_POLL_MS=200",
                              NULL};
    wh_dispatcher_start(e, settings);
    wh_wait_consuming(e);
    wh_produce_paced(e, EVENTS, 33);

    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM webhook_retry_queue WHERE endpoint_id = %lld "
             "AND status = 'success'",
             (long long)healthy);
    wh_wait_for(e, sql, EVENTS, 120000);
    int64_t ended = itest_pg_int64f(e->conn,
                                    "SELECT count(*) FROM webhook_retry_queue "
                                    "WHERE workspace_id = %lld AND endpoint_id <> %lld "
                                    "AND (status <> 'pending' OR retry_count > 0 "
                                    "OR last_error IS NOT NULL)",
                                    (long long)e->workspace_id, (long long)healthy);
    json_t *all = wh_requests(e), *req[EVENTS + 1], *r;
    size_t hanging = 0, i;
    json_array_foreach(all, i, r)
    {
        hanging += strncmp(json_string_value(json_object_get(r, "path")), "/hang/", 6) == 0;
    }
    size_t delivered = wh_filter(all, healthy_path, req, EVENTS + 1);
    json_t *ids = json_object();
    for (i = 0; i < delivered; i++)
        json_object_set_new(ids, wh_header(req[i], "webhook-id"), json_true());
    print_message("fairness: healthy endpoint got %zu deliveries (%zu distinct) while %zu "
                  "attempts to dead endpoints hung and %lld had ended\n",
                  delivered, json_object_size(ids), hanging, (long long)ended);
    assert_int_equal(delivered, EVENTS);
    assert_int_equal(json_object_size(ids), EVENTS);
    assert_int_equal(ended, 0);
    json_decref(ids);
    json_decref(all);

    kill(e->dispatcher, SIGTERM);
    int rc = itest_wait_within_grace(e->dispatcher, 30000);
    e->dispatcher = 0;
    int64_t leased = itest_pg_int64f(e->conn,
                                     "SELECT count(*) FROM webhook_retry_queue "
                                     "WHERE workspace_id = %lld AND endpoint_id <> %lld "
                                     "AND next_retry_at > now()",
                                     (long long)e->workspace_id, (long long)healthy);
    print_message("stop with %zu attempts hanging: exit %d (-1: killed at the 30 s grace "
                  "period), %lld deliveries still leased\n",
                  hanging, rc, (long long)leased);
    assert_int_equal(rc, 0);
    assert_int_equal(leased, 0);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void test_endpoint_concurrency_holds(void **state)
{
    (void)state;
    const int events = 20, slow_ms = 300;
    wh_env *e = &env;
    wh_env_setup(e, "conc");
    env_live = true;
    char path[1024], sql[2048];
    snprintf(path, sizeof path, "/slow/%d/conc-%s", slow_ms, e->token);
    int64_t ep = wh_endpoint_add(e, path, SECRET, "standard", "{*}", 1000, 2);
    const char *settings[] = {"BLAZZ_WEBHOOK_ALLOW_PRIVATE_TARGETS=true",
                              "BLAZZ_WEBHOOK_POLL_MS=100", NULL};
    wh_dispatcher_start(e, settings);
    wh_wait_consuming(e);
    wh_produce_many(e, events, "conc");
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM webhook_retry_queue WHERE endpoint_id = %lld "
             "AND status = 'success'",
             (long long)ep);
    wh_wait_for(e, sql, events, 120000);
    json_t *all = wh_requests(e), *req[64];
    size_t n = wh_filter(all, path, req, 64);
    double t[64];
    for (size_t i = 0; i < n; i++)
        t[i] = json_real_value(json_object_get(req[i], "t_ms"));
    qsort(t, n, sizeof *t, cmp_double);
    /* a request that arrived less than slow_ms after another could not have
     * been sent after that one was answered */
    size_t most = 0;
    for (size_t i = 0; i < n; i++) {
        size_t open = 1;
        for (size_t k = 0; k < i; k++)
            open += t[i] - t[k] < slow_ms;
        most = open > most ? open : most;
    }
    print_message("max_concurrency 2: at most %zu requests were open at once (%zu requests)\n",
                  most, n);
    assert_int_equal(n, events);
    assert_true(most <= 2);
    json_decref(all);
}

/* ---- a silent name server ---------------------------------------------------------- */

#define NAME_SERVERS_MAX 3 /* glibc's MAXNS */

typedef struct silent_resolver {
    int fds[NAME_SERVERS_MAX];
    int n;
} silent_resolver;

static itest_netns *dns_ns;
static silent_resolver dns_silence;

static bool listed(char list[][INET6_ADDRSTRLEN], int n, const char *addr)
{
    for (int i = 0; i < n; i++)
        if (strcmp(list[i], addr) == 0)
            return true;
    return false;
}

/* The name servers glibc will ask, from /etc/resolv.conf (127.0.0.1 when it
 * names none, as glibc does), each once. */
static int name_servers(char out[NAME_SERVERS_MAX][INET6_ADDRSTRLEN])
{
    int n = 0;
    char line[512], addr[INET6_ADDRSTRLEN];
    FILE *f = fopen("/etc/resolv.conf", "r");
    while (f && n < NAME_SERVERS_MAX && fgets(line, sizeof line, f)) {
        if (strstr(line, "use-vc"))
            fail_msg("/etc/resolv.conf asks for DNS over TCP (use-vc): this test's silent "
                     "name server listens on UDP only");
        if (sscanf(line, " nameserver %45s", addr) == 1 && !listed(out, n, addr))
            snprintf(out[n++], INET6_ADDRSTRLEN, "%s", addr);
    }
    if (f)
        fclose(f);
    if (n == 0)
        snprintf(out[n++], INET6_ADDRSTRLEN, "127.0.0.1");
    return n;
}

/* A UDP socket on address:53 that is never read from (the calling thread
 * is in the namespace). */
static int listen_silently(const char *address)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len;
    if (strchr(address, ':')) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(53);
        assert_int_equal(inet_pton(AF_INET6, address, &a->sin6_addr), 1);
        len = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(53);
        assert_int_equal(inet_pton(AF_INET, address, &a->sin_addr), 1);
        len = sizeof *a;
    }
    int fd = socket(ss.ss_family, SOCK_DGRAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&ss, len) != 0)
        fail_msg("silent name server on %s:53: %s", address, strerror(errno));
    return fd;
}

static void silence_name_servers(itest_netns *ns, silent_resolver *r)
{
    char servers[NAME_SERVERS_MAX][INET6_ADDRSTRLEN];
    r->n = name_servers(servers);
    for (int i = 0; i < r->n; i++)
        if (strncmp(servers[i], "127.", 4) != 0 && strcmp(servers[i], "::1") != 0)
            itest_netns_add_address(ns, servers[i]); /* 127/8 is the loopback's already */
    itest_netns_enter(ns);
    for (int i = 0; i < r->n; i++)
        r->fds[i] = listen_silently(servers[i]);
    itest_netns_leave(ns);
}

/* Queries waiting, unanswered, at the silent name servers. */
static int queries_waiting(const silent_resolver *r)
{
    int waiting = 0;
    for (int i = 0; i < r->n; i++) {
        char probe;
        waiting += recv(r->fds[i], &probe, 1, MSG_PEEK | MSG_DONTWAIT) >= 0;
    }
    return waiting;
}

static int stop_everything_and_the_namespace(void **state)
{
    if (dns_ns)
        itest_netns_leave(dns_ns); /* a case that failed inside it */
    stop_everything(state);
    for (int i = 0; i < dns_silence.n; i++)
        close(dns_silence.fds[i]);
    dns_silence.n = 0;
    itest_netns_free(dns_ns);
    dns_ns = NULL;
    return 0;
}

static void test_a_silent_name_server_holds_back_only_its_endpoint(void **state)
{
    (void)state;
    const int events = 20;
    wh_env *e = &env;
    wh_env_setup(e, "dns");
    env_live = true;
    char path[1024], sql[1024];
    snprintf(path, sizeof path, "/ok/dns-%s", e->token);
    int64_t by_address = wh_endpoint_add(e, path, SECRET, "standard", "{*}", 1000, 4);
    int64_t by_name = wh_endpoint_add(e, "/ok/by-name", SECRET, "standard", "{*}", 1000, 4);
    snprintf(sql, sizeof sql,
             "UPDATE webhook_endpoints SET url = 'http://silent-dns.blazz.test/' WHERE id = %lld",
             (long long)by_name);
    itest_pg_exec(e->conn, sql);

    dns_ns = itest_netns_new(NULL);
    itest_netns_relay_port(dns_ns, e->port);
    silence_name_servers(dns_ns, &dns_silence);
    const char *settings[] = {"BLAZZ_WEBHOOK_ALLOW_PRIVATE_TARGETS=true",
                              "BLAZZ_WEBHOOK_CONNECT_TIMEOUT_MS=500",
                              "BLAZZ_WEBHOOK_POLL_MS=200",
                              "RES_OPTIONS=timeout:30 attempts:5",
                              NULL};
    itest_netns_enter(dns_ns);
    wh_dispatcher_start(e, settings);
    wh_wait_consuming(e);
    itest_netns_leave(dns_ns);

    char event_id[40];
    wh_produce_one(e, event_id, "dns first");
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM webhook_retry_queue WHERE endpoint_id = %lld "
             "AND retry_count > 0 AND last_error IS NOT NULL",
             (long long)by_name);
    wh_wait_for(e, sql, 1, 60000);
    int waiting_after_timeout = queries_waiting(&dns_silence);

    wh_produce_many(e, events, "dns more");
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM webhook_retry_queue WHERE endpoint_id = %lld "
             "AND status = 'success'",
             (long long)by_address);
    wh_wait_for(e, sql, events + 1, 60000);
    char *error = itest_pg_textf(e->conn,
                                 "SELECT last_error FROM webhook_retry_queue "
                                 "WHERE endpoint_id = %lld AND last_error IS NOT NULL "
                                 "ORDER BY id LIMIT 1",
                                 (long long)by_name);
    print_message("silent name server: the named endpoint's attempt ended (%s) with %d name "
                  "server(s) holding its query; the endpoint by address got %d deliveries\n",
                  error, waiting_after_timeout, events + 1);
    assert_true(waiting_after_timeout > 0);
    assert_non_null(strcasestr(error, "timeout"));
    free(error);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_endpoint_concurrency_holds, stop_everything),
        cmocka_unit_test_teardown(test_dead_endpoints_do_not_starve_a_healthy_one,
                                  stop_everything),
        cmocka_unit_test_teardown(test_a_silent_name_server_holds_back_only_its_endpoint,
                                  stop_everything_and_the_namespace),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
