/*
 * http_listen.c - what the public listener needs from the system before it
 * starts (see http_listen.h): its address, parsed from ingest.listen, and
 * enough open files for every connection it may hold.
 */
#include "http_listen.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define FILES_BESIDES_CONNECTIONS 256 /* librdkafka, PostgreSQL, the admin endpoint, logs */

bz_status ing_http_listen_parse(const char *listen, struct sockaddr_storage *addr, int *ipv6,
                              bz_error *err)
{
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    if (!colon || !colon[1])
        return bz_fail(err, BZ_ERR_CONFIG, "ingest.listen '%s': expected host:port",
                       listen ? listen : "(null)");
    char host[64], *end;
    size_t len = (size_t)(colon - listen);
    const char *start = listen;
    if (len >= 2 && listen[0] == '[' && colon[-1] == ']') {
        start++;
        len -= 2;
    }
    if (len >= sizeof host)
        return bz_fail(err, BZ_ERR_CONFIG, "ingest.listen '%s': host too long", listen);
    memcpy(host, start, len);
    host[len] = '\0';
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535)
        return bz_fail(err, BZ_ERR_CONFIG, "ingest.listen '%s': bad port", listen);
    if (!*host || strcmp(host, "localhost") == 0)
        snprintf(host, sizeof host, "%s", *host ? "127.0.0.1" : "0.0.0.0");
    memset(addr, 0, sizeof *addr);
    struct sockaddr_in *v4 = (struct sockaddr_in *)addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)addr;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *ipv6 = 0;
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *ipv6 = 1;
    } else {
        return bz_fail(err, BZ_ERR_CONFIG, "ingest.listen '%s': host must be a numeric address",
                       listen);
    }
    return BZ_OK;
}

bz_status ing_http_raise_open_files(int max_connections, bz_error *err)
{
    struct rlimit files;
    rlim_t need = (rlim_t)max_connections + FILES_BESIDES_CONNECTIONS;
    if (getrlimit(RLIMIT_NOFILE, &files) != 0 || files.rlim_cur >= need)
        return BZ_OK;
    if (files.rlim_max != RLIM_INFINITY && files.rlim_max < need)
        return bz_fail(err, BZ_ERR_CONFIG,
                       "ingest.http_max_connections %d needs %llu open files, the hard limit is "
                       "%llu: lower the key or raise the limit (ulimit -n)",
                       max_connections, (unsigned long long)need,
                       (unsigned long long)files.rlim_max);
    files.rlim_cur = need;
    if (setrlimit(RLIMIT_NOFILE, &files) != 0)
        return bz_fail(err, BZ_ERR_CONFIG, "ingest.http_max_connections %d: cannot raise the "
                       "open-file limit to %llu", max_connections, (unsigned long long)need);
    return BZ_OK;
}
