/*
 * bench_media.c - inbound Meta media fetched by meta-sender's media fetcher
 * (ARCHITECTURE.md §16.2), on the real chain of support/meta_world.c
 * (ingest, chat-sync, meta-sender, the Graph test server with --media):
 *
 *  0. baseline, same run: FETCH_THREADS plain libcurl loops (one easy
 *     handle each, so connections are kept alive, as the fetcher's threads
 *     keep theirs) doing, per media id,
 *     GET /v23.0/{media-id} with the Bearer token, then GET of the URL it
 *     answered, bytes discarded; the same objects, the same server. Then
 *     the same loops keeping each object as the local store does (a file
 *     fsynced, renamed into place, the directory fsynced): the disk's
 *     share of the fetcher's time, which a download loop does not pay;
 *  1. throughput: the same objects as inbound image webhooks through ingest
 *     and chat-sync while meta-sender is stopped, so every media_fetch_jobs
 *     row is pending; then meta-sender starts with FETCH_THREADS fetcher
 *     threads (media.fetch_threads' default) and the figure is the time
 *     from its start to the last job's finished_at (MB/s, objects/s, and
 *     the ratio to the baseline, goal >= 0.8, printed, not asserted), and
 *     the steady rate from the first job's finished_at to the last's
 *     (without meta-sender's start and the first fetch);
 *  2. message row latency: text webhooks at LATENCY_RATE/s, each from the
 *     200 of ingest's /v1/meta/webhook to its chats row's updated_at (the
 *     inserting transaction's time, the rows are never updated; as
 *     bench_system measures "chats row committed"), first with meta-sender
 *     idle, then while it fetches a second set of BESIDE_SETS times as
 *     many objects (queued as in 1, so the fetch lasts several seconds;
 *     the texts go on until its last job is done): p50 / p99 of both and
 *     their ratios. Two seconds of texts before, not measured, take the
 *     fresh chain's first-second cost (bench_system says why) out of the
 *     "alone" figure.
 *
 * Objects: BLAZZ_BENCH_MEDIA_OBJECTS (400) JPEGs of 100-300 KB, distinct
 * bytes each (the store keeps one object per content). Figures only:
 * nothing here asserts a time.
 */
#include <curl/curl.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent_itest.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "itest.h"
#include "itest_bench.h"
#include "meta_world.h"

#define fx agent_test_fx
#define mw meta_test_world

#define FETCH_THREADS 2
#define LATENCY_RATE 50
#define MEDIA_ID_BASE 7300000000LL
#define SET_STRIDE 100000 /* media ids of the second set */
#define BESIDE_SETS 3
#define TOKEN "token-one" /* meta_world's token */

typedef struct media_set {
    int n, first; /* ids MEDIA_ID_BASE + first .. + first + n - 1 */
    int64_t bytes;
} media_set;

/* ---- the objects ----------------------------------------------------------------- */

/* Object i: a JPEG header, then bytes of a xorshift stream seeded by i,
 * 100-300 KB; the registry line for the Graph test server and the
 * webhook's base64 sha256 (as Meta's webhooks give it). */
static size_t write_object(int i, FILE *registry, char sha_b64[48])
{
    static const unsigned char jpeg[] = {0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 'J', 'F', 'I', 'F', 0};
    size_t len = 100000 + (size_t)((unsigned)i * 7919u % 200000u);
    unsigned char *buf = malloc(len);
    assert_non_null(buf);
    memcpy(buf, jpeg, sizeof jpeg);
    uint64_t x = 0x9e3779b97f4a7c15ULL ^ (uint64_t)i;
    for (size_t k = sizeof jpeg; k < len; k++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf[k] = (unsigned char)x;
    }
    char path[800];
    snprintf(path, sizeof path, "%s/media-src-%d", fx->camp.dir, i);
    char sha_hex[65];
    graph_media_file(path, buf, len, sha_hex, sha_b64);
    free(buf);
    fprintf(registry, "%lld image/jpeg none %s\n", MEDIA_ID_BASE + i, path);
    return len;
}

/* Both sets' files and registry; each set's webhook digests into b64. */
static void write_objects(media_set *a, media_set *b, char (*b64)[48], const char *registry)
{
    FILE *reg = fopen(registry, "w");
    assert_non_null(reg);
    media_set *sets[] = {a, b};
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < sets[s]->n; i++)
            sets[s]->bytes += (int64_t)write_object(sets[s]->first + i, reg,
                                                    b64[s * a->n + i]);
    fclose(reg);
}

/* ---- 0. the baseline: libcurl loops -------------------------------------------- */

typedef struct loop_ctx {
    const media_set *set;
    int port;
    int *next; /* shared, under lock */
    pthread_mutex_t *lock;
    const char *dir; /* NULL: discard the bytes; else keep them there */
    int fd;          /* the object being kept */
    int64_t bytes;
    int failed;
} loop_ctx;

typedef struct buffer {
    char data[4096];
    size_t len;
} buffer;

static size_t keep(char *d, size_t s, size_t n, void *u)
{
    buffer *b = u;
    size_t len = s * n;
    if (b->len + len >= sizeof b->data)
        return 0;
    memcpy(b->data + b->len, d, len);
    b->len += len;
    return len;
}

static size_t discard(char *d, size_t s, size_t n, void *u)
{
    (void)d;
    *(int64_t *)u += (int64_t)(s * n);
    return s * n;
}

static size_t to_file(char *d, size_t s, size_t n, void *u)
{
    loop_ctx *c = u;
    ssize_t w = write(c->fd, d, s * n);
    c->bytes += w > 0 ? w : 0;
    return w > 0 ? (size_t)w : 0;
}

/* GET url into c->dir/<i> as the local store commits (store_local.c):
 * a temporary file, fsync, rename, fsync of the directory. */
static int keep_object(CURL *e, loop_ctx *c, int i)
{
    char tmp[800], path[800];
    snprintf(tmp, sizeof tmp, "%s/.spool-%d", c->dir, i);
    snprintf(path, sizeof path, "%s/%d", c->dir, i);
    c->fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (c->fd < 0)
        return 0;
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, to_file);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    int ok = curl_easy_perform(e) == CURLE_OK && fsync(c->fd) == 0;
    ok &= close(c->fd) == 0 && rename(tmp, path) == 0;
    int dfd = open(c->dir, O_RDONLY | O_DIRECTORY);
    ok &= dfd >= 0 && fsync(dfd) == 0;
    if (dfd >= 0)
        close(dfd);
    return ok;
}

static void *fetch_loop(void *arg)
{
    loop_ctx *c = arg;
    CURL *e = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Authorization: Bearer " TOKEN);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    for (;;) {
        pthread_mutex_lock(c->lock);
        int i = (*c->next)++;
        pthread_mutex_unlock(c->lock);
        if (i >= c->set->n)
            break;
        char url[160];
        snprintf(url, sizeof url, "http://127.0.0.1:%d/v23.0/%lld", c->port,
                 MEDIA_ID_BASE + c->set->first + i);
        buffer meta = {.len = 0};
        curl_easy_setopt(e, CURLOPT_URL, url);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, keep);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, &meta);
        long status = 0;
        json_t *doc = NULL;
        if (curl_easy_perform(e) == CURLE_OK &&
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status == 200)
            doc = json_loadb(meta.data, meta.len, 0, NULL);
        const char *download = json_string_value(json_object_get(doc, "url"));
        if (!download) {
            c->failed++;
            json_decref(doc);
            continue;
        }
        curl_easy_setopt(e, CURLOPT_URL, download);
        if (c->dir) {
            c->failed += !keep_object(e, c, i);
        } else {
            curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
            curl_easy_setopt(e, CURLOPT_WRITEDATA, &c->bytes);
            c->failed += curl_easy_perform(e) != CURLE_OK;
        }
        json_decref(doc);
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    return NULL;
}

/* Seconds the loops took over the set, keeping the bytes in dir (NULL:
 * discarding them); fails unless every byte came. */
static double baseline_seconds(const media_set *set, const char *dir)
{
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    int next = 0;
    loop_ctx ctx[FETCH_THREADS];
    pthread_t t[FETCH_THREADS];
    double t0 = bz_metrics_clock();
    for (int k = 0; k < FETCH_THREADS; k++) {
        ctx[k] = (loop_ctx){.set = set, .port = mw.graph.port, .next = &next, .lock = &lock,
                            .dir = dir};
        assert_int_equal(pthread_create(&t[k], NULL, fetch_loop, &ctx[k]), 0);
    }
    int64_t bytes = 0;
    int failed = 0;
    for (int k = 0; k < FETCH_THREADS; k++) {
        pthread_join(t[k], NULL);
        bytes += ctx[k].bytes;
        failed += ctx[k].failed;
    }
    double seconds = bz_metrics_clock() - t0;
    assert_int_equal(failed, 0);
    assert_int_equal(bytes, set->bytes);
    return seconds;
}

/* ---- 1. the fetcher ------------------------------------------------------------ */

static const char *const set_sql = "meta_media_id::bigint BETWEEN %lld AND %lld";

static int64_t jobs_of(const media_set *set, const char *state)
{
    char where[160];
    snprintf(where, sizeof where, set_sql, MEDIA_ID_BASE + set->first,
             MEDIA_ID_BASE + set->first + set->n - 1);
    return agent_int(fx, "SELECT count(*) FROM media_fetch_jobs WHERE workspace_id = %lld AND "
                         "state = '%s' AND %s", (long long)mw.ws, state, where);
}

/* The set's image webhooks, meta-sender stopped: every job pending. */
static void queue_set(const media_set *set, char (*b64)[48])
{
    agent_kill(&mw.meta);
    for (int i = 0; i < set->n; i++) {
        char from[32], wamid[64], content[256];
        snprintf(from, sizeof from, "62812%07d", i % 200);
        snprintf(wamid, sizeof wamid, "wamid.BMEDIA-%d-%06d", set->first, i);
        snprintf(content, sizeof content,
                 "\"image\":{\"id\":\"%lld\",\"mime_type\":\"image/jpeg\",\"sha256\":\"%s\"}",
                 MEDIA_ID_BASE + set->first + i, b64[i]);
        meta_world_post_inbound(from, wamid, 1760000000LL + i, "image", content);
    }
    for (int i = 0; i < 6000 && jobs_of(set, "pending") < set->n; i++)
        itest_sleep_ms(20);
    assert_int_equal(jobs_of(set, "pending"), set->n);
}

/* Wall ms of the set's first (agg "min") or last ("max") finished_at. */
static int64_t finished_ms(const media_set *set, const char *agg)
{
    char where[160];
    snprintf(where, sizeof where, set_sql, MEDIA_ID_BASE + set->first,
             MEDIA_ID_BASE + set->first + set->n - 1);
    return agent_int(fx, "SELECT (extract(epoch FROM %s(finished_at)) * 1000)::bigint FROM "
                         "media_fetch_jobs WHERE workspace_id = %lld AND %s",
                     agg, (long long)mw.ws, where);
}

static void wait_done(const media_set *set)
{
    for (int i = 0; i < 12000 && jobs_of(set, "pending") > 0; i++)
        itest_sleep_ms(50);
    assert_int_equal(jobs_of(set, "done"), set->n);
}

/* ---- 2. message row latency ---------------------------------------------------- */

/* One text webhook of phase, as Meta posts it; the wall ms of ingest's 200. */
static int64_t post_text(const char *phase, int i)
{
    char from[32], wamid[64], content[96];
    snprintf(from, sizeof from, "62813%07d", i % 500);
    snprintf(wamid, sizeof wamid, "wamid.BLAT-%s-%06d", phase, i);
    snprintf(content, sizeof content, "\"text\":{\"body\":\"halo %s %d\"}", phase, i);
    meta_world_post_inbound(from, wamid, 1760000000LL + i, "text", content);
    return bz_wall_ms();
}

/* Texts of phase at LATENCY_RATE/s, for seconds or, when set is given,
 * until its jobs are all done; accepted ms into *accepted (heap); how many. */
static int post_texts(const char *phase, int seconds, const media_set *set, int64_t **accepted)
{
    int cap = LATENCY_RATE * 600, n = 0;
    *accepted = calloc((size_t)cap, sizeof **accepted);
    assert_non_null(*accepted);
    int64_t start = bz_monotonic_ms();
    for (; n < cap; n++) {
        if (set ? n % 10 == 0 && jobs_of(set, "pending") == 0 : n >= seconds * LATENCY_RATE)
            break;
        int64_t due = start + (int64_t)n * 1000 / LATENCY_RATE;
        while (bz_monotonic_ms() < due)
            itest_sleep_ms(1);
        (*accepted)[n] = post_text(phase, n);
    }
    return n;
}

/* p50 and p99 of 200 -> chats row over the phase's n texts. */
static void row_latency(const char *phase, const int64_t *accepted, int n, int64_t *p50,
                        int64_t *p99)
{
    agent_wait(fx, n, 120, "SELECT count(*) FROM chats WHERE workspace_id = %lld AND wam_id "
                           "LIKE 'wamid.BLAT-%s-%%'", (long long)mw.ws, phase);
    char sql[320];
    snprintf(sql, sizeof sql,
             "SELECT substr(wam_id, %zu)::int, (extract(epoch FROM updated_at) * 1000)::bigint "
             "FROM chats WHERE workspace_id = %lld AND wam_id LIKE 'wamid.BLAT-%s-%%'",
             strlen("wamid.BLAT-") + strlen(phase) + 2, (long long)mw.ws, phase);
    PGresult *res = PQexec(fx->camp.pg, sql);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    int rows = PQntuples(res);
    int64_t *lat = calloc((size_t)rows + 1, sizeof *lat);
    assert_non_null(lat);
    for (int r = 0; r < rows; r++) {
        int i = (int)strtol(PQgetvalue(res, r, 0), NULL, 10);
        lat[r] = strtoll(PQgetvalue(res, r, 1), NULL, 10) - accepted[i];
    }
    PQclear(res);
    qsort(lat, (size_t)rows, sizeof *lat, itest_cmp_i64);
    *p50 = itest_percentile(lat, (size_t)rows, 0.50);
    *p99 = itest_percentile(lat, (size_t)rows, 0.99);
    free(lat);
}

static double ratio(int64_t a, int64_t b)
{
    return b > 0 ? (double)a / (double)b : 0.0;
}

static void bench_media(void **state)
{
    agent_test_setup(state);
    int n = itest_env_int("BLAZZ_BENCH_MEDIA_OBJECTS", 400, 10, 4000);
    int seconds = itest_env_int("BLAZZ_BENCH_MEDIA_LATENCY_SECONDS", 8, 2, 600);
    meta_world_prepare("bmd", META_WORLD_PACED);
    media_set one = {.n = n, .first = 0}, two = {.n = BESIDE_SETS * n, .first = SET_STRIDE};
    char (*b64)[48] = calloc((1 + BESIDE_SETS) * (size_t)n, sizeof *b64);
    assert_non_null(b64);
    char registry[800];
    snprintf(registry, sizeof registry, "%s/media-registry", fx->camp.dir);
    write_objects(&one, &two, b64, registry);
    meta_world_fetch_threads = "BLAZZ_MEDIA_FETCH_THREADS=" META_WORLD_TEXT(FETCH_THREADS);
    const char *graph_args[] = {"--media", registry, NULL};
    meta_world_launch(graph_args);

    /* 2a first, on a quiet chain: meta-sender running with nothing to fetch */
    int64_t *acc_alone, *acc_beside;
    int64_t *warm;
    int n_warm = post_texts("W", 2, NULL, &warm);
    agent_wait(fx, n_warm, 120, "SELECT count(*) FROM chats WHERE workspace_id = %lld AND wam_id "
                                "LIKE 'wamid.BLAT-W-%%'", (long long)mw.ws);
    free(warm);
    int n_alone = post_texts("A", seconds, NULL, &acc_alone);
    int64_t alone50, alone99;
    row_latency("A", acc_alone, n_alone, &alone50, &alone99);

    double base_s = baseline_seconds(&one, NULL);
    char kept[800];
    snprintf(kept, sizeof kept, "%s/baseline-kept", fx->camp.dir);
    assert_int_equal(mkdir(kept, 0700), 0);
    double durable_s = baseline_seconds(&one, kept);
    queue_set(&one, b64);
    int64_t t0 = bz_wall_ms();
    meta_world_start_meta_sender();
    wait_done(&one);
    int64_t first_done = finished_ms(&one, "min"), last_done = finished_ms(&one, "max");
    double fetch_s = (double)(last_done - t0) / 1000.0;
    double steady_s = (double)(last_done - first_done) / 1000.0;

    queue_set(&two, b64 + n);
    int64_t t1 = bz_wall_ms();
    meta_world_start_meta_sender();
    int n_beside = post_texts("B", 0, &two, &acc_beside);
    wait_done(&two);
    double beside_s = (double)(finished_ms(&two, "max") - t1) / 1000.0;
    int64_t beside50, beside99;
    row_latency("B", acc_beside, n_beside, &beside50, &beside99);

    double mb = (double)one.bytes / 1e6;
    double base_mbs = mb / base_s, fetch_mbs = mb / fetch_s, durable_mbs = mb / durable_s;
    /* the steady window holds n - 1 objects: the first one's end opens it */
    double steady_mbs = mb * (n - 1) / n / steady_s, steady_ops = (n - 1) / steady_s;
    printf("inbound Meta media, %d JPEGs of 100-300 KB (%.1f MB), %d fetcher threads, "
           "loopback Graph API server, local store\n", n, mb, FETCH_THREADS);
    printf("  %-48s %8.1f MB/s %8.1f objects/s\n", "baseline: libcurl loops, same objects",
           base_mbs, n / base_s);
    printf("  %-48s %8.1f MB/s %8.1f objects/s\n", "the same loops keeping the bytes durably",
           durable_mbs, n / durable_s);
    printf("  %-48s %8.1f MB/s %8.1f objects/s  (%.2f x baseline, goal >= 0.8)\n",
           "meta-sender's fetcher, start -> last job done", fetch_mbs, n / fetch_s,
           fetch_mbs / base_mbs);
    printf("  %-48s %8.1f MB/s %8.1f objects/s  (%.2f x baseline, %.2f x durable)\n",
           "meta-sender's fetcher, first -> last job done", steady_mbs, steady_ops,
           steady_mbs / base_mbs, steady_mbs / durable_mbs);
    printf("  %-48s %5lld / %lld ms (p50 / p99, %d texts)\n", "webhook 200 -> chats row, alone",
           (long long)alone50, (long long)alone99, n_alone);
    printf("  %-48s %5lld / %lld ms (p50 / p99, %d texts; fetch took %.1f s)\n",
           "webhook 200 -> chats row, beside the fetch", (long long)beside50,
           (long long)beside99, n_beside, beside_s);
    printf("BENCH media_baseline_mb_per_s %.1f MB/s\n", base_mbs);
    printf("BENCH media_baseline_objects_per_s %.1f objects/s\n", n / base_s);
    printf("BENCH media_baseline_durable_mb_per_s %.1f MB/s\n", durable_mbs);
    printf("BENCH media_baseline_durable_objects_per_s %.1f objects/s\n", n / durable_s);
    printf("BENCH media_fetch_mb_per_s %.1f MB/s\n", fetch_mbs);
    printf("BENCH media_fetch_objects_per_s %.1f objects/s\n", n / fetch_s);
    printf("BENCH media_fetch_vs_baseline %.2f x\n", fetch_mbs / base_mbs);
    printf("BENCH media_fetch_steady_mb_per_s %.1f MB/s\n", steady_mbs);
    printf("BENCH media_fetch_steady_objects_per_s %.1f objects/s\n", steady_ops);
    printf("BENCH media_fetch_steady_vs_baseline %.2f x\n", steady_mbs / base_mbs);
    printf("BENCH media_fetch_steady_vs_durable_baseline %.2f x\n", steady_mbs / durable_mbs);
    printf("BENCH media_row_alone_p50 %lld ms\n", (long long)alone50);
    printf("BENCH media_row_alone_p99 %lld ms\n", (long long)alone99);
    printf("BENCH media_row_beside_fetch_p50 %lld ms\n", (long long)beside50);
    printf("BENCH media_row_beside_fetch_p99 %lld ms\n", (long long)beside99);
    printf("BENCH media_row_beside_fetch_p50_ratio %.2f x\n", ratio(beside50, alone50));
    printf("BENCH media_row_beside_fetch_p99_ratio %.2f x\n", ratio(beside99, alone99));
    free(acc_alone);
    free(acc_beside);
    free(b64);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return itest_bench_run("bench_media", bench_media, meta_world_teardown);
}
