/*
 * test_blazzctl_dlq.c - `blazzctl dlq tail|stats|replay` and `blazzctl lag`
 * against dead letters written by a real exactly-once consumer.
 *
 * The test publishes a mix to <prefix>chat.sync: valid Envelope records,
 * undecodable bytes, SyncCommands without an envelope (real chat.sync
 * messages the counter consumer cannot take) and "poison" envelopes that
 * its apply step rejects. eo_counter_consumer consumes them, dead-lettering
 * the bad ones to <prefix>chat.sync.dlq exactly as a service would; then
 * blazzctl runs as a separate process and what it prints is checked
 * against what was sent: every dead letter decoded with its origin, the
 * SyncCommands shown as JSON and the garbage as hex, exact counts per error
 * code, a dry run that produces nothing, and a replay after which each
 * poison record's original bytes and headers are on chat.sync twice.
 * A dead letter whose original was too large to keep whole is shown with
 * the original's size and SHA-256, and replay skips it.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "blazz/v1/common.pb-c.h"
#include "blazz/v1/dead_letter.pb-c.h"
#include "blazz/v1/sync.pb-c.h"
#include "core/clock.h"
#include "core/timespec.h"
#include "core/uuid.h"
#include "counter_handler.h"
#include "itest.h"

#define VALID 300
#define MALFORMED 7
#define ENVELOPELESS 5
#define POISON 4
#define DEAD (MALFORMED + ENVELOPELESS + POISON)
#define TOTAL (VALID + DEAD)
#define WAIT_LIMIT_MS (60 * 1000)
#define MALFORMED_MARK "\xff\xffMALFORMED-"

typedef struct dlq_fixture {
    char token[32];
    char prefix[64];
    char topic[128];
    char group[64];
    char table[64];
    char log_dir[256];
    PGconn *conn;
} dlq_fixture;

static dlq_fixture fx;

/* ---- running blazzctl ------------------------------------------------------ */

typedef struct ctl_result {
    int status;
    char *out; /* stdout, NUL-terminated; caller frees */
    json_t *json;
} ctl_result;

/* Run blazzctl with args (NULL-terminated); stdout is captured, stderr
 * goes to the test's log. */
static ctl_result run_ctl(const char *const *args)
{
    char err_path[512];
    snprintf(err_path, sizeof err_path, "%s/blazzctl-%s.err", fx.log_dir, fx.token);
    ctl_result r = {0};
    r.status = itest_blazzctl(args, err_path, &r.out);
    return r;
}

static ctl_result run_ctl_json(const char *const *args)
{
    char err_path[512];
    snprintf(err_path, sizeof err_path, "%s/blazzctl-%s.err", fx.log_dir, fx.token);
    ctl_result r = {0};
    r.json = itest_blazzctl_json(args, err_path);
    return r;
}

static void ctl_result_free(ctl_result *r)
{
    free(r->out);
    json_decref(r->json);
}

/* ---- the workload ------------------------------------------------------------ */

static void send_record(bz_producer *p, const char *key, const void *value, size_t len,
                        const bz_kafka_header *headers, size_t nheaders)
{
    bz_error err;
    if (bz_producer_send(p, fx.topic, RD_KAFKA_PARTITION_UA, key, strlen(key), value, len,
                         headers, nheaders, NULL, &err) != BZ_OK)
        fail_msg("produce to %s: %s", fx.topic, err.msg);
}

static void send_envelope(bz_producer *p, const char *event_id, int i)
{
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    env.event_id = (char *)event_id;
    env.source = "itest";
    env.workspace_id = 7;
    uint8_t buf[256];
    size_t len = blazz__v1__envelope__pack(&env, buf);
    char key[32];
    snprintf(key, sizeof key, "conversation-%d", i % 31);
    bz_kafka_header hdrs[2] = {{"event_id", event_id, strlen(event_id)},
                               {"trace_id", "trace-dlq", 9}};
    send_record(p, key, buf, len, hdrs, 2);
}

/* A real chat.sync message, but without the envelope the counter consumer
 * needs: it is dead-lettered, and blazzctl can still show it as JSON. */
static void send_envelopeless_sync(bz_producer *p, int i)
{
    char conversation[32], wam_id[32];
    snprintf(conversation, sizeof conversation, "7:+1555000%04d", i);
    snprintf(wam_id, sizeof wam_id, "wamid.itest%d", i);
    Blazz__V1__MessageAck ack = BLAZZ__V1__MESSAGE_ACK__INIT;
    ack.wam_id = wam_id;
    ack.status = BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_READ;
    Blazz__V1__SyncCommand cmd = BLAZZ__V1__SYNC_COMMAND__INIT;
    cmd.conversation = conversation;
    cmd.command_case = BLAZZ__V1__SYNC_COMMAND__COMMAND_RECEIPT;
    cmd.receipt = &ack;
    uint8_t buf[256];
    size_t len = blazz__v1__sync_command__pack(&cmd, buf);
    send_record(p, conversation, buf, len, NULL, 0);
}

static void publish_workload(void)
{
    bz_producer *p = itest_producer();
    for (int i = 0; i < VALID; i++) {
        char event_id[96];
        snprintf(event_id, sizeof event_id, "%s-%d", fx.table, i);
        send_envelope(p, event_id, i);
        if (i % 40 == 10 && i / 40 < MALFORMED) {
            char bad[64], key[16];
            int len = snprintf(bad, sizeof bad, MALFORMED_MARK "%d", i / 40);
            snprintf(key, sizeof key, "bad-%d", i / 40);
            send_record(p, key, bad, (size_t)len, NULL, 0);
        }
        if (i % 40 == 20 && i / 40 < ENVELOPELESS)
            send_envelopeless_sync(p, i / 40);
        if (i % 40 == 30 && i / 40 < POISON) {
            char poison[96];
            snprintf(poison, sizeof poison, "poison-%s-%d", fx.table, i / 40);
            send_envelope(p, poison, i);
        }
    }
    bz_error err;
    if (bz_producer_flush(p, 30000, &err) != BZ_OK)
        fail_msg("flush workload: %s", err.msg);
    assert_int_equal(bz_producer_failed(p), 0);
    bz_producer_free(p, 1000);
}

static int64_t stored_offsets_total(void)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT coalesce(sum(next_offset), 0) FROM kafka_offsets WHERE group_id = '%s'",
             fx.group);
    return itest_pg_int64(fx.conn, sql);
}

/* Run the consumer until its stored offsets cover every record, then stop
 * it: the dead letters are acknowledged before the offsets move. */
static void consume_everything(void)
{
    char dlq[128], log_path[512];
    snprintf(dlq, sizeof dlq, "%schat.sync.dlq", fx.prefix);
    snprintf(log_path, sizeof log_path, "%s/%s-consumer.log", fx.log_dir, fx.group);
    char *argv[] = {(char *)itest_program("eo_counter_consumer"), fx.group, fx.topic, dlq,
                    fx.table, NULL};
    pid_t pid = itest_spawn(argv, log_path);
    for (int waited = 0; stored_offsets_total() < TOTAL; waited += 100) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid)
            fail_msg("consumer exited early; see %s", log_path);
        if (waited > WAIT_LIMIT_MS)
            fail_msg("consumer stored %lld of %d offsets; see %s",
                     (long long)stored_offsets_total(), TOTAL, log_path);
        itest_sleep_ms(100);
    }
    kill(pid, SIGTERM);
    assert_int_equal(itest_wait(pid), 0);
}

static int setup(void **state)
{
    (void)state;
    memset(&fx, 0, sizeof fx);
    itest_unique("", fx.token, sizeof fx.token);
    snprintf(fx.prefix, sizeof fx.prefix, "itest-dlq-%s.", fx.token);
    snprintf(fx.topic, sizeof fx.topic, "%schat.sync", fx.prefix);
    /* blazz-*: blazzctl's principal describes only those groups (§9.1) */
    snprintf(fx.group, sizeof fx.group, "blazz-chat-sync-dlqtest-%s", fx.token);
    snprintf(fx.table, sizeof fx.table, "itest_dlq_%s", fx.token);
    const char *state_dir = getenv("BLAZZ_STATE_DIR");
    if (state_dir)
        snprintf(fx.log_dir, sizeof fx.log_dir, "%s/logs", state_dir);
    else
        snprintf(fx.log_dir, sizeof fx.log_dir, "/tmp");
    fx.conn = itest_pg_connect();
    assert_true(counter_tables_create(fx.conn, fx.table));
    itest_topics_create(fx.prefix, 3);
    publish_workload();
    consume_everything();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char sql[256];
    snprintf(sql, sizeof sql, "DROP TABLE %s_applied; DROP TABLE %s_counter;", fx.table,
             fx.table);
    itest_pg_exec(fx.conn, sql);
    PQfinish(fx.conn);
    return 0;
}

/* ---- tests ------------------------------------------------------------------- */

static int starts_with(const char *s, const char *prefix)
{
    return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

static const char *text_of(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

static const char *header_value(json_t *record, const char *name)
{
    size_t i;
    json_t *h;
    json_array_foreach(json_object_get(record, "original_headers"), i, h)
        if (strcmp(text_of(h, "key"), name) == 0)
            return text_of(h, "value");
    return NULL;
}

static void check_malformed(json_t *r)
{
    assert_string_equal(text_of(r, "error_code"), "decode_error");
    assert_true(json_is_false(json_object_get(r, "payload_decoded")));
    assert_true(starts_with(text_of(r, "payload_hex"), "ffff4d414c464f524d45442d"));
    assert_true(starts_with(text_of(r, "original_key"), "bad-"));
    assert_true(starts_with(text_of(r, "payload_base64"), "//9NQUxGT1JNRUQt"));
}

static void check_envelopeless(json_t *r)
{
    assert_true(json_is_true(json_object_get(r, "payload_decoded")));
    assert_string_equal(text_of(r, "payload_type"), "blazz.v1.SyncCommand");
    json_t *payload = json_object_get(r, "payload");
    assert_true(starts_with(text_of(payload, "conversation"), "7:+1555000"));
    assert_string_equal(text_of(payload, "conversation"), text_of(r, "original_key"));
    json_t *receipt = json_object_get(payload, "receipt");
    assert_true(starts_with(text_of(receipt, "wam_id"), "wamid.itest"));
    assert_string_equal(text_of(receipt, "status"), "DELIVERY_STATUS_READ");
}

static void check_poison(json_t *r)
{
    assert_non_null(strstr(text_of(r, "error_message"), "poison"));
    const char *event_id = header_value(r, "event_id");
    assert_non_null(event_id);
    assert_true(starts_with(event_id, "poison-"));
    assert_string_equal(header_value(r, "trace_id"), "trace-dlq");
}

/* Every dead letter is shown with its origin, reason and decoded payload. */
static void tail_decodes_every_dead_letter(void **state)
{
    (void)state;
    const char *args[] = {"dlq", "tail", "chat.sync.dlq", "--prefix", fx.prefix,
                          "--since", "1h", "--json", NULL};
    ctl_result r = run_ctl_json(args);
    json_t *records = json_object_get(r.json, "records");
    assert_int_equal(json_array_size(records), DEAD);
    assert_int_equal(json_integer_value(json_object_get(r.json, "count")), DEAD);
    int malformed = 0, envelopeless = 0, poison = 0;
    size_t i;
    json_t *rec;
    json_array_foreach(records, i, rec) {
        assert_true(json_is_true(json_object_get(rec, "dead_letter_decoded")));
        assert_string_equal(text_of(rec, "original_topic"), fx.topic);
        assert_string_equal(text_of(rec, "service"), "eo-counter");
        assert_true(json_integer_value(json_object_get(rec, "original_offset")) >= 0);
        assert_true(json_integer_value(json_object_get(rec, "attempts")) >= 1);
        assert_true(starts_with(text_of(rec, "last_failed_at"), "20"));
        if (strcmp(text_of(rec, "error_code"), "poison") == 0) {
            check_poison(rec);
            poison++;
        } else if (starts_with(text_of(rec, "original_key"), "bad-")) {
            check_malformed(rec);
            malformed++;
        } else {
            check_envelopeless(rec);
            envelopeless++;
        }
    }
    assert_int_equal(malformed, MALFORMED);
    assert_int_equal(envelopeless, ENVELOPELESS);
    assert_int_equal(poison, POISON);
    ctl_result_free(&r);
}

/* Without --since, tail shows the newest N, oldest first; humans get text. */
static void tail_limits_to_the_newest(void **state)
{
    (void)state;
    const char *args[] = {"dlq", "tail", "chat.sync.dlq", "--prefix", fx.prefix,
                          "--limit", "3", "--json", NULL};
    ctl_result r = run_ctl_json(args);
    json_t *records = json_object_get(r.json, "records");
    assert_int_equal(json_array_size(records), 3);
    for (size_t i = 1; i < 3; i++)
        assert_true(strcmp(text_of(json_array_get(records, i - 1), "dlq_timestamp"),
                           text_of(json_array_get(records, i), "dlq_timestamp")) <= 0);
    ctl_result_free(&r);

    const char *human[] = {"dlq", "tail", "chat.sync.dlq", "--prefix", fx.prefix, NULL};
    r = run_ctl(human);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "by eo-counter"));
    assert_non_null(strstr(r.out, "blazz.v1.SyncCommand {"));
    char summary[160];
    snprintf(summary, sizeof summary, "(%d dead letter(s) on %schat.sync.dlq)", DEAD, fx.prefix);
    assert_non_null(strstr(r.out, summary));
    ctl_result_free(&r);
}

static void stats_count_by_error_and_service(void **state)
{
    (void)state;
    char since[40];
    bz_time_format(bz_wall_ms() - 3600 * 1000, since, sizeof since);
    const char *args[] = {"dlq", "stats", "chat.sync.dlq", "--prefix", fx.prefix,
                          "--since", since, "--until", "now", "--json", NULL};
    ctl_result r = run_ctl_json(args);
    assert_int_equal(json_integer_value(json_object_get(r.json, "total")), DEAD);
    json_t *by_error = json_object_get(r.json, "by_error_code");
    assert_int_equal(json_integer_value(json_object_get(by_error, "poison")), POISON);
    assert_int_equal(json_integer_value(json_object_get(by_error, "decode_error")),
                     MALFORMED + ENVELOPELESS);
    assert_int_equal(json_object_size(by_error), 2);
    json_t *by_service = json_object_get(r.json, "by_service");
    assert_int_equal(json_integer_value(json_object_get(by_service, "eo-counter")), DEAD);
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(r.json, "by_original_topic"), fx.topic)),
                     DEAD);
    ctl_result_free(&r);

    /* A window that ended before anything failed holds nothing. */
    const char *before[] = {"dlq", "stats", "chat.sync.dlq", "--prefix", fx.prefix,
                            "--until", "1h", "--json", NULL};
    r = run_ctl_json(before);
    assert_int_equal(json_integer_value(json_object_get(r.json, "total")), 0);
    ctl_result_free(&r);
}

typedef struct copies_seen {
    int poison_copies, poison_with_headers, total;
} copies_seen;

static void count_poison_copies(void *ctx, const rd_kafka_message_t *m)
{
    copies_seen *seen = ctx;
    seen->total++;
    Blazz__V1__Envelope *env = blazz__v1__envelope__unpack(NULL, m->len, m->payload);
    if (env && starts_with(env->event_id, "poison-")) {
        seen->poison_copies++;
        rd_kafka_headers_t *hdrs = NULL;
        const void *value;
        size_t size;
        if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
            rd_kafka_header_get_last(hdrs, "event_id", &value, &size) ==
                RD_KAFKA_RESP_ERR_NO_ERROR &&
            size == strlen(env->event_id) && memcmp(value, env->event_id, size) == 0)
            seen->poison_with_headers++;
    }
    blazz__v1__envelope__free_unpacked(env, NULL);
}

static copies_seen read_original_topic(void)
{
    copies_seen seen = {0, 0, 0};
    itest_consume_all(fx.topic, count_poison_copies, &seen);
    return seen;
}

static void dry_run_counts_and_produces_nothing(void **state)
{
    (void)state;
    const char *args[] = {"dlq", "replay", "chat.sync.dlq", "--prefix", fx.prefix,
                          "--filter", "error=poison", "--dry-run", "--json", NULL};
    ctl_result r = run_ctl_json(args);
    assert_true(json_is_true(json_object_get(r.json, "dry_run")));
    assert_int_equal(json_integer_value(json_object_get(r.json, "scanned")), DEAD);
    assert_int_equal(json_integer_value(json_object_get(r.json, "matched")), POISON);
    assert_int_equal(json_integer_value(json_object_get(r.json, "replayed")), 0);
    ctl_result_free(&r);
    copies_seen seen = read_original_topic();
    assert_int_equal(seen.total, TOTAL);
    assert_int_equal(seen.poison_copies, POISON);
}

static void lag_reads_postgresql_offsets(const char *group, int64_t expected_lag)
{
    const char *args[] = {"lag", "--group", group, "--json", NULL};
    ctl_result r = run_ctl_json(args);
    assert_true(json_is_true(json_object_get(r.json, "postgresql")));
    json_t *g = json_array_get(json_object_get(r.json, "groups"), 0);
    assert_string_equal(text_of(g, "group"), group);
    int64_t committed = 0;
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(g, "partitions"), i, p) {
        if (strcmp(text_of(p, "topic"), fx.topic) != 0)
            continue;
        assert_string_equal(text_of(p, "source"), "postgresql");
        assert_int_equal(json_integer_value(json_object_get(p, "committed")),
                         json_integer_value(json_object_get(p, "pg_next_offset")));
        committed += json_integer_value(json_object_get(p, "committed"));
    }
    assert_int_equal(committed, stored_offsets_total());
    assert_int_equal(json_integer_value(json_object_get(g, "total_lag")), expected_lag);
    ctl_result_free(&r);
}

/* Replay republishes the poison records' original bytes and headers;
 * filters that match nothing replay nothing. The consumer is stopped, so
 * its lag grows by exactly the replayed records. */
static void replay_republishes_original_records(void **state)
{
    (void)state;
    lag_reads_postgresql_offsets(fx.group, 0);
    const char *none[] = {"dlq", "replay", "chat.sync.dlq", "--prefix", fx.prefix,
                          "--filter", "service=nobody", "--json", NULL};
    ctl_result r = run_ctl_json(none);
    assert_int_equal(json_integer_value(json_object_get(r.json, "matched")), 0);
    ctl_result_free(&r);

    const char *args[] = {"dlq", "replay", "chat.sync.dlq", "--prefix", fx.prefix,
                          "--filter", "error=poison", "--filter", "service=eo-counter",
                          "--since", "1d", "--json", NULL};
    r = run_ctl_json(args);
    assert_false(json_is_true(json_object_get(r.json, "dry_run")));
    assert_int_equal(json_integer_value(json_object_get(r.json, "matched")), POISON);
    assert_int_equal(json_integer_value(json_object_get(r.json, "replayed")), POISON);
    assert_int_equal(json_integer_value(json_object_get(r.json, "failed")), 0);
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(r.json, "by_original_topic"), fx.topic)),
                     POISON);
    ctl_result_free(&r);

    copies_seen seen = read_original_topic();
    assert_int_equal(seen.total, TOTAL + POISON);
    assert_int_equal(seen.poison_copies, 2 * POISON);
    assert_int_equal(seen.poison_with_headers, 2 * POISON);
    lag_reads_postgresql_offsets(fx.group, POISON);
}

/* Produce a DeadLetter for an original on <prefix>chat.events to
 * <prefix>outbox.dlq; with cut_to > 0 only that many bytes of the value are
 * kept, with the size and hash of the whole. */
static void send_outbox_dead_letter(bz_producer *p, const char *event_id, const uint8_t *value,
                                    size_t len, size_t cut_to, const uint8_t *sha256)
{
    char original[128], dlq[128];
    snprintf(original, sizeof original, "%schat.events", fx.prefix);
    snprintf(dlq, sizeof dlq, "%soutbox.dlq", fx.prefix);
    Blazz__V1__DeadLetter dl = BLAZZ__V1__DEAD_LETTER__INIT;
    dl.original_topic = original;
    dl.original_partition = -1;
    dl.original_offset = -1;
    dl.original_key.data = (uint8_t *)"k";
    dl.original_key.len = 1;
    dl.original_value.data = (uint8_t *)value;
    dl.original_value.len = cut_to ? cut_to : len;
    if (cut_to) {
        dl.original_value_size = (int64_t)len;
        dl.original_value_sha256.data = (uint8_t *)sha256;
        dl.original_value_sha256.len = 32;
    }
    dl.error_code = cut_to ? "message_too_large" : "produce_refused";
    dl.error_message = "itest";
    dl.service = "itest";
    dl.event_id = (char *)event_id;
    dl.attempts = 1;
    size_t n = blazz__v1__dead_letter__get_packed_size(&dl);
    uint8_t *buf = malloc(n);
    blazz__v1__dead_letter__pack(&dl, buf);
    bz_error err;
    if (bz_producer_send(p, dlq, RD_KAFKA_PARTITION_UA, "k", 1, buf, n, NULL, 0, NULL, &err) !=
        BZ_OK)
        fail_msg("produce to %s: %s", dlq, err.msg);
    free(buf);
}

/* Ingest writes wa.inbound.dlq inside Kafka transactions, and each
 * transaction's commit marker takes an offset of the partition. tail
 * --limit N must count dead letters, not offsets: N transactions of one
 * dead letter each on one partition, then the newest 1 and the newest N. */
static void tail_counts_records_on_transactional_topics(void **state)
{
    (void)state;
    enum { N = 4 };
    char topic[128], txn_id[96];
    snprintf(topic, sizeof topic, "%swa.inbound.dlq", fx.prefix);
    snprintf(txn_id, sizeof txn_id, "itest-dlq-%s", fx.token);
    char errstr[256];
    const char *const defaults[] = {"transactional.id", txn_id, NULL};
    bz_kafka_settings settings = {.brokers = itest_env("BLAZZ_KAFKA_BROKERS"),
                                  .client_id = "itest-dlq-txn"};
    rd_kafka_conf_t *conf;
    bz_error err;
    if (bz_kafka_conf_new(&settings, defaults, &conf, &err) != BZ_OK)
        fail_msg("transactional producer config: %s", err.msg);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    assert_non_null(rk);
    rd_kafka_error_t *e = rd_kafka_init_transactions(rk, 30000);
    for (int i = 0; i < N && !e; i++) {
        char event_id[40];
        snprintf(event_id, sizeof event_id, "txn-dead-letter-%d", i);
        Blazz__V1__DeadLetter dl = BLAZZ__V1__DEAD_LETTER__INIT;
        dl.original_topic = "wa.inbound.raw";
        dl.error_code = "unknown_session";
        dl.error_message = "no account has this session";
        dl.service = "ingest";
        dl.event_id = event_id;
        uint8_t buf[256];
        size_t len = blazz__v1__dead_letter__pack(&dl, buf);
        if (!(e = rd_kafka_begin_transaction(rk))) {
            rd_kafka_resp_err_t pe = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_VALUE(buf, len),
                RD_KAFKA_V_END);
            if (pe != RD_KAFKA_RESP_ERR_NO_ERROR)
                fail_msg("produce to %s: %s", topic, rd_kafka_err2str(pe));
            e = rd_kafka_commit_transaction(rk, 30000);
        }
    }
    if (e)
        fail_msg("transaction on %s: %s", topic, rd_kafka_error_string(e));
    rd_kafka_destroy(rk);

    const char *newest[] = {"dlq", "tail", "wa.inbound.dlq", "--prefix", fx.prefix,
                            "--limit", "1", "--json", NULL};
    ctl_result r = run_ctl_json(newest);
    json_t *records = json_object_get(r.json, "records");
    assert_int_equal(json_array_size(records), 1);
    assert_string_equal(text_of(json_array_get(records, 0), "event_id"), "txn-dead-letter-3");
    ctl_result_free(&r);

    char limit[8];
    snprintf(limit, sizeof limit, "%d", N);
    const char *all[] = {"dlq", "tail", "wa.inbound.dlq", "--prefix", fx.prefix,
                         "--limit", limit, "--json", NULL};
    r = run_ctl_json(all);
    assert_int_equal(json_array_size(json_object_get(r.json, "records")), N);
    ctl_result_free(&r);
}

/* A cut dead letter says what the original was (size, SHA-256) in tail's
 * JSON and text, and replay leaves it alone: its bytes are not the
 * original's. The whole one beside it is replayed. */
static void cut_dead_letters_are_shown_and_not_replayed(void **state)
{
    (void)state;
    static uint8_t value[2000000];
    for (size_t i = 0; i < sizeof value; i++)
        value[i] = (uint8_t)(i % 251);
    uint8_t sha[32] = {0};
    for (int i = 0; i < 32; i++)
        sha[i] = (uint8_t)(0xa0 + i);
    bz_producer *p = itest_producer();
    char cut_id[BZ_UUID_STR_SIZE], whole_id[BZ_UUID_STR_SIZE];
    assert_int_equal(bz_uuid_v4(cut_id, NULL), BZ_OK);
    assert_int_equal(bz_uuid_v4(whole_id, NULL), BZ_OK);
    send_outbox_dead_letter(p, cut_id, value, sizeof value, 100, sha);
    send_outbox_dead_letter(p, whole_id, value, 50, 0, NULL);
    assert_int_equal(bz_producer_flush(p, 30000, NULL), BZ_OK);
    bz_producer_free(p, 1000);

    const char *tail[] = {"dlq", "tail", "outbox.dlq", "--prefix", fx.prefix,
                          "--since", "1h", "--json", NULL};
    ctl_result r = run_ctl_json(tail);
    json_t *records = json_object_get(r.json, "records"), *rec, *cut = NULL, *whole = NULL;
    size_t i;
    json_array_foreach(records, i, rec) {
        if (strcmp(text_of(rec, "event_id"), cut_id) == 0)
            cut = rec;
        if (strcmp(text_of(rec, "event_id"), whole_id) == 0)
            whole = rec;
    }
    assert_non_null(cut);
    assert_non_null(whole);
    assert_true(json_is_true(json_object_get(cut, "payload_truncated")));
    assert_int_equal(json_integer_value(json_object_get(cut, "original_value_size")),
                     sizeof value);
    assert_int_equal(json_integer_value(json_object_get(cut, "payload_bytes")), 100);
    assert_string_equal(text_of(cut, "original_value_sha256"),
                        "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf");
    assert_true(json_is_false(json_object_get(whole, "payload_truncated")));
    ctl_result_free(&r);

    const char *human[] = {"dlq", "tail", "outbox.dlq", "--prefix", fx.prefix, NULL};
    r = run_ctl(human);
    assert_int_equal(r.status, 0);
    if (!strstr(r.out, "cut to 100 of 2000000 bytes, sha256 a0a1a2"))
        fail_msg("tail does not say the payload was cut:\n%s", r.out);
    ctl_result_free(&r);

    /* chat.events is written only by outbox relays (ARCHITECTURE.md §9.1):
     * the whole one becomes an outbox row, which this test then removes so
     * no other test's relay publishes it */
    const char *replay[] = {"dlq", "replay", "outbox.dlq", "--prefix", fx.prefix, "--json", NULL};
    r = run_ctl_json(replay);
    assert_int_equal(json_integer_value(json_object_get(r.json, "matched")), 2);
    assert_int_equal(json_integer_value(json_object_get(r.json, "replayed")), 1);
    assert_int_equal(json_integer_value(json_object_get(r.json, "outboxed")), 1);
    assert_int_equal(json_integer_value(json_object_get(r.json, "not_replayable")), 1);
    ctl_result_free(&r);
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM outbox WHERE event_id = '%s' AND topic = 'chat.events' "
             "AND octet_length(payload) = 50", whole_id);
    assert_int_equal(itest_pg_int64(fx.conn, sql), 1);
    snprintf(sql, sizeof sql, "DELETE FROM outbox WHERE event_id IN ('%s', '%s')", whole_id,
             cut_id);
    itest_pg_exec(fx.conn, sql);
}

static void usage_mistakes_are_refused(void **state)
{
    (void)state;
    const char *help[] = {"dlq", "--help", NULL};
    ctl_result r = run_ctl(help);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "usage: blazzctl dlq tail"));
    ctl_result_free(&r);
    const char *bad_time[] = {"dlq", "tail", "chat.sync.dlq", "--since", "yesterday", NULL};
    r = run_ctl(bad_time);
    assert_int_equal(r.status, 1);
    ctl_result_free(&r);
    const char *bad_filter[] = {"dlq", "replay", "chat.sync.dlq", "--filter", "topic=x", NULL};
    r = run_ctl(bad_filter);
    assert_int_equal(r.status, 1);
    ctl_result_free(&r);
    const char *filter_on_tail[] = {"dlq", "tail", "chat.sync.dlq", "--filter", "error=x", NULL};
    r = run_ctl(filter_on_tail);
    assert_int_equal(r.status, 1);
    ctl_result_free(&r);
    const char *missing[] = {"dlq", "stats", "no-such-topic-dlq", "--json", NULL};
    r = run_ctl(missing);
    assert_int_equal(r.status, 1);
    ctl_result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tail_decodes_every_dead_letter),
        cmocka_unit_test(tail_limits_to_the_newest),
        cmocka_unit_test(tail_counts_records_on_transactional_topics),
        cmocka_unit_test(stats_count_by_error_and_service),
        cmocka_unit_test(dry_run_counts_and_produces_nothing),
        cmocka_unit_test(replay_republishes_original_records),
        cmocka_unit_test(cut_dead_letters_are_shown_and_not_replayed),
        cmocka_unit_test(usage_mistakes_are_refused),
    };
    return cmocka_run_group_tests_name("blazzctl dlq", tests, setup, teardown);
}
