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
 *
 * With sessions.assignment = modulo (seed 003's rule; docs/SESSIONS.md
 * §15.3) a session goes to the live instance at position workspace_id % (the
 * gateway's live instances, ordered by index), or nowhere: a session whose
 * instance is full waits although the others have room. An instance's
 * death changes the count: what it held and what waited are placed by the
 * new one, and only those; sessions already on live instances stay.
 *
 * The store a session's credentials are in (issue 55, seed 003): reported
 * with the session (session_storage_path, session_storage_verified_at),
 * the stores an instance reaches with its heartbeats; a session of a dead
 * instance waits rather than go to a live one that does not reach its
 * store, and resumes on one that does.
 *
 * Sends released to an instance that dies before answering them (issue
 * 55; §15.4): an instance that takes every send and answers none
 * (--hold-sends) is SIGKILLed holding agents' messages and a campaign's
 * logs. Each must end failed, gateway_instance_lost (the agent's row, the
 * campaign's log, the campaign completed), taken once by the gateway and
 * never by the instance the session moved to; a message released after the
 * move is sent by it, once.
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

/* ---- seed 003's rule ------------------------------------------------------------------------ */

#define MOD_RESIDUES 6 /* one workspace per workspace_id % 6: two per instance of 3, both parities */
#define MOD_TIMEOUT_S 6
#define MOD_SMALL 3 /* instance 1's capacity: three sessions fill it */
#define MOD_ROOMY 10

typedef struct mod_fx {
    int64_t ws[MOD_RESIDUES]; /* ws[r] % MOD_RESIDUES == r */
    char *keys[MOD_RESIDUES];
} mod_fx;

/* A workspace for every residue mod 6, whatever ids other programs took
 * meanwhile: the rule is only seen working when every instance and both
 * halves of the two-instance split have a workspace. */
static void mod_workspaces(mod_fx *m)
{
    int have = 0;
    for (int tries = 0; have < MOD_RESIDUES && tries < 64; tries++) {
        int64_t id = tries == 0 ? fx->a.wh.workspace_id : camp_workspace(&fx->a.camp);
        int r = (int)(id % MOD_RESIDUES);
        if (!m->ws[r]) {
            m->ws[r] = id;
            m->keys[r] = agent_api_key(&fx->a, id);
            have++;
        }
    }
    if (have < MOD_RESIDUES)
        fail_msg("64 new workspaces covered %d of the %d residues mod %d", have, MOD_RESIDUES,
                 MOD_RESIDUES);
}

/* A new session "<name><r>." in workspace ws[r], its id into id. */
static void mod_create(mod_fx *m, const char *name, int r, char *id)
{
    char full[32];
    snprintf(full, sizeof full, "%s%d.", name, r);
    sess_create_ok(fx, m->keys[r], full, id);
}

/* Wait until the session holds its epoch-th placement. */
static void mod_wait_placed(const char *id, int epoch)
{
    agent_wait(&fx->a, 1, 60,
               "SELECT count(*) FROM whatsapp_accounts WHERE session_id = '%s' AND "
               "assignment_epoch = %d AND status <> 'pending_assignment'",
               id, epoch);
}

/* The session (of ws[r]) is on instance want, which the rule names. */
static void mod_expect_on(mod_fx *m, const char *id, int r, int want, const char *rule)
{
    int64_t on = sess_int("SELECT coalesce(assigned_instance_index, -1) FROM whatsapp_accounts "
                          "WHERE session_id = '%s'", id);
    if (on != want)
        fail_msg("session %s of workspace %lld is on instance %lld, want %d (%s)", id,
                 (long long)m->ws[r], (long long)on, want, rule);
}

static void modulo_puts_a_workspace_on_its_instance_or_nowhere(void **state)
{
    (void)state;
    sess_fx_init(fx, "mod");
    mod_fx m = {0};
    mod_workspaces(&m);
    sess_start_chat_sync_assigning(fx, MOD_TIMEOUT_S, "modulo");
    agent_start_ingest(&fx->a, NULL);
    sess_run *run[3];
    for (int i = 0; i < 3; i++) {
        sess_instance how = {.index = i, .capacity = i == 1 ? MOD_SMALL : MOD_ROOMY,
                             .heartbeat_ms = 1000, .lease_ms = 4000, .scan_after_ms = 1};
        run[i] = sess_start_instance(fx, &how);
    }
    sess_wait_live(fx, 3);

    /* three live instances: workspace_id % 3. The first session is placed
     * alone, on empty instances: least loaded would take instance 0, the
     * rule takes 2 (ws[5] % 3). */
    char a[MOD_RESIDUES][128];
    mod_create(&m, "a", 5, a[5]);
    mod_wait_placed(a[5], 1);
    mod_expect_on(&m, a[5], 5, 5 % 3, "workspace_id % 3 live instances");
    for (int r = MOD_RESIDUES - 2; r >= 0; r--)
        mod_create(&m, "a", r, a[r]);
    for (int r = 0; r < MOD_RESIDUES - 1; r++) {
        mod_wait_placed(a[r], 1);
        mod_expect_on(&m, a[r], r, r % 3, "workspace_id % 3 live instances");
    }

    /* instance 1 full (ws[1] and ws[4] are its workspaces): ws[4]'s next
     * session waits, while 0 and 2 have room. A session created after the
     * waiting one's row exists is placed only by a round that looked at
     * both, oldest first. */
    char full[128], waiting[128], witness[128];
    mod_create(&m, "full", 1, full);
    mod_wait_placed(full, 1);
    mod_expect_on(&m, full, 1, 1, "workspace_id % 3 live instances");
    mod_create(&m, "wait", 4, waiting);
    agent_wait(&fx->a, 1, 60, "SELECT count(*) FROM whatsapp_accounts WHERE session_id = '%s'",
               waiting);
    mod_create(&m, "witness", 0, witness);
    mod_wait_placed(witness, 1);
    mod_expect_on(&m, witness, 0, 0, "workspace_id % 3 live instances");
    if (sess_int("SELECT count(*) FROM whatsapp_accounts WHERE session_id = '%s' AND status = "
                 "'pending_assignment' AND assignment_epoch = 0", waiting) != 1)
        fail_msg("session %s of workspace %lld was placed, on instance %lld, although its "
                 "instance 1 was full", waiting, (long long)m.ws[4],
                 (long long)sess_int("SELECT coalesce(assigned_instance_index, -1) FROM "
                                     "whatsapp_accounts WHERE session_id = '%s'", waiting));
    assert_int_equal(sess_int("SELECT count(*) FROM gateway_instances i WHERE gateway_id = 'sim' "
                              "AND instance_index <> 1 AND status = 'live' AND capacity > "
                              "(SELECT count(*) FROM whatsapp_accounts a WHERE a.gateway_id = "
                              "'sim' AND a.assigned_instance_index = i.instance_index AND "
                              "a.status <> 'pending_assignment' AND a.deleted_at IS NULL)"),
                     2);

    /* instance 1 dies: two live instances, 0 and 2, so workspace_id % 2 is
     * a position, not an index (an odd workspace goes to instance 2). What
     * instance 1 held moves by it, the waiting session is placed by it, and
     * so is every new one; the sessions on 0 and 2 stay where they are,
     * though the new count would put ws[2] and ws[3] elsewhere. */
    sess_kill(fx, run[1]);
    agent_wait(&fx->a, 1, 60,
               "SELECT count(*) FROM gateway_instances WHERE gateway_id = 'sim' AND "
               "instance_index = 1 AND status = 'dead'");
    static const int live[2] = {0, 2};
    const char *rule2 = "workspace_id % 2 live instances, by position among 0 and 2";
    mod_wait_placed(a[1], 2);
    mod_expect_on(&m, a[1], 1, live[1], rule2);
    mod_wait_placed(full, 2);
    mod_expect_on(&m, full, 1, live[1], rule2);
    mod_wait_placed(a[4], 2);
    mod_expect_on(&m, a[4], 4, live[0], rule2);
    mod_wait_placed(waiting, 1);
    mod_expect_on(&m, waiting, 4, live[0], rule2);
    char b[MOD_RESIDUES][128];
    for (int r = 0; r < MOD_RESIDUES; r++)
        mod_create(&m, "b", r, b[r]);
    for (int r = 0; r < MOD_RESIDUES; r++) {
        mod_wait_placed(b[r], 1);
        mod_expect_on(&m, b[r], r, live[r % 2], rule2);
    }
    static const int stayed[] = {0, 2, 3, 5};
    for (size_t i = 0; i < sizeof stayed / sizeof stayed[0]; i++) {
        int r = stayed[i];
        assert_int_equal(sess_int("SELECT count(*) FROM whatsapp_accounts WHERE session_id = "
                                  "'%s' AND assignment_epoch = 1 AND instance_migration_count = 0",
                                  a[r]), 1);
        mod_expect_on(&m, a[r], r, r % 3, "placed by the old count, and staying");
    }
    print_message("modulo: %d workspaces (%lld ... %lld); 3 live instances: each session on "
                  "workspace_id %% 3, a full instance's workspace waiting; instance 1 killed: "
                  "each moved, waiting or new session on position workspace_id %% 2 of 0 and 2, "
                  "the others unmoved\n",
                  MOD_RESIDUES, (long long)m.ws[0], (long long)m.ws[MOD_RESIDUES - 1]);
    for (int r = 0; r < MOD_RESIDUES; r++)
        free(m.keys[r]);
}

/* ---- what was released to the dead instance ------------------------------------------- */

#define LOST_TIMEOUT_S 6
#define LOST_AGENT 4
#define LOST_CAMPAIGN 3
#define LOST_SENDS (LOST_AGENT + LOST_CAMPAIGN)

/* How many sends the gateway's instances took, once sends_log holds want
 * of them or after timeout_s. */
static size_t wait_gateway_sends(size_t want, int timeout_s)
{
    int64_t deadline = bz_wall_ms() + (int64_t)timeout_s * 1000;
    size_t n = 0;
    for (;;) {
        free(agent_sends(&fx->a, &n));
        if (n >= want || bz_wall_ms() > deadline)
            return n;
        itest_sleep_ms(100);
    }
}

/* The key taken by the gateway exactly once, whichever instance took it. */
static void assert_taken_once(const char *key, const char *what)
{
    int taken = agent_sends_of(&fx->a, key);
    if (taken != 1)
        fail_msg("%s %s: taken %d times by the gateway's instances, want 1 (its instance died "
                 "holding it; its heir must never get it)", what, key, taken);
}

static void sends_released_to_a_killed_instance_fail_and_are_never_sent_again(void **state)
{
    (void)state;
    sess_fx_init(fx, "lost");
    int64_t ws = fx->a.wh.workspace_id;
    char *key = agent_api_key(&fx->a, ws);
    sess_start_chat_sync(fx, LOST_TIMEOUT_S);
    camp_start_sender(&fx->a.camp, 0, NULL);
    agent_start_ingest(&fx->a, NULL);
    /* instance 0 takes every send and answers none, a phone stuck when it
     * dies; instance 1, its heir, answers */
    sess_instance stuck = {.index = 0, .capacity = 10, .heartbeat_ms = 1000, .lease_ms = 4000,
                           .scan_after_ms = 1, .hold_sends = 1};
    sess_run *victim = sess_start_instance(fx, &stuck);
    sess_wait_live(fx, 1);
    char id[128];
    sess_create_ok(fx, key, "lost", id);
    agent_wait(&fx->a, 1, 60,
               "SELECT count(*) FROM whatsapp_accounts WHERE session_id = '%s' AND status = "
               "'connected' AND assigned_instance_index = 0",
               id);
    sess_instance heir = {.index = 1, .capacity = 10, .heartbeat_ms = 1000, .lease_ms = 4000,
                          .scan_after_ms = 1};
    sess_start_instance(fx, &heir);
    sess_wait_live(fx, 2);
    int64_t account = sess_int("SELECT id FROM whatsapp_accounts WHERE session_id = '%s'", id);

    /* agents' messages and a campaign, released to instance 0 and taken */
    int64_t contact = agent_contact(&fx->a, ws, "+6281377700001", "Lost");
    char ids[LOST_AGENT + 1][BZ_UUID_STR_SIZE];
    agent_post_messages(&fx->a, key, "lost", LOST_AGENT, &contact, 1, account, ids);
    int64_t group = camp_audience(&fx->a.camp, ws, LOST_CAMPAIGN, 7731);
    int64_t campaign = camp_campaign(&fx->a.camp, ws, group, account, "lost with it", "draft",
                                     NULL);
    camp_command(&fx->a.camp, ws, campaign, "start", "tester");
    agent_wait(&fx->a, LOST_SENDS, 60,
               "SELECT count(*) FROM send_ledger WHERE whatsapp_account_id = %lld",
               (long long)account);
    size_t taken = wait_gateway_sends(LOST_SENDS, 30);
    if (taken != LOST_SENDS)
        fail_msg("instance 0 took %zu of the %d sends released to it", taken, LOST_SENDS);
    assert_int_equal(sess_int("SELECT count(*) FROM chats WHERE whatsapp_account_id = %lld AND "
                              "type = 'outbound' AND message_status = 'pending'",
                              (long long)account),
                     LOST_AGENT);

    /* it dies holding them; the session moves to instance 1 */
    sess_kill(fx, victim);
    agent_wait(&fx->a, 1, 60,
               "SELECT count(*) FROM whatsapp_accounts WHERE id = %lld AND assignment_epoch = 2 "
               "AND assigned_instance_index = 1 AND status = 'connected'",
               (long long)account);

    /* every one ends failed with its reason, within a sweep or two of the
     * move; none is pending, none reached the heir */
    agent_wait(&fx->a, 0, 30,
               "SELECT count(*) FROM chats WHERE whatsapp_account_id = %lld AND type = "
               "'outbound' AND message_status = 'pending'",
               (long long)account);
    agent_wait(&fx->a, 0, 30,
               "SELECT count(*) FROM campaign_logs WHERE campaign_id = %lld AND status IN "
               "('pending', 'queued')",
               (long long)campaign);
    assert_int_equal(sess_int("SELECT count(*) FROM chats WHERE whatsapp_account_id = %lld AND "
                              "type = 'outbound' AND message_status = 'failed' AND "
                              "metadata->>'error_code' = 'gateway_instance_lost'",
                              (long long)account),
                     LOST_AGENT);
    assert_int_equal(sess_int("SELECT count(*) FROM campaign_logs WHERE campaign_id = %lld AND "
                              "status = 'failed' AND error_message LIKE "
                              "'gateway_instance_lost%%'",
                              (long long)campaign),
                     LOST_CAMPAIGN);
    camp_wait_status(&fx->a.camp, campaign, "completed", 30);
    for (int i = 0; i < LOST_AGENT; i++)
        assert_taken_once(ids[i], "agent message");
    char campaign_text[24];
    snprintf(campaign_text, sizeof campaign_text, "%lld", (long long)campaign);
    const char *params[] = {campaign_text};
    PGresult *res = PQexecParams(fx->a.camp.pg,
                       "SELECT uuid::text FROM campaign_logs WHERE campaign_id = $1::bigint", 1,
                       NULL, params, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(res), LOST_CAMPAIGN);
    for (int i = 0; i < LOST_CAMPAIGN; i++)
        assert_taken_once(PQgetvalue(res, i, 0), "campaign log");
    PQclear(res);
    assert_true(sess_metric(fx, "blazz_chat_sync_sends_lost_total") == LOST_SENDS);

    /* what is released after the move goes to the heir and is sent, once */
    agent_post_messages(&fx->a, key, "after", 1, &contact, 1, account, &ids[LOST_AGENT]);
    agent_wait(&fx->a, 1, 30,
               "SELECT count(*) FROM chats WHERE uuid = '%s' AND message_status IN ('sent', "
               "'delivered', 'read')",
               ids[LOST_AGENT]);
    assert_taken_once(ids[LOST_AGENT], "agent message after the move");
    print_message("lost sends: %d agent messages and %d campaign logs released to instance 0, "
                  "which died holding them: each failed (gateway_instance_lost), taken once by "
                  "the gateway, never by the heir; the campaign completed; a message after the "
                  "move sent once by the heir\n",
                  LOST_AGENT, LOST_CAMPAIGN);
    free(key);
}

/* ---- the store a session's credentials are in ------------------------------------------------ */

#define STORE_TIMEOUT_S 6

/* An instance reports where a connected session's credentials are (seed
 * 003's session_storage_path and session_storage_verified_at) and in which
 * store, and every heartbeat lists the stores it reaches. When the
 * session's instance dies, a live instance with room that does not reach
 * the store is no place for it: it waits (pending_assignment) until one
 * that does comes, and resumes there from its credentials. */
static void a_session_moves_only_to_an_instance_reaching_its_store(void **state)
{
    (void)state;
    sess_fx_init(fx, "store");
    char *key = agent_api_key(&fx->a, fx->a.wh.workspace_id);
    sess_start_chat_sync(fx, STORE_TIMEOUT_S);
    agent_start_ingest(&fx->a, NULL);
    sess_instance shared = {.index = 0, .capacity = 10, .heartbeat_ms = 1000, .lease_ms = 4000,
                            .scan_after_ms = 1};
    sess_run *first = sess_start_instance(fx, &shared);
    sess_wait_live(fx, 1);
    char id[128];
    sess_create_ok(fx, key, "kept.", id);
    agent_wait(&fx->a, 1, 60,
               "SELECT count(*) FROM whatsapp_accounts WHERE session_id = '%s' AND "
               "status = 'connected' AND session_storage = 'shared' AND "
               "session_storage_path = '%s/%s' AND session_storage_verified_at > now() - "
               "interval '1 minute'",
               id, fx->storage_dir, id);

    sess_instance elsewhere = {.index = 1, .capacity = 10, .heartbeat_ms = 1000,
                               .lease_ms = 4000, .scan_after_ms = 1, .storage = "elsewhere"};
    sess_start_instance(fx, &elsewhere);
    sess_wait_live(fx, 2);
    agent_wait(&fx->a, 1, 30,
               "SELECT count(*) FROM gateway_instances WHERE gateway_id = 'sim' AND "
               "instance_index = 1 AND storages = '{elsewhere}'");
    sess_kill(fx, first);
    agent_wait(&fx->a, 1, 60,
               "SELECT count(*) FROM gateway_instances WHERE gateway_id = 'sim' AND "
               "instance_index = 0 AND status = 'dead'");
    agent_wait(&fx->a, 1, 30,
               "SELECT count(*) FROM whatsapp_accounts WHERE session_id = '%s' AND "
               "status = 'pending_assignment'",
               id);
    /* rounds go on (each heartbeat wakes the sweep): still waiting */
    itest_sleep_ms(3000);
    assert_int_equal(sess_int("SELECT assignment_epoch FROM whatsapp_accounts WHERE "
                              "session_id = '%s' AND status = 'pending_assignment'",
                              id),
                     1);

    shared.index = 2;
    sess_run *second = sess_start_instance(fx, &shared);
    agent_wait(&fx->a, 1, 60,
               "SELECT count(*) FROM whatsapp_accounts WHERE session_id = '%s' AND "
               "assigned_instance_index = 2 AND assignment_epoch = 2 AND status = 'connected'",
               id);
    if (!sess_starts_after(second, id, 0))
        fail_msg("session %s: no start in instance 2's served log", id);
    /* found there by the new instance, which says so */
    agent_wait(&fx->a, 1, 30,
               "SELECT count(*) FROM whatsapp_accounts WHERE session_id = '%s' AND "
               "session_storage_verified_at >= last_instance_migration_at",
               id);
    print_message("session %s waited for an instance reaching store 'shared', then resumed on "
                  "instance 2\n",
                  id);
    free(key);
}

static int setup(void **state)
{
    (void)state;
    return sess_fx_open(&fx);
}

static int teardown(void **state)
{
    (void)state;
    return sess_fx_close(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(an_instance_killed_loses_its_sessions_to_the_live_ones,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(modulo_puts_a_workspace_on_its_instance_or_nowhere, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            sends_released_to_a_killed_instance_fail_and_are_never_sent_again, setup, teardown),
        cmocka_unit_test_setup_teardown(a_session_moves_only_to_an_instance_reaching_its_store,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
