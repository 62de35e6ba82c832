/*
 * test_sessions_failover.c - a gateway instance dies and its sessions move
 * (ARCHITECTURE.md §15), at the size the seeds name: 3 instances of
 * capacity 150 serve 300 sessions of 6 workspaces, created through the CRM
 * API and connected; customers write all the while. One instance is
 * SIGKILLed. With the default sessions.instance_timeout (30 s) every
 * session it served must be assigned to the two live ones (neither over
 * capacity), restarted there once (one RESTART command, one start in the
 * new instance's served log: resumed from the shared storage), counted
 * (instance_migration_count 1, previous_instance_index), announced once
 * (one INSTANCE_MIGRATED session event); the others untouched; every
 * customer message a broker acknowledged stored once; no session served by
 * two instances at once. The time from the kill to the last session moved
 * is printed (the goal: within 45 s).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "blazz/v1/session.pb-c.h"
#include "core/clock.h"
#include "itest.h"
#include "kafka/topics.h"
#include "session_itest.h"

#define WORKSPACES 6
#define PER_WORKSPACE 50
#define SESSIONS (WORKSPACES * PER_WORKSPACE)
#define CAPACITY 150
#define VICTIM 0

static sess_fx *fx;

#define sess_int(...) itest_pg_int64f(fx->a.camp.pg, __VA_ARGS__)

/* ---- what the topics carried ------------------------------------------------------------ */

typedef struct per_session {
    char (*ids)[128];
    int *count;
    size_t n;
    int kind; /* the SessionEventKind or SessionAction counted */
} per_session;

static int *count_of(per_session *p, const char *session)
{
    for (size_t i = 0; session && i < p->n; i++)
        if (strcmp(p->ids[i], session) == 0)
            return &p->count[i];
    return NULL;
}

static void count_restart(void *ctx, const rd_kafka_message_t *m)
{
    per_session *p = ctx;
    Blazz__V1__SessionCommand *c =
        blazz__v1__session_command__unpack(NULL, m->len, (const uint8_t *)m->payload);
    if (!c)
        return;
    int *n = c->envelope ? count_of(p, c->envelope->session_id) : NULL;
    if (n && (int)c->action == p->kind)
        (*n)++;
    blazz__v1__session_command__free_unpacked(c, NULL);
}

static void count_event(void *ctx, const rd_kafka_message_t *m)
{
    per_session *p = ctx;
    Blazz__V1__SessionEvent *e =
        blazz__v1__session_event__unpack(NULL, m->len, (const uint8_t *)m->payload);
    if (!e)
        return;
    int *n = e->envelope ? count_of(p, e->envelope->session_id) : NULL;
    if (n && (int)e->kind == p->kind)
        (*n)++;
    blazz__v1__session_event__free_unpacked(e, NULL);
}

/* Every moved session appears exactly once in what topic carried. */
static void assert_once_each(const char *base, int gateway_topic, itest_record_fn fn, int kind,
                             char (*ids)[128], size_t n, const char *what)
{
    char topic[BZ_TOPIC_NAME_MAX];
    if (gateway_topic)
        assert_int_equal(bz_topic_gateway_name(fx->a.wh.prefix, BZ_GATEWAY_TOPIC_COMMANDS, "sim",
                                               topic, sizeof topic, NULL),
                         BZ_OK);
    else
        assert_int_equal(bz_topic_name(fx->a.wh.prefix, base, topic, sizeof topic), BZ_OK);
    per_session p = {ids, calloc(n, sizeof(int)), n, kind};
    assert_non_null(p.count);
    itest_consume_all(topic, fn, &p);
    for (size_t i = 0; i < n; i++)
        if (p.count[i] != 1) {
            int got = p.count[i];
            free(p.count);
            fail_msg("session %s: %d %s, want 1", ids[i], got, what);
        }
    free(p.count);
}

/* ---- the test ------------------------------------------------------------------------------ */

static void an_instance_killed_loses_its_sessions_to_the_live_ones(void **state)
{
    (void)state;
    sess_fx_init(fx, "fail");
    int64_t ws[WORKSPACES];
    char *keys[WORKSPACES];
    ws[0] = fx->a.wh.workspace_id;
    for (int w = 1; w < WORKSPACES; w++)
        ws[w] = camp_workspace(&fx->a.camp);
    for (int w = 0; w < WORKSPACES; w++)
        keys[w] = agent_api_key(&fx->a, ws[w]);
    sess_start_chat_sync(fx, 30);
    agent_start_ingest(&fx->a, NULL);
    sess_run *run[3];
    for (int i = 0; i < 3; i++) {
        sess_instance how = {.index = i, .capacity = CAPACITY, .heartbeat_ms = 2000,
                             .lease_ms = 20000, .scan_after_ms = 1, .rate = 30};
        run[i] = sess_start_instance(fx, &how);
    }
    for (int w = 0; w < WORKSPACES; w++)
        for (int k = 0; k < PER_WORKSPACE; k++) {
            char name[32], id[128], resp[512];
            snprintf(name, sizeof name, "w%dk%02d.", w, k);
            long status = sess_create(fx, keys[w], name, id, resp, sizeof resp);
            if (status != 202)
                fail_msg("POST /v1/sessions answered %ld: %s", status, resp);
        }
    agent_wait(&fx->a, SESSIONS, 120,
               "SELECT count(*) FROM whatsapp_accounts WHERE status = 'connected' AND "
               "session_id LIKE '%%%s'",
               fx->a.wh.prefix);
    size_t victims = (size_t)sess_int("SELECT count(*) FROM whatsapp_accounts WHERE "
                                      "assigned_instance_index = %d AND session_id LIKE '%%%s'",
                                      VICTIM, fx->a.wh.prefix);
    assert_true(victims > 0);
    char(*ids)[128] = calloc(victims, sizeof *ids);
    assert_non_null(ids);
    PGresult *res = PQexec(fx->a.camp.pg, "SELECT session_id FROM whatsapp_accounts WHERE "
                                          "assigned_instance_index = 0 AND deleted_at IS NULL "
                                          "AND assignment_epoch > 0 ORDER BY id");
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    assert_int_equal((size_t)PQntuples(res), victims);
    for (size_t i = 0; i < victims; i++)
        snprintf(ids[i], sizeof ids[i], "%s", PQgetvalue(res, (int)i, 0));
    PQclear(res);
    itest_sleep_ms(2000); /* customers write to every instance a while */

    int64_t killed_at = bz_wall_ms();
    sess_kill(fx, run[VICTIM]);
    agent_wait(&fx->a, 0, 120,
               "SELECT count(*) FROM whatsapp_accounts WHERE assigned_instance_index = %d AND "
               "session_id LIKE '%%%s'",
               VICTIM, fx->a.wh.prefix);
    int64_t moved_at = bz_wall_ms();
    agent_wait(&fx->a, SESSIONS, 60,
               "SELECT count(*) FROM whatsapp_accounts WHERE status = 'connected' AND "
               "session_id LIKE '%%%s'",
               fx->a.wh.prefix);
    int64_t connected_at = bz_wall_ms();

    /* the moved ones, counted; the others untouched; nobody over capacity */
    assert_int_equal(sess_int("SELECT count(*) FROM whatsapp_accounts WHERE "
                              "instance_migration_count = 1 AND previous_instance_index = %d AND "
                              "last_instance_migration_at IS NOT NULL AND assignment_epoch = 2 "
                              "AND session_id LIKE '%%%s'",
                              VICTIM, fx->a.wh.prefix),
                     (int64_t)victims);
    assert_int_equal(sess_int("SELECT count(*) FROM whatsapp_accounts WHERE "
                              "instance_migration_count = 0 AND assignment_epoch = 1 AND "
                              "session_id LIKE '%%%s'",
                              fx->a.wh.prefix),
                     (int64_t)(SESSIONS - victims));
    assert_true(sess_int("SELECT max(n) FROM (SELECT count(*) AS n FROM whatsapp_accounts WHERE "
                         "session_id LIKE '%%%s' GROUP BY assigned_instance_index) l",
                         fx->a.wh.prefix) <= CAPACITY);
    assert_int_equal(sess_int("SELECT count(*) FROM gateway_instances WHERE gateway_id = 'sim' "
                              "AND instance_index = %d AND status = 'dead'", VICTIM), 1);

    /* restarted once each, where they went, from the shared storage */
    assert_once_each(NULL, 1, count_restart, BLAZZ__V1__SESSION_ACTION__SESSION_ACTION_RESTART,
                     ids, victims, "RESTART commands");
    for (size_t i = 0; i < victims; i++) {
        int starts = sess_starts_after(run[1], ids[i], killed_at) +
                     sess_starts_after(run[2], ids[i], killed_at);
        if (starts != 1)
            fail_msg("session %s started %d times on the live instances after the kill", ids[i],
                     starts);
    }
    assert_int_equal(sess_int("SELECT count(*) FROM whatsapp_accounts WHERE session_id LIKE "
                              "'%%%s' AND qr_code IS NOT NULL", fx->a.wh.prefix), 0);
    assert_once_each(bz_topic_base(BZ_TOPIC_SESSION_EVENTS), 0, count_event,
                     BLAZZ__V1__SESSION_EVENT_KIND__SESSION_EVENT_KIND_INSTANCE_MIGRATED, ids,
                     victims, "INSTANCE_MIGRATED events");

    size_t spans = sess_assert_never_served_twice(fx);
    size_t stored = sess_assert_messages_stored_once(fx);
    print_message("failover: %zu of %d sessions on the killed instance; all assigned to the live "
                  "ones %.1f s after the kill, all connected again after %.1f s (timeout 30 s); "
                  "%zu serving spans without overlap; %zu customer messages stored once\n",
                  victims, SESSIONS, (double)(moved_at - killed_at) / 1000.0,
                  (double)(connected_at - killed_at) / 1000.0, spans, stored);
    free(ids);
    for (int w = 0; w < WORKSPACES; w++)
        free(keys[w]);
}

static int setup(void **state)
{
    (void)state;
    fx = calloc(1, sizeof *fx);
    return fx ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    sess_fx_finish(fx);
    free(fx);
    fx = NULL;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(an_instance_killed_loses_its_sessions_to_the_live_ones,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
