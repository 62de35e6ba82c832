/*
 * meta_handshake.h - Meta's verification of a webhook URL: before it posts
 * notifications, Meta GETs the URL with hub.mode=subscribe, the verify
 * token the app was configured with and a challenge, and wants the
 * challenge back as it was (Cloud API, "Set up webhooks").
 *
 * The token is a secret: a wrong guess must learn nothing of it, its
 * length included, so it is compared as SHA-256 digests in constant time.
 */
#ifndef ING_META_HANDSHAKE_H
#define ING_META_HANDSHAKE_H

#include <microhttpd.h>

#include "ingest_metrics.h"

/* Answer the GET on conn: 200 with the challenge when the mode is
 * "subscribe" and the token is expected (which must be set and not
 * empty), else 403 verification_failed. metrics may be NULL. */
enum MHD_Result ing_meta_answer_handshake(struct MHD_Connection *conn, const char *expected,
                                          ing_metrics *metrics);

#endif
