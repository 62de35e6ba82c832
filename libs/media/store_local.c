/*
 * store_local.c - the local store: objects are files media.local_dir/<key>
 * (ws/<workspace>/<sha256>), see store_backend.h and ARCHITECTURE.md §16.1.
 *
 * A commit syncs the spool files, renames each into place (atomic on one
 * filesystem: a reader sees no object or the whole one) and fsyncs the
 * directories, so an object a committed chat_media row names survives a
 * crash. Several objects committed together pay about one flush of the
 * disk (sync_files). An object already there is the same bytes (its name
 * is their SHA-256), so its spool file is simply dropped. Reads open the
 * file: store.c streams it to a sink, ingest's content endpoint hands the
 * descriptor to libmicrohttpd. Everything here is handed media.local_dir,
 * never the store, so store.c's dispatch to it goes one way.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "media/store_backend.h"

#define PATH_CAP 4096

static bz_status object_path(const char *local_dir, const char *key, char out[PATH_CAP],
                             bz_error *err)
{
    if (snprintf(out, PATH_CAP, "%s/%s", local_dir, key) >= PATH_CAP)
        return bz_fail(err, BZ_ERR_CONFIG, "media store: media.local_dir too long");
    return BZ_OK;
}

bz_status bz_media_make_dirs(const char *path, bz_error *err)
{
    char buf[PATH_CAP];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return bz_fail(err, BZ_ERR_CONFIG, "media store: path too long: %.100s", path);
    for (char *p = buf + 1;; p++) {
        int end = *p == '\0';
        if (*p == '/' || end) {
            *p = '\0';
            if (mkdir(buf, 0700) != 0 && errno != EEXIST)
                return bz_fail(err, BZ_ERR_IO, "media store: mkdir %s: %s", buf, strerror(errno));
            if (end)
                return BZ_OK;
            *p = '/';
        }
    }
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

/* The directory part of path into dir (cap PATH_CAP). */
static void parent_of(const char *path, char dir[PATH_CAP])
{
    snprintf(dir, PATH_CAP, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
}

/* Each file's bytes on disk: writeback started for all of them, then each
 * waited for with fdatasync. The first sync commits the filesystem's
 * journal with every file's new blocks in it, so the ones after it find
 * little left to do: a batch costs about one flush, not one per file. */
static bz_status sync_files(const bz_media_put *puts, int n, const int *existed, bz_error *err)
{
    for (int i = 0; i < n; i++)
        if (!existed[i])
            (void)sync_file_range(puts[i].fd, 0, 0, SYNC_FILE_RANGE_WRITE); /* a hint */
    for (int i = 0; i < n; i++)
        if (!existed[i] && fdatasync(puts[i].fd) != 0)
            return bz_fail(err, BZ_ERR_IO, "media store: fsync spool of %s: %s", puts[i].key,
                           strerror(errno));
    return BZ_OK;
}

bz_status bz_media_local_put(const char *local_dir, const bz_media_put *puts, int n,
                             int *existed, bz_error *err)
{
    char path[PATH_CAP], dir[PATH_CAP], synced[PATH_CAP] = "";
    bz_status st = BZ_OK;
    for (int i = 0; i < n && st == BZ_OK; i++) {
        st = object_path(local_dir, puts[i].key, path, err);
        existed[i] = st == BZ_OK && access(path, F_OK) == 0;
        if (st == BZ_OK && !existed[i]) {
            parent_of(path, dir);
            st = bz_media_make_dirs(dir, err);
        }
    }
    if (st == BZ_OK)
        st = sync_files(puts, n, existed, err);
    for (int i = 0; i < n && st == BZ_OK; i++) {
        if (existed[i])
            continue;
        st = object_path(local_dir, puts[i].key, path, err);
        if (st == BZ_OK && rename(puts[i].tmp_path, path) != 0)
            st = bz_fail(err, BZ_ERR_IO, "media store: rename into %s: %s", path,
                         strerror(errno));
    }
    /* each directory that received an object, flushed once (the objects of
     * a batch are in key order, so one workspace's come together) */
    for (int i = 0; i < n && st == BZ_OK; i++) {
        if (existed[i])
            continue;
        st = object_path(local_dir, puts[i].key, path, err);
        parent_of(path, dir);
        if (st == BZ_OK && strcmp(dir, synced) != 0) {
            st = fsync_dir(dir, err);
            snprintf(synced, sizeof synced, "%s", dir);
        }
    }
    return st;
}

bz_status bz_media_local_open(const char *local_dir, const char *key, int *fd, uint64_t *size,
                              bz_error *err)
{
    char path[PATH_CAP];
    bz_status st = object_path(local_dir, key, path, err);
    if (st != BZ_OK)
        return st;
    int opened = open(path, O_RDONLY | O_CLOEXEC);
    if (opened < 0)
        return bz_fail(err, errno == ENOENT ? BZ_ERR_NOT_FOUND : BZ_ERR_IO, "media open %s: %s",
                       key, strerror(errno));
    struct stat sb;
    if (fstat(opened, &sb) != 0) {
        int e = errno;
        close(opened);
        return bz_fail(err, BZ_ERR_IO, "media open %s: %s", key, strerror(e));
    }
    *fd = opened;
    *size = (uint64_t)sb.st_size;
    return BZ_OK;
}

bz_status bz_media_local_remove(const char *local_dir, const char *key, bz_error *err)
{
    char path[PATH_CAP];
    bz_status st = object_path(local_dir, key, path, err);
    if (st != BZ_OK)
        return st;
    if (unlink(path) != 0 && errno != ENOENT)
        return bz_fail(err, BZ_ERR_IO, "media remove %s: %s", key, strerror(errno));
    return BZ_OK;
}
