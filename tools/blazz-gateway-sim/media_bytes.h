/*
 * media_bytes.h - real, small media files for the simulator's uploads: a
 * photo as a PNG and a voice note as Ogg Opus, each a valid file any
 * viewer or player opens, made from a seed so that every message's bytes
 * differ (the store keeps one object per content) and a seed gives the
 * same bytes again.
 *
 * The PNG is a 48x48 RGB gradient in the seed's colours, its pixels in
 * stored (uncompressed) deflate blocks: no compressor needed, and a few
 * kilobytes. The voice note is Opus silence (the three-byte 20 ms CELT
 * frame every decoder accepts) in Ogg pages: OpusHead, OpusTags naming the
 * seed, then one page per second of 50 frames, the last page's granule
 * position giving the duration.
 */
#ifndef BZ_SIM_MEDIA_BYTES_H
#define BZ_SIM_MEDIA_BYTES_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* A media file in heap memory, owned by the caller (bz_sim_media_bytes_free). */
typedef struct bz_sim_media_bytes {
    unsigned char *data;
    size_t len;
    const char *mime_type; /* static: "image/png" or "audio/ogg" */
} bz_sim_media_bytes;

bz_status bz_sim_media_png(uint64_t seed, bz_sim_media_bytes *out, bz_error *err);

/* seconds of silence, 1..600. */
bz_status bz_sim_media_voice_note(uint64_t seed, int seconds, bz_sim_media_bytes *out,
                                  bz_error *err);

void bz_sim_media_bytes_free(bz_sim_media_bytes *b);

#endif
