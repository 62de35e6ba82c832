/*
 * meta_handshake.c - Meta's GET verification of the webhook URL (see
 * meta_handshake.h).
 */
#include "meta/meta_handshake.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <string.h>

#include "http_respond.h"

/* Compares digests, not the texts: comparing lengths first, or bytes up
 * to the shorter one, would tell a prober the token's length. */
static int same_secret(const char *given, const char *expected)
{
    unsigned char a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];
    if (!given)
        return 0;
    SHA256((const unsigned char *)given, strlen(given), a);
    SHA256((const unsigned char *)expected, strlen(expected), b);
    return CRYPTO_memcmp(a, b, sizeof a) == 0;
}

static const char *argument(struct MHD_Connection *conn, const char *name)
{
    return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
}

enum MHD_Result ing_meta_answer_handshake(struct MHD_Connection *conn, const char *expected,
                                          ing_metrics *metrics)
{
    const char *mode = argument(conn, "hub.mode"), *token = argument(conn, "hub.verify_token");
    const char *challenge = argument(conn, "hub.challenge");
    if (!mode || strcmp(mode, "subscribe") != 0 || !challenge || !expected || !*expected ||
        !same_secret(token, expected))
        return ing_http_respond_error(metrics, conn, MHD_HTTP_FORBIDDEN, "meta",
                                      "verification_failed", "hub.verify_token",
                                      "verification failed");
    return ing_http_respond(conn, MHD_HTTP_OK, "text/plain", challenge);
}
