/*
 * test_http_guard.c - ingest's listener guard (services/ingest/http_guard.h)
 * on its own: connections are socket pairs, the guard holds one end and the
 * test watches the other to see it cut.
 *
 *  - a connection over its address's limit is shut down at once, another
 *    address is unaffected, and a closed connection frees its slot;
 *  - a request that stays incomplete is cut at its deadline, however the
 *    clock of an idle connection stands; a request being handled is not;
 *  - the buffered-bytes bound refuses what would pass it and takes back
 *    what is released.
 * Waits for a cut are bounded only so that a guard that never cuts fails.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "http_guard.h"

#define CUT_WAIT_MS 10000

typedef struct pair {
    int server, client;
} pair;

static pair open_pair(void)
{
    int fds[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    return (pair){.server = fds[0], .client = fds[1]};
}

static void close_pair(pair p)
{
    close(p.server);
    close(p.client);
}

static struct sockaddr_in address(const char *ip)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, ip, &a.sin_addr);
    return a;
}

/* Whether the guard shut the server end down within wait_ms. */
static int cut_within(pair p, int wait_ms)
{
    struct pollfd fd = {.fd = p.client, .events = POLLIN};
    char byte;
    return poll(&fd, 1, wait_ms) == 1 && recv(p.client, &byte, 1, MSG_DONTWAIT) == 0;
}

static ing_http_guard *guard(int per_address, int deadline_ms, size_t max_buffered)
{
    ing_http_guard_config cfg = {.max_connections = 100, .max_per_address = per_address,
                                .idle_timeout_ms = 60000, .request_deadline_ms = deadline_ms,
                                .max_buffered_bytes = max_buffered};
    ing_http_guard *g;
    bz_error err;
    assert_int_equal(ing_http_guard_new(&cfg, &g, &err), BZ_OK);
    return g;
}

static void test_connections_over_the_address_limit_are_refused(void **state)
{
    (void)state;
    ing_http_guard *g = guard(2, 60000, 1024);
    struct sockaddr_in a = address("10.0.0.1"), b = address("10.0.0.2");
    pair p[4] = {open_pair(), open_pair(), open_pair(), open_pair()};
    ing_http_conn *c0 = ing_http_guard_opened(g, p[0].server, (struct sockaddr *)&a);
    ing_http_conn *c1 = ing_http_guard_opened(g, p[1].server, (struct sockaddr *)&a);
    assert_non_null(c0);
    assert_non_null(c1);
    assert_null(ing_http_guard_opened(g, p[2].server, (struct sockaddr *)&a));
    assert_true(cut_within(p[2], 0));
    ing_http_conn *other = ing_http_guard_opened(g, p[3].server, (struct sockaddr *)&b);
    assert_non_null(other);
    assert_false(cut_within(p[0], 0));

    ing_http_guard_closed(g, c0);
    pair again = open_pair();
    ing_http_conn *c2 = ing_http_guard_opened(g, again.server, (struct sockaddr *)&a);
    assert_non_null(c2);
    ing_http_guard_closed(g, c1);
    ing_http_guard_closed(g, c2);
    ing_http_guard_closed(g, other);
    ing_http_guard_free(g);
    for (int i = 0; i < 4; i++)
        close_pair(p[i]);
    close_pair(again);
}

static void test_incomplete_requests_are_cut_at_their_deadline(void **state)
{
    (void)state;
    ing_http_guard *g = guard(10, 300, 1024);
    struct sockaddr_in a = address("10.0.0.1");
    pair slow = open_pair(), handled = open_pair();
    ing_http_conn *s = ing_http_guard_opened(g, slow.server, (struct sockaddr *)&a);
    ing_http_conn *h = ing_http_guard_opened(g, handled.server, (struct sockaddr *)&a);
    ing_http_guard_request_started(g, s);
    ing_http_guard_request_started(g, h);
    assert_int_equal(ing_http_guard_request_received(g, h), 1);
    assert_int_equal(ing_http_guard_handling(g), 1);

    assert_true(cut_within(slow, CUT_WAIT_MS));
    assert_int_equal(ing_http_guard_request_received(g, s), 0);
    assert_false(cut_within(handled, 0));
    ing_http_guard_request_done(g, h);
    assert_int_equal(ing_http_guard_handling(g), 1); /* s counts until done */
    ing_http_guard_request_done(g, s);
    assert_int_equal(ing_http_guard_handling(g), 0);

    ing_http_guard_closed(g, s);
    ing_http_guard_closed(g, h);
    ing_http_guard_free(g);
    close_pair(slow);
    close_pair(handled);
}

static void test_buffered_bytes_never_pass_the_bound(void **state)
{
    (void)state;
    ing_http_guard *g = guard(10, 60000, 1000);
    assert_int_equal(ing_http_guard_reserve(g, 600), 1);
    assert_int_equal(ing_http_guard_reserve(g, 401), 0);
    assert_int_equal(ing_http_guard_reserve(g, 400), 1);
    assert_int_equal(ing_http_guard_reserve(g, 1), 0);
    assert_int_equal(ing_http_guard_reserve(g, (size_t)-1), 0);
    ing_http_guard_release(g, 600);
    assert_int_equal(ing_http_guard_reserve(g, 600), 1);
    ing_http_guard_release(g, 1000);
    assert_int_equal(ing_http_guard_reserve(g, 1000), 1);
    ing_http_guard_release(g, 1000);
    ing_http_guard_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connections_over_the_address_limit_are_refused),
        cmocka_unit_test(test_incomplete_requests_are_cut_at_their_deadline),
        cmocka_unit_test(test_buffered_bytes_never_pass_the_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
