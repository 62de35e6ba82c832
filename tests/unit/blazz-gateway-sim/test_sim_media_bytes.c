/*
 * test_sim_media_bytes.c - the simulator's media files are real files:
 *
 *  - png_is_a_valid_png: the signature, then IHDR (48x48, 8-bit RGB),
 *    IDAT and IEND, each chunk's CRC-32 right; the IDAT zlib stream's
 *    stored blocks hold exactly the 48 filtered rows and its Adler-32
 *    matches; the media store sniffs it as image/png;
 *  - voice_note_is_a_valid_ogg_opus: Ogg pages with their CRC right, one
 *    serial, contiguous sequence numbers, BOS on the OpusHead page and EOS
 *    on the last, whose granule position is the duration at 48 kHz; the
 *    second page is OpusTags; the store sniffs it as audio/ogg;
 *  - bytes_follow_the_seed: the same seed gives the same bytes, another
 *    seed other bytes (the store keeps one object per content);
 *  - refuses_a_voice_note_of_no_length.
 *
 * The checksums are computed here by table (media_bytes.c computes them
 * bit by bit), each table checked first against its algorithm's published
 * check value over "123456789".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "media/kind.h"
#include "media_bytes.h"

static uint32_t rd_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t rd_le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* CRC-32 (ISO 3309, PNG) by table. */
static uint32_t crc_png(const unsigned char *p, size_t n)
{
    static uint32_t table[256];
    if (!table[1])
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++)
        c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

/* Ogg's CRC (0x04C11DB7, unreflected, no initial or final xor) by table. */
static uint32_t crc_ogg(const unsigned char *p, size_t n)
{
    static uint32_t table[256];
    if (!table[1])
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i << 24;
            for (int k = 0; k < 8; k++)
                c = c & 0x80000000u ? (c << 1) ^ 0x04c11db7u : c << 1;
            table[i] = c;
        }
    uint32_t c = 0;
    for (size_t i = 0; i < n; i++)
        c = (c << 8) ^ table[((c >> 24) ^ p[i]) & 0xff];
    return c;
}

static void png_is_a_valid_png(void **state)
{
    (void)state;
    assert_int_equal(crc_png((const unsigned char *)"123456789", 9), 0xcbf43926u);
    bz_sim_media_bytes f;
    assert_int_equal(bz_sim_media_png(42, &f, NULL), BZ_OK);
    assert_string_equal(f.mime_type, "image/png");
    assert_string_equal(bz_media_sniff(f.data, f.len), "image/png");
    assert_memory_equal(f.data, "\x89PNG\r\n\x1a\n", 8);
    const char *order[] = {"IHDR", "IDAT", "IEND"};
    size_t at = 8;
    for (int c = 0; c < 3; c++) {
        assert_true(at + 12 <= f.len);
        uint32_t len = rd_be32(f.data + at);
        const unsigned char *type = f.data + at + 4, *data = type + 4;
        assert_memory_equal(type, order[c], 4);
        assert_true(at + 12 + len <= f.len);
        assert_int_equal(rd_be32(data + len), crc_png(type, 4 + len));
        if (c == 0) {
            assert_int_equal(len, 13);
            assert_int_equal(rd_be32(data), 48);
            assert_int_equal(rd_be32(data + 4), 48);
            assert_int_equal(data[8], 8); /* bit depth */
            assert_int_equal(data[9], 2); /* truecolour */
        } else if (c == 1) {
            /* zlib header, one final stored block of every row, Adler-32 */
            assert_int_equal((data[0] * 256 + data[1]) % 31, 0);
            assert_int_equal(data[2], 0x01);
            uint32_t stored = (uint32_t)rd_le(data + 3, 2);
            assert_int_equal(stored ^ 0xffffu, rd_le(data + 5, 2));
            assert_int_equal(stored, 48 * (1 + 3 * 48));
            assert_int_equal(len, 2 + 5 + stored + 4);
            const unsigned char *rows = data + 7;
            uint32_t a = 1, b = 0;
            for (uint32_t i = 0; i < stored; i++) {
                a = (a + rows[i]) % 65521u;
                b = (b + a) % 65521u;
            }
            assert_int_equal(rd_be32(rows + stored), b << 16 | a);
            for (int y = 0; y < 48; y++)
                assert_int_equal(rows[y * (1 + 3 * 48)], 0); /* filter: none */
        }
        at += 12 + len;
    }
    assert_int_equal(at, f.len);
    bz_sim_media_bytes_free(&f);
}

static void voice_note_is_a_valid_ogg_opus(void **state)
{
    (void)state;
    assert_int_equal(crc_ogg((const unsigned char *)"123456789", 9), 0x89a1897fu);
    bz_sim_media_bytes f;
    assert_int_equal(bz_sim_media_voice_note(7, 3, &f, NULL), BZ_OK);
    assert_string_equal(f.mime_type, "audio/ogg");
    assert_string_equal(bz_media_sniff(f.data, f.len), "audio/ogg");
    size_t at = 0;
    uint32_t pages = 0, serial = 0;
    uint64_t granule = 0;
    unsigned flags = 0;
    while (at < f.len) {
        unsigned char *p = f.data + at;
        assert_true(at + 27 <= f.len);
        assert_memory_equal(p, "OggS", 4);
        assert_int_equal(p[4], 0);
        flags = p[5];
        granule = rd_le(p + 6, 8);
        if (pages == 0)
            serial = (uint32_t)rd_le(p + 14, 4);
        assert_int_equal(rd_le(p + 14, 4), serial);
        assert_int_equal(rd_le(p + 18, 4), pages);
        size_t segments = p[26], body = 0;
        for (size_t s = 0; s < segments; s++)
            body += p[27 + s];
        size_t page_len = 27 + segments + body;
        assert_true(at + page_len <= f.len);
        uint32_t crc = (uint32_t)rd_le(p + 22, 4);
        memset(p + 22, 0, 4);
        assert_int_equal(crc_ogg(p, page_len), crc);
        const unsigned char *packet = p + 27 + segments;
        if (pages == 0) {
            assert_int_equal(flags, 0x02);
            assert_memory_equal(packet, "OpusHead", 8);
            assert_int_equal(packet[9], 1); /* channels */
        } else if (pages == 1) {
            assert_memory_equal(packet, "OpusTags", 8);
        } else {
            assert_int_equal(segments, 50);
            assert_int_equal(packet[0], 0xf8); /* CELT fullband 20 ms, mono, one frame */
        }
        pages++;
        at += page_len;
    }
    assert_int_equal(pages, 2 + 3);
    assert_int_equal(flags, 0x04); /* the last page ends the stream */
    assert_int_equal(granule, 3 * 48000);
    bz_sim_media_bytes_free(&f);
}

static void bytes_follow_the_seed(void **state)
{
    (void)state;
    bz_sim_media_bytes a, b, c;
    assert_int_equal(bz_sim_media_png(1, &a, NULL), BZ_OK);
    assert_int_equal(bz_sim_media_png(1, &b, NULL), BZ_OK);
    assert_int_equal(bz_sim_media_png(2, &c, NULL), BZ_OK);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    assert_true(a.len != c.len || memcmp(a.data, c.data, a.len) != 0);
    bz_sim_media_bytes_free(&a);
    bz_sim_media_bytes_free(&b);
    bz_sim_media_bytes_free(&c);
    assert_int_equal(bz_sim_media_voice_note(1, 2, &a, NULL), BZ_OK);
    assert_int_equal(bz_sim_media_voice_note(2, 2, &c, NULL), BZ_OK);
    assert_true(a.len != c.len || memcmp(a.data, c.data, a.len) != 0);
    bz_sim_media_bytes_free(&a);
    bz_sim_media_bytes_free(&c);
}

static void refuses_a_voice_note_of_no_length(void **state)
{
    (void)state;
    bz_sim_media_bytes f = {0};
    bz_error err;
    assert_int_equal(bz_sim_media_voice_note(1, 0, &f, &err), BZ_ERR_INVALID);
    assert_null(f.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(png_is_a_valid_png),
        cmocka_unit_test(voice_note_is_a_valid_ogg_opus),
        cmocka_unit_test(bytes_follow_the_seed),
        cmocka_unit_test(refuses_a_voice_note_of_no_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
