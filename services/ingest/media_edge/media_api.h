/*
 * media_api.h - the media endpoints on ingest's public listener
 * (ARCHITECTURE.md §16.3, §16.4):
 *
 *   POST /v1/media                     the CRM stores bytes (API key) -> 201
 *   GET  /v1/media/{uuid}              its row and a short-lived link (API key)
 *   GET  /v1/media/{uuid}/content      the bytes, through the local store's
 *                                      signed link (no key: the signature is
 *                                      the credential)
 *   POST /v1/gateway/media?session=    a gateway stores bytes of a session it
 *                                      serves (its key, gateway_media.h) -> 201
 *   GET  /v1/gateway/media/{uuid}?session=
 *                                      a gateway reads stored bytes of its
 *                                      session's workspace (its key), e.g. an
 *                                      agent's outbound media -> the bytes
 *
 * Unlike the other endpoints, an upload's body is never buffered: the
 * request's key is checked by a CRM worker while the connection is
 * suspended after its headers (so no byte of an unauthenticated body is
 * read or stored), then each chunk libmicrohttpd delivers goes into a
 * bz_media_spool (a temporary file, counted against the kind's limit and
 * hashed as it comes), and a worker commits it with its chat_media row in
 * one transaction (libs/media/media_row.h). What the headers decide (405,
 * a key without its shape 401, an unsupported Content-Type 415, a
 * Content-Length over the kind's limit 413, a verified gateway past its
 * request rate 429, gateway_rate.h) is answered before the body.
 */
#ifndef ING_MEDIA_API_H
#define ING_MEDIA_API_H

#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "media_edge/media_config.h"

typedef struct ing_media_api ing_media_api;
typedef struct ing_media_request ing_media_request;

bz_status ing_media_api_new(const ing_media_api_config *cfg, ing_media_api **out, bz_error *err);
void ing_media_api_free(ing_media_api *media);

/* Whether url is one of the media endpoints. */
int ing_media_api_route(const char *url);

/* The state of one request to a media endpoint, created on its first call
 * (headers complete); NULL when memory ran out. */
ing_media_request *ing_media_request_new(ing_media_api *media, const char *url);
void ing_media_request_free(ing_media_request *mr);

/* Every call of libmicrohttpd's access handler for the request, as
 * http_request.c receives it: the first (headers), each body chunk (*size > 0,
 * consumed), the last (body complete), and the call after a worker resumed
 * the connection. */
enum MHD_Result ing_media_request_step(ing_media_request *mr, struct MHD_Connection *conn,
                                       const char *method, const char *data, size_t *size);

/* Whether a call without data is the resume after the uploader's key
 * check, with the body still to come; any other call without data after
 * the first means the request arrived whole. */
int ing_media_request_checking_key(const ing_media_request *mr);

/* Bytes of body the request may still receive from a sender proven before
 * it (its API key or signed statement verified, the spool open): its
 * Content-Length, or the kind's limit when chunked; 0 when its sender is
 * not proven or no body is coming. */
uint64_t ing_media_request_proven_body(const ing_media_request *mr);

#endif
