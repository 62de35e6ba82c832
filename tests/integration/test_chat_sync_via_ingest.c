/*
 * test_chat_sync_via_ingest.c - the chat write path end to end on the real
 * stack: blazz.v1.InboundEvents enter blazz-ingest (signed POST /v1/events
 * or straight to <prefix>wa.inbound.raw), ingest turns them into chat.sync
 * commands, blazz-chat-sync applies them and publishes chat.events through
 * its outbox. Both services run as separate processes under a unique topic
 * prefix and consumer groups; the tests check PostgreSQL and the topics.
 *
 *  - private and group messages (HTTP): contacts, groups, chats, counters;
 *  - a 500-chat x 20-message history sync in 10 batches (Kafka raw topic)
 *    ends "completed" with exact counts;
 *  - receipts out of order (HTTP) never move a status backwards;
 *  - replay: the very same InboundEvents (same event_ids) are sent again
 *    through the raw topic to a restarted ingest (its duplicate window is in
 *    memory, so the replay reaches chat-sync): rows and counters stay put and
 *    chat.events carries exactly the event ids of the first pass;
 *  - retries: the same events posted again (HTTP has no duplicate window
 *    before chat.sync): each is on chat.sync twice, and nothing changes.
 *
 * Completion is detected without timing: every chat.sync record (read
 * read_committed) is covered by chat-sync's kafka_offsets and the outbox is
 * empty. Each test stops both processes with SIGTERM and expects exit 0.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "blazz/v1/chat_event.pb-c.h"
#include "blazz/v1/inbound.pb-c.h"
#include "chat_sync_itest.h"
#include "core/clock.h"
#include "core/uuid.h"
#include "itest.h"
#include "itest_http.h"

#define SECRET "e2e-gateway-secret-0123456789abcdef"
#define WAIT_LIMIT_MS (240 * 1000)
#define BASE_MS 1700000000000LL
#define MAX_PARTITIONS 64

/* ---- fixture ---------------------------------------------------------------------- */

typedef struct sent_event {
    char event_id[BZ_UUID_STR_SIZE];
    uint8_t *bytes;
    size_t len;
} sent_event;

typedef struct fixture {
    char token[32], prefix[64], raw_topic[128], sync_topic[128];
    char ingest_group[64], sync_group[64], session[64], gateway[48];
    char ingest_log[256], sync_log[256];
    int port, admin_port;
    pid_t ingest, chat_sync;
    PGconn *conn;
    bz_producer *producer;
    int64_t workspace, account;
    int via_http;          /* 1: POST /v1/events; 0: produce to wa.inbound.raw */
    sent_event *sent;
    size_t nsent, cap;
    int64_t forwarded;     /* chat.sync records ingest must have produced so far */
} fixture;

static fixture *fx;

/* One-value queries on the fixture's connection. */
#define q_int(...) itest_pg_int64f(fx->conn, __VA_ARGS__)
#define q_text(...) itest_pg_textf(fx->conn, __VA_ARGS__)
#define assert_text itest_assert_text

static int setup(void **state)
{
    (void)state;
    fx = calloc(1, sizeof *fx);
    itest_unique("", fx->token, sizeof fx->token);
    snprintf(fx->prefix, sizeof fx->prefix, "itest-e2e-%s.", fx->token);
    snprintf(fx->raw_topic, sizeof fx->raw_topic, "%swa.inbound.raw", fx->prefix);
    snprintf(fx->sync_topic, sizeof fx->sync_topic, "%schat.sync", fx->prefix);
    snprintf(fx->ingest_group, sizeof fx->ingest_group, "blazz-ingest-e2e-%s", fx->token);
    snprintf(fx->sync_group, sizeof fx->sync_group, "blazz-chat-sync-e2e-%s", fx->token);
    snprintf(fx->session, sizeof fx->session, "e2e-%s", fx->token);
    const char *dir = getenv("BLAZZ_STATE_DIR");
    snprintf(fx->ingest_log, sizeof fx->ingest_log, "%s/%s.log", dir ? dir : "/tmp", fx->ingest_group);
    snprintf(fx->sync_log, sizeof fx->sync_log, "%s/%s.log", dir ? dir : "/tmp", fx->sync_group);
    fx->conn = itest_pg_connect();
    itest_topics_create(fx->prefix, 6);
    /* the gateway serving the session, with its own key (ARCHITECTURE.md §9.2) */
    snprintf(fx->gateway, sizeof fx->gateway, "e2e-%s", fx->token);
    itest_gateway_create(fx->prefix, fx->gateway, "webjs", "gateway-sim", SECRET);
    fx->producer = itest_producer();
    fx->workspace = q_int("INSERT INTO workspaces (name) VALUES ('itest e2e chat %s') RETURNING id",
                          fx->token);
    fx->account = q_int("INSERT INTO whatsapp_accounts (workspace_id, session_id, status, "
                        "gateway_id) VALUES (%lld, '%s', 'qr_scanning', '%s') RETURNING id",
                        (long long)fx->workspace, fx->session, fx->gateway);
    fx->via_http = 1;
    return 0;
}

static void stop_quietly(pid_t *pid)
{
    if (*pid > 0) {
        kill(*pid, SIGTERM);
        itest_wait(*pid);
        *pid = 0;
    }
}

static int teardown(void **state)
{
    (void)state;
    stop_quietly(&fx->ingest);
    stop_quietly(&fx->chat_sync);
    for (size_t i = 0; i < fx->nsent; i++)
        free(fx->sent[i].bytes);
    free(fx->sent);
    bz_producer_free(fx->producer, 5000);
    PQfinish(fx->conn);
    free(fx);
    fx = NULL;
    return 0;
}

/* ---- the two processes ------------------------------------------------------------ */

/* Start ingest and wait until /readyz says its Kafka path holds partitions,
 * so nothing produced to the raw topic from now on is skipped. */
static void start_ingest(void)
{
    char bin[1024], listen[64];
    snprintf(bin, sizeof bin, "%s/bin/blazz-ingest", itest_env("BLAZZ_TEST_BIN_DIR"));
    fx->port = itest_free_port();
    fx->admin_port = itest_free_port();
    setenv("BLAZZ_KAFKA_TOPIC_PREFIX", fx->prefix, 1);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", fx->port);
    setenv("BLAZZ_INGEST_LISTEN", listen, 1);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", fx->admin_port);
    setenv("BLAZZ_HTTP_LISTEN", listen, 1);
    setenv("BLAZZ_INGEST_GROUP_ID", fx->ingest_group, 1);
    setenv("BLAZZ_INGEST_CONSUMER_SESSION_TIMEOUT_MS", "6000", 1);
    setenv("BLAZZ_INGEST_TXN_MAX_MS", "50", 1);
    char *argv[] = {bin, NULL};
    fx->ingest = itest_spawn(argv, fx->ingest_log);
    itest_wait_ready(fx->admin_port, fx->ingest, fx->ingest_log, WAIT_LIMIT_MS);
}

static void start_chat_sync(void)
{
    char bin[1024];
    snprintf(bin, sizeof bin, "%s/bin/blazz-chat-sync", itest_env("BLAZZ_TEST_BIN_DIR"));
    setenv("BLAZZ_KAFKA_TOPIC_PREFIX", fx->prefix, 1);
    setenv("BLAZZ_HTTP_LISTEN", "127.0.0.1:0", 1);
    setenv("BLAZZ_CONSUMER_GROUP_ID", fx->sync_group, 1);
    setenv("BLAZZ_KAFKA_SESSION_TIMEOUT_MS", "6000", 1);
    setenv("BLAZZ_OUTBOX_IDLE_POLL_MS", "100", 1);
    char *argv[] = {bin, NULL};
    fx->chat_sync = itest_spawn(argv, fx->sync_log);
}

static void start_both(void)
{
    start_chat_sync();
    start_ingest();
}

/* SIGTERM and expect a clean exit (0 also means ASan found no leak). */
static void stop_cleanly(pid_t *pid, const char *what, const char *log)
{
    if (*pid <= 0)
        return;
    kill(*pid, SIGTERM);
    int rc = itest_wait(*pid);
    *pid = 0;
    if (rc != 0)
        fail_msg("%s exited with %d after SIGTERM; see %s", what, rc, log);
}

static void stop_both(void)
{
    stop_cleanly(&fx->ingest, "blazz-ingest", fx->ingest_log);
    stop_cleanly(&fx->chat_sync, "blazz-chat-sync", fx->sync_log);
    assert_int_equal(q_int("SELECT count(*) FROM outbox"), 0);
}

static void assert_alive(pid_t *pid, const char *what, const char *log)
{
    int status;
    if (*pid > 0 && waitpid(*pid, &status, WNOHANG) == *pid) {
        *pid = 0;
        fail_msg("%s exited unexpectedly (status %d); see %s", what, status, log);
    }
}

/* ---- waiting for the pipeline to settle ---------------------------------------------- */

typedef struct sync_scan {
    int64_t count;
    int64_t next[MAX_PARTITIONS]; /* last offset + 1 per partition, 0 when empty */
} sync_scan;

static void scan_record(void *ctx, const rd_kafka_message_t *msg)
{
    sync_scan *s = ctx;
    s->count++;
    if (msg->partition >= 0 && msg->partition < MAX_PARTITIONS && msg->offset + 1 > s->next[msg->partition])
        s->next[msg->partition] = msg->offset + 1;
}

/* chat-sync has applied record offset next-1 of partition p. */
static int applied_through(int p, int64_t next)
{
    return q_int("SELECT coalesce(max(next_offset), -1) FROM kafka_offsets WHERE group_id = '%s' "
                 "AND topic = '%s' AND partition = %d", fx->sync_group, fx->sync_topic, p) >= next;
}

/* Poll until ingest produced every expected chat.sync record (committed),
 * chat-sync applied them all and the outbox published every event. */
static void wait_until_applied(void)
{
    int64_t deadline = bz_monotonic_ms() + WAIT_LIMIT_MS;
    for (;;) {
        assert_alive(&fx->ingest, "blazz-ingest", fx->ingest_log);
        assert_alive(&fx->chat_sync, "blazz-chat-sync", fx->sync_log);
        sync_scan s;
        memset(&s, 0, sizeof s);
        itest_consume_all(fx->sync_topic, scan_record, &s);
        if (s.count > fx->forwarded)
            fail_msg("%lld chat.sync records, expected %lld; see %s", (long long)s.count,
                     (long long)fx->forwarded, fx->ingest_log);
        int done = s.count == fx->forwarded;
        for (int p = 0; done && p < MAX_PARTITIONS; p++)
            done = s.next[p] == 0 || applied_through(p, s.next[p]);
        if (done && q_int("SELECT count(*) FROM outbox") == 0)
            return;
        if (bz_monotonic_ms() > deadline)
            fail_msg("not settled: %lld of %lld chat.sync records, %lld outbox rows; see %s / %s",
                     (long long)s.count, (long long)fx->forwarded,
                     (long long)q_int("SELECT count(*) FROM outbox"), fx->ingest_log, fx->sync_log);
        itest_sleep_ms(250);
    }
}

/* ---- sending InboundEvents -------------------------------------------------------- */

static void post_event(const sent_event *e)
{
    char url[128];
    itest_gateway_headers h;
    assert_int_equal(itest_gateway_sign(fx->gateway, SECRET, e->bytes, e->len,
                                        "Content-Type: application/x-protobuf", &h),
                     BZ_OK);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/events", fx->port);
    static itest_http_reply reply;
    itest_http("POST", url, e->bytes, e->len, h.lines, 30000, &reply);
    if (reply.status != 202)
        fail_msg("POST /v1/events of %s answered %ld: %s; see %s", e->event_id, reply.status,
                 reply.body, fx->ingest_log);
}

/* As the HTTP edge writes it: stamped with the gateway that signed it. */
static void produce_raw(const sent_event *e)
{
    bz_kafka_header hdrs[3] = {{"event_id", e->event_id, strlen(e->event_id)},
                               {"trace_id", e->event_id, strlen(e->event_id)},
                               {ITEST_GATEWAY_HEADER, fx->gateway, strlen(fx->gateway)}};
    bz_error err;
    if (bz_producer_send(fx->producer, fx->raw_topic, RD_KAFKA_PARTITION_UA, fx->session,
                         strlen(fx->session), e->bytes, e->len, hdrs, 3, NULL, &err) != BZ_OK)
        fail_msg("produce to %s: %s", fx->raw_topic, err.msg);
}

static void flush_producer(void)
{
    bz_error err;
    if (bz_producer_flush(fx->producer, 60000, &err) != BZ_OK)
        fail_msg("flush: %s", err.msg);
    assert_int_equal(bz_producer_failed(fx->producer), 0);
}

static void deliver(const sent_event *e)
{
    if (fx->via_http)
        post_event(e);
    else
        produce_raw(e);
    fx->forwarded++;
}

/* Give ev a fresh envelope, pack it, remember it for the replay, deliver it. */
static void send_event(Blazz__V1__InboundEvent *ev)
{
    static int64_t clock_ms = BASE_MS;
    if (fx->nsent == fx->cap) {
        fx->cap = fx->cap ? fx->cap * 2 : 256;
        fx->sent = realloc(fx->sent, fx->cap * sizeof *fx->sent);
    }
    sent_event *e = &fx->sent[fx->nsent++];
    assert_int_equal(bz_uuid_v4(e->event_id, NULL), BZ_OK);
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    env.event_id = e->event_id;
    env.occurred_at_ms = (clock_ms += 1000);
    env.produced_at_ms = env.occurred_at_ms;
    env.source = "itest-gateway";
    env.session_id = fx->session;
    env.provider = BLAZZ__V1__PROVIDER__PROVIDER_WEBJS;
    env.trace_id = e->event_id;
    ev->envelope = &env;
    e->len = blazz__v1__inbound_event__get_packed_size(ev);
    e->bytes = malloc(e->len);
    blazz__v1__inbound_event__pack(ev, e->bytes);
    ev->envelope = NULL; /* env dies with this frame */
    deliver(e);
}

/* Send every event of the first pass again, byte for byte. */
static void replay_all(void)
{
    size_t n = fx->nsent;
    for (size_t i = 0; i < n; i++)
        deliver(&fx->sent[i]);
    if (!fx->via_http)
        flush_producer();
}

static void group_of(int group, char *out, size_t cap)
{
    snprintf(out, cap, "120363%012d@g.us", group);
}

static void send_private(const char *wam, int contact, const char *name, int from_me, int64_t ts)
{
    char phone[32];
    inbound_phone(contact, phone, sizeof phone);
    Blazz__V1__InboundMessage m = inbound_private(wam, phone, name, from_me, ts);
    Blazz__V1__InboundEvent ev = BLAZZ__V1__INBOUND_EVENT__INIT;
    ev.payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_MESSAGE;
    ev.message = &m;
    send_event(&ev);
}

static void send_group_message(const char *wam, int group, const char *name, int sender, int64_t ts)
{
    char jid[64], sender_phone[32];
    group_of(group, jid, sizeof jid);
    inbound_phone(sender, sender_phone, sizeof sender_phone);
    Blazz__V1__InboundMessage m = inbound_group_message(wam, jid, name, sender_phone, ts);
    Blazz__V1__InboundEvent ev = BLAZZ__V1__INBOUND_EVENT__INIT;
    ev.payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_MESSAGE;
    ev.message = &m;
    send_event(&ev);
}

static void send_ack(const char *wam, int contact, int status, int64_t ts)
{
    char phone[32];
    inbound_phone(contact, phone, sizeof phone);
    Blazz__V1__MessageAck ack = inbound_ack(wam, phone, status, ts);
    Blazz__V1__InboundEvent ev = BLAZZ__V1__INBOUND_EVENT__INIT;
    ev.payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_ACK;
    ev.ack = &ack;
    send_event(&ev);
}

static void send_connected(void)
{
    Blazz__V1__InstanceRef inst = BLAZZ__V1__INSTANCE_REF__INIT;
    inst.index = 0;
    inst.url = "http://gw-0:3001";
    Blazz__V1__SessionStatus s = BLAZZ__V1__SESSION_STATUS__INIT;
    s.status = BLAZZ__V1__SESSION_STATE__SESSION_STATE_CONNECTED;
    s.instance = &inst;
    s.phone_number = "+628111111111";
    Blazz__V1__InboundEvent ev = BLAZZ__V1__INBOUND_EVENT__INIT;
    ev.payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_SESSION_STATUS;
    ev.session_status = &s;
    send_event(&ev);
}

/* ---- scenarios shared by the tests ----------------------------------------------------- */

static void send_messages(void)
{
    send_private("p1", 1, "Ann", 0, BASE_MS + 1000);
    send_private("p2", 1, "Ann B", 0, BASE_MS + 2000);
    send_private("p3", 2, "Bob", 0, BASE_MS + 3000);
    send_private("o1", 1, "Me", 1, BASE_MS + 4000); /* echo of our own send */
    send_group_message("g1", 1, "Team", 5, BASE_MS + 5000);
    send_group_message("g2", 1, "Team Renamed", 6, BASE_MS + 6000);
    send_group_message("g3", 2, "Other team", 5, BASE_MS + 6500);
}

static void assert_messages_landed(void)
{
    long long ws = (long long)fx->workspace, acct = (long long)fx->account;
    assert_int_equal(q_int("SELECT count(*) FROM contacts WHERE workspace_id = %lld AND phone IN "
                           "('+628100000001', '+628100000002', '+628100000005', '+628100000006')",
                           ws), 2);
    assert_int_equal(q_int("SELECT count(*) FROM chats WHERE workspace_id = %lld AND wam_id IN "
                           "('p1', 'p2', 'p3', 'o1', 'g1', 'g2', 'g3')", ws), 7);
    assert_int_equal(q_int("SELECT count(*) FROM whatsapp_groups WHERE workspace_id = %lld", ws), 2);
    assert_text("Ann B", q_text("SELECT first_name FROM contacts WHERE workspace_id = %lld AND "
                                "phone = '+628100000001'", ws));
    char expect[128];
    /* seed 000 Chat::created: the echo at +4000 moves last_message_at too */
    snprintf(expect, sizeof expect, "2|%lld|%lld", BASE_MS + 4000, BASE_MS + 4000);
    assert_text(expect, q_text("SELECT concat_ws('|', unread_messages, " MS("latest_chat_created_at")
                               ", " MS("last_message_at") ") FROM contacts WHERE workspace_id = "
                               "%lld AND phone = '+628100000001'", ws));
    snprintf(expect, sizeof expect, "1|%lld|%lld", BASE_MS + 3000, BASE_MS + 3000);
    assert_text(expect, q_text("SELECT concat_ws('|', unread_messages, " MS("latest_chat_created_at")
                               ", " MS("last_message_at") ") FROM contacts WHERE workspace_id = "
                               "%lld AND phone = '+628100000002'", ws));
    assert_int_equal(q_int("SELECT count(*) FROM contacts WHERE workspace_id = %lld AND "
                           "source_type = 'webjs' AND source_session_id = %lld AND phone IN "
                           "('+628100000001', '+628100000002')", ws, acct), 2);
    assert_text("outbound|sent|true", q_text("SELECT type || '|' || message_status || '|' || is_read "
                                             "FROM chats WHERE whatsapp_account_id = %lld AND "
                                             "wam_id = 'o1'", acct));
    assert_int_equal(q_int("SELECT count(*) FROM chats WHERE whatsapp_account_id = %lld AND "
                           "type = 'inbound' AND chat_type = 'private'", acct), 3);
    assert_text("Team Renamed", q_text("SELECT name FROM whatsapp_groups WHERE workspace_id = %lld "
                                       "AND group_jid = '120363000000000001@g.us'", ws));
    assert_int_equal(q_int("SELECT count(*) FROM chats c JOIN whatsapp_groups g ON g.id = c.group_id "
                           "WHERE c.workspace_id = %lld AND c.chat_type = 'group' AND "
                           "c.contact_id IS NULL AND g.group_jid = '120363000000000001@g.us'", ws), 2);
}

/* Outbound messages, then receipts in every bad order: c4's "delivered"
 * comes before c4 itself (chat-sync parks it and applies it when c4 is
 * stored), and "zz" is never stored (its receipt stays parked). */
static void send_receipts(void)
{
    send_private("c1", 7, "", 1, BASE_MS + 1000);
    send_ack("c1", 7, S_READ, BASE_MS + 4000);
    send_ack("c1", 7, S_DELIVERED, BASE_MS + 3000);
    send_ack("c1", 7, S_SENT, BASE_MS + 2000);
    send_private("c2", 8, "", 1, BASE_MS + 1000);
    send_ack("c2", 8, S_FAILED, BASE_MS + 2000);
    send_ack("c2", 8, S_DELIVERED, BASE_MS + 3000);
    send_private("c3", 8, "", 1, BASE_MS + 1000);
    send_ack("c3", 8, S_DELIVERED, BASE_MS + 2000);
    send_ack("c3", 8, S_FAILED, BASE_MS + 3000);
    send_ack("c3", 8, S_SENT, BASE_MS + 4000);
    send_ack("c4", 8, S_DELIVERED, BASE_MS + 2000);
    send_private("c4", 8, "", 1, BASE_MS + 1000);
    send_ack("zz", 8, S_READ, BASE_MS + 2000); /* never stored */
}

#define STATE_SQL                                                                                  \
    "SELECT concat_ws('|', message_status, " MS("sent_at") ", " MS("delivered_at") ", "            \
    MS("read_at") ") FROM chats WHERE whatsapp_account_id = %lld AND wam_id = '%s'"

static void assert_receipts_applied(void)
{
    long long acct = (long long)fx->account;
    char expect[256];
    snprintf(expect, sizeof expect, "read|%lld|%lld|%lld", BASE_MS + 1000, BASE_MS + 4000,
             BASE_MS + 4000);
    assert_text(expect, q_text(STATE_SQL, acct, "c1"));
    assert_text("failed", q_text("SELECT message_status FROM chats WHERE whatsapp_account_id = %lld "
                                 "AND wam_id = 'c2' AND metadata->>'error_code' = '131047'", acct));
    snprintf(expect, sizeof expect, "delivered|%lld|%lld|-1", BASE_MS + 1000, BASE_MS + 2000);
    assert_text(expect, q_text(STATE_SQL, acct, "c3"));
    /* the receipt that came before c4 was applied once c4 arrived */
    snprintf(expect, sizeof expect, "delivered|%lld|%lld|-1", BASE_MS + 1000, BASE_MS + 2000);
    assert_text(expect, q_text(STATE_SQL, acct, "c4"));
    assert_int_equal(q_int("SELECT count(*) FROM chats WHERE whatsapp_account_id = %lld AND "
                           "wam_id = 'zz'", acct), 0);
    /* applied receipts leave no parked row; zz's waits, once however often it came */
    assert_text("zz|read", q_text("SELECT string_agg(wam_id || '|' || status, ',') FROM "
                                  "pending_receipts WHERE whatsapp_account_id = %lld", acct));
}

/* Every row and counter the scenarios touch, as one comparable string. */
static char *snapshot(void)
{
    long long ws = (long long)fx->workspace;
    return q_text(
        "SELECT concat_ws(' / ', "
        "(SELECT count(*) FROM chats WHERE workspace_id = %lld), "
        "(SELECT count(*) FROM contacts WHERE workspace_id = %lld), "
        "(SELECT count(*) FROM whatsapp_groups WHERE workspace_id = %lld), "
        "(SELECT string_agg(concat_ws(',', phone, first_name, unread_messages, "
        "  " MS("latest_chat_created_at") ", " MS("last_message_at") "), ';' ORDER BY phone) "
        "  FROM contacts WHERE workspace_id = %lld), "
        "(SELECT string_agg(concat_ws(',', wam_id, message_status, is_read, " MS("sent_at") ", "
        "  " MS("delivered_at") ", " MS("read_at") "), ';' ORDER BY wam_id) "
        "  FROM chats WHERE workspace_id = %lld), "
        "(SELECT string_agg(concat_ws(',', group_jid, name), ';' ORDER BY group_jid) "
        "  FROM whatsapp_groups WHERE workspace_id = %lld))",
        ws, ws, ws, ws, ws, ws);
}

/* ---- 1. private and group messages (HTTP path) --------------------------------------- */

static void test_private_and_group_messages(void **state)
{
    (void)state;
    start_both();
    send_messages();
    wait_until_applied();
    stop_both();
    assert_messages_landed();
    long long ws = (long long)fx->workspace;
    assert_int_equal(q_int("SELECT count(*) FROM contacts WHERE workspace_id = %lld", ws), 2);
    assert_int_equal(q_int("SELECT count(*) FROM chats WHERE workspace_id = %lld", ws), 7);

    event_log ev;
    event_log_read(fx->prefix, EVENT_LOG_CHAT_EVENTS, fx->workspace, &ev);
    assert_int_equal(event_log_count(&ev, K_CREATED), 7);
    assert_int_equal(ev.n, 7);
    event_log_free(&ev);
}

/* ---- 2. history sync 500 x 20 (Kafka raw path) ---------------------------------------- */

#define HIST_CHATS 500
#define HIST_BATCH 50
#define HIST_MSGS 20

/* One batch of 50 chats (every 10th a group) with 20 messages each; adds
 * the inbound unread messages of private chats to *unread. */
static void send_history_batch(int batch, int *unread)
{
    static Blazz__V1__SyncedChat chats[HIST_BATCH];
    static Blazz__V1__SyncedChat *chat_ptrs[HIST_BATCH];
    static Blazz__V1__InboundMessage msgs[HIST_BATCH][HIST_MSGS];
    static Blazz__V1__InboundMessage *msg_ptrs[HIST_BATCH][HIST_MSGS];
    static char wams[HIST_BATCH][HIST_MSGS][32], phones[HIST_BATCH][32], names[HIST_BATCH][32];
    static char jids[HIST_BATCH][64];
    for (int j = 0; j < HIST_BATCH; j++) {
        int c = batch * HIST_BATCH + j, group = c % 10 == 9;
        Blazz__V1__SyncedChat *sc = &chats[j];
        *sc = (Blazz__V1__SyncedChat)BLAZZ__V1__SYNCED_CHAT__INIT;
        if (group) {
            group_of(10000 + c, jids[j], sizeof jids[j]);
            sc->chat_type = BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_GROUP;
            sc->group_jid = jids[j];
            sc->group_name = "History group";
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
            snprintf(wams[j][k], sizeof wams[j][k], "h-%d-%d", c, k);
            m->wam_id = wams[j][k];
            m->chat_type = sc->chat_type;
            if (group) {
                m->group_jid = jids[j];
                m->sender_phone = "+628199999999";
            }
            m->body = "old message";
            m->message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT;
            m->timestamp_ms = BASE_MS - 1000000 + c * 100 + k;
            m->from_me = k % 4 == 3;
            m->is_read = k < HIST_MSGS - 3;
            if (!group && !m->from_me && !m->is_read)
                (*unread)++;
            msg_ptrs[j][k] = m;
        }
        sc->messages = msg_ptrs[j];
        sc->n_messages = HIST_MSGS;
        chat_ptrs[j] = sc;
    }
    char sync_id[64];
    snprintf(sync_id, sizeof sync_id, "sync-%s", fx->token);
    Blazz__V1__HistorySyncBatch h = BLAZZ__V1__HISTORY_SYNC_BATCH__INIT;
    h.sync_id = sync_id;
    h.batch_index = batch;
    h.batch_total = HIST_CHATS / HIST_BATCH;
    h.total_chats = HIST_CHATS;
    h.chats = chat_ptrs;
    h.n_chats = HIST_BATCH;
    Blazz__V1__InboundEvent ev = BLAZZ__V1__INBOUND_EVENT__INIT;
    ev.payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_HISTORY_SYNC;
    ev.history_sync = &h;
    send_event(&ev);
}

static void test_history_sync(void **state)
{
    (void)state;
    start_both();
    fx->via_http = 0;
    send_connected();
    int unread = 0;
    for (int b = 0; b < HIST_CHATS / HIST_BATCH; b++)
        send_history_batch(b, &unread);
    flush_producer();
    int64_t t0 = bz_monotonic_ms();
    wait_until_applied();
    printf("history sync of %d chats x %d messages through ingest settled in %lld ms\n", HIST_CHATS,
           HIST_MSGS, (long long)(bz_monotonic_ms() - t0));
    stop_both();

    long long ws = (long long)fx->workspace, acct = (long long)fx->account;
    assert_int_equal(q_int("SELECT count(*) FROM chats WHERE workspace_id = %lld", ws),
                     HIST_CHATS * HIST_MSGS);
    assert_int_equal(q_int("SELECT count(*) FROM contacts WHERE workspace_id = %lld", ws), 450);
    assert_int_equal(q_int("SELECT count(*) FROM whatsapp_groups WHERE workspace_id = %lld", ws), 50);
    assert_int_equal(q_int("SELECT sum(unread_messages) FROM contacts WHERE workspace_id = %lld", ws),
                     unread);
    assert_text("completed|500|500", q_text("SELECT concat_ws('|', metadata->>'sync_status', "
                                            "metadata->>'synced_count', metadata->>'total_count') "
                                            "FROM whatsapp_accounts WHERE id = %lld", acct));
    assert_text("connected", q_text("SELECT status FROM whatsapp_accounts WHERE id = %lld", acct));

    event_log ev;
    event_log_read(fx->prefix, EVENT_LOG_CHAT_EVENTS, fx->workspace, &ev);
    assert_int_equal(event_log_count(&ev, K_PROGRESS), HIST_CHATS / HIST_BATCH);
    event_log_free(&ev);
}

/* ---- 3. receipts out of order (HTTP path) ---------------------------------------------- */

static void test_receipts_out_of_order(void **state)
{
    (void)state;
    start_both();
    send_receipts();
    wait_until_applied();
    stop_both();
    assert_receipts_applied();

    event_log ev;
    event_log_read(fx->prefix, EVENT_LOG_CHAT_EVENTS, fx->workspace, &ev);
    /* c1 read, c2 failed, c3 delivered, c4 delivered (parked, then applied) */
    assert_int_equal(event_log_count(&ev, K_STATUS), 4);
    event_log_free(&ev);
}

/* ---- 4. replay the same InboundEvents ---------------------------------------------------- */

static void test_replay_changes_nothing(void **state)
{
    (void)state;
    start_both();
    send_messages();
    send_receipts();
    wait_until_applied();
    char *before = snapshot();
    event_log first;
    event_log_read(fx->prefix, EVENT_LOG_CHAT_EVENTS, fx->workspace, &first);
    size_t n_first;
    char **ids_first = event_log_distinct_ids(&first, &n_first);

    /* A restarted ingest has an empty duplicate window: the replay goes all
     * the way to chat-sync, whose idempotence is what is under test. */
    stop_cleanly(&fx->ingest, "blazz-ingest", fx->ingest_log);
    start_ingest();
    fx->via_http = 0;
    replay_all();
    wait_until_applied();
    stop_both();

    assert_messages_landed();
    assert_receipts_applied();
    assert_text(before, snapshot());
    free(before);
    event_log second;
    event_log_read(fx->prefix, EVENT_LOG_CHAT_EVENTS, fx->workspace, &second);
    size_t n_second;
    char **ids_second = event_log_distinct_ids(&second, &n_second);
    assert_int_equal(n_second, n_first);
    for (size_t i = 0; i < n_first; i++)
        assert_string_equal(ids_second[i], ids_first[i]);
    assert_int_equal(n_first, 7 + 4 + 4); /* created: 7 + c1..c4; status: c1..c4 */
    free(ids_first);
    free(ids_second);
    event_log_free(&first);
    event_log_free(&second);
}

/* ---- 5. a gateway's retries of requests already stored ------------------------------------ */

/* The HTTP path writes chat.sync itself, with no duplicate window before
 * it (ARCHITECTURE.md §3.3): a gateway that retries a request whose 202
 * it never read (a lost answer, a timeout, ingest killed after the
 * broker's acknowledgement) puts the event on chat.sync a second time.
 * Every event sent again through the same ingest lands there twice
 * (wait_until_applied counts them), and chat-sync stores each once: rows,
 * counters and the events it published are those of the first pass. */
static void test_http_retries_change_nothing(void **state)
{
    (void)state;
    start_both();
    send_messages();
    send_receipts();
    wait_until_applied();
    char *before = snapshot();
    event_log first;
    event_log_read(fx->prefix, EVENT_LOG_CHAT_EVENTS, fx->workspace, &first);
    size_t n_first;
    char **ids_first = event_log_distinct_ids(&first, &n_first);

    replay_all();
    wait_until_applied();
    stop_both();

    assert_messages_landed();
    assert_receipts_applied();
    assert_text(before, snapshot());
    free(before);
    event_log second;
    event_log_read(fx->prefix, EVENT_LOG_CHAT_EVENTS, fx->workspace, &second);
    size_t n_second;
    char **ids_second = event_log_distinct_ids(&second, &n_second);
    assert_int_equal(n_second, n_first);
    for (size_t i = 0; i < n_first; i++)
        assert_string_equal(ids_second[i], ids_first[i]);
    free(ids_first);
    free(ids_second);
    event_log_free(&first);
    event_log_free(&second);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_private_and_group_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_receipts_out_of_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_retries_change_nothing, setup, teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return failed;
}
