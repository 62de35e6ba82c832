/*
 * media_fetch.c - meta-sender's media fetcher threads (see media_fetch.h,
 * ARCHITECTURE.md §16.2).
 *
 * media.fetch_threads threads, each with its own PostgreSQL connection,
 * media store handle and libcurl handle (so its connections to Meta's
 * hosts stay open from one request to the next), so a few fetches run at
 * once and a slow download holds up only its own thread. The threads run
 * at a lower priority (nice 10): a backlog drains behind the messages. An
 * idle thread waits on its connection, which LISTENs on
 * BZ_PG_MEDIA_FETCH_CHANNEL (chat-sync NOTIFYs it with the jobs it
 * queues), for at most media.fetch_poll_ms: the poll finds what no NOTIFY
 * announces, retries falling due and leases running out. A thread works a
 * batch at a time:
 *   claim up to media.fetch_batch jobs (one statement, a lease each)
 *   -> for each, one after the other: the account's token (opened once
 *      for the jobs of one account that follow each other), GET
 *      /{media-id}, the download into a spool, checked against Meta's
 *      sha256
 *   -> one transaction that stores, links, marks done and announces every
 *      job fetched, so the database's flush is paid once a batch.
 * A download URL that answers 4xx has expired (it lives five minutes):
 * the media id is asked again once, at once. What may pass (5xx, 429, no
 * answer, a token being replaced, the store or database away) is retried
 * with backoff, up to media.fetch_max_attempts claims; what will not
 * (Graph refusing the id, a digest that does not match, too large, the
 * wrong type) is dead-lettered with its reason and the job failed. A job
 * of the batch is started only while its fetch cannot outlast its lease
 * (two requests of media.fetch_timeout_ms); the rest is handed back, as it
 * is on shutdown. A killed process leaves its claimed jobs leased: another
 * fetcher takes them when the leases run out, and nothing else is fetched
 * again.
 */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "media_fetch.h"
#include "pg/pg.h"

#define RECONNECT_MS 1000
#define STOP_CHECK_MS 200
#define FETCH_NICE 10

/* One batch: the claimed jobs; the first nfetched of them, moved to the
 * front as they are fetched, with their spools and objects. */
typedef struct batch {
    ms_media_job jobs[MS_MEDIA_BATCH_MAX];
    bz_media_spool *spools[MS_MEDIA_BATCH_MAX];
    bz_media_object objs[MS_MEDIA_BATCH_MAX];
    int owned[MS_MEDIA_BATCH_MAX];
    int n, nfetched;
    int64_t claimed_ms; /* monotonic: when the leases began */
} batch;

typedef struct fetch_thread {
    ms_media_fetcher *f;
    pthread_t thread;
    int started;
    PGconn *conn;
    bz_media_store *store;
    CURL *easy;
    batch *b;
    int64_t token_account; /* whose token is open in token, while its jobs follow */
    char *token;
} fetch_thread;

struct ms_media_fetcher {
    const ms_media_settings *s;
    const char *dsn;
    ms_media_metrics *m;
    bz_producer *dlq;
    atomic_int stop;
    fetch_thread *threads;
};

bz_status ms_media_metrics_register(ms_media_metrics *m, bz_metrics *reg, bz_error *err)
{
    const bz_metric_decl decls[] = {
        {.def = {.name = "blazz_meta_sender_media_fetched_total", .help = "inbound media stored"},
         .counter = &m->fetched},
        {.def = {.name = "blazz_meta_sender_media_bytes_total",
                 .help = "bytes of inbound media stored"},
         .counter = &m->bytes},
        {.def = {.name = "blazz_meta_sender_media_retries_total",
                 .help = "media fetches that failed transiently, retried later"},
         .counter = &m->retries},
        {.def = {.name = "blazz_meta_sender_media_failures_total",
                 .help = "media fetches given up and dead-lettered, by reason",
                 .label_names = (const char *const[]){"reason", NULL}},
         .counters = &m->failures},
    };
    return BZ_METRICS_DECLARE(reg, decls, err);
}

/* The thread's own connection, which LISTENs for the NOTIFY of jobs
 * queued. */
static bz_status connect_db(fetch_thread *t, bz_error *err)
{
    bz_pg *pg = NULL;
    bz_status st = bz_pg_open(t->f->dsn, &pg, err);
    if (st == BZ_OK)
        st = bz_pg_ensure(pg, err);
    PGconn *probe = st == BZ_OK ? bz_pg_conn(pg) : NULL;
    if (probe)
        st = bz_pg_connect_like(probe, &t->conn, err);
    bz_pg_close(pg);
    if (st == BZ_OK)
        st = bz_pg_exec(t->conn, "LISTEN " BZ_PG_MEDIA_FETCH_CHANNEL, err);
    if (st != BZ_OK && t->conn) {
        PQfinish(t->conn);
        t->conn = NULL;
    }
    return st;
}

static void forget_token(fetch_thread *t)
{
    if (t->token) {
        OPENSSL_cleanse(t->token, strlen(t->token));
        free(t->token);
    }
    t->token = NULL;
    t->token_account = 0;
}

/* The token of job's account: the one open already when the previous job
 * was that account's, else read and opened. */
static bz_status token_for(fetch_thread *t, const ms_media_job *job, bz_error *err)
{
    if (t->token && t->token_account == job->account_id)
        return BZ_OK;
    forget_token(t);
    bz_status st = ms_media_token(t->conn, t->f->s, job, &t->token, err);
    if (st == BZ_OK)
        t->token_account = job->account_id;
    return st;
}

/* Ask, download: the bytes in spool and their object, or why not. */
static bz_status fetch(fetch_thread *t, const ms_media_job *job, bz_media_spool **spool,
                       bz_media_object *obj, bz_error *err)
{
    const ms_media_settings *s = t->f->s;
    bz_media_kind kind;
    bz_status st = bz_media_kind_parse(job->kind, &kind, err);
    if (st == BZ_OK)
        st = token_for(t, job, err);
    /* A download URL that expired is asked for again, once, at once. */
    for (int round = 0; st == BZ_OK && round < 2; round++) {
        ms_media_meta meta;
        st = ms_media_ask(s, t->easy, job, t->token, &meta, err);
        if (st == BZ_OK && meta.file_size > (int64_t)bz_media_kind_max_bytes(kind))
            st = bz_reject(err, "media_too_large", "media %s: %" PRId64 " bytes, over the %s limit",
                           job->media_id, meta.file_size, job->kind);
        bz_media_spool_free(*spool);
        *spool = NULL;
        if (st == BZ_OK)
            st = bz_media_spool_begin(t->store, kind, spool, err);
        if (st == BZ_OK)
            st = ms_media_download(s, t->easy, job, t->token, &meta, *spool, obj, err);
        ms_media_meta_free(&meta);
        if (st != BZ_ERR_TRANSIENT || !err->reason ||
            strcmp(err->reason, "media_url_expired") != 0 || round == 1)
            break;
        st = BZ_OK;
    }
    return st;
}

static void give_up(fetch_thread *t, const ms_media_job *job, const char *reason,
                    const char *error)
{
    bz_error err;
    bz_error_clear(&err);
    int owned = 0;
    bz_status st = ms_media_dead_letter(t->f->dlq, t->f->s, job, reason, error, &err);
    if (st == BZ_OK)
        st = ms_media_fail(t->conn, job, reason, error, &owned, &err);
    if (st != BZ_OK) {
        bz_warn("media fetch chat_id=%" PRId64 ": cannot record its failure (%s): retried later",
                job->chat_id, err.msg);
        ms_media_retry(t->conn, t->f->s, job, err.msg, &err);
        return;
    }
    bz_warn("media fetch chat_id=%" PRId64 " media %s failed (%s): %s", job->chat_id,
            job->media_id, reason, error);
    bz_counter_inc(bz_counter_family_with(t->f->m->failures, reason));
}

static void retry_later(fetch_thread *t, const ms_media_job *job, const char *error)
{
    if (job->attempts >= t->f->s->max_attempts) {
        give_up(t, job, "media_fetch_exhausted", error);
        return;
    }
    bz_error err;
    bz_error_clear(&err);
    bz_counter_inc(t->f->m->retries);
    bz_info("media fetch chat_id=%" PRId64 " attempt %d: %s (retried later)", job->chat_id,
            job->attempts, error);
    if (ms_media_retry(t->conn, t->f->s, job, error, &err) != BZ_OK)
        bz_warn("media fetch chat_id=%" PRId64 ": %s (its lease runs out instead)", job->chat_id,
                err.msg);
}

/* Whether a fetch started now ends within the batch's leases. */
static int in_time(const fetch_thread *t)
{
    const ms_media_settings *s = t->f->s;
    return bz_monotonic_ms() + 2 * s->request_timeout_ms <= t->b->claimed_ms + s->lease_ms;
}

static void hand_back(fetch_thread *t, const ms_media_job *job)
{
    bz_error err;
    bz_error_clear(&err);
    if (ms_media_release(t->conn, job, &err) != BZ_OK)
        bz_warn("media fetch chat_id=%" PRId64 ": %s (its lease runs out instead)", job->chat_id,
                err.msg);
}

/* Job i fetched, handed back or failed; a fetched one joins the front of
 * the batch. */
static void fetch_one(fetch_thread *t, int i)
{
    batch *b = t->b;
    ms_media_job *job = &b->jobs[i];
    if (atomic_load(&t->f->stop) || !in_time(t)) {
        hand_back(t, job);
        return;
    }
    bz_error err;
    bz_error_clear(&err);
    bz_media_spool *spool = NULL;
    bz_media_object obj;
    memset(&obj, 0, sizeof obj);
    bz_status st = fetch(t, job, &spool, &obj, &err);
    if (st == BZ_OK) {
        int k = b->nfetched++;
        if (k != i)
            b->jobs[k] = *job;
        b->spools[k] = spool;
        b->objs[k] = obj;
        return;
    }
    bz_media_spool_free(spool);
    if (st == BZ_ERR_INVALID)
        give_up(t, job, err.reason ? err.reason : "media_invalid", err.msg);
    else
        retry_later(t, job, err.msg);
}

/* The fetched jobs stored in one transaction, or all retried later. */
static void store_fetched(fetch_thread *t)
{
    batch *b = t->b;
    bz_error err;
    bz_error_clear(&err);
    bz_status st = ms_media_store_and_link(t->conn, t->store, b->jobs, b->spools, b->objs,
                                           b->nfetched, b->owned, &err);
    for (int k = 0; k < b->nfetched; k++) {
        const ms_media_job *job = &b->jobs[k];
        if (st != BZ_OK) {
            retry_later(t, job, err.msg);
        } else if (b->owned[k]) {
            bz_counter_inc(t->f->m->fetched);
            bz_counter_add(t->f->m->bytes, b->objs[k].size);
        } else {
            bz_warn("media fetch chat_id=%" PRId64 ": another claim took the job over (lease "
                    "run out): its result is not used", job->chat_id);
        }
        bz_media_spool_free(b->spools[k]);
        b->spools[k] = NULL;
    }
}

static void work_batch(fetch_thread *t)
{
    batch *b = t->b;
    b->nfetched = 0;
    for (int i = 0; i < b->n; i++)
        fetch_one(t, i);
    if (b->nfetched > 0)
        store_fetched(t);
    forget_token(t);
}

/* One claim and its work; 0 when nothing was due. */
static int round_once(fetch_thread *t)
{
    bz_error err;
    bz_error_clear(&err);
    if (!t->conn && connect_db(t, &err) != BZ_OK) {
        bz_warn("media fetcher: %s", err.msg);
        return 0;
    }
    batch *b = t->b;
    b->claimed_ms = bz_monotonic_ms();
    if (ms_media_claim(t->conn, t->f->s->lease_ms, t->f->s->batch, b->jobs, &b->n, &err) !=
        BZ_OK) {
        bz_warn("media fetcher: %s", err.msg);
        if (PQstatus(t->conn) != CONNECTION_OK) {
            PQfinish(t->conn);
            t->conn = NULL;
        }
        return 0;
    }
    if (b->n > 0)
        work_batch(t);
    return b->n;
}

static int stop_asked(void *f)
{
    return atomic_load(&((ms_media_fetcher *)f)->stop);
}

/* Until a NOTIFY says jobs were queued or media.fetch_poll_ms pass; the
 * stop is looked at every STOP_CHECK_MS meanwhile, so a shutdown waits no
 * longer than it did when the thread slept between polls. */
static void wait_for_jobs(fetch_thread *t)
{
    bz_pg_wait_notify_or_stop(t->conn, t->f->s->idle_poll_ms, STOP_CHECK_MS, stop_asked, t->f);
}

static void *thread_main(void *arg)
{
    fetch_thread *t = arg;
    /* A backlog of media drains behind the messages, not before them: on a
     * busy machine the scheduler gives the CPU to meta-sender's sends and
     * to the services beside it first. */
    if (setpriority(PRIO_PROCESS, (id_t)gettid(), FETCH_NICE) != 0)
        bz_info("media fetcher: cannot lower its thread's priority (%s)", strerror(errno));
    while (!atomic_load(&t->f->stop)) {
        if (round_once(t))
            continue;
        if (t->conn)
            wait_for_jobs(t);
        else
            bz_sleep_ms(RECONNECT_MS);
    }
    return NULL;
}

static bz_status open_threads(ms_media_fetcher *f, bz_error *err)
{
    bz_status st = BZ_OK;
    for (int i = 0; i < f->s->threads && st == BZ_OK; i++) {
        fetch_thread *t = &f->threads[i];
        t->f = f;
        st = bz_media_store_open(f->s->config, &t->store, err);
        if (st == BZ_OK && (!(t->easy = curl_easy_init()) || !(t->b = calloc(1, sizeof *t->b))))
            st = bz_fail(err, BZ_ERR_NOMEM, "media fetcher: out of memory");
        if (st == BZ_OK && pthread_create(&t->thread, NULL, thread_main, t) != 0)
            st = bz_fail(err, BZ_ERR_INTERNAL, "media fetcher: cannot start a thread");
        t->started = st == BZ_OK;
    }
    return st;
}

bz_status ms_media_fetcher_start(const ms_media_settings *s, const char *dsn,
                                 const bz_kafka_settings *kafka, ms_media_metrics *m,
                                 ms_media_fetcher **out, bz_error *err)
{
    *out = NULL;
    if (s->threads == 0)
        return BZ_OK;
    if (s->lease_ms <= 2 * s->request_timeout_ms)
        return bz_fail(err, BZ_ERR_CONFIG,
                       "media.fetch_lease_ms must exceed twice media.fetch_timeout_ms (a lease "
                       "must outlast the fetch it covers)");
    ms_media_fetcher *f = calloc(1, sizeof *f);
    if (!f || !(f->threads = calloc((size_t)s->threads, sizeof *f->threads))) {
        free(f);
        return bz_fail(err, BZ_ERR_NOMEM, "media fetcher: out of memory");
    }
    f->s = s;
    f->dsn = dsn;
    f->m = m;
    bz_status st = bz_producer_new(kafka, &f->dlq, err);
    if (st == BZ_OK)
        st = open_threads(f, err);
    if (st != BZ_OK) {
        ms_media_fetcher_stop(f);
        return st;
    }
    bz_info("media fetcher: %d threads, batches of %d, lease %" PRId64 " ms", s->threads,
            s->batch, s->lease_ms);
    *out = f;
    return BZ_OK;
}

void ms_media_fetcher_stop(ms_media_fetcher *f)
{
    if (!f)
        return;
    atomic_store(&f->stop, 1);
    for (int i = 0; i < f->s->threads; i++) {
        fetch_thread *t = &f->threads[i];
        if (t->started)
            pthread_join(t->thread, NULL);
        if (t->conn)
            PQfinish(t->conn);
        if (t->store)
            bz_media_store_close(t->store);
        curl_easy_cleanup(t->easy);
        free(t->b);
        forget_token(t);
    }
    free(f->threads);
    if (f->dlq)
        bz_producer_free(f->dlq, 5000);
    free(f);
}
