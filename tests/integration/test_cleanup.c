/*
 * test_cleanup.c - blazz-cleanup against the real stack, with a clock the
 * test controls.
 *
 * The service reads "now" from a file (cleanup.clock_file) holding
 * milliseconds since the epoch; the tests fix T0, insert workspaces and
 * whatsapp_accounts rows whose timestamps are offsets from T0, and move the
 * file when they want time to pass. Sweeps run as separate processes: the
 * one-shot mode (cleanup.run_once, which exits once its destroy commands are
 * on Kafka) for the rules, crash and concurrency cases, the long-running
 * mode for cleanup.requests. Each test has its own topic prefix, consumer
 * group and workspaces, and stops every process it started.
 *
 * What is proved:
 *  - each rule removes exactly the right rows (boundaries 29 vs 31 min and
 *    23 vs 25 h, the duplicate keeper chosen by connection then recency,
 *    already-deleted rows untouched, other workspaces untouched), with the
 *    right disconnect tracking, one session_cleanup_logs row each, and the
 *    destroy commands and REMOVED events on the topics with the right
 *    instance; a second sweep changes nothing;
 *  - a dry run (blazzctl, and a dry-run request to the service) changes
 *    nothing; manual requests (blazzctl) record their actor; moving the
 *    clock makes a session stale for a running service;
 *  - two instances at once remove each session once, with and without the
 *    advisory lock; SIGKILL mid-sweep, then a new sweep finishes the job with
 *    no double logs and one event id per destroyed session; a sweep that
 *    failed while PostgreSQL was down is retried once it is back, not an
 *    interval (here an hour) later;
 *  - retention purges delivered webhook rows and (when configured) stuck
 *    outbox rows older than their ages, and nothing else; it purges receipts
 *    parked for a message that never came (pending_receipts) older than
 *    cleanup.pending_receipts_retention_days (7 by default), and counts them
 *    in blazz_cleanup_rows_purged_total{table="pending_receipts"}; campaign
 *    receipts waiting for their log after a restore
 *    (campaign_receipts_waiting) go after the same time, counted under
 *    their own table; proofs of Meta sends older than
 *    cleanup.meta_send_proofs_retention_days (30) go from
 *    meta_message_proofs, counted under it; a webhook endpoint's replaced
 *    signing secret is emptied once its overlap ended, not while it still
 *    signs, counted under webhook_endpoints.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "blazz/v1/cleanup.pb-c.h"
#include "blazz/v1/session.pb-c.h"
#include "itest.h"
#include "itest_http.h"
#include "media/media_row.h"
#include "media/store.h"

#define WAIT_LIMIT_MS (90 * 1000)
#define MIN_S 60LL
#define HOUR_S 3600LL
#define DAY_S 86400LL
#define NUL (-1LL) /* an offset meaning SQL NULL */

typedef struct fixture {
    char token[32];
    char prefix[64];
    char group[64];
    char clock_path[256];
    char log_path[256];
    int64_t t0_ms;
    PGconn *conn;
} fixture;

/* ---- plumbing --------------------------------------------------------------------- */

static int64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void set_clock(fixture *fx, int64_t now_ms)
{
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp", fx->clock_path);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fprintf(f, "%" PRId64 "\n", now_ms);
    fclose(f);
    assert_int_equal(rename(tmp, fx->clock_path), 0); /* atomic: the service never reads half */
}

static void fixture_init(fixture *fx, const char *name)
{
    memset(fx, 0, sizeof *fx);
    itest_unique("", fx->token, sizeof fx->token);
    snprintf(fx->prefix, sizeof fx->prefix, "itest-cl-%s.", fx->token);
    snprintf(fx->group, sizeof fx->group, "blazz-cleanup-itest-%s", fx->token);
    const char *state = getenv("BLAZZ_STATE_DIR");
    snprintf(fx->clock_path, sizeof fx->clock_path, "%s/itest-cleanup-%s.clock",
             state ? state : "/tmp", fx->token);
    snprintf(fx->log_path, sizeof fx->log_path, "%s/logs/itest-cleanup-%s-%s.log",
             state ? state : "/tmp", name, fx->token);
    /* whole seconds, so timestamps round-trip through SQL exactly */
    fx->t0_ms = wall_ms() / 1000 * 1000;
    fx->conn = itest_pg_connect();
    itest_topics_create(fx->prefix, 3);
    set_clock(fx, fx->t0_ms);
}

static void fixture_done(fixture *fx)
{
    unlink(fx->clock_path);
    PQfinish(fx->conn);
}

static PGresult *query(fixture *fx, const char *sql, int n, const char *const *params)
{
    PGresult *res = PQexecParams(fx->conn, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(res));
    return res;
}

static int64_t query_int(fixture *fx, const char *sql, int n, const char *const *params)
{
    PGresult *res = query(fx, sql, n, params);
    int64_t v = PQntuples(res) && !PQgetisnull(res, 0, 0) ? strtoll(PQgetvalue(res, 0, 0), NULL, 10)
                                                          : -1;
    PQclear(res);
    return v;
}

static char *query_text(fixture *fx, const char *sql, int n, const char *const *params)
{
    PGresult *res = query(fx, sql, n, params);
    char *v = strdup(PQntuples(res) && !PQgetisnull(res, 0, 0) ? PQgetvalue(res, 0, 0) : "");
    PQclear(res);
    return v;
}

static int64_t new_workspace(fixture *fx)
{
    const char *params[] = {fx->token};
    return query_int(fx, "INSERT INTO workspaces (name) VALUES ('itest-cleanup ' || $1) RETURNING id",
                     1, params);
}

/* Offsets are seconds before T0 (NUL for NULL). */
typedef struct account_spec {
    const char *name; /* session_id = <token>-<name> */
    const char *phone;
    const char *status;
    int64_t activity, created, disconnected, connected, deleted;
    int instance; /* -1: unassigned */
} account_spec;

static int64_t insert_account(fixture *fx, int64_t workspace, const account_spec *a)
{
    char ws[24], t0[24], act[24], cre[24], dis[24], con[24], del[24], inst[8], session[96];
    snprintf(ws, sizeof ws, "%" PRId64, workspace);
    snprintf(t0, sizeof t0, "%" PRId64, fx->t0_ms);
    snprintf(act, sizeof act, "%lld", (long long)a->activity);
    snprintf(cre, sizeof cre, "%lld", (long long)(a->created ? a->created : 3 * DAY_S));
    snprintf(dis, sizeof dis, "%lld", (long long)a->disconnected);
    snprintf(con, sizeof con, "%lld", (long long)a->connected);
    snprintf(del, sizeof del, "%lld", (long long)a->deleted);
    snprintf(inst, sizeof inst, "%d", a->instance);
    snprintf(session, sizeof session, "%s-%s", fx->token, a->name);
    const char *params[] = {ws, session, a->phone, a->status, t0, act, cre, dis, con, del, inst};
    return query_int(
        fx,
        "WITH t AS (SELECT to_timestamp($5::bigint / 1000.0) AS t0) "
        "INSERT INTO whatsapp_accounts (workspace_id, session_id, phone_number, status, "
        "last_activity_at, created_at, updated_at, disconnected_at, disconnect_reason, "
        "disconnect_details, last_connected_at, deleted_at, assigned_instance_index) "
        "SELECT $1::bigint, $2, $3, $4, "
        "CASE WHEN $6::bigint < 0 THEN NULL ELSE t0 - make_interval(secs => $6::bigint) END, "
        "t0 - make_interval(secs => $7::bigint), t0 - make_interval(secs => $7::bigint), "
        "CASE WHEN $8::bigint < 0 THEN NULL ELSE t0 - make_interval(secs => $8::bigint) END, "
        "CASE WHEN $8::bigint < 0 THEN NULL ELSE 'timeout' END, "
        "CASE WHEN $8::bigint < 0 THEN NULL ELSE 'network lost' END, "
        "CASE WHEN $9::bigint < 0 THEN NULL ELSE t0 - make_interval(secs => $9::bigint) END, "
        "CASE WHEN $10::bigint < 0 THEN NULL ELSE t0 - make_interval(secs => $10::bigint) END, "
        "CASE WHEN $11::int < 0 THEN NULL ELSE $11::smallint END FROM t RETURNING id",
        11, params);
}

/* n stale QR sessions <token>-bulk-<i> in workspace (instance i % 4). */
static void insert_stale_bulk(fixture *fx, int64_t workspace, int n)
{
    char ws[24], t0[24], count[24];
    snprintf(ws, sizeof ws, "%" PRId64, workspace);
    snprintf(t0, sizeof t0, "%" PRId64, fx->t0_ms);
    snprintf(count, sizeof count, "%d", n);
    const char *params[] = {ws, fx->token, t0, count};
    PQclear(query(fx,
                  "INSERT INTO whatsapp_accounts (workspace_id, session_id, status, "
                  "last_activity_at, created_at, assigned_instance_index) "
                  "SELECT $1::bigint, $2 || '-bulk-' || i, 'qr_scanning', "
                  "to_timestamp($3::bigint / 1000.0) - interval '2 hours', "
                  "to_timestamp($3::bigint / 1000.0) - interval '3 hours', i % 4 "
                  "FROM generate_series(0, $4::int - 1) i",
                  4, params));
}

/* Run the service with extra environment (NULL-terminated name/value pairs). */
static pid_t spawn_cleanup(fixture *fx, const char *const *env)
{
    static char bin[1024];
    snprintf(bin, sizeof bin, "%s/bin/blazz-cleanup", itest_env("BLAZZ_TEST_BIN_DIR"));
    const char *common[] = {"BLAZZ_KAFKA_TOPIC_PREFIX", fx->prefix,
                            "BLAZZ_CONSUMER_GROUP_ID", fx->group,
                            "BLAZZ_CLEANUP_CLOCK_FILE", fx->clock_path,
                            "BLAZZ_OUTBOX_IDLE_POLL_MS", "50",
                            "BLAZZ_CLEANUP_INSTANCE_COUNT", "4",
                            "BLAZZ_KAFKA_SESSION_TIMEOUT_MS", "6000",
                            NULL};
    for (const char *const *e = common; *e; e += 2)
        setenv(e[0], e[1], 1);
    for (const char *const *e = env; e && *e; e += 2)
        setenv(e[0], e[1], 1);
    char *argv[] = {bin, NULL};
    pid_t pid = itest_spawn(argv, fx->log_path);
    for (const char *const *e = common; *e; e += 2)
        unsetenv(e[0]);
    for (const char *const *e = env; e && *e; e += 2)
        unsetenv(e[0]);
    return pid;
}

static void run_once(fixture *fx, const char *const *extra)
{
    const char *env[24] = {"BLAZZ_CLEANUP_RUN_ONCE", "true"};
    size_t n = 2;
    for (const char *const *e = extra; e && *e && n < 22; e++)
        env[n++] = *e;
    env[n] = NULL;
    pid_t pid = spawn_cleanup(fx, env);
    int rc = itest_wait(pid);
    if (rc != 0)
        fail_msg("blazz-cleanup run_once exited %d; see %s", rc, fx->log_path);
}

static int64_t logs_in(fixture *fx, int64_t workspace)
{
    char ws[24];
    snprintf(ws, sizeof ws, "%" PRId64, workspace);
    const char *params[] = {ws};
    return query_int(fx, "SELECT count(*) FROM session_cleanup_logs WHERE workspace_id = $1::bigint",
                     1, params);
}

/* Every removed account of the workspace has exactly one log and every
 * log's account is removed; returns the number of removed accounts. */
static int64_t assert_one_log_per_removal(fixture *fx, int64_t workspace)
{
    char ws[24];
    snprintf(ws, sizeof ws, "%" PRId64, workspace);
    const char *params[] = {ws};
    assert_int_equal(query_int(fx,
                               "SELECT count(*) FROM whatsapp_accounts a WHERE workspace_id = $1::bigint "
                               "AND last_cleanup_at IS NOT NULL AND (SELECT count(*) FROM "
                               "session_cleanup_logs l WHERE l.whatsapp_account_id = a.id) <> 1",
                               1, params),
                     0);
    assert_int_equal(query_int(fx,
                               "SELECT count(*) FROM session_cleanup_logs l JOIN whatsapp_accounts a "
                               "ON a.id = l.whatsapp_account_id WHERE l.workspace_id = $1::bigint "
                               "AND a.deleted_at IS NULL",
                               1, params),
                     0);
    return query_int(fx,
                     "SELECT count(*) FROM whatsapp_accounts WHERE workspace_id = $1::bigint "
                     "AND last_cleanup_at IS NOT NULL",
                     1, params);
}

/* ---- topic reading ---------------------------------------------------------------- */

#define MAX_SEEN 6000

typedef struct seen_command {
    char session_id[96];
    char event_id[40];
    int copies;
    int index; /* -1 when no instance */
    int event_ids;
} seen_command;

typedef struct command_log {
    const char *token;
    seen_command *items;
    size_t n;
    int not_destroy;
    int key_mismatch;
} command_log;

static seen_command *find_command(command_log *log, const char *session_id)
{
    for (size_t i = 0; i < log->n; i++)
        if (strcmp(log->items[i].session_id, session_id) == 0)
            return &log->items[i];
    if (log->n == MAX_SEEN)
        fail_msg("more than %d commands", MAX_SEEN);
    seen_command *s = &log->items[log->n++];
    memset(s, 0, sizeof *s);
    snprintf(s->session_id, sizeof s->session_id, "%s", session_id);
    return s;
}

static void collect_command(void *arg, const rd_kafka_message_t *msg)
{
    command_log *log = arg;
    Blazz__V1__SessionCommand *cmd =
        blazz__v1__session_command__unpack(NULL, msg->len, msg->payload);
    assert_non_null(cmd);
    const Blazz__V1__Envelope *env = cmd->envelope;
    if (env && strncmp(env->session_id, log->token, strlen(log->token)) == 0) {
        const char *session = env->session_id;
        seen_command *s = find_command(log, session);
        if (s->copies++ == 0) {
            snprintf(s->event_id, sizeof s->event_id, "%s", env->event_id);
            s->event_ids = 1;
        } else if (strcmp(s->event_id, env->event_id) != 0) {
            s->event_ids++;
        }
        s->index = cmd->assigned_instance ? cmd->assigned_instance->index : -1;
        log->not_destroy += cmd->action != BLAZZ__V1__SESSION_ACTION__SESSION_ACTION_DESTROY;
        log->key_mismatch += msg->key_len != strlen(session) ||
                             memcmp(msg->key, session, msg->key_len) != 0;
    }
    blazz__v1__session_command__free_unpacked(cmd, NULL);
}

static void read_commands(fixture *fx, command_log *log)
{
    char topic[128];
    snprintf(topic, sizeof topic, "%swa.session.commands", fx->prefix);
    log->token = fx->token;
    log->items = calloc(MAX_SEEN, sizeof *log->items);
    assert_non_null(log->items);
    itest_consume_all(topic, collect_command, log);
    assert_int_equal(log->not_destroy, 0);
    assert_int_equal(log->key_mismatch, 0);
}

static const seen_command *command_for(command_log *log, fixture *fx, const char *name)
{
    char session[96];
    snprintf(session, sizeof session, "%s-%s", fx->token, name);
    for (size_t i = 0; i < log->n; i++)
        if (strcmp(log->items[i].session_id, session) == 0)
            return &log->items[i];
    return NULL;
}

typedef struct event_log {
    const char *token;
    int removed;
    int bad_log_id;
    PGconn *conn;
} event_log;

static void collect_event(void *arg, const rd_kafka_message_t *msg)
{
    event_log *log = arg;
    Blazz__V1__SessionEvent *ev = blazz__v1__session_event__unpack(NULL, msg->len, msg->payload);
    assert_non_null(ev);
    if (ev->envelope && strncmp(ev->envelope->session_id, log->token, strlen(log->token)) == 0) {
        assert_int_equal(ev->kind, BLAZZ__V1__SESSION_EVENT_KIND__SESSION_EVENT_KIND_REMOVED);
        assert_non_null(ev->removal);
        char sql[160];
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM session_cleanup_logs WHERE id = %" PRId64
                 " AND whatsapp_account_id = %" PRId64,
                 ev->removal->cleanup_log_id, ev->envelope->whatsapp_account_id);
        log->bad_log_id += itest_pg_int64(log->conn, sql) != 1;
        log->removed++;
    }
    blazz__v1__session_event__free_unpacked(ev, NULL);
}

/* ---- rules ------------------------------------------------------------------------ */

static void expect_removed(fixture *fx, const char *name, const char *reason,
                           const char *disconnect_reason)
{
    char session[96];
    snprintf(session, sizeof session, "%s-%s", fx->token, name);
    char t0[24];
    snprintf(t0, sizeof t0, "%" PRId64, fx->t0_ms);
    const char *params[] = {session, t0};
    char *row = query_text(
        fx,
        "SELECT a.status || '|' || (a.deleted_at = to_timestamp($2::bigint / 1000.0)) || '|' || "
        "(a.last_cleanup_at = a.deleted_at) || '|' || a.disconnect_reason || '|' || l.reason || "
        "'|' || l.cleanup_type || '|' || (l.executed_by IS NULL) || '|' || "
        "(l.session_id = a.session_id) "
        "FROM whatsapp_accounts a JOIN session_cleanup_logs l ON l.whatsapp_account_id = a.id "
        "WHERE a.session_id = $1",
        2, params);
    char want[160];
    snprintf(want, sizeof want, "disconnected|true|true|%s|%s|scheduled|true|true",
             disconnect_reason, reason);
    if (strcmp(row, want) != 0)
        fail_msg("%s: got '%s', want '%s'", name, row, want);
    free(row);
}

static void expect_kept(fixture *fx, const char *name, int already_deleted)
{
    char session[96];
    snprintf(session, sizeof session, "%s-%s", fx->token, name);
    const char *params[] = {session};
    char *row = query_text(fx,
                           "SELECT (deleted_at IS NULL) || '|' || (last_cleanup_at IS NULL) || '|' || "
                           "(SELECT count(*) FROM session_cleanup_logs l WHERE "
                           "l.whatsapp_account_id = a.id) FROM whatsapp_accounts a "
                           "WHERE session_id = $1",
                           1, params);
    const char *want = already_deleted ? "false|true|0" : "true|true|0";
    if (strcmp(row, want) != 0)
        fail_msg("%s should be untouched: got '%s', want '%s'", name, row, want);
    free(row);
}

static void test_rules_remove_exactly_the_right_sessions(void **state)
{
    (void)state;
    fixture fx;
    fixture_init(&fx, "rules");
    int64_t w1 = new_workspace(&fx), w2 = new_workspace(&fx);
    char phone1[48], phone2[48], phone3[48];
    snprintf(phone1, sizeof phone1, "+1%s", fx.token);
    snprintf(phone2, sizeof phone2, "+2%s", fx.token);
    snprintf(phone3, sizeof phone3, "+3%s", fx.token);
    const account_spec w1_rows[] = {
        {"qr-29m", NULL, "qr_scanning", 29 * MIN_S, 0, NUL, NUL, NUL, 1},
        {"qr-31m", NULL, "qr_scanning", 31 * MIN_S, 0, NUL, NUL, NUL, -1},
        {"qr-never-active", NULL, "qr_scanning", NUL, 2 * HOUR_S, NUL, NUL, NUL, 2},
        {"qr-new-never-active", NULL, "qr_scanning", NUL, 10 * MIN_S, NUL, NUL, NUL, 2},
        {"connected-idle", "+10000000001", "connected", 2 * DAY_S, 0, NUL, 3 * DAY_S, NUL, 0},
        {"dc-23h", "+10000000002", "disconnected", NUL, 0, 23 * HOUR_S, 2 * DAY_S, NUL, 3},
        {"dc-25h", "+10000000003", "disconnected", NUL, 0, 25 * HOUR_S, 2 * DAY_S, NUL, 3},
        {"deleted-qr", NULL, "qr_scanning", 2 * HOUR_S, 0, NUL, NUL, DAY_S, 1},
        {"deleted-dc", "+10000000004", "disconnected", NUL, 0, 3 * DAY_S, 4 * DAY_S, DAY_S, 1},
        /* phone1: two connected, the more recently connected stays; a
         * disconnected one that connected even later still goes */
        {"dup1-old", phone1, "connected", 0, 0, NUL, 5 * HOUR_S, NUL, 0},
        {"dup1-keeper", phone1, "connected", 0, 0, NUL, 1 * HOUR_S, NUL, 1},
        {"dup1-dc-recent", phone1, "disconnected", NUL, 0, 5 * MIN_S, 10 * MIN_S, NUL, 2},
        /* phone2: nobody connected: the most recently connected stays */
        {"dup2-old", phone2, "disconnected", NUL, 0, 2 * HOUR_S, 3 * HOUR_S, NUL, 0},
        {"dup2-keeper", phone2, "disconnected", NUL, 0, 1 * HOUR_S, 2 * HOUR_S, NUL, 0},
        /* phone3: the other row is deleted, so this one is no duplicate */
        {"dup3-live", phone3, "connected", 0, 0, NUL, 2 * HOUR_S, NUL, 0},
        {"dup3-deleted", phone3, "connected", 0, 0, NUL, 1 * HOUR_S, HOUR_S, 0},
    };
    for (size_t i = 0; i < sizeof w1_rows / sizeof w1_rows[0]; i++)
        insert_account(&fx, w1, &w1_rows[i]);
    /* the same phone in another workspace is no duplicate of workspace 1 */
    const account_spec other = {"w2-phone1", phone1, "connected", 0, 0, NUL, 9 * HOUR_S, NUL, 0};
    insert_account(&fx, w2, &other);

    run_once(&fx, NULL);

    expect_kept(&fx, "qr-29m", 0);
    expect_removed(&fx, "qr-31m", "stale_qr", "qr_expired");
    expect_removed(&fx, "qr-never-active", "stale_qr", "qr_expired");
    expect_kept(&fx, "qr-new-never-active", 0);
    expect_kept(&fx, "connected-idle", 0);
    expect_kept(&fx, "dc-23h", 0);
    expect_removed(&fx, "dc-25h", "disconnected_24h", "timeout");
    expect_kept(&fx, "deleted-qr", 1);
    expect_kept(&fx, "deleted-dc", 1);
    expect_removed(&fx, "dup1-old", "duplicate", "unknown");
    expect_kept(&fx, "dup1-keeper", 0);
    expect_removed(&fx, "dup1-dc-recent", "duplicate", "unknown");
    expect_removed(&fx, "dup2-old", "duplicate", "unknown");
    expect_kept(&fx, "dup2-keeper", 0);
    expect_kept(&fx, "dup3-live", 0);
    expect_kept(&fx, "w2-phone1", 0);
    assert_int_equal(logs_in(&fx, w1), 6);
    assert_int_equal(logs_in(&fx, w2), 0);
    assert_int_equal(assert_one_log_per_removal(&fx, w1), 6);

    /* disconnected_24h keeps when and why the session really disconnected */
    char session[96], t0[24];
    snprintf(session, sizeof session, "%s-dc-25h", fx.token);
    snprintf(t0, sizeof t0, "%" PRId64, fx.t0_ms);
    const char *params[] = {session, t0};
    assert_int_equal(query_int(&fx,
                               "SELECT count(*) FROM whatsapp_accounts WHERE session_id = $1 AND "
                               "disconnected_at = to_timestamp($2::bigint / 1000.0) - interval '25 hours' "
                               "AND disconnect_details LIKE '%network lost%'",
                               2, params),
                     1);

    /* the destroy commands, one per removal, for the right instance */
    command_log commands = {0};
    read_commands(&fx, &commands);
    assert_int_equal(commands.n, 6);
    const struct {
        const char *name;
        int index;
    } want[] = {{"qr-31m", (int)(w1 % 4)}, {"qr-never-active", 2}, {"dc-25h", 3},
                {"dup1-old", 0},           {"dup1-dc-recent", 2},   {"dup2-old", 0}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const seen_command *c = command_for(&commands, &fx, want[i].name);
        if (!c)
            fail_msg("no destroy command for %s", want[i].name);
        assert_int_equal(c->index, want[i].index);
        assert_int_equal(c->event_ids, 1);
    }
    free(commands.items);
    char topic[128];
    snprintf(topic, sizeof topic, "%ssession.events", fx.prefix);
    event_log events = {.token = fx.token, .conn = fx.conn};
    itest_consume_all(topic, collect_event, &events);
    assert_true(events.removed >= 6);
    assert_int_equal(events.bad_log_id, 0);

    /* a second sweep finds nothing more */
    run_once(&fx, NULL);
    assert_int_equal(logs_in(&fx, w1), 6);
    fixture_done(&fx);
}

/* ---- dry run and requests --------------------------------------------------------- */

static char *workspace_digest(fixture *fx, int64_t workspace)
{
    char ws[24];
    snprintf(ws, sizeof ws, "%" PRId64, workspace);
    const char *params[] = {ws};
    return query_text(fx,
                      "SELECT md5(string_agg(a::text, ',' ORDER BY id)) || ':' || "
                      "(SELECT count(*) FROM session_cleanup_logs WHERE workspace_id = $1::bigint) "
                      "FROM whatsapp_accounts a WHERE workspace_id = $1::bigint",
                      1, params);
}

/* Run blazzctl with args (NULL-terminated) and return its output (heap). */
static char *run_blazzctl(fixture *fx, const char *const *args)
{
    char bin[1024], out_path[300];
    snprintf(bin, sizeof bin, "%s/bin/blazzctl", itest_env("BLAZZ_TEST_BIN_DIR"));
    snprintf(out_path, sizeof out_path, "%s.blazzctl", fx->clock_path);
    unlink(out_path);
    char *argv[24] = {bin};
    size_t n = 1;
    for (const char *const *a = args; *a && n < 23; a++)
        argv[n++] = (char *)*a;
    argv[n] = NULL;
    setenv("BLAZZ_KAFKA_TOPIC_PREFIX", fx->prefix, 1);
    int rc = itest_wait(itest_spawn(argv, out_path));
    unsetenv("BLAZZ_KAFKA_TOPIC_PREFIX");
    FILE *f = fopen(out_path, "r");
    assert_non_null(f);
    size_t cap = 1 << 16;
    char *out = calloc(1, cap);
    assert_non_null(out);
    size_t len = fread(out, 1, cap - 1, f);
    out[len] = '\0';
    fclose(f);
    unlink(out_path);
    if (rc != 0)
        fail_msg("blazzctl %s failed (%d): %s", args[0], rc, out);
    return out;
}

static void wait_offsets(fixture *fx, int64_t want, pid_t service)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT coalesce(sum(next_offset), 0) FROM kafka_offsets WHERE group_id = '%s'",
             fx->group);
    for (int waited = 0; itest_pg_int64(fx->conn, sql) < want; waited += 50) {
        int status;
        if (waitpid(service, &status, WNOHANG) == service)
            fail_msg("blazz-cleanup exited (status %d); see %s", status, fx->log_path);
        if (waited > WAIT_LIMIT_MS)
            fail_msg("request %lld not applied; see %s", (long long)want, fx->log_path);
        itest_sleep_ms(50);
    }
}

static void produce_request(fixture *fx, const Blazz__V1__CleanupRequest *req)
{
    uint8_t buf[512];
    size_t len = blazz__v1__cleanup_request__pack(req, buf);
    char topic[128];
    snprintf(topic, sizeof topic, "%scleanup.requests", fx->prefix);
    bz_producer *p = itest_producer();
    bz_error err;
    if (bz_producer_send_sync(p, topic, "0", 1, buf, len, NULL, 0, 15000, &err) != BZ_OK)
        fail_msg("produce cleanup request: %s", err.msg);
    bz_producer_free(p, 1000);
}

static void test_dry_run_requests_and_moving_clock(void **state)
{
    (void)state;
    fixture fx;
    fixture_init(&fx, "requests");
    int64_t ws = new_workspace(&fx);
    char phone[48];
    snprintf(phone, sizeof phone, "+4%s", fx.token);
    const account_spec rows[] = {
        {"qr-10m", NULL, "qr_scanning", 10 * MIN_S, 0, NUL, NUL, NUL, 0},
        {"qr-45m", NULL, "qr_scanning", 45 * MIN_S, 0, NUL, NUL, NUL, 1},
        {"dc-30h", "+10000000005", "disconnected", NUL, 0, 30 * HOUR_S, 2 * DAY_S, NUL, 2},
        {"dup-old", phone, "connected", 0, 0, NUL, 5 * HOUR_S, NUL, 3},
        {"dup-new", phone, "connected", 0, 0, NUL, 1 * HOUR_S, NUL, 3},
        {"healthy", "+10000000006", "connected", 0, 0, NUL, HOUR_S, NUL, 0},
    };
    int64_t ids[6];
    for (size_t i = 0; i < 6; i++)
        ids[i] = insert_account(&fx, ws, &rows[i]);
    int64_t user = query_int(&fx,
                             "INSERT INTO users (email) VALUES ('itest-' || md5(random()::text) "
                             "|| '@example.com') RETURNING id",
                             0, NULL);

    /* blazzctl --dry-run: the report, and nothing changed */
    char *before = workspace_digest(&fx, ws);
    char wsarg[24], now[24];
    snprintf(wsarg, sizeof wsarg, "%" PRId64, ws);
    snprintf(now, sizeof now, "%" PRId64, fx.t0_ms);
    const char *dry[] = {"cleanup", "run", "--dry-run", "--workspace", wsarg, "--now-ms", now,
                         "--json", NULL};
    char *report = run_blazzctl(&fx, dry);
    assert_non_null(strstr(report, "\"total\": 3"));
    assert_non_null(strstr(report, "qr-45m"));
    assert_non_null(strstr(report, "dc-30h"));
    assert_non_null(strstr(report, "dup-old"));
    assert_null(strstr(report, "qr-10m"));
    assert_null(strstr(report, "dup-new"));
    free(report);
    char *after = workspace_digest(&fx, ws);
    assert_string_equal(before, after);
    free(after);

    const char *env[] = {"BLAZZ_CLEANUP_SWEEP_AT_START", "false", "BLAZZ_CLEANUP_INTERVAL_S",
                         "86400", NULL};
    pid_t service = spawn_cleanup(&fx, env);

    /* a dry-run request to the service changes nothing either */
    Blazz__V1__Envelope envelope = BLAZZ__V1__ENVELOPE__INIT;
    envelope.event_id = fx.token;
    Blazz__V1__CleanupRequest req = BLAZZ__V1__CLEANUP_REQUEST__INIT;
    req.envelope = &envelope;
    req.workspace_id = ws;
    req.dry_run = 1;
    req.requested_by = "itest";
    produce_request(&fx, &req);
    wait_offsets(&fx, 1, service);
    after = workspace_digest(&fx, ws);
    assert_string_equal(before, after);
    free(after);
    free(before);

    /* a manual removal of one account through blazzctl records its actor */
    char account[24], userarg[24];
    snprintf(account, sizeof account, "%" PRId64, ids[5]);
    snprintf(userarg, sizeof userarg, "%" PRId64, user);
    const char *manual[] = {"cleanup", "run", "--workspace", wsarg, "--rule", "session",
                            "--account", account, "--actor", "ops-alice", "--user", userarg,
                            "--reason", "customer left", NULL};
    free(run_blazzctl(&fx, manual));
    wait_offsets(&fx, 2, service);
    const char *p_acc[] = {account, userarg};
    assert_int_equal(query_int(&fx,
                               "SELECT count(*) FROM session_cleanup_logs WHERE "
                               "whatsapp_account_id = $1::bigint AND cleanup_type = 'manual' AND "
                               "reason = 'manual_request' AND executed_by = $2::bigint AND "
                               "details LIKE '%ops-alice%customer left%'",
                               2, p_acc),
                     1);
    assert_int_equal(logs_in(&fx, ws), 1);

    /* only the stale_qr rule, at T0 - 20 min: qr-45m has been idle for 25 min,
     * qr-10m has not even been created: nothing is stale yet */
    set_clock(&fx, fx.t0_ms - 20 * MIN_S * 1000);
    Blazz__V1__CleanupRule only_qr[] = {BLAZZ__V1__CLEANUP_RULE__CLEANUP_RULE_STALE_QR};
    req.dry_run = 0;
    req.n_rules = 1;
    req.rules = only_qr;
    produce_request(&fx, &req);
    wait_offsets(&fx, 3, service);
    assert_int_equal(logs_in(&fx, ws), 1);
    /* time passes: at T0 + 25 min qr-45m is 70 min idle and qr-10m 35 min */
    set_clock(&fx, fx.t0_ms + 25 * MIN_S * 1000);
    produce_request(&fx, &req);
    wait_offsets(&fx, 4, service);
    assert_int_equal(logs_in(&fx, ws), 3);
    char qr10[24];
    snprintf(qr10, sizeof qr10, "%" PRId64, ids[0]);
    const char *p_qr[] = {qr10};
    assert_int_equal(query_int(&fx,
                               "SELECT count(*) FROM session_cleanup_logs WHERE "
                               "whatsapp_account_id = $1::bigint AND cleanup_type = 'manual' AND "
                               "reason = 'stale_qr'",
                               1, p_qr),
                     1);
    kill(service, SIGTERM);
    assert_int_equal(itest_wait(service), 0);
    assert_int_equal(assert_one_log_per_removal(&fx, ws), 3);
    fixture_done(&fx);
}

/* ---- concurrency and crashes ------------------------------------------------------ */

static void race_two_instances(fixture *fx, const char *lock)
{
    const char *env[] = {"BLAZZ_CLEANUP_RUN_ONCE", "true", "BLAZZ_CLEANUP_BATCH_SIZE", "50",
                         "BLAZZ_CLEANUP_ADVISORY_LOCK", lock, NULL};
    pid_t a = spawn_cleanup(fx, env);
    pid_t b = spawn_cleanup(fx, env);
    int ra = itest_wait(a), rb = itest_wait(b);
    if (ra != 0 || rb != 0)
        fail_msg("instances exited %d and %d; see %s", ra, rb, fx->log_path);
}

static void test_two_instances_remove_each_session_once(void **state)
{
    (void)state;
    fixture fx;
    fixture_init(&fx, "two");
    int64_t unlocked = new_workspace(&fx), locked = new_workspace(&fx);
    insert_stale_bulk(&fx, unlocked, 1500);
    double t0 = (double)wall_ms();
    race_two_instances(&fx, "false");
    printf("two instances without the advisory lock: %.0f ms\n", (double)wall_ms() - t0);
    assert_int_equal(logs_in(&fx, unlocked), 1500);
    assert_int_equal(assert_one_log_per_removal(&fx, unlocked), 1500);

    /* new sessions under the same names would clash: use another token */
    snprintf(fx.token + strlen(fx.token), sizeof fx.token - strlen(fx.token), "b");
    insert_stale_bulk(&fx, locked, 1500);
    race_two_instances(&fx, "true");
    assert_int_equal(logs_in(&fx, locked), 1500);
    assert_int_equal(assert_one_log_per_removal(&fx, locked), 1500);
    fixture_done(&fx);
}

static void test_sigkill_mid_sweep_next_sweep_finishes(void **state)
{
    (void)state;
    fixture fx;
    fixture_init(&fx, "sigkill");
    int64_t ws = new_workspace(&fx);
    const int total = 4000;
    insert_stale_bulk(&fx, ws, total);
    const char *slow[] = {"BLAZZ_CLEANUP_RUN_ONCE", "true", "BLAZZ_CLEANUP_BATCH_SIZE", "25",
                          "BLAZZ_CLEANUP_BATCH_PAUSE_MS", "20", NULL};
    pid_t victim = spawn_cleanup(&fx, slow);
    for (int waited = 0; logs_in(&fx, ws) < total / 10; waited += 10) {
        if (waited > WAIT_LIMIT_MS)
            fail_msg("the sweep made no progress; see %s", fx.log_path);
        itest_sleep_ms(10);
    }
    char *backends = itest_pg_backends_of(fx.conn, victim);
    kill(victim, SIGKILL);
    assert_int_equal(itest_wait(victim), 128 + SIGKILL);
    /* a batch's COMMIT it had sent may land after the kill */
    itest_pg_wait_backends_gone(fx.conn, backends, 60);
    free(backends);
    int64_t after_kill = logs_in(&fx, ws);
    printf("SIGKILL after %lld of %d removals\n", (long long)after_kill, total);
    assert_true(after_kill < total);
    assert_int_equal(assert_one_log_per_removal(&fx, ws), after_kill);

    run_once(&fx, NULL);
    assert_int_equal(logs_in(&fx, ws), total);
    assert_int_equal(assert_one_log_per_removal(&fx, ws), total);

    command_log commands = {0};
    read_commands(&fx, &commands);
    assert_int_equal(commands.n, (size_t)total);
    for (size_t i = 0; i < commands.n; i++) {
        assert_int_equal(commands.items[i].event_ids, 1); /* a republish keeps its event id */
        long idx = strtol(strrchr(commands.items[i].session_id, '-') + 1, NULL, 10);
        assert_int_equal(commands.items[i].index, idx % 4);
    }
    free(commands.items);
    fixture_done(&fx);
}

static void test_sweep_failed_while_database_down_is_retried(void **state)
{
    (void)state;
    fixture fx;
    fixture_init(&fx, "pgdown");
    int64_t ws = new_workspace(&fx);
    insert_stale_bulk(&fx, ws, 20);
    itest_stack("stop-pg");
    const char *hourly[] = {"BLAZZ_CLEANUP_INTERVAL_S", "3600", "BLAZZ_CLEANUP_SWEEP_AT_START",
                            "true", NULL};
    pid_t service = spawn_cleanup(&fx, hourly);
    int failed = itest_file_contains_within(fx.log_path, "sweep failed", 0, WAIT_LIMIT_MS);
    itest_stack("start-pg");
    if (!failed) {
        kill(service, SIGTERM);
        itest_wait(service);
        fail_msg("the sweep at start did not fail with PostgreSQL down; see %s", fx.log_path);
    }
    PQreset(fx.conn);
    assert_int_equal(PQstatus(fx.conn), CONNECTION_OK);
    for (int waited = 0; logs_in(&fx, ws) < 20; waited += 50) {
        if (waited > WAIT_LIMIT_MS) {
            kill(service, SIGTERM);
            itest_wait(service);
            fail_msg("the failed sweep was not retried after PostgreSQL came back; see %s",
                     fx.log_path);
        }
        itest_sleep_ms(50);
    }
    assert_int_equal(assert_one_log_per_removal(&fx, ws), 20);
    kill(service, SIGTERM);
    assert_int_equal(itest_wait(service), 0);
    fixture_done(&fx);
}

/* ---- retention -------------------------------------------------------------------- */

static void test_retention_purges_old_delivered_rows_only(void **state)
{
    (void)state;
    fixture fx;
    fixture_init(&fx, "retention");
    int64_t ws = new_workspace(&fx);
    char wsarg[24], t0[24];
    snprintf(wsarg, sizeof wsarg, "%" PRId64, ws);
    snprintf(t0, sizeof t0, "%" PRId64, fx.t0_ms);
    const char *p_ws[] = {wsarg};
    int64_t endpoint = query_int(&fx,
                                 "INSERT INTO webhook_endpoints (workspace_id, url, secret_ciphertext, "
                                 "secret_nonce) VALUES ($1::bigint, 'https://example.com/hook', "
                                 "decode(repeat('ab', 32), 'hex'), decode(repeat('cd', 12), 'hex')) "
                                 "RETURNING id",
                                 1, p_ws);
    char ep[24];
    snprintf(ep, sizeof ep, "%" PRId64, endpoint);
    const char *p_rows[] = {wsarg, ep, t0};
    /* (status, age in days): only delivered rows older than 30 days go */
    PQclear(query(&fx,
                  "INSERT INTO webhook_retry_queue (event_id, endpoint_id, workspace_id, event_type, "
                  "payload, status, created_at, updated_at) "
                  "SELECT gen_random_uuid(), $2::bigint, $1::bigint, s || ':' || d, '\\x7b7d', s, "
                  "to_timestamp($3::bigint / 1000.0) - make_interval(days => d), "
                  "to_timestamp($3::bigint / 1000.0) - make_interval(days => d) "
                  "FROM (VALUES ('success', 31), ('success', 45), ('success', 29), "
                  "('failed', 60), ('pending', 60), ('retrying', 60)) v(s, d)",
                  3, p_rows));
    const char *p_t0[] = {t0};
    PQclear(query(&fx,
                  "INSERT INTO outbox (event_id, topic, payload, created_at) VALUES "
                  "(gen_random_uuid(), 'itest.stuck.old', '\\x00', "
                  "to_timestamp($1::bigint / 1000.0) - interval '100 hours'), "
                  "(gen_random_uuid(), 'itest.stuck.young', '\\x00', "
                  "to_timestamp($1::bigint / 1000.0) - interval '1 hour')",
                  1, p_t0));
    /* the relay stays off: it would try to publish the test's fake rows */
    const char *env[] = {"BLAZZ_OUTBOX_RELAY_ENABLED", "false", "BLAZZ_CLEANUP_OUTBOX_PURGE",
                         "true", "BLAZZ_CLEANUP_BATCH_SIZE", "2", NULL};
    run_once(&fx, env);
    char *left = query_text(&fx,
                            "SELECT string_agg(event_type, ',' ORDER BY event_type) FROM "
                            "webhook_retry_queue WHERE workspace_id = $1::bigint",
                            1, p_ws);
    assert_string_equal(left, "failed:60,pending:60,retrying:60,success:29");
    free(left);
    assert_int_equal(query_int(&fx, "SELECT count(*) FROM outbox WHERE topic = 'itest.stuck.old'",
                               0, NULL),
                     0);
    assert_int_equal(query_int(&fx, "SELECT count(*) FROM outbox WHERE topic = 'itest.stuck.young'",
                               0, NULL),
                     1);
    PQclear(query(&fx, "DELETE FROM outbox WHERE topic = 'itest.stuck.young'", 0, NULL));
    /* The table is shared with later tests: a webhook dispatcher started
     * there would try to deliver these rows. */
    PQclear(query(&fx, "DELETE FROM webhook_retry_queue WHERE workspace_id = $1::bigint", 1, p_ws));
    PQclear(query(&fx, "DELETE FROM webhook_endpoints WHERE workspace_id = $1::bigint", 1, p_ws));
    fixture_done(&fx);
}

/* Receipts parked for account (a number no real account has) at these
 * ages in days before T0. */
static void park_receipts(fixture *fx, int64_t account, const int *ages_days, size_t n)
{
    char acc[24], t0[24];
    snprintf(acc, sizeof acc, "%" PRId64, account);
    snprintf(t0, sizeof t0, "%" PRId64, fx->t0_ms);
    for (size_t i = 0; i < n; i++) {
        char age[16], wam[32];
        snprintf(age, sizeof age, "%d", ages_days[i]);
        snprintf(wam, sizeof wam, "wam-%zu", i);
        const char *params[] = {acc, wam, t0, age};
        PQclear(query(fx,
                      "INSERT INTO pending_receipts (whatsapp_account_id, wam_id, status, event_id, "
                      "command, created_at) VALUES ($1::bigint, $2, 'delivered', "
                      "gen_random_uuid()::text, '\\x00', to_timestamp($3::bigint / 1000.0) - "
                      "make_interval(days => $4::int))",
                      4, params));
    }
}

/* Campaign receipts waiting for their log, parked at these ages in days
 * before T0, their event ids starting with account's number. */
static void park_waiting_receipts(fixture *fx, int64_t account, const int *ages_days, size_t n)
{
    char t0[24];
    snprintf(t0, sizeof t0, "%" PRId64, fx->t0_ms);
    for (size_t i = 0; i < n; i++) {
        char age[16], event[48];
        snprintf(age, sizeof age, "%d", ages_days[i]);
        snprintf(event, sizeof event, "%" PRId64 "/wait-%zu", account, i);
        const char *params[] = {event, t0, age};
        PQclear(query(fx,
                      "INSERT INTO campaign_receipts_waiting (event_id, receipt, parked_at) "
                      "VALUES ($1, '\\x00', to_timestamp($2::bigint / 1000.0) - "
                      "make_interval(days => $3::int))",
                      3, params));
    }
}

/* Poll list (a sorted, comma-joined listing of the account's rows, heap)
 * until it reads want, then assert it does. */
static void wait_until_listed(fixture *fx, int64_t account,
                              char *(*list)(fixture *fx, int64_t account), const char *want)
{
    char *got = list(fx, account);
    for (int waited = 0; strcmp(got, want) != 0 && waited <= WAIT_LIMIT_MS; waited += 50) {
        itest_sleep_ms(50);
        free(got);
        got = list(fx, account);
    }
    assert_string_equal(got, want);
    free(got);
}

/* The event ids of the campaign receipts still waiting for account, in
 * order (heap; caller frees). */
static char *waiting_for(fixture *fx, int64_t account)
{
    char prefix[32];
    snprintf(prefix, sizeof prefix, "%" PRId64 "/%%", account);
    const char *params[] = {prefix};
    return query_text(fx,
                      "SELECT coalesce(string_agg(event_id, ',' ORDER BY event_id), '') FROM "
                      "campaign_receipts_waiting WHERE event_id LIKE $1",
                      1, params);
}

static int64_t parked_for(fixture *fx, int64_t account)
{
    char acc[24];
    snprintf(acc, sizeof acc, "%" PRId64, account);
    const char *params[] = {acc};
    return query_int(fx, "SELECT count(*) FROM pending_receipts WHERE whatsapp_account_id = $1::bigint",
                     1, params);
}

/* blazz-cleanup sweeping once at start (then hourly), 2 rows a batch so
 * that the purges loop, its /metrics on a free port (into *port). */
static pid_t spawn_retention_sweep(fixture *fx, int *port)
{
    *port = itest_free_port();
    char listen[32];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", *port);
    const char *env[] = {"BLAZZ_OUTBOX_RELAY_ENABLED", "false", "BLAZZ_CLEANUP_BATCH_SIZE", "2",
                         "BLAZZ_HTTP_LISTEN", listen, "BLAZZ_CLEANUP_SWEEP_AT_START", "true",
                         "BLAZZ_CLEANUP_INTERVAL_S", "3600", NULL};
    return spawn_cleanup(fx, env);
}

/* Until cleanup's /metrics counts want rows purged from table. The counter
 * moves once the last DELETE's answer is read, which may be after the test
 * saw its rows gone. */
static void purged_counted(fixture *fx, pid_t service, int port, const char *table, double want)
{
    char name[128];
    snprintf(name, sizeof name, "blazz_cleanup_rows_purged_total{table=\"%s\"}", table);
    double counted = itest_metric(port, name);
    for (int waited = 0; counted != want; waited += 50) {
        if (waited > WAIT_LIMIT_MS) {
            kill(service, SIGTERM);
            itest_wait(service);
            fail_msg("%s is %g in /metrics, want %g; see %s", name, counted, want, fx->log_path);
        }
        itest_sleep_ms(50);
        counted = itest_metric(port, name);
    }
}

static void test_retention_purges_receipts_parked_for_a_week(void **state)
{
    (void)state;
    fixture fx;
    fixture_init(&fx, "parked");
    /* A negative account id: no real account has one, so no other test's
     * rows are counted, and chat-sync would never apply these. */
    int64_t account = -(int64_t)(wall_ms() % 1000000000) - 1;
    const int ages[] = {8, 30, 8, 9, 400, 6, 1};
    park_receipts(&fx, account, ages, sizeof ages / sizeof ages[0]);
    park_waiting_receipts(&fx, account, ages, sizeof ages / sizeof ages[0]);
    int port;
    pid_t service = spawn_retention_sweep(&fx, &port);
    for (int waited = 0; parked_for(&fx, account) != 2; waited += 50) {
        int status;
        if (waitpid(service, &status, WNOHANG) == service)
            fail_msg("blazz-cleanup exited (status %d); see %s", status, fx.log_path);
        if (waited > WAIT_LIMIT_MS) {
            kill(service, SIGTERM);
            itest_wait(service);
            fail_msg("%lld receipts parked for account %lld, want the 2 younger than 7 days; "
                     "see %s",
                     (long long)parked_for(&fx, account), (long long)account, fx.log_path);
        }
        itest_sleep_ms(50);
    }
    char acc[24];
    snprintf(acc, sizeof acc, "%" PRId64, account);
    const char *p_acc[] = {acc};
    char *left = query_text(&fx,
                            "SELECT string_agg(wam_id, ',' ORDER BY wam_id) FROM pending_receipts "
                            "WHERE whatsapp_account_id = $1::bigint",
                            1, p_acc);
    assert_string_equal(left, "wam-5,wam-6");
    free(left);
    char want[96];
    snprintf(want, sizeof want, "%" PRId64 "/wait-5,%" PRId64 "/wait-6", account, account);
    wait_until_listed(&fx, account, waiting_for, want);
    purged_counted(&fx, service, port, "pending_receipts", 5);
    purged_counted(&fx, service, port, "campaign_receipts_waiting", 5);
    kill(service, SIGTERM);
    assert_int_equal(itest_wait(service), 0);
    PQclear(query(&fx, "DELETE FROM pending_receipts WHERE whatsapp_account_id = $1::bigint", 1,
                  p_acc));
    char prefix[32];
    snprintf(prefix, sizeof prefix, "%" PRId64 "/%%", account);
    const char *p_prefix[] = {prefix};
    PQclear(query(&fx, "DELETE FROM campaign_receipts_waiting WHERE event_id LIKE $1", 1, p_prefix));
    fixture_done(&fx);
}

/* Proofs of Meta sends of account (a number no real account has), proven
 * at these ages in days before T0, in meta_message_proofs (wamid new-AGE). */
static void prove_sends(fixture *fx, int64_t account, const int *ages_days, size_t n)
{
    char acc[24], t0[24];
    snprintf(acc, sizeof acc, "%" PRId64, account);
    snprintf(t0, sizeof t0, "%" PRId64, fx->t0_ms);
    for (size_t i = 0; i < n; i++) {
        char age[16];
        snprintf(age, sizeof age, "%d", ages_days[i]);
        const char *params[] = {acc, t0, age};
        PQclear(query(fx,
                      "INSERT INTO meta_message_proofs (client_reference, wam_id, "
                      "whatsapp_account_id, proven_at) VALUES (gen_random_uuid(), 'new-' || $3, "
                      "$1::bigint, to_timestamp($2::bigint / 1000.0) - make_interval(days => "
                      "$3::int))",
                      3, params));
    }
}

/* The wamids of account's proofs left, in order (heap; caller frees). */
static char *proofs_left(fixture *fx, int64_t account)
{
    char acc[24];
    snprintf(acc, sizeof acc, "%" PRId64, account);
    const char *params[] = {acc};
    return query_text(fx,
                      "SELECT coalesce(string_agg(wam_id, ',' ORDER BY wam_id), '') FROM "
                      "meta_message_proofs WHERE whatsapp_account_id = $1::bigint",
                      1, params);
}

static void test_retention_purges_meta_proofs(void **state)
{
    (void)state;
    fixture fx;
    fixture_init(&fx, "proofs");
    int64_t account = -(int64_t)(wall_ms() % 1000000000) - 1;
    const int ages[] = {31, 45, 29, 400, 1};
    prove_sends(&fx, account, ages, sizeof ages / sizeof ages[0]);
    int port;
    pid_t service = spawn_retention_sweep(&fx, &port);
    /* 30 days by default: what is younger, and only that */
    wait_until_listed(&fx, account, proofs_left, "new-1,new-29");
    purged_counted(&fx, service, port, "meta_message_proofs", 3);
    kill(service, SIGTERM);
    assert_int_equal(itest_wait(service), 0);
    char acc[24];
    snprintf(acc, sizeof acc, "%" PRId64, account);
    const char *p_acc[] = {acc};
    PQclear(query(&fx, "DELETE FROM meta_message_proofs WHERE whatsapp_account_id = $1::bigint",
                  1, p_acc));
    fixture_done(&fx);
}

/* An endpoint of ws whose replaced secret stops signing at T0 + until_s
 * (0071's columns as a rotation leaves them); its id. */
static int64_t endpoint_rotated(fixture *fx, int64_t ws, int until_s)
{
    char w[24], t0[24], until[16];
    snprintf(w, sizeof w, "%" PRId64, ws);
    snprintf(t0, sizeof t0, "%" PRId64, fx->t0_ms);
    snprintf(until, sizeof until, "%d", until_s);
    const char *params[] = {w, t0, until};
    return query_int(fx,
                     "INSERT INTO webhook_endpoints (workspace_id, url, secret_ciphertext, "
                     "secret_nonce, previous_secret_ciphertext, previous_secret_until) VALUES "
                     "($1::bigint, 'https://crm.example/hook', decode(repeat('a1', 48), 'hex'), "
                     "decode(repeat('b2', 12), 'hex'), decode(repeat('c3', 48), 'hex'), "
                     "to_timestamp($2::bigint / 1000.0) + make_interval(secs => $3::int)) "
                     "RETURNING id",
                     3, params);
}

static int64_t replaced_secret_kept(fixture *fx, int64_t endpoint)
{
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, endpoint);
    const char *params[] = {id};
    return query_int(fx,
                     "SELECT count(*) FROM webhook_endpoints WHERE id = $1::bigint AND "
                     "previous_secret_ciphertext IS NOT NULL AND previous_secret_until IS NOT NULL",
                     1, params);
}

/* A rotation's replaced secret is forgotten once its overlap ended (by
 * cleanup's clock), kept while it still signs; counted under
 * webhook_endpoints. Before 0074 it stayed sealed in the row until the
 * next rotation. */
static void test_retention_forgets_replaced_secrets_past_their_overlap(void **state)
{
    (void)state;
    fixture fx;
    fixture_init(&fx, "secrets");
    int64_t ws = new_workspace(&fx);
    int64_t ended = endpoint_rotated(&fx, ws, -60), signing = endpoint_rotated(&fx, ws, 3600);
    /* the sweep forgets every workspace's: an endpoint a program before
     * this one rotated counts too */
    char t0[24];
    snprintf(t0, sizeof t0, "%" PRId64, fx.t0_ms);
    const char *p_t0[] = {t0};
    int64_t due = query_int(&fx,
                            "SELECT count(*) FROM webhook_endpoints WHERE previous_secret_until < "
                            "to_timestamp($1::bigint / 1000.0)",
                            1, p_t0);
    int port;
    pid_t service = spawn_retention_sweep(&fx, &port);
    for (int waited = 0; replaced_secret_kept(&fx, ended) && waited <= WAIT_LIMIT_MS;
         waited += 50)
        itest_sleep_ms(50);
    assert_int_equal(replaced_secret_kept(&fx, ended), 0);
    assert_int_equal(replaced_secret_kept(&fx, signing), 1);
    purged_counted(&fx, service, port, "webhook_endpoints", (double)due);
    kill(service, SIGTERM);
    assert_int_equal(itest_wait(service), 0);
    char w[24];
    snprintf(w, sizeof w, "%" PRId64, ws);
    const char *p_ws[] = {w};
    PQclear(query(&fx, "DELETE FROM workspaces WHERE id = $1::bigint", 1, p_ws));
    fixture_done(&fx);
}

/* ---- media retention -------------------------------------------------------------- */

/* The local store at dir, opened as the services open it. */
static bz_media_store *open_media_store(const char *dir)
{
    static const bz_config_key keys[] = {BZ_MEDIA_STORE_CONFIG_KEYS};
    setenv("BLAZZ_MEDIA_LOCAL_DIR", dir, 1);
    bz_config *cfg = NULL;
    bz_media_store *store = NULL;
    bz_error err;
    if (bz_config_load(keys, sizeof keys / sizeof keys[0], NULL, &cfg, &err) != BZ_OK ||
        bz_media_store_open(cfg, &store, &err) != BZ_OK)
        fail_msg("open the media store at %s: %s", dir, err.msg);
    bz_config_free(cfg);
    unsetenv("BLAZZ_MEDIA_LOCAL_DIR");
    return store;
}

/* Store text as a plain-text document of workspace, as a service stores
 * it (row and object in one transaction, media_row.h), stored_at moved
 * age_days before T0; its row id, its key in *key. */
static int64_t store_document(fixture *fx, bz_media_store *store, int64_t workspace,
                              const char *text, int age_days, char key[96])
{
    bz_media_spool *spool = NULL;
    bz_media_object obj;
    bz_media_row row;
    bz_error err;
    PQclear(query(fx, "BEGIN", 0, NULL));
    if (bz_media_spool_begin(store, BZ_MEDIA_DOCUMENT, &spool, &err) != BZ_OK ||
        bz_media_spool_write(spool, text, strlen(text), &err) != BZ_OK ||
        bz_media_spool_finish(spool, workspace, "text/plain", &obj, &err) != BZ_OK ||
        bz_media_row_upsert(fx->conn, workspace, &obj, NULL, "local", "crm", &row, &err) != BZ_OK ||
        bz_media_spool_commit(spool, &obj, &err) != BZ_OK)
        fail_msg("store %s: %s", text, err.msg);
    bz_media_spool_free(spool);
    PQclear(query(fx, "COMMIT", 0, NULL));
    char id[24], t0[24], age[16];
    snprintf(id, sizeof id, "%" PRId64, row.id);
    snprintf(t0, sizeof t0, "%" PRId64, fx->t0_ms);
    snprintf(age, sizeof age, "%d", age_days);
    const char *params[] = {id, t0, age};
    PQclear(query(fx,
                  "UPDATE chat_media SET stored_at = to_timestamp($2::bigint / 1000.0) - "
                  "make_interval(days => $3::int) WHERE id = $1::bigint",
                  3, params));
    snprintf(key, 96, "%s", obj.key);
    return row.id;
}

static int object_exists(const char *dir, const char *key)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, key);
    return access(path, F_OK) == 0;
}

static void test_retention_purges_media_no_message_refers_to(void **state)
{
    (void)state;
    fixture fx;
    fixture_init(&fx, "media");
    int64_t ws = new_workspace(&fx);
    char dir[300];
    snprintf(dir, sizeof dir, "%s.media", fx.clock_path);
    bz_media_store *store = open_media_store(dir);
    char old_unused[96], old_used[96], young_unused[96];
    int64_t gone = store_document(&fx, store, ws, "old, no message", 31, old_unused);
    int64_t used = store_document(&fx, store, ws, "old, a message shows it", 45, old_used);
    int64_t young = store_document(&fx, store, ws, "a day old, no message yet", 1, young_unused);
    char wsarg[24], usedarg[24];
    snprintf(wsarg, sizeof wsarg, "%" PRId64, ws);
    snprintf(usedarg, sizeof usedarg, "%" PRId64, used);
    const char *p_chat[] = {wsarg, usedarg};
    PQclear(query(&fx,
                  "WITH c AS (INSERT INTO contacts (workspace_id, phone) VALUES ($1::bigint, "
                  "'+15550001111') RETURNING id) "
                  "INSERT INTO chats (workspace_id, contact_id, type, media_id) "
                  "SELECT $1::bigint, c.id, 'inbound', $2::bigint FROM c",
                  2, p_chat));

    const char *env[] = {"BLAZZ_OUTBOX_RELAY_ENABLED", "false", "BLAZZ_MEDIA_LOCAL_DIR", dir, NULL};
    run_once(&fx, env);

    const char *p_ws[] = {wsarg};
    char *left = query_text(&fx,
                            "SELECT string_agg(id::text, ',' ORDER BY id) FROM chat_media "
                            "WHERE workspace_id = $1::bigint",
                            1, p_ws);
    char expected[64];
    snprintf(expected, sizeof expected, "%" PRId64 ",%" PRId64, used, young);
    assert_string_equal(left, expected);
    free(left);
    assert_false(object_exists(dir, old_unused));
    assert_true(object_exists(dir, old_used));
    assert_true(object_exists(dir, young_unused));
    assert_true(itest_file_contains(fx.log_path, "chat_media=1"));

    /* The same bytes stored again after the purge: a new row, the object back. */
    char again[96];
    int64_t back = store_document(&fx, store, ws, "old, no message", 0, again);
    assert_true(back != gone);
    assert_string_equal(again, old_unused);
    assert_true(object_exists(dir, again));

    PQclear(query(&fx, "DELETE FROM chats WHERE workspace_id = $1::bigint", 1, p_ws));
    PQclear(query(&fx, "DELETE FROM chat_media WHERE workspace_id = $1::bigint", 1, p_ws));
    PQclear(query(&fx, "DELETE FROM contacts WHERE workspace_id = $1::bigint", 1, p_ws));
    bz_media_store_close(store);
    fixture_done(&fx);
}

int main(void)
{
    itest_env("BLAZZ_PG_DSN");
    itest_env("BLAZZ_KAFKA_BROKERS");
    itest_env("BLAZZ_TEST_BIN_DIR");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules_remove_exactly_the_right_sessions),
        cmocka_unit_test(test_dry_run_requests_and_moving_clock),
        cmocka_unit_test(test_two_instances_remove_each_session_once),
        cmocka_unit_test(test_sigkill_mid_sweep_next_sweep_finishes),
        cmocka_unit_test(test_sweep_failed_while_database_down_is_retried),
        cmocka_unit_test(test_retention_purges_old_delivered_rows_only),
        cmocka_unit_test(test_retention_forgets_replaced_secrets_past_their_overlap),
        cmocka_unit_test(test_retention_purges_receipts_parked_for_a_week),
        cmocka_unit_test(test_retention_purges_meta_proofs),
        cmocka_unit_test(test_retention_purges_media_no_message_refers_to),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
