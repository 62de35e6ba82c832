/*
 * ssrf.h - which network addresses a webhook may be delivered to.
 *
 * Endpoint URLs come from tenants, so a URL could point the dispatcher at
 * the database, a cloud metadata service or the loopback admin endpoint.
 * Every address the dispatcher is about to connect to is classified here;
 * anything but a public unicast address is refused unless
 * webhook.allow_private_targets is set. The check runs on the resolved
 * address at connect time (delivery.c hooks CURLOPT_OPENSOCKETFUNCTION), so
 * a DNS answer that changes between a check and the connect (rebinding)
 * cannot slip past it. Pure functions; nothing here touches the network.
 */
#ifndef WH_SSRF_H
#define WH_SSRF_H

#include <stdbool.h>
#include <sys/socket.h>

typedef enum wh_addr_class {
    WH_ADDR_PUBLIC = 0,
    WH_ADDR_UNSPECIFIED,  /* 0.0.0.0/8, :: */
    WH_ADDR_LOOPBACK,     /* 127/8, ::1 */
    WH_ADDR_PRIVATE,      /* 10/8, 172.16/12, 192.168/16 (RFC 1918) */
    WH_ADDR_CGNAT,        /* 100.64/10 (RFC 6598) */
    WH_ADDR_LINK_LOCAL,   /* 169.254/16 (cloud metadata), fe80::/10 */
    WH_ADDR_MULTICAST,    /* 224/4, ff00::/8 */
    WH_ADDR_BROADCAST,    /* 255.255.255.255 */
    WH_ADDR_RESERVED,     /* 240/4, 192.0.0/24, benchmarking, docs, NAT64 64:ff9b::/96
                              * and 64:ff9b:1::/48, Teredo 2001::/32,
                              * IPv4-translated ::ffff:0:0:0/96 ... */
    WH_ADDR_UNIQUE_LOCAL, /* fc00::/7 */
    WH_ADDR_UNSUPPORTED   /* not IPv4 or IPv6 */
} wh_addr_class;

/* Classify an IPv4 or IPv6 socket address. IPv4-mapped (::ffff:a.b.c.d)
 * and IPv4-compatible IPv6 addresses are classified as the IPv4 address
 * they carry. */
wh_addr_class wh_addr_classify(const struct sockaddr *sa);

/* May a delivery connect to an address of this class? */
bool wh_addr_allowed(wh_addr_class c, bool allow_private_targets);

/* "public", "loopback", "private (RFC 1918)", ... for messages. */
const char *wh_addr_class_name(wh_addr_class c);

#endif
