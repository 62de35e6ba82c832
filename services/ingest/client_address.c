/*
 * client_address.c - a client's address as the key of its limits (see
 * client_address.h).
 */
#include "client_address.h"

#include <netinet/in.h>
#include <string.h>

void ing_client_address_key(const struct sockaddr *sa, uint8_t key[ING_CLIENT_KEY_LEN])
{
    memset(key, 0, ING_CLIENT_KEY_LEN);
    if (sa && sa->sa_family == AF_INET) {
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (sa && sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        memcpy(key, a, IN6_IS_ADDR_V4MAPPED(a) ? ING_CLIENT_KEY_LEN : 8);
    }
}
