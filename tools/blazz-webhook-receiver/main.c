/*
 * main.c - blazz-webhook-receiver: a webhook receiver for tests and benches.
 *
 * An HTTP server (libmicrohttpd, one thread per connection so a hanging or
 * slow answer holds only its own connection) on a loopback address. What it
 * answers is chosen by the request path, so one receiver plays many
 * endpoints at once:
 *
 *   /ok/...              200
 *   /status/NNN/...      NNN (e.g. /status/400/x, /status/503/x)
 *   /gone/...            410
 *   /retry-after/N/...   429 with "Retry-After: N"
 *   /hang/...            never answers (until the client gives up or the
 *                        receiver stops)
 *   /reset/...           closes the connection without answering
 *   /slow/MS/...         200 after MS milliseconds
 *   /flaky/N/...         500 for the first N requests of each webhook-id
 *                        (per path when there is none), then 200
 *   /echo/NNN/...        NNN with the request path as the body
 *   /garbage/NNN/...     NNN with a body of 200 random bytes that are not
 *                        UTF-8 (a receiver whose error page is binary or in
 *                        another encoding)
 *
 * Every request is recorded, one JSON object per line, in the --record file:
 * {"t_ms": wall-clock ms (fractional), "method", "path", "status" (what was
 * answered, 0 for hang/reset), "headers": {lower-cased name: value},
 * "body"}. GET /_requests returns that file; GET /_count the number of
 * requests recorded.
 *
 * With --secrets FILE the receiver checks Standard Webhooks signatures the
 * way a tenant's endpoint would. The file holds "PATH_PREFIX SECRET" lines
 * (whsec_... secrets, as `blazzctl webhooks add` prints them); a request
 * whose path starts with a prefix (the longest one wins) is verified with
 * that secret (webhook-id, webhook-timestamp within 5 minutes,
 * webhook-signature; wa/signature.h) and its record gets "verified": true
 * or false. The answer does not depend on it: a receiver that refused bad
 * signatures would only hide them behind retries. Secrets come from a file
 * so they never appear on a command line.
 *
 * Usage: blazz-webhook-receiver [--listen 127.0.0.1:PORT] [--record FILE]
 *                               [--port-file FILE] [--secrets FILE]
 * Port 0 (the default) picks a free port; it is printed as "PORT <n>" on
 * stdout and written to --port-file. SIGTERM/SIGINT stop it.
 */
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>
#include <openssl/crypto.h>

#include "core/bytes.h"
#include "core/hash.h"
#include "wa/signature.h"

#define BODY_MAX (4 * 1024 * 1024)
#define HANG_MAX_MS (300 * 1000)

typedef struct flaky_entry {
    char *key;
    int count;
    struct flaky_entry *next;
} flaky_entry;

/* One line of --secrets: requests under prefix are signed with secret. */
typedef struct path_secret {
    char *prefix;
    char *secret;
    struct path_secret *next;
} path_secret;

typedef struct receiver {
    FILE *record;
    char *record_path;
    pthread_mutex_t lock;
    unsigned long long count;
    flaky_entry *flaky[1024];
    path_secret *secrets; /* read once at start, then only read */
} receiver;

static atomic_bool stopping;

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&stopping, true);
}

typedef struct request {
    bz_bytes body;
    bool too_big;
} request;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    (void)kind;
    char name[128];
    size_t i = 0;
    for (; key[i] && i + 1 < sizeof name; i++)
        name[i] = (char)tolower((unsigned char)key[i]);
    name[i] = '\0';
    json_object_set_new(cls, name, json_string(value ? value : ""));
    return MHD_YES;
}

/* How many requests with this key came before (under the lock). */
static int flaky_seen(receiver *r, const char *key)
{
    unsigned slot = (unsigned)(bz_hash_string(key) % 1024);
    for (flaky_entry *e = r->flaky[slot]; e; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e->count++;
    flaky_entry *e = calloc(1, sizeof *e);
    if (!e || !(e->key = strdup(key))) {
        free(e);
        return 0;
    }
    e->count = 1;
    e->next = r->flaky[slot];
    r->flaky[slot] = e;
    return 0;
}

/* Parse "/<verb>/<number>/..." numbers. */
static long path_number(const char *url, size_t verb_len)
{
    return strtol(url + verb_len, NULL, 10);
}

/* The secret of the longest prefix of url, NULL when none applies. */
static const char *secret_for(const receiver *r, const char *url)
{
    const path_secret *best = NULL;
    for (const path_secret *p = r->secrets; p; p = p->next)
        if (strncmp(url, p->prefix, strlen(p->prefix)) == 0 &&
            (!best || strlen(p->prefix) > strlen(best->prefix)))
            best = p;
    return best ? best->secret : NULL;
}

/* "verified": true/false when a secret covers url; nothing otherwise. */
static void add_verdict(const receiver *r, struct MHD_Connection *c, const char *url,
                        const request *req, json_t *doc)
{
    const char *secret = secret_for(r, url);
    if (!secret)
        return;
    const char *id = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "webhook-id");
    const char *ts = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "webhook-timestamp");
    const char *sig = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "webhook-signature");
    bz_error err;
    const char *body = req->body.data ? req->body.data : "";
    bool ok = id && *id && ts && sig && !req->too_big &&
              bz_stdwebhooks_verify(secret, id, ts, body, req->body.len, sig,
                                    (long long)time(NULL), 0, &err) == BZ_OK;
    json_object_set_new(doc, "verified", json_boolean(ok));
}

static void record(receiver *r, struct MHD_Connection *c, const char *method, const char *url,
                   int status, json_t *headers, const request *req, double t)
{
    json_t *doc = json_pack("{s:f, s:s, s:s, s:i, s:O, s:s%}", "t_ms", t, "method", method,
                            "path", url, "status", status, "headers", headers, "body",
                            req->body.data ? req->body.data : "", req->body.len);
    if (doc)
        add_verdict(r, c, url, req, doc);
    char *line = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    pthread_mutex_lock(&r->lock);
    r->count++;
    if (r->record && line) {
        fputs(line, r->record);
        fputc('\n', r->record);
        fflush(r->record);
    }
    pthread_mutex_unlock(&r->lock);
    free(line);
}

static enum MHD_Result answer(struct MHD_Connection *c, int status, const char *text,
                              const char *retry_after)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "text/plain");
    if (retry_after)
        MHD_add_response_header(resp, "Retry-After", retry_after);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

#define GARBAGE_LEN 200

/* GARBAGE_LEN random bytes starting with 0xff, which no UTF-8 text contains. */
static enum MHD_Result answer_garbage(struct MHD_Connection *c, int status)
{
    static _Atomic uint32_t seed = 2463534242u;
    uint32_t x = atomic_fetch_add(&seed, 0x9e3779b9u) ^ (uint32_t)now_ms();
    char body[GARBAGE_LEN];
    body[0] = (char)0xff;
    for (size_t i = 1; i < sizeof body; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5; /* xorshift32 */
        body[i] = (char)(x & 0xff);
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(sizeof body, body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "application/octet-stream");
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result serve_records(receiver *r, struct MHD_Connection *c, const char *url)
{
    char text[64];
    if (strcmp(url, "/_count") == 0) {
        pthread_mutex_lock(&r->lock);
        snprintf(text, sizeof text, "%llu\n", r->count);
        pthread_mutex_unlock(&r->lock);
        return answer(c, 200, text, NULL);
    }
    if (!r->record_path)
        return answer(c, 404, "not recording (--record)\n", NULL);
    pthread_mutex_lock(&r->lock);
    FILE *f = fopen(r->record_path, "r");
    char *data = NULL;
    size_t len = 0;
    if (f) {
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        rewind(f);
        data = malloc(n > 0 ? (size_t)n : 1);
        len = data && n > 0 ? fread(data, 1, (size_t)n, f) : 0;
        fclose(f);
    }
    pthread_mutex_unlock(&r->lock);
    if (!data)
        return answer(c, 500, "cannot read the record file\n", NULL);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(data);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/x-ndjson");
    enum MHD_Result ret = MHD_queue_response(c, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* The behaviour of a path: the status to answer (0: none), with the
 * Retry-After and the waiting it implies. */
typedef struct behaviour {
    int status;
    int delay_ms;
    bool hang, reset, garbage, echo;
    char retry_after[24];
} behaviour;

static behaviour behaviour_of(receiver *r, struct MHD_Connection *c, const char *url)
{
    behaviour b = {.status = 200};
    if (strncmp(url, "/status/", 8) == 0) {
        b.status = (int)path_number(url, 8);
        if (b.status < 100 || b.status > 599)
            b.status = 500;
    } else if (strncmp(url, "/echo/", 6) == 0) {
        b.status = (int)path_number(url, 6);
        if (b.status < 100 || b.status > 599)
            b.status = 500;
        b.echo = true;
    } else if (strncmp(url, "/garbage/", 9) == 0) {
        b.status = (int)path_number(url, 9);
        if (b.status < 100 || b.status > 599)
            b.status = 500;
        b.garbage = true;
    } else if (strncmp(url, "/gone/", 6) == 0) {
        b.status = 410;
    } else if (strncmp(url, "/retry-after/", 13) == 0) {
        b.status = 429;
        snprintf(b.retry_after, sizeof b.retry_after, "%ld", path_number(url, 13));
    } else if (strncmp(url, "/hang/", 6) == 0) {
        b.hang = true;
        b.status = 0;
    } else if (strncmp(url, "/reset/", 7) == 0) {
        b.reset = true;
        b.status = 0;
    } else if (strncmp(url, "/slow/", 6) == 0) {
        b.delay_ms = (int)path_number(url, 6);
    } else if (strncmp(url, "/flaky/", 7) == 0) {
        int fails = (int)path_number(url, 7);
        const char *id = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "webhook-id");
        char key[512];
        snprintf(key, sizeof key, "%s|%s", url, id ? id : "");
        pthread_mutex_lock(&r->lock);
        int seen = flaky_seen(r, key);
        pthread_mutex_unlock(&r->lock);
        b.status = seen < fails ? 500 : 200;
    }
    return b;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    receiver *r = cls;
    request *req = *con_cls;
    if (!req) {
        req = calloc(1, sizeof *req);
        if (!req)
            return MHD_NO;
        *con_cls = req;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        bz_error err;
        bz_status st = bz_bytes_append(&req->body, upload_data, *upload_data_size, BODY_MAX, &err);
        if (st == BZ_ERR_INVALID)
            req->too_big = true;
        else if (st != BZ_OK)
            return MHD_NO;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, "GET") == 0 && strncmp(url, "/_", 2) == 0)
        return serve_records(r, c, url);
    double t = now_ms();
    behaviour b = behaviour_of(r, c, url);
    json_t *headers = json_object();
    MHD_get_connection_values(c, MHD_HEADER_KIND, collect_header, headers);
    record(r, c, method, url, b.status, headers, req, t);
    json_decref(headers);
    if (b.reset)
        return MHD_NO;
    if (b.hang) {
        for (int waited = 0; waited < HANG_MAX_MS && !atomic_load(&stopping); waited += 20)
            sleep_ms(20);
        return MHD_NO;
    }
    if (b.delay_ms > 0)
        sleep_ms(b.delay_ms);
    if (req->too_big)
        return answer(c, 413, "too large\n", NULL);
    if (b.garbage)
        return answer_garbage(c, b.status);
    if (b.echo)
        return answer(c, b.status, url, NULL);
    char text[32];
    snprintf(text, sizeof text, "%d\n", b.status);
    return answer(c, b.status, text, b.retry_after[0] ? b.retry_after : NULL);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c, (void)toe;
    request *req = *con_cls;
    if (req) {
        bz_bytes_free(&req->body);
        free(req);
        *con_cls = NULL;
    }
}

static int parse_listen(const char *text, struct sockaddr_in *addr)
{
    char host[64];
    const char *colon = strrchr(text, ':');
    if (!colon || (size_t)(colon - text) >= sizeof host)
        return -1;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    char *end = NULL;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno != 0 || end == colon + 1 || *end != '\0' || port < 0 || port > 65535)
        return -1;
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host[0] ? host : "127.0.0.1", &addr->sin_addr) == 1 ? 0 : -1;
}

static void free_secrets(receiver *r)
{
    while (r->secrets) {
        path_secret *next = r->secrets->next;
        free(r->secrets->prefix);
        OPENSSL_cleanse(r->secrets->secret, strlen(r->secrets->secret));
        free(r->secrets->secret);
        free(r->secrets);
        r->secrets = next;
    }
}

/* Read "PATH_PREFIX SECRET" lines (blank lines and #comments skipped);
 * 0, or -1 after saying which line is wrong (never printing a secret). */
static int load_secrets(receiver *r, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "blazz-webhook-receiver: open %s: %s\n", path, strerror(errno));
        return -1;
    }
    char line[1024];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        char prefix[512], secret[512];
        if (line[0] == '#' || strspn(line, " \t\r\n") == strlen(line))
            continue;
        path_secret *p = NULL;
        if (sscanf(line, "%511s %511s", prefix, secret) != 2 || prefix[0] != '/' ||
            !(p = calloc(1, sizeof *p)) || !(p->prefix = strdup(prefix)) ||
            !(p->secret = strdup(secret))) {
            fprintf(stderr, "blazz-webhook-receiver: %s line %d: want \"/path-prefix secret\"\n",
                    path, lineno);
            if (p) {
                free(p->prefix);
                free(p);
            }
            rc = -1;
        } else {
            p->next = r->secrets;
            r->secrets = p;
        }
        OPENSSL_cleanse(secret, sizeof secret);
        OPENSSL_cleanse(line, sizeof line);
    }
    fclose(f);
    return rc;
}

static void free_flaky(receiver *r)
{
    for (int i = 0; i < 1024; i++)
        while (r->flaky[i]) {
            flaky_entry *next = r->flaky[i]->next;
            free(r->flaky[i]->key);
            free(r->flaky[i]);
            r->flaky[i] = next;
        }
}

int main(int argc, char **argv)
{
    const char *listen = "127.0.0.1:0", *record_path = NULL, *port_file = NULL;
    const char *secrets_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
            listen = argv[++i];
        else if (strcmp(argv[i], "--record") == 0 && i + 1 < argc)
            record_path = argv[++i];
        else if (strcmp(argv[i], "--port-file") == 0 && i + 1 < argc)
            port_file = argv[++i];
        else if (strcmp(argv[i], "--secrets") == 0 && i + 1 < argc)
            secrets_path = argv[++i];
        else {
            fprintf(stderr,
                    "usage: %s [--listen HOST:PORT] [--record FILE] [--port-file FILE]"
                    " [--secrets FILE]\n",
                    argv[0]);
            return 2;
        }
    }
    struct sockaddr_in addr;
    if (parse_listen(listen, &addr) != 0) {
        fprintf(stderr, "blazz-webhook-receiver: bad --listen '%s' (IPv4 host:port)\n", listen);
        return 2;
    }
    receiver r = {0};
    if (secrets_path && load_secrets(&r, secrets_path) != 0) {
        free_secrets(&r);
        return 2;
    }
    pthread_mutex_init(&r.lock, NULL);
    if (record_path) {
        r.record = fopen(record_path, "a");
        r.record_path = (char *)record_path;
        if (!r.record) {
            fprintf(stderr, "blazz-webhook-receiver: open %s: %s\n", record_path, strerror(errno));
            free_secrets(&r);
            return 1;
        }
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL, 0, NULL,
        NULL, on_request, &r, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)120, MHD_OPTION_CONNECTION_LIMIT, (unsigned)4000, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "blazz-webhook-receiver: cannot listen on %s\n", listen);
        free_secrets(&r);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    unsigned port = info ? info->port : 0;
    printf("PORT %u\n", port);
    fflush(stdout);
    if (port_file) {
        FILE *f = fopen(port_file, "w");
        if (f) {
            fprintf(f, "%u\n", port);
            fclose(f);
        }
    }
    while (!atomic_load(&stopping))
        sleep_ms(50);
    MHD_stop_daemon(d);
    if (r.record)
        fclose(r.record);
    free_flaky(&r);
    free_secrets(&r);
    pthread_mutex_destroy(&r.lock);
    return 0;
}
