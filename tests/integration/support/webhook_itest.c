/*
 * webhook_itest.c - webhook-dispatcher test helpers (see webhook_itest.h).
 */
#include "webhook_itest.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "blazz/v1/chat_event.pb-c.h"
#include "blazz/v1/dead_letter.pb-c.h"
#include "core/clock.h"
#include "core/secretbox.h"
#include "core/uuid.h"
#include "itest.h"

static const char *bin_path(const char *name, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/bin/%s", itest_env("BLAZZ_TEST_BIN_DIR"), name);
    if (access(buf, X_OK) != 0)
        fail_msg("program %s is missing", buf);
    return buf;
}

static void log_path(const char *name, char *out, size_t cap)
{
    const char *state = getenv("BLAZZ_STATE_DIR");
    char dir[200];
    snprintf(dir, sizeof dir, "%s/logs", state ? state : "/tmp");
    mkdir(dir, 0755);
    snprintf(out, cap, "%s/%s", dir, name);
}

int64_t wh_int(wh_env *e, const char *sql)
{
    return itest_pg_int64(e->conn, sql);
}

static void start_receiver(wh_env *e)
{
    char port_file[256], bin[512];
    log_path(e->token, port_file, sizeof port_file);
    strncat(port_file, ".port", sizeof port_file - strlen(port_file) - 1);
    unlink(port_file);
    char *argv[] = {(char *)bin_path("blazz-webhook-receiver", bin, sizeof bin), "--record",
                    e->record_path, "--port-file", port_file, NULL};
    e->receiver = itest_spawn(argv, e->receiver_log);
    for (int waited = 0; e->port == 0; waited += 20) {
        FILE *f = fopen(port_file, "r");
        if (f) {
            char line[16];
            long port = fgets(line, sizeof line, f) ? strtol(line, NULL, 10) : 0;
            e->port = port > 0 && port <= 65535 ? (int)port : 0;
            fclose(f);
        }
        if (waited > 20000)
            fail_msg("receiver did not start; see %s", e->receiver_log);
        if (e->port == 0)
            itest_sleep_ms(20);
    }
    unlink(port_file);
}

void wh_env_setup(wh_env *e, const char *name)
{
    memset(e, 0, sizeof *e);
    itest_unique("", e->token, sizeof e->token);
    snprintf(e->prefix, sizeof e->prefix, "itest-wh-%s-%s.", name, e->token);
    snprintf(e->group, sizeof e->group, "blazz-webhook-dispatcher-itest-%s", e->token);
    char file[128];
    snprintf(file, sizeof file, "wh-%s-%s-requests.jsonl", name, e->token);
    log_path(file, e->record_path, sizeof e->record_path);
    unlink(e->record_path);
    snprintf(file, sizeof file, "wh-%s-%s-receiver.log", name, e->token);
    log_path(file, e->receiver_log, sizeof e->receiver_log);
    snprintf(file, sizeof file, "wh-%s-%s-dispatcher.log", name, e->token);
    log_path(file, e->dispatcher_log, sizeof e->dispatcher_log);
    e->conn = itest_pg_connect();
    char sql[256];
    snprintf(sql, sizeof sql, "INSERT INTO workspaces (name) VALUES ('itest %s') RETURNING id",
             e->token);
    e->workspace_id = wh_int(e, sql);
    itest_topics_create(e->prefix, ITEST_PARTITIONS);
    start_receiver(e);
}

void wh_receiver_stop(wh_env *e)
{
    if (e->receiver > 0) {
        kill(e->receiver, SIGTERM);
        itest_wait(e->receiver);
        e->receiver = 0;
    }
}

void wh_dispatcher_stop(wh_env *e)
{
    if (e->dispatcher > 0) {
        kill(e->dispatcher, SIGTERM);
        int rc = itest_wait(e->dispatcher);
        e->dispatcher = 0;
        if (rc != 0)
            fail_msg("dispatcher exited with %d on SIGTERM; see %s", rc, e->dispatcher_log);
    }
}

void wh_env_teardown(wh_env *e)
{
    wh_dispatcher_stop(e);
    wh_receiver_stop(e);
    char sql[256];
    snprintf(sql, sizeof sql,
             "DELETE FROM kafka_offsets WHERE group_id = '%s';"
             "DELETE FROM workspaces WHERE name LIKE 'itest %s%%'",
             e->group, e->token);
    itest_pg_exec(e->conn, sql);
    PQfinish(e->conn);
}

int64_t wh_endpoint_add(wh_env *e, const char *url_path, const char *secret, const char *scheme,
                        const char *events, int rate, int concurrency)
{
    uint8_t key[BZ_SECRETBOX_KEY_LEN], nonce[BZ_SECRETBOX_NONCE_LEN], *sealed;
    size_t sealed_len;
    bz_error err;
    char aad[24], url[256], rate_text[16], conc_text[16];
    snprintf(aad, sizeof aad, "%lld", (long long)e->workspace_id);
    if (bz_secretbox_key_parse(WH_TEST_KEY, key, &err) != BZ_OK ||
        bz_secretbox_seal(key, secret, strlen(secret), aad, strlen(aad), nonce, &sealed,
                          &sealed_len, &err) != BZ_OK)
        fail_msg("seal secret: %s", err.msg);
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", e->port, url_path);
    snprintf(rate_text, sizeof rate_text, "%d", rate);
    snprintf(conc_text, sizeof conc_text, "%d", concurrency);
    const char *params[] = {aad, url, (char *)sealed, (char *)nonce, scheme, events, rate_text,
                            conc_text};
    int lengths[] = {0, 0, (int)sealed_len, BZ_SECRETBOX_NONCE_LEN, 0, 0, 0, 0};
    int formats[] = {0, 0, 1, 1, 0, 0, 0, 0};
    PGresult *res = PQexecParams(
        e->conn,
        "INSERT INTO webhook_endpoints (workspace_id, url, secret_ciphertext, secret_nonce, "
        "signature_scheme, event_types, rate_limit_per_sec, max_concurrency) VALUES "
        "($1::bigint, $2, $3, $4, $5, $6::text[], $7::int, $8::int) RETURNING id",
        8, NULL, params, lengths, formats, 0);
    free(sealed);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        fail_msg("insert endpoint: %s", PQresultErrorMessage(res));
    int64_t id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return id;
}

/* Endpoints here are sealed with WH_TEST_KEY in the older form (key id 0),
 * which the dispatcher reads only when secrets.keys is not set. A test that
 * set the ring (itest_gateway_create does) would leave it unable to open
 * them, so the ring gets that key as its oldest. */
static void keep_older_endpoint_key(void)
{
    const char *ring = getenv("BLAZZ_SECRETS_KEYS");
    if (!ring || strncmp(ring, "0:", 2) == 0)
        return;
    char both[1024];
    snprintf(both, sizeof both, "0:%s,%s", WH_TEST_KEY, ring);
    setenv("BLAZZ_SECRETS_KEYS", both, 1);
}

pid_t wh_dispatcher_spawn(wh_env *e, const char *const *settings, const char *log_path,
                          int *admin_port)
{
    char bin[512], env[512], listen[64];
    *admin_port = itest_free_port();
    snprintf(listen, sizeof listen, "127.0.0.1:%d", *admin_port);
    setenv("BLAZZ_KAFKA_TOPIC_PREFIX", e->prefix, 1);
    setenv("BLAZZ_CONSUMER_GROUP_ID", e->group, 1);
    setenv("BLAZZ_WEBHOOK_SECRET_KEY", WH_TEST_KEY, 1);
    keep_older_endpoint_key();
    setenv("BLAZZ_LOG_LEVEL", "info", 1);
    setenv("BLAZZ_HTTP_LISTEN", listen, 1);
    for (size_t i = 0; settings && settings[i]; i++) {
        snprintf(env, sizeof env, "%s", settings[i]);
        char *eq = strchr(env, '=');
        if (!eq)
            fail_msg("bad setting %s", settings[i]);
        *eq = '\0';
        setenv(env, eq + 1, 1);
    }
    char *argv[] = {(char *)bin_path("blazz-webhook-dispatcher", bin, sizeof bin), NULL};
    pid_t pid = itest_spawn(argv, log_path);
    unsetenv("BLAZZ_HTTP_LISTEN");
    for (size_t i = 0; settings && settings[i]; i++) {
        snprintf(env, sizeof env, "%s", settings[i]);
        *strchr(env, '=') = '\0';
        unsetenv(env);
    }
    return pid;
}

void wh_dispatcher_start(wh_env *e, const char *const *settings)
{
    e->dispatcher = wh_dispatcher_spawn(e, settings, e->dispatcher_log, &e->admin_port);
}

void wh_produce_message(bz_producer *p, wh_env *e, int64_t workspace_id, char *event_id_out,
                        const char *text)
{
    bz_error err;
    if (bz_uuid_v4(event_id_out, &err) != BZ_OK)
        fail_msg("uuid: %s", err.msg);
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    env.event_id = event_id_out;
    env.occurred_at_ms = bz_wall_ms();
    env.produced_at_ms = env.occurred_at_ms;
    env.source = "itest";
    env.workspace_id = workspace_id;
    env.session_id = "itest-session";
    env.whatsapp_account_id = 0;
    env.provider = BLAZZ__V1__PROVIDER__PROVIDER_WEBJS;
    Blazz__V1__ChatSnapshot chat = BLAZZ__V1__CHAT_SNAPSHOT__INIT;
    chat.id = 42;
    chat.wam_id = "wam-1";
    chat.type = BLAZZ__V1__DIRECTION__DIRECTION_INBOUND;
    chat.chat_type = BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_PRIVATE;
    chat.provider_type = BLAZZ__V1__PROVIDER__PROVIDER_WEBJS;
    chat.message = (char *)text;
    chat.message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT;
    chat.message_status = BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_DELIVERED;
    chat.created_at_ms = env.occurred_at_ms;
    chat.contact_id = 7;
    Blazz__V1__ContactSnapshot contact = BLAZZ__V1__CONTACT_SNAPSHOT__INIT;
    contact.id = 7;
    contact.name = "Budi";
    contact.phone = "+6281234567890";
    Blazz__V1__ChatEvent ev = BLAZZ__V1__CHAT_EVENT__INIT;
    ev.envelope = &env;
    ev.kind = BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_MESSAGE_CREATED;
    ev.chat = &chat;
    ev.contact = &contact;
    uint8_t buf[2048];
    size_t len = blazz__v1__chat_event__get_packed_size(&ev);
    if (len > sizeof buf)
        fail_msg("event too large");
    blazz__v1__chat_event__pack(&ev, buf);
    char topic[200], key[64];
    snprintf(topic, sizeof topic, "%schat.events", e->prefix);
    snprintf(key, sizeof key, "%lld:+6281234567890", (long long)workspace_id);
    bz_kafka_header hdr = {"event_id", event_id_out, strlen(event_id_out)};
    if (bz_producer_send(p, topic, RD_KAFKA_PARTITION_UA, key, strlen(key), buf, len, &hdr, 1,
                         NULL, &err) != BZ_OK)
        fail_msg("produce: %s", err.msg);
}

static void flush_and_free(bz_producer *p)
{
    bz_error err;
    if (bz_producer_flush(p, 60000, &err) != BZ_OK)
        fail_msg("flush: %s", err.msg);
    bz_producer_free(p, 1000);
}

void wh_produce_one(wh_env *e, char *event_id_out, const char *text)
{
    bz_producer *p = itest_producer();
    wh_produce_message(p, e, e->workspace_id, event_id_out, text);
    flush_and_free(p);
}

void wh_produce_many(wh_env *e, int n, const char *text)
{
    bz_producer *p = itest_producer();
    char id[40];
    for (int i = 0; i < n; i++) {
        wh_produce_message(p, e, e->workspace_id, id, text);
        bz_producer_poll(p, 0);
    }
    flush_and_free(p);
}

void wh_produce_paced(wh_env *e, int n, int per_second)
{
    bz_producer *p = itest_producer();
    char id[40], text[32];
    int64_t start = bz_monotonic_ms();
    for (int i = 0; i < n; i++) {
        int64_t due = start + (int64_t)i * 1000 / per_second;
        while (bz_monotonic_ms() < due)
            itest_sleep_ms(1);
        snprintf(text, sizeof text, "%lld", (long long)bz_wall_ms());
        wh_produce_message(p, e, e->workspace_id, id, text);
        bz_producer_poll(p, 0);
    }
    flush_and_free(p);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

size_t wh_first_attempt_latencies(const wh_env *e, const char *path, double *out, size_t cap)
{
    json_t *all = wh_requests(e), *r;
    size_t n = 0, i;
    json_array_foreach(all, i, r)
    {
        const char *p = json_string_value(json_object_get(r, "path"));
        if (!p || (path && strcmp(p, path) != 0) || n >= cap)
            continue;
        json_t *body = json_loads(json_string_value(json_object_get(r, "body")), 0, NULL);
        const char *msg = json_string_value(
            json_object_get(json_object_get(json_object_get(body, "data"), "chat"), "message"));
        if (msg)
            out[n++] = json_real_value(json_object_get(r, "t_ms")) - strtod(msg, NULL);
        json_decref(body);
    }
    json_decref(all);
    qsort(out, n, sizeof *out, cmp_double);
    return n;
}

void wh_insert_delivery(wh_env *e, int64_t endpoint_id, int max_retries, char *event_id_out)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "WITH d AS (INSERT INTO webhook_retry_queue (event_id, endpoint_id, workspace_id, "
             "event_type, payload, max_retries) SELECT id, %lld, %lld, 'message.created', "
             "convert_to(json_build_object('id', id, 'type', 'message.created')::text, 'UTF8'), "
             "%d FROM (SELECT gen_random_uuid() AS id) g RETURNING event_id) "
             "SELECT event_id::text FROM d",
             (long long)endpoint_id, (long long)e->workspace_id, max_retries);
    char *id = itest_pg_textf(e->conn, "%s", sql);
    snprintf(event_id_out, 37, "%s", id);
    free(id);
    itest_pg_exec(e->conn, "NOTIFY blazz_webhook");
}

typedef struct dead_letter_count {
    char endpoint[24];
    size_t n;
    json_t *events;
} dead_letter_count;

bool wh_record_header_is(const rd_kafka_message_t *msg, const char *name, const char *value)
{
    rd_kafka_headers_t *hdrs = NULL;
    const void *v;
    size_t n;
    return rd_kafka_message_headers(msg, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
           rd_kafka_header_get_last(hdrs, name, &v, &n) == RD_KAFKA_RESP_ERR_NO_ERROR &&
           n == strlen(value) && memcmp(v, value, n) == 0;
}

static void count_dead_letter(void *ctx, const rd_kafka_message_t *msg)
{
    dead_letter_count *c = ctx;
    if (!wh_record_header_is(msg, "webhook-endpoint-id", c->endpoint))
        return;
    c->n++;
    Blazz__V1__DeadLetter *dl = blazz__v1__dead_letter__unpack(NULL, msg->len, msg->payload);
    if (!dl)
        fail_msg("a dead letter of endpoint %s does not decode", c->endpoint);
    json_object_set_new(c->events, dl->event_id, json_true());
    blazz__v1__dead_letter__free_unpacked(dl, NULL);
}

size_t wh_dead_letters(wh_env *e, int64_t endpoint_id, size_t *distinct_events)
{
    char topic[200];
    snprintf(topic, sizeof topic, "%swebhook.dlq", e->prefix);
    dead_letter_count c = {.n = 0, .events = json_object()};
    snprintf(c.endpoint, sizeof c.endpoint, "%lld", (long long)endpoint_id);
    itest_consume_all(topic, count_dead_letter, &c);
    if (distinct_events)
        *distinct_events = json_object_size(c.events);
    json_decref(c.events);
    return c.n;
}

const char *wh_header(json_t *req, const char *name)
{
    return json_string_value(json_object_get(json_object_get(req, "headers"), name));
}

typedef struct http_body {
    char *data;
    size_t len;
} http_body;

static size_t keep_body(char *data, size_t size, size_t n, void *userp)
{
    http_body *b = userp;
    char *grown = realloc(b->data, b->len + size * n + 1);
    if (!grown)
        return 0;
    memcpy(grown + b->len, data, size * n);
    b->len += size * n;
    grown[b->len] = '\0';
    b->data = grown;
    return size * n;
}

long wh_admin_get(int admin_port, const char *path, char **body)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", admin_port, path);
    http_body b = {NULL, 0};
    long status = 0;
    CURL *c = curl_easy_init();
    if (!c)
        fail_msg("curl_easy_init failed");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    if (body)
        *body = b.data;
    else
        free(b.data);
    return status;
}

int wh_postgres_ready(int admin_port)
{
    char *body = NULL;
    wh_admin_get(admin_port, "/readyz", &body);
    json_t *doc = body ? json_loads(body, 0, NULL) : NULL;
    free(body);
    int ok = -1;
    size_t i;
    json_t *check;
    json_array_foreach(json_object_get(doc, "checks"), i, check)
    {
        const char *name = json_string_value(json_object_get(check, "name"));
        if (name && (strcmp(name, "postgresql") == 0 || strcmp(name, "delivery postgresql") == 0))
            ok = (ok != 0) && json_is_true(json_object_get(check, "ok"));
    }
    json_decref(doc);
    return ok;
}

double wh_metric(int admin_port, const char *name)
{
    char *body = NULL;
    if (wh_admin_get(admin_port, "/metrics", &body) != 200) {
        free(body);
        return -1;
    }
    double value = -1;
    size_t len = strlen(name);
    for (char *line = body; line && *line;) {
        if (strncmp(line, name, len) == 0 && line[len] == ' ')
            value = strtod(line + len + 1, NULL);
        char *end = strchr(line, '\n');
        line = end ? end + 1 : NULL;
    }
    free(body);
    return value;
}

json_t *wh_requests(const wh_env *e)
{
    json_t *all = json_array();
    FILE *f = fopen(e->record_path, "r");
    if (!f)
        return all;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        json_t *r = json_loads(line, 0, NULL);
        if (r)
            json_array_append_new(all, r);
    }
    free(line);
    fclose(f);
    return all;
}

size_t wh_filter(json_t *all, const char *path_prefix, json_t **out, size_t cap)
{
    size_t n = 0, i;
    json_t *r;
    json_array_foreach(all, i, r)
    {
        const char *path = json_string_value(json_object_get(r, "path"));
        if (path && strncmp(path, path_prefix, strlen(path_prefix)) == 0 && n < cap)
            out[n++] = r;
    }
    return n;
}

void wh_wait_for(wh_env *e, const char *sql, int64_t want, int timeout_ms)
{
    int64_t got = -2;
    for (int waited = 0; (got = wh_int(e, sql)) != want; waited += 100) {
        if (e->dispatcher > 0) {
            int status;
            if (waitpid(e->dispatcher, &status, WNOHANG) == e->dispatcher) {
                e->dispatcher = 0;
                fail_msg("dispatcher died (status %d); see %s", status, e->dispatcher_log);
            }
        }
        if (waited > timeout_ms)
            fail_msg("timed out waiting for %s = %lld (last %lld); see %s", sql, (long long)want,
                     (long long)got, e->dispatcher_log);
        itest_sleep_ms(100);
    }
}

void wh_wait_consuming(wh_env *e)
{
    bz_producer *p = itest_producer();
    char id[40], sql[256];
    /* no workspace has this id: the event is consumed and fans out to nothing */
    wh_produce_message(p, e, 999999999999LL, id, "warm-up");
    bz_error err;
    if (bz_producer_flush(p, 30000, &err) != BZ_OK)
        fail_msg("flush: %s", err.msg);
    bz_producer_free(p, 1000);
    snprintf(sql, sizeof sql,
             "SELECT (coalesce(sum(next_offset), 0) > 0)::int FROM kafka_offsets "
             "WHERE group_id = '%s'", e->group);
    wh_wait_for(e, sql, 1, 60000);
}

/* ---- an independent Standard Webhooks verifier (OpenSSL only) ------------ */

static size_t b64_decode(const char *in, unsigned char *out)
{
    size_t len = strlen(in);
    int n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
    if (n < 0)
        return 0;
    size_t pad = (len > 0 && in[len - 1] == '=') + (len > 1 && in[len - 2] == '=');
    return (size_t)n - pad;
}

int wh_verify_standard(const char *secret, const char *id, const char *ts, const char *body,
                       const char *header)
{
    unsigned char key[128], mac[32];
    size_t keylen = b64_decode(secret + 6, key);
    size_t mlen = strlen(id) + strlen(ts) + strlen(body) + 3;
    char *msg = malloc(mlen);
    snprintf(msg, mlen, "%s.%s.%s", id, ts, body);
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), key, (int)keylen, (unsigned char *)msg, strlen(msg), mac, &maclen);
    free(msg);
    char expected[64];
    EVP_EncodeBlock((unsigned char *)expected, mac, (int)maclen);
    int ok = 0;
    char *copy = strdup(header), *save = NULL;
    for (char *tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
        if (strncmp(tok, "v1,", 3) == 0 && strlen(tok + 3) == strlen(expected) &&
            CRYPTO_memcmp(tok + 3, expected, strlen(expected)) == 0)
            ok = 1;
    free(copy);
    return ok;
}
