/*
 * campaign_itest.c - see campaign_itest.h.
 */
#include "campaign_itest.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "blazz/v1/campaign.pb-c.h"
#include "core/clock.h"
#include "core/uuid.h"
#include "itest.h"

#define MAX_PARAMS 8

static int64_t exec_params(camp_fx *fx, const char *sql, int n, const char **values)
{
    PGresult *res = PQexecParams(fx->pg, sql, n, NULL, values, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fail_msg("SQL failed: %s\n%s", sql, PQresultErrorMessage(res));
    int64_t v = 0;
    if (st == PGRES_TUPLES_OK && PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
        v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return v;
}

static int collect_params(va_list ap, int n, const char **values)
{
    if (n > MAX_PARAMS)
        fail_msg("camp_sql: too many parameters");
    for (int i = 0; i < n; i++)
        values[i] = va_arg(ap, const char *);
    return n;
}

int64_t camp_sql(camp_fx *fx, const char *sql, int nparams, ...)
{
    const char *values[MAX_PARAMS];
    va_list ap;
    va_start(ap, nparams);
    collect_params(ap, nparams, values);
    va_end(ap);
    return exec_params(fx, sql, nparams, values);
}

void camp_fx_init(camp_fx *fx, const char *name)
{
    memset(fx, 0, sizeof *fx);
    char token[48];
    itest_unique(name, token, sizeof token);
    snprintf(fx->prefix, sizeof fx->prefix, "%s.", token);
    const char *state = getenv("BLAZZ_STATE_DIR");
    snprintf(fx->dir, sizeof fx->dir, "%s/campaign-tests", state ? state : "/tmp");
    mkdir(fx->dir, 0755);
    snprintf(fx->dir + strlen(fx->dir), sizeof fx->dir - strlen(fx->dir), "/%s", token);
    mkdir(fx->dir, 0755);
    snprintf(fx->record_path, sizeof fx->record_path, "%s/sends.txt", fx->dir);
    itest_topics_create(fx->prefix, ITEST_PARTITIONS);
    fx->pg = itest_pg_connect();
}

/* Stop pid with SIGTERM and wait; returns its exit code. */
static int terminate(pid_t pid)
{
    kill(pid, SIGTERM);
    return itest_wait(pid);
}

void camp_fx_finish(camp_fx *fx)
{
    /* Let the relay publish what the test left in the outbox, without
     * failing here: every process must be stopped whatever happens. */
    for (int i = 0; fx->pg && i < 300; i++) {
        PGresult *res = PQexec(fx->pg, "SELECT count(*) FROM outbox");
        int empty =
            PQresultStatus(res) == PGRES_TUPLES_OK && strcmp(PQgetvalue(res, 0, 0), "0") == 0;
        PQclear(res);
        if (empty)
            break;
        itest_sleep_ms(100);
    }
    int bad = 0;
    for (int i = 0; i < CAMP_MAX_SENDERS; i++)
        if (fx->senders[i] > 0) {
            bad |= terminate(fx->senders[i]) != 0;
            fx->senders[i] = 0;
        }
    if (fx->gateway > 0) {
        bad |= terminate(fx->gateway) != 0;
        fx->gateway = 0;
    }
    if (fx->pg)
        PQfinish(fx->pg);
    fx->pg = NULL;
    if (bad)
        fail_msg("a campaign test process did not exit cleanly (see %s)", fx->dir);
}

int64_t camp_workspace(camp_fx *fx)
{
    return camp_sql(fx,
                    "INSERT INTO workspaces (name, metadata) VALUES ($1, "
                    "'{\"rate_limits\": {\"per_second\": 0}}') RETURNING id",
                    1, fx->prefix);
}

int64_t camp_account(camp_fx *fx, int64_t workspace, const char *session, int primary,
                     int health, const char *rate_limits_json)
{
    char ws[24], hs[24], full_session[128];
    snprintf(ws, sizeof ws, "%lld", (long long)workspace);
    snprintf(hs, sizeof hs, "%d", health);
    snprintf(full_session, sizeof full_session, "%s%s", session, fx->prefix);
    return camp_sql(fx,
                    "INSERT INTO whatsapp_accounts (workspace_id, session_id, phone_number, status, "
                    "is_primary, health_score, metadata, gateway_id, created_at) VALUES ($1, $2, "
                    "'+15550000000', 'connected', $3::boolean, $4::smallint, "
                    "jsonb_build_object('rate_limits', $5::jsonb), 'sim', now() - interval "
                    "'1 year') RETURNING id",
                    5, ws, full_session, primary ? "true" : "false", hs, rate_limits_json);
}

int64_t camp_audience(camp_fx *fx, int64_t workspace, int n, int tag)
{
    char ws[24], count[24], tagtext[24];
    snprintf(ws, sizeof ws, "%lld", (long long)workspace);
    snprintf(count, sizeof count, "%d", n);
    snprintf(tagtext, sizeof tagtext, "%03d", tag % 1000);
    int64_t group = camp_sql(fx,
                             "INSERT INTO contact_groups (workspace_id, name) VALUES ($1, 'test "
                             "audience') RETURNING id",
                             1, ws);
    char gs[24];
    snprintf(gs, sizeof gs, "%lld", (long long)group);
    camp_sql(fx,
             "WITH c AS (INSERT INTO contacts (workspace_id, first_name, last_name, phone) "
             "SELECT $1, 'First' || i, 'Last' || i, '+1' || $3 || lpad(i::text, 7, '0') "
             "FROM generate_series(1, $2::int) i RETURNING id) "
             "INSERT INTO contact_group_members (workspace_id, contact_group_id, contact_id) "
             "SELECT $1, $4, id FROM c",
             4, ws, count, tagtext, gs);
    return group;
}

int64_t camp_campaign(camp_fx *fx, int64_t workspace, int64_t group, int64_t account,
                      const char *body, const char *status, const char *metadata_json)
{
    char ws[24], gs[24], as[24];
    snprintf(ws, sizeof ws, "%lld", (long long)workspace);
    snprintf(gs, sizeof gs, "%lld", (long long)group);
    snprintf(as, sizeof as, "%lld", (long long)account);
    return camp_sql(fx,
                    "INSERT INTO campaigns (workspace_id, whatsapp_account_id, name, campaign_type, "
                    "contact_group_id, message_content, status, scheduled_at, metadata) "
                    "VALUES ($1, nullif($3::bigint, 0), 'test campaign', 'instant', $2, $4, $5, "
                    "CASE WHEN $5 = 'scheduled' THEN now() + interval '1 second' END, "
                    "coalesce($6::jsonb, '{}'::jsonb)) RETURNING id",
                    6, ws, gs, as, body, status, metadata_json);
}

pid_t camp_spawn(camp_fx *fx, const char *log_name, char *const argv[], const char *const *env)
{
    char log_path[700];
    snprintf(log_path, sizeof log_path, "%s/%s", fx->dir, log_name);
    return itest_spawn_env(argv, env, log_path);
}

void camp_start_sender(camp_fx *fx, int slot, const char *const *extra_env)
{
    char bin[1024], log_path[700], group[96], prefix_env[128], group_env[128], lock_env[128];
    snprintf(bin, sizeof bin, "%s/bin/blazz-campaign-sender", itest_env("BLAZZ_TEST_BIN_DIR"));
    snprintf(log_path, sizeof log_path, "%s/sender-%d.log", fx->dir, slot);
    snprintf(group, sizeof group, "blazz-campaign-sender-%s", fx->prefix);
    snprintf(prefix_env, sizeof prefix_env, "BLAZZ_KAFKA_TOPIC_PREFIX=%s", fx->prefix);
    snprintf(group_env, sizeof group_env, "BLAZZ_CONSUMER_GROUP_ID=%s", group);
    snprintf(lock_env, sizeof lock_env, "BLAZZ_SENDER_LOCK_NAME=%s", fx->prefix);
    const char *env[64] = {prefix_env,
                           group_env,
                           lock_env,
                           "BLAZZ_KAFKA_SESSION_TIMEOUT_MS=6000",
                           "BLAZZ_OUTBOX_IDLE_POLL_MS=100",
                           "BLAZZ_SENDER_REFRESH_MS=200",
                           "BLAZZ_SCHEDULER_INTERVAL_MS=200",
                           "BLAZZ_EVENTS_PROGRESS_INTERVAL_MS=1000",
                           "BLAZZ_RATE_ACCOUNT_MAX_PER_SECOND=0",
                           "BLAZZ_RATE_WORKSPACE_PER_SECOND=0",
                           NULL};
    size_t n = 0;
    while (env[n])
        n++;
    for (size_t i = 0; extra_env && extra_env[i] && n < 63; i++)
        env[n++] = extra_env[i];
    env[n] = NULL;
    char *argv[] = {bin, NULL};
    fx->senders[slot] = itest_spawn_env(argv, env, log_path);
    fx->sender_starts++;
}

void camp_stop_sender(camp_fx *fx, int slot)
{
    if (fx->senders[slot] <= 0)
        return;
    kill(fx->senders[slot], SIGTERM);
    int rc = itest_wait(fx->senders[slot]);
    fx->senders[slot] = 0;
    if (rc != 0)
        fail_msg("campaign sender %d exited with %d (see %s)", slot, rc, fx->dir);
}

void camp_kill_sender(camp_fx *fx, int slot)
{
    if (fx->senders[slot] <= 0)
        return;
    kill(fx->senders[slot], SIGKILL);
    itest_wait(fx->senders[slot]);
    fx->senders[slot] = 0;
}

void camp_start_test_gateway(camp_fx *fx, const char *const *args)
{
    char log_path[700], group[96];
    snprintf(log_path, sizeof log_path, "%s/test-gateway.log", fx->dir);
    snprintf(group, sizeof group, "%stestgw", fx->prefix);
    char *argv[32] = {(char *)itest_program("campaign_test_gateway"), fx->prefix, group,
                      fx->record_path};
    size_t n = 4;
    for (size_t i = 0; args && args[i] && n < 31; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    fx->gateway = itest_spawn(argv, log_path);
}

void camp_stop_test_gateway(camp_fx *fx)
{
    if (fx->gateway <= 0)
        return;
    kill(fx->gateway, SIGTERM);
    int rc = itest_wait(fx->gateway);
    fx->gateway = 0;
    if (rc != 0)
        fail_msg("test gateway exited with %d (see %s)", rc, fx->dir);
}

/* 1 when status's "held" names reason (and detail_name = detail). */
static int held_for(json_t *status, const char *reason, const char *detail_name,
                    const char *detail)
{
    json_t *held = json_object_get(status, "held");
    const char *why = json_string_value(json_object_get(held, "reason"));
    const char *value = detail_name ? json_string_value(json_object_get(held, detail_name)) : "";
    return why && strcmp(why, reason) == 0 && value && (!detail || strcmp(value, detail) == 0);
}

json_t *camp_status_json(camp_fx *fx, int64_t campaign)
{
    char id[24], err_log[700];
    snprintf(id, sizeof id, "%lld", (long long)campaign);
    snprintf(err_log, sizeof err_log, "%s/blazzctl-status.log", fx->dir);
    const char *args[] = {"campaign", "status", id, "--json", NULL};
    return itest_blazzctl_json(args, err_log);
}

int camp_wait_held(camp_fx *fx, int64_t campaign, const char *reason, const char *detail_name,
                   const char *detail, int timeout_s)
{
    int64_t deadline = bz_monotonic_ms() + timeout_s * 1000LL;
    for (;;) {
        json_t *out = camp_status_json(fx, campaign);
        int shown = held_for(out, reason, detail_name, detail);
        int done = strcmp(json_string_value(json_object_get(out, "status")), "completed") == 0;
        json_decref(out);
        if (shown || done || bz_monotonic_ms() > deadline)
            return shown;
        itest_sleep_ms(100);
    }
}

int camp_blazzctl(camp_fx *fx, const char *const *args, const char *out_path)
{
    char bin[1024], prefix_env[128];
    snprintf(bin, sizeof bin, "%s/bin/blazzctl", itest_env("BLAZZ_TEST_BIN_DIR"));
    snprintf(prefix_env, sizeof prefix_env, "BLAZZ_KAFKA_TOPIC_PREFIX=%s", fx->prefix);
    char *argv[32] = {bin};
    size_t n = 1;
    for (size_t i = 0; args[i] && n < 31; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    const char *env[] = {prefix_env, NULL};
    return itest_wait(itest_spawn_env(argv, env, out_path));
}

static Blazz__V1__CampaignAction action_named(const char *action)
{
    if (strcmp(action, "start") == 0)
        return BLAZZ__V1__CAMPAIGN_ACTION__CAMPAIGN_ACTION_START;
    if (strcmp(action, "pause") == 0)
        return BLAZZ__V1__CAMPAIGN_ACTION__CAMPAIGN_ACTION_PAUSE;
    if (strcmp(action, "resume") == 0)
        return BLAZZ__V1__CAMPAIGN_ACTION__CAMPAIGN_ACTION_RESUME;
    if (strcmp(action, "cancel") == 0)
        return BLAZZ__V1__CAMPAIGN_ACTION__CAMPAIGN_ACTION_CANCEL;
    fail_msg("unknown action %s", action);
    return BLAZZ__V1__CAMPAIGN_ACTION__CAMPAIGN_ACTION_UNSPECIFIED;
}

/* A test's envelope for workspace, with a fresh event id (into event_id). */
static Blazz__V1__Envelope test_envelope(int64_t workspace, char *event_id)
{
    bz_error err;
    assert_int_equal(bz_uuid_v4(event_id, &err), BZ_OK);
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    env.event_id = event_id;
    env.occurred_at_ms = env.produced_at_ms = bz_wall_ms();
    env.source = "test";
    env.workspace_id = workspace;
    return env;
}

/* len bytes to <prefix><topic>, keyed by the campaign id. */
static void produce_for_campaign(camp_fx *fx, const char *topic, int64_t campaign,
                                 const uint8_t *buf, size_t len, const char *what)
{
    char key[24], name[256];
    bz_error err;
    snprintf(key, sizeof key, "%lld", (long long)campaign);
    snprintf(name, sizeof name, "%s%s", fx->prefix, topic);
    bz_producer *p = itest_producer();
    if (bz_producer_send_sync(p, name, key, strlen(key), buf, len, NULL, 0, 10000, &err) != BZ_OK)
        fail_msg("produce %s: %s", what, err.msg);
    bz_producer_free(p, 5000);
}

void camp_command(camp_fx *fx, int64_t workspace, int64_t campaign, const char *action,
                  const char *actor)
{
    char event_id[BZ_UUID_STR_SIZE];
    Blazz__V1__Envelope env = test_envelope(workspace, event_id);
    Blazz__V1__CampaignCommand cmd = BLAZZ__V1__CAMPAIGN_COMMAND__INIT;
    cmd.envelope = &env;
    cmd.campaign_id = campaign;
    cmd.action = action_named(action);
    cmd.actor = (char *)actor;
    uint8_t buf[512];
    size_t len = blazz__v1__campaign_command__pack(&cmd, buf);
    produce_for_campaign(fx, "campaign.commands", campaign, buf, len, action);
}

void camp_receipt(camp_fx *fx, int64_t workspace, int64_t campaign, int64_t contact,
                  const char *log_uuid, Blazz__V1__DeliveryStatus status, const char *wam_id)
{
    char event_id[BZ_UUID_STR_SIZE];
    Blazz__V1__Envelope env = test_envelope(workspace, event_id);
    Blazz__V1__MessageAck ack = BLAZZ__V1__MESSAGE_ACK__INIT;
    ack.wam_id = (char *)wam_id;
    ack.status = status;
    ack.timestamp_ms = env.occurred_at_ms;
    ack.client_reference = (char *)log_uuid;
    Blazz__V1__CampaignReceipt rc = BLAZZ__V1__CAMPAIGN_RECEIPT__INIT;
    rc.envelope = &env;
    rc.campaign_id = campaign;
    rc.campaign_log_uuid = (char *)log_uuid;
    rc.contact_id = contact;
    rc.ack = &ack;
    uint8_t buf[512];
    size_t len = blazz__v1__campaign_receipt__pack(&rc, buf);
    produce_for_campaign(fx, "campaign.receipts", campaign, buf, len, "receipt");
}

static int64_t query_value(camp_fx *fx, const char *sql, int n, const char **values)
{
    return exec_params(fx, sql, n, values);
}

void camp_wait_value(camp_fx *fx, const char *what, int64_t want, int timeout_s,
                     const char *sql, int nparams, ...)
{
    const char *values[MAX_PARAMS];
    va_list ap;
    va_start(ap, nparams);
    collect_params(ap, nparams, values);
    va_end(ap);
    int64_t deadline = bz_monotonic_ms() + (int64_t)timeout_s * 1000, v = 0;
    while (bz_monotonic_ms() < deadline) {
        if ((v = query_value(fx, sql, nparams, values)) == want)
            return;
        itest_sleep_ms(50);
    }
    fail_msg("timed out after %d s waiting for %s: have %lld, want %lld (logs in %s)", timeout_s,
             what, (long long)v, (long long)want, fx->dir);
}

int64_t camp_wait_at_least(camp_fx *fx, const char *what, int64_t min, int timeout_s,
                           const char *sql, int nparams, ...)
{
    const char *values[MAX_PARAMS];
    va_list ap;
    va_start(ap, nparams);
    collect_params(ap, nparams, values);
    va_end(ap);
    int64_t deadline = bz_monotonic_ms() + (int64_t)timeout_s * 1000, v = 0;
    while (bz_monotonic_ms() < deadline) {
        if ((v = query_value(fx, sql, nparams, values)) >= min)
            return v;
        itest_sleep_ms(20);
    }
    fail_msg("timed out after %d s waiting for %s: have %lld, want at least %lld (logs in %s)",
             timeout_s, what, (long long)v, (long long)min, fx->dir);
    return v;
}

void camp_wait_status(camp_fx *fx, int64_t campaign, const char *status, int timeout_s)
{
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)campaign);
    char what[128];
    snprintf(what, sizeof what, "campaign %s to be %s", id, status);
    camp_wait_value(fx, what, 1, timeout_s,
                    "SELECT count(*) FROM campaigns WHERE id = $1 AND status = $2", 2, id, status);
}

void camp_wait_outbox_empty(camp_fx *fx, int timeout_s)
{
    camp_wait_value(fx, "the outbox to drain", 0, timeout_s, "SELECT count(*) FROM outbox", 0);
}

void camp_assert_counters_exact(camp_fx *fx, int64_t campaign)
{
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)campaign);
    int64_t mismatches = camp_sql(
        fx,
        "SELECT (c.messages_sent <> l.sent)::int + (c.messages_delivered <> l.delivered)::int + "
        "(c.messages_read <> l.rd)::int + (c.messages_failed <> l.failed)::int + "
        "(c.messages_skipped <> l.skipped)::int "
        "FROM campaigns c, (SELECT count(*) FILTER (WHERE status IN ('sent','delivered','read')) sent, "
        "count(*) FILTER (WHERE status IN ('delivered','read')) delivered, "
        "count(*) FILTER (WHERE status = 'read') rd, count(*) FILTER (WHERE status = 'failed') failed, "
        "count(*) FILTER (WHERE status = 'skipped') skipped "
        "FROM campaign_logs WHERE campaign_id = $1) l WHERE c.id = $1",
        1, id);
    assert_int_equal(mismatches, 0);
}

camp_send *camp_read_sends(camp_fx *fx, int64_t campaign, size_t *n)
{
    FILE *f = fopen(fx->record_path, "r");
    size_t cap = 1024, count = 0;
    camp_send *out = malloc(cap * sizeof *out);
    assert_non_null(out);
    char line[1024];
    while (f && fgets(line, sizeof line, f)) {
        camp_send s;
        long long ms, released, contact, camp, log;
        memset(&s, 0, sizeof s);
        /* Lines come from campaign_test_gateway; one that does not scan is
         * skipped by the field count, so sscanf's silence on overflow is moot. */
        // NOLINTNEXTLINE(cert-err34-c)
        if (sscanf(line, "%lld %lld %63s %63s %lld %lld %lld %255[^\n]", &ms, &released,
                   s.session, s.key, &contact, &camp, &log, s.body) < 7)
            continue;
        s.ms = ms;
        s.released_ms = released;
        s.contact_id = contact;
        s.campaign_id = camp;
        s.log_id = log;
        if (campaign && s.campaign_id != campaign)
            continue;
        if (count == cap) {
            cap *= 2;
            out = realloc(out, cap * sizeof *out);
            assert_non_null(out);
        }
        out[count++] = s;
    }
    if (f)
        fclose(f);
    *n = count;
    return out;
}

typedef struct event_filter {
    int64_t campaign;
    int kind;
    const char *reason_has;
    int count;
    char *reason;
    size_t cap;
} event_filter;

static void count_event(void *arg, const rd_kafka_message_t *msg)
{
    event_filter *f = arg;
    Blazz__V1__CampaignEvent *ev = blazz__v1__campaign_event__unpack(NULL, msg->len, msg->payload);
    if (!ev)
        return;
    if (ev->campaign_id == f->campaign && (int)ev->kind == f->kind &&
        (!f->reason_has || (ev->reason && strstr(ev->reason, f->reason_has)))) {
        f->count++;
        if (f->reason)
            snprintf(f->reason, f->cap, "%s", ev->reason ? ev->reason : "");
    }
    blazz__v1__campaign_event__free_unpacked(ev, NULL);
}

int camp_count_events(camp_fx *fx, int64_t campaign, int kind, const char *reason_has,
                      char *reason_out, size_t cap)
{
    char topic[256];
    snprintf(topic, sizeof topic, "%scampaign.events", fx->prefix);
    event_filter f = {campaign, kind, reason_has, 0, reason_out, cap};
    itest_consume_all(topic, count_event, &f);
    return f.count;
}

static int compare_send(const void *a, const void *b)
{
    const camp_send *x = a, *y = b;
    if (x->contact_id != y->contact_id)
        return x->contact_id < y->contact_id ? -1 : 1;
    return strcmp(x->key, y->key);
}

void camp_assert_one_key_per_contact(const camp_send *sends, size_t n, size_t *keys,
                                     size_t *contacts, size_t *duplicates)
{
    camp_send *sorted = malloc((n ? n : 1) * sizeof *sorted);
    assert_non_null(sorted);
    memcpy(sorted, sends, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, compare_send);
    *keys = *contacts = *duplicates = 0;
    for (size_t i = 0; i < n; i++) {
        int same_contact = i > 0 && sorted[i].contact_id == sorted[i - 1].contact_id;
        int same_key = same_contact && strcmp(sorted[i].key, sorted[i - 1].key) == 0;
        if (same_contact && !same_key)
            fail_msg("contact %lld got two idempotency keys: %s and %s",
                     (long long)sorted[i].contact_id, sorted[i - 1].key, sorted[i].key);
        *contacts += !same_contact;
        *keys += !same_key;
        *duplicates += same_key;
    }
    free(sorted);
}
