/*
 * gateway_media.h - who may upload media as a gateway (POST
 * /v1/gateway/media, ARCHITECTURE.md §16.4), judged from the headers
 * alone, before a byte of the body is read.
 *
 * An upload is authenticated with the gateway's key as POST /v1/events
 * is (gateway_auth.h: X-Blazz-Gateway, X-Blazz-Timestamp, X-Blazz-Key-Id,
 * X-WhatsApp-Signature), but since the body must stream into the store
 * before anything could hash it, the signature covers a statement
 * instead of the body: "blazz-gateway-media-v1\n<session>\n<sha256>", the
 * session (?session=) the media belongs to and the body's SHA-256 as the
 * gateway declares it (X-Blazz-Content-SHA256, 64 lower-case hex). The
 * store then refuses bytes whose digest is not the declared one, so the
 * body is as authenticated as a signed event's. The timestamped mode is
 * required (replay protection), and the session must be one the gateway
 * serves now (gateway_auth.h's directory, no query; a session it does not
 * know yet is confirmed by the worker's query, after the signature).
 *
 * A gateway reads an outbound message's stored media back
 * (GET /v1/gateway/media/{uuid}?session=S) with the same headers; its
 * signature covers "blazz-gateway-media-read-v1\n<session>\n<uuid>", the
 * uuid as the path gives it. The two statements never read as each other,
 * so an upload's signature cannot be replayed as a read or back.
 */
#ifndef ING_GATEWAY_MEDIA_H
#define ING_GATEWAY_MEDIA_H

#include <microhttpd.h>

#include "core/status.h"
#include "gateway/gateway_auth.h"

#define ING_GATEWAY_MEDIA_SESSION_MAX 128

typedef struct ing_gateway_media_claim {
    char gateway[BZ_GATEWAY_ID_MAX + 1];
    char session[ING_GATEWAY_MEDIA_SESSION_MAX + 1];
    char sha256[65]; /* an upload's declared digest; "" for a read */
} ing_gateway_media_claim;

/* Check conn's headers and ?session=: BZ_OK with *out filled;
 * BZ_ERR_INVALID with gateway_auth.h's reasons (401), "missing_field"
 * naming session or X-Blazz-Content-SHA256 (400), "session_not_owned"
 * (401, the directory gives the session to another gateway);
 * BZ_ERR_TRANSIENT before the gateways were first read. A session the
 * directory does not know passes: it may be newer than the directory's
 * last read, so the worker that finds its workspace (media_api.c) looks
 * only among the live accounts the signer serves, and answers 404
 * unknown_session when there is none. */
bz_status ing_gateway_media_admit(ing_gateway_auth *gateways, struct MHD_Connection *conn,
                                  int64_t now_ms, ing_gateway_media_claim *out, bz_error *err);

/* The same for a read of the media uuid: the statement is the read's, no
 * X-Blazz-Content-SHA256. */
bz_status ing_gateway_media_admit_read(ing_gateway_auth *gateways, struct MHD_Connection *conn,
                                       const char *uuid, int64_t now_ms,
                                       ing_gateway_media_claim *out, bz_error *err);

#endif
