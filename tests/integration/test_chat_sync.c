/*
 * test_chat_sync.c - blazz-chat-sync against the real stack: SyncCommands are
 * produced straight to <prefix>chat.sync (as ingest would), chat-sync runs as
 * a separate process, and the tests check PostgreSQL and the topics it
 * publishes to through its outbox.
 *
 *  - private and group messages: contacts, groups, chats and counters;
 *  - a 500-chat x 20-message history sync ends "completed" with exact counts;
 *  - receipts out of order never move a status backwards; campaign receipts
 *    are routed to campaign.receipts;
 *  - replaying every command again changes no row or counter and emits no
 *    event id that was not emitted the first time;
 *  - a message stored again (its row gone, as after a restore to before it)
 *    gets the uuid it had;
 *  - crash: SIGKILL at random moments during a mixed workload
 *    (BLAZZ_CHAT_SYNC_CRASH_COMMANDS, default 50000), restart, then every
 *    count, counter and event equals what the test computed from the rules;
 *  - two instances in one group, one killed and restarted: exact results.
 *
 * Completion is detected by polling kafka_offsets (every record consumed)
 * and the outbox (every event published); nothing is timed.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "blazz/v1/campaign.pb-c.h"
#include "blazz/v1/chat_event.pb-c.h"
#include "blazz/v1/session.pb-c.h"
#include "blazz/v1/sync.pb-c.h"
#include "chat_sync_itest.h"
#include "itest.h"

#define WAIT_LIMIT_MS (300 * 1000)
#define BASE_MS 1700000000000LL
#define MAX_PROCS 2

/* ---- fixture ---------------------------------------------------------------------- */

typedef struct packed {
    char *key;
    char *event_id;
    uint8_t *bytes;
    size_t len;
} packed;

typedef struct fixture {
    char prefix[64], topic[128], group[64], token[32], log_path[256];
    PGconn *conn;
    bz_producer *producer;
    int64_t workspace, account, account2;
    char session[64];
    pid_t procs[MAX_PROCS];
    packed *sent;
    size_t nsent, capsent;
    int64_t clock_ms;
} fixture;

static fixture *fx;

/* One-value queries on the fixture's connection. */
#define q_int(...) itest_pg_int64f(fx->conn, __VA_ARGS__)
#define q_text(...) itest_pg_textf(fx->conn, __VA_ARGS__)
#define assert_text itest_assert_text

static int64_t create_account(const char *session)
{
    return q_int("INSERT INTO whatsapp_accounts (workspace_id, session_id, status) "
                 "VALUES (%lld, '%s', 'qr_scanning') RETURNING id",
                 (long long)fx->workspace, session);
}

static int setup(void **state)
{
    (void)state;
    fx = calloc(1, sizeof *fx);
    itest_unique("", fx->token, sizeof fx->token);
    snprintf(fx->prefix, sizeof fx->prefix, "itest-cs-%s.", fx->token);
    snprintf(fx->topic, sizeof fx->topic, "%schat.sync", fx->prefix);
    snprintf(fx->group, sizeof fx->group, "blazz-chat-sync-itest-%s", fx->token);
    const char *dir = getenv("BLAZZ_STATE_DIR");
    snprintf(fx->log_path, sizeof fx->log_path, "%s/logs/%s.log", dir ? dir : "/tmp", fx->group);
    fx->conn = itest_pg_connect();
    itest_topics_create(fx->prefix, 6);
    fx->producer = itest_producer();
    fx->workspace = q_int("INSERT INTO workspaces (name) VALUES ('itest chat-sync %s') RETURNING id",
                          fx->token);
    snprintf(fx->session, sizeof fx->session, "cs-%s-a", fx->token);
    fx->account = create_account(fx->session);
    char s2[64];
    snprintf(s2, sizeof s2, "cs-%s-b", fx->token);
    fx->account2 = create_account(s2);
    fx->clock_ms = BASE_MS;
    return 0;
}

static void stop_all(void);

static int teardown(void **state)
{
    (void)state;
    stop_all();
    for (size_t i = 0; i < fx->nsent; i++) {
        free(fx->sent[i].key);
        free(fx->sent[i].event_id);
        free(fx->sent[i].bytes);
    }
    free(fx->sent);
    bz_producer_free(fx->producer, 5000);
    PQfinish(fx->conn);
    free(fx);
    fx = NULL;
    return 0;
}

/* ---- chat-sync processes ------------------------------------------------------------ */

static void start_proc(int slot)
{
    char bin[1024];
    snprintf(bin, sizeof bin, "%s/bin/blazz-chat-sync", itest_env("BLAZZ_TEST_BIN_DIR"));
    setenv("BLAZZ_KAFKA_TOPIC_PREFIX", fx->prefix, 1);
    setenv("BLAZZ_CONSUMER_GROUP_ID", fx->group, 1);
    setenv("BLAZZ_KAFKA_SESSION_TIMEOUT_MS", "6000", 1);
    setenv("BLAZZ_OUTBOX_IDLE_POLL_MS", "100", 1);
    char *argv[] = {bin, NULL};
    fx->procs[slot] = itest_spawn(argv, fx->log_path);
}

static void assert_alive(void)
{
    for (int i = 0; i < MAX_PROCS; i++) {
        int status;
        if (fx->procs[i] > 0 && waitpid(fx->procs[i], &status, WNOHANG) == fx->procs[i]) {
            fx->procs[i] = 0;
            fail_msg("chat-sync exited unexpectedly (status %d); see %s", status, fx->log_path);
        }
    }
}

static void kill_proc(int slot)
{
    kill(fx->procs[slot], SIGKILL);
    itest_wait(fx->procs[slot]);
    fx->procs[slot] = 0;
}

static void stop_proc(int slot)
{
    if (fx->procs[slot] <= 0)
        return;
    kill(fx->procs[slot], SIGTERM);
    int rc = itest_wait(fx->procs[slot]);
    fx->procs[slot] = 0;
    if (rc != 0)
        fail_msg("chat-sync exited with %d after SIGTERM (leak or error); see %s", rc, fx->log_path);
}

static void stop_all(void)
{
    for (int i = 0; i < MAX_PROCS; i++)
        if (fx && fx->procs[i] > 0) {
            kill(fx->procs[i], SIGTERM);
            itest_wait(fx->procs[i]);
            fx->procs[i] = 0;
        }
}

static int64_t consumed_total(void)
{
    return q_int("SELECT coalesce(sum(next_offset), 0) FROM kafka_offsets WHERE group_id = '%s'",
                 fx->group);
}

/* Poll until every produced record is applied and every event published. */
static void wait_until_applied(void)
{
    for (int waited = 0;; waited += 100) {
        assert_alive();
        if (consumed_total() >= (int64_t)fx->nsent && q_int("SELECT count(*) FROM outbox") == 0)
            break;
        if (waited > WAIT_LIMIT_MS)
            fail_msg("consumed %lld of %zu records, %lld outbox rows left; see %s",
                     (long long)consumed_total(), fx->nsent,
                     (long long)q_int("SELECT count(*) FROM outbox"), fx->log_path);
        itest_sleep_ms(100);
    }
    assert_int_equal(consumed_total(), (int64_t)fx->nsent);
}

/* ---- producing commands ---------------------------------------------------------- */

static void remember(const char *key, const char *event_id, uint8_t *bytes, size_t len)
{
    if (fx->nsent == fx->capsent) {
        fx->capsent = fx->capsent ? fx->capsent * 2 : 1024;
        fx->sent = realloc(fx->sent, fx->capsent * sizeof *fx->sent);
    }
    fx->sent[fx->nsent++] = (packed){strdup(key), strdup(event_id), bytes, len};
}

static void produce(const packed *p)
{
    bz_kafka_header hdr = {"event_id", p->event_id, strlen(p->event_id)};
    bz_error err;
    if (bz_producer_send(fx->producer, fx->topic, RD_KAFKA_PARTITION_UA, p->key, strlen(p->key),
                         p->bytes, p->len, &hdr, 1, NULL, &err) != BZ_OK)
        fail_msg("produce: %s", err.msg);
}

static void flush_producer(void)
{
    bz_error err;
    if (bz_producer_flush(fx->producer, 60000, &err) != BZ_OK)
        fail_msg("flush: %s", err.msg);
    assert_int_equal(bz_producer_failed(fx->producer), 0);
}

/* Produce cmd (its envelope filled here) under key "<ws>:<conversation>". */
static void send_cmd(Blazz__V1__SyncCommand *cmd, int64_t account, const char *conversation)
{
    static unsigned long seq;
    char event_id[96], key[256];
    snprintf(event_id, sizeof event_id, "%s-%lu", fx->token, ++seq);
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    env.event_id = event_id;
    env.occurred_at_ms = (fx->clock_ms += 1000);
    env.produced_at_ms = env.occurred_at_ms;
    env.source = "itest";
    env.workspace_id = fx->workspace;
    env.session_id = fx->session;
    env.whatsapp_account_id = account;
    env.provider = BLAZZ__V1__PROVIDER__PROVIDER_WEBJS;
    env.trace_id = event_id;
    cmd->envelope = &env;
    cmd->conversation = (char *)conversation;
    snprintf(key, sizeof key, "%lld:%s", (long long)fx->workspace, conversation);
    size_t len = blazz__v1__sync_command__get_packed_size(cmd);
    uint8_t *buf = malloc(len);
    blazz__v1__sync_command__pack(cmd, buf);
    cmd->envelope = NULL; /* env dies with this frame */
    remember(key, event_id, buf, len);
    produce(&fx->sent[fx->nsent - 1]);
    if (fx->nsent % 5000 == 0)
        bz_producer_poll(fx->producer, 0);
}

static void replay_all(void)
{
    size_t n = fx->nsent;
    for (size_t i = 0; i < n; i++) {
        /* remember() may move fx->sent: copy before it runs */
        packed p = fx->sent[i];
        uint8_t *copy = malloc(p.len);
        memcpy(copy, p.bytes, p.len);
        char *key = strdup(p.key), *event_id = strdup(p.event_id);
        remember(key, event_id, copy, p.len);
        free(key);
        free(event_id);
        produce(&fx->sent[fx->nsent - 1]);
    }
    flush_producer();
}

static void group_of(int group, char *out, size_t cap)
{
    snprintf(out, cap, "120363%06d-%s@g.us", group, fx->token);
}

static void send_private_on(int64_t account, const char *wam, int contact, const char *name,
                            int from_me, int64_t ts, const char *client_ref)
{
    char phone[32];
    inbound_phone(contact, phone, sizeof phone);
    Blazz__V1__InboundMessage m = inbound_private(wam, phone, name, from_me, ts);
    m.client_reference = (char *)(client_ref ? client_ref : "");
    Blazz__V1__SyncCommand cmd = BLAZZ__V1__SYNC_COMMAND__INIT;
    cmd.command_case = BLAZZ__V1__SYNC_COMMAND__COMMAND_MESSAGE;
    cmd.message = &m;
    send_cmd(&cmd, account, phone);
}

static void send_private(const char *wam, int contact, const char *name, int from_me,
                         int64_t ts, const char *client_ref)
{
    send_private_on(fx->account, wam, contact, name, from_me, ts, client_ref);
}

static void send_group_message_on(int64_t account, const char *wam, int group, const char *name,
                                  int sender, int64_t ts)
{
    char jid[96], sender_phone[32];
    group_of(group, jid, sizeof jid);
    inbound_phone(sender, sender_phone, sizeof sender_phone);
    Blazz__V1__InboundMessage m = inbound_group_message(wam, jid, name, sender_phone, ts);
    Blazz__V1__SyncCommand cmd = BLAZZ__V1__SYNC_COMMAND__INIT;
    cmd.command_case = BLAZZ__V1__SYNC_COMMAND__COMMAND_MESSAGE;
    cmd.message = &m;
    send_cmd(&cmd, account, jid);
}

static void send_group_message(const char *wam, int group, const char *name, int sender,
                               int64_t ts)
{
    send_group_message_on(fx->account, wam, group, name, sender, ts);
}

static void send_receipt(const char *wam, int contact, int status, int64_t ts,
                         const char *client_ref)
{
    char phone[32];
    inbound_phone(contact, phone, sizeof phone);
    Blazz__V1__MessageAck ack = inbound_ack(wam, phone, status, ts);
    ack.client_reference = (char *)(client_ref ? client_ref : "");
    Blazz__V1__SyncCommand cmd = BLAZZ__V1__SYNC_COMMAND__INIT;
    cmd.command_case = BLAZZ__V1__SYNC_COMMAND__COMMAND_RECEIPT;
    cmd.receipt = &ack;
    send_cmd(&cmd, fx->account, phone);
}

static void send_session(int state, int instance, int reason)
{
    Blazz__V1__InstanceRef inst = BLAZZ__V1__INSTANCE_REF__INIT;
    char url[64];
    snprintf(url, sizeof url, "http://gw-%d:3001", instance);
    inst.index = instance;
    inst.url = url;
    Blazz__V1__SessionStatus s = BLAZZ__V1__SESSION_STATUS__INIT;
    s.status = state;
    s.reason = reason;
    s.details = reason ? "connection closed" : "";
    s.instance = &inst;
    s.phone_number = "+628111111111";
    Blazz__V1__SyncCommand cmd = BLAZZ__V1__SYNC_COMMAND__INIT;
    cmd.command_case = BLAZZ__V1__SYNC_COMMAND__COMMAND_SESSION_STATUS;
    cmd.session_status = &s;
    send_cmd(&cmd, fx->account, "session");
}

static void send_group_update(int group, int action, int member)
{
    char jid[96], phone[32];
    group_of(group, jid, sizeof jid);
    inbound_phone(member, phone, sizeof phone);
    Blazz__V1__GroupParticipant p = BLAZZ__V1__GROUP_PARTICIPANT__INIT;
    p.phone = phone;
    p.name = "Member";
    Blazz__V1__GroupParticipant *ps[] = {&p};
    Blazz__V1__GroupUpdate u = BLAZZ__V1__GROUP_UPDATE__INIT;
    u.group_jid = jid;
    u.action = action;
    u.participants = ps;
    u.n_participants = 1;
    Blazz__V1__SyncCommand cmd = BLAZZ__V1__SYNC_COMMAND__INIT;
    cmd.command_case = BLAZZ__V1__SYNC_COMMAND__COMMAND_GROUP_UPDATE;
    cmd.group_update = &u;
    send_cmd(&cmd, fx->account, jid);
}

/* ---- private and group messages ------------------------------------------------------ */

static void test_private_and_group_messages(void **state)
{
    (void)state;
    start_proc(0);
    send_private("p1", 1, "Ann", 0, BASE_MS + 1000, NULL);
    send_private("p2", 1, "Ann B", 0, BASE_MS + 2000, NULL);
    send_private("p3", 2, "Bob", 0, BASE_MS + 3000, NULL);
    send_private("p1", 1, "Ann B", 0, BASE_MS + 1000, NULL); /* a duplicate delivery */
    send_private("o1", 1, "Me", 1, BASE_MS + 4000, NULL);    /* echo of our own send */
    send_group_message("g1", 1, "Team", 5, BASE_MS + 5000);
    send_group_message("g2", 1, "Team Renamed", 6, BASE_MS + 6000);
    send_receipt("p3", 2, S_READ, BASE_MS + 7000, NULL); /* Bob's message read */
    flush_producer();
    wait_until_applied();
    stop_proc(0);

    long long ws = (long long)fx->workspace;
    assert_int_equal(q_int("SELECT count(*) FROM contacts WHERE workspace_id = %lld", ws), 2);
    assert_int_equal(q_int("SELECT count(*) FROM chats WHERE workspace_id = %lld", ws), 6);
    assert_text("Ann B", q_text("SELECT first_name FROM contacts WHERE workspace_id = %lld AND "
                                "phone = '+628100000001'", ws));
    assert_int_equal(q_int("SELECT unread_messages FROM contacts WHERE workspace_id = %lld AND "
                           "phone = '+628100000001'", ws), 2);
    assert_int_equal(q_int("SELECT " MS("latest_chat_created_at") " FROM contacts WHERE "
                           "workspace_id = %lld AND phone = '+628100000001'", ws), BASE_MS + 4000);
    /* seed 000 Chat::created: our own echo moves last_message_at too */
    assert_int_equal(q_int("SELECT " MS("last_message_at") " FROM contacts WHERE "
                           "workspace_id = %lld AND phone = '+628100000001'", ws), BASE_MS + 4000);
    assert_int_equal(q_int("SELECT unread_messages FROM contacts WHERE workspace_id = %lld AND "
                           "phone = '+628100000002'", ws), 0);
    assert_int_equal(q_int("SELECT count(*) FROM contacts WHERE workspace_id = %lld AND "
                           "source_type = 'webjs' AND source_session_id = %lld", ws,
                           (long long)fx->account), 2);
    assert_text("outbound|sent|true", q_text("SELECT type || '|' || message_status || '|' || is_read "
                                          "FROM chats WHERE whatsapp_account_id = %lld AND "
                                          "wam_id = 'o1'", (long long)fx->account));
    assert_text("Team Renamed", q_text("SELECT name FROM whatsapp_groups WHERE workspace_id = %lld",
                                       ws));
    assert_int_equal(q_int("SELECT count(*) FROM chats c JOIN whatsapp_groups g ON g.id = c.group_id "
                           "WHERE c.workspace_id = %lld AND c.chat_type = 'group' AND "
                           "c.contact_id IS NULL AND c.metadata->>'sender_phone' LIKE '+6281%%'",
                           ws), 2);

    event_log ev;
    event_log_read(fx->prefix, EVENT_LOG_CHAT_EVENTS, fx->workspace, &ev);
    assert_int_equal(event_log_distinct(&ev, K_CREATED), 6);
    assert_int_equal(event_log_distinct(&ev, K_STATUS), 1);
    assert_int_equal(ev.n, 7);
    event_log_free(&ev);
}

/* A database restored to an earlier point stores again the messages that
 * came after it (consumers re-read them from Kafka, ARCHITECTURE.md §6.5):
 * such a message must be the row the CRM already knows, with its uuid. The
 * restore is played by deleting the row; the message then comes again. */
static void test_a_message_stored_again_keeps_its_uuid(void **state)
{
    (void)state;
    start_proc(0);
    send_private("again-1", 1, "Ann", 0, BASE_MS + 1000, NULL);
    send_private("again-2", 1, "Ann", 0, BASE_MS + 2000, NULL);
    flush_producer();
    wait_until_applied();
    long long account = (long long)fx->account;
    char *first = q_text("SELECT uuid::text FROM chats WHERE whatsapp_account_id = %lld AND "
                         "wam_id = 'again-1'", account);
    char *other = q_text("SELECT uuid::text FROM chats WHERE whatsapp_account_id = %lld AND "
                         "wam_id = 'again-2'", account);
    assert_string_not_equal(first, other);
    itest_pg_exec(fx->conn, "DELETE FROM chats WHERE wam_id = 'again-1'");
    send_private("again-1", 1, "Ann", 0, BASE_MS + 1000, NULL);
    flush_producer();
    wait_until_applied();
    stop_proc(0);
    char *again = q_text("SELECT uuid::text FROM chats WHERE whatsapp_account_id = %lld AND "
                         "wam_id = 'again-1'", account);
    assert_string_equal(again, first);
    free(first);
    free(other);
    free(again);
}

/* The CRM's inbox (db/read_contract.sql) files a conversation under the
 * account of its latest message and orders groups by theirs, as contacts. */
static void test_the_inbox_follows_the_latest_message(void **state)
{
    (void)state;
    start_proc(0);
    send_private_on(fx->account, "a1", 1, "Ann", 0, BASE_MS + 1000, NULL);
    send_private_on(fx->account2, "b1", 1, "Ann", 0, BASE_MS + 2000, NULL);
    send_private_on(fx->account, "a0", 1, "Ann", 0, BASE_MS + 500, NULL); /* older: moves nothing */
    send_group_message_on(fx->account, "g1", 1, "Team", 5, BASE_MS + 3000);
    send_group_message_on(fx->account2, "g2", 1, "Team", 6, BASE_MS + 4000);
    send_group_message_on(fx->account, "g0", 1, "Team", 6, BASE_MS + 100);
    flush_producer();
    wait_until_applied();
    stop_proc(0);

    long long ws = (long long)fx->workspace;
    char *want = q_text("SELECT %lld || '|' || %lld || '|' || %lld", (long long)fx->account2,
                        (long long)fx->account, (long long)(BASE_MS + 2000));
    assert_text(want, q_text("SELECT whatsapp_account_id || '|' || source_session_id || '|' || "
                             MS("latest_chat_created_at") " FROM contacts WHERE "
                             "workspace_id = %lld AND phone = '+628100000001'", ws));
    free(want);
    want = q_text("SELECT %lld || '|' || %lld", (long long)fx->account2,
                  (long long)(BASE_MS + 4000));
    assert_text(want, q_text("SELECT whatsapp_account_id || '|' || " MS("latest_chat_created_at")
                             " FROM whatsapp_groups WHERE workspace_id = %lld", ws));
    free(want);
}

/* ---- history sync ------------------------------------------------------------------------ */

#define HIST_CHATS 500
#define HIST_BATCH 50
#define HIST_MSGS 20

static int history_batch(int batch, int *expected_unread)
{
    Blazz__V1__SyncedChat chats[HIST_BATCH], *chat_ptrs[HIST_BATCH];
    Blazz__V1__InboundMessage msgs[HIST_BATCH][HIST_MSGS], *msg_ptrs[HIST_BATCH][HIST_MSGS];
    Blazz__V1__GroupParticipant parts[3], *part_ptrs[3];
    char strings[HIST_BATCH][HIST_MSGS][32], phones[HIST_BATCH][32], names[HIST_BATCH][32];
    char jids[HIST_BATCH][96], part_phones[3][32];
    for (int p = 0; p < 3; p++) {
        parts[p] = (Blazz__V1__GroupParticipant)BLAZZ__V1__GROUP_PARTICIPANT__INIT;
        inbound_phone(9000 + p, part_phones[p], sizeof part_phones[p]);
        parts[p].phone = part_phones[p];
        parts[p].name = "P";
        parts[p].is_admin = p == 0;
        part_ptrs[p] = &parts[p];
    }
    int stored = 0;
    for (int j = 0; j < HIST_BATCH; j++) {
        int c = batch * HIST_BATCH + j;
        Blazz__V1__SyncedChat *sc = &chats[j];
        *sc = (Blazz__V1__SyncedChat)BLAZZ__V1__SYNCED_CHAT__INIT;
        int group = c % 10 == 9;
        if (group) {
            group_of(10000 + c, jids[j], sizeof jids[j]);
            sc->chat_type = BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_GROUP;
            sc->group_jid = jids[j];
            sc->group_name = "History group";
            sc->participants = part_ptrs;
            sc->n_participants = 3;
        } else {
            inbound_phone(1000 + c, phones[j], sizeof phones[j]);
            snprintf(names[j], sizeof names[j], "Contact %d", c);
            sc->chat_type = BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_PRIVATE;
            sc->contact_phone = phones[j];
            sc->contact_name = names[j];
        }
        for (int k = 0; k < HIST_MSGS; k++) {
            Blazz__V1__InboundMessage *m = &msgs[j][k];
            *m = (Blazz__V1__InboundMessage)BLAZZ__V1__INBOUND_MESSAGE__INIT;
            snprintf(strings[j][k], sizeof strings[j][k], "h-%d-%d", c, k);
            m->wam_id = strings[j][k];
            m->chat_type = sc->chat_type;
            m->body = "old message";
            m->message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT;
            m->timestamp_ms = BASE_MS - 1000000 + c * 100 + k;
            m->from_me = k % 4 == 3;
            m->is_read = k < HIST_MSGS - 3;
            if (!group && !m->from_me && !m->is_read)
                (*expected_unread)++;
            msg_ptrs[j][k] = m;
            stored++;
        }
        sc->messages = msg_ptrs[j];
        sc->n_messages = HIST_MSGS;
        chat_ptrs[j] = sc;
    }
    Blazz__V1__HistorySyncBatch h = BLAZZ__V1__HISTORY_SYNC_BATCH__INIT;
    char sync_id[64];
    snprintf(sync_id, sizeof sync_id, "sync-%s", fx->token);
    h.sync_id = sync_id;
    h.batch_index = batch;
    h.batch_total = HIST_CHATS / HIST_BATCH;
    h.total_chats = HIST_CHATS;
    h.chats = chat_ptrs;
    h.n_chats = HIST_BATCH;
    Blazz__V1__SyncCommand cmd = BLAZZ__V1__SYNC_COMMAND__INIT;
    cmd.command_case = BLAZZ__V1__SYNC_COMMAND__COMMAND_HISTORY_SYNC;
    cmd.history_sync = &h;
    send_cmd(&cmd, fx->account, "session");
    return stored;
}

static void test_history_sync(void **state)
{
    (void)state;
    start_proc(0);
    send_session(BLAZZ__V1__SESSION_STATE__SESSION_STATE_CONNECTED, 0, 0);
    int unread = 0, stored = 0;
    for (int b = 0; b < HIST_CHATS / HIST_BATCH; b++)
        stored += history_batch(b, &unread);
    send_session(BLAZZ__V1__SESSION_STATE__SESSION_STATE_DISCONNECTED, 1,
                 BLAZZ__V1__DISCONNECT_REASON__DISCONNECT_REASON_TIMEOUT);
    flush_producer();
    int64_t t0 = (int64_t)time(NULL);
    wait_until_applied();
    printf("history sync of %d chats x %d messages applied in ~%lld s\n", HIST_CHATS, HIST_MSGS,
           (long long)((int64_t)time(NULL) - t0));
    stop_proc(0);

    long long ws = (long long)fx->workspace, acct = (long long)fx->account;
    assert_int_equal(q_int("SELECT count(*) FROM chats WHERE workspace_id = %lld", ws), stored);
    assert_int_equal(q_int("SELECT count(*) FROM contacts WHERE workspace_id = %lld", ws), 450);
    assert_int_equal(q_int("SELECT count(*) FROM whatsapp_groups WHERE workspace_id = %lld AND "
                           "jsonb_array_length(participants) = 3", ws), 50);
    assert_int_equal(q_int("SELECT sum(unread_messages) FROM contacts WHERE workspace_id = %lld", ws),
                     unread);
    assert_text("completed|500|500", q_text("SELECT concat_ws('|', metadata->>'sync_status', "
                                            "metadata->>'synced_count', metadata->>'total_count') "
                                            "FROM whatsapp_accounts WHERE id = %lld", acct));
    assert_int_equal(q_int("SELECT count(*) FROM whatsapp_accounts WHERE id = %lld AND "
                           "metadata ? 'last_sync_at'", acct), 1);
    /* the first connect is no restore; a timeout costs 10 of health (§5.2) */
    assert_text("disconnected|timeout|1|0|1|90|0",
                q_text("SELECT concat_ws('|', status, disconnect_reason, assigned_instance_index, "
                       "previous_instance_index, instance_migration_count, health_score, "
                       "session_restore_count) FROM whatsapp_accounts "
                       "WHERE id = %lld AND last_instance_migration_at IS NOT NULL AND "
                       "last_connected_at IS NOT NULL AND disconnected_at IS NOT NULL", acct));

    event_log ev;
    event_log_read(fx->prefix, EVENT_LOG_CHAT_EVENTS, fx->workspace, &ev);
    assert_int_equal(event_log_distinct(&ev, K_PROGRESS), HIST_CHATS / HIST_BATCH);
    assert_int_equal(event_log_distinct(&ev, K_CREATED), HIST_CHATS);
    event_log_free(&ev);
    event_log_read(fx->prefix, EVENT_LOG_SESSION_EVENTS, fx->workspace, &ev);
    /* connected; then from instance 1: migrated + disconnected */
    assert_int_equal(event_log_distinct(&ev, -1), 3);
    event_log_free(&ev);
}

/* ---- receipts out of order, campaign routing ----------------------------------------- */

/* A queued log of the campaign for a new contact (inbound_phone(contact)); its
 * uuid (heap). */
static char *queued_campaign_log(int64_t campaign, int contact, const char *name)
{
    long long ws = (long long)fx->workspace;
    char phone[32];
    inbound_phone(contact, phone, sizeof phone);
    int64_t id = q_int("INSERT INTO contacts (workspace_id, phone, first_name) VALUES "
                       "(%lld, '%s', '%s') RETURNING id", ws, phone, name);
    return q_text("INSERT INTO campaign_logs (workspace_id, campaign_id, contact_id, status) "
                  "VALUES (%lld, %lld, %lld, 'queued') RETURNING uuid::text",
                  ws, (long long)campaign, (long long)id);
}

/* A history sync that the session's disconnect cuts short is "failed",
 * with the reason (seed 002 DES-4, migration 0003); the next connect asks
 * for a new one. */
static void test_history_sync_cut_short_fails(void **state)
{
    (void)state;
    start_proc(0);
    send_session(BLAZZ__V1__SESSION_STATE__SESSION_STATE_CONNECTED, 0, 0);
    int unread = 0;
    history_batch(0, &unread);
    send_session(BLAZZ__V1__SESSION_STATE__SESSION_STATE_DISCONNECTED, 0,
                 BLAZZ__V1__DISCONNECT_REASON__DISCONNECT_REASON_TIMEOUT);
    flush_producer();
    wait_until_applied();
    long long acct = (long long)fx->account;
    assert_text("failed|the session disconnected|50",
                q_text("SELECT concat_ws('|', metadata->>'sync_status', metadata->>'sync_error', "
                       "metadata->>'synced_count') FROM whatsapp_accounts WHERE id = %lld",
                       acct));
    send_session(BLAZZ__V1__SESSION_STATE__SESSION_STATE_CONNECTED, 0, 0);
    flush_producer();
    wait_until_applied();
    stop_proc(0);
    assert_text("pending", q_text("SELECT metadata->>'sync_status' FROM whatsapp_accounts WHERE "
                                  "id = %lld",
                                  acct));
}

static void test_receipts_out_of_order(void **state)
{
    (void)state;
    long long ws = (long long)fx->workspace;
    int64_t campaign = q_int("INSERT INTO campaigns (workspace_id, name, status) VALUES "
                             "(%lld, 'itest', 'running') RETURNING id", ws);
    char *log_uuid = queued_campaign_log(campaign, 7, "Campaign target");
    char *early_log_uuid = queued_campaign_log(campaign, 9, "Early receipt");
    char *echo_log_uuid = queued_campaign_log(campaign, 10, "Echo only");
    start_proc(0);
    send_private("c1", 7, "", 1, BASE_MS + 1000, log_uuid);
    send_receipt("c1", 7, S_READ, BASE_MS + 4000, log_uuid);
    send_receipt("c1", 7, S_DELIVERED, BASE_MS + 3000, log_uuid);
    send_receipt("c1", 7, S_SENT, BASE_MS + 2000, log_uuid);
    send_private("c2", 8, "", 1, BASE_MS + 1000, NULL);
    send_receipt("c2", 8, S_FAILED, BASE_MS + 2000, NULL);
    send_receipt("c2", 8, S_DELIVERED, BASE_MS + 3000, NULL);
    send_private("c3", 8, "", 1, BASE_MS + 1000, NULL);
    send_receipt("c3", 8, S_DELIVERED, BASE_MS + 2000, NULL);
    send_receipt("c3", 8, S_FAILED, BASE_MS + 3000, NULL);
    send_receipt("c3", 8, S_SENT, BASE_MS + 4000, NULL);
    send_receipt("c4", 8, S_DELIVERED, BASE_MS + 2000, NULL); /* before its message */
    send_private("c4", 8, "", 1, BASE_MS + 1000, NULL);
    send_receipt("zz", 8, S_READ, BASE_MS + 2000, NULL); /* never stored */
    send_receipt("c5", 9, S_DELIVERED, BASE_MS + 3000, early_log_uuid); /* campaign, early */
    send_receipt("c5", 9, S_SENT, BASE_MS + 2000, early_log_uuid);
    send_private("c5", 9, "", 1, BASE_MS + 1000, early_log_uuid);
    /* a gateway that reports nothing but the echo (Meta without status
     * webhooks, issue 31) */
    send_private("c6", 10, "", 1, BASE_MS + 1000, echo_log_uuid);
    flush_producer();
    wait_until_applied();
    stop_proc(0);

    long long acct = (long long)fx->account;
#define STATE_SQL                                                                                 \
    "SELECT concat_ws('|', message_status, " MS("sent_at") ", " MS("delivered_at") ", "           \
    MS("read_at") ") FROM chats WHERE whatsapp_account_id = %lld AND wam_id = '%s'"
    char expect[256];
    snprintf(expect, sizeof expect, "read|%lld|%lld|%lld", BASE_MS + 1000, BASE_MS + 4000,
             BASE_MS + 4000);
    assert_text(expect, q_text(STATE_SQL, acct, "c1"));
    assert_text("failed", q_text("SELECT message_status FROM chats WHERE whatsapp_account_id = %lld "
                                 "AND wam_id = 'c2' AND metadata->>'error_code' = '131047'", acct));
    snprintf(expect, sizeof expect, "delivered|%lld|%lld|-1", BASE_MS + 1000, BASE_MS + 2000);
    assert_text(expect, q_text(STATE_SQL, acct, "c3"));
    /* receipts that came before their message are applied once it is stored,
     * in forward order whatever order they came in */
    snprintf(expect, sizeof expect, "delivered|%lld|%lld|-1", BASE_MS + 1000, BASE_MS + 2000);
    assert_text(expect, q_text(STATE_SQL, acct, "c4"));
    snprintf(expect, sizeof expect, "delivered|%lld|%lld|-1", BASE_MS + 1000, BASE_MS + 3000);
    assert_text(expect, q_text(STATE_SQL, acct, "c5"));
    assert_text("zz|read", q_text("SELECT string_agg(wam_id || '|' || status, ',') FROM "
                                  "pending_receipts WHERE whatsapp_account_id = %lld", acct));
    assert_int_equal(q_int("SELECT (metadata->>'campaign_id')::bigint FROM chats WHERE "
                           "whatsapp_account_id = %lld AND wam_id = 'c1'", acct), campaign);

    event_log ev;
    event_log_read(fx->prefix, EVENT_LOG_CHAT_EVENTS, fx->workspace, &ev);
    /* c1 read, c2 failed, c3 delivered, c4 delivered, c5 delivered (its
     * "sent" finds the echo already sent) */
    assert_int_equal(event_log_distinct(&ev, K_STATUS), 5);
    event_log_free(&ev);
    /* the echoes of c1, c5 and c6 each stand for their log's sent (the
     * receipts "sent" after them change nothing and are not routed); c1's
     * read; c5's two receipts, each routed when it arrived (no message
     * yet), and the delivered one again under the same event id when it
     * moved c5 */
    event_log_read(fx->prefix, EVENT_LOG_CAMPAIGN_RECEIPTS, fx->workspace, &ev);
    assert_int_equal(ev.n, 7);
    assert_int_equal(event_log_distinct(&ev, -1), 6);
    assert_int_equal(event_log_distinct(&ev, S_READ), 1);
    assert_int_equal(event_log_distinct(&ev, S_DELIVERED), 1);
    assert_int_equal(event_log_distinct(&ev, S_SENT), 4);
    event_log_free(&ev);
    free(log_uuid);
    free(early_log_uuid);
    free(echo_log_uuid);
}

/* ---- the mixed workload and what the rules say it must produce ---------------------------- */

#define WL_CONTACTS 400
#define WL_GROUPS 20
#define WL_POOL 8

typedef struct wl_msg {
    char wam[24];
    int contact;
    int status; /* outbound: DeliveryStatus; inbound: read flag */
} wl_msg;

typedef struct expected {
    int64_t chats, created, status_events, session_events, inbound_read, migrations;
    int unread[WL_CONTACTS];
    int64_t latest[WL_CONTACTS];
    int seen[WL_CONTACTS];
    int members[WL_GROUPS][WL_POOL];
    int group_used[WL_GROUPS];
    int outbound_status[8];
    int session_state, has_instance, instance;
    int health, restores, ever_connected; /* ARCHITECTURE.md §5.2 health formula */
} expected;

static uint64_t rng_state;

static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

static int rank(int s)
{
    return s == S_SENT ? 2 : s == S_DELIVERED ? 3 : s == S_READ ? 4 : 0;
}

/* The receipt rule: forward only; failed only before delivery, then terminal. */
static int next_status(int cur, int incoming)
{
    if (cur == S_FAILED)
        return cur;
    if (incoming == S_FAILED)
        return rank(cur) <= 2 ? S_FAILED : cur;
    return rank(incoming) > rank(cur) ? incoming : cur;
}

static void expect_session(expected *e, int state, int instance)
{
    if (!e->has_instance) {
        e->has_instance = 1;
        e->instance = instance;
    } else if (e->instance != instance) {
        e->instance = instance;
        e->migrations++;
        e->session_events++;
    }
    if (state != e->session_state) {
        e->session_state = state;
        e->session_events++;
        if (state == BLAZZ__V1__SESSION_STATE__SESSION_STATE_CONNECTED) {
            if (e->ever_connected) {
                e->restores++;
                e->health = e->health + 10 > 100 ? 100 : e->health + 10;
            }
            e->ever_connected = 1;
        } else if (state == BLAZZ__V1__SESSION_STATE__SESSION_STATE_DISCONNECTED) {
            e->health = e->health - 20 < 0 ? 0 : e->health - 20; /* reason "error" */
        }
    }
}

/* Produce n mixed commands and compute their expected effects into e. */
static void run_workload(int n, expected *e, uint64_t seed)
{
    memset(e, 0, sizeof *e);
    e->session_state = BLAZZ__V1__SESSION_STATE__SESSION_STATE_QR_SCANNING;
    e->health = 100;
    rng_state = seed;
    wl_msg *in = calloc((size_t)n, sizeof *in), *out = calloc((size_t)n, sizeof *out);
    size_t nin = 0, nout = 0;
    for (int i = 0; i < n; i++) {
        int64_t ts = BASE_MS + (int64_t)i * 10;
        uint32_t r = rng() % 100;
        int c = (int)(rng() % WL_CONTACTS);
        if (r >= 60 && r < 78 && nout == 0)
            r = 50; /* no outbound message to receipt yet: send one */
        if (((r >= 40 && r < 45) || (r >= 78 && r < 86)) && nin == 0)
            r = 0;
        if (r < 40) {
            wl_msg *m = &in[nin++];
            snprintf(m->wam, sizeof m->wam, "in-%d", i);
            m->contact = c;
            send_private(m->wam, c, (rng() % 3) ? "Customer" : "Customer Renamed", 0, ts, NULL);
            e->chats++, e->created++, e->unread[c]++, e->seen[c] = 1;
            if (ts > e->latest[c])
                e->latest[c] = ts;
        } else if (r < 45) {
            wl_msg *m = &in[rng() % nin];
            send_private(m->wam, m->contact, "Customer", 0, BASE_MS + strtoll(m->wam + 3, NULL, 10) * 10,
                         NULL);
        } else if (r < 60) {
            wl_msg *m = &out[nout++];
            snprintf(m->wam, sizeof m->wam, "out-%d", i);
            m->contact = c;
            m->status = S_SENT;
            send_private(m->wam, c, "", 1, ts, NULL);
            e->chats++, e->created++, e->seen[c] = 1;
            if (ts > e->latest[c])
                e->latest[c] = ts;
        } else if (r < 78) {
            wl_msg *m = &out[rng() % nout];
            uint32_t p = rng() % 10;
            int s = p < 4 ? S_DELIVERED : p < 7 ? S_READ : p < 9 ? S_SENT : S_FAILED;
            int next = next_status(m->status, s);
            if (next != m->status)
                e->status_events++;
            m->status = next;
            send_receipt(m->wam, m->contact, s, ts, NULL);
        } else if (r < 86) {
            wl_msg *m = &in[rng() % nin];
            if (!m->status) {
                m->status = 1;
                e->status_events++;
                e->inbound_read++;
                if (e->unread[m->contact] > 0)
                    e->unread[m->contact]--;
            }
            send_receipt(m->wam, m->contact, S_READ, ts, NULL);
        } else if (r < 96) {
            char wam[24];
            snprintf(wam, sizeof wam, "g-%d", i);
            int g = (int)(rng() % WL_GROUPS);
            send_group_message(wam, g, "Group", (int)(rng() % WL_CONTACTS), ts);
            e->chats++, e->created++, e->group_used[g] = 1;
        } else if (r < 98) {
            int g = (int)(rng() % WL_GROUPS), member = (int)(rng() % WL_POOL);
            int add = rng() % 2;
            send_group_update(g, add ? BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_PARTICIPANTS_ADDED
                                     : BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_PARTICIPANTS_REMOVED,
                              5000 + member);
            e->members[g][member] = add;
            e->group_used[g] = 1;
        } else {
            int state = rng() % 2 ? BLAZZ__V1__SESSION_STATE__SESSION_STATE_CONNECTED
                                  : BLAZZ__V1__SESSION_STATE__SESSION_STATE_DISCONNECTED;
            int instance = (int)(rng() % 3);
            send_session(state, instance,
                         state == BLAZZ__V1__SESSION_STATE__SESSION_STATE_DISCONNECTED
                             ? BLAZZ__V1__DISCONNECT_REASON__DISCONNECT_REASON_ERROR
                             : 0);
            expect_session(e, state, instance);
        }
    }
    for (size_t i = 0; i < nout; i++)
        e->outbound_status[out[i].status]++;
    free(in);
    free(out);
    flush_producer();
}

static void assert_workload_results(const expected *e)
{
    long long ws = (long long)fx->workspace, acct = (long long)fx->account;
    assert_int_equal(q_int("SELECT count(*) FROM chats WHERE workspace_id = %lld", ws), e->chats);
    int contacts = 0;
    for (int c = 0; c < WL_CONTACTS; c++)
        contacts += e->seen[c];
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT phone, unread_messages, " MS("latest_chat_created_at")
             " FROM contacts WHERE workspace_id = %lld ORDER BY phone", ws);
    PGresult *res = PQexec(fx->conn, sql);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(res), contacts);
    for (int i = 0; i < PQntuples(res); i++) {
        int c = (int)strtol(PQgetvalue(res, i, 0) + 5, NULL, 10);
        if (c < 0 || c >= WL_CONTACTS || !e->seen[c])
            fail_msg("unexpected contact %s", PQgetvalue(res, i, 0));
        if (strtol(PQgetvalue(res, i, 1), NULL, 10) != e->unread[c] ||
            strtoll(PQgetvalue(res, i, 2), NULL, 10) != e->latest[c])
            fail_msg("contact %s: unread %s latest %s, expected %d %lld", PQgetvalue(res, i, 0),
                     PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), e->unread[c],
                     (long long)e->latest[c]);
    }
    PQclear(res);
    int statuses[] = {S_SENT, S_DELIVERED, S_READ, S_FAILED};
    const char *names[] = {"sent", "delivered", "read", "failed"};
    for (int i = 0; i < 4; i++)
        assert_int_equal(q_int("SELECT count(*) FROM chats WHERE workspace_id = %lld AND "
                               "type = 'outbound' AND message_status = '%s'", ws, names[i]),
                         e->outbound_status[statuses[i]]);
    assert_int_equal(q_int("SELECT count(*) FROM chats WHERE workspace_id = %lld AND "
                           "type = 'inbound' AND is_read", ws), e->inbound_read);
    for (int g = 0; g < WL_GROUPS; g++) {
        if (!e->group_used[g])
            continue;
        int members = 0;
        for (int m = 0; m < WL_POOL; m++)
            members += e->members[g][m];
        char jid[96];
        group_of(g, jid, sizeof jid);
        assert_int_equal(q_int("SELECT jsonb_array_length(participants) FROM whatsapp_groups "
                               "WHERE workspace_id = %lld AND group_jid = '%s'", ws, jid), members);
    }
    const char *state = e->session_state == BLAZZ__V1__SESSION_STATE__SESSION_STATE_CONNECTED
                            ? "connected"
                        : e->session_state == BLAZZ__V1__SESSION_STATE__SESSION_STATE_DISCONNECTED
                            ? "disconnected"
                            : "qr_scanning";
    assert_text(state, q_text("SELECT status FROM whatsapp_accounts WHERE id = %lld", acct));
    assert_int_equal(q_int("SELECT instance_migration_count FROM whatsapp_accounts WHERE id = %lld",
                           acct), e->migrations);
    assert_int_equal(q_int("SELECT health_score FROM whatsapp_accounts WHERE id = %lld", acct),
                     e->health);
    assert_int_equal(q_int("SELECT session_restore_count FROM whatsapp_accounts WHERE id = %lld",
                           acct), e->restores);
    if (e->has_instance)
        assert_int_equal(q_int("SELECT assigned_instance_index FROM whatsapp_accounts WHERE "
                               "id = %lld", acct), e->instance);

    event_log ev;
    event_log_read(fx->prefix, EVENT_LOG_CHAT_EVENTS, fx->workspace, &ev);
    assert_int_equal(event_log_distinct(&ev, K_CREATED), e->created);
    assert_int_equal(event_log_distinct(&ev, K_STATUS), e->status_events);
    event_log_free(&ev);
    event_log_read(fx->prefix, EVENT_LOG_SESSION_EVENTS, fx->workspace, &ev);
    assert_int_equal(event_log_distinct(&ev, -1), e->session_events);
    event_log_free(&ev);
}

/* ---- replay ------------------------------------------------------------------------------- */

static char *state_digest(void)
{
    long long ws = (long long)fx->workspace, acct = (long long)fx->account;
    return q_text(
        "SELECT concat_ws('|', "
        "(SELECT count(*) FROM chats WHERE workspace_id = %lld), "
        "(SELECT count(*) FROM contacts WHERE workspace_id = %lld), "
        "(SELECT sum(unread_messages) FROM contacts WHERE workspace_id = %lld), "
        "(SELECT md5(string_agg(concat_ws(':', phone, first_name, unread_messages, "
        "latest_chat_created_at, last_message_at), ',' ORDER BY phone)) FROM contacts "
        "WHERE workspace_id = %lld), "
        "(SELECT md5(string_agg(concat_ws(':', wam_id, message_status, is_read, sent_at, "
        "delivered_at, read_at, metadata::text), ',' ORDER BY wam_id)) FROM chats "
        "WHERE workspace_id = %lld), "
        "(SELECT md5(string_agg(concat_ws(':', group_jid, name, participants::text), ',' "
        "ORDER BY group_jid)) FROM whatsapp_groups WHERE workspace_id = %lld), "
        "(SELECT md5(concat_ws(':', status, assigned_instance_index, previous_instance_index, "
        "instance_migration_count, last_instance_migration_at, last_connected_at, "
        "disconnected_at, disconnect_reason, metadata::text)) FROM whatsapp_accounts "
        "WHERE id = %lld))",
        ws, ws, ws, ws, ws, ws, acct);
}

static void test_replay_changes_nothing(void **state)
{
    (void)state;
    expected *e = malloc(sizeof *e);
    int unread = 0;
    history_batch(0, &unread);
    run_workload(4000, e, 0x9e3779b97f4a7c15ULL);
    start_proc(0);
    wait_until_applied();
    char *before = state_digest();
    event_log chat_before, session_before;
    event_log_read(fx->prefix, EVENT_LOG_CHAT_EVENTS, fx->workspace, &chat_before);
    event_log_read(fx->prefix, EVENT_LOG_SESSION_EVENTS, fx->workspace, &session_before);

    replay_all();
    wait_until_applied();
    stop_proc(0);
    char *after = state_digest();
    assert_string_equal(after, before);
    event_log chat_after, session_after;
    event_log_read(fx->prefix, EVENT_LOG_CHAT_EVENTS, fx->workspace, &chat_after);
    event_log_read(fx->prefix, EVENT_LOG_SESSION_EVENTS, fx->workspace, &session_after);
    printf("replay: %zu chat events and %zu session events before, %zu and %zu after\n",
           chat_before.n, session_before.n, chat_after.n, session_after.n);
    assert_int_equal(event_log_distinct(&chat_after, -1), event_log_distinct(&chat_before, -1));
    assert_int_equal(event_log_distinct(&session_after, -1), event_log_distinct(&session_before, -1));
    assert_int_equal(chat_after.n, chat_before.n);
    assert_int_equal(session_after.n, session_before.n);
    event_log_free(&chat_before);
    event_log_free(&chat_after);
    event_log_free(&session_before);
    event_log_free(&session_after);
    free(before);
    free(after);
    free(e);
}

/* ---- crash and two-instance tests ------------------------------------------------------------ */

static int env_int(const char *name, int def)
{
    return itest_env_int(name, def, 0, 10000000);
}

/* Wait until the group has applied `more` records beyond `from`. */
static void wait_for_progress(int64_t from, int64_t more)
{
    for (int waited = 0; consumed_total() < from + more; waited += 50) {
        assert_alive();
        if (consumed_total() >= (int64_t)fx->nsent)
            return;
        if (waited > WAIT_LIMIT_MS)
            fail_msg("no progress past %lld; see %s", (long long)consumed_total(), fx->log_path);
        itest_sleep_ms(50);
    }
}

static void test_crash_exactly_once(void **state)
{
    (void)state;
    int n = env_int("BLAZZ_CHAT_SYNC_CRASH_COMMANDS", 50000);
    int max_kills = env_int("BLAZZ_CHAT_SYNC_CRASH_KILLS", 4);
    expected *e = malloc(sizeof *e);
    run_workload(n, e, 0x2545f4914f6cdd1dULL);
    int64_t t0 = (int64_t)time(NULL);
    start_proc(0);
    int kills = 0;
    while (kills < max_kills && consumed_total() < (int64_t)fx->nsent) {
        wait_for_progress(consumed_total(), itest_random(200, n / (max_kills + 2) + 200));
        itest_sleep_ms(itest_random(0, 300)); /* a random moment, mid-batch or between */
        if (consumed_total() >= (int64_t)fx->nsent)
            break;
        kill_proc(0);
        kills++;
        start_proc(0);
    }
    wait_until_applied();
    stop_proc(0);
    printf("crash test: %d commands, %d SIGKILLs, ~%lld s\n", n, kills,
           (long long)((int64_t)time(NULL) - t0));
    assert_true(kills > 0);
    assert_workload_results(e);
    free(e);
}

static void test_two_instances(void **state)
{
    (void)state;
    int n = env_int("BLAZZ_CHAT_SYNC_TWO_INSTANCE_COMMANDS", 15000);
    expected *e = malloc(sizeof *e);
    run_workload(n, e, 0x5851f42d4c957f2dULL);
    start_proc(0);
    start_proc(1);
    wait_for_progress(0, n / 3);
    kill_proc(1);
    start_proc(1);
    wait_until_applied();
    stop_proc(0);
    stop_proc(1);
    assert_workload_results(e);
    free(e);
}

int main(void)
{
    itest_env("BLAZZ_PG_DSN");
    itest_env("BLAZZ_KAFKA_BROKERS");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_private_and_group_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_inbox_follows_the_latest_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_message_stored_again_keeps_its_uuid, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_history_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_receipts_out_of_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history_sync_cut_short_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_exactly_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_instances, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
