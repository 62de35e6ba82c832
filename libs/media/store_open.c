/*
 * store_open.c - the local store's object opened for reading, for a
 * caller that sends it itself (ingest's content endpoint hands the
 * descriptor to libmicrohttpd, which sends it as the client reads, so a
 * download is neither whole in memory nor a thread held by a slow
 * client). The sink of bz_media_store_read pushes bytes as fast as they
 * are read, which an event loop cannot take; S3 objects are read through
 * presigned links instead and are not opened here.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "media/store_backend.h"

#define PATH_CAP 4096

bz_status bz_media_store_open_local(const bz_media_store *store, const char *key, int *fd,
                                    uint64_t *size, bz_error *err)
{
    if (store->is_s3)
        return bz_fail(err, BZ_ERR_INVALID, "media open %s: an s3 store's objects are read "
                                            "through presigned links", key);
    if (!bz_media_key_valid(key))
        return bz_fail(err, BZ_ERR_INVALID, "media open: not a media key");
    char path[PATH_CAP];
    if (snprintf(path, sizeof path, "%s/%s", store->local_dir, key) >= (int)sizeof path)
        return bz_fail(err, BZ_ERR_CONFIG, "media store: media.local_dir too long");
    int opened = open(path, O_RDONLY | O_CLOEXEC);
    if (opened < 0)
        return bz_fail(err, errno == ENOENT ? BZ_ERR_NOT_FOUND : BZ_ERR_IO, "media open %s: %s",
                       key, strerror(errno));
    struct stat st;
    if (fstat(opened, &st) != 0) {
        int e = errno;
        close(opened);
        return bz_fail(err, BZ_ERR_IO, "media open %s: %s", key, strerror(e));
    }
    *fd = opened;
    *size = (uint64_t)st.st_size;
    return BZ_OK;
}
