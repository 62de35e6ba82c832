/*
 * store_local.c - the local store: objects are files media.local_dir/<key>
 * (ws/<workspace>/<sha256>), see store_backend.h and ARCHITECTURE.md §16.1.
 *
 * A commit fsyncs the spool file, renames it into place (atomic on one
 * filesystem: a reader sees no object or the whole one) and fsyncs the
 * directory, so an object a committed chat_media row names survives a
 * crash. An object already there is the same bytes (its name is their
 * SHA-256), so the spool file is simply dropped.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "media/store_backend.h"

#define READ_CHUNK 65536
#define PATH_CAP 4096

static bz_status object_path(const bz_media_store *s, const char *key, char out[PATH_CAP],
                             bz_error *err)
{
    if (snprintf(out, PATH_CAP, "%s/%s", s->local_dir, key) >= PATH_CAP)
        return bz_fail(err, BZ_ERR_CONFIG, "media store: media.local_dir too long");
    return BZ_OK;
}

static bz_status fsync_dir(const char *dir, bz_error *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        bz_status st = bz_fail(err, BZ_ERR_IO, "media store: fsync %s: %s", dir, strerror(errno));
        if (fd >= 0)
            close(fd);
        return st;
    }
    close(fd);
    return BZ_OK;
}

bz_status bz_media_local_put(const bz_media_store *store, const char *key, int fd,
                             const char *tmp_path, int *existed, bz_error *err)
{
    char path[PATH_CAP];
    bz_status st = object_path(store, key, path, err);
    if (st != BZ_OK)
        return st;
    *existed = 0;
    if (access(path, F_OK) == 0) {
        *existed = 1;
        return BZ_OK;
    }
    char *slash = strrchr(path, '/');
    *slash = '\0';
    st = bz_media_make_dirs(path, err);
    *slash = '/';
    if (st != BZ_OK)
        return st;
    if (fsync(fd) != 0)
        return bz_fail(err, BZ_ERR_IO, "media store: fsync spool: %s", strerror(errno));
    if (rename(tmp_path, path) != 0)
        return bz_fail(err, BZ_ERR_IO, "media store: rename into %s: %s", path, strerror(errno));
    *slash = '\0';
    st = fsync_dir(path, err);
    *slash = '/';
    return st;
}

bz_status bz_media_local_read(const bz_media_store *store, const char *key, bz_media_sink sink,
                              void *ctx, bz_error *err)
{
    char path[PATH_CAP];
    bz_status st = object_path(store, key, path, err);
    if (st != BZ_OK)
        return st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return bz_fail(err, errno == ENOENT ? BZ_ERR_NOT_FOUND : BZ_ERR_IO,
                       "media read %s: %s", key, strerror(errno));
    unsigned char *buf = malloc(READ_CHUNK);
    if (!buf) {
        close(fd);
        return bz_fail(err, BZ_ERR_NOMEM, "media read %s: out of memory", key);
    }
    for (;;) {
        ssize_t n = read(fd, buf, READ_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            st = bz_fail(err, BZ_ERR_IO, "media read %s: %s", key, strerror(errno));
        else if (n > 0 && sink(ctx, buf, (size_t)n) != 0)
            st = bz_fail(err, BZ_ERR_IO, "media read %s: the reader stopped", key);
        if (n <= 0 || st != BZ_OK)
            break;
    }
    free(buf);
    close(fd);
    return st;
}

bz_status bz_media_local_remove(const bz_media_store *store, const char *key, bz_error *err)
{
    char path[PATH_CAP];
    bz_status st = object_path(store, key, path, err);
    if (st != BZ_OK)
        return st;
    if (unlink(path) != 0 && errno != ENOENT)
        return bz_fail(err, BZ_ERR_IO, "media remove %s: %s", key, strerror(errno));
    return BZ_OK;
}
