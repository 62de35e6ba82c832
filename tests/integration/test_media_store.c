/*
 * test_media_store.c - libs/media's store against the real things: a local
 * directory and PostgreSQL's chat_media (ARCHITECTURE.md §16.1).
 *
 * The same checks run on every store: the same bytes stored twice are one
 * object (the second commit finds it, existed = 1) and one chat_media row;
 * bytes over the kind's limit are refused while they arrive
 * (media_too_large, before finish); a PDF declared image/png is refused
 * (media_type_mismatch); what is read back equals what was written; a
 * removed object is gone and removing it again is fine.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "itest.h"
#include "media/media_row.h"
#include "media/store.h"
#include "pg/pg.h"

#define OBJECT_BYTES 300000

typedef struct buffer {
    unsigned char *data;
    size_t len, cap;
} buffer;

static int buffer_sink(void *ctx, const void *data, size_t len)
{
    buffer *b = ctx;
    if (b->len + len > b->cap) {
        b->cap = (b->len + len) * 2;
        b->data = realloc(b->data, b->cap);
        assert_non_null(b->data);
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

/* A PNG signature and then pseudo-random bytes from seed. */
static unsigned char *png_bytes(size_t len, unsigned seed)
{
    unsigned char *p = malloc(len);
    assert_non_null(p);
    memcpy(p, "\x89PNG\r\n\x1A\n", 8);
    for (size_t i = 8; i < len; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (unsigned char)(seed >> 16);
    }
    return p;
}

/* Store len bytes of data as declared, in chunks of 7919 bytes, within a
 * transaction that upserts the row; returns the status of the first step
 * that failed (err says which). */
static bz_status store_bytes(bz_media_store *store, PGconn *conn, int64_t ws, bz_media_kind kind,
                             const char *declared, const unsigned char *data, size_t len,
                             bz_media_object *obj, bz_media_row *row, bz_error *err)
{
    bz_media_spool *spool = NULL;
    bz_status st = bz_media_spool_begin(store, kind, &spool, err);
    for (size_t off = 0; st == BZ_OK && off < len; off += 7919)
        st = bz_media_spool_write(spool, data + off, len - off < 7919 ? len - off : 7919, err);
    if (st == BZ_OK)
        st = bz_media_spool_finish(spool, ws, declared, obj, err);
    if (st == BZ_OK)
        st = bz_pg_begin(conn, err);
    if (st == BZ_OK) {
        st = bz_media_row_upsert(conn, ws, obj, "photo.png", bz_media_store_location(store), "crm",
                                 row, err);
        if (st == BZ_OK)
            st = bz_media_spool_commit(spool, obj, err);
        if (st == BZ_OK)
            st = bz_pg_commit(conn, err);
        else
            bz_pg_rollback(conn);
    }
    bz_media_spool_free(spool);
    return st;
}

static void check_store(bz_media_store *store)
{
    PGconn *conn = itest_pg_connect();
    char name[64];
    itest_unique("media", name, sizeof name);
    int64_t ws = itest_pg_int64f(conn, "INSERT INTO workspaces (name) VALUES ('itest %s') "
                                 "RETURNING id", name);
    unsigned char *png = png_bytes(OBJECT_BYTES, (unsigned)ws);
    bz_media_object first, second;
    bz_media_row row1, row2;
    bz_error err;

    /* stored, then stored again: one object, one row */
    bz_status st = store_bytes(store, conn, ws, BZ_MEDIA_IMAGE, "image/png", png, OBJECT_BYTES,
                               &first, &row1, &err);
    assert_int_equal(st, BZ_OK);
    assert_int_equal(first.existed, 0);
    assert_int_equal(first.size, OBJECT_BYTES);
    char expect_key[96];
    snprintf(expect_key, sizeof expect_key, "ws/%lld/%s", (long long)ws, first.sha256);
    assert_string_equal(first.key, expect_key);
    st = store_bytes(store, conn, ws, BZ_MEDIA_IMAGE, "IMAGE/PNG", png, OBJECT_BYTES, &second,
                     &row2, &err);
    assert_int_equal(st, BZ_OK);
    assert_int_equal(second.existed, 1);
    assert_string_equal(second.sha256, first.sha256);
    assert_true(row1.id == row2.id);
    assert_string_equal(row1.uuid, row2.uuid);
    assert_true(itest_pg_int64f(conn, "SELECT count(*) FROM chat_media WHERE workspace_id = %lld",
                                (long long)ws) == 1);
    itest_assert_text("image/png", itest_pg_textf(conn, "SELECT type FROM chat_media WHERE id = "
                                                  "%lld", (long long)row1.id));
    itest_assert_text(bz_media_store_location(store),
                      itest_pg_textf(conn, "SELECT location FROM chat_media WHERE id = %lld",
                                     (long long)row1.id));

    /* read back */
    buffer back = {0};
    assert_int_equal(bz_media_store_read(store, first.key, buffer_sink, &back, &err), BZ_OK);
    assert_int_equal(back.len, OBJECT_BYTES);
    assert_memory_equal(back.data, png, OBJECT_BYTES);
    free(back.data);

    /* too large: refused while the bytes arrive, not at finish */
    size_t big = (size_t)bz_media_kind_max_bytes(BZ_MEDIA_STICKER) + 1;
    unsigned char *webp = calloc(1, big);
    memcpy(webp, "RIFF\0\0\0\0WEBPVP8 ", 16);
    bz_media_spool *spool = NULL;
    assert_int_equal(bz_media_spool_begin(store, BZ_MEDIA_STICKER, &spool, &err), BZ_OK);
    assert_int_equal(bz_media_spool_write(spool, webp, big - 1, &err), BZ_OK);
    assert_int_equal(bz_media_spool_write(spool, webp + big - 1, 1, &err), BZ_ERR_INVALID);
    assert_string_equal(err.reason, "media_too_large");
    assert_int_not_equal(bz_media_spool_finish(spool, ws, "image/webp", &second, &err), BZ_OK);
    bz_media_spool_free(spool);
    free(webp);

    /* a PDF declared as a PNG */
    static const char pdf[] = "%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n";
    st = store_bytes(store, conn, ws, BZ_MEDIA_IMAGE, "image/png", (const unsigned char *)pdf,
                     sizeof pdf - 1, &second, &row2, &err);
    assert_int_equal(st, BZ_ERR_INVALID);
    assert_string_equal(err.reason, "media_type_mismatch");
    assert_true(itest_pg_int64f(conn, "SELECT count(*) FROM chat_media WHERE workspace_id = %lld",
                                (long long)ws) == 1);

    /* removed: gone, and removing again is fine */
    assert_int_equal(bz_media_store_remove(store, first.key, &err), BZ_OK);
    back = (buffer){0};
    assert_int_equal(bz_media_store_read(store, first.key, buffer_sink, &back, &err),
                     BZ_ERR_NOT_FOUND);
    assert_int_equal(back.len, 0);
    assert_int_equal(bz_media_store_remove(store, first.key, &err), BZ_OK);
    free(png);
    PQfinish(conn);
}

/* A store opened from a configuration file of lines (NULL-terminated). */
static bz_media_store *open_store(const char *dir, const char *const *lines)
{
    char path[256];
    snprintf(path, sizeof path, "%s/media.conf", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("media = {\n", f);
    for (; *lines; lines++)
        fprintf(f, "  %s\n", *lines);
    fputs("};\n", f);
    fclose(f);
    bz_config *cfg = NULL;
    bz_error err;
    if (bz_config_load(bz_media_store_keys, BZ_MEDIA_STORE_NKEYS, path, &cfg, &err) != BZ_OK)
        fail_msg("config: %s", err.msg);
    bz_media_store *store = NULL;
    if (bz_media_store_open(cfg, &store, &err) != BZ_OK)
        fail_msg("open store: %s", err.msg);
    bz_config_free(cfg);
    return store;
}

static void local_store(void **state)
{
    (void)state;
    char dir[] = "/tmp/itest-media-XXXXXX", local_dir[128], line[192];
    assert_non_null(mkdtemp(dir));
    snprintf(local_dir, sizeof local_dir, "%s/objects", dir);
    snprintf(line, sizeof line, "local_dir = \"%s\";", local_dir);
    const char *lines[] = {"location = \"local\";", line,
                           "link_secret = \"a-long-enough-media-link-secret-for-tests\";",
                           "link_base_url = \"http://127.0.0.1:1\";", NULL};
    bz_media_store *store = open_store(dir, lines);
    assert_string_equal(bz_media_store_location(store), "local");
    check_store(store);
    bz_media_store_close(store);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(local_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
