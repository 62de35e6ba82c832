/*
 * test_http_guard.c - ingest's listener guard (services/ingest/http_guard.h)
 * on its own: connections are socket pairs, the guard holds one end and the
 * test watches the other to see it cut.
 *
 *  - a connection over its address's limit is shut down at once, another
 *    address is unaffected, and a closed connection frees its slot;
 *  - a request that stays incomplete is cut at its deadline, however the
 *    clock of an idle connection stands; a request being handled is not;
 *    a body whose sender was proven before it gets its length's worth of
 *    time at the slowest rate allowed, and no more;
 *  - buffered bytes: room is refused past the bound or past an address's
 *    share of unauthenticated bytes, an IPv6 /64 is one address, an
 *    authenticated request leaves its address's share, and only
 *    authenticated bytes make /readyz report saturation.
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

static ing_http_guard *guard_sharing(int per_address, int deadline_ms, size_t max_buffered,
                                     size_t share)
{
    ing_http_guard_config cfg = {.max_connections = 100, .max_per_address = per_address,
                                .idle_timeout_ms = 60000, .request_deadline_ms = deadline_ms,
                                .max_buffered_bytes = max_buffered,
                                .max_buffered_per_address = share};
    ing_http_guard *g;
    bz_error err;
    assert_int_equal(ing_http_guard_new(&cfg, &g, &err), BZ_OK);
    return g;
}

static ing_http_guard *guard(int per_address, int deadline_ms, size_t max_buffered)
{
    return guard_sharing(per_address, deadline_ms, max_buffered, max_buffered);
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

/* A body whose sender was proven before it gets bytes / min_body_rate more
 * than the request deadline; an unproven one beside it does not; the
 * allowance ends with its request. */
static void test_a_proven_body_gets_time_for_its_length(void **state)
{
    (void)state;
    ing_http_guard_config cfg = {.max_connections = 100, .max_per_address = 10,
                                .idle_timeout_ms = 60000, .request_deadline_ms = 300,
                                .min_body_rate = 1000, .max_buffered_bytes = 1024,
                                .max_buffered_per_address = 1024};
    ing_http_guard *g;
    bz_error err;
    assert_int_equal(ing_http_guard_new(&cfg, &g, &err), BZ_OK);
    struct sockaddr_in a = address("10.0.0.1");
    pair unproven = open_pair(), proven = open_pair();
    ing_http_conn *u = ing_http_guard_opened(g, unproven.server, (struct sockaddr *)&a);
    ing_http_conn *p = ing_http_guard_opened(g, proven.server, (struct sockaddr *)&a);
    ing_http_guard_request_started(g, u);
    ing_http_guard_request_started(g, p);
    ing_http_guard_allow_body(g, p, 5000); /* 5 s more at 1000 B/s */

    assert_true(cut_within(unproven, CUT_WAIT_MS));
    assert_false(cut_within(proven, 0));
    assert_true(cut_within(proven, CUT_WAIT_MS)); /* a proven body has a deadline too */
    assert_int_equal(ing_http_guard_request_received(g, p), 0);

    ing_http_guard_closed(g, u);
    ing_http_guard_closed(g, p);
    ing_http_guard_free(g);
    close_pair(unproven);
    close_pair(proven);
}

/* A connection from ip (IPv4 or IPv6) on a fresh socket pair. */
typedef struct client {
    pair p;
    ing_http_conn *c;
} client;

static client connect_client(ing_http_guard *g, const char *ip)
{
    client cl = {.p = open_pair()};
    struct sockaddr_storage ss = {0};
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
        a6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, ip, &a6->sin6_addr), 1);
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
        a4->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, ip, &a4->sin_addr), 1);
    }
    cl.c = ing_http_guard_opened(g, cl.p.server, (struct sockaddr *)&ss);
    assert_non_null(cl.c);
    ing_http_guard_request_started(g, cl.c);
    return cl;
}

static void disconnect(ing_http_guard *g, client cl)
{
    ing_http_guard_request_done(g, cl.c);
    ing_http_guard_closed(g, cl.c);
    close_pair(cl.p);
}

static void test_buffered_bytes_never_pass_the_bound(void **state)
{
    (void)state;
    ing_http_guard *g = guard(10, 60000, 1000);
    client a = connect_client(g, "10.0.0.1"), b = connect_client(g, "10.0.0.2");
    assert_int_equal(ing_http_guard_take(g, a.c, 600), ING_HTTP_ROOM);
    assert_int_equal(ing_http_guard_room_for(g, b.c, 401), ING_HTTP_ROOM_BOUND_FULL);
    assert_int_equal(ing_http_guard_take(g, b.c, 401), ING_HTTP_ROOM_BOUND_FULL);
    assert_int_equal(ing_http_guard_take(g, b.c, 400), ING_HTTP_ROOM);
    assert_int_equal(ing_http_guard_take(g, b.c, 1), ING_HTTP_ROOM_BOUND_FULL);
    assert_int_equal(ing_http_guard_take(g, b.c, (size_t)-1), ING_HTTP_ROOM_BOUND_FULL);
    ing_http_guard_give_back(g, a.c);
    assert_int_equal(ing_http_guard_room_for(g, a.c, 600), ING_HTTP_ROOM);
    assert_int_equal(ing_http_guard_take(g, a.c, 600), ING_HTTP_ROOM);
    /* closing a connection gives back what its request still held */
    disconnect(g, b);
    assert_int_equal(ing_http_guard_take(g, a.c, 400), ING_HTTP_ROOM);
    disconnect(g, a);
    client c = connect_client(g, "10.0.0.3");
    assert_int_equal(ing_http_guard_take(g, c.c, 1000), ING_HTTP_ROOM);
    disconnect(g, c);
    ing_http_guard_free(g);
}

static void test_an_address_holds_at_most_its_share(void **state)
{
    (void)state;
    ing_http_guard *g = guard_sharing(10, 60000, 1000, 300);
    client a1 = connect_client(g, "10.0.0.1"), a2 = connect_client(g, "10.0.0.1");
    client b = connect_client(g, "10.0.0.2");
    client v6a = connect_client(g, "2001:db8:1:2::1");
    client v6b = connect_client(g, "2001:db8:1:2:ffff::9");
    client v6other = connect_client(g, "2001:db8:1:3::1");
    assert_int_equal(ing_http_guard_take(g, a1.c, 200), ING_HTTP_ROOM);
    assert_int_equal(ing_http_guard_room_for(g, a2.c, 101), ING_HTTP_ROOM_ADDRESS_FULL);
    assert_int_equal(ing_http_guard_take(g, a2.c, 101), ING_HTTP_ROOM_ADDRESS_FULL);
    assert_int_equal(ing_http_guard_take(g, a2.c, 100), ING_HTTP_ROOM);
    assert_int_equal(ing_http_guard_take(g, b.c, 300), ING_HTTP_ROOM);
    /* one /64 is one address; another /64 is another */
    assert_int_equal(ing_http_guard_take(g, v6a.c, 200), ING_HTTP_ROOM);
    assert_int_equal(ing_http_guard_take(g, v6b.c, 101), ING_HTTP_ROOM_ADDRESS_FULL);
    assert_int_equal(ing_http_guard_take(g, v6b.c, 100), ING_HTTP_ROOM);
    assert_int_equal(ing_http_guard_take(g, v6other.c, 101), ING_HTTP_ROOM_BOUND_FULL);
    ing_http_guard_give_back(g, v6b.c);
    assert_int_equal(ing_http_guard_take(g, v6other.c, 101), ING_HTTP_ROOM);
    /* an authenticated request leaves its address's share: a2 may take more,
     * a1 has the share to itself again */
    ing_http_guard_authenticated(g, a2.c);
    ing_http_guard_give_back(g, b.c);
    assert_int_equal(ing_http_guard_take(g, a1.c, 100), ING_HTTP_ROOM);
    assert_int_equal(ing_http_guard_take(g, a2.c, 150), ING_HTTP_ROOM);
    assert_int_equal(ing_http_guard_take(g, a1.c, 1), ING_HTTP_ROOM_ADDRESS_FULL);
    client list[] = {a1, a2, b, v6a, v6b, v6other};
    for (size_t i = 0; i < sizeof list / sizeof list[0]; i++)
        disconnect(g, list[i]);
    ing_http_guard_free(g);
}

static int reported_ready(ing_http_guard *g, char *detail, size_t cap)
{
    return !ing_http_guard_saturated(g, detail, cap);
}

static void test_only_authenticated_bytes_saturate(void **state)
{
    (void)state;
    char detail[256];
    ing_http_guard *g = guard_sharing(10, 60000, 1000, 500);
    client a = connect_client(g, "10.0.0.1"), b = connect_client(g, "10.0.0.2");
    assert_int_equal(ing_http_guard_take(g, a.c, 500), ING_HTTP_ROOM);
    assert_int_equal(ing_http_guard_take(g, b.c, 500), ING_HTTP_ROOM);
    if (!reported_ready(g, detail, sizeof detail))
        fail_msg("unauthenticated bytes at the bound made the listener unready: %s", detail);
    ing_http_guard_authenticated(g, a.c);
    assert_true(reported_ready(g, detail, sizeof detail));
    ing_http_guard_authenticated(g, b.c);
    assert_false(reported_ready(g, detail, sizeof detail));
    assert_non_null(strstr(detail, "buffered 1000/1000 B (1000 authenticated)"));
    ing_http_guard_give_back(g, b.c);
    assert_true(reported_ready(g, detail, sizeof detail));
    disconnect(g, a);
    disconnect(g, b);
    ing_http_guard_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connections_over_the_address_limit_are_refused),
        cmocka_unit_test(test_incomplete_requests_are_cut_at_their_deadline),
        cmocka_unit_test(test_a_proven_body_gets_time_for_its_length),
        cmocka_unit_test(test_buffered_bytes_never_pass_the_bound),
        cmocka_unit_test(test_an_address_holds_at_most_its_share),
        cmocka_unit_test(test_only_authenticated_bytes_saturate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
