/*
 * test_gateway_sim.c - blazz-gateway-sim publishes what it says it does.
 *
 * publishes_seeded_traffic: two kafka-mode runs with the same seed, each
 * under its own topic prefix and world tag, capped at a fixed number of
 * events. Everything on <prefix>wa.inbound.gw.sim (the topic of its gateway,
 * "sim", ARCHITECTURE.md §9.2) must decode as an
 * InboundEvent with a full envelope (no workspace_id: ingest resolves it),
 * key = session_id, headers event_id / trace_id equal to the envelope's,
 * unique event ids, history batches of at most 50 chats; the count by kind
 * must equal the simulator's own status file; and the two runs must show
 * the same sequence of kinds for every session (sessions matched by their
 * place in the world, since tags differ).
 *
 * sends_stray_events: a kafka-mode run with --stray-events 2 puts exactly
 * two inbound private messages under the session "sim-<tag>-stray", which
 * no whatsapp_accounts row has (ingest dead-letters such events: what `make
 * run` shows as its dead letter), and nothing else changes: the other
 * events still go to the world's sessions and match the status file.
 *
 * answers_outbound: a run with --answer-outbound and no generated traffic;
 * the test produces SendMessages (one of them twice, as a replay) to
 * <prefix>wa.outbound.gw.sim, the topic of the sim's gateway, and waits for each client_reference to come back on
 * its topic as an echo then receipts SENT, DELIVERED, READ, in that
 * order and with the echo's wam_id; the replay must not be sent again
 * (sends log and status file count each key once; the status file counts
 * the replay as a duplicate). A mark-read command
 * (SendMessage kind MARK_READ, sent twice) is honoured once: one "read"
 * line in the sends log, counted as a read, and nothing comes back for it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "blazz/v1/campaign.pb-c.h"
#include "blazz/v1/inbound.pb-c.h"
#include "core/uuid.h"
#include "itest.h"
#include "kafka/topics.h"

#define EVENTS_PER_RUN 1500
#define SEED "4242"
#define SESSIONS_MAX 16
#define SENDS 20

enum { K_SESSION, K_HISTORY, K_PRIVATE, K_GROUP, K_ECHO, K_ACK, K_GROUP_UPDATE, K_COUNT };
static const char *const kind_names[K_COUNT] = {"session_status", "history_sync",
                                                "message_private", "message_group",
                                                "message_echo", "ack", "group_update"};

static const char *sim_program(void)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s/bin/blazz-gateway-sim", itest_env("BLAZZ_TEST_BIN_DIR"));
    return path;
}

/* Same, for a file that may not be written yet. */
static long status_value_or(const char *path, const char *key, long fallback)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return fallback;
    fclose(f);
    long v = itest_status_value(path, key);
    return v < 0 ? fallback : v;
}

static int kind_of(const Blazz__V1__InboundEvent *ev)
{
    switch (ev->payload_case) {
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_SESSION_STATUS: return K_SESSION;
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_HISTORY_SYNC: return K_HISTORY;
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_ACK: return K_ACK;
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_GROUP_UPDATE: return K_GROUP_UPDATE;
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_MESSAGE:
        if (ev->message->from_me)
            return K_ECHO;
        return ev->message->chat_type == BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_GROUP ? K_GROUP
                                                                                : K_PRIVATE;
    default: return -1;
    }
}

/* ---- reading a run back ---------------------------------------------------- */

typedef struct session_trace {
    char place[16]; /* "w0-a1": the session's place in the world */
    char kinds[4096];
    size_t n;
} session_trace;

typedef struct sync_run {
    char sync_id[128];
    int total;
    unsigned seen; /* bit i: batch i arrived */
} sync_run;

#define SYNC_RUNS_MAX 64

typedef struct run_read {
    const char *tag;
    sync_run syncs[SYNC_RUNS_MAX];
    size_t nsyncs;
    long counts[K_COUNT];
    long total;
    char (*event_ids)[BZ_UUID_STR_SIZE];
    size_t nids;
    session_trace sessions[SESSIONS_MAX];
    size_t nsessions;
} run_read;

static const char *header_value(const rd_kafka_message_t *m, const char *name, char *out,
                                size_t cap)
{
    rd_kafka_headers_t *hdrs = NULL;
    const void *v;
    size_t len;
    out[0] = '\0';
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_header_get_last(hdrs, name, &v, &len) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        len < cap) {
        memcpy(out, v, len);
        out[len] = '\0';
    }
    return out;
}

static session_trace *trace_for(run_read *r, const char *session_id)
{
    char prefix[64];
    snprintf(prefix, sizeof prefix, "sim-%s-", r->tag);
    assert_true(strncmp(session_id, prefix, strlen(prefix)) == 0);
    const char *place = session_id + strlen(prefix);
    for (size_t i = 0; i < r->nsessions; i++)
        if (strcmp(r->sessions[i].place, place) == 0)
            return &r->sessions[i];
    assert_true(r->nsessions < SESSIONS_MAX);
    session_trace *t = &r->sessions[r->nsessions++];
    snprintf(t->place, sizeof t->place, "%s", place);
    return t;
}

static void check_envelope(const rd_kafka_message_t *m, const Blazz__V1__InboundEvent *ev)
{
    const Blazz__V1__Envelope *env = ev->envelope;
    assert_non_null(env);
    assert_true(bz_uuid_is_valid(env->event_id));
    assert_int_equal(env->workspace_id, 0);
    assert_int_equal(env->provider, BLAZZ__V1__PROVIDER__PROVIDER_WEBJS);
    assert_true(env->occurred_at_ms > 0 && env->produced_at_ms >= env->occurred_at_ms);
    assert_int_equal(strlen(env->trace_id), 32);
    char value[64];
    assert_string_equal(header_value(m, "event_id", value, sizeof value), env->event_id);
    assert_string_equal(header_value(m, "trace_id", value, sizeof value), env->trace_id);
    assert_int_equal(m->key_len, strlen(env->session_id));
    assert_memory_equal(m->key, env->session_id, m->key_len);
}

/* Batches of one sync run: at most 50 chats each (seed 002), every index
 * once, all announcing the same total. */
static void note_history_batch(run_read *r, const Blazz__V1__HistorySyncBatch *b)
{
    assert_true(b->n_chats >= 1 && b->n_chats <= 50);
    assert_true(b->batch_index >= 0 && b->batch_index < b->batch_total && b->batch_total <= 32);
    sync_run *run = NULL;
    for (size_t i = 0; i < r->nsyncs && !run; i++)
        if (strcmp(r->syncs[i].sync_id, b->sync_id) == 0)
            run = &r->syncs[i];
    if (!run) {
        assert_true(r->nsyncs < SYNC_RUNS_MAX);
        run = &r->syncs[r->nsyncs++];
        snprintf(run->sync_id, sizeof run->sync_id, "%s", b->sync_id);
        run->total = b->batch_total;
    }
    assert_int_equal(run->total, b->batch_total);
    assert_false(run->seen & (1u << b->batch_index));
    run->seen |= 1u << b->batch_index;
}

static void on_generated(void *ctx, const rd_kafka_message_t *m)
{
    run_read *r = ctx;
    Blazz__V1__InboundEvent *ev =
        blazz__v1__inbound_event__unpack(NULL, m->len, (const uint8_t *)m->payload);
    assert_non_null(ev);
    check_envelope(m, ev);
    int kind = kind_of(ev);
    assert_true(kind >= 0);
    if (kind == K_HISTORY)
        note_history_batch(r, ev->history_sync);
    r->counts[kind]++;
    r->total++;
    r->event_ids = realloc(r->event_ids, (r->nids + 1) * sizeof *r->event_ids);
    assert_non_null(r->event_ids);
    snprintf(r->event_ids[r->nids++], BZ_UUID_STR_SIZE, "%s", ev->envelope->event_id);
    session_trace *t = trace_for(r, ev->envelope->session_id);
    assert_true(t->n + 1 < sizeof t->kinds);
    t->kinds[t->n++] = (char)('a' + kind);
    blazz__v1__inbound_event__free_unpacked(ev, NULL);
}

static int compare_ids(const void *a, const void *b)
{
    return strcmp(a, b);
}

static int compare_places(const void *a, const void *b)
{
    return strcmp(((const session_trace *)a)->place, ((const session_trace *)b)->place);
}

/* Run the simulator once in kafka mode under prefix, wait for it to exit. */
static void run_sim_kafka(const char *prefix, const char *tag, const char *status_path)
{
    char log_path[256];
    snprintf(log_path, sizeof log_path, "/tmp/%s.log", tag);
    setenv("BLAZZ_KAFKA_TOPIC_PREFIX", prefix, 1);
    char *argv[] = {(char *)sim_program(), "--mode", "kafka", "--rate", "3000", "--events",
                    "1500", "--duration", "40", "--seed", SEED, "--workspaces", "2",
                    "--accounts-per-workspace", "2", "--history-chats", "60",
                    "--history-messages", "5", "--tag", (char *)tag, "--status-file",
                    (char *)status_path, NULL};
    assert_int_equal(itest_wait(itest_spawn(argv, log_path)), 0);
    unsetenv("BLAZZ_KAFKA_TOPIC_PREFIX");
    remove(log_path);
}

static void read_run(const char *prefix, run_read *r)
{
    char topic[BZ_TOPIC_NAME_MAX];
    snprintf(topic, sizeof topic, "%swa.inbound.gw.sim", prefix);
    itest_consume_all(topic, on_generated, r);
    qsort(r->sessions, r->nsessions, sizeof r->sessions[0], compare_places);
}

static void check_matches_status_file(const run_read *r, const char *status_path)
{
    assert_int_equal(itest_status_value(status_path, "sent"), EVENTS_PER_RUN);
    assert_int_equal(itest_status_value(status_path, "accepted"), EVENTS_PER_RUN);
    assert_int_equal(r->total, EVENTS_PER_RUN);
    for (int k = 0; k < K_COUNT; k++) {
        char key[64];
        snprintf(key, sizeof key, "sent_%s", kind_names[k]);
        printf("  %-16s %ld\n", kind_names[k], r->counts[k]);
        assert_int_equal(itest_status_value(status_path, key), r->counts[k]);
    }
    /* The mix a demo relies on: connects, history, every live kind. */
    assert_true(r->counts[K_SESSION] >= 4);
    /* Every account's first sync is complete: ceil(60/50) = 2 batches; a
     * reconnect starts another run, which the event cap may cut short. */
    int first_runs = 0;
    for (size_t i = 0; i < r->nsyncs; i++) {
        size_t n = strlen(r->syncs[i].sync_id);
        if (n > 2 && strcmp(r->syncs[i].sync_id + n - 2, "-0") == 0) {
            first_runs++;
            assert_int_equal(r->syncs[i].total, 2);
            assert_int_equal(r->syncs[i].seen, 3u);
        }
    }
    assert_int_equal(first_runs, 4);
    assert_true(r->counts[K_HISTORY] >= 4 * 2);
    assert_true(r->counts[K_PRIVATE] > 0 && r->counts[K_GROUP] > 0 && r->counts[K_ECHO] > 0 &&
                r->counts[K_ACK] > 0);
}

static void check_unique_ids(run_read *r)
{
    qsort(r->event_ids, r->nids, sizeof *r->event_ids, compare_ids);
    for (size_t i = 1; i < r->nids; i++)
        assert_string_not_equal(r->event_ids[i - 1], r->event_ids[i]);
}

static void publishes_seeded_traffic(void **state)
{
    (void)state;
    itest_env("BLAZZ_PG_DSN");
    char prefix_a[64], prefix_b[64], tag_a[32], tag_b[32], status_a[128], status_b[128];
    itest_unique("gwsima", prefix_a, sizeof prefix_a);
    strcat(prefix_a, ".");
    itest_unique("gwsimb", prefix_b, sizeof prefix_b);
    strcat(prefix_b, ".");
    itest_unique("ta", tag_a, sizeof tag_a);
    itest_unique("tb", tag_b, sizeof tag_b);
    snprintf(status_a, sizeof status_a, "/tmp/%s.status", tag_a);
    snprintf(status_b, sizeof status_b, "/tmp/%s.status", tag_b);
    itest_topics_create(prefix_a, 3);
    itest_topics_create(prefix_b, 3);

    run_sim_kafka(prefix_a, tag_a, status_a);
    run_sim_kafka(prefix_b, tag_b, status_b);

    static run_read a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    a.tag = tag_a;
    b.tag = tag_b;
    read_run(prefix_a, &a);
    read_run(prefix_b, &b);
    check_matches_status_file(&a, status_a);
    check_matches_status_file(&b, status_b);
    check_unique_ids(&a);
    check_unique_ids(&b);

    assert_int_equal(a.nsessions, 4);
    assert_int_equal(b.nsessions, 4);
    for (size_t i = 0; i < a.nsessions; i++) {
        assert_string_equal(a.sessions[i].place, b.sessions[i].place);
        assert_int_equal(a.sessions[i].n, b.sessions[i].n);
        assert_memory_equal(a.sessions[i].kinds, b.sessions[i].kinds, a.sessions[i].n);
    }
    free(a.event_ids);
    free(b.event_ids);
    remove(status_a);
    remove(status_b);
}

static void sends_stray_events(void **state)
{
    (void)state;
    char prefix[64], tag[32], status[128], log_path[128];
    itest_unique("gwsims", prefix, sizeof prefix);
    strcat(prefix, ".");
    itest_unique("ts", tag, sizeof tag);
    snprintf(status, sizeof status, "/tmp/%s.status", tag);
    snprintf(log_path, sizeof log_path, "/tmp/%s.log", tag);
    itest_topics_create(prefix, 3);
    setenv("BLAZZ_KAFKA_TOPIC_PREFIX", prefix, 1);
    char *argv[] = {(char *)sim_program(), "--mode", "kafka", "--rate", "1000", "--events", "40",
                    "--duration", "30", "--workspaces", "1", "--accounts-per-workspace", "2",
                    "--history-chats", "10", "--history-messages", "2", "--stray-events", "2",
                    "--tag", tag, "--status-file", status, NULL};
    assert_int_equal(itest_wait(itest_spawn(argv, log_path)), 0);
    unsetenv("BLAZZ_KAFKA_TOPIC_PREFIX");

    static run_read r;
    memset(&r, 0, sizeof r);
    r.tag = tag;
    read_run(prefix, &r);
    assert_int_equal(r.total, 40);
    assert_int_equal(itest_status_value(status, "sent"), 40);
    const session_trace *stray = NULL;
    long world_events = 0;
    for (size_t i = 0; i < r.nsessions; i++) {
        if (strcmp(r.sessions[i].place, "stray") == 0)
            stray = &r.sessions[i];
        else
            world_events += (long)r.sessions[i].n;
    }
    assert_non_null(stray);
    assert_int_equal(stray->n, 2);
    assert_memory_equal(stray->kinds, "cc", 2); /* two private inbound messages */
    assert_int_equal(world_events, 38);
    PGconn *db = itest_pg_connect();
    assert_int_equal(itest_pg_int64f(db, "SELECT count(*) FROM whatsapp_accounts "
                                         "WHERE session_id = 'sim-%s-stray'", tag), 0);
    PQfinish(db);
    free(r.event_ids);
    remove(status);
    remove(log_path);
}

/* ---- answering wa.outbound ------------------------------------------------- */

typedef struct answer_trace {
    char ref[32];
    char echo_wam_id[32];
    int steps; /* 0 nothing, 1 echo, 2 sent, 3 delivered, 4 read */
    int out_of_order;
} answer_trace;

typedef struct answers {
    answer_trace sends[SENDS];
} answers;

static void on_answer(void *ctx, const rd_kafka_message_t *m)
{
    answers *a = ctx;
    Blazz__V1__InboundEvent *ev =
        blazz__v1__inbound_event__unpack(NULL, m->len, (const uint8_t *)m->payload);
    assert_non_null(ev);
    check_envelope(m, ev);
    const char *ref = NULL;
    if (ev->payload_case == BLAZZ__V1__INBOUND_EVENT__PAYLOAD_MESSAGE)
        ref = ev->message->client_reference;
    else if (ev->payload_case == BLAZZ__V1__INBOUND_EVENT__PAYLOAD_ACK)
        ref = ev->ack->client_reference;
    for (int i = 0; ref && *ref && i < SENDS; i++) {
        answer_trace *t = &a->sends[i];
        if (strcmp(t->ref, ref) != 0)
            continue;
        if (ev->payload_case == BLAZZ__V1__INBOUND_EVENT__PAYLOAD_MESSAGE) {
            assert_true(ev->message->from_me);
            snprintf(t->echo_wam_id, sizeof t->echo_wam_id, "%s", ev->message->wam_id);
            t->out_of_order += t->steps != 0;
            t->steps = 1;
        } else {
            int step = ev->ack->status == BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_SENT ? 2
                     : ev->ack->status == BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_DELIVERED ? 3
                     : ev->ack->status == BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_READ ? 4
                                                                                         : -1;
            assert_string_equal(ev->ack->wam_id, t->echo_wam_id);
            /* A replayed send may re-report a status already reached. */
            if (step == t->steps + 1)
                t->steps = step;
            else if (step > t->steps)
                t->out_of_order++;
        }
    }
    blazz__v1__inbound_event__free_unpacked(ev, NULL);
}

static void produce_send_kind(bz_producer *p, const char *topic, const char *session_id,
                              const char *key, const char *ref, int i, int kind)
{
    char event_id[BZ_UUID_STR_SIZE], phone[32];
    bz_error err;
    assert_int_equal(bz_uuid_v4(event_id, &err), BZ_OK);
    snprintf(phone, sizeof phone, "+62812000000%02d", i);
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    env.event_id = event_id;
    env.session_id = (char *)session_id;
    Blazz__V1__SendMessage sm = BLAZZ__V1__SEND_MESSAGE__INIT;
    sm.envelope = &env;
    sm.idempotency_key = (char *)key;
    sm.client_reference = (char *)ref;
    sm.session_id = (char *)session_id;
    sm.to_phone = phone;
    char *read_ids[] = {"3EB0READ01", "3EB0READ02"};
    sm.kind = kind;
    if (kind == BLAZZ__V1__SEND_KIND__SEND_KIND_MARK_READ) {
        sm.read_wam_ids = read_ids;
        sm.n_read_wam_ids = 2;
    } else {
        sm.message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT;
        sm.body = (char *)"Promo akhir tahun: diskon 20% untuk Anda!";
    }
    uint8_t buf[512];
    size_t len = blazz__v1__send_message__pack(&sm, buf);
    assert_true(len < sizeof buf);
    if (bz_producer_send_sync(p, topic, session_id, strlen(session_id), buf, len, NULL, 0, 10000,
                              &err) != BZ_OK)
        fail_msg("produce SendMessage: %s", err.msg);
}

static void produce_send(bz_producer *p, const char *topic, const char *session_id,
                         const char *key, const char *ref, int i)
{
    produce_send_kind(p, topic, session_id, key, ref, i, BLAZZ__V1__SEND_KIND__SEND_KIND_MESSAGE);
}

/* Lines of path containing text. */
static int count_lines_with(const char *path, const char *text)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int n = 0;
    char line[512];
    while (fgets(line, sizeof line, f))
        n += strstr(line, text) != NULL;
    fclose(f);
    return n;
}

static int count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int n = 0, c;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

static void answers_outbound(void **state)
{
    (void)state;
    itest_env("BLAZZ_PG_DSN");
    char prefix[64], tag[32], group[96], status[128], sends_log[128], log_path[128];
    itest_unique("gwsimo", prefix, sizeof prefix);
    strcat(prefix, ".");
    itest_unique("to", tag, sizeof tag);
    snprintf(group, sizeof group, "blazz-gateway-sim.%s", prefix);
    snprintf(status, sizeof status, "/tmp/%s.status", tag);
    snprintf(sends_log, sizeof sends_log, "/tmp/%s.sends", tag);
    snprintf(log_path, sizeof log_path, "/tmp/%s.log", tag);
    itest_topics_create(prefix, 3);

    setenv("BLAZZ_KAFKA_TOPIC_PREFIX", prefix, 1);
    char *argv[] = {(char *)sim_program(), "--mode", "kafka", "--rate", "0", "--answer-outbound",
                    "--duration", "15", "--ack-delay-ms", "100", "--read-ratio", "1",
                    "--fail-ratio", "0", "--workspaces", "1", "--accounts-per-workspace", "1",
                    "--tag", tag, "--outbound-group", group, "--sends-log", sends_log,
                    "--status-file", status, NULL};
    pid_t sim = itest_spawn(argv, log_path);
    unsetenv("BLAZZ_KAFKA_TOPIC_PREFIX");

    char outbound[BZ_TOPIC_NAME_MAX], inbound[BZ_TOPIC_NAME_MAX], session_id[64];
    snprintf(outbound, sizeof outbound, "%swa.outbound.gw.sim", prefix);
    snprintf(inbound, sizeof inbound, "%swa.inbound.gw.sim", prefix);
    snprintf(session_id, sizeof session_id, "sim-%s-w0-a0", tag);
    static answers a;
    memset(&a, 0, sizeof a);
    char keys[SENDS][BZ_UUID_STR_SIZE];
    bz_producer *p = itest_producer();
    bz_error err;
    for (int i = 0; i < SENDS; i++) {
        assert_int_equal(bz_uuid_v4(keys[i], &err), BZ_OK);
        snprintf(a.sends[i].ref, sizeof a.sends[i].ref, "itest-ref-%d", i);
        produce_send(p, outbound, session_id, keys[i], a.sends[i].ref, i);
    }
    produce_send(p, outbound, session_id, keys[0], a.sends[0].ref, 0); /* a replay */
    char read_key[BZ_UUID_STR_SIZE];
    assert_int_equal(bz_uuid_v4(read_key, &err), BZ_OK);
    for (int i = 0; i < 2; i++) /* the CRM read the chat; a repeated publish */
        produce_send_kind(p, outbound, session_id, read_key, "", 0,
                          BLAZZ__V1__SEND_KIND__SEND_KIND_MARK_READ);
    bz_producer_free(p, 5000);

    /* The simulator's own count first: every receipt published. */
    for (int i = 0; i < 300 && status_value_or(status, "sent_ack", 0) < 3 * SENDS; i++)
        itest_sleep_ms(100);
    assert_true(status_value_or(status, "sent_ack", 0) >= 3 * SENDS);

    int done = 0;
    for (int round = 0; round < 20 && done < SENDS; round++) {
        answers seen = a;
        itest_consume_all(inbound, on_answer, &seen);
        done = 0;
        for (int i = 0; i < SENDS; i++) {
            assert_int_equal(seen.sends[i].out_of_order, 0);
            done += seen.sends[i].steps == 4;
        }
        if (done < SENDS)
            itest_sleep_ms(250);
    }
    assert_int_equal(done, SENDS);

    assert_int_equal(itest_wait(sim), 0);
    assert_int_equal(count_lines(sends_log), SENDS + 1);
    assert_int_equal(count_lines_with(sends_log, " read 2"), 1);
    assert_int_equal(count_lines_with(sends_log, read_key), 1);
    assert_int_equal(itest_status_value(status, "outbound_received"), SENDS);
    assert_int_equal(itest_status_value(status, "outbound_duplicates"), 1);
    assert_int_equal(itest_status_value(status, "outbound_reads"), 1);
    assert_int_equal(itest_status_value(status, "sent_message_echo"), SENDS);
    remove(status);
    remove(sends_log);
    remove(log_path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(publishes_seeded_traffic),
        cmocka_unit_test(sends_stray_events),
        cmocka_unit_test(answers_outbound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
