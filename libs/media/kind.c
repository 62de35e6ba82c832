/*
 * kind.c - the media families, their MIME types and size limits (Meta's
 * Cloud API "Supported media types", ARCHITECTURE.md §16.1), and the type
 * an object's first bytes say it is (see kind.h).
 *
 * The limits are in decimal megabytes: Meta writes "5 MB" without saying
 * which, and the smaller reading is the one no provider refuses.
 *
 * Sniffing looks at magic numbers only. Container formats answer their
 * family's usual type (an ISO-BMFF "ftyp" box is video/mp4 unless its brand
 * says audio or 3GPP; a zip is application/zip, which office documents
 * are; an OLE compound file is the older office formats'), and the check
 * treats each family as one.
 */
#include "media/kind.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MB 1000000ULL
#define MIME_MAX 128

static const char *const kind_names[BZ_MEDIA_KINDS] = {"image", "audio", "video", "document",
                                                       "sticker"};

static const uint64_t kind_limits[BZ_MEDIA_KINDS] = {5 * MB, 16 * MB, 16 * MB, 100 * MB,
                                                     500000ULL};

/* Each kind's types, NULL-terminated. */
static const char *const image_types[] = {"image/jpeg", "image/png", NULL};
static const char *const audio_types[] = {"audio/aac", "audio/amr", "audio/mpeg", "audio/mp4",
                                          "audio/ogg", NULL};
static const char *const video_types[] = {"video/mp4", "video/3gpp", NULL};
static const char *const document_types[] = {
    "text/plain",
    "application/pdf",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    NULL};
static const char *const sticker_types[] = {"image/webp", NULL};

static const char *const *const kind_types[BZ_MEDIA_KINDS] = {
    image_types, audio_types, video_types, document_types, sticker_types};

/* The sniffed container types and the declared types each may be. */
#define SNIFF_ZIP "application/zip"
#define SNIFF_OLE "application/x-ole-storage"
#define SNIFF_MP4 "video/mp4"
#define SNIFF_MP4_AUDIO "audio/mp4"
#define SNIFF_3GPP "video/3gpp"

const char *bz_media_kind_name(bz_media_kind kind)
{
    return (unsigned)kind < BZ_MEDIA_KINDS ? kind_names[kind] : "unknown";
}

bz_status bz_media_kind_parse(const char *name, bz_media_kind *out, bz_error *err)
{
    for (int k = 0; name && k < BZ_MEDIA_KINDS; k++)
        if (strcmp(name, kind_names[k]) == 0) {
            *out = (bz_media_kind)k;
            return BZ_OK;
        }
    return bz_reject(err, "unknown_media_kind", "media kind \"%.64s\" is none of image, audio, "
                     "video, document, sticker", name ? name : "(null)");
}

uint64_t bz_media_kind_max_bytes(bz_media_kind kind)
{
    return (unsigned)kind < BZ_MEDIA_KINDS ? kind_limits[kind] : 0;
}

uint64_t bz_media_any_kind_max_bytes(void)
{
    uint64_t max = 0;
    for (int k = 0; k < BZ_MEDIA_KINDS; k++)
        if (kind_limits[k] > max)
            max = kind_limits[k];
    return max;
}

/* The type without parameters or surrounding blanks, lower-cased, into out;
 * 0 when it does not fit or is empty. */
static int mime_essence(const char *mime, char out[MIME_MAX])
{
    if (!mime)
        return 0;
    while (*mime == ' ' || *mime == '\t')
        mime++;
    size_t n = strcspn(mime, ";");
    while (n > 0 && (mime[n - 1] == ' ' || mime[n - 1] == '\t'))
        n--;
    if (n == 0 || n >= MIME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)((mime[i] >= 'A' && mime[i] <= 'Z') ? mime[i] + 32 : mime[i]);
    out[n] = '\0';
    return 1;
}

static int list_has(const char *const *list, const char *essence)
{
    for (; *list; list++)
        if (strcmp(*list, essence) == 0)
            return 1;
    return 0;
}

int bz_media_kind_accepts(bz_media_kind kind, const char *mime_type)
{
    char essence[MIME_MAX];
    return (unsigned)kind < BZ_MEDIA_KINDS && mime_essence(mime_type, essence) &&
           list_has(kind_types[kind], essence);
}

int bz_media_type_is_from_bytes(const char *mime_type)
{
    char essence[MIME_MAX];
    return mime_essence(mime_type, essence) && strcmp(essence, BZ_MEDIA_TYPE_FROM_BYTES) == 0;
}

bz_status bz_media_kind_of_mime(const char *mime_type, bz_media_kind *out, bz_error *err)
{
    for (int k = 0; k < BZ_MEDIA_KINDS; k++)
        if (bz_media_kind_accepts((bz_media_kind)k, mime_type)) {
            *out = (bz_media_kind)k;
            return BZ_OK;
        }
    return bz_reject(err, "unsupported_media_type", "media type \"%.100s\" is not one WhatsApp "
                     "takes", mime_type ? mime_type : "(null)");
}

static int starts_with(const unsigned char *head, size_t len, const char *magic, size_t n)
{
    return len >= n && memcmp(head, magic, n) == 0;
}

/* An MPEG audio frame header (mp3) or an ADTS one (aac): eleven sync bits,
 * then the version and layer. */
static const char *sniff_mpeg_audio(const unsigned char *head, size_t len)
{
    if (len < 2 || head[0] != 0xFF || (head[1] & 0xE0) != 0xE0)
        return NULL;
    int version = (head[1] >> 3) & 3, layer = (head[1] >> 1) & 3;
    if (layer == 0)
        return (head[1] & 0xF6) == 0xF0 ? "audio/aac" : NULL;
    return version != 1 ? "audio/mpeg" : NULL;
}

/* An ISO base media file: "ftyp" at offset 4, the major brand after it. */
static const char *sniff_iso_bmff(const unsigned char *head, size_t len)
{
    if (len < 12 || memcmp(head + 4, "ftyp", 4) != 0)
        return NULL;
    const unsigned char *brand = head + 8;
    if (memcmp(brand, "M4A ", 4) == 0 || memcmp(brand, "M4B ", 4) == 0)
        return SNIFF_MP4_AUDIO;
    if (memcmp(brand, "3gp", 3) == 0 || memcmp(brand, "3g2", 3) == 0)
        return SNIFF_3GPP;
    return SNIFF_MP4;
}

const char *bz_media_sniff(const unsigned char *head, size_t len)
{
    if (!head)
        return NULL;
    if (len > BZ_MEDIA_SNIFF_BYTES)
        len = BZ_MEDIA_SNIFF_BYTES;
    if (starts_with(head, len, "\xFF\xD8\xFF", 3))
        return "image/jpeg";
    if (starts_with(head, len, "\x89PNG\r\n\x1A\n", 8))
        return "image/png";
    if (starts_with(head, len, "GIF87a", 6) || starts_with(head, len, "GIF89a", 6))
        return "image/gif";
    if (len >= 12 && memcmp(head, "RIFF", 4) == 0 && memcmp(head + 8, "WEBP", 4) == 0)
        return "image/webp";
    if (starts_with(head, len, "%PDF-", 5))
        return "application/pdf";
    if (starts_with(head, len, "OggS", 4))
        return "audio/ogg";
    if (starts_with(head, len, "ID3", 3))
        return "audio/mpeg";
    if (starts_with(head, len, "#!AMR\n", 6))
        return "audio/amr";
    if (starts_with(head, len, "#!AMR-WB\n", 9))
        return "audio/amr-wb";
    if (starts_with(head, len, "PK\x03\x04", 4))
        return SNIFF_ZIP;
    if (starts_with(head, len, "\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1", 8))
        return SNIFF_OLE;
    const char *t = sniff_iso_bmff(head, len);
    return t ? t : sniff_mpeg_audio(head, len);
}

/* Whether bytes sniffed as sniffed may be the declared essence. */
static int sniffed_fits(const char *sniffed, const char *declared)
{
    static const char *const iso_bmff[] = {"video/mp4", "audio/mp4", "video/3gpp", NULL};
    static const char *const ole[] = {"application/msword", "application/vnd.ms-excel",
                                      "application/vnd.ms-powerpoint", NULL};
    if (list_has(iso_bmff, sniffed))
        return list_has(iso_bmff, declared);
    if (strcmp(sniffed, SNIFF_OLE) == 0)
        return list_has(ole, declared);
    if (strcmp(sniffed, SNIFF_ZIP) == 0)
        return strncmp(declared, "application/vnd.openxmlformats-officedocument.", 46) == 0;
    return strcmp(sniffed, declared) == 0;
}

bz_status bz_media_check_type(bz_media_kind kind, const char *declared, const char *sniffed,
                              bz_error *err)
{
    char essence[MIME_MAX];
    if (!bz_media_kind_accepts(kind, declared) || !mime_essence(declared, essence))
        return bz_reject(err, "media_type_mismatch", "declared type \"%.100s\" is not a %s",
                         declared ? declared : "(null)", bz_media_kind_name(kind));
    if (!sniffed) {
        if (kind == BZ_MEDIA_DOCUMENT)
            return BZ_OK;
        return bz_reject(err, "media_type_mismatch", "declared %s but the bytes are of no "
                         "known %s type", essence, bz_media_kind_name(kind));
    }
    if (!sniffed_fits(sniffed, essence))
        return bz_reject(err, "media_type_mismatch", "declared %s but the bytes are %s", essence,
                         sniffed);
    return BZ_OK;
}
