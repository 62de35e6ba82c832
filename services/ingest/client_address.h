/*
 * client_address.h - who a client is, for the limits ingest keeps per
 * client: its address as a 16-byte key. IPv4 counts as its IPv4-mapped IPv6
 * form and IPv6 by its /64, because a host is usually given a whole /64 and
 * a /128 key would give one client 2^64 addresses.
 */
#ifndef ING_CLIENT_ADDRESS_H
#define ING_CLIENT_ADDRESS_H

#include <stdint.h>
#include <sys/socket.h>

#define ING_CLIENT_KEY_LEN 16

/* The key of sa into key; all zero for NULL or another family. */
void ing_client_address_key(const struct sockaddr *sa, uint8_t key[ING_CLIENT_KEY_LEN]);

#endif
