/*
 * http_listen.h - the public listener's address and open-file limit
 * (http_listen.c), settled before the HTTP daemon starts.
 */
#ifndef ING_HTTP_LISTEN_H
#define ING_HTTP_LISTEN_H

#include <sys/socket.h>

#include "core/status.h"

/* "host:port" ("[v6]:port"; an empty host is every address, "localhost"
 * 127.0.0.1) into addr, *ipv6 set for an IPv6 one. BZ_ERR_CONFIG naming the
 * text when it is not a numeric address and a port. */
bz_status ing_http_listen_parse(const char *listen, struct sockaddr_storage *addr, int *ipv6,
                               bz_error *err);

/* Each connection holds a descriptor: make sure the process may open as
 * many as max_connections allows, raising the soft limit if needed;
 * BZ_ERR_CONFIG when the hard limit is too low. */
bz_status ing_http_raise_open_files(int max_connections, bz_error *err);

#endif
