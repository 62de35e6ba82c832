/*
 * store.c - the media store's configuration, its spools and the dispatch to
 * the local or S3 backend (see store.h, ARCHITECTURE.md §16.1).
 *
 * A spool is a temporary file made with mkstemp in media.spool_dir (by
 * default <media.local_dir>/.spool, on the local store's filesystem, so a
 * commit is a rename). Every write goes to the file, into the running
 * SHA-256 and into the count checked against the kind's limit; the first
 * BZ_MEDIA_SNIFF_BYTES are also kept for finish's sniffing. A spool that
 * failed (too large, a write error) refuses everything but free, so a
 * caller cannot commit half an object.
 */
#include "media/store.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/hex.h"
#include "core/weak_secret.h"
#include "media/link.h"
#include "media/store_backend.h"

#define SHA256_LEN 32
#define READ_CHUNK 65536

struct bz_media_spool {
    bz_media_store *store;
    bz_media_kind kind;
    int fd;
    char *tmp_path;
    EVP_MD_CTX *sha;
    unsigned char head[BZ_MEDIA_SNIFF_BYTES];
    size_t head_len;
    uint64_t size;
    int kind_from_bytes; /* begun untyped: kind is decided at finish */
    int failed;
    int finished;
    int committed;
};

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

static bz_status open_dirs(bz_media_store *s, const bz_config *cfg, bz_error *err)
{
    const char *local = bz_config_string(cfg, "media.local_dir");
    const char *spool = bz_config_string(cfg, "media.spool_dir");
    if (!s->is_s3 && (!local || !*local))
        return bz_fail(err, BZ_ERR_CONFIG, "media store: media.local_dir is not set");
    s->local_dir = dup_or_null(local);
    if (spool && *spool)
        s->spool_dir = strdup(spool);
    else if (local && *local && asprintf(&s->spool_dir, "%s/.spool", local) < 0)
        s->spool_dir = NULL;
    if (!s->spool_dir)
        return bz_fail(err, BZ_ERR_CONFIG, "media store: media.spool_dir is not set");
    bz_status st = s->is_s3 ? BZ_OK : bz_media_make_dirs(s->local_dir, err);
    return st == BZ_OK ? bz_media_make_dirs(s->spool_dir, err) : st;
}

bz_status bz_media_store_open(const bz_config *cfg, bz_media_store **out, bz_error *err)
{
    *out = NULL;
    const char *location = bz_config_string(cfg, "media.location");
    int is_s3 = location && strcmp(location, "s3") == 0;
    if (!is_s3 && !(location && strcmp(location, "local") == 0))
        return bz_fail(err, BZ_ERR_CONFIG, "media store: media.location \"%.32s\" is neither "
                       "local nor s3", location ? location : "");
    bz_media_store *s = calloc(1, sizeof *s);
    if (!s)
        return bz_fail(err, BZ_ERR_NOMEM, "media store: out of memory");
    s->is_s3 = is_s3;
    s->link_secret = dup_or_null(bz_config_string(cfg, "media.link_secret"));
    s->link_base_url = dup_or_null(bz_config_string(cfg, "media.link_base_url"));
    s->link_ttl_s = bz_config_int(cfg, "media.link_ttl_s");
    /* a guessable key would let anyone make links to every object */
    bz_status st = s->link_secret ? bz_secret_refuse_short("media.link_secret", s->link_secret,
                                                           BZ_SIGNING_KEY_LEN_MIN, err)
                                  : BZ_OK;
    if (st == BZ_OK)
        st = open_dirs(s, cfg, err);
    if (st == BZ_OK && is_s3)
        st = bz_media_s3_open(cfg, &s->s3, err);
    if (st != BZ_OK) {
        bz_media_store_close(s);
        return st;
    }
    *out = s;
    return BZ_OK;
}

void bz_media_store_close(bz_media_store *store)
{
    if (!store)
        return;
    bz_media_s3_close(store->s3);
    free(store->local_dir);
    free(store->spool_dir);
    if (store->link_secret) {
        OPENSSL_cleanse(store->link_secret, strlen(store->link_secret));
        free(store->link_secret);
    }
    free(store->link_base_url);
    free(store);
}

const char *bz_media_store_location(const bz_media_store *store)
{
    return store->is_s3 ? "s3" : "local";
}

const char *bz_media_store_link_secret(const bz_media_store *store)
{
    return store->is_s3 ? NULL : store->link_secret;
}

/* Whether key is "ws/<workspace digits>/<64 lower-case hex>": no key
 * handed to a backend names a path outside the store. */
static int key_valid(const char *key)
{
    if (!key || strncmp(key, "ws/", 3) != 0)
        return 0;
    const char *p = key + 3;
    size_t digits = strspn(p, "0123456789");
    if (digits == 0 || digits > 19 || p[digits] != '/')
        return 0;
    p += digits + 1;
    return strlen(p) == 64 && strspn(p, "0123456789abcdef") == 64;
}

/* ---- spools --------------------------------------------------------------- */

bz_status bz_media_spool_begin(bz_media_store *store, bz_media_kind kind, bz_media_spool **out,
                               bz_error *err)
{
    *out = NULL;
    if ((unsigned)kind >= BZ_MEDIA_KINDS)
        return bz_fail(err, BZ_ERR_INTERNAL, "media spool: kind %d out of range", (int)kind);
    bz_media_spool *sp = calloc(1, sizeof *sp);
    if (!sp)
        return bz_fail(err, BZ_ERR_NOMEM, "media spool: out of memory");
    sp->store = store;
    sp->kind = kind;
    sp->fd = -1;
    *out = sp;
    if (asprintf(&sp->tmp_path, "%s/spool-XXXXXX", store->spool_dir) < 0) {
        sp->tmp_path = NULL;
        return bz_fail(err, BZ_ERR_NOMEM, "media spool: out of memory");
    }
    sp->fd = mkstemp(sp->tmp_path);
    if (sp->fd < 0) {
        bz_status st = bz_fail(err, BZ_ERR_IO, "media spool: create a file in %s: %s",
                               store->spool_dir, strerror(errno));
        free(sp->tmp_path);
        sp->tmp_path = NULL;
        return st;
    }
    sp->sha = EVP_MD_CTX_new();
    if (!sp->sha || !EVP_DigestInit_ex(sp->sha, EVP_sha256(), NULL))
        return bz_fail(err, BZ_ERR_INTERNAL, "media spool: SHA-256 init failed");
    return BZ_OK;
}

bz_status bz_media_spool_begin_untyped(bz_media_store *store, bz_media_spool **out,
                                       bz_error *err)
{
    bz_status st = bz_media_spool_begin(store, BZ_MEDIA_DOCUMENT, out, err);
    if (*out)
        (*out)->kind_from_bytes = 1;
    return st;
}

static uint64_t spool_limit(const bz_media_spool *spool)
{
    return spool->kind_from_bytes ? bz_media_any_kind_max_bytes()
                                  : bz_media_kind_max_bytes(spool->kind);
}

/* What a refusal calls the object: its kind, once known. */
static const char *spool_kind_name(const bz_media_spool *spool)
{
    return spool->kind_from_bytes ? "media" : bz_media_kind_name(spool->kind);
}

static bz_status write_all(int fd, const unsigned char *p, size_t len, bz_error *err)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return bz_fail(err, BZ_ERR_IO, "media spool: write: %s", strerror(errno));
        p += n;
        len -= (size_t)n;
    }
    return BZ_OK;
}

bz_status bz_media_spool_write(bz_media_spool *spool, const void *data, size_t len,
                               bz_error *err)
{
    if (spool->failed || spool->finished || spool->fd < 0)
        return bz_fail(err, BZ_ERR_INTERNAL, "media spool: write after failure or finish");
    uint64_t limit = spool_limit(spool);
    if (len > limit - spool->size) {
        spool->failed = 1;
        return bz_reject(err, "media_too_large", "%s larger than its limit of %" PRIu64 " bytes",
                         spool_kind_name(spool), limit);
    }
    const unsigned char *p = data;
    size_t keep = BZ_MEDIA_SNIFF_BYTES - spool->head_len;
    if (keep > len)
        keep = len;
    memcpy(spool->head + spool->head_len, p, keep);
    spool->head_len += keep;
    bz_status st = write_all(spool->fd, p, len, err);
    if (st == BZ_OK && !EVP_DigestUpdate(spool->sha, p, len))
        st = bz_fail(err, BZ_ERR_INTERNAL, "media spool: SHA-256 update failed");
    if (st != BZ_OK)
        spool->failed = 1;
    spool->size += len;
    return st;
}

static bz_status finish_digest(bz_media_spool *spool, char hex[65], bz_error *err)
{
    unsigned char md[SHA256_LEN];
    unsigned int mdlen = 0;
    if (!EVP_DigestFinal_ex(spool->sha, md, &mdlen) || mdlen != SHA256_LEN)
        return bz_fail(err, BZ_ERR_INTERNAL, "media spool: SHA-256 final failed");
    return bz_hex_encode(md, sizeof md, hex, 65, err);
}

/* An object declared BZ_MEDIA_TYPE_FROM_BYTES: *declared_mime becomes the
 * type sniffed, and an untyped spool's kind that type's. */
static bz_status take_type_from_bytes(bz_media_spool *spool, const char **declared_mime,
                                      bz_error *err)
{
    const char *sniffed = bz_media_sniff(spool->head, spool->head_len);
    bz_media_kind kind;
    if (!sniffed || bz_media_kind_of_mime(sniffed, &kind, err) != BZ_OK)
        return bz_reject(err, "unsupported_media_type",
                         "declared %s, the bytes are %s; declare the media's type",
                         BZ_MEDIA_TYPE_FROM_BYTES, sniffed ? sniffed : "of no type known here");
    *declared_mime = sniffed;
    if (!spool->kind_from_bytes)
        return BZ_OK;
    spool->kind = kind;
    spool->kind_from_bytes = 0;
    if (spool->size > bz_media_kind_max_bytes(kind))
        return bz_reject(err, "media_too_large", "%s larger than its limit of %" PRIu64 " bytes",
                         bz_media_kind_name(kind), bz_media_kind_max_bytes(kind));
    return BZ_OK;
}

bz_status bz_media_spool_finish(bz_media_spool *spool, int64_t workspace_id,
                                const char *declared_mime, bz_media_object *out, bz_error *err)
{
    memset(out, 0, sizeof *out);
    if (spool->failed || spool->finished || spool->fd < 0)
        return bz_fail(err, BZ_ERR_INTERNAL, "media spool: finish after failure or finish");
    spool->finished = 1;
    if (spool->size == 0)
        return bz_reject(err, "media_empty", "%s of no bytes", spool_kind_name(spool));
    if (bz_media_type_is_from_bytes(declared_mime)) {
        bz_status st = take_type_from_bytes(spool, &declared_mime, err);
        if (st != BZ_OK)
            return st;
    }
    if (!bz_media_kind_accepts(spool->kind, declared_mime))
        return bz_reject(err, "unsupported_media_type", "%s of type \"%.100s\" is not one "
                         "WhatsApp takes", bz_media_kind_name(spool->kind),
                         declared_mime ? declared_mime : "(null)");
    const char *sniffed = bz_media_sniff(spool->head, spool->head_len);
    bz_status st = bz_media_check_type(spool->kind, declared_mime, sniffed, err);
    if (st != BZ_OK)
        return st;
    if ((st = finish_digest(spool, out->sha256, err)) != BZ_OK)
        return st;
    size_t n = strcspn(declared_mime, ";");
    while (n > 0 && declared_mime[n - 1] == ' ')
        n--;
    for (size_t i = 0; i < n && i < sizeof out->mime_type - 1; i++)
        out->mime_type[i] = (char)(declared_mime[i] >= 'A' && declared_mime[i] <= 'Z'
                                       ? declared_mime[i] + 32
                                       : declared_mime[i]);
    snprintf(out->key, sizeof out->key, "ws/%" PRId64 "/%s", workspace_id, out->sha256);
    out->kind = spool->kind;
    out->size = spool->size;
    return BZ_OK;
}

static bz_status check_committable(const bz_media_spool *spool, const bz_media_object *obj,
                                   bz_error *err)
{
    if (!spool->finished || spool->failed || spool->committed || spool->fd < 0)
        return bz_fail(err, BZ_ERR_INTERNAL, "media spool: commit before finish or twice");
    if (!key_valid(obj->key))
        return bz_fail(err, BZ_ERR_INTERNAL, "media spool: malformed key %.96s", obj->key);
    return BZ_OK;
}

static void mark_committed(bz_media_spool *spool, bz_media_object *obj, int existed)
{
    if (!spool->store->is_s3 && !existed) { /* renamed into place: nothing left to unlink */
        free(spool->tmp_path);
        spool->tmp_path = NULL;
    }
    spool->committed = 1;
    obj->existed = existed;
}

/* S3: one PUT after the other (each is durable at the server when it
 * answers). */
static bz_status commit_s3(bz_media_spool *const *spools, bz_media_object *objs, int n,
                           bz_error *err)
{
    for (int i = 0; i < n; i++) {
        int existed = 0;
        bz_media_store *s = spools[i]->store;
        if (bz_media_s3_put(s->s3, objs[i].key, spools[i]->tmp_path, objs[i].size,
                            objs[i].sha256, &existed, err) != BZ_OK)
            return bz_wrap(err, "store %s", objs[i].key);
        mark_committed(spools[i], &objs[i], existed);
    }
    return BZ_OK;
}

static bz_status commit_local(bz_media_spool *const *spools, bz_media_object *objs, int n,
                              bz_error *err)
{
    bz_media_put puts[BZ_MEDIA_COMMIT_MAX] = {{0}};
    int existed[BZ_MEDIA_COMMIT_MAX] = {0};
    for (int i = 0; i < n; i++)
        puts[i] = (bz_media_put){.key = objs[i].key, .fd = spools[i]->fd,
                                 .tmp_path = spools[i]->tmp_path};
    bz_status st = bz_media_local_put(spools[0]->store->local_dir, puts, n, existed, err);
    if (st != BZ_OK)
        return n == 1 ? bz_wrap(err, "store %s", objs[0].key)
                      : bz_wrap(err, "store %d objects", n);
    for (int i = 0; i < n; i++)
        mark_committed(spools[i], &objs[i], existed[i]);
    return BZ_OK;
}

bz_status bz_media_spools_commit(bz_media_spool *const *spools, bz_media_object *objs, int n,
                                 bz_error *err)
{
    if (n < 1 || n > BZ_MEDIA_COMMIT_MAX)
        return bz_fail(err, BZ_ERR_INTERNAL, "media spool: commit of %d objects (1..%d)", n,
                       BZ_MEDIA_COMMIT_MAX);
    for (int i = 0; i < n; i++) {
        bz_status st = check_committable(spools[i], &objs[i], err);
        if (st == BZ_OK && spools[i]->store != spools[0]->store)
            st = bz_fail(err, BZ_ERR_INTERNAL, "media spool: one commit, two stores");
        if (st != BZ_OK)
            return st;
    }
    return spools[0]->store->is_s3 ? commit_s3(spools, objs, n, err)
                                   : commit_local(spools, objs, n, err);
}

bz_status bz_media_spool_commit(bz_media_spool *spool, bz_media_object *obj, bz_error *err)
{
    return bz_media_spools_commit(&spool, obj, 1, err);
}

void bz_media_spool_free(bz_media_spool *spool)
{
    if (!spool)
        return;
    if (spool->fd >= 0)
        close(spool->fd);
    if (spool->tmp_path) {
        unlink(spool->tmp_path);
        free(spool->tmp_path);
    }
    EVP_MD_CTX_free(spool->sha);
    free(spool);
}

/* ---- objects -------------------------------------------------------------- */

/* The local object at key, chunk by chunk to sink. */
static bz_status read_local(const char *local_dir, const char *key, bz_media_sink sink, void *ctx,
                            bz_error *err)
{
    int fd = -1;
    uint64_t size = 0;
    bz_status st = bz_media_local_open(local_dir, key, &fd, &size, err);
    if (st != BZ_OK)
        return st;
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

bz_status bz_media_store_read(bz_media_store *store, const char *key, bz_media_sink sink,
                              void *ctx, bz_error *err)
{
    if (!key_valid(key))
        return bz_fail(err, BZ_ERR_NOT_FOUND, "media read: no object has key %.96s", key);
    return store->is_s3 ? bz_media_s3_read(store->s3, key, sink, ctx, err)
                        : read_local(store->local_dir, key, sink, ctx, err);
}

/* ingest's content endpoint hands the descriptor to libmicrohttpd, which
 * sends it as the client reads, so a download is neither whole in memory
 * nor a thread held by a slow client; a sink, which takes bytes as fast as
 * they are read, would not do there. */
bz_status bz_media_store_open_local(const bz_media_store *store, const char *key, int *fd,
                                    uint64_t *size, bz_error *err)
{
    if (store->is_s3)
        return bz_fail(err, BZ_ERR_INVALID, "media open %s: an s3 store's objects are read "
                                            "through presigned links", key);
    if (!key_valid(key))
        return bz_fail(err, BZ_ERR_INVALID, "media open: not a media key");
    return bz_media_local_open(store->local_dir, key, fd, size, err);
}

bz_status bz_media_store_remove(bz_media_store *store, const char *key, bz_error *err)
{
    if (!key_valid(key))
        return bz_fail(err, BZ_ERR_INTERNAL, "media remove: malformed key %.96s", key);
    return store->is_s3 ? bz_media_s3_remove(store->s3, key, err)
                        : bz_media_local_remove(store->local_dir, key, err);
}

bz_status bz_media_store_link(const bz_media_store *store, int64_t workspace_id,
                              const char *media_uuid, const char *key, int64_t now_s, char **out,
                              bz_error *err)
{
    *out = NULL;
    if (!key_valid(key))
        return bz_fail(err, BZ_ERR_INTERNAL, "media link: malformed key %.96s", key);
    if (store->is_s3)
        return bz_media_s3_link(store->s3, key, now_s, store->link_ttl_s, out, err);
    return bz_media_link_make(store->link_secret, store->link_base_url, media_uuid, workspace_id,
                              now_s, store->link_ttl_s, out, err);
}
