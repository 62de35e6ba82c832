/*
 * test_media_store.c - libs/media's store against the real things: a local
 * directory, the test stack's S3 server (S3Proxy, which checks every
 * signature itself; scripts/lib/s3_server.sh) and PostgreSQL's chat_media
 * (ARCHITECTURE.md §16.1).
 *
 * The same checks run on every store: the same bytes stored twice are one
 * object (the second commit finds it, existed = 1) and one chat_media row;
 * three objects committed together (bz_media_spools_commit, one of them
 * there already) are each in place, existed 0, 0, 1;
 * bytes over the kind's limit are refused while they arrive
 * (media_too_large, before finish); a PDF declared image/png is refused
 * (media_type_mismatch); what is read back equals what was written; a
 * removed object is gone and removing it again is fine.
 *
 * On S3 also: a presigned link fetched with no credentials returns the
 * bytes, and the server refuses (403) the link with its signature changed,
 * the link's signature on another object's key, and a link past its
 * expiry; a store with a wrong secret key is refused too. And the purge's
 * session lock keeps a store's transaction lock from being taken.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <time.h>
#include <unistd.h>

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

/* Three objects committed by one bz_media_spools_commit, inside the
 * transaction that upserts their rows: two new ones and again the bytes of
 * stored (whose key is that object's): existed 0, 0, 1, each read back. */
static void check_commit_together(bz_media_store *store, PGconn *conn, int64_t ws,
                                  const unsigned char *stored)
{
    unsigned char *fresh[2] = {png_bytes(OBJECT_BYTES / 3, (unsigned)ws + 1),
                               png_bytes(OBJECT_BYTES / 2, (unsigned)ws + 2)};
    const unsigned char *data[3] = {fresh[0], fresh[1], stored};
    size_t len[3] = {OBJECT_BYTES / 3, OBJECT_BYTES / 2, OBJECT_BYTES};
    bz_media_spool *spools[3] = {0};
    bz_media_object objs[3];
    bz_media_row rows[3];
    bz_error err;
    assert_int_equal(bz_pg_begin(conn, &err), BZ_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(bz_media_spool_begin(store, BZ_MEDIA_IMAGE, &spools[i], &err), BZ_OK);
        assert_int_equal(bz_media_spool_write(spools[i], data[i], len[i], &err), BZ_OK);
        assert_int_equal(bz_media_spool_finish(spools[i], ws, "image/png", &objs[i], &err), BZ_OK);
        assert_int_equal(bz_media_row_upsert(conn, ws, &objs[i], NULL,
                                             bz_media_store_location(store), "crm", &rows[i],
                                             &err),
                         BZ_OK);
    }
    if (bz_media_spools_commit(spools, objs, 3, &err) != BZ_OK)
        fail_msg("commit together: %s", err.msg);
    assert_int_equal(bz_pg_commit(conn, &err), BZ_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(objs[i].existed, i == 2);
        buffer back = {0};
        assert_int_equal(bz_media_store_read(store, objs[i].key, buffer_sink, &back, &err), BZ_OK);
        assert_int_equal(back.len, len[i]);
        assert_memory_equal(back.data, data[i], len[i]);
        free(back.data);
        bz_media_spool_free(spools[i]);
    }
    for (int i = 0; i < 2; i++) {
        assert_int_equal(bz_media_store_remove(store, objs[i].key, &err), BZ_OK);
        free(fresh[i]);
    }
}

/* A workspace of this test's own. */
static int64_t new_workspace(PGconn *conn)
{
    char name[64];
    itest_unique("media", name, sizeof name);
    return itest_pg_int64f(conn, "INSERT INTO workspaces (name) VALUES ('itest %s') RETURNING id",
                           name);
}

static void check_store(bz_media_store *store)
{
    PGconn *conn = itest_pg_connect();
    int64_t ws = new_workspace(conn);
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

    check_commit_together(store, conn, ws, png);

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

/* Open a store from a configuration file of lines (NULL-terminated). */
static bz_status try_open_store(const char *dir, const char *const *lines, bz_media_store **out,
                                bz_error *err)
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
    static const bz_config_key keys[] = {BZ_MEDIA_STORE_CONFIG_KEYS};
    if (bz_config_load(keys, sizeof keys / sizeof keys[0], path, &cfg, err) != BZ_OK)
        fail_msg("config: %s", err->msg);
    bz_status st = bz_media_store_open(cfg, out, err);
    bz_config_free(cfg);
    return st;
}

static bz_media_store *open_store(const char *dir, const char *const *lines)
{
    bz_media_store *store = NULL;
    bz_error err;
    if (try_open_store(dir, lines, &store, &err) != BZ_OK)
        fail_msg("open store: %s", err.msg);
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

    /* a link secret anyone could guess is refused */
    const char *weak[] = {"location = \"local\";", line, "link_secret = \"short\";", NULL};
    bz_error err;
    assert_int_equal(try_open_store(dir, weak, &store, &err), BZ_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "media.link_secret"));
    assert_null(store);
    itest_remove_tree(dir);
}

/* The purge's session lock is the upsert's transaction lock: while one
 * connection holds it, another cannot take the object's key. */
static void purge_lock_excludes_store(void **state)
{
    (void)state;
    PGconn *purge = itest_pg_connect(), *store = itest_pg_connect();
    const char *sha = "ab00000000000000000000000000000000000000000000000000000000000000";
    bz_error err;
    const char *try_sql = "SELECT pg_try_advisory_xact_lock(blazz_media_lock_key(7, '%s'))::int";
    assert_int_equal(bz_media_row_lock_session(purge, 7, sha, &err), BZ_OK);
    itest_pg_exec(store, "BEGIN");
    assert_true(itest_pg_int64f(store, try_sql, sha) == 0);
    itest_pg_exec(store, "ROLLBACK");
    assert_int_equal(bz_media_row_unlock_session(purge, 7, sha, &err), BZ_OK);
    itest_pg_exec(store, "BEGIN");
    assert_true(itest_pg_int64f(store, try_sql, sha) == 1);
    itest_pg_exec(store, "ROLLBACK");
    PQfinish(purge);
    PQfinish(store);
}

static size_t curl_to_buffer(char *data, size_t size, size_t nmemb, void *ctx)
{
    buffer_sink(ctx, data, size * nmemb);
    return size * nmemb;
}

/* GET url with no credentials at all; the HTTP status, the body in *body. */
static long fetch(const char *url, buffer *body)
{
    CURL *c = curl_easy_init();
    assert_non_null(c);
    *body = (buffer){0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, curl_to_buffer);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK)
        fail_msg("GET %s: %s", url, curl_easy_strerror(rc));
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    return code;
}

static void assert_refused(const char *url, const char *why)
{
    buffer body;
    long code = fetch(url, &body);
    if (code != 403)
        fail_msg("%s: the server answered %ld, not 403", why, code);
    free(body.data);
}

/* The lines of an S3 store's configuration (the rest comes from the
 * stack's BLAZZ_MEDIA_S3_* environment). */
static bz_media_store *open_s3_store(const char *dir)
{
    char line[192];
    snprintf(line, sizeof line, "spool_dir = \"%s/spool\";", dir);
    const char *lines[] = {"location = \"s3\";", line, "link_ttl_s = 60;", NULL};
    return open_store(dir, lines);
}

/* Store data (a PNG) in a fresh transaction; the object and its row. */
static void store_png(bz_media_store *store, PGconn *conn, int64_t ws, unsigned seed,
                      bz_media_object *obj, bz_media_row *row, unsigned char **data)
{
    bz_error err;
    *data = png_bytes(20000, seed);
    if (store_bytes(store, conn, ws, BZ_MEDIA_IMAGE, "image/png", *data, 20000, obj, row, &err) !=
        BZ_OK)
        fail_msg("store: %s", err.msg);
}

static void presigned_links(bz_media_store *store)
{
    PGconn *conn = itest_pg_connect();
    int64_t ws = new_workspace(conn);
    bz_media_object a, b;
    bz_media_row row_a, row_b;
    unsigned char *bytes_a, *bytes_b;
    store_png(store, conn, ws, 1, &a, &row_a, &bytes_a);
    store_png(store, conn, ws, 2, &b, &row_b, &bytes_b);
    bz_error err;
    char *link = NULL;
    int64_t now = (int64_t)time(NULL);
    assert_int_equal(bz_media_store_link(store, ws, row_a.uuid, a.key, now, &link, &err), BZ_OK);

    /* fetched as the CRM would: no credentials, the bytes */
    buffer body;
    assert_int_equal(fetch(link, &body), 200);
    assert_int_equal(body.len, 20000);
    assert_memory_equal(body.data, bytes_a, 20000);
    free(body.data);

    /* its signature changed */
    char *sig = strstr(link, "X-Amz-Signature=") + 16;
    char keep = sig[10];
    sig[10] = keep == '0' ? '1' : '0';
    assert_refused(link, "a changed signature");
    sig[10] = keep;

    /* its signature on another object's key (both exist) */
    char *key_at = strstr(link, a.sha256);
    assert_non_null(key_at);
    memcpy(key_at, b.sha256, 64);
    assert_refused(link, "another key");
    memcpy(key_at, a.sha256, 64);
    assert_int_equal(fetch(link, &body), 200); /* put back, it works again */
    free(body.data);
    free(link);

    /* past its expiry: signed 61 s ago for 60 s */
    assert_int_equal(bz_media_store_link(store, ws, row_a.uuid, a.key, now - 61, &link, &err),
                     BZ_OK);
    assert_refused(link, "an expired link");
    free(link);

    assert_int_equal(bz_media_store_remove(store, a.key, &err), BZ_OK);
    assert_int_equal(bz_media_store_remove(store, b.key, &err), BZ_OK);
    free(bytes_a);
    free(bytes_b);
    PQfinish(conn);
}

static void s3_store(void **state)
{
    (void)state;
    char dir[] = "/tmp/itest-media-s3-XXXXXX";
    assert_non_null(mkdtemp(dir));
    bz_media_store *store = open_s3_store(dir);
    assert_string_equal(bz_media_store_location(store), "s3");
    assert_null(bz_media_store_link_secret(store));
    check_store(store);
    presigned_links(store);
    bz_media_store_close(store);
    itest_remove_tree(dir);
}

/* The server checks header signatures: a store with a wrong secret key
 * cannot read, and says it is the configuration. */
static void s3_refuses_a_wrong_secret(void **state)
{
    (void)state;
    char dir[] = "/tmp/itest-media-s3-XXXXXX", secret_path[128];
    assert_non_null(mkdtemp(dir));
    snprintf(secret_path, sizeof secret_path, "%s/wrong_secret", dir);
    FILE *f = fopen(secret_path, "w");
    assert_non_null(f);
    fputs("not-the-secret-key-of-this-server\n", f);
    fclose(f);
    char *saved = strdup(itest_env("BLAZZ_MEDIA_S3_SECRET_KEY_FILE"));
    setenv("BLAZZ_MEDIA_S3_SECRET_KEY_FILE", secret_path, 1);
    bz_media_store *store = open_s3_store(dir);
    setenv("BLAZZ_MEDIA_S3_SECRET_KEY_FILE", saved, 1);
    free(saved);
    bz_error err;
    buffer back = {0};
    char key[96];
    snprintf(key, sizeof key, "ws/1/%064d", 0);
    assert_int_equal(bz_media_store_read(store, key, buffer_sink, &back, &err), BZ_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "403"));
    bz_media_store_close(store);
    itest_remove_tree(dir);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(local_store),
        cmocka_unit_test(purge_lock_excludes_store),
        cmocka_unit_test(s3_store),
        cmocka_unit_test(s3_refuses_a_wrong_secret),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return failed;
}
