/*
 * address_class.h - which network addresses the backbone lets a tenant's
 * URL reach.
 *
 * URLs come from tenants (webhook endpoints, media to send), so one could
 * point a fetcher at the database, a cloud metadata service or a loopback
 * admin endpoint. Addresses are classified here; anything but a public
 * unicast address is refused. The webhook dispatcher checks the resolved
 * address at connect time (delivery.c hooks CURLOPT_OPENSOCKETFUNCTION), so
 * a DNS answer that changes between a check and the connect (rebinding)
 * cannot slip past it, unless webhook.allow_private_targets is set; a CRM
 * send's media.url is checked on its literal host (libs/wa/crm_command.c).
 * Pure functions; nothing here touches the network.
 */
#ifndef BZ_ADDRESS_CLASS_H
#define BZ_ADDRESS_CLASS_H

#include <stdbool.h>
#include <sys/socket.h>

typedef enum bz_addr_class {
    BZ_ADDR_PUBLIC = 0,
    BZ_ADDR_UNSPECIFIED,  /* 0.0.0.0/8, :: */
    BZ_ADDR_LOOPBACK,     /* 127/8, ::1 */
    BZ_ADDR_PRIVATE,      /* 10/8, 172.16/12, 192.168/16 (RFC 1918) */
    BZ_ADDR_CGNAT,        /* 100.64/10 (RFC 6598) */
    BZ_ADDR_LINK_LOCAL,   /* 169.254/16 (cloud metadata), fe80::/10 */
    BZ_ADDR_MULTICAST,    /* 224/4, ff00::/8 */
    BZ_ADDR_BROADCAST,    /* 255.255.255.255 */
    BZ_ADDR_RESERVED,     /* 240/4, 192.0.0/24, benchmarking, docs, NAT64 64:ff9b::/96
                              * and 64:ff9b:1::/48, Teredo 2001::/32,
                              * IPv4-translated ::ffff:0:0:0/96 ... */
    BZ_ADDR_UNIQUE_LOCAL, /* fc00::/7 */
    BZ_ADDR_UNSUPPORTED   /* not IPv4 or IPv6 */
} bz_addr_class;

/* Classify an IPv4 or IPv6 socket address. IPv4-mapped (::ffff:a.b.c.d)
 * and IPv4-compatible IPv6 addresses are classified as the IPv4 address
 * they carry. */
bz_addr_class bz_addr_classify(const struct sockaddr *sa);

/* Same for a 4-byte IPv4 address in network order. */
bz_addr_class bz_addr_classify_v4(const unsigned char a[4]);

/* Same for a 16-byte IPv6 address. */
bz_addr_class bz_addr_classify_v6(const unsigned char a[16]);

/* May a tenant's URL reach an address of this class? Public unicast only;
 * allow_private_targets (tests only) adds the other unicast classes. */
bool bz_addr_allowed(bz_addr_class c, bool allow_private_targets);

/* "public", "loopback", "private (RFC 1918)", ... for messages. */
const char *bz_addr_class_name(bz_addr_class c);

#endif
