/*
 * media_bytes.c - the simulator's real media files (see media_bytes.h):
 * PNG (ISO/IEC 15948: chunks with CRC-32, a zlib stream of stored deflate
 * blocks with its Adler-32) and Ogg Opus (RFC 3533 pages with their own
 * CRC, RFC 7845 headers, RFC 6716 frames).
 *
 * Both are written into one growable buffer; a failed allocation marks it
 * and every later write does nothing, so the builders check once at the
 * end.
 */
#include "media_bytes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PNG_SIDE 48
#define OPUS_PRE_SKIP 312
#define OPUS_FRAMES_PER_SECOND 50
#define OPUS_SAMPLES_PER_FRAME 960 /* 20 ms at 48 kHz */

typedef struct buffer {
    unsigned char *data;
    size_t len, cap;
    int failed;
} buffer;

static void put(buffer *b, const void *src, size_t n)
{
    if (b->failed || n == 0)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n)
            cap *= 2;
        unsigned char *grown = realloc(b->data, cap);
        if (!grown) {
            b->failed = 1;
            return;
        }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, src, n);
    b->len += n;
}

static void put_byte(buffer *b, unsigned v)
{
    unsigned char c = (unsigned char)v;
    put(b, &c, 1);
}

static void put_be32(buffer *b, uint32_t v)
{
    unsigned char c[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    put(b, c, 4);
}

static void put_le(buffer *b, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        put_byte(b, (unsigned)(v >> (8 * i)) & 0xff);
}

static bz_status finish(buffer *b, const char *mime, bz_sim_media_bytes *out, bz_error *err)
{
    if (b->failed) {
        free(b->data);
        return bz_fail(err, BZ_ERR_NOMEM, "make a %s file: out of memory", mime);
    }
    out->data = b->data;
    out->len = b->len;
    out->mime_type = mime;
    return BZ_OK;
}

void bz_sim_media_bytes_free(bz_sim_media_bytes *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* ---- PNG ------------------------------------------------------------------------ */

/* CRC-32 of ISO 3309 (reflected 0xEDB88320), as PNG's chunks carry it. */
static uint32_t crc32_png(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return c ^ 0xffffffffu;
}

static uint32_t adler32(const unsigned char *p, size_t n)
{
    uint32_t a = 1, s = 0;
    for (size_t i = 0; i < n; i++) {
        a = (a + p[i]) % 65521u;
        s = (s + a) % 65521u;
    }
    return (s << 16) | a;
}

/* A chunk: length, type, data, and the CRC over type and data. */
static void put_chunk(buffer *b, const char type[4], const unsigned char *data, size_t n)
{
    put_be32(b, (uint32_t)n);
    size_t crc_from = b->len;
    put(b, type, 4);
    put(b, data, n);
    if (!b->failed)
        put_be32(b, crc32_png(b->data + crc_from, 4 + n));
}

/* Rows of filter byte 0 and RGB pixels: a gradient in the seed's colours. */
static void gradient_rows(uint64_t seed, unsigned char *raw)
{
    unsigned r0 = (unsigned)(seed & 0xff), g0 = (unsigned)(seed >> 8 & 0xff);
    unsigned b0 = (unsigned)(seed >> 16 & 0xff);
    size_t k = 0;
    for (unsigned y = 0; y < PNG_SIDE; y++) {
        raw[k++] = 0;
        for (unsigned x = 0; x < PNG_SIDE; x++) {
            raw[k++] = (unsigned char)(r0 + 4 * x);
            raw[k++] = (unsigned char)(g0 + 4 * y);
            raw[k++] = (unsigned char)(b0 + 2 * (x + y));
        }
    }
}

bz_status bz_sim_media_png(uint64_t seed, bz_sim_media_bytes *out, bz_error *err)
{
    static const unsigned char signature[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    enum { RAW = PNG_SIDE * (1 + 3 * PNG_SIDE) }; /* < 65535: one stored block */
    unsigned char raw[RAW];
    gradient_rows(seed, raw);
    buffer b = {0};
    put(&b, signature, sizeof signature);
    unsigned char ihdr[13] = {0, 0, 0, PNG_SIDE, 0, 0, 0, PNG_SIDE, 8, 2, 0, 0, 0};
    put_chunk(&b, "IHDR", ihdr, sizeof ihdr);

    buffer z = {0};
    put_byte(&z, 0x78); /* deflate, 32 KB window; with 0x01 a multiple of 31 */
    put_byte(&z, 0x01);
    put_byte(&z, 0x01); /* the final block, stored */
    put_le(&z, RAW, 2);
    put_le(&z, (uint16_t)~(uint16_t)RAW, 2);
    put(&z, raw, RAW);
    put_be32(&z, adler32(raw, RAW));
    if (z.failed)
        b.failed = 1;
    else
        put_chunk(&b, "IDAT", z.data, z.len);
    free(z.data);
    put_chunk(&b, "IEND", NULL, 0);
    return finish(&b, "image/png", out, err);
}

/* ---- Ogg Opus ---------------------------------------------------------------------- */

/* Ogg's CRC: polynomial 0x04C11DB7, not reflected, initial 0, no final xor. */
static uint32_t crc32_ogg(const unsigned char *p, size_t n)
{
    uint32_t c = 0;
    for (size_t i = 0; i < n; i++) {
        c ^= (uint32_t)p[i] << 24;
        for (int k = 0; k < 8; k++)
            c = (c << 1) ^ (0x04c11db7u & (0u - (c >> 31)));
    }
    return c;
}

typedef struct ogg_stream {
    buffer *b;
    uint32_t serial, sequence;
} ogg_stream;

/* One page of packets, each under 255 bytes (one lacing value apiece). */
static void put_page(ogg_stream *s, unsigned flags, uint64_t granule,
                     const unsigned char *const *packets, const size_t *sizes, int n)
{
    buffer *b = s->b;
    size_t start = b->len;
    put(b, "OggS", 4);
    put_byte(b, 0); /* version */
    put_byte(b, flags);
    put_le(b, granule, 8);
    put_le(b, s->serial, 4);
    put_le(b, s->sequence++, 4);
    size_t crc_at = b->len;
    put_le(b, 0, 4);
    put_byte(b, (unsigned)n);
    for (int i = 0; i < n; i++)
        put_byte(b, (unsigned)sizes[i]);
    for (int i = 0; i < n; i++)
        put(b, packets[i], sizes[i]);
    if (b->failed)
        return;
    uint32_t crc = crc32_ogg(b->data + start, b->len - start);
    for (int i = 0; i < 4; i++)
        b->data[crc_at + (size_t)i] = (unsigned char)(crc >> (8 * i));
}

static void put_headers(ogg_stream *s, uint64_t seed)
{
    buffer head = {0}, tags = {0};
    put(&head, "OpusHead", 8);
    put_byte(&head, 1); /* version */
    put_byte(&head, 1); /* mono */
    put_le(&head, OPUS_PRE_SKIP, 2);
    put_le(&head, 48000, 4);
    put_le(&head, 0, 2); /* output gain */
    put_byte(&head, 0);  /* channel mapping family */
    static const char vendor[] = "blazz-gateway-sim";
    char title[48];
    int title_len = snprintf(title, sizeof title, "TITLE=voice note %016llx",
                             (unsigned long long)seed);
    put(&tags, "OpusTags", 8);
    put_le(&tags, sizeof vendor - 1, 4);
    put(&tags, vendor, sizeof vendor - 1);
    put_le(&tags, 1, 4);
    put_le(&tags, (uint64_t)title_len, 4);
    put(&tags, title, (size_t)title_len);
    if (head.failed || tags.failed) {
        s->b->failed = 1;
    } else {
        const unsigned char *p1[] = {head.data}, *p2[] = {tags.data};
        put_page(s, 0x02, 0, p1, &head.len, 1); /* beginning of stream */
        put_page(s, 0x00, 0, p2, &tags.len, 1);
    }
    free(head.data);
    free(tags.data);
}

bz_status bz_sim_media_voice_note(uint64_t seed, int seconds, bz_sim_media_bytes *out,
                                  bz_error *err)
{
    if (seconds < 1 || seconds > 600)
        return bz_fail(err, BZ_ERR_INVALID, "voice note of %d s: 1..600 s", seconds);
    /* TOC 0xF8: CELT-only fullband 20 ms, mono, one frame; 0xFF 0xFE: silence */
    static const unsigned char silence[] = {0xf8, 0xff, 0xfe};
    const unsigned char *frames[OPUS_FRAMES_PER_SECOND];
    size_t sizes[OPUS_FRAMES_PER_SECOND];
    for (int i = 0; i < OPUS_FRAMES_PER_SECOND; i++) {
        frames[i] = silence;
        sizes[i] = sizeof silence;
    }
    buffer b = {0};
    ogg_stream s = {.b = &b, .serial = (uint32_t)(seed ^ (seed >> 32))};
    put_headers(&s, seed);
    for (int sec = 1; sec <= seconds; sec++) {
        uint64_t granule = (uint64_t)sec * OPUS_FRAMES_PER_SECOND * OPUS_SAMPLES_PER_FRAME;
        put_page(&s, sec == seconds ? 0x04 : 0x00, granule, frames, sizes,
                 OPUS_FRAMES_PER_SECOND);
    }
    return finish(&b, "audio/ogg", out, err);
}
