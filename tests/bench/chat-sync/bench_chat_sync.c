/*
 * bench_chat_sync.c - blazz-chat-sync throughput and latency on this machine
 * (make bench), against the stack scripts/bench.sh starts.
 *
 *  1. applied commands/s: BENCH_CHAT_SYNC_N (default 100000) live commands
 *     (60% inbound private messages over 5,000 contacts, 20% echoes of our
 *     own sends, 20% receipts) produced to <prefix>chat.sync first, then one
 *     chat-sync process (relay on) applies them; measured from the first
 *     applied record to the last, and compared with BLAZZ_BENCH_RAW_PG (the
 *     raw batched-insert rate of bench_foundation; target >= 25%);
 *  1b. the schema's own ceiling, measured in the same run: the chats rows
 *     those commands store (same columns and values as chat-sync's insert),
 *     inserted raw into the real chats table (all its indexes, checks and
 *     foreign keys) for contacts created beforehand, 1,000 rows per
 *     transaction with INSERT ... SELECT FROM unnest, like bench_foundation's
 *     raw insert, committed asynchronously like chat-sync's batches (with a
 *     WAL flush per commit the figure measures the disk under the other
 *     benchmarks, not the schema). Run after chat-sync stopped. chat-sync's
 *     rate over this one says how much of the gap to the 3-column raw
 *     insert is the schema and how much is chat-sync;
 *  2. history sync end to end: 500 chats x 50 messages (10 batches) produced
 *     to a running chat-sync, until metadata.sync_status = completed is
 *     committed (seeds' target 5 min, ours 5 s);
 *  3. latency chat.sync -> row at 1,000 commands/s for 5 s: per message,
 *     the insert transaction's start (chats.updated_at) minus its produce
 *     time (carried as the message timestamp), p50 and p99.
 *
 * With 1 and 3, the CPU time of the chat-sync process (/proc, user and
 * system) per command, until its relay has published what they queued (1
 * with the process's start): bench_system's events_per_cpu_s_chat_sync
 * needs the whole stack, this one chat-sync alone, in a backlog (full
 * batches) and at 1,000/s (a fetch and a batch every few commands), so a
 * regression of either shows here. At 1,000/s the commands are produced
 * with linger.ms 0, as ingest's HTTP path produces them: in 5 ms batches
 * (the shared producer's linger) chat-sync's fetches would find them
 * gathered, and the cost of one fetch per command or two would not show
 * (issue 52). The backlog (1) and the history (2) keep the 5 ms batches
 * they always had, so that their figures compare with a release's.
 *
 * The chat-sync binary is $BLAZZ_BIN_DIR/blazz-chat-sync. Everything runs
 * under a unique topic prefix and a workspace of its own, which is deleted
 * at the end (its rows cascade).
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "blazz/v1/sync.pb-c.h"
#include "core/clock.h"
#include "kafka/admin.h"
#include "kafka/producer.h"

/* chat-sync's own insert statement and array builder, so the baseline
 * stores the same rows the same way. */
#include "chats_insert.h"
#include "pg/columns.h"

#define CONTACTS 5000
#define HIST_CHATS 500
#define HIST_BATCH 50
#define HIST_MSGS 50
#define WAIT_LIMIT_MS (600 * 1000)

typedef struct bench {
    const char *brokers, *dsn;
    char prefix[64], topic[128], group[64];
    PGconn *conn;
    bz_producer *lingered;   /* 5 ms batches: the backlog and the history */
    bz_producer *unlingered; /* one record at a time: at 1,000/s */
    bz_producer *producer;   /* the one sending now */
    int64_t workspace, account;
    pid_t proc;
    unsigned long seq;
} bench;

static bench B;

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "bench_chat_sync: %s: %s\n", what, detail);
    if (B.proc > 0)
        kill(B.proc, SIGKILL);
    exit(1);
}

static int64_t q_int(const char *sql)
{
    PGresult *res = PQexec(B.conn, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
        die(sql, PQresultErrorMessage(res));
    int64_t v = PQgetisnull(res, 0, 0) ? -1 : strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return v;
}

static int64_t consumed(void)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT coalesce(sum(next_offset), 0) FROM kafka_offsets WHERE group_id = '%s'",
             B.group);
    return q_int(sql);
}

static void send_cmd(Blazz__V1__SyncCommand *cmd, int64_t account, const char *conversation,
                     int64_t occurred)
{
    char event_id[128], key[128];
    snprintf(event_id, sizeof event_id, "%s%lu", B.prefix, ++B.seq);
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    env.event_id = event_id;
    env.occurred_at_ms = occurred;
    env.produced_at_ms = bz_wall_ms();
    env.source = "bench";
    env.workspace_id = B.workspace;
    env.session_id = "bench";
    env.whatsapp_account_id = account;
    env.provider = BLAZZ__V1__PROVIDER__PROVIDER_WEBJS;
    cmd->envelope = &env;
    cmd->conversation = (char *)conversation;
    snprintf(key, sizeof key, "%lld:%s", (long long)B.workspace, conversation);
    size_t len = blazz__v1__sync_command__get_packed_size(cmd);
    uint8_t *buf = malloc(len);
    blazz__v1__sync_command__pack(cmd, buf);
    cmd->envelope = NULL; /* env dies with this frame */
    bz_kafka_header hdr = {"event_id", event_id, strlen(event_id)};
    bz_error err;
    if (bz_producer_send(B.producer, B.topic, RD_KAFKA_PARTITION_UA, key, strlen(key), buf, len,
                         &hdr, 1, NULL, &err) != BZ_OK)
        die("produce", err.msg);
    free(buf);
}

static void send_message(int64_t account, const char *wam, int contact, int from_me, int64_t ts)
{
    char phone[32];
    snprintf(phone, sizeof phone, "+6282%08d", contact);
    Blazz__V1__InboundMessage m = BLAZZ__V1__INBOUND_MESSAGE__INIT;
    m.wam_id = (char *)wam;
    m.chat_type = BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_PRIVATE;
    m.contact_phone = phone;
    m.contact_name = from_me ? "" : "Customer";
    m.body = "Halo, apakah produk ini masih tersedia?";
    m.message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT;
    m.timestamp_ms = ts;
    m.from_me = from_me;
    Blazz__V1__SyncCommand cmd = BLAZZ__V1__SYNC_COMMAND__INIT;
    cmd.command_case = BLAZZ__V1__SYNC_COMMAND__COMMAND_MESSAGE;
    cmd.message = &m;
    send_cmd(&cmd, account, phone, ts);
}

static void send_receipt(const char *wam, int contact, int status, int64_t ts)
{
    char phone[32];
    snprintf(phone, sizeof phone, "+6282%08d", contact);
    Blazz__V1__MessageAck ack = BLAZZ__V1__MESSAGE_ACK__INIT;
    ack.wam_id = (char *)wam;
    ack.status = status;
    ack.timestamp_ms = ts;
    Blazz__V1__SyncCommand cmd = BLAZZ__V1__SYNC_COMMAND__INIT;
    cmd.command_case = BLAZZ__V1__SYNC_COMMAND__COMMAND_RECEIPT;
    cmd.receipt = &ack;
    send_cmd(&cmd, B.account, phone, ts);
}

static void flush(void)
{
    bz_error err;
    if (bz_producer_flush(B.producer, 120000, &err) != BZ_OK)
        die("flush", err.msg);
}

static void start_chat_sync(void)
{
    char bin[1024];
    const char *dir = getenv("BLAZZ_BIN_DIR");
    snprintf(bin, sizeof bin, "%s/blazz-chat-sync", dir ? dir : "build/bin");
    setenv("BLAZZ_KAFKA_TOPIC_PREFIX", B.prefix, 1);
    setenv("BLAZZ_CONSUMER_GROUP_ID", B.group, 1);
    setenv("BLAZZ_LOG_LEVEL", "warn", 1);
    B.proc = fork();
    if (B.proc == 0) {
        /* a bench killed (a gate stopped by hand) stops its chat-sync too,
         * which would otherwise keep the relay lock from the next run */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        execl(bin, bin, (char *)NULL);
        _exit(127);
    }
}

static void stop_chat_sync(void)
{
    kill(B.proc, SIGTERM);
    int status;
    waitpid(B.proc, &status, 0);
    B.proc = 0;
}

/* CPU seconds (user + system) the chat-sync process has used so far. */
static double chat_sync_cpu_s(void)
{
    char path[64], line[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)B.proc);
    FILE *f = fopen(path, "re");
    if (!f)
        die("cpu", path);
    size_t len = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[len] = '\0';
    /* fields 14 and 15 (utime, stime), counted from the end of the name
     * (field 2, which may hold spaces) */
    const char *p = strrchr(line, ')');
    for (int field = 2; p && field < 14; field++)
        p = strchr(p + 1, ' ');
    char *after_utime, *after_stime;
    unsigned long long utime = p ? strtoull(p, &after_utime, 10) : 0;
    unsigned long long stime = p ? strtoull(after_utime, &after_stime, 10) : 0;
    if (!p || after_utime == p || after_stime == after_utime)
        die("cpu", "unreadable /proc stat line");
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* Until the relay has published every row the commands queued, so their
 * CPU is counted with them. */
static void wait_outbox_empty(void)
{
    for (int waited = 0; q_int("SELECT count(*) FROM outbox") > 0; waited += 20) {
        if (waited > WAIT_LIMIT_MS)
            die("outbox", "the relay never emptied it");
        bz_sleep_ms(20);
    }
}

static double us_per_command(double cpu_s, int64_t commands)
{
    return commands > 0 ? 1e6 * cpu_s / (double)commands : 0;
}

static void wait_consumed(int64_t total)
{
    for (int waited = 0; consumed() < total; waited += 5) {
        if (waited > WAIT_LIMIT_MS || waitpid(B.proc, NULL, WNOHANG) == B.proc)
            die("wait", "chat-sync stopped or made no progress");
        bz_sleep_ms(5);
    }
}

/* ---- 1. throughput ------------------------------------------------------------------ */

/* What command i of the throughput workload is; *nout tracks the latest
 * echo, which receipts point at. */
typedef enum { CMD_INBOUND, CMD_ECHO, CMD_RECEIPT } cmd_kind;

static cmd_kind workload_command(int i, int *nout)
{
    int r = i % 10;
    if (r < 6)
        return CMD_INBOUND;
    if (r < 8 || *nout == 0) {
        *nout = i;
        return CMD_ECHO;
    }
    return CMD_RECEIPT;
}

static int workload_contact(int i)
{
    return (int)((i * 7919L) % CONTACTS);
}

static double bench_throughput(int n, double *cpu_us)
{
    int64_t base = bz_wall_ms() - 86400000LL;
    int nout = 0;
    for (int i = 0; i < n; i++) {
        char wam[32];
        int r = i % 10, contact = workload_contact(i);
        cmd_kind kind = workload_command(i, &nout);
        if (kind == CMD_INBOUND) {
            snprintf(wam, sizeof wam, "bin-%d", i);
            send_message(B.account, wam, contact, 0, base + i);
        } else if (kind == CMD_ECHO) {
            snprintf(wam, sizeof wam, "bout-%d", i);
            send_message(B.account, wam, contact, 1, base + i);
        } else {
            /* a receipt for the latest echo, on its conversation */
            snprintf(wam, sizeof wam, "bout-%d", nout);
            send_receipt(wam, workload_contact(nout),
                         r == 8 ? BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_DELIVERED
                                : BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_READ,
                         base + i);
        }
        if (i % 10000 == 0)
            bz_producer_poll(B.producer, 0);
    }
    flush();
    start_chat_sync();
    while (consumed() == 0)
        bz_sleep_ms(2);
    int64_t first = bz_monotonic_ms(), from = consumed();
    wait_consumed(n);
    int64_t ms = bz_monotonic_ms() - first;
    wait_outbox_empty();
    *cpu_us = us_per_command(chat_sync_cpu_s(), n);
    return (double)(n - from) * 1000.0 / (double)(ms > 0 ? ms : 1);
}

/* ---- 1b. raw chats insert ------------------------------------------------------------------ */

#define RAW_BATCH 1000
#define RAW_BODY_META "{\"body\":\"Halo, apakah produk ini masih tersedia?\",\"message_type\":\"text\"}"

/* chat-sync's insert without its ON CONFLICT and RETURNING: the plainest
 * way to put the same rows in the same table. */
#define SQL_RAW_CHATS CS_CHATS_INSERT_FROM_UNNEST("", "")

typedef struct raw_rows {
    bz_pg_array col[CS_CHATS_INSERT_NCOLS];
    int n;
} raw_rows;

static void exec_ok(const char *sql)
{
    PGresult *res = PQexec(B.conn, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
        die(sql, PQresultErrorMessage(res));
    PQclear(res);
}

/* A workspace and account of the baseline's own, with the CONTACTS contacts
 * created the way chat-sync creates them; fills ids[] by contact number. */
static void create_raw_conversations(int64_t *ws, int64_t *acct, int64_t *ids)
{
    char sql[512];
    *ws = q_int("INSERT INTO workspaces (name) VALUES ('bench chat-sync raw chats') RETURNING id");
    snprintf(sql, sizeof sql, "INSERT INTO whatsapp_accounts (workspace_id, session_id) VALUES "
             "(%lld, '%sraw') RETURNING id", (long long)*ws, B.prefix);
    *acct = q_int(sql);
    snprintf(sql, sizeof sql,
             "INSERT INTO contacts (workspace_id, whatsapp_account_id, source_session_id, "
             "source_type, provider_type, first_name, phone) SELECT %lld, %lld, %lld, 'webjs', "
             "'webjs', 'Customer', format('+6282%%s', lpad(g::text, 8, '0')) "
             "FROM generate_series(0, %d) g", (long long)*ws, (long long)*acct, (long long)*acct,
             CONTACTS - 1);
    exec_ok(sql);
    snprintf(sql, sizeof sql, "SELECT id FROM contacts WHERE workspace_id = %lld ORDER BY phone",
             (long long)*ws);
    PGresult *res = PQexec(B.conn, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != CONTACTS)
        die("raw chats: contacts", PQresultErrorMessage(res));
    for (int i = 0; i < CONTACTS; i++)
        ids[i] = strtoll(PQgetvalue(res, i, 0), NULL, 10);
    PQclear(res);
}

/* The row chat-sync stores for message i (see apply_message.c). */
static void add_raw_row(raw_rows *r, int64_t ws, int64_t acct, int64_t contact, int i,
                        int from_me, int64_t ts)
{
    char wam[32];
    snprintf(wam, sizeof wam, "%s-%d", from_me ? "rout" : "rin", i);
    bz_pg_array_int64(&r->col[0], ws);
    bz_pg_array_int64(&r->col[1], acct);
    bz_pg_array_int64_or_null(&r->col[2], contact);
    bz_pg_array_null(&r->col[3]);
    bz_pg_array_text(&r->col[4], wam);
    bz_pg_array_text(&r->col[5], from_me ? "outbound" : "inbound");
    bz_pg_array_text(&r->col[6], "webjs");
    bz_pg_array_text(&r->col[7], "private");
    bz_pg_array_text(&r->col[8], from_me ? "sent" : "delivered");
    bz_pg_array_text(&r->col[9], RAW_BODY_META);
    bz_pg_array_bool(&r->col[10], from_me);
    bz_pg_array_int64_or_null(&r->col[11], from_me ? ts : 0);
    bz_pg_array_int64(&r->col[12], ts);
    bz_pg_array_null(&r->col[13]);
    r->n++;
}

static void insert_raw_rows(raw_rows *r)
{
    bz_error err;
    exec_ok("BEGIN");
    if (bz_pg_arrays_exec(B.conn, "raw chats insert", SQL_RAW_CHATS, r->col, CS_CHATS_INSERT_NCOLS, NULL,
                  &err) != BZ_OK)
        die("raw chats", err.msg);
    exec_ok("COMMIT");
    bz_pg_array_free_all(r->col, CS_CHATS_INSERT_NCOLS);
    for (int i = 0; i < CS_CHATS_INSERT_NCOLS; i++)
        bz_pg_array_init(&r->col[i]);
    r->n = 0;
}

/* Rows/s of the raw insert of the n-command workload's messages; the
 * baseline's workspace id goes to *ws for the final cleanup. */
static double bench_raw_chats(int n, int64_t *ws)
{
    static int64_t contact_ids[CONTACTS];
    raw_rows rows;
    int64_t acct;
    create_raw_conversations(ws, &acct, contact_ids);
    for (int i = 0; i < CS_CHATS_INSERT_NCOLS; i++)
        bz_pg_array_init(&rows.col[i]);
    exec_ok("SET synchronous_commit = off");
    int64_t base = bz_wall_ms() - 86400000LL, stored = 0, start = bz_monotonic_ms();
    int nout = 0;
    for (int i = 0; i < n; i++) {
        cmd_kind kind = workload_command(i, &nout);
        if (kind == CMD_RECEIPT)
            continue;
        add_raw_row(&rows, *ws, acct, contact_ids[workload_contact(i)], i, kind == CMD_ECHO,
                    base + i);
        stored++;
        if (rows.n == RAW_BATCH)
            insert_raw_rows(&rows);
    }
    if (rows.n > 0)
        insert_raw_rows(&rows);
    int64_t ms = bz_monotonic_ms() - start;
    bz_pg_array_free_all(rows.col, CS_CHATS_INSERT_NCOLS);
    exec_ok("RESET synchronous_commit");
    return (double)stored * 1000.0 / (double)(ms > 0 ? ms : 1);
}

/* ---- 2. history sync -------------------------------------------------------------------- */

static void send_history_batch(int64_t account, int batch, const char *sync_id)
{
    static Blazz__V1__SyncedChat chats[HIST_BATCH];
    static Blazz__V1__SyncedChat *chat_ptrs[HIST_BATCH];
    static Blazz__V1__InboundMessage msgs[HIST_BATCH][HIST_MSGS];
    static Blazz__V1__InboundMessage *msg_ptrs[HIST_BATCH][HIST_MSGS];
    static char wams[HIST_BATCH][HIST_MSGS][32], phones[HIST_BATCH][32];
    int64_t base = bz_wall_ms() - 7 * 86400000LL;
    for (int j = 0; j < HIST_BATCH; j++) {
        int c = batch * HIST_BATCH + j;
        chats[j] = (Blazz__V1__SyncedChat)BLAZZ__V1__SYNCED_CHAT__INIT;
        snprintf(phones[j], sizeof phones[j], "+6283%08d", c);
        chats[j].chat_type = BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_PRIVATE;
        chats[j].contact_phone = phones[j];
        chats[j].contact_name = "Synced contact";
        for (int k = 0; k < HIST_MSGS; k++) {
            Blazz__V1__InboundMessage *m = &msgs[j][k];
            *m = (Blazz__V1__InboundMessage)BLAZZ__V1__INBOUND_MESSAGE__INIT;
            snprintf(wams[j][k], sizeof wams[j][k], "hist-%d-%d", c, k);
            m->wam_id = wams[j][k];
            m->chat_type = BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_PRIVATE;
            m->body = "an older message from the history";
            m->message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT;
            m->timestamp_ms = base + c * 1000 + k;
            m->from_me = k % 3 == 2;
            m->is_read = k < HIST_MSGS - 2;
            msg_ptrs[j][k] = m;
        }
        chats[j].messages = msg_ptrs[j];
        chats[j].n_messages = HIST_MSGS;
        chat_ptrs[j] = &chats[j];
    }
    Blazz__V1__HistorySyncBatch h = BLAZZ__V1__HISTORY_SYNC_BATCH__INIT;
    h.sync_id = (char *)sync_id;
    h.batch_index = batch;
    h.batch_total = HIST_CHATS / HIST_BATCH;
    h.total_chats = HIST_CHATS;
    h.chats = chat_ptrs;
    h.n_chats = HIST_BATCH;
    Blazz__V1__SyncCommand cmd = BLAZZ__V1__SYNC_COMMAND__INIT;
    cmd.command_case = BLAZZ__V1__SYNC_COMMAND__COMMAND_HISTORY_SYNC;
    cmd.history_sync = &h;
    send_cmd(&cmd, account, "session", bz_wall_ms());
}

static double bench_history(int64_t account)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM whatsapp_accounts WHERE id = %lld AND "
             "metadata->>'sync_status' = 'completed'", (long long)account);
    int64_t start = bz_monotonic_ms();
    for (int b = 0; b < HIST_CHATS / HIST_BATCH; b++)
        send_history_batch(account, b, "bench-sync");
    flush();
    for (int waited = 0; q_int(sql) == 0; waited += 5) {
        if (waited > WAIT_LIMIT_MS)
            die("history sync", "never completed");
        bz_sleep_ms(5);
    }
    return (double)(bz_monotonic_ms() - start);
}

/* ---- 3. latency at 1,000/s ---------------------------------------------------------------- */

/* One command through the unlingered producer, applied, before the
 * latency is timed: its first produce fetches the topic's metadata, which
 * held the first half second of commands (the first 600 of 5,000 arrived
 * 0.5 s late, and they alone made the p99). */
static void warm_up_producer(void)
{
    int64_t before = consumed();
    send_message(B.account, "warm-unlingered", 0, 0, bz_wall_ms());
    flush();
    wait_consumed(before + 1);
}

static void bench_latency(int64_t before, double *p50, double *p99, double *cpu_us)
{
    int n = 5000;
    wait_outbox_empty();
    double cpu_before = chat_sync_cpu_s();
    int64_t start = bz_monotonic_ms();
    for (int i = 0; i < n; i++) {
        int64_t due = start + i; /* one per millisecond */
        while (bz_monotonic_ms() < due)
            bz_sleep_ms(1);
        char wam[32];
        snprintf(wam, sizeof wam, "lat-%d", i);
        send_message(B.account, wam, i % CONTACTS, 0, bz_wall_ms());
        bz_producer_poll(B.producer, 0);
    }
    flush();
    wait_consumed(before + n);
    wait_outbox_empty();
    *cpu_us = us_per_command(chat_sync_cpu_s() - cpu_before, n);
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT (percentile_cont(%%s) WITHIN GROUP (ORDER BY extract(epoch FROM "
             "updated_at - created_at) * 1000) * 1000)::bigint FROM chats WHERE "
             "whatsapp_account_id = %lld AND wam_id LIKE 'lat-%%%%'", (long long)B.account);
    char q[600];
    snprintf(q, sizeof q, sql, "0.5");
    *p50 = (double)q_int(q) / 1000.0;
    snprintf(q, sizeof q, sql, "0.99");
    *p99 = (double)q_int(q) / 1000.0;
}

static int64_t insert_id(const char *sql)
{
    return q_int(sql);
}

int main(void)
{
    B.brokers = getenv("BLAZZ_KAFKA_BROKERS");
    B.dsn = getenv("BLAZZ_PG_DSN");
    if (!B.brokers || !B.dsn)
        die("environment", "BLAZZ_KAFKA_BROKERS and BLAZZ_PG_DSN must be set");
    const char *n_env = getenv("BENCH_CHAT_SYNC_N");
    char *end = NULL;
    long wanted = n_env ? strtol(n_env, &end, 10) : 100000;
    if (n_env && (*end != '\0' || wanted <= 0 || wanted > 100000000))
        die("BENCH_CHAT_SYNC_N", "must be a whole number in [1, 100000000]");
    int n = (int)wanted;
    snprintf(B.prefix, sizeof B.prefix, "bench-cs-%d-%lld.", (int)getpid(),
             (long long)(bz_wall_ms() % 1000000));
    snprintf(B.topic, sizeof B.topic, "%schat.sync", B.prefix);
    snprintf(B.group, sizeof B.group, "blazz-chat-sync-bench-%d", (int)getpid());
    bz_error err;
    bz_kafka_ensure_report report;
    if (bz_kafka_topics_ensure(B.brokers, B.prefix, 6, 1, 30000, &report, &err) != BZ_OK)
        die("topics", err.msg);
    B.conn = PQconnectdb(B.dsn);
    if (PQstatus(B.conn) != CONNECTION_OK)
        die("connect", PQerrorMessage(B.conn));
    /* linger.ms 0 at 1,000/s, as ingest's HTTP path (ingest.http_linger_ms):
     * see the head comment */
    static const char *const unlingered[] = {"linger.ms", "0", NULL};
    bz_kafka_settings settings = {.brokers = B.brokers, .client_id = "bench-chat-sync"};
    if (bz_producer_new(&settings, &B.lingered, &err) != BZ_OK)
        die("producer", err.msg);
    settings.extra = unlingered;
    if (bz_producer_new(&settings, &B.unlingered, &err) != BZ_OK)
        die("producer", err.msg);
    B.producer = B.lingered;
    B.workspace = insert_id("INSERT INTO workspaces (name) VALUES ('bench chat-sync') RETURNING id");
    char sql[256];
    snprintf(sql, sizeof sql, "INSERT INTO whatsapp_accounts (workspace_id, session_id) VALUES "
             "(%lld, '%saccount') RETURNING id", (long long)B.workspace, B.prefix);
    B.account = insert_id(sql);
    snprintf(sql, sizeof sql, "INSERT INTO whatsapp_accounts (workspace_id, session_id) VALUES "
             "(%lld, '%shistory') RETURNING id", (long long)B.workspace, B.prefix);
    int64_t history_account = insert_id(sql);

    double cpu_backlog_us, cpu_paced_us;
    double rate = bench_throughput(n, &cpu_backlog_us);
    double history_ms = bench_history(history_account);
    double p50, p99;
    B.producer = B.unlingered;
    warm_up_producer();
    bench_latency(consumed(), &p50, &p99, &cpu_paced_us);
    stop_chat_sync();
    /* After chat-sync stopped, so the two never share the machine. */
    int64_t raw_ws = 0;
    double raw_chats_rate = bench_raw_chats(n, &raw_ws);

    /* The raw-insert baseline of an earlier bench, when there was one. */
    const char *raw = getenv("BLAZZ_BENCH_RAW_PG");
    double raw_rate = raw ? strtod(raw, NULL) : 0;
    char ratio[32] = "n/a";
    if (raw_rate > 0)
        snprintf(ratio, sizeof ratio, "%.0f%%", 100.0 * rate / raw_rate);
    printf("chat-sync (%d live commands, 1 process, relay on)\n", n);
    printf("  %-44s %12.0f commands/s\n", "applied (messages 80%, receipts 20%)", rate);
    printf("  %-44s %12s (target >= 25%%)\n", "ratio to raw batched insert", ratio);
    printf("  %-44s %12.0f rows/s\n", "raw insert of the same chats rows (1000/tx)",
           raw_chats_rate);
    printf("  %-44s %12.1f%% (the schema's ceiling)\n", "ratio to raw chats insert",
           100.0 * rate / raw_chats_rate);
    printf("  %-44s %12.0f ms (target < 5000)\n", "history sync 500 chats x 50 msgs, end to end",
           history_ms);
    printf("  %-44s %9.1f / %.1f ms\n", "chat.sync -> row at 1000/s, p50 / p99", p50, p99);
    printf("  %-44s %9.1f / %.1f us\n", "chat-sync CPU a command, backlog / at 1000/s",
           cpu_backlog_us, cpu_paced_us);
    printf("BENCH chat_sync_applied %.0f commands/s\n", rate);
    if (raw_rate > 0)
        printf("BENCH chat_sync_ratio_raw_pg %.0f percent\n", 100.0 * rate / raw_rate);
    printf("BENCH chat_sync_raw_chats_insert %.0f rows/s\n", raw_chats_rate);
    printf("BENCH chat_sync_ratio_raw_chats %.1f percent\n", 100.0 * rate / raw_chats_rate);
    printf("BENCH chat_sync_history_500x50 %.0f ms\n", history_ms);
    printf("BENCH chat_sync_latency_p50 %.1f ms\n", p50);
    printf("BENCH chat_sync_latency_p99 %.1f ms\n", p99);
    printf("BENCH chat_sync_cpu_per_command_backlog %.1f us\n", cpu_backlog_us);
    printf("BENCH chat_sync_cpu_per_command_at_1000 %.1f us\n", cpu_paced_us);

    snprintf(sql, sizeof sql, "DELETE FROM kafka_offsets WHERE group_id = '%s'", B.group);
    PQclear(PQexec(B.conn, sql));
    snprintf(sql, sizeof sql, "DELETE FROM workspaces WHERE id IN (%lld, %lld)",
             (long long)B.workspace, (long long)raw_ws);
    PQclear(PQexec(B.conn, sql));
    bz_producer_free(B.lingered, 5000);
    bz_producer_free(B.unlingered, 5000);
    PQfinish(B.conn);
    return 0;
}
