/*
 * gateway_media.c - a gateway's upload, or its read of stored media, judged
 * from its headers (see gateway_media.h). One HMAC over a short statement,
 * an in-memory owner lookup: cheap enough for the event loop, so no worker
 * is held by an unauthenticated request.
 */
#include "gateway/gateway_media.h"

#include <stdio.h>
#include <string.h>

#include "wa/signature.h"

#define SUBJECT_MAX 64 /* a SHA-256 in hex, or a uuid */

static const char *header(struct MHD_Connection *conn, const char *name)
{
    return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
}

static int is_lower_hex(const char *s, size_t len)
{
    if (!s || strlen(s) != len)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!strchr("0123456789abcdef", s[i]))
            return 0;
    return 1;
}

static bz_status read_session(struct MHD_Connection *conn, ing_gateway_media_claim *out,
                              bz_error *err)
{
    const char *session = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "session");
    if (!session || !*session || strlen(session) > ING_GATEWAY_MEDIA_SESSION_MAX)
        return bz_reject(err, "missing_field",
                         "field session: the session the media belongs to is required");
    snprintf(out->session, sizeof out->session, "%s", session);
    return BZ_OK;
}

static bz_status read_statement(struct MHD_Connection *conn, ing_gateway_media_claim *out,
                                bz_error *err)
{
    const char *sha = header(conn, "X-Blazz-Content-SHA256");
    bz_status st = read_session(conn, out, err);
    if (st != BZ_OK)
        return st;
    if (!is_lower_hex(sha, 64))
        return bz_reject(err, "missing_field", "field X-Blazz-Content-SHA256: the body's "
                                               "SHA-256 as 64 lower-case hex digits is required");
    memcpy(out->sha256, sha, 65);
    return BZ_OK;
}

/* The signature over act's statement (wa/signature.h), timestamped mode
 * only. */
static bz_status verify_signer(ing_gateway_auth *gateways, struct MHD_Connection *conn,
                               int64_t now_ms, bz_gateway_media_act act, const char *subject,
                               ing_gateway_media_claim *out, bz_error *err)
{
    ing_gateway_claim claim = {.gateway_id = header(conn, "X-Blazz-Gateway"),
                               .kind = ING_GATEWAY_WEBJS,
                               .timestamp = header(conn, "X-Blazz-Timestamp"),
                               .key_id = header(conn, "X-Blazz-Key-Id"),
                               .signature = header(conn, "X-WhatsApp-Signature")};
    if (!claim.timestamp)
        return bz_reject(err, "timestamp_required",
                         "field X-Blazz-Timestamp: a media upload must be timestamped");
    char statement[BZ_GATEWAY_MEDIA_STATEMENT_MAX], bounded[SUBJECT_MAX + 1];
    snprintf(bounded, sizeof bounded, "%s", subject);
    size_t len = 0;
    bz_status st = bz_gateway_media_statement(act, out->session, bounded, statement,
                                              sizeof statement, &len, err);
    if (st == BZ_OK)
        st = ing_gateway_auth_admit(gateways, &claim, now_ms, err);
    if (st == BZ_OK)
        st = ing_gateway_auth_verify(gateways, &claim, statement, len, now_ms, out->gateway,
                                     err);
    return st;
}

/* A session the directory gives to another gateway is refused here; one
 * it does not know (an account newer than its last read, or none) goes
 * on: the worker looks for it among the signer's live accounts only. */
static bz_status check_owner(ing_gateway_auth *gateways, const ing_gateway_media_claim *c,
                             bz_error *err)
{
    char owner[BZ_GATEWAY_ID_MAX + 1];
    bz_status st = ing_gateway_auth_owner(gateways, c->session, owner, err);
    if (st == BZ_ERR_NOT_FOUND)
        return BZ_OK;
    if (st == BZ_OK && strcmp(owner, c->gateway) != 0)
        return bz_reject(err, "session_not_owned", "gateway %s does not serve session %s",
                         c->gateway, c->session);
    return st;
}

bz_status ing_gateway_media_admit(ing_gateway_auth *gateways, struct MHD_Connection *conn,
                                  int64_t now_ms, ing_gateway_media_claim *out, bz_error *err)
{
    memset(out, 0, sizeof *out);
    bz_status st = read_statement(conn, out, err);
    if (st == BZ_OK)
        st = verify_signer(gateways, conn, now_ms, BZ_GATEWAY_MEDIA_UPLOAD, out->sha256, out, err);
    if (st == BZ_OK)
        st = check_owner(gateways, out, err);
    return st;
}

bz_status ing_gateway_media_admit_read(ing_gateway_auth *gateways, struct MHD_Connection *conn,
                                       const char *uuid, int64_t now_ms,
                                       ing_gateway_media_claim *out, bz_error *err)
{
    memset(out, 0, sizeof *out);
    bz_status st = read_session(conn, out, err);
    if (st == BZ_OK)
        st = verify_signer(gateways, conn, now_ms, BZ_GATEWAY_MEDIA_READ, uuid, out, err);
    if (st == BZ_OK)
        st = check_owner(gateways, out, err);
    return st;
}
