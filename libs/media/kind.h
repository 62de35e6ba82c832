/*
 * kind.h - what a media object is: its family (image, audio, video,
 * document, sticker), the MIME types each family takes, the size limit per
 * family, and the type its first bytes say it is.
 *
 * The families and limits are Meta's (Cloud API, "Supported media types"):
 * audio 16 MB (aac, amr, mp3, mp4 audio, ogg/opus), document 100 MB (text,
 * pdf, office), image 5 MB (jpeg, png), sticker 500 KB (webp), video 16 MB
 * (mp4, 3gpp). The backbone holds every provider to them, since a file
 * kept for a webjs account may later be sent through a Meta one.
 *
 * Sniffing reads magic numbers only (no parsing): it tells a JPEG from a
 * PNG from a PDF well enough to refuse "image/png" declared over a PDF, and
 * answers NULL for bytes it does not recognise (plain text, most office
 * formats), which a document may be and an image may not.
 */
#ifndef BZ_MEDIA_KIND_H
#define BZ_MEDIA_KIND_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef enum bz_media_kind {
    BZ_MEDIA_IMAGE = 0,
    BZ_MEDIA_AUDIO,
    BZ_MEDIA_VIDEO,
    BZ_MEDIA_DOCUMENT,
    BZ_MEDIA_STICKER
} bz_media_kind;
#define BZ_MEDIA_KINDS 5

/* How many leading bytes bz_media_sniff wants at most. */
#define BZ_MEDIA_SNIFF_BYTES 64

/* "image", "audio", "video", "document", "sticker" (chat_media.kind and
 * Meta's message types). */
const char *bz_media_kind_name(bz_media_kind kind);

/* The kind named name; BZ_ERR_INVALID (reason "unknown_media_kind") for
 * any other. */
bz_status bz_media_kind_parse(const char *name, bz_media_kind *out, bz_error *err);

/* The largest object of kind, in bytes. */
uint64_t bz_media_kind_max_bytes(bz_media_kind kind);

/* The largest object of any kind, in bytes: the limit while the bytes
 * have not yet said which kind they are. */
uint64_t bz_media_any_kind_max_bytes(void);

/* The type declared by a client that leaves the type to the bytes (a
 * generated client cannot always choose its Content-Type): what is
 * stored is the type they are sniffed as, one WhatsApp takes. */
#define BZ_MEDIA_TYPE_FROM_BYTES "application/octet-stream"

/* Whether mime_type is BZ_MEDIA_TYPE_FROM_BYTES (parameters ignored,
 * case-insensitive). */
int bz_media_type_is_from_bytes(const char *mime_type);

/* Whether kind takes mime_type (parameters after ';' ignored,
 * case-insensitive). */
int bz_media_kind_accepts(bz_media_kind kind, const char *mime_type);

/* The kind a MIME type belongs to when it is given without one ("image/jpeg"
 * -> image, "application/pdf" -> document, "image/webp" -> sticker);
 * BZ_ERR_INVALID (reason "unsupported_media_type") for a type no kind takes. */
bz_status bz_media_kind_of_mime(const char *mime_type, bz_media_kind *out, bz_error *err);

/* The MIME type the first len bytes of an object (up to
 * BZ_MEDIA_SNIFF_BYTES) are, as a static string ("image/jpeg",
 * "image/png", "image/webp", "application/pdf", "audio/ogg", "audio/mpeg",
 * "audio/amr", "video/mp4", ...), or NULL when they say nothing known. */
const char *bz_media_sniff(const unsigned char *head, size_t len);

/* Whether bytes sniffed as sniffed (NULL: unknown) may be stored as
 * declared for kind: a known sniffed type must match the declared one's
 * family (an mp4 container may be audio/mp4 or video/mp4; a zip may be an
 * office document); unknown bytes pass only as a document or as text.
 * BZ_ERR_INVALID, reason "media_type_mismatch", naming both, when not. */
bz_status bz_media_check_type(bz_media_kind kind, const char *declared, const char *sniffed,
                              bz_error *err);

#endif
