/*
 * ssrf.c - the address classifier of the SSRF guard (see ssrf.h).
 */
#include "ssrf.h"

#include <netinet/in.h>
#include <string.h>

/* A 4-byte IPv4 address in network order. */
static wh_addr_class classify_v4(const unsigned char a[4])
{
    if (a[0] == 0)
        return WH_ADDR_UNSPECIFIED;
    if (a[0] == 127)
        return WH_ADDR_LOOPBACK;
    if (a[0] == 10 || (a[0] == 172 && (a[1] & 0xf0) == 16) || (a[0] == 192 && a[1] == 168))
        return WH_ADDR_PRIVATE;
    if (a[0] == 100 && (a[1] & 0xc0) == 64)
        return WH_ADDR_CGNAT;
    if (a[0] == 169 && a[1] == 254)
        return WH_ADDR_LINK_LOCAL;
    if (a[0] == 255 && a[1] == 255 && a[2] == 255 && a[3] == 255)
        return WH_ADDR_BROADCAST;
    if ((a[0] & 0xf0) == 224)
        return WH_ADDR_MULTICAST;
    if ((a[0] & 0xf0) == 240 ||                                  /* 240/4 reserved */
        (a[0] == 192 && a[1] == 0 && a[2] == 0) ||               /* 192.0.0/24 IETF */
        (a[0] == 192 && a[1] == 0 && a[2] == 2) ||               /* TEST-NET-1 */
        (a[0] == 198 && (a[1] & 0xfe) == 18) ||                  /* 198.18/15 benchmarking */
        (a[0] == 198 && a[1] == 51 && a[2] == 100) ||            /* TEST-NET-2 */
        (a[0] == 203 && a[1] == 0 && a[2] == 113) ||             /* TEST-NET-3 */
        (a[0] == 192 && a[1] == 88 && a[2] == 99))               /* 6to4 relay anycast */
        return WH_ADDR_RESERVED;
    return WH_ADDR_PUBLIC;
}

static bool all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* A 16-byte IPv6 address. */
static wh_addr_class classify_v6(const unsigned char a[16])
{
    static const unsigned char mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const unsigned char nat64_prefix[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    static const unsigned char local_nat64_prefix[6] = {0, 0x64, 0xff, 0x9b, 0, 0x01};
    static const unsigned char translated_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0};
    if (all_zero(a, 16))
        return WH_ADDR_UNSPECIFIED;
    if (all_zero(a, 15) && a[15] == 1)
        return WH_ADDR_LOOPBACK;
    if (memcmp(a, mapped_prefix, 12) == 0 || all_zero(a, 12))
        return classify_v4(a + 12); /* ::ffff:a.b.c.d, ::a.b.c.d */
    /* NAT64 (well-known and local-use), IPv4-translated and Teredo
     * addresses all lead to an IPv4 address, private ones too */
    if (memcmp(a, nat64_prefix, 12) == 0 || memcmp(a, local_nat64_prefix, 6) == 0)
        return WH_ADDR_RESERVED; /* 64:ff9b::/96, 64:ff9b:1::/48 */
    if (memcmp(a, translated_prefix, 12) == 0)
        return WH_ADDR_RESERVED; /* ::ffff:0:0:0/96 */
    if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0 && a[3] == 0)
        return WH_ADDR_RESERVED; /* 2001::/32 Teredo */
    if (a[0] == 0xff)
        return WH_ADDR_MULTICAST;
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
        return WH_ADDR_LINK_LOCAL;
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0)
        return WH_ADDR_UNIQUE_LOCAL; /* deprecated site-local fec0::/10 */
    if ((a[0] & 0xfe) == 0xfc)
        return WH_ADDR_UNIQUE_LOCAL;
    if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8)
        return WH_ADDR_RESERVED; /* 2001:db8::/32 documentation */
    if (a[0] == 0x20 && a[1] == 0x02)
        return WH_ADDR_RESERVED; /* 6to4 embeds arbitrary IPv4 */
    if (a[0] == 0x01 && all_zero(a + 1, 7))
        return WH_ADDR_RESERVED; /* 100::/64 discard */
    return WH_ADDR_PUBLIC;
}

wh_addr_class wh_addr_classify(const struct sockaddr *sa)
{
    if (!sa)
        return WH_ADDR_UNSUPPORTED;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        return classify_v4((const unsigned char *)&in->sin_addr);
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        return classify_v6(in6->sin6_addr.s6_addr);
    }
    return WH_ADDR_UNSUPPORTED;
}

bool wh_addr_allowed(wh_addr_class c, bool allow_private_targets)
{
    if (c == WH_ADDR_PUBLIC)
        return true;
    if (c == WH_ADDR_UNSUPPORTED || c == WH_ADDR_UNSPECIFIED || c == WH_ADDR_BROADCAST ||
        c == WH_ADDR_MULTICAST)
        return false;
    return allow_private_targets;
}

const char *wh_addr_class_name(wh_addr_class c)
{
    switch (c) {
    case WH_ADDR_PUBLIC: return "public";
    case WH_ADDR_UNSPECIFIED: return "unspecified";
    case WH_ADDR_LOOPBACK: return "loopback";
    case WH_ADDR_PRIVATE: return "private (RFC 1918)";
    case WH_ADDR_CGNAT: return "carrier-grade NAT (RFC 6598)";
    case WH_ADDR_LINK_LOCAL: return "link-local";
    case WH_ADDR_MULTICAST: return "multicast";
    case WH_ADDR_BROADCAST: return "broadcast";
    case WH_ADDR_RESERVED: return "reserved";
    case WH_ADDR_UNIQUE_LOCAL: return "unique-local (fc00::/7)";
    case WH_ADDR_UNSUPPORTED: return "unsupported address family";
    }
    return "unknown";
}
