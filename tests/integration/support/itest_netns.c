/*
 * itest_netns.c - a network namespace with relays to the stack (see
 * itest_netns.h).
 *
 * The namespace is made by unshare(CLONE_NEWNET) on the calling thread,
 * which then returns to the host's namespace with setns; both are kept open
 * as file descriptors, so any thread can enter and leave. Inside, the
 * loopback interface is brought up and given the addresses (ioctl
 * SIOCSIFFLAGS and SIOCSIFADDR, as `ip` would through netlink), and one
 * IPv4 address besides 127.0.0.1 for resolvers that want one; a test may
 * add more (itest_netns_add_address) and relay ports of its own servers
 * (itest_netns_relay_port).
 *
 * A relay is a listening socket made inside the namespace, served by a
 * thread of the host's namespace: each connection it accepts is paired with
 * one it opens to the same port on the host's 127.0.0.1, and two copying
 * threads carry the bytes each way until a side closes. A socket stays in
 * the namespace it was made in, whichever thread uses it.
 */
#include "itest_netns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "itest.h"

#define RELAYS_MAX 8
#define PAIRS_MAX 256
#define COPY_CHUNK 65536

/* The kernel's struct in6_ifreq (linux/ipv6.h, which clashes with
 * netinet/in.h). */
typedef struct in6_ifreq_compat {
    struct in6_addr addr;
    uint32_t prefixlen;
    int ifindex;
} in6_ifreq_compat;

typedef struct pair {
    int inner, outer; /* the namespace's side, the host's side */
    pthread_t up, down;
} pair;

typedef struct relay {
    itest_netns *ns;
    int port;
    int listen_fd;
    pthread_t thread;
} relay;

struct itest_netns {
    int host_fd, ns_fd;
    relay relays[RELAYS_MAX];
    int nrelays;
    pthread_mutex_t mu;
    pair pairs[PAIRS_MAX];
    int npairs;
    atomic_int stopping;
    int next_ipv4_label; /* lo:<n> of the next IPv4 alias */
};

/* ---- the namespace's loopback -------------------------------------------------- */

static void bring_loopback_up(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
    if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) != 0)
        fail_msg("netns: cannot read the loopback's flags: %s", strerror(errno));
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(fd, SIOCSIFFLAGS, &ifr) != 0)
        fail_msg("netns: cannot bring the loopback up: %s", strerror(errno));
    close(fd);
}

/* An IPv4 address on the loopback, as its alias lo:<label>. */
static void add_ipv4(int label, const char *text)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo:%d", label);
    struct sockaddr_in *a = (struct sockaddr_in *)&ifr.ifr_addr;
    a->sin_family = AF_INET;
    if (inet_pton(AF_INET, text, &a->sin_addr) != 1)
        fail_msg("netns: %s is not an IPv4 address", text);
    if (fd < 0 || ioctl(fd, SIOCSIFADDR, &ifr) != 0)
        fail_msg("netns: cannot add %s to the loopback: %s", text, strerror(errno));
    close(fd);
}

static void add_address(const char *text)
{
    in6_ifreq_compat req = {.prefixlen = 64, .ifindex = (int)if_nametoindex("lo")};
    if (inet_pton(AF_INET6, text, &req.addr) != 1)
        fail_msg("netns: %s is not an IPv6 address", text);
    int fd = socket(AF_INET6, SOCK_DGRAM, 0);
    if (fd < 0 || ioctl(fd, SIOCSIFADDR, &req) != 0)
        fail_msg("netns: cannot add %s to the loopback: %s", text, strerror(errno));
    close(fd);
}

/* ---- relays ------------------------------------------------------------------------ */

typedef struct copy_job {
    int from, to;
} copy_job;

static void *copy_bytes(void *arg)
{
    copy_job job = *(copy_job *)arg;
    free(arg);
    char buf[COPY_CHUNK];
    ssize_t n;
    while ((n = recv(job.from, buf, sizeof buf, 0)) > 0) {
        for (ssize_t sent = 0, w; sent < n; sent += w)
            if ((w = send(job.to, buf + sent, (size_t)(n - sent), MSG_NOSIGNAL)) <= 0)
                goto done;
    }
done:
    shutdown(job.to, SHUT_WR);
    shutdown(job.from, SHUT_RD);
    return NULL;
}

static int start_copy(pthread_t *t, int from, int to)
{
    copy_job *job = malloc(sizeof *job);
    if (!job)
        return 0;
    *job = (copy_job){from, to};
    if (pthread_create(t, NULL, copy_bytes, job) != 0) {
        free(job);
        return 0;
    }
    return 1;
}

/* A connection to the host's 127.0.0.1:port (the calling thread is the
 * host's); -1 when refused. */
static int connect_host(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
        return fd;
    if (fd >= 0)
        close(fd);
    return -1;
}

static void pair_up(itest_netns *ns, int inner, int outer)
{
    pthread_mutex_lock(&ns->mu);
    pair *p = ns->npairs < PAIRS_MAX ? &ns->pairs[ns->npairs] : NULL;
    int started = p && start_copy(&p->up, inner, outer);
    if (started && !start_copy(&p->down, outer, inner)) {
        shutdown(inner, SHUT_RDWR);
        pthread_join(p->up, NULL);
        started = 0;
    }
    if (started) {
        p->inner = inner;
        p->outer = outer;
        ns->npairs++;
    }
    pthread_mutex_unlock(&ns->mu);
    if (!started) {
        close(inner);
        close(outer);
    }
}

static void *serve_relay(void *arg)
{
    relay *r = arg;
    for (;;) {
        int inner = accept(r->listen_fd, NULL, NULL);
        if (inner < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return NULL; /* shut down by itest_netns_free */
        }
        int outer = atomic_load(&r->ns->stopping) ? -1 : connect_host(r->port);
        if (outer < 0)
            close(inner);
        else
            pair_up(r->ns, inner, outer);
    }
}

/* A listener on the namespace's 127.0.0.1:port (the calling thread is in
 * the namespace). */
static int listen_inside(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), on = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 64) != 0)
        fail_msg("netns: cannot listen on 127.0.0.1:%d inside: %s", port, strerror(errno));
    return fd;
}

/* Every "127.0.0.1:<port>" of text, once, into ns's relays. */
static void add_ports(itest_netns *ns, const char *text)
{
    static const char host[] = "127.0.0.1:";
    for (const char *p = text; (p = strstr(p, host)) != NULL;) {
        p += sizeof host - 1;
        int port = (int)strtol(p, NULL, 10), known = 0;
        for (int i = 0; i < ns->nrelays; i++)
            known |= ns->relays[i].port == port;
        if (port > 0 && !known) {
            if (ns->nrelays == RELAYS_MAX)
                fail_msg("netns: more than %d stack ports", RELAYS_MAX);
            ns->relays[ns->nrelays++] = (relay){.ns = ns, .port = port, .listen_fd = -1};
        }
    }
}

/* ---- the namespace ------------------------------------------------------------------- */

static void switch_to(int fd, const char *where)
{
    if (setns(fd, CLONE_NEWNET) != 0)
        fail_msg("netns: cannot enter the %s network namespace: %s", where, strerror(errno));
}

itest_netns *itest_netns_new(const char *const *ipv6)
{
    itest_netns *ns = calloc(1, sizeof *ns);
    assert_non_null(ns);
    ns->next_ipv4_label = 1;
    pthread_mutex_init(&ns->mu, NULL);
    ns->host_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    assert_true(ns->host_fd >= 0);
    if (unshare(CLONE_NEWNET) != 0) {
        int e = errno;
        close(ns->host_fd);
        free(ns);
        /* Never skipped: a test that cannot run has not passed. */
        fail_msg("netns: cannot create a network namespace (%s): the test needs root or "
                 "CAP_SYS_ADMIN, as make test has", strerror(e));
    }
    ns->ns_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    assert_true(ns->ns_fd >= 0);
    bring_loopback_up();
    /* besides 127.0.0.1, from the documentation range: getaddrinfo with
     * AI_ADDRCONFIG, as librdkafka asks, returns IPv4 addresses only when
     * the namespace has one that is not loopback */
    add_ipv4(ns->next_ipv4_label++, "192.0.2.1");
    for (size_t i = 0; ipv6 && ipv6[i]; i++)
        add_address(ipv6[i]);
    add_ports(ns, itest_env("BLAZZ_PG_DSN"));
    add_ports(ns, itest_env("BLAZZ_KAFKA_BROKERS"));
    for (int i = 0; i < ns->nrelays; i++)
        ns->relays[i].listen_fd = listen_inside(ns->relays[i].port);
    switch_to(ns->host_fd, "host's");
    for (int i = 0; i < ns->nrelays; i++)
        if (pthread_create(&ns->relays[i].thread, NULL, serve_relay, &ns->relays[i]) != 0)
            fail_msg("netns: cannot start a relay thread");
    return ns;
}

void itest_netns_add_address(itest_netns *ns, const char *text)
{
    switch_to(ns->ns_fd, "test's");
    if (strchr(text, ':'))
        add_address(text);
    else
        add_ipv4(ns->next_ipv4_label++, text);
    switch_to(ns->host_fd, "host's");
}

void itest_netns_relay_port(itest_netns *ns, int port)
{
    if (ns->nrelays == RELAYS_MAX)
        fail_msg("netns: more than %d relayed ports", RELAYS_MAX);
    relay *r = &ns->relays[ns->nrelays];
    *r = (relay){.ns = ns, .port = port, .listen_fd = -1};
    switch_to(ns->ns_fd, "test's");
    r->listen_fd = listen_inside(port);
    switch_to(ns->host_fd, "host's");
    if (pthread_create(&r->thread, NULL, serve_relay, r) != 0)
        fail_msg("netns: cannot start a relay thread");
    ns->nrelays++;
}

void itest_netns_enter(itest_netns *ns)
{
    switch_to(ns->ns_fd, "test's");
}

void itest_netns_leave(itest_netns *ns)
{
    switch_to(ns->host_fd, "host's");
}

void itest_netns_free(itest_netns *ns)
{
    if (!ns)
        return;
    atomic_store(&ns->stopping, 1);
    for (int i = 0; i < ns->nrelays; i++) {
        shutdown(ns->relays[i].listen_fd, SHUT_RDWR);
        pthread_join(ns->relays[i].thread, NULL);
        close(ns->relays[i].listen_fd);
    }
    for (int i = 0; i < ns->npairs; i++) {
        shutdown(ns->pairs[i].inner, SHUT_RDWR);
        shutdown(ns->pairs[i].outer, SHUT_RDWR);
        pthread_join(ns->pairs[i].up, NULL);
        pthread_join(ns->pairs[i].down, NULL);
        close(ns->pairs[i].inner);
        close(ns->pairs[i].outer);
    }
    pthread_mutex_destroy(&ns->mu);
    close(ns->ns_fd);
    close(ns->host_fd);
    free(ns);
}
