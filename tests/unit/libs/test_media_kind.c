/*
 * test_media_kind.c - libs/media/kind.h: Meta's families and limits, MIME
 * types with parameters and odd case, the magic numbers sniffed, and the
 * check that refuses a declared type the bytes are not.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "media/kind.h"

#define SNIFF(lit) bz_media_sniff((const unsigned char *)(lit), sizeof(lit) - 1)

static void names_and_limits(void **state)
{
    (void)state;
    bz_media_kind k;
    bz_error err;
    assert_int_equal(bz_media_kind_parse("sticker", &k, &err), BZ_OK);
    assert_int_equal(k, BZ_MEDIA_STICKER);
    assert_string_equal(bz_media_kind_name(BZ_MEDIA_DOCUMENT), "document");
    assert_int_equal(bz_media_kind_parse("gif", &k, &err), BZ_ERR_INVALID);
    assert_string_equal(err.reason, "unknown_media_kind");
    assert_true(bz_media_kind_max_bytes(BZ_MEDIA_IMAGE) == 5000000);
    assert_true(bz_media_kind_max_bytes(BZ_MEDIA_AUDIO) == 16000000);
    assert_true(bz_media_kind_max_bytes(BZ_MEDIA_VIDEO) == 16000000);
    assert_true(bz_media_kind_max_bytes(BZ_MEDIA_DOCUMENT) == 100000000);
    assert_true(bz_media_kind_max_bytes(BZ_MEDIA_STICKER) == 500000);
    assert_true(bz_media_any_kind_max_bytes() == 100000000);
}

static void accepts_and_of_mime(void **state)
{
    (void)state;
    bz_media_kind k;
    bz_error err;
    assert_true(bz_media_kind_accepts(BZ_MEDIA_AUDIO, "Audio/OGG; codecs=opus"));
    assert_true(bz_media_kind_accepts(BZ_MEDIA_IMAGE, " image/png "));
    assert_false(bz_media_kind_accepts(BZ_MEDIA_IMAGE, "image/webp"));
    assert_false(bz_media_kind_accepts(BZ_MEDIA_IMAGE, "image/gif"));
    assert_false(bz_media_kind_accepts(BZ_MEDIA_IMAGE, NULL));
    assert_false(bz_media_kind_accepts(BZ_MEDIA_DOCUMENT, ""));
    assert_int_equal(bz_media_kind_of_mime("image/webp", &k, &err), BZ_OK);
    assert_int_equal(k, BZ_MEDIA_STICKER);
    assert_int_equal(bz_media_kind_of_mime("application/pdf", &k, &err), BZ_OK);
    assert_int_equal(k, BZ_MEDIA_DOCUMENT);
    assert_int_equal(bz_media_kind_of_mime("video/3gpp", &k, &err), BZ_OK);
    assert_int_equal(k, BZ_MEDIA_VIDEO);
    assert_int_equal(bz_media_kind_of_mime("application/x-msdownload", &k, &err), BZ_ERR_INVALID);
    assert_string_equal(err.reason, "unsupported_media_type");
    /* the type that leaves the type to the bytes is no kind's own */
    assert_true(bz_media_type_is_from_bytes("Application/Octet-Stream; q=1"));
    assert_false(bz_media_type_is_from_bytes("application/octet"));
    assert_false(bz_media_type_is_from_bytes(NULL));
    assert_int_equal(bz_media_kind_of_mime(BZ_MEDIA_TYPE_FROM_BYTES, &k, &err), BZ_ERR_INVALID);
}

static void sniffs_magic_numbers(void **state)
{
    (void)state;
    assert_string_equal(SNIFF("\xFF\xD8\xFF\xE0\0\x10JFIF"), "image/jpeg");
    assert_string_equal(SNIFF("\x89PNG\r\n\x1A\n\0\0\0\rIHDR"), "image/png");
    assert_string_equal(SNIFF("GIF89a\x01\0"), "image/gif");
    assert_string_equal(SNIFF("RIFF\x24\0\0\0WEBPVP8 "), "image/webp");
    assert_string_equal(SNIFF("%PDF-1.7\n"), "application/pdf");
    assert_string_equal(SNIFF("OggS\0\x02"), "audio/ogg");
    assert_string_equal(SNIFF("ID3\x04\0\0"), "audio/mpeg");
    assert_string_equal(SNIFF("\xFF\xFB\x90\x64"), "audio/mpeg"); /* MPEG-1 layer III */
    assert_string_equal(SNIFF("\xFF\xF1\x50\x80"), "audio/aac");  /* ADTS */
    assert_string_equal(SNIFF("#!AMR\n\x3c"), "audio/amr");
    assert_string_equal(SNIFF("\0\0\0\x20" "ftypisom\0\0\x02\0"), "video/mp4");
    assert_string_equal(SNIFF("\0\0\0\x20" "ftypM4A \0\0\0\0"), "audio/mp4");
    assert_string_equal(SNIFF("\0\0\0\x14" "ftyp3gp4\0\0\0\0"), "video/3gpp");
    assert_string_equal(SNIFF("PK\x03\x04\x14\0\x06\0"), "application/zip");
    assert_null(SNIFF("hello, plain text"));
    assert_null(SNIFF("\xFF"));
    assert_null(SNIFF("\0\0\0\x20" "ftyp")); /* too short for a brand */
    assert_null(bz_media_sniff(NULL, 0));
}

static void checks_declared_against_sniffed(void **state)
{
    (void)state;
    bz_error err;
    assert_int_equal(bz_media_check_type(BZ_MEDIA_IMAGE, "image/png", "image/png", &err), BZ_OK);
    assert_int_equal(bz_media_check_type(BZ_MEDIA_IMAGE, "image/png", "application/pdf", &err),
                     BZ_ERR_INVALID);
    assert_string_equal(err.reason, "media_type_mismatch");
    assert_non_null(strstr(err.msg, "image/png"));
    assert_non_null(strstr(err.msg, "application/pdf"));
    /* unknown bytes: a document (text) may be them, an image may not */
    assert_int_equal(bz_media_check_type(BZ_MEDIA_DOCUMENT, "text/plain", NULL, &err), BZ_OK);
    assert_int_equal(bz_media_check_type(BZ_MEDIA_IMAGE, "image/jpeg", NULL, &err),
                     BZ_ERR_INVALID);
    /* an mp4 container is audio or video; a zip an office document */
    assert_int_equal(bz_media_check_type(BZ_MEDIA_AUDIO, "audio/mp4", "video/mp4", &err), BZ_OK);
    assert_int_equal(bz_media_check_type(BZ_MEDIA_VIDEO, "video/mp4", "audio/mp4", &err), BZ_OK);
    assert_int_equal(
        bz_media_check_type(BZ_MEDIA_DOCUMENT,
                            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                            "application/zip", &err),
        BZ_OK);
    assert_int_equal(bz_media_check_type(BZ_MEDIA_DOCUMENT, "application/pdf", "application/zip",
                                         &err),
                     BZ_ERR_INVALID);
    /* a declared type the kind does not take */
    assert_int_equal(bz_media_check_type(BZ_MEDIA_STICKER, "image/png", "image/png", &err),
                     BZ_ERR_INVALID);
    assert_string_equal(err.reason, "media_type_mismatch");
    /* a GIF is no image WhatsApp takes, whatever it is declared as */
    assert_int_equal(bz_media_check_type(BZ_MEDIA_IMAGE, "image/jpeg", "image/gif", &err),
                     BZ_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names_and_limits),
        cmocka_unit_test(accepts_and_of_mime),
        cmocka_unit_test(sniffs_magic_numbers),
        cmocka_unit_test(checks_declared_against_sniffed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
