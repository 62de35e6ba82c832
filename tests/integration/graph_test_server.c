/*
 * graph_test_server.c - a loopback WhatsApp Cloud API (Graph API) for the
 * meta-sender tests, the benchmark and the demo: POST
 * /{version}/{phone_number_id}/messages answered as Meta's documentation
 * describes, with fault injection.
 *
 * Usage: graph_test_server --port-file F --record F --tokens F [options]
 *   --port N              listen on 127.0.0.1:N (default 0: any; the port is
 *                         written to --port-file)
 *   --tokens F            lines "<phone_number_id> <token>": the Bearer token
 *                         each number accepts; re-read when the file changes,
 *                         so a test "expires" a token by rewriting it. Any
 *                         other token: 401 OAuthException code 190.
 *   --record F            one line per message Meta would deliver (accepted):
 *                         <ms> <phone_number_id> <kind> <to> <reference> <wamid>
 *                         (kind: text, template, image, ..., read; reference:
 *                         biz_opaque_callback_data or the read message id)
 *   --throttle-every N    every Nth request answers 400 with code 130429,
 *                         the next such one 131056 (alternating), not accepted
 *   --drop-every N        every Nth request: the connection is closed without
 *                         an answer and nothing is accepted
 *   --accept-drop-every N every Nth request is accepted (recorded, statuses
 *                         sent) and then the connection is closed unanswered
 *   --slow-every N --slow-ms M   every Nth request is answered after M ms
 *   --fail-to PHONE=CODE  requests to PHONE (digits) answer Meta's error CODE
 *                         (131047, 131026, 100, 132001...; repeatable)
 *   --webhook URL --app-secret S  post status webhooks (sent, delivered, read)
 *                         of accepted messages to URL (ingest's
 *                         /v1/meta/webhook), signed X-Hub-Signature-256,
 *                         carrying biz_opaque_callback_data
 *   --app-secret-file F   the app secret read from file F (its first line),
 *                         so that it is on no command line (`make run`)
 * Requests are counted per number in arrival order; the counters of the
 * fault options are global. Listens on 127.0.0.1 only. Stops on SIGTERM.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <microhttpd.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "core/clock.h"
#include "core/signals.h"

#define MAX_TOKENS 256
#define MAX_FAILS 32
#define BODY_MAX (256 * 1024)

typedef struct fail_rule {
    char to[32];
    long code;
} fail_rule;

typedef struct status_item {
    struct status_item *next;
    char pnid[64], wamid[96], to[32], ref[128];
} status_item;

static struct {
    const char *tokens_path, *record_path, *port_file, *webhook, *app_secret, *app_secret_file;
    long port;
    long throttle_every, drop_every, accept_drop_every, slow_every, slow_ms;
    fail_rule fails[MAX_FAILS];
    int nfails;
} opt;

static struct {
    pthread_mutex_t lock;
    char pnid[MAX_TOKENS][64], token[MAX_TOKENS][512];
    int n;
    struct timespec mtime;
    FILE *record;
    atomic_long requests, throttled, wamids;
    status_item *head, *tail;
    pthread_cond_t wake;
} g = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

/* ---- tokens --------------------------------------------------------------------- */

static void load_tokens_locked(void)
{
    struct stat st;
    if (stat(opt.tokens_path, &st) != 0)
        return;
    if (st.st_mtim.tv_sec == g.mtime.tv_sec && st.st_mtim.tv_nsec == g.mtime.tv_nsec)
        return;
    FILE *f = fopen(opt.tokens_path, "r");
    if (!f)
        return;
    g.mtime = st.st_mtim;
    g.n = 0;
    while (g.n < MAX_TOKENS && fscanf(f, "%63s %511s", g.pnid[g.n], g.token[g.n]) == 2)
        g.n++;
    fclose(f);
}

static int token_ok(const char *pnid, const char *auth)
{
    if (!auth || strncmp(auth, "Bearer ", 7) != 0)
        return 0;
    pthread_mutex_lock(&g.lock);
    load_tokens_locked();
    int ok = 0;
    for (int i = 0; i < g.n && !ok; i++)
        ok = strcmp(g.pnid[i], pnid) == 0 && strcmp(g.token[i], auth + 7) == 0;
    pthread_mutex_unlock(&g.lock);
    return ok;
}

/* ---- answers -------------------------------------------------------------------- */

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), text,
                                                             MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result meta_error(struct MHD_Connection *c, unsigned status, long code,
                                  const char *type, const char *message, const char *details)
{
    return answer(c, status,
                  json_pack("{s:{s:s, s:s, s:I, s:{s:s, s:s}, s:s}}", "error", "message", message,
                            "type", type, "code", (json_int_t)code, "error_data",
                            "messaging_product", "whatsapp", "details", details, "fbtrace_id",
                            "Atest"));
}

static const char *message_of(long code)
{
    switch (code) {
    case 130429: return "(#130429) Rate limit hit";
    case 131056: return "(#131056) (Business Account, Consumer Account) pair rate limit hit";
    case 131047: return "(#131047) Re-engagement message";
    case 131026: return "(#131026) Message Undeliverable";
    case 100: return "(#100) Invalid parameter";
    default: return "(#132001) Template name does not exist in the translation";
    }
}

static enum MHD_Result fail_code(struct MHD_Connection *c, long code)
{
    const char *details = code == 131047 ? "Message failed to send because more than 24 hours "
                                           "have passed since the customer last replied."
                                         : message_of(code);
    return meta_error(c, 400, code, "OAuthException", message_of(code), details);
}

/* ---- records and status webhooks --------------------------------------------------- */

static void record(const char *pnid, const char *kind, const char *to, const char *ref,
                   const char *wamid)
{
    pthread_mutex_lock(&g.lock);
    fprintf(g.record, "%lld %s %s %s %s %s\n", (long long)bz_wall_ms(), pnid, kind,
            *to ? to : "-", *ref ? ref : "-", wamid);
    fflush(g.record);
    if (opt.webhook && strcmp(kind, "read") != 0) {
        status_item *it = calloc(1, sizeof *it);
        if (it) {
            snprintf(it->pnid, sizeof it->pnid, "%s", pnid);
            snprintf(it->wamid, sizeof it->wamid, "%s", wamid);
            snprintf(it->to, sizeof it->to, "%s", to);
            snprintf(it->ref, sizeof it->ref, "%s", ref);
            if (g.tail)
                g.tail->next = it;
            else
                g.head = it;
            g.tail = it;
            pthread_cond_signal(&g.wake);
        }
    }
    pthread_mutex_unlock(&g.lock);
}

static json_t *status_of(const status_item *it, const char *status, long long ts)
{
    char when[24];
    snprintf(when, sizeof when, "%lld", ts);
    json_t *s = json_pack("{s:s, s:s, s:s, s:s}", "id", it->wamid, "status", status, "timestamp",
                          when, "recipient_id", it->to);
    if (*it->ref)
        json_object_set_new(s, "biz_opaque_callback_data", json_string(it->ref));
    return s;
}

static void post_webhook(CURL *curl, const status_item *it)
{
    long long ts = (long long)(bz_wall_ms() / 1000);
    json_t *statuses = json_array();
    json_array_append_new(statuses, status_of(it, "sent", ts));
    json_array_append_new(statuses, status_of(it, "delivered", ts));
    json_array_append_new(statuses, status_of(it, "read", ts));
    json_t *doc = json_pack(
        "{s:s, s:[{s:s, s:[{s:s, s:{s:s, s:{s:s, s:s}, s:o}}]}]}", "object",
        "whatsapp_business_account", "entry", "id", "WABA", "changes", "field", "messages", "value",
        "messaging_product", "whatsapp", "metadata", "display_phone_number", it->pnid,
        "phone_number_id", it->pnid, "statuses", statuses);
    char *body = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    unsigned char mac[32];
    unsigned len = 0;
    HMAC(EVP_sha256(), opt.app_secret, (int)strlen(opt.app_secret), (unsigned char *)body,
         strlen(body), mac, &len);
    char header[128] = "X-Hub-Signature-256: sha256=";
    for (unsigned i = 0; i < len; i++)
        snprintf(header + strlen(header), 3, "%02x", mac[i]);
    struct curl_slist *h = curl_slist_append(NULL, header);
    h = curl_slist_append(h, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_URL, opt.webhook);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    for (int attempt = 0; attempt < 20; attempt++) {
        long status = 0;
        if (curl_easy_perform(curl) == CURLE_OK &&
            curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status == 200)
            break;
        usleep(200000);
    }
    curl_slist_free_all(h);
    free(body);
}

static void *webhook_main(void *arg)
{
    (void)arg;
    CURL *curl = curl_easy_init();
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(curl, CURLOPT_PROXY, "");
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, NULL);
    FILE *sink = fopen("/dev/null", "w");
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, sink);
    for (;;) {
        pthread_mutex_lock(&g.lock);
        while (!g.head && !bz_shutdown_requested()) {
            struct timespec t;
            clock_gettime(CLOCK_REALTIME, &t);
            t.tv_nsec += 100000000;
            if (t.tv_nsec >= 1000000000) {
                t.tv_sec++;
                t.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&g.wake, &g.lock, &t);
        }
        status_item *it = g.head;
        if (it) {
            g.head = it->next;
            if (!g.head)
                g.tail = NULL;
        }
        pthread_mutex_unlock(&g.lock);
        if (!it)
            break;
        post_webhook(curl, it);
        free(it);
    }
    curl_easy_cleanup(curl);
    if (sink)
        fclose(sink);
    return NULL;
}

/* ---- one request ------------------------------------------------------------------ */

typedef struct upload {
    char *data;
    size_t len;
    int too_big;
} upload;

static int every(long n, long k)
{
    return n > 0 && k % n == 0;
}

static long failure_for(const char *to)
{
    for (int i = 0; i < opt.nfails; i++)
        if (strcmp(opt.fails[i].to, to) == 0)
            return opt.fails[i].code;
    return 0;
}

static const char *kind_of(json_t *doc)
{
    if (json_string_value(json_object_get(doc, "status")))
        return "read";
    const char *type = json_string_value(json_object_get(doc, "type"));
    return type ? type : "text";
}

static enum MHD_Result handle_message(struct MHD_Connection *c, const char *pnid, json_t *doc,
                                      long k)
{
    const char *kind = kind_of(doc);
    const char *to = json_string_value(json_object_get(doc, "to"));
    const char *ref = json_string_value(json_object_get(doc, "biz_opaque_callback_data"));
    if (strcmp(kind, "read") == 0) {
        const char *id = json_string_value(json_object_get(doc, "message_id"));
        if (!id || strcmp(json_string_value(json_object_get(doc, "status")), "read") != 0)
            return meta_error(c, 400, 100, "OAuthException", "(#100) Invalid parameter",
                              "message_id is required");
        record(pnid, "read", "", id, id);
        return answer(c, 200, json_pack("{s:b}", "success", 1));
    }
    if (!to || !*to || !json_object_get(doc, kind))
        return meta_error(c, 400, 100, "OAuthException", "(#100) Invalid parameter",
                          "to and the message object of its type are required");
    long code = failure_for(to);
    if (code)
        return fail_code(c, code);
    char wamid[96];
    snprintf(wamid, sizeof wamid, "wamid.T%s_%ld", pnid, atomic_fetch_add(&g.wamids, 1) + 1);
    record(pnid, kind, to, ref ? ref : "", wamid);
    if (every(opt.accept_drop_every, k))
        return MHD_NO;
    return answer(c, 200, json_pack("{s:s, s:[{s:s, s:s}], s:[{s:s}]}", "messaging_product",
                                    "whatsapp", "contacts", "input", to, "wa_id", to, "messages",
                                    "id", wamid));
}

static enum MHD_Result complete(struct MHD_Connection *c, const char *url, upload *up)
{
    char version[32], pnid[64], tail[32];
    if (sscanf(url, "/%31[^/]/%63[^/]/%31s", version, pnid, tail) != 3 ||
        strcmp(tail, "messages") != 0)
        return meta_error(c, 404, 803, "OAuthException", "Unknown path", url);
    long k = atomic_fetch_add(&g.requests, 1) + 1;
    if (every(opt.drop_every, k))
        return MHD_NO;
    if (every(opt.slow_every, k))
        usleep((useconds_t)opt.slow_ms * 1000);
    if (!token_ok(pnid, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization")))
        return meta_error(c, 401, 190, "OAuthException",
                          "Error validating access token: Session has expired", "token expired");
    if (every(opt.throttle_every, k))
        return fail_code(c, atomic_fetch_add(&g.throttled, 1) % 2 ? 131056 : 130429);
    json_t *doc = up->data ? json_loadb(up->data, up->len, 0, NULL) : NULL;
    const char *product = json_string_value(json_object_get(doc, "messaging_product"));
    enum MHD_Result r =
        !product || strcmp(product, "whatsapp") != 0
            ? meta_error(c, 400, 100, "OAuthException", "(#100) Invalid parameter",
                         "messaging_product must be whatsapp")
            : handle_message(c, pnid, doc, k);
    json_decref(doc);
    return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **state)
{
    (void)cls;
    (void)version;
    upload *up = *state;
    if (!up) {
        if (strcmp(method, "POST") != 0)
            return meta_error(c, 405, 100, "OAuthException", "POST only", method);
        *state = calloc(1, sizeof(upload));
        return *state ? MHD_YES : MHD_NO;
    }
    if (*size) {
        if (up->len + *size > BODY_MAX)
            up->too_big = 1;
        else {
            char *grown = realloc(up->data, up->len + *size);
            if (!grown)
                return MHD_NO;
            up->data = grown;
            memcpy(up->data + up->len, data, *size);
            up->len += *size;
        }
        *size = 0;
        return MHD_YES;
    }
    if (up->too_big)
        return meta_error(c, 413, 100, "OAuthException", "too large", "body too large");
    return complete(c, url, up);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **state,
                         enum MHD_RequestTerminationCode code)
{
    (void)cls;
    (void)c;
    (void)code;
    upload *up = *state;
    if (up) {
        free(up->data);
        free(up);
    }
    *state = NULL;
}

/* ---- options and main ----------------------------------------------------------------- */

static int parse_long(const char *text, long *out)
{
    char *end;
    errno = 0;
    *out = strtol(text, &end, 10);
    return errno == 0 && end != text && *end == '\0' && *out >= 0;
}

static int add_failure(const char *spec)
{
    const char *eq = strchr(spec, '=');
    if (!eq || opt.nfails == MAX_FAILS || (size_t)(eq - spec) >= sizeof opt.fails[0].to)
        return 0;
    fail_rule *f = &opt.fails[opt.nfails++];
    memcpy(f->to, spec, (size_t)(eq - spec));
    f->to[eq - spec] = '\0';
    return parse_long(eq + 1, &f->code);
}

static int string_option(const char *name, const char *value)
{
    const struct {
        const char *name;
        const char **to;
    } table[] = {{"--port-file", &opt.port_file}, {"--record", &opt.record_path},
                 {"--tokens", &opt.tokens_path},   {"--webhook", &opt.webhook},
                 {"--app-secret", &opt.app_secret}, {"--app-secret-file", &opt.app_secret_file}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(name, table[i].name) == 0) {
            *table[i].to = value;
            return 1;
        }
    return 0;
}

static int number_option(const char *name, long value)
{
    const struct {
        const char *name;
        long *to;
    } table[] = {{"--port", &opt.port},
                 {"--throttle-every", &opt.throttle_every},
                 {"--drop-every", &opt.drop_every},
                 {"--accept-drop-every", &opt.accept_drop_every},
                 {"--slow-every", &opt.slow_every},
                 {"--slow-ms", &opt.slow_ms}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(name, table[i].name) == 0) {
            *table[i].to = value;
            return 1;
        }
    return 0;
}

/* The first line of --app-secret-file into buf; 0 when it cannot be read
 * or is empty. */
static int read_app_secret(char *buf, size_t cap)
{
    FILE *f = fopen(opt.app_secret_file, "r");
    if (!f)
        return 0;
    int ok = fgets(buf, (int)cap, f) != NULL;
    fclose(f);
    if (!ok)
        return 0;
    buf[strcspn(buf, "\r\n")] = '\0';
    return *buf != '\0';
}

static int parse_options(int argc, char **argv)
{
    static char secret_from_file[512];
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *o = argv[i], *v = argv[i + 1];
        long n = 0;
        int ok = string_option(o, v) ||
                 (strcmp(o, "--fail-to") == 0 ? add_failure(v)
                                              : parse_long(v, &n) && number_option(o, n));
        if (!ok)
            return 0;
    }
    if (opt.app_secret_file) {
        if (opt.app_secret || !read_app_secret(secret_from_file, sizeof secret_from_file))
            return 0;
        opt.app_secret = secret_from_file;
    }
    return argc % 2 == 1 && opt.port_file && opt.record_path && opt.tokens_path &&
           (!opt.webhook || opt.app_secret);
}

int main(int argc, char **argv)
{
    if (!parse_options(argc, argv)) {
        fprintf(stderr, "usage: graph_test_server --port-file F --record F --tokens F "
                        "[--port N] [fault options] (see the file header)\n");
        return 2;
    }
    g.record = fopen(opt.record_path, "a");
    if (!g.record || bz_signals_install_shutdown() != BZ_OK) {
        fprintf(stderr, "graph_test_server: cannot open %s\n", opt.record_path);
        return 1;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL, on_request, NULL,
        MHD_OPTION_SOCK_ADDR, &addr, MHD_OPTION_THREAD_POOL_SIZE, 2u,
        MHD_OPTION_CONNECTION_LIMIT, 2000u, MHD_OPTION_CONNECTION_TIMEOUT, 60u,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "graph_test_server: cannot listen on 127.0.0.1:%ld\n", opt.port);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    FILE *pf = fopen(opt.port_file, "w");
    if (!pf || !info) {
        MHD_stop_daemon(d);
        return 1;
    }
    fprintf(pf, "%u\n", (unsigned)info->port);
    fclose(pf);
    pthread_t hook;
    int hooked = opt.webhook && pthread_create(&hook, NULL, webhook_main, NULL) == 0;
    while (!bz_shutdown_requested())
        bz_sleep_ms(50);
    MHD_stop_daemon(d);
    if (hooked) {
        pthread_mutex_lock(&g.lock);
        pthread_cond_signal(&g.wake);
        pthread_mutex_unlock(&g.lock);
        pthread_join(hook, NULL);
    }
    while (g.head) {
        status_item *it = g.head;
        g.head = it->next;
        free(it);
    }
    fclose(g.record);
    curl_global_cleanup();
    return 0;
}
