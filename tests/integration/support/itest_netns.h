/*
 * itest_netns.h - a network namespace of the test's own, for tests that
 * need client addresses the host does not have: the host's only IPv6
 * loopback address is ::1, so many addresses of one IPv6 /64 exist only in
 * a namespace where the test put them on the loopback interface.
 *
 * Namespaces belong to threads: the thread that enters one creates its
 * sockets there, and a program it starts (itest_spawn) runs there. The
 * stack stays outside: relays carry the namespace's 127.0.0.1:<port> to the
 * host's, for the PostgreSQL and broker ports of BLAZZ_PG_DSN and
 * BLAZZ_KAFKA_BROKERS, so a service started inside reaches the stack at the
 * addresses it was given. Traffic never leaves loopback.
 *
 * Creating a namespace needs CAP_SYS_ADMIN (and CAP_NET_ADMIN inside);
 * itest_netns_new calls cmocka's skip() when the process lacks them.
 */
#ifndef ITEST_NETNS_H
#define ITEST_NETNS_H

typedef struct itest_netns itest_netns;

/* A new namespace with its loopback up and each address of ipv6 (NULL
 * terminated, textual) on it as a /64, and relays to the stack's ports. The
 * calling thread is not moved into it. Free with itest_netns_free. */
itest_netns *itest_netns_new(const char *const *ipv6);

/* Put an address (IPv4, or IPv6 as a /64) on the namespace's loopback.
 * Called from the host's namespace. */
void itest_netns_add_address(itest_netns *ns, const char *text);

/* Relay the namespace's 127.0.0.1:port to the host's, as the stack's ports
 * are (a test's own server). Called from the host's namespace. */
void itest_netns_relay_port(itest_netns *ns, int port);

/* Move the calling thread into the namespace, or back to where it was. */
void itest_netns_enter(itest_netns *ns);
void itest_netns_leave(itest_netns *ns);

/* Stop the relays and let the namespace go (once nothing runs in it). */
void itest_netns_free(itest_netns *ns);

#endif
