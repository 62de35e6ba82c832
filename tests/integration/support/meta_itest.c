/*
 * meta_itest.c - see meta_itest.h.
 */
#include "meta_itest.h"

#include <openssl/evp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "itest.h"
#include "webhook_itest.h"

void graph_fx_init(graph_fx *g, const camp_fx *fx)
{
    memset(g, 0, sizeof *g);
    snprintf(g->tokens_path, sizeof g->tokens_path, "%s/tokens.txt", fx->dir);
    snprintf(g->record_path, sizeof g->record_path, "%s/graph-record.txt", fx->dir);
    snprintf(g->port_file, sizeof g->port_file, "%s/graph-port.txt", fx->dir);
    snprintf(g->requests_path, sizeof g->requests_path, "%s/graph-requests.txt", fx->dir);
}

void graph_write_tokens(const graph_fx *g, const char *const *pnids, const char *const *tokens,
                        size_t n)
{
    char tmp[720];
    snprintf(tmp, sizeof tmp, "%s.tmp", g->tokens_path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        fail_msg("cannot write %s", tmp);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s %s\n", pnids[i], tokens[i]);
    fclose(f);
    if (rename(tmp, g->tokens_path) != 0)
        fail_msg("cannot replace %s", g->tokens_path);
}

void graph_start(graph_fx *g, camp_fx *fx, const char *const *extra_args)
{
    char bin[1024];
    snprintf(bin, sizeof bin, "%s/tests/integration/graph_test_server",
             itest_env("BLAZZ_TEST_BIN_DIR"));
    char *argv[40] = {bin,      "--port-file",    g->port_file,  "--record",
                      g->record_path, "--tokens", g->tokens_path, "--requests", g->requests_path};
    size_t n = 9;
    for (size_t i = 0; extra_args && extra_args[i] && n < 38; i++)
        argv[n++] = (char *)extra_args[i];
    argv[n] = NULL;
    unlink(g->port_file);
    g->port = 0;
    g->pid = camp_spawn(fx, "graph.log", argv, NULL);
    for (int i = 0; i < 200 && !g->port; i++) {
        FILE *f = fopen(g->port_file, "r");
        if (f) {
            char line[16];
            long port = fgets(line, sizeof line, f) ? strtol(line, NULL, 10) : 0;
            g->port = port > 0 && port <= 65535 ? (int)port : 0;
            fclose(f);
        }
        if (!g->port)
            itest_sleep_ms(50);
    }
    if (!g->port)
        fail_msg("graph_test_server did not start (see %s)", fx->dir);
}

int graph_stop(graph_fx *g)
{
    if (g->pid <= 0)
        return 0;
    kill(g->pid, SIGTERM);
    int rc = itest_wait(g->pid);
    g->pid = 0;
    return rc;
}

/* The lines of path, each parsed into an item of elem bytes by parse (0:
 * not an item, skipped), as an array (heap; caller frees). */
static void *parse_lines(const char *path, size_t elem, int (*parse)(const char *line, void *item),
                         size_t *n)
{
    FILE *f = fopen(path, "r");
    size_t cap = 256;
    char *items = malloc(cap * elem);
    *n = 0;
    char line[512];
    while (f && items && fgets(line, sizeof line, f)) {
        if (*n == cap) {
            char *grown = realloc(items, 2 * cap * elem);
            if (!grown) {
                free(items);
                items = NULL;
                break;
            }
            items = grown;
            cap *= 2;
        }
        memset(items + *n * elem, 0, elem);
        *n += parse(line, items + *n * elem) ? 1 : 0;
    }
    if (f)
        fclose(f);
    if (!items)
        fail_msg("out of memory reading %s", path);
    return items;
}

/* <ms> <phone_number_id> <kind> <to> <reference> <wamid> */
static int parse_record(const char *line, void *item)
{
    graph_record *rec = item;
    char pnid[128], *rest;
    rec->ms = strtoll(line, &rest, 10);
    return rest != line && sscanf(rest, "%127s %15s %143s %63s %95s", pnid, rec->kind, rec->to,
                                  rec->ref, rec->wamid) == 5;
}

graph_record *graph_records(const graph_fx *g, size_t *n)
{
    return parse_lines(g->record_path, sizeof(graph_record), parse_record, n);
}

/* <start ms> <connection> <nth on it> <what> */
static int parse_request(const char *line, void *item)
{
    graph_request *q = item;
    long long ms;
    // NOLINTNEXTLINE(cert-err34-c): a line that does not scan is not counted
    if (sscanf(line, "%lld %ld %ld %23s", &ms, &q->connection, &q->nth, q->what) != 4)
        return 0;
    q->start_ms = ms;
    return 1;
}

static int by_start(const void *a, const void *b)
{
    const graph_request *x = a, *y = b;
    return x->start_ms < y->start_ms ? -1 : x->start_ms > y->start_ms;
}

graph_request *graph_requests(const graph_fx *g, size_t *n)
{
    graph_request *r = parse_lines(g->requests_path, sizeof(graph_request), parse_request, n);
    qsort(r, *n, sizeof *r, by_start);
    return r;
}

pid_t meta_sender_start(camp_fx *fx, const char *prefix, int port, const char *const *extra_env)
{
    char bin[1024], topic_prefix[128], group[160], url[128], lock[128];
    snprintf(bin, sizeof bin, "%s/bin/blazz-meta-sender", itest_env("BLAZZ_TEST_BIN_DIR"));
    snprintf(topic_prefix, sizeof topic_prefix, "BLAZZ_KAFKA_TOPIC_PREFIX=%s", prefix);
    /* blazz-meta-sender-...: the groups its principal may join */
    snprintf(group, sizeof group, "BLAZZ_CONSUMER_GROUP_ID=blazz-meta-sender-%s", prefix);
    snprintf(url, sizeof url, "BLAZZ_META_BASE_URL=http://127.0.0.1:%d", port);
    snprintf(lock, sizeof lock, "BLAZZ_META_LOCK_NAME=%smeta", prefix);
    static const char keys[] = "BLAZZ_SECRETS_KEYS=" ITEST_SECRETS_KEYS;
    /* the test's media store: what the fetcher keeps, what uploads read (§16) */
    char media[700];
    snprintf(media, sizeof media, "BLAZZ_MEDIA_LOCAL_DIR=%s/media", fx->dir);
    const char *env[40] = {topic_prefix, group, url, lock, keys,
                           "BLAZZ_OUTBOX_IDLE_POLL_MS=100", "BLAZZ_KAFKA_SESSION_TIMEOUT_MS=6000",
                           "BLAZZ_HTTP_LISTEN=127.0.0.1:0", media};
    size_t n = 9;
    for (size_t i = 0; extra_env && extra_env[i] && n < 39; i++)
        env[n++] = extra_env[i];
    env[n] = NULL;
    char *argv[] = {bin, NULL};
    return camp_spawn(fx, "meta-sender.log", argv, env);
}

void graph_media_file(const char *path, const void *bytes, size_t len, char *sha_hex,
                      char *sha_b64)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    unsigned char md[32];
    unsigned int n = 0;
    EVP_Digest(bytes, len, md, &n, EVP_sha256(), NULL);
    for (int k = 0; k < 32; k++)
        snprintf(sha_hex + 2 * k, 3, "%02x", md[k]);
    EVP_EncodeBlock((unsigned char *)sha_b64, md, 32);
}
