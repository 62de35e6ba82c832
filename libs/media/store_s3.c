/*
 * store_s3.c - the S3 backend (store_backend.h): not written yet.
 */
#include "media/store_backend.h"

bz_status bz_media_s3_open(const bz_config *cfg, bz_media_s3 **out, bz_error *err)
{
    (void)cfg;
    *out = NULL;
    return bz_fail(err, BZ_ERR_CONFIG, "media store: media.location s3 is not available yet");
}

void bz_media_s3_close(bz_media_s3 *s3)
{
    (void)s3;
}

bz_status bz_media_s3_put(bz_media_s3 *s3, const char *key, const char *tmp_path, uint64_t size,
                          const char *sha256_hex, int *existed, bz_error *err)
{
    (void)s3, (void)key, (void)tmp_path, (void)size, (void)sha256_hex, (void)existed;
    return bz_fail(err, BZ_ERR_INTERNAL, "media store: s3 not available");
}

bz_status bz_media_s3_read(bz_media_s3 *s3, const char *key, bz_media_sink sink, void *ctx,
                           bz_error *err)
{
    (void)s3, (void)key, (void)sink, (void)ctx;
    return bz_fail(err, BZ_ERR_INTERNAL, "media store: s3 not available");
}

bz_status bz_media_s3_remove(bz_media_s3 *s3, const char *key, bz_error *err)
{
    (void)s3, (void)key;
    return bz_fail(err, BZ_ERR_INTERNAL, "media store: s3 not available");
}

bz_status bz_media_s3_link(const bz_media_s3 *s3, const char *key, int64_t now_s, int64_t ttl_s,
                           char **out, bz_error *err)
{
    (void)s3, (void)key, (void)now_s, (void)ttl_s;
    *out = NULL;
    return bz_fail(err, BZ_ERR_INTERNAL, "media store: s3 not available");
}
