/*
 * http_request.h - what ingest's public HTTP server (http_api.c) and the
 * requests it serves (http_request.c) share: the server's state, which a
 * request reads for its limits, guard, producer and router, and the
 * libmicrohttpd callbacks that take a request from its request line to
 * its answer, which the server registers. Private to the two files; see
 * http_api.h for the endpoints.
 */
#ifndef ING_HTTP_REQUEST_H
#define ING_HTTP_REQUEST_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdint.h>

#include "http_api.h"
#include "http_guard.h"
#include "http_producer.h"
#include "http_router.h"

struct ing_http_api {
    ing_http_api_config cfg;
    struct MHD_Daemon *daemon;
    uint16_t port;
    ing_http_guard *guard;
    ing_http_producer *producer;
    ing_http_router *router;
    pthread_mutex_t log_mu;
    int64_t warned_ms;
    int quieted;
};

/* libmicrohttpd's access handler (cls the server): each call takes the
 * request one step further (http_request.c). */
enum MHD_Result ing_http_on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_data_size,
                                    void **con_cls);

/* MHD's URI logger: the request's state, made when its request line
 * arrived (NULL: out of memory, and the request is refused). */
void *ing_http_on_request_line(void *cls, const char *uri, struct MHD_Connection *conn);

/* MHD's completion callback: whatever the request still holds, freed and
 * given back to the guard. */
void ing_http_on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                           enum MHD_RequestTerminationCode toe);

#endif
