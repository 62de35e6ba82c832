/*
 * test_meta_media.c - inbound Meta media fetched, kept and linked exactly
 * once (issue 36, ARCHITECTURE.md §16.2), on the chain of test_meta_sender
 * (support/meta_world.c) with the Graph test server's media
 * (support/graph_media.c):
 * media_fetched_once_through_a_kill: BLAZZ_META_MEDIA_MESSAGES (200)
 * inbound webhooks with images, voice notes and PDFs; 10% of the downloads
 * fail once (half a 500, half a dropped connection), 1% of the media ids
 * have a sha256 at Meta that is not their bytes', 2% hand out a URL that
 * has expired already. meta-sender is SIGKILLed a third of the way. Then:
 * every message row exists; every good media is stored once (one object,
 * one chat_media row, chats.media_id set); every bad one failed with
 * media_sha256_mismatch and is on wa.outbound.dlq; downloads repeated (good
 * or bad) are at most the fetches in flight at the kill.
 * a_queued_job_wakes_an_idle_fetcher: the fetchers poll once a minute
 * (media.fetch_poll_ms 60000), idle since they started; three media
 * messages still get stored and linked within 30 s, which only the NOTIFY
 * chat-sync sends with their jobs can do.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent_itest.h"
#include "itest.h"
#include "itest_http.h"
#include "meta_itest.h"
#include "meta_world.h"

#define fx agent_test_fx
#define mw meta_test_world

#define MEDIA_ID_BASE 7100000000LL
#define MEDIA_MAX 5000

typedef struct one_media {
    char id[32], mime[32], type[16], fault[16], sha_hex[65], sha_b64[48], path[700];
} one_media;

/* The i'th media: its family by i % 3, its fault by i. */
static void describe(one_media *m, int i)
{
    static const char *const mimes[] = {"image/jpeg", "audio/ogg", "application/pdf"};
    static const char *const types[] = {"image", "audio", "document"};
    snprintf(m->id, sizeof m->id, "%lld", MEDIA_ID_BASE + i);
    snprintf(m->mime, sizeof m->mime, "%s", mimes[i % 3]);
    snprintf(m->type, sizeof m->type, "%s", types[i % 3]);
    const char *fault = i % 100 == 7 ? "badsha"
                        : i % 10 == 3 ? (i % 20 == 3 ? "transient" : "drop")
                        : i % 50 == 11 ? "expired"
                                       : "none";
    snprintf(m->fault, sizeof m->fault, "%s", fault);
    snprintf(m->path, sizeof m->path, "%s/media-src-%d", fx->camp.dir, i);
}

/* Bytes of m's family, unique to i: the magic numbers the store sniffs,
 * then filler; their digests, hex and (as Meta's webhooks give it) base64. */
static void write_bytes(one_media *m, int i)
{
    unsigned char buf[3000];
    static const unsigned char jpeg[] = {0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 'J', 'F', 'I', 'F', 0};
    static const char ogg[] = "OggS", pdf[] = "%PDF-1.4\n";
    size_t head = i % 3 == 0 ? sizeof jpeg : i % 3 == 1 ? 4 : 9;
    memcpy(buf, i % 3 == 0 ? (const void *)jpeg : i % 3 == 1 ? (const void *)ogg : pdf, head);
    for (size_t k = head; k < sizeof buf; k++)
        buf[k] = (unsigned char)((k * 31 + (size_t)i * 7) & 0xff);
    snprintf((char *)buf + head, 24, "media %d", i);
    size_t len = 1000 + (size_t)(i % 7) * 250;
    graph_media_file(m->path, buf, len, m->sha_hex, m->sha_b64);
}

static void post_message(const one_media *m, int i)
{
    char from[32], wamid[64], content[512], extra[96] = "";
    snprintf(from, sizeof from, "62811000%03d", i % 40);
    snprintf(wamid, sizeof wamid, "wamid.MEDIA-%06d", i);
    if (strcmp(m->type, "document") == 0)
        snprintf(extra, sizeof extra, ",\"filename\":\"invoice-%d.pdf\"", i);
    else if (strcmp(m->type, "audio") == 0)
        snprintf(extra, sizeof extra, ",\"voice\":true");
    snprintf(content, sizeof content,
             "\"%s\":{\"id\":\"%s\",\"mime_type\":\"%s\",\"sha256\":\"%s\"%s}", m->type, m->id,
             m->mime, m->sha_b64, extra);
    meta_world_post_inbound(from, wamid, 1760000000LL + i, m->type, content);
}

/* The Graph test server's counts of media id: served downloads. */
static long served_of(json_t *counts, const char *id)
{
    return (long)json_integer_value(json_object_get(json_object_get(counts, id), "served"));
}

static json_t *media_counts(void)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/_media/counts", mw.graph.port);
    static itest_http_reply reply;
    itest_http("GET", url, NULL, 0, NULL, 10000, &reply);
    assert_int_equal(reply.status, 200);
    json_t *doc = json_loadb(reply.body, reply.len, 0, NULL);
    assert_non_null(doc);
    return doc;
}

typedef struct dlq_count {
    long mismatches;
} dlq_count;

static void count_dead_letter(void *ctx, const rd_kafka_message_t *msg)
{
    dlq_count *c = ctx;
    char code[64], origin[64];
    itest_header_text(msg, "dlt-error-code", code, sizeof code);
    itest_header_text(msg, "dlt-original-topic", origin, sizeof origin);
    if (strcmp(origin, "media_fetch_jobs") == 0 && strcmp(code, "media_sha256_mismatch") == 0)
        c->mismatches++;
}

/* Objects in the media store of the world's workspace. */
static long stored_objects(void)
{
    char dir[800];
    snprintf(dir, sizeof dir, "%s/media/ws/%lld", fx->camp.dir, (long long)mw.ws);
    DIR *d = opendir(dir);
    long n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static int64_t jobs_in(const char *state)
{
    return agent_int(fx, "SELECT count(*) FROM media_fetch_jobs WHERE workspace_id = %lld AND "
                         "state = '%s'", (long long)mw.ws, state);
}

/* The world `name` prepared, and the first n media described, written and
 * listed in the Graph test server's registry (its path to registry); the
 * count of those with a bad digest. */
static long prepare_media(const char *name, one_media *media, int n, char *registry,
                          size_t cap)
{
    meta_world_prepare(name, META_WORLD_PACED);
    snprintf(registry, cap, "%s/media-registry", fx->camp.dir);
    FILE *reg = fopen(registry, "w");
    assert_non_null(reg);
    long bad = 0;
    for (int i = 0; i < n; i++) {
        describe(&media[i], i);
        write_bytes(&media[i], i);
        fprintf(reg, "%s %s %s %s\n", media[i].id, media[i].mime, media[i].fault, media[i].path);
        bad += strcmp(media[i].fault, "badsha") == 0;
    }
    fclose(reg);
    return bad;
}

static void media_fetched_once_through_a_kill(void **state)
{
    (void)state;
    const char *e = getenv("BLAZZ_META_MEDIA_MESSAGES");
    long wanted = e ? strtol(e, NULL, 10) : 0;
    int n = wanted > 0 && wanted <= MEDIA_MAX ? (int)wanted : 200;
    /* static: a failed assertion leaves the function by longjmp */
    static one_media media[MEDIA_MAX];
    char registry[800];
    long bad = prepare_media("mm", media, n, registry, sizeof registry);
    const char *graph_args[] = {"--media", registry, NULL};
    meta_world_launch(graph_args);
    for (int i = 0; i < n; i++)
        post_message(&media[i], i);
    /* a third stored: SIGKILL meta-sender, count what it held */
    for (int i = 0; i < 3000 && jobs_in("done") < n / 3; i++)
        itest_sleep_ms(20);
    agent_kill(&mw.meta);
    int64_t at_kill = agent_int(fx, "SELECT count(*) FROM media_fetch_jobs WHERE workspace_id = "
                                    "%lld AND state = 'pending' AND leased_until > now()",
                                (long long)mw.ws);
    meta_world_start_meta_sender();
    agent_wait(fx, n, 120, "SELECT count(*) FROM chats WHERE workspace_id = %lld AND wam_id LIKE "
                           "'wamid.MEDIA-%%'", (long long)mw.ws);
    agent_wait(fx, 0, 300, "SELECT count(*) FROM media_fetch_jobs WHERE workspace_id = %lld AND "
                           "state = 'pending'", (long long)mw.ws);
    /* every good one stored once and linked, with the bytes' digest */
    json_t *counts = media_counts();
    long refetched = 0, good = 0;
    for (int i = 0; i < n; i++) {
        const one_media *m = &media[i];
        int is_bad = strcmp(m->fault, "badsha") == 0;
        int64_t linked = agent_int(
            fx, "SELECT count(*) FROM chats c JOIN chat_media cm ON cm.id = c.media_id WHERE "
                "c.workspace_id = %lld AND c.wam_id = 'wamid.MEDIA-%06d' AND cm.sha256 = '%s' "
                "AND cm.source = 'meta'", (long long)mw.ws, i, m->sha_hex);
        /* a fetch in flight at the kill is made again, whatever its bytes */
        long served = served_of(counts, m->id);
        assert_true(served >= 1);
        refetched += served - 1;
        if (is_bad) {
            assert_int_equal(linked, 0);
            continue;
        }
        good++;
        if (linked != 1)
            fail_msg("media %d (%s, %s) not linked", i, m->type, m->fault);
    }
    json_decref(counts);
    int64_t rows = agent_int(fx, "SELECT count(*) FROM chat_media WHERE workspace_id = %lld",
                             (long long)mw.ws);
    int64_t failed = agent_int(fx, "SELECT count(*) FROM media_fetch_jobs WHERE workspace_id = "
                                   "%lld AND state = 'failed' AND reason = 'media_sha256_mismatch'",
                               (long long)mw.ws);
    char dlq[160];
    snprintf(dlq, sizeof dlq, "%swa.outbound.dlq", fx->wh.prefix);
    dlq_count dead = {0};
    itest_consume_all(dlq, count_dead_letter, &dead);
    long objects = stored_objects();
    print_message("%d inbound media messages: %ld stored (%lld rows, %ld objects), %lld failed "
                  "with media_sha256_mismatch (%ld dead letters); %lld fetches in flight at the "
                  "SIGKILL, %ld downloads repeated\n",
                  n, good, (long long)rows, objects, (long long)failed, dead.mismatches,
                  (long long)at_kill, refetched);
    assert_int_equal(rows, good);
    assert_int_equal(objects, good);
    assert_int_equal(jobs_in("done"), good);
    assert_int_equal(failed, bad);
    assert_true(dead.mismatches >= bad);
    assert_true(refetched <= at_kill);
}

#define WAKE_MEDIA 3
#define WAKE_WAIT_S 30 /* half the poll below: a fetch by the poll comes too late */

static void a_queued_job_wakes_an_idle_fetcher(void **state)
{
    (void)state;
    static one_media media[WAKE_MEDIA];
    char registry[800];
    /* the first three: no fault, one of each family */
    assert_int_equal(prepare_media("mwake", media, WAKE_MEDIA, registry, sizeof registry), 0);
    meta_world_fetch_poll = "BLAZZ_MEDIA_FETCH_POLL_MS=60000";
    const char *graph_args[] = {"--media", registry, NULL};
    meta_world_launch(graph_args);
    meta_world_fetch_poll = "BLAZZ_MEDIA_FETCH_POLL_MS=250";
    /* the threads claimed once at their start, found nothing, and wait */
    itest_sleep_ms(3000);
    for (int i = 0; i < WAKE_MEDIA; i++)
        post_message(&media[i], i);
    agent_wait(fx, WAKE_MEDIA, WAKE_WAIT_S,
               "SELECT count(*) FROM chats c JOIN chat_media cm ON cm.id = c.media_id WHERE "
               "c.workspace_id = %lld AND c.wam_id LIKE 'wamid.MEDIA-%%'",
               (long long)mw.ws);
    print_message("%d media messages to fetchers polling once a minute: stored and linked "
                  "within %d s\n", WAKE_MEDIA, WAKE_WAIT_S);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(media_fetched_once_through_a_kill, agent_test_setup,
                                        meta_world_teardown),
        cmocka_unit_test_setup_teardown(a_queued_job_wakes_an_idle_fetcher, agent_test_setup,
                                        meta_world_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
