/*
 * test_media_edge.c - the CRM's media endpoints of ingest (ARCHITECTURE.md
 * §16.3) on the real stack: a real blazz-ingest with a local media store
 * under the test's directory, real API keys (blazzctl) of two workspaces,
 * PostgreSQL's chat_media rows.
 *
 *  - crm_upload_and_read: an image uploaded -> 201 with its uuid, SHA-256
 *    and size; the same bytes again -> the same uuid, one row, one object;
 *    GET /v1/media/{uuid} -> its row and a link; the link -> the bytes
 *    with their type; the link with its expiry moved, or its workspace
 *    changed, -> 403; another workspace's key -> 404 for the uuid, as a
 *    path segment that is no uuid, each naming media_uuid;
 *  - crm_upload_refusals: no key -> 401, a well-formed unknown one -> 401
 *    before the body (its headers alone are answered), a declared length over the
 *    kind's limit -> 413 before any byte, a chunked body past the limit ->
 *    413, bytes that are not the declared type -> 415, an unsupported
 *    type -> 415, a filename that is not UTF-8 text (%FF) or holds a NUL
 *    (%00) -> 400 naming it, PostgreSQL never asked; none of them stores a
 *    row or an object;
 *  - crm_upload_type_from_bytes: declared application/octet-stream, a
 *    JPEG is stored as an image/jpeg image, a PDF as a document, a WebP
 *    asked as a sticker as one; plain text -> 415, a JPEG asked as a
 *    sticker -> 415, a JPEG over an image's 5 MB -> 413 once received;
 *  - crm_upload_quota: with crm.unsent_media_bytes_per_workspace at two
 *    and a half uploads, two uploads -> 201, the third -> 409
 *    media_quota_exceeded naming the limit, stored nowhere; the first
 *    bytes again -> 201 (nothing new held);
 *  - gateway_upload: a gateway's upload (POST /v1/gateway/media, signed
 *    over its session and the body's declared SHA-256) -> 201 and a
 *    'webjs' row in the session's workspace; bytes other than the signed
 *    digest -> 400, a filename that is not UTF-8 text -> 400, a
 *    signature for another session or none -> 401,
 *    nothing stored by those;
 *  - gateway_message_links_media (§16.4): with blazz-chat-sync running, a
 *    gateway uploads an image, then posts the JSON message event naming it
 *    by media.stored_media_uuid: the chats row's media_id is that upload's
 *    row, message.created on chat.events carries the uuid, and
 *    GET /v1/media/{uuid} gives a link to exactly the uploaded bytes; an
 *    event naming another workspace's uuid is stored unlinked with
 *    media.link_error "unknown_media" in its metadata (and no uuid in its
 *    message.created); a value that is no uuid is refused (400); the
 *    gateway reads the bytes back (GET /v1/gateway/media/{uuid}, signed),
 *    another workspace's uuid -> 404;
 *  - simulator_delivers_real_media: blazz-gateway-sim --media-bytes 1 as
 *    the gateway, its world's account created just before its traffic
 *    (newer than ingest's directory of sessions, which a worker's query
 *    confirms instead): every live photo and voice note of its traffic is
 *    a real PNG or Ogg Opus file uploaded before its event; none refused, each
 *    stored once as a 'webjs' row, each message naming one linked to it
 *    with the matching type, and the CRM's link opens a photo and a voice
 *    note whose bytes hash to their rows' sha256;
 *  - gateway_reads_from_s3: ingest on the stack's S3 server (S3Proxy): an
 *    agent's image uploaded by the CRM (POST /v1/media) is read by the
 *    gateway (GET /v1/gateway/media/{uuid}): 307 to a presigned GET of
 *    its object, which gives the bytes intact (with or without the
 *    gateway's headers along); another workspace's uuid -> 404; a forged
 *    signature -> 401 while the tables a query would read are locked
 *    (a signed read under that lock gets no answer: the 401 asked none).
 */
#include <dirent.h>
#include <inttypes.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent_itest.h"
#include "blazz/v1/chat_event.pb-c.h"
#include "ingest_itest.h"
#include "core/clock.h"
#include "core/sha256.h"
#include "itest_http.h"
#include "media/link.h"
#include "wa/signature.h"

#define LINK_SECRET "media-link-secret-0123456789abcdef0123"
#define HTTP_MS 30000

static char media_dir[800];

/* A small valid JPEG's bytes: SOI, an APP0 (JFIF) segment, a comment
 * segment made unique by tag, EOI. */
static size_t tiny_jpeg(unsigned char *out, size_t cap, const char *tag)
{
    static const unsigned char head[] = {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 'J', 'F', 'I', 'F',
                                         0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00,
                                         0x00};
    size_t n = 0, tag_len = strlen(tag);
    assert_true(sizeof head + 4 + tag_len + 2 <= cap);
    memcpy(out, head, sizeof head);
    n = sizeof head;
    out[n++] = 0xFF;
    out[n++] = 0xFE;
    out[n++] = (unsigned char)((tag_len + 2) >> 8);
    out[n++] = (unsigned char)(tag_len + 2);
    memcpy(out + n, tag, tag_len);
    n += tag_len;
    out[n++] = 0xFF;
    out[n++] = 0xD9;
    return n;
}

static void expect_status(const itest_http_reply *r, long want)
{
    if (r->status != want)
        fail_msg("HTTP %ld, expected %ld: %.300s", r->status, want, r->body);
}

/* 200 with exactly the len bytes of want. */
static void expect_bytes(const itest_http_reply *r, const void *want, size_t len)
{
    expect_status(r, 200);
    assert_int_equal(r->len, len);
    assert_memory_equal(r->body, want, len);
}

static void url_of(agent_fx *fx, const char *path, char *out, size_t cap)
{
    snprintf(out, cap, "http://127.0.0.1:%d%s", fx->port, path);
}

/* POST /v1/media with key (NULL: none), type and extra header lines. */
static void upload(agent_fx *fx, const char *key, const char *query, const char *type,
                   const void *body, size_t len, const char *extra, itest_http_reply *r)
{
    char url[256], auth[256], ctype[160];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/media%s", fx->port, query ? query : "");
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", key ? key : "");
    snprintf(ctype, sizeof ctype, "Content-Type: %s", type);
    const char *headers[] = {ctype, key ? auth : extra, key ? extra : NULL, NULL};
    itest_http("POST", url, body, len, headers, HTTP_MS, r);
}

static void get_with_key(agent_fx *fx, const char *key, const char *path, itest_http_reply *r)
{
    char url[512], auth[256];
    url_of(fx, path, url, sizeof url);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
    const char *headers[] = {auth, NULL};
    itest_http("GET", url, NULL, 0, headers, HTTP_MS, r);
}

static const char *member(json_t *doc, const char *name)
{
    const char *v = json_string_value(json_object_get(doc, name));
    if (!v)
        fail_msg("no %s in %s", name, json_dumps(doc, 0));
    return v;
}

/* created_at as every other time the API writes ("YYYY-MM-DDTHH:MM:SS.mmmZ",
 * ISO 8601 in UTC; it was PostgreSQL's own text), and the row's instant. */
static void expect_iso8601_of_the_row(agent_fx *fx, const char *created_at, const char *uuid)
{
    if (strlen(created_at) != 24 || created_at[10] != 'T' || created_at[19] != '.' ||
        created_at[23] != 'Z')
        fail_msg("created_at %s is not YYYY-MM-DDTHH:MM:SS.mmmZ", created_at);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM chat_media WHERE uuid = '%s' AND "
                                   "abs(extract(epoch FROM created_at - '%s'::timestamptz)) "
                                   "< 0.001",
                               uuid, created_at),
                     1);
}

/* Regular files under dir, recursively (the store's objects; the spool's
 * temporary files included, which must be gone too). */
static int files_under(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (e->d_type == DT_DIR)
            n += files_under(path);
        else
            n++;
    }
    closedir(d);
    return n;
}

/* extra: one more "KEY=VALUE" for ingest, or NULL. */
static void start_ingest_with_media_and(agent_fx *fx, const char *extra)
{
    static char dir_line[900], base_line[128];
    snprintf(media_dir, sizeof media_dir, "%s/media", fx->camp.dir);
    snprintf(dir_line, sizeof dir_line, "BLAZZ_MEDIA_LOCAL_DIR=%s", media_dir);
    snprintf(base_line, sizeof base_line, "BLAZZ_MEDIA_LINK_BASE_URL=http://127.0.0.1:%d",
             fx->port);
    static const char secret_line[] = "BLAZZ_MEDIA_LINK_SECRET=" LINK_SECRET;
    const char *env[] = {dir_line, base_line, secret_line, extra, NULL};
    agent_start_ingest(fx, env);
}

static void start_ingest_with_media(agent_fx *fx)
{
    start_ingest_with_media_and(fx, NULL);
}

static void crm_upload_and_read(void **state)
{
    (void)state;
    agent_fx *fx = agent_test_fx;
    agent_fx_init(fx, "media");
    int64_t ws = camp_workspace(&fx->camp), other_ws = camp_workspace(&fx->camp);
    start_ingest_with_media(fx);
    char *key = agent_api_key(fx, ws), *other_key = agent_api_key(fx, other_ws);
    unsigned char jpeg[256];
    size_t len = tiny_jpeg(jpeg, sizeof jpeg, fx->tag);

    itest_http_reply r;
    upload(fx, key, "?filename=photo.jpg", "image/jpeg", jpeg, len, NULL, &r);
    expect_status(&r, 201);
    json_t *doc = json_loads(r.body, 0, NULL);
    assert_non_null(doc);
    char uuid[64];
    snprintf(uuid, sizeof uuid, "%s", member(doc, "media_uuid"));
    assert_string_equal(member(doc, "kind"), "image");
    assert_string_equal(member(doc, "type"), "image/jpeg");
    assert_string_equal(member(doc, "name"), "photo.jpg");
    assert_int_equal(json_integer_value(json_object_get(doc, "size")), (json_int_t)len);
    assert_int_equal(strlen(member(doc, "sha256")), 64);
    json_decref(doc);

    /* the same bytes again: the same row and object */
    upload(fx, key, NULL, "image/jpeg", jpeg, len, NULL, &r);
    expect_status(&r, 201);
    doc = json_loads(r.body, 0, NULL);
    assert_string_equal(member(doc, "media_uuid"), uuid);
    json_decref(doc);
    /* the same bytes once more, the body waiting for the go-ahead (as
     * curl sends large bodies): the key is checked before it is sent */
    upload(fx, key, NULL, "image/jpeg", jpeg, len, "Expect: 100-continue", &r);
    expect_status(&r, 201);
    assert_non_null(strstr(r.body, uuid));
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM chat_media WHERE workspace_id = %lld",
                               (long long)ws), 1);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM chat_media WHERE uuid = '%s' AND "
                                   "source = 'crm' AND kind = 'image' AND location = 'local'",
                               uuid), 1);
    assert_int_equal(files_under(media_dir), 1);

    /* its row and link */
    char path[128];
    snprintf(path, sizeof path, "/v1/media/%s", uuid);
    get_with_key(fx, key, path, &r);
    expect_status(&r, 200);
    doc = json_loads(r.body, 0, NULL);
    char link[1024];
    snprintf(link, sizeof link, "%s", member(doc, "url"));
    member(doc, "expires_at");
    expect_iso8601_of_the_row(fx, member(doc, "created_at"), uuid);
    json_decref(doc);
    itest_http("GET", link, NULL, 0, NULL, HTTP_MS, &r);
    expect_bytes(&r, jpeg, len);

    /* another workspace's key: as if there were no such media */
    get_with_key(fx, other_key, path, &r);
    expect_status(&r, 404);
    assert_non_null(strstr(r.body, "\"field\":\"media_uuid\""));
    /* a path segment that is no uuid: the same answer, naming the
     * parameter as the description does (issue 54) */
    get_with_key(fx, key, "/v1/media/not-a-uuid", &r);
    expect_status(&r, 404);
    assert_non_null(strstr(r.body, "\"error\":\"unknown_media\""));
    assert_non_null(strstr(r.body, "\"field\":\"media_uuid\""));

    /* a link whose expiry is stretched, one signed for the past, one moved
     * to another workspace: refused */
    char *q = strchr(link, '?');
    assert_non_null(q);
    char sig[BZ_MEDIA_LINK_SIGNATURE_HEX + 1];
    long long expires = strtoll(strstr(q, "expires=") + 8, NULL, 10);
    assert_true(expires > 0);
    snprintf(sig, sizeof sig, "%s", strstr(q, "signature=") + 10);
    char bad[1024];
    snprintf(bad, sizeof bad, "http://127.0.0.1:%d%s/content?workspace=%lld&expires=%lld"
             "&signature=%s", fx->port, path, (long long)ws, expires + 3600, sig);
    itest_http("GET", bad, NULL, 0, NULL, HTTP_MS, &r);
    expect_status(&r, 403);
    bz_error err;
    int64_t now_s = bz_wall_ms() / 1000;
    assert_int_equal(bz_media_link_sign(LINK_SECRET, uuid, ws, now_s - 10, sig, &err), BZ_OK);
    snprintf(bad, sizeof bad, "http://127.0.0.1:%d%s/content?workspace=%lld&expires=%lld"
             "&signature=%s", fx->port, path, (long long)ws, (long long)now_s - 10, sig);
    itest_http("GET", bad, NULL, 0, NULL, HTTP_MS, &r);
    expect_status(&r, 403);
    assert_non_null(strstr(r.body, "link_expired"));
    /* a valid signature for the other workspace: its rows have no such uuid */
    assert_int_equal(bz_media_link_sign(LINK_SECRET, uuid, other_ws, now_s + 600, sig, &err),
                     BZ_OK);
    snprintf(bad, sizeof bad, "http://127.0.0.1:%d%s/content?workspace=%lld&expires=%lld"
             "&signature=%s", fx->port, path, (long long)other_ws, (long long)now_s + 600, sig);
    itest_http("GET", bad, NULL, 0, NULL, HTTP_MS, &r);
    expect_status(&r, 403);
    free(key);
    free(other_key);
}

#define NOT_UTF8_ERROR "invalid byte sequence for encoding"

/* Whether the test stack's PostgreSQL logged text (a log every program of
 * the run shares: a mention from elsewhere makes the check moot, never
 * wrong). */
static int pg_log_mentions(const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/pg/server.log", itest_env("BLAZZ_STATE_DIR"));
    return itest_file_contains(path, text);
}

/* The status ingest answers to an upload's headers alone (a declared
 * body never sent), read within 5 s; 0 when none came: the answer waited
 * for the body. */
static long answer_to_headers_alone(agent_fx *fx, const char *key)
{
    char headers[512];
    int n = snprintf(headers, sizeof headers,
                     "POST /v1/media HTTP/1.1\r\nHost: ingest\r\nAuthorization: Bearer %s\r\n"
                     "Content-Type: image/jpeg\r\nContent-Length: 100000\r\n\r\n",
                     key);
    int fd = itest_http_connect(fx->port);
    itest_http_write(fd, headers, (size_t)n);
    static itest_http_reply reply;
    itest_http_read_answer(fd, 5000, &reply);
    close(fd);
    return reply.status;
}

/* 400 naming the filename, not the database's 503. */
static void expect_invalid_filename(const itest_http_reply *r)
{
    expect_status(r, 400);
    if (!strstr(r->body, "\"field\":\"filename\"") || strstr(r->body, "ERROR"))
        fail_msg("a bad filename answered: %s", r->body);
}

static void crm_upload_refusals(void **state)
{
    (void)state;
    agent_fx *fx = agent_test_fx;
    agent_fx_init(fx, "mediano");
    int64_t ws = camp_workspace(&fx->camp);
    start_ingest_with_media(fx);
    char *key = agent_api_key(fx, ws);
    unsigned char jpeg[256];
    size_t len = tiny_jpeg(jpeg, sizeof jpeg, fx->tag);
    itest_http_reply r;

    upload(fx, NULL, NULL, "image/jpeg", jpeg, len, NULL, &r);
    expect_status(&r, 401);
    upload(fx, "bzk_0000000000000000_wrongwrongwrongwrongwrong", NULL, "image/jpeg", jpeg, len,
           NULL, &r);
    expect_status(&r, 401);
    /* a well-formed key that is not one (the key's id, another secret):
     * 401 before any byte of the body is read, as the description says,
     * not once the whole body was received and dropped (issue 54) */
    char wrong[160];
    snprintf(wrong, sizeof wrong, "%.*sAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
             (int)strlen("bzk_") + 17, key);
    long early = answer_to_headers_alone(fx, wrong);
    if (early != 401)
        fail_msg("an unknown key's upload, headers alone: answered %ld (0: none), expected 401",
                 early);
    upload(fx, wrong, NULL, "image/jpeg", jpeg, len, NULL, &r);
    expect_status(&r, 401);

    /* over a sticker's 500 KB: declared (answered before the body, which
     * waits for the go-ahead), and chunked (found while spooling) */
    size_t big_len = 600 * 1000;
    unsigned char *big = calloc(1, big_len);
    assert_non_null(big);
    memcpy(big, "RIFF\0\0\0\0WEBPVP8 ", 16);
    upload(fx, key, NULL, "image/webp", big, big_len, "Expect: 100-continue", &r);
    expect_status(&r, 413);
    upload(fx, key, NULL, "image/webp", big, big_len, "Transfer-Encoding: chunked", &r);
    expect_status(&r, 413);
    assert_non_null(strstr(r.body, "media_too_large"));
    free(big);

    /* a PDF declared as a JPEG; a type no kind takes */
    static const char pdf[] = "%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n";
    upload(fx, key, NULL, "image/jpeg", pdf, sizeof pdf - 1, NULL, &r);
    expect_status(&r, 415);
    assert_non_null(strstr(r.body, "media_type_mismatch"));
    upload(fx, key, NULL, "application/x-msdownload", pdf, sizeof pdf - 1, NULL, &r);
    expect_status(&r, 415);

    /* names that are not UTF-8 text: refused at the edge, naming the
     * field, before PostgreSQL sees them (it answered with its own error) */
    int db_complained = pg_log_mentions(NOT_UTF8_ERROR);
    upload(fx, key, "?filename=%FF.jpg", "image/jpeg", jpeg, len, NULL, &r);
    expect_invalid_filename(&r);
    upload(fx, key, "?filename=a%00b.jpg", "image/jpeg", jpeg, len, NULL, &r);
    expect_invalid_filename(&r);
    if (!db_complained)
        assert_false(pg_log_mentions(NOT_UTF8_ERROR));

    assert_int_equal(agent_int(fx, "SELECT count(*) FROM chat_media WHERE workspace_id = %lld",
                               (long long)ws), 0);
    assert_int_equal(files_under(media_dir), 0);
    free(key);
}

/* An upload declared application/octet-stream and answered 201: its
 * kind and type as stored. */
static void expect_stored_as(agent_fx *fx, const char *key, const char *query, const void *body,
                             size_t len, const char *kind, const char *type)
{
    itest_http_reply r;
    upload(fx, key, query, "application/octet-stream", body, len, NULL, &r);
    expect_status(&r, 201);
    json_t *doc = json_loads(r.body, 0, NULL);
    assert_non_null(doc);
    assert_string_equal(member(doc, "kind"), kind);
    assert_string_equal(member(doc, "type"), type);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM chat_media WHERE uuid = '%s' AND "
                                   "kind = '%s' AND type = '%s'",
                               member(doc, "media_uuid"), kind, type),
                     1);
    json_decref(doc);
}

/* A client that cannot choose its Content-Type (the generated Python
 * client sends the last type openapi.yaml lists) declares
 * application/octet-stream: the media is what its bytes are, of that
 * type's kind or the one asked for; bytes that say no type WhatsApp takes
 * are refused, and a kind's limit still holds once the bytes name it. */
static void crm_upload_type_from_bytes(void **state)
{
    (void)state;
    agent_fx *fx = agent_test_fx;
    agent_fx_init(fx, "mediabytes");
    int64_t ws = camp_workspace(&fx->camp);
    start_ingest_with_media(fx);
    char *key = agent_api_key(fx, ws);
    unsigned char jpeg[256];
    size_t len = tiny_jpeg(jpeg, sizeof jpeg, fx->tag);
    static const char pdf[] = "%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n";
    static const char webp[] = "RIFF\x20\0\0\0WEBPVP8 \x14\0\0\0 a sticker's bytes";

    expect_stored_as(fx, key, NULL, jpeg, len, "image", "image/jpeg");
    expect_stored_as(fx, key, NULL, pdf, sizeof pdf - 1, "document", "application/pdf");
    expect_stored_as(fx, key, "?kind=sticker", webp, sizeof webp - 1, "sticker", "image/webp");

    itest_http_reply r;
    static const char text[] = "plain text says no type of its own\n";
    upload(fx, key, NULL, "application/octet-stream", text, sizeof text - 1, NULL, &r);
    expect_status(&r, 415);
    assert_non_null(strstr(r.body, "unsupported_media_type"));
    upload(fx, key, "?kind=sticker", "application/octet-stream", jpeg, len, NULL, &r);
    expect_status(&r, 415);
    /* past an image's 5 MB, within the 100 MB any kind may be before the
     * bytes say which: refused once they have said it */
    size_t big_len = 5 * 1000 * 1000 + 1;
    unsigned char *big = calloc(1, big_len);
    assert_non_null(big);
    memcpy(big, jpeg, len);
    upload(fx, key, NULL, "application/octet-stream", big, big_len, NULL, &r);
    expect_status(&r, 413);
    assert_non_null(strstr(r.body, "media_too_large"));
    free(big);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM chat_media WHERE workspace_id = %lld",
                               (long long)ws), 3);
    assert_int_equal(files_under(media_dir), 3);
    free(key);
}

static void crm_upload_quota(void **state)
{
    (void)state;
    agent_fx *fx = agent_test_fx;
    agent_fx_init(fx, "mediaquota");
    int64_t ws = camp_workspace(&fx->camp);
    unsigned char jpeg[3][256];
    size_t len[3];
    for (int i = 0; i < 3; i++) {
        char tag[64];
        snprintf(tag, sizeof tag, "%s-%d", fx->tag, i);
        len[i] = tiny_jpeg(jpeg[i], sizeof jpeg[i], tag);
    }
    size_t limit = len[0] + len[1] + len[2] / 2;
    char quota[96];
    snprintf(quota, sizeof quota, "BLAZZ_CRM_UNSENT_MEDIA_BYTES_PER_WORKSPACE=%zu", limit);
    start_ingest_with_media_and(fx, quota);
    char *key = agent_api_key(fx, ws);
    itest_http_reply r;
    for (int i = 0; i < 2; i++) {
        upload(fx, key, NULL, "image/jpeg", jpeg[i], len[i], NULL, &r);
        expect_status(&r, 201);
    }
    upload(fx, key, NULL, "image/jpeg", jpeg[2], len[2], NULL, &r);
    expect_status(&r, 409);
    json_t *doc = json_loads(r.body, 0, NULL);
    assert_string_equal(member(doc, "error"), "media_quota_exceeded");
    char named[64];
    snprintf(named, sizeof named, "limit of %zu", limit);
    if (!strstr(member(doc, "message"), named))
        fail_msg("the refusal does not name the limit (%s): %s", named, r.body);
    json_decref(doc);
    /* bytes it holds already are no new bytes */
    upload(fx, key, NULL, "image/jpeg", jpeg[0], len[0], NULL, &r);
    expect_status(&r, 201);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM chat_media WHERE workspace_id = %lld",
                               (long long)ws), 2);
    assert_int_equal(files_under(media_dir), 2);
    free(key);
}

static void sha256_hex(const void *data, size_t len, char out[BZ_SHA256_HEX_SIZE])
{
    assert_int_equal(bz_sha256_hex(data, len, out, NULL), BZ_OK);
}

/* The headers with which fx's gateway signs act's statement over session
 * and subject (wa/signature.h), first_line before them. */
static void gateway_signed(const ingest_fx *fx, bz_gateway_media_act act, const char *session,
                           const char *subject, const char *first_line,
                           itest_gateway_headers *h)
{
    char statement[BZ_GATEWAY_MEDIA_STATEMENT_MAX];
    size_t len = 0;
    assert_int_equal(bz_gateway_media_statement(act, session, subject, statement,
                                                sizeof statement, &len, NULL),
                     BZ_OK);
    assert_int_equal(
        itest_gateway_sign(fx->gateway, INGEST_FX_SECRET, statement, len, first_line, h), BZ_OK);
}

/* POST /v1/gateway/media?session=url_session, signed by fx's gateway over
 * (signed_session, signed_sha); sign 0: no signature at all. */
static void gateway_post(ingest_fx *fx, const char *url_session, const char *signed_session,
                         const char *signed_sha, int sign, const void *body, size_t len,
                         itest_http_reply *r)
{
    char url[512], sha_line[128];
    itest_gateway_headers h;
    gateway_signed(fx, BZ_GATEWAY_MEDIA_UPLOAD, signed_session, signed_sha,
                   "Content-Type: image/jpeg", &h);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/gateway/media?session=%s", fx->port,
             url_session);
    snprintf(sha_line, sizeof sha_line, "X-Blazz-Content-SHA256: %s", signed_sha);
    const char *unsigned_lines[] = {"Content-Type: image/jpeg", sha_line, NULL};
    const char *lines[8] = {0};
    for (size_t i = 0; i < 5; i++)
        lines[i] = h.lines[i];
    lines[5] = sha_line;
    itest_http("POST", url, body, len, sign ? lines : unsigned_lines, HTTP_MS, r);
}

static void gateway_upload(void **state)
{
    (void)state;
    ingest_fx fx;
    ingest_fx_setup(&fx);
    unsigned char jpeg[256];
    size_t len = tiny_jpeg(jpeg, sizeof jpeg, fx.prefix);
    char sha[65], other_sha[65];
    sha256_hex(jpeg, len, sha);
    sha256_hex(jpeg, len - 1, other_sha);
    itest_http_reply r;

    gateway_post(&fx, fx.session, fx.session, sha, 0, jpeg, len, &r);
    expect_status(&r, 401);
    gateway_post(&fx, fx.session, fx.deleted_session, sha, 1, jpeg, len, &r);
    expect_status(&r, 401);
    gateway_post(&fx, fx.session, fx.session, other_sha, 1, jpeg, len, &r);
    expect_status(&r, 400);
    assert_non_null(strstr(r.body, "content_sha256_mismatch"));
    assert_int_equal(itest_pg_int64f(fx.conn, "SELECT count(*) FROM chat_media WHERE "
                                               "workspace_id = %lld", (long long)fx.workspace),
                     0);

    char bad_name[256];
    snprintf(bad_name, sizeof bad_name, "%s&filename=%%FF.jpg", fx.session);
    gateway_post(&fx, bad_name, fx.session, sha, 1, jpeg, len, &r);
    expect_invalid_filename(&r);

    gateway_post(&fx, fx.session, fx.session, sha, 1, jpeg, len, &r);
    expect_status(&r, 201);
    json_t *doc = json_loads(r.body, 0, NULL);
    assert_string_equal(member(doc, "sha256"), sha);
    assert_int_equal(itest_pg_int64f(fx.conn, "SELECT count(*) FROM chat_media WHERE uuid = '%s' "
                                               "AND workspace_id = %lld AND source = 'webjs'",
                                     member(doc, "media_uuid"), (long long)fx.workspace),
                     1);
    json_decref(doc);
    ingest_fx_teardown(&fx);
}

static pid_t start_chat_sync(const ingest_fx *fx, char *log, size_t cap)
{
    char bin[1024], group[128];
    snprintf(bin, sizeof bin, "%s/bin/blazz-chat-sync", itest_env("BLAZZ_TEST_BIN_DIR"));
    snprintf(log, cap, "/tmp/%schat-sync.log", fx->prefix);
    snprintf(group, sizeof group, "blazz-chat-sync-%s", fx->prefix);
    setenv("BLAZZ_HTTP_LISTEN", "127.0.0.1:0", 1);
    setenv("BLAZZ_CONSUMER_GROUP_ID", group, 1);
    setenv("BLAZZ_KAFKA_SESSION_TIMEOUT_MS", "6000", 1);
    setenv("BLAZZ_OUTBOX_IDLE_POLL_MS", "100", 1);
    char *argv[] = {bin, NULL};
    return itest_spawn(argv, log);
}

/* POST /v1/events: an inbound image from a contact whose media names
 * stored (a uuid, or any text). */
static void post_image_event(ingest_fx *fx, const char *wam_id, const char *stored,
                             itest_http_reply *r)
{
    char json[1024];
    snprintf(json, sizeof json,
             "{\"session_id\":\"%s\",\"chat_type\":\"private\","
             "\"contact_phone\":\"6281234500001@c.us\",\"contact_name\":\"Budi\","
             "\"message_body\":\"\",\"message_type\":\"image\",\"timestamp\":1700000000,"
             "\"has_media\":true,\"message_id\":\"%s\",\"media\":{\"mime_type\":\"image/jpeg\","
             "\"caption\":\"foto\",\"stored_media_uuid\":\"%s\"}}",
             fx->session, wam_id, stored);
    *r = ingest_fx_post_json(fx, json);
}

/* The MESSAGE_CREATED of wam_id on chat.events (NULL until published; the
 * caller frees it). */
static Blazz__V1__ChatEvent *message_created(const ingest_fx *fx, const char *wam_id)
{
    char topic[160];
    snprintf(topic, sizeof topic, "%schat.events", fx->prefix);
    ingest_records rs = {0};
    ingest_records_read(topic, &rs);
    Blazz__V1__ChatEvent *found = NULL;
    for (size_t i = 0; i < rs.count && !found; i++) {
        Blazz__V1__ChatEvent *ev =
            blazz__v1__chat_event__unpack(NULL, rs.items[i].len, rs.items[i].value);
        if (ev && ev->kind == BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_MESSAGE_CREATED &&
            ev->chat && strcmp(ev->chat->wam_id, wam_id) == 0)
            found = ev;
        else if (ev)
            blazz__v1__chat_event__free_unpacked(ev, NULL);
    }
    ingest_records_free(&rs);
    return found;
}

static Blazz__V1__ChatEvent *wait_message_created(const ingest_fx *fx, const char *wam_id,
                                                  const char *log)
{
    for (int i = 0; i < 600; i++) {
        Blazz__V1__ChatEvent *ev = message_created(fx, wam_id);
        if (ev)
            return ev;
        itest_sleep_ms(200);
    }
    fail_msg("no message.created for %s on chat.events (see %s)", wam_id, log);
    return NULL;
}

/* GET /v1/gateway/media/{uuid}?session=, signed by fx's gateway over its
 * read statement (gateway_media.h), the signature's last digit changed
 * when forged; the answer awaited timeout_ms at most (status 0 past it). */
static void gateway_read_as(ingest_fx *fx, const char *uuid, int forged, long timeout_ms,
                            itest_http_reply *r)
{
    char url[512];
    itest_gateway_headers h;
    gateway_signed(fx, BZ_GATEWAY_MEDIA_READ, fx->session, uuid, "Accept: */*", &h);
    if (forged) {
        char *last = h.signature + strlen(h.signature) - 1;
        *last = *last == '0' ? '1' : '0';
    }
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/gateway/media/%s?session=%s", fx->port,
             uuid, fx->session);
    itest_http("GET", url, NULL, 0, h.lines, timeout_ms, r);
}

static void gateway_read(ingest_fx *fx, const char *uuid, itest_http_reply *r)
{
    gateway_read_as(fx, uuid, 0, HTTP_MS, r);
}

/* GET /v1/messages/{id} of the message wam_id, with headers: 200, an
 * inbound image whose media's stored_media_uuid is stored (NULL: null). */
static void expect_message_media(const ingest_fx *fx, const char *const *headers,
                                 const char *wam_id, const char *stored)
{
    char *id = itest_pg_textf(fx->conn, "SELECT uuid FROM chats WHERE wam_id = '%s'", wam_id);
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/messages/%s", fx->port, id);
    free(id);
    itest_http_reply r;
    itest_http("GET", url, NULL, 0, headers, HTTP_MS, &r);
    expect_status(&r, 200);
    json_t *doc = json_loads(r.body, 0, NULL);
    assert_string_equal(member(doc, "direction"), "inbound");
    json_t *media = json_object_get(doc, "media");
    assert_true(json_is_object(media));
    assert_string_equal(json_string_value(json_object_get(media, "mime_type")), "image/jpeg");
    json_t *uuid = json_object_get(media, "stored_media_uuid");
    if (stored)
        assert_string_equal(json_string_value(uuid), stored);
    else
        assert_true(json_is_null(uuid));
    json_decref(doc);
}

static void gateway_message_links_media(void **state)
{
    (void)state;
    ingest_fx fx;
    ingest_fx_setup(&fx);
    char sync_log[256], tag[96], linked[96], unlinked[96];
    pid_t chat_sync = start_chat_sync(&fx, sync_log, sizeof sync_log);
    unsigned char jpeg[256];
    snprintf(tag, sizeof tag, "%s-event", fx.prefix);
    size_t len = tiny_jpeg(jpeg, sizeof jpeg, tag);
    char sha[65];
    sha256_hex(jpeg, len, sha);
    itest_http_reply r;
    char bad_name[256];
    snprintf(bad_name, sizeof bad_name, "%s&filename=%%FF.jpg", fx.session);
    gateway_post(&fx, bad_name, fx.session, sha, 1, jpeg, len, &r);
    expect_invalid_filename(&r);

    gateway_post(&fx, fx.session, fx.session, sha, 1, jpeg, len, &r);
    expect_status(&r, 201);
    json_t *doc = json_loads(r.body, 0, NULL);
    char uuid[BZ_UUID_STR_SIZE];
    snprintf(uuid, sizeof uuid, "%s", member(doc, "media_uuid"));
    json_decref(doc);
    /* a row of the other workspace, as its own gateway's upload would be */
    char *foreign = itest_pg_textf(fx.conn,
                                   "INSERT INTO chat_media (workspace_id, path, location, type, "
                                   "kind, size, sha256, source) VALUES (%lld, 'ws/other', "
                                   "'local', 'image/jpeg', 'image', 1, repeat('a', 64), "
                                   "'webjs') RETURNING uuid::text",
                                   (long long)fx.other_workspace);

    post_image_event(&fx, "false_6281234500001@c.us_BAD", "not-a-uuid", &r);
    expect_status(&r, 400);
    assert_non_null(strstr(r.body, "media.stored_media_uuid"));
    snprintf(linked, sizeof linked, "false_6281234500001@c.us_%s_L", fx.prefix);
    snprintf(unlinked, sizeof unlinked, "false_6281234500001@c.us_%s_U", fx.prefix);
    post_image_event(&fx, linked, uuid, &r);
    expect_status(&r, 202);
    post_image_event(&fx, unlinked, foreign, &r);
    expect_status(&r, 202);

    Blazz__V1__ChatEvent *ev = wait_message_created(&fx, linked, sync_log);
    assert_non_null(ev->chat->media);
    assert_string_equal(ev->chat->media->stored_media_uuid, uuid);
    blazz__v1__chat_event__free_unpacked(ev, NULL);
    ev = wait_message_created(&fx, unlinked, sync_log);
    assert_non_null(ev->chat->media);
    assert_string_equal(ev->chat->media->stored_media_uuid, "");
    blazz__v1__chat_event__free_unpacked(ev, NULL);

    assert_int_equal(itest_pg_int64f(fx.conn,
                                     "SELECT count(*) FROM chats c JOIN chat_media m ON m.id = "
                                     "c.media_id WHERE c.wam_id = '%s' AND m.uuid = '%s' AND "
                                     "c.workspace_id = %lld",
                                     linked, uuid, (long long)fx.workspace),
                     1);
    assert_int_equal(itest_pg_int64f(fx.conn,
                                     "SELECT count(*) FROM chats WHERE wam_id = '%s' AND "
                                     "media_id IS NULL AND metadata #>> '{media,link_error}' = "
                                     "'unknown_media' AND metadata #>> "
                                     "'{media,stored_media_uuid}' = '%s'",
                                     unlinked, foreign),
                     1);

    /* the CRM's link to it gives the very bytes the gateway uploaded */
    char err_log[300], url[512], auth[300];
    snprintf(err_log, sizeof err_log, "/tmp/%sblazzctl.log", fx.prefix);
    char *key = itest_api_key(fx.workspace, err_log);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/media/%s", fx.port, uuid);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
    const char *headers[] = {auth, NULL};
    itest_http("GET", url, NULL, 0, headers, HTTP_MS, &r);
    expect_status(&r, 200);
    doc = json_loads(r.body, 0, NULL);
    snprintf(url, sizeof url, "%s", member(doc, "url"));
    json_decref(doc);
    itest_http("GET", url, NULL, 0, NULL, HTTP_MS, &r);
    expect_bytes(&r, jpeg, len);
    /* the CRM reads the inbound messages with their media: the linked one
     * with the uuid of its bytes, the other workspace's uuid never */
    expect_message_media(&fx, headers, linked, uuid);
    expect_message_media(&fx, headers, unlinked, NULL);
    /* the gateway reads the bytes back (an outbound message's media), its
     * own workspace's only */
    gateway_read(&fx, uuid, &r);
    expect_bytes(&r, jpeg, len);
    gateway_read(&fx, foreign, &r);
    expect_status(&r, 404);
    assert_non_null(strstr(r.body, "unknown_media"));
    free(key);
    free(foreign);
    itest_terminate(&chat_sync, "blazz-chat-sync", sync_log);
    ingest_fx_teardown(&fx);
}

/* "Authorization: Bearer <a new API key of workspace>" into line. */
static void auth_line_of(ingest_fx *fx, int64_t workspace, char *line, size_t cap)
{
    char err_log[300];
    snprintf(err_log, sizeof err_log, "/tmp/%sblazzctl.log", fx->prefix);
    char *key = itest_api_key(workspace, err_log);
    snprintf(line, cap, "Authorization: Bearer %s", key);
    free(key);
}

/* The CRM's link to media uuid (a key of workspace), opened: its bytes. */
static void open_through_link(ingest_fx *fx, int64_t workspace, const char *uuid,
                              itest_http_reply *r)
{
    char url[512], auth[300];
    auth_line_of(fx, workspace, auth, sizeof auth);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/media/%s", fx->port, uuid);
    const char *headers[] = {auth, NULL};
    itest_http("GET", url, NULL, 0, headers, HTTP_MS, r);
    expect_status(r, 200);
    json_t *doc = json_loads(r->body, 0, NULL);
    snprintf(url, sizeof url, "%s", member(doc, "url"));
    json_decref(doc);
    itest_http("GET", url, NULL, 0, NULL, HTTP_MS, r);
    expect_status(r, 200);
}

/* blazz-gateway-sim, http mode, as fx's gateway with its key, run to its
 * end; its status file is status_path. */
static void run_simulator(ingest_fx *fx, const char *tag, const char *rate, const char *events,
                          const char *status_path)
{
    char bin[1024], url[160], key_path[300], log_path[300];
    snprintf(bin, sizeof bin, "%s/bin/blazz-gateway-sim", itest_env("BLAZZ_TEST_BIN_DIR"));
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/events", fx->port);
    snprintf(key_path, sizeof key_path, "/tmp/%ssim.key", fx->prefix);
    snprintf(log_path, sizeof log_path, "/tmp/%ssim.log", fx->prefix);
    FILE *k = fopen(key_path, "w");
    assert_non_null(k);
    fputs(INGEST_FX_SECRET, k);
    fclose(k);
    char *argv[] = {bin, "--mode", "http", "--ingest-url", url, "--gateway", fx->gateway,
                    "--key-file", key_path, "--rate", (char *)rate, "--events", (char *)events,
                    "--duration", "120", "--seed", "36", "--workspaces", "1",
                    "--accounts-per-workspace", "1", "--history-chats", "0", "--media-bytes",
                    "1", "--tag", (char *)tag, "--status-file", (char *)status_path, NULL};
    if (itest_wait(itest_spawn(argv, log_path)) != 0)
        fail_msg("blazz-gateway-sim failed (see %s)", log_path);
    remove(key_path);
}

/* §16.4 with the simulator as the gateway: its images and voice notes are
 * real PNG and Ogg Opus files, uploaded before their events, each event
 * naming its upload; every one is stored once and linked, and the CRM's
 * link opens the very bytes. */
static void simulator_delivers_real_media(void **state)
{
    (void)state;
    ingest_fx fx;
    ingest_fx_setup(&fx);
    char sync_log[256], tag[32];
    pid_t chat_sync = start_chat_sync(&fx, sync_log, sizeof sync_log);
    snprintf(tag, sizeof tag, "m%d", itest_random(100000, 999999));
    char status[300];
    snprintf(status, sizeof status, "/tmp/%ssim.status", fx.prefix);
    /* the world's account is made as the run starts: newer than ingest's
     * directory of sessions, its uploads are taken at once all the same */
    run_simulator(&fx, tag, "200", "600", status);
    int64_t ws = itest_pg_int64f(fx.conn, "SELECT id FROM workspaces WHERE metadata->>"
                                          "'sim_tag' = '%s'", tag);
    int64_t uploaded = itest_status_value(status, "media_uploaded");
    assert_int_equal(itest_status_value(status, "media_upload_failed"), 0);
    assert_true(uploaded >= 10);
    remove(status);

    /* every upload stored once, every message naming one linked to it */
    assert_int_equal(itest_pg_int64f(fx.conn, "SELECT count(*) FROM chat_media WHERE "
                                               "workspace_id = %lld AND source = 'webjs' AND "
                                               "type IN ('image/png', 'audio/ogg')",
                                     (long long)ws),
                     uploaded);
    int64_t linked = 0;
    for (int i = 0; i < 600 && linked < uploaded; i++) {
        itest_sleep_ms(200);
        linked = itest_pg_int64f(fx.conn, "SELECT count(*) FROM chats WHERE workspace_id = "
                                          "%lld AND media_id IS NOT NULL", (long long)ws);
    }
    if (linked != uploaded)
        fail_msg("%lld of %lld uploads linked to their messages (see %s)", (long long)linked,
                 (long long)uploaded, sync_log);
    assert_int_equal(itest_pg_int64f(fx.conn,
                                     "SELECT count(*) FROM chats c JOIN chat_media m ON m.id = "
                                     "c.media_id WHERE c.workspace_id = %lld AND ((c.metadata->>"
                                     "'message_type' = 'image' AND m.type = 'image/png') OR "
                                     "(c.metadata->>'message_type' = 'voice' AND m.type = "
                                     "'audio/ogg'))",
                                     (long long)ws),
                     uploaded);

    /* one photo and one voice note, opened through the CRM's link */
    const char *types[] = {"image/png", "audio/ogg"};
    const char *magic[] = {"\x89PNG\r\n\x1a\n", "OggS"};
    itest_http_reply r = {0};
    for (int t = 0; t < 2; t++) {
        char *row = itest_pg_textf(fx.conn,
                                   "SELECT m.uuid::text || ' ' || m.sha256 FROM chats c JOIN "
                                   "chat_media m ON m.id = c.media_id WHERE c.workspace_id = "
                                   "%lld AND m.type = '%s' ORDER BY c.id LIMIT 1",
                                   (long long)ws, types[t]);
        char uuid[BZ_UUID_STR_SIZE], want[65], got[65];
        assert_int_equal(sscanf(row, "%36s %64s", uuid, want), 2);
        open_through_link(&fx, ws, uuid, &r);
        assert_memory_equal(r.body, magic[t], strlen(magic[t]));
        sha256_hex(r.body, r.len, got);
        assert_string_equal(got, want);
        free(row);
    }
    itest_terminate(&chat_sync, "blazz-chat-sync", sync_log);
    ingest_fx_teardown(&fx);
}

/* POST /v1/media of a JPEG with an API key of workspace, as an agent's
 * attachment is uploaded: its uuid into uuid. */
static void crm_upload_jpeg(ingest_fx *fx, int64_t workspace, const void *jpeg, size_t len,
                            char uuid[BZ_UUID_STR_SIZE])
{
    char url[160], auth[300];
    auth_line_of(fx, workspace, auth, sizeof auth);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/media?filename=photo.jpg", fx->port);
    const char *headers[] = {auth, "Content-Type: image/jpeg", NULL};
    itest_http_reply r;
    itest_http("POST", url, jpeg, len, headers, HTTP_MS, &r);
    expect_status(&r, 201);
    json_t *doc = json_loads(r.body, 0, NULL);
    snprintf(uuid, BZ_UUID_STR_SIZE, "%s", member(doc, "media_uuid"));
    json_decref(doc);
}

/* The gateway's read of uuid (an S3 store's): 307 to a presigned GET of
 * the bucket's object ws/<workspace>/<sha> on the stack's S3 server, into
 * link. */
static void expect_sent_to_bucket(ingest_fx *fx, const char *uuid, const char *sha, char *link,
                                  size_t cap)
{
    itest_http_reply r;
    gateway_read(fx, uuid, &r);
    expect_status(&r, 307);
    const char *endpoint = itest_env("BLAZZ_MEDIA_S3_ENDPOINT");
    char object[256];
    snprintf(object, sizeof object, "/%s/ws/%lld/%s?", itest_env("BLAZZ_MEDIA_S3_BUCKET"),
             (long long)fx->workspace, sha);
    if (strncmp(r.location, endpoint, strlen(endpoint)) != 0 || !strstr(r.location, object) ||
        !strstr(r.location, "X-Amz-Signature="))
        fail_msg("the read of %s was sent to \"%s\", not a presigned GET of %s%s", uuid,
                 r.location, endpoint, object);
    snprintf(link, cap, "%s", r.location);
}

/* §16.4 on an S3 store: an agent's image, uploaded by the CRM, is read by
 * the gateway through the presigned link its read is sent to, the bytes
 * intact (with no credentials, and with the gateway's own headers, which
 * a client following the redirect sends along); another workspace's
 * uuid -> 404; a forged signature -> 401 with the tables a worker's
 * query reads locked, so that no query was asked (a signed read, under
 * the same lock, gets no answer). */
static void gateway_reads_from_s3(void **state)
{
    (void)state;
    ingest_fx fx;
    /* this ingest's store only: the process inherits the variable */
    setenv("BLAZZ_MEDIA_LOCATION", "s3", 1);
    ingest_fx_setup(&fx);
    unsetenv("BLAZZ_MEDIA_LOCATION");
    char tag[96], uuid[BZ_UUID_STR_SIZE], foreign[BZ_UUID_STR_SIZE], sha[65], link[2048];
    unsigned char jpeg[256], other_jpeg[256];
    snprintf(tag, sizeof tag, "%s-s3", fx.prefix);
    size_t len = tiny_jpeg(jpeg, sizeof jpeg, tag);
    snprintf(tag, sizeof tag, "%s-s3-other", fx.prefix);
    size_t other_len = tiny_jpeg(other_jpeg, sizeof other_jpeg, tag);
    sha256_hex(jpeg, len, sha);
    crm_upload_jpeg(&fx, fx.workspace, jpeg, len, uuid);
    crm_upload_jpeg(&fx, fx.other_workspace, other_jpeg, other_len, foreign);
    assert_int_equal(itest_pg_int64f(fx.conn, "SELECT count(*) FROM chat_media WHERE uuid IN "
                                              "('%s', '%s') AND location = 's3'",
                                     uuid, foreign),
                     2);

    expect_sent_to_bucket(&fx, uuid, sha, link, sizeof link);
    itest_http_reply r;
    itest_http("GET", link, NULL, 0, NULL, HTTP_MS, &r);
    expect_bytes(&r, jpeg, len);
    itest_gateway_headers h;
    gateway_signed(&fx, BZ_GATEWAY_MEDIA_READ, fx.session, uuid, "Accept: */*", &h);
    itest_http("GET", link, NULL, 0, h.lines, HTTP_MS, &r);
    expect_bytes(&r, jpeg, len);

    gateway_read(&fx, foreign, &r);
    expect_status(&r, 404);
    assert_non_null(strstr(r.body, "unknown_media"));
    assert_string_equal(r.location, "");

    itest_pg_exec(fx.conn, "BEGIN");
    itest_pg_exec(fx.conn, "LOCK TABLE whatsapp_accounts, chat_media IN ACCESS EXCLUSIVE MODE");
    const char *forged_reads[] = {uuid, foreign};
    for (int i = 0; i < 2; i++) {
        gateway_read_as(&fx, forged_reads[i], 1, 10000, &r);
        expect_status(&r, 401);
        assert_non_null(strstr(r.body, "signature_mismatch"));
    }
    gateway_read_as(&fx, uuid, 0, 2000, &r);
    assert_int_equal(r.status, 0);
    itest_pg_exec(fx.conn, "ROLLBACK");
    ingest_fx_teardown(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(crm_upload_and_read, agent_test_setup,
                                        agent_test_teardown),
        cmocka_unit_test_setup_teardown(crm_upload_type_from_bytes, agent_test_setup,
                                        agent_test_teardown),
        cmocka_unit_test_setup_teardown(crm_upload_quota, agent_test_setup,
                                        agent_test_teardown),
        cmocka_unit_test_setup_teardown(crm_upload_refusals, agent_test_setup,
                                        agent_test_teardown),
        /* last: the ingest fixture sets the media environment in this process */
        cmocka_unit_test(gateway_upload),
        cmocka_unit_test(gateway_message_links_media),
        cmocka_unit_test(simulator_delivers_real_media),
        cmocka_unit_test(gateway_reads_from_s3),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
