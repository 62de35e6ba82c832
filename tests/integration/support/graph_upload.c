/*
 * graph_upload.c - the Graph test server's media uploads (graph_upload.h):
 * POST /{version}/{phone_number_id}/media as the Cloud API documents it,
 * and the check that a message's media id is one the server issued.
 *
 * Meta's "Upload media": a multipart/form-data body with the parts file
 * (the bytes, with their Content-Type), type (the MIME type) and
 * messaging_product ("whatsapp"); the answer {"id": "<media id>"}. Refused
 * as Meta refuses (400, code 131053 "Media upload error", the reason in
 * error_data.details): a type Meta does not take, a file part whose type
 * differs from `type`, a file over the type's limit (image 5 MB, audio and
 * video 16 MB, document 100 MB, sticker 500 KB), no file; code 100 for a
 * missing or wrong messaging_product. Ids are kept with the number that
 * uploaded them: a message naming an id this number did not upload is
 * refused (400, code 100, "(#100) Invalid parameter"), as Meta refuses an
 * id it does not know. The parser reads what libcurl and common clients
 * write (CRLF, a boundary parameter, quoted or not); it is a test server's.
 */
#include "graph_upload.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_UPLOADS 4096

static struct {
    pthread_mutex_t lock;
    char id[MAX_UPLOADS][32], pnid[MAX_UPLOADS][64];
    size_t n;
} uploads = {.lock = PTHREAD_MUTEX_INITIALIZER};

typedef struct part {
    char name[64], type[128];
    const char *data;
    size_t len;
    int present;
} part;

/* Meta's supported media types and their limits. */
static const struct {
    const char *type;
    size_t max;
} accepted[] = {
    {"image/jpeg", 5u << 20},        {"image/png", 5u << 20},
    {"audio/aac", 16u << 20},        {"audio/amr", 16u << 20},
    {"audio/mpeg", 16u << 20},       {"audio/mp4", 16u << 20},
    {"audio/ogg", 16u << 20},        {"video/mp4", 16u << 20},
    {"video/3gpp", 16u << 20},       {"image/webp", 500u << 10},
    {"text/plain", 100u << 20},      {"application/pdf", 100u << 20},
    {"application/vnd.ms-powerpoint", 100u << 20}, {"application/msword", 100u << 20},
    {"application/vnd.ms-excel", 100u << 20},
    {"application/vnd.openxmlformats-officedocument.wordprocessingml.document", 100u << 20},
    {"application/vnd.openxmlformats-officedocument.presentationml.presentation", 100u << 20},
    {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", 100u << 20},
};

int gts_upload_path(const char *url, char *pnid, size_t cap)
{
    char version[32], id[64], tail[16];
    if (sscanf(url, "/%31[^/]/%63[0-9]/%15s", version, id, tail) != 3 || strcmp(tail, "media") != 0)
        return 0;
    snprintf(pnid, cap, "%s", id);
    return 1;
}

static const void *find_bytes(const char *hay, size_t n, const char *needle, size_t k)
{
    for (size_t i = 0; k && i + k <= n; i++)
        if (memcmp(hay + i, needle, k) == 0)
            return hay + i;
    return NULL;
}

/* The boundary parameter of a multipart/form-data Content-Type. */
static int boundary_of(const char *content_type, char *out, size_t cap)
{
    if (!content_type || strncasecmp(content_type, "multipart/form-data", 19) != 0)
        return 0;
    const char *b = strstr(content_type, "boundary=");
    if (!b)
        return 0;
    b += 9;
    size_t n = *b == '"' ? strcspn(++b, "\"") : strcspn(b, "; \t");
    if (n == 0 || n + 3 > cap)
        return 0;
    snprintf(out, cap, "--%.*s", (int)n, b);
    return 1;
}

/* One part's headers (name, Content-Type) and body. */
static void read_part(const char *p, size_t len, part *out)
{
    memset(out, 0, sizeof *out);
    const char *end = find_bytes(p, len, "\r\n\r\n", 4);
    if (!end)
        return;
    size_t hlen = (size_t)(end - p);
    char headers[1024];
    snprintf(headers, sizeof headers, "%.*s", (int)(hlen < 1023 ? hlen : 1023), p);
    const char *name = strstr(headers, "name=\"");
    if (name)
        snprintf(out->name, sizeof out->name, "%.*s", (int)strcspn(name + 6, "\""), name + 6);
    const char *type = strcasestr(headers, "Content-Type:");
    if (type) {
        type += 13;
        type += strspn(type, " ");
        snprintf(out->type, sizeof out->type, "%.*s", (int)strcspn(type, "\r\n;"), type);
    }
    out->data = end + 4;
    out->len = len - hlen - 4;
    out->present = 1;
}

/* The parts file, type and messaging_product of body. */
static int read_form(const char *content_type, const char *body, size_t len, part *file,
                     part *type, part *product)
{
    char boundary[256];
    if (!body || !boundary_of(content_type, boundary, sizeof boundary))
        return 0;
    size_t blen = strlen(boundary);
    const char *p = find_bytes(body, len, boundary, blen);
    while (p) {
        const char *start = p + blen;
        if ((size_t)(body + len - start) >= 2 && memcmp(start, "--", 2) == 0)
            break; /* the closing boundary */
        start += 2; /* CRLF after the boundary */
        if (start > body + len)
            break;
        const char *next = find_bytes(start, (size_t)(body + len - start), boundary, blen);
        if (!next)
            break;
        part pt;
        read_part(start, (size_t)(next - start) - 2, &pt); /* CRLF before the boundary */
        part *slot = strcmp(pt.name, "file") == 0 ? file
                     : strcmp(pt.name, "type") == 0 ? type
                     : strcmp(pt.name, "messaging_product") == 0 ? product : NULL;
        if (slot && pt.present)
            *slot = pt;
        p = next;
    }
    return 1;
}

static size_t limit_of(const char *type)
{
    for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++)
        if (strcasecmp(accepted[i].type, type) == 0)
            return accepted[i].max;
    return 0;
}

static int refuse(gts_refusal *r, unsigned status, long code, const char *message,
                  const char *details)
{
    r->status = status;
    r->code = code;
    snprintf(r->message, sizeof r->message, "%s", message);
    snprintf(r->details, sizeof r->details, "%s", details);
    return 0;
}

int gts_upload(const char *pnid, const char *content_type, const char *body, size_t len,
               char *id, size_t cap, gts_refusal *r)
{
    part file = {0}, type = {0}, product = {0};
    if (!read_form(content_type, body, len, &file, &type, &product))
        return refuse(r, 400, 100, "(#100) Invalid parameter", "a multipart/form-data body");
    char declared[128], mp[32];
    snprintf(declared, sizeof declared, "%.*s", (int)type.len, type.present ? type.data : "");
    snprintf(mp, sizeof mp, "%.*s", (int)product.len, product.present ? product.data : "");
    if (strcmp(mp, "whatsapp") != 0)
        return refuse(r, 400, 100, "(#100) Invalid parameter",
                      "messaging_product must be whatsapp");
    size_t max = limit_of(declared);
    if (!file.present || file.len == 0)
        return refuse(r, 400, 131053, "Media upload error", "the file part is missing");
    if (!max)
        return refuse(r, 400, 131053, "Media upload error", "unsupported media type");
    if (strcasecmp(file.type, declared) != 0)
        return refuse(r, 400, 131053, "Media upload error",
                      "the file's type differs from the declared type");
    if (file.len > max)
        return refuse(r, 400, 131053, "Media upload error", "the file is over its type's limit");
    pthread_mutex_lock(&uploads.lock);
    int ok = uploads.n < MAX_UPLOADS;
    if (ok) {
        snprintf(uploads.id[uploads.n], sizeof uploads.id[0], "77%014zu", uploads.n + 1);
        snprintf(uploads.pnid[uploads.n], sizeof uploads.pnid[0], "%s", pnid);
        snprintf(id, cap, "%s", uploads.id[uploads.n]);
        uploads.n++;
    }
    pthread_mutex_unlock(&uploads.lock);
    if (!ok)
        return refuse(r, 500, 2, "Service temporarily unavailable", "too many uploads");
    return 1;
}

static int issued_to(const char *pnid, const char *id)
{
    pthread_mutex_lock(&uploads.lock);
    int found = 0;
    for (size_t i = 0; !found && i < uploads.n; i++)
        found = strcmp(uploads.id[i], id) == 0 && strcmp(uploads.pnid[i], pnid) == 0;
    pthread_mutex_unlock(&uploads.lock);
    return found;
}

int gts_media_id_refused(const char *pnid, json_t *doc, const char *kind, gts_refusal *r)
{
    json_t *media = json_object_get(doc, kind);
    const char *id = json_string_value(json_object_get(media, "id"));
    if (!id || issued_to(pnid, id))
        return 0;
    refuse(r, 400, 100, "(#100) Invalid parameter",
           "the media id is not a media this number uploaded");
    return 1;
}
