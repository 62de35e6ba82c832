/*
 * name.h - what a stored media object's name may be.
 *
 * The name is the uploader's (POST /v1/media?filename=, the gateway's
 * upload alike): kept in chat_media.name, shown to agents, sent to
 * WhatsApp as a document's file name. It reaches PostgreSQL as text, which
 * takes UTF-8 without NUL only, and screens, where a control character
 * or a text-direction override could rewrite what is shown; so it is checked at the edge, before
 * anything is stored, and a name that fails is refused, never trimmed: a
 * name cut at an embedded NUL ("a%00b" kept as "a") is not the name sent.
 */
#ifndef BZ_MEDIA_NAME_H
#define BZ_MEDIA_NAME_H

#include <stddef.h>

#include "core/status.h"

#define BZ_MEDIA_NAME_MAX 255 /* bytes */

/* Whether the len bytes at name are a name to keep: 1 to BZ_MEDIA_NAME_MAX
 * bytes of well-formed UTF-8 without NUL, control characters (C0, DEL,
 * C1) or the formatting characters that reorder what is shown (bidi marks,
 * embeddings, overrides, isolates).
 * BZ_ERR_INVALID (reason "invalid", "field filename: ...") else. */
bz_status bz_media_name_check(const char *name, size_t len, bz_error *err);

#endif
