/*
 * graph_media.c - graph_test_server's media: what Meta's Cloud API
 * documents for receiving media ("Retrieve media URL", "Download media"),
 * including its unhelpful parts, for the media fetcher's tests.
 *
 *   GET /{version}/{media-id}, Bearer token of the account: 200
 *     {"messaging_product": "whatsapp", "url", "mime_type", "sha256" (hex
 *     of the bytes), "file_size", "id"}; a media id nobody registered: 400
 *     GraphMethodException code 100 (subcode 33, "Unsupported get
 *     request"); a bad token: 401 code 190.
 *   GET {url}: the bytes, only with the same kind of Bearer token (401
 *     without); a URL handed out more than --media-url-ttl-ms ago (Meta:
 *     five minutes) answers 404, so the client must ask for a new one.
 *   GET /_media/counts (not Meta's API): {"<media-id>": {"asks",
 *     "downloads", "served"}}: metadata requests, download requests, and
 *     downloads answered with the bytes, for a test to count re-fetches.
 *
 * The registry (--media F) is re-read when the file changes: lines
 * "<media_id> <mime_type> <fault> <file>", fault one of
 *   none       served as asked;
 *   transient  the first download answers 500;
 *   drop       the first download's connection is closed, no answer;
 *   badsha     the metadata's sha256 is not the bytes' (Meta's digest
 *              disagreeing with what its URL serves);
 *   expired    the first URL handed out is already expired.
 */
#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/clock.h"
#include "graph_media.h"

#define GM_MAX 8192
#define GM_FILE_MAX (32L * 1024 * 1024)

typedef struct gm_media {
    char id[128], mime[128], fault[16], path[512];
    long asks, downloads, served;
    int handed_out;    /* URLs handed out so far */
    int faulted;       /* the first download's fault was played */
} gm_media;

typedef struct gm_url {
    int media; /* index */
    int64_t expires_ms;
} gm_url;

static struct {
    pthread_mutex_t lock;
    const char *path;
    struct timespec mtime;
    int64_t ttl_ms;
    int port;
    gm_media *media;
    int n;
    gm_url *urls;
    size_t nurls, cap;
} gm = {.lock = PTHREAD_MUTEX_INITIALIZER, .ttl_ms = 300000};

int gm_option(const char *name, const char *value)
{
    if (strcmp(name, "--media") == 0) {
        gm.path = value;
        return 1;
    }
    if (strcmp(name, "--media-url-ttl-ms") == 0) {
        char *end = NULL;
        long long v = strtoll(value, &end, 10);
        gm.ttl_ms = v;
        return end && !*end && v >= 0;
    }
    return 0;
}

void gm_set_port(int port)
{
    gm.port = port;
}

static gm_media *find_locked(const char *id)
{
    for (int i = 0; gm.media && i < gm.n; i++)
        if (strcmp(gm.media[i].id, id) == 0)
            return &gm.media[i];
    return NULL;
}

/* New lines of the registry; media already known keep their counts. */
static void load_locked(void)
{
    struct stat st;
    if (!gm.path || stat(gm.path, &st) != 0 ||
        (st.st_mtim.tv_sec == gm.mtime.tv_sec && st.st_mtim.tv_nsec == gm.mtime.tv_nsec))
        return;
    FILE *f = fopen(gm.path, "r");
    if (!f)
        return;
    gm.mtime = st.st_mtim;
    if (!gm.media)
        gm.media = calloc(GM_MAX, sizeof *gm.media);
    gm_media m;
    while (gm.media && gm.n < GM_MAX &&
           fscanf(f, "%127s %127s %15s %511s", m.id, m.mime, m.fault, m.path) == 4) {
        if (find_locked(m.id))
            continue;
        gm_media *slot = &gm.media[gm.n++];
        memset(slot, 0, sizeof *slot);
        memcpy(slot->id, m.id, sizeof m.id);
        memcpy(slot->mime, m.mime, sizeof m.mime);
        memcpy(slot->fault, m.fault, sizeof m.fault);
        memcpy(slot->path, m.path, sizeof m.path);
    }
    fclose(f);
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result graph_error(struct MHD_Connection *c, unsigned status, long code,
                                   long subcode, const char *type, const char *message)
{
    return send_json(c, status,
                     json_pack("{s:{s:s, s:s, s:I, s:I, s:s}}", "error", "message", message,
                               "type", type, "code", (json_int_t)code, "error_subcode",
                               (json_int_t)subcode, "fbtrace_id", "Atest"));
}

/* The whole file (at most GM_FILE_MAX); *len its size. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(GM_FILE_MAX);
    *len = buf ? fread(buf, 1, GM_FILE_MAX, f) : 0;
    fclose(f);
    return buf;
}

static void sha256_hex(const char *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* GET /{version}/{media-id}. */
static enum MHD_Result describe(struct MHD_Connection *c, const char *id)
{
    pthread_mutex_lock(&gm.lock);
    load_locked();
    gm_media *m = find_locked(id);
    if (!m) {
        pthread_mutex_unlock(&gm.lock);
        char text[400];
        snprintf(text, sizeof text,
                 "Unsupported get request. Object with ID '%s' does not exist, cannot be loaded "
                 "due to missing permissions, or does not support this operation.", id);
        return graph_error(c, 400, 100, 33, "GraphMethodException", text);
    }
    m->asks++;
    int expired_now = strcmp(m->fault, "expired") == 0 && m->handed_out == 0;
    m->handed_out++;
    if (gm.nurls == gm.cap) {
        size_t cap = gm.cap ? gm.cap * 2 : 1024;
        gm_url *grown = realloc(gm.urls, cap * sizeof *grown);
        if (grown) {
            gm.urls = grown;
            gm.cap = cap;
        }
    }
    size_t handle = gm.nurls;
    if (gm.nurls < gm.cap)
        gm.urls[gm.nurls++] = (gm_url){.media = (int)(m - gm.media),
                                       .expires_ms = expired_now ? 0 : bz_wall_ms() + gm.ttl_ms};
    gm_media copy = *m;
    pthread_mutex_unlock(&gm.lock);
    size_t len = 0;
    char *bytes = read_file(copy.path, &len), sha[65];
    if (!bytes)
        return graph_error(c, 500, 2, 0, "OAuthException", "media file unreadable");
    sha256_hex(bytes, len, sha);
    free(bytes);
    if (strcmp(copy.fault, "badsha") == 0)
        sha[0] = sha[0] == '0' ? '1' : '0';
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/_media_download/%zu?mid=%s", gm.port, handle,
             copy.id);
    return send_json(c, 200,
                     json_pack("{s:s, s:s, s:s, s:s, s:I, s:s}", "messaging_product", "whatsapp",
                               "url", url, "mime_type", copy.mime, "sha256", sha, "file_size",
                               (json_int_t)len, "id", copy.id));
}

/* GET /_media_download/{handle}: the fault, if any is due; else 1 to serve. */
static int download_allowed(size_t handle, gm_media *out, const char **fault)
{
    *fault = NULL;
    pthread_mutex_lock(&gm.lock);
    int ok = handle < gm.nurls;
    if (ok) {
        gm_url *u = &gm.urls[handle];
        gm_media *m = &gm.media[u->media];
        m->downloads++;
        if (bz_wall_ms() >= u->expires_ms)
            *fault = "expired";
        else if (!m->faulted &&
                 (strcmp(m->fault, "transient") == 0 || strcmp(m->fault, "drop") == 0)) {
            m->faulted = 1;
            *fault = m->fault;
        } else {
            m->served++;
        }
        *out = *m;
    }
    pthread_mutex_unlock(&gm.lock);
    return ok;
}

static enum MHD_Result download(struct MHD_Connection *c, size_t handle)
{
    gm_media m;
    const char *fault = NULL;
    if (!download_allowed(handle, &m, &fault))
        return graph_error(c, 404, 0, 0, "NotFound", "no such URL");
    if (fault && strcmp(fault, "drop") == 0)
        return MHD_NO; /* the connection is closed without an answer */
    if (fault && strcmp(fault, "transient") == 0)
        return graph_error(c, 500, 2, 0, "OAuthException", "Service temporarily unavailable");
    if (fault)
        return graph_error(c, 404, 0, 0, "NotFound", "URL expired");
    size_t len = 0;
    char *bytes = read_file(m.path, &len);
    if (!bytes)
        return graph_error(c, 500, 2, 0, "OAuthException", "media file unreadable");
    struct MHD_Response *r = MHD_create_response_from_buffer(len, bytes, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", m.mime);
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result counts(struct MHD_Connection *c)
{
    json_t *doc = json_object();
    pthread_mutex_lock(&gm.lock);
    for (int i = 0; i < gm.n; i++)
        json_object_set_new(doc, gm.media[i].id,
                            json_pack("{s:I, s:I, s:I}", "asks", (json_int_t)gm.media[i].asks,
                                      "downloads", (json_int_t)gm.media[i].downloads, "served",
                                      (json_int_t)gm.media[i].served));
    pthread_mutex_unlock(&gm.lock);
    return send_json(c, 200, doc);
}

int gm_route(struct MHD_Connection *c, const char *url, gm_token_check token_ok,
             enum MHD_Result *out)
{
    char version[32], id[128], rest[8];
    size_t handle = 0;
    if (strcmp(url, "/_media/counts") == 0) {
        *out = counts(c);
        return 1;
    }
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    static const char download_path[] = "/_media_download/";
    if (strncmp(url, download_path, sizeof download_path - 1) == 0) {
        handle = (size_t)strtoul(url + sizeof download_path - 1, NULL, 10);
        *out = token_ok(NULL, auth) ? download(c, handle)
                                    : graph_error(c, 401, 190, 0, "OAuthException",
                                                  "Error validating access token");
        return 1;
    }
    if (sscanf(url, "/%31[^/]/%127[^/]%7s", version, id, rest) != 2 || !gm.path)
        return 0;
    *out = token_ok(NULL, auth) ? describe(c, id)
                                : graph_error(c, 401, 190, 0, "OAuthException",
                                              "Error validating access token: Session has "
                                              "expired");
    return 1;
}

void gm_free(void)
{
    free(gm.media);
    free(gm.urls);
}
