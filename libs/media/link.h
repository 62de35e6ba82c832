/*
 * link.h - the signed, expiring link through which the CRM reads an object
 * of the local store (the S3 store hands out presigned URLs instead,
 * sigv4.h).
 *
 * A link names the object by its chat_media.uuid and carries the
 * workspace, an expiry (Unix seconds) and an HMAC-SHA256 over the three
 * under media.link_secret, hex: ingest serves GET /v1/media/{uuid}/content
 * ?workspace=W&expires=E&signature=S only when the signature checks
 * (constant-time), E is in the future and the row's workspace is W. So a
 * link cannot be stretched, moved to another object or another workspace,
 * and the store's paths never leave the backbone.
 */
#ifndef BZ_MEDIA_LINK_H
#define BZ_MEDIA_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define BZ_MEDIA_LINK_SIGNATURE_HEX 64

/* The signature of (media_uuid, workspace_id, expires) under secret, as 64
 * lower-case hex digits and a NUL in out. */
bz_status bz_media_link_sign(const char *secret, const char *media_uuid, int64_t workspace_id,
                             int64_t expires, char out[BZ_MEDIA_LINK_SIGNATURE_HEX + 1],
                             bz_error *err);

/* The whole link: base_url (ingest's public address, no trailing slash) +
 * the path and query above, valid ttl_s seconds from now_s. *out is heap
 * memory: free() it. */
bz_status bz_media_link_make(const char *secret, const char *base_url, const char *media_uuid,
                             int64_t workspace_id, int64_t now_s, int64_t ttl_s, char **out,
                             bz_error *err);

/* BZ_OK when signature_hex is the signature of the three and expires is
 * after now_s; BZ_ERR_INVALID with reason "link_expired" or
 * "bad_link_signature" otherwise. The comparison takes the same time
 * wherever the first difference is. */
bz_status bz_media_link_check(const char *secret, const char *media_uuid, int64_t workspace_id,
                              int64_t expires, const char *signature_hex, int64_t now_s,
                              bz_error *err);

#endif
