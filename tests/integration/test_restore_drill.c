/*
 * test_restore_drill.c - the restore drill (issue 39, ARCHITECTURE.md
 * §6.5): traffic running, the moment T noted, traffic going on, the
 * services stopped, PostgreSQL restored to T with pgBackRest, the services
 * started again. What only this design can promise must hold: consumers
 * keep their Kafka offsets in PostgreSQL, so the restored database re-reads
 * from Kafka what came after T, and
 *
 *  - every message accepted after T is stored again exactly once, as the
 *    row the CRM knew (same chats.uuid, same wamid), and nothing else: the
 *    chats table ends as it was before the restore;
 *  - no send leaves twice: the gateway simulator's log of what it was asked
 *    to send and the Graph test server's accepted messages are unchanged,
 *    and the simulator was asked for no idempotency key a second time (its
 *    outbound_duplicates, counted by key: the sends log has one line per
 *    key, so a repeat shows only there); Meta has no key, so meta-sender
 *    holds every send behind the restore fence until chat-sync has re-read
 *    chat.sync, where the proofs of the sends made after T are, and then
 *    finds each one sent (the blazz_meta_sender_proven_sent_total counter);
 *  - webhooks for the replayed events carry the webhook-ids they had
 *    before: every delivery after the restore repeats an id the receiver
 *    already had (Standard Webhooks receivers deduplicate by it), an
 *    agent's message.created too when its echo stored its row before its
 *    command was re-read; the one kind exempt is a campaign's progress
 *    snapshot (a state, not a fact: ARCHITECTURE.md §6.5), printed;
 *  - the Meta campaign sent on both sides of T (the restored database
 *    has some of its sends and not all of them);
 *  - the campaigns' counters are exact (equal to their logs), not below
 *    what they were at T nor before the restore, and every contact's count
 *    of unread messages is what it was.
 *
 * The services stop as an operator stops them: the senders first, the rest
 * once every send the gateway was asked for has its echo stored (an echo
 * still on its way when the fence is recorded is not behind it, and its
 * send is asked again: the gateway's key rule answers that one). They
 * start again with campaign-sender last, once chat-sync has re-read
 * chat.sync: the fence, which covers the campaign topics too, must still
 * be up then.
 *
 * The database is a PostgreSQL of the test's own (own_pg.h, as
 * test_backup's), with WAL archiving on from the start; the services, the
 * Graph test server, the gateway simulator and the receiver are
 * meta_world.h's on the shared Kafka, under a topic prefix of their own.
 *
 * The traffic, in two phases of the same shape (before T and after T):
 * webjs inbound messages (written to wa.inbound.raw as the HTTP edge
 * writes them), Meta inbound messages (Meta's webhook, through ingest),
 * agents' messages through a webjs account and through the Meta account
 * (POST /v1/messages); beside them a Meta campaign started before T and
 * paced so that it runs across it, and a webjs campaign started after T
 * (its start command is replayed: its logs must come back the same). It
 * prints the figures: messages after T, re-stored, sends at the gateway
 * and at Meta before and after, sends meta-sender found already made,
 * webhooks repeated, and the recovery time (restore and WAL replay, then
 * the replay from Kafka until the chats table is what it was). The
 * recovery time is printed, not asserted: its goal belongs to a benchmark
 * (tests hold no timed assertions); waits here fail when nothing moves
 * for a while, not after a fixed total, so a loaded machine is slow, not
 * red.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "agent_itest.h"
#include "core/clock.h"
#include "itest.h"
#include "meta_world.h"
#include "own_pg.h"

#define fx agent_test_fx
#define mw meta_test_world

/* Per phase: messages of each kind. */
#define WEBJS_INBOUND 40
#define META_INBOUND 15
#define AGENT_SENDS 8
#define CAMPAIGN_CONTACTS 160
#define CAMPAIGN_RATE 16 /* sends a second: 10 s for the campaign, T after 20 */
/* A wait fails when what it watches has not moved for this long. */
#define STALL_S 120

static own_pg db;
static char *shared_dsn; /* BLAZZ_PG_DSN before the test took it (heap) */

/* The test's own PostgreSQL, migrated, backed up (WAL archiving on), and
 * BLAZZ_PG_DSN pointing at it for everything the test starts. */
static void own_database_up(void)
{
    own_pg_init(&db, "/tmp/itest-drill");
    own_pg_stack_ok(&db, "start-pg", NULL);
    own_pg_stack_ok(&db, "migrate", NULL);
    own_pg_stack_ok(&db, "backup", NULL);
    char dsn[160];
    own_pg_dsn(&db, "blazz", dsn, sizeof dsn);
    shared_dsn = strdup(itest_env("BLAZZ_PG_DSN"));
    setenv("BLAZZ_PG_DSN", dsn, 1);
}

static int drill_teardown(void **state)
{
    meta_world_teardown(state);
    own_pg_remove(&db);
    if (shared_dsn) {
        setenv("BLAZZ_PG_DSN", shared_dsn, 1);
        free(shared_dsn);
        shared_dsn = NULL;
    }
    return 0;
}

typedef struct world {
    int64_t webjs_account, meta_campaign, webjs_campaign;
    int64_t webjs_contacts[AGENT_SENDS], meta_contacts[AGENT_SENDS];
    char *key;
    char webjs_session[128];
} world;

/* One phase of traffic: inbound both ways and agents' messages both ways,
 * under tag (its ids). */
static void traffic(world *w, const char *tag)
{
    int64_t now = bz_wall_ms();
    char wam[96], body[96], idem[96], id[BZ_UUID_STR_SIZE];
    for (int i = 0; i < WEBJS_INBOUND; i++) {
        snprintf(wam, sizeof wam, "%s-web-%d", tag, i);
        snprintf(body, sizeof body, "halo %s %d", tag, i);
        char phone[32];
        snprintf(phone, sizeof phone, "+628170000%04d", i % 10);
        agent_inbound(fx, w->webjs_session, wam, phone, body, now + i);
    }
    for (int i = 0; i < META_INBOUND; i++) {
        char from[32];
        snprintf(from, sizeof from, "628180000%04d", i % 5);
        snprintf(wam, sizeof wam, "wamid.%s-meta-%d", tag, i);
        snprintf(body, sizeof body, "\"text\":{\"body\":\"pesan %s %d\"}", tag, i);
        meta_world_post_inbound(from, wam, (long long)(now / 1000), "text", body);
    }
    char ids[AGENT_SENDS][BZ_UUID_STR_SIZE];
    snprintf(idem, sizeof idem, "%s-agent-web", tag);
    agent_post_messages(fx, w->key, idem, AGENT_SENDS, w->webjs_contacts, AGENT_SENDS,
                        w->webjs_account, ids);
    for (int i = 0; i < AGENT_SENDS; i++) {
        snprintf(idem, sizeof idem, "%s-agent-meta-%d", tag, i);
        snprintf(body, sizeof body, "balasan %s %d", tag, i);
        meta_world_post_text(w->meta_contacts[i], body, idem, id);
    }
}

/* Every row of chats, in one text: uuid, account, wamid, type. */
static char *chats_snapshot(void)
{
    return itest_pg_textf(fx->camp.pg,
                          "SELECT coalesce(string_agg(format('%%s/%%s/%%s/%%s', uuid, "
                          "whatsapp_account_id, wam_id, type), ',' ORDER BY uuid), '') FROM chats");
}

/* Every contact's counter of unread messages, in one text. */
static char *contacts_snapshot(void)
{
    return itest_pg_textf(fx->camp.pg,
                          "SELECT coalesce(string_agg(format('%%s/%%s', id, unread_messages), ',' "
                          "ORDER BY id), '') FROM contacts");
}

/* The items (comma-separated) of two snapshots that differ, printed; how
 * many. */
static int print_differences(const char *what, const char *before, const char *after)
{
    char *b = strdup(before), *a = strdup(after), *sb = NULL, *sa = NULL;
    assert_non_null(b);
    assert_non_null(a);
    int n = 0;
    char *x = strtok_r(b, ",", &sb), *y = strtok_r(a, ",", &sa);
    while (x || y) {
        if (!x || !y || strcmp(x, y) != 0) {
            if (n++ < 5)
                print_message("%s differs: before %s, after %s\n", what, x ? x : "-",
                              y ? y : "-");
        }
        x = x ? strtok_r(NULL, ",", &sb) : NULL;
        y = y ? strtok_r(NULL, ",", &sa) : NULL;
    }
    free(b);
    free(a);
    return n;
}

/* What the receiver got: its webhook-ids, as the keys of an object, and
 * how many deliveries. */
typedef struct received {
    json_t *ids;
    size_t deliveries;
} received;

static const char *row_named(json_t *req, json_t **doc)
{
    const char *body = json_string_value(json_object_get(req, "body"));
    *doc = body ? json_loads(body, 0, NULL) : NULL;
    return json_string_value(json_object_get(
        json_object_get(json_object_get(*doc, "data"), "chat"), "uuid"));
}

static void receive_all(received *r)
{
    json_t *all = wh_requests(&fx->wh), *req;
    size_t i;
    r->ids = json_object();
    r->deliveries = 0;
    json_array_foreach(all, i, req) {
        const char *id = wh_header(req, "webhook-id");
        if (!id)
            continue;
        r->deliveries++;
        json_object_set_new(r->ids, id, json_true());
    }
    json_decref(all);
}

/* Webhooks delivered since `before` under a webhook-id it did not have,
 * but for a campaign's progress snapshots (*snapshots counts them): those
 * may repeat under fresh ids (ARCHITECTURE.md §6.5), and a receiver that
 * takes one again sets the same counters. Every other one is an event the
 * receiver, deduplicating by webhook-id, would take twice: printed and
 * counted. */
static size_t webhooks_under_new_ids(const received *before, size_t *snapshots)
{
    json_t *all = wh_requests(&fx->wh), *req;
    size_t i, others = 0;
    *snapshots = 0;
    json_array_foreach(all, i, req) {
        const char *id = wh_header(req, "webhook-id");
        if (!id || json_object_get(before->ids, id))
            continue;
        json_t *doc;
        const char *row = row_named(req, &doc);
        const char *type = json_string_value(json_object_get(doc, "type"));
        const char *kind =
            json_string_value(json_object_get(json_object_get(doc, "data"), "kind"));
        if (type && strcmp(type, "campaign.progress") == 0 && kind &&
            strcmp(kind, "progress") == 0)
            (*snapshots)++;
        else {
            json_t *chat = json_object_get(json_object_get(doc, "data"), "chat");
            print_message("a webhook under a new webhook-id: %s of %s (%s, \"%s\")\n",
                          type ? type : "?", row ? row : "no row",
                          json_string_value(json_object_get(chat, "message_status")),
                          json_string_value(json_object_get(chat, "message")));
            others++;
        }
        json_decref(doc);
    }
    json_decref(all);
    return others;
}

static size_t graph_accepted(void)
{
    size_t n;
    free(graph_records(&mw.graph, &n));
    return n;
}

static size_t gateway_sends(void)
{
    size_t n;
    free(agent_sends(fx, &n));
    return n;
}

/* Poll sql (printf-style, one text) until its value starts with done; fail
 * when the value has not changed for STALL_S seconds (what is waited for
 * no longer moves), never for taking long while it moves. */
static void wait_while_moving(const char *what, const char *done, const char *fmt, ...)
{
    char sql[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    char *last = NULL;
    int64_t moved = bz_monotonic_ms();
    for (;;) {
        char *v = itest_pg_textf(fx->camp.pg, "%s", sql);
        if (strncmp(v, done, strlen(done)) == 0) {
            free(v);
            break;
        }
        if (!last || strcmp(v, last) != 0)
            moved = bz_monotonic_ms();
        free(last);
        last = v;
        if (bz_monotonic_ms() - moved > STALL_S * 1000LL)
            fail_msg("%s: still %s, unchanged for %d s", what, last, STALL_S);
        itest_sleep_ms(250);
    }
    free(last);
}

/* Until the campaign is completed, as long as its logs move. */
static void campaign_completes(int64_t campaign)
{
    wait_while_moving("a campaign to complete", "completed:",
                      "SELECT c.status || ':' || (SELECT coalesce(string_agg(s || '=' || n, ',' "
                      "ORDER BY s), '') FROM (SELECT status s, count(*) n FROM campaign_logs "
                      "WHERE campaign_id = c.id GROUP BY status) x) FROM campaigns c WHERE id = %lld",
                      (long long)campaign);
}

/* Everything the traffic started has settled: both campaigns completed,
 * every agent's message past pending, no webhook delivery open. */
static void settle(const world *w)
{
    campaign_completes(w->meta_campaign);
    campaign_completes(w->webjs_campaign);
    agent_wait(fx, 0, 120, "SELECT count(*) FROM chats WHERE type = 'outbound' AND "
                           "message_status = 'pending'");
    agent_wait(fx, 0, 120, "SELECT count(*) FROM webhook_retry_queue WHERE status <> 'success'");
    agent_wait(fx, 0, 60, "SELECT count(*) FROM meta_sends WHERE state <> 'sent'");
    /* a send meta-sender settled reaches its row through chat.sync (its
     * outcome, relayed from meta-sender's outbox): the row has its wamid
     * only then (a loaded run took the snapshot before 6 of them had) */
    agent_wait(fx, 0, 60, "SELECT count(*) FROM outbox");
    agent_wait(fx, 0, 60, "SELECT count(*) FROM chats WHERE type = 'outbound' AND "
                          "coalesce(wam_id, '') = ''");
}

/* A campaign's counters. */
typedef struct counters {
    long long sent, delivered, read, failed, skipped;
} counters;

static counters campaign_counters(int64_t campaign)
{
    char *t = itest_pg_textf(fx->camp.pg,
                             "SELECT format('%%s %%s %%s %%s %%s', messages_sent, "
                             "messages_delivered, messages_read, messages_failed, "
                             "messages_skipped) FROM campaigns WHERE id = %lld",
                             (long long)campaign);
    counters c;
    long long *fields[] = {&c.sent, &c.delivered, &c.read, &c.failed, &c.skipped};
    char *p = t;
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        char *end = NULL;
        *fields[i] = strtoll(p, &end, 10);
        if (end == p)
            fail_msg("campaign %lld: counters \"%s\" are not five numbers", (long long)campaign,
                     t);
        p = end;
    }
    free(t);
    return c;
}

/* A replay re-makes what came after T; it never takes back what was
 * counted: no counter of now is below the one of floor (when: what floor
 * was). */
static void assert_not_below(const char *when, const counters *floor, const counters *now)
{
    print_message("campaign counters %s: sent %lld, delivered %lld, read %lld, failed %lld, "
                  "skipped %lld; after the replay: %lld, %lld, %lld, %lld, %lld\n",
                  when, floor->sent, floor->delivered, floor->read, floor->failed, floor->skipped,
                  now->sent, now->delivered, now->read, now->failed, now->skipped);
    assert_true(now->sent >= floor->sent);
    assert_true(now->delivered >= floor->delivered);
    assert_true(now->read >= floor->read);
    assert_true(now->failed >= floor->failed);
    assert_true(now->skipped >= floor->skipped);
}

/* How many of the keys the gateway was asked to send have their echo
 * stored: a campaign log past queued, or an agent's row with its wamid. */
static int64_t gateway_sends_echoed(size_t *asked)
{
    size_t n;
    agent_send *s = agent_sends(fx, &n);
    size_t cap = n * (sizeof s->key + 1) + 3;
    char *keys = malloc(cap);
    assert_non_null(keys);
    size_t len = 0;
    *asked = 0;
    keys[len++] = '{';
    for (size_t i = 0; i < n; i++) {
        if (s[i].read)
            continue;
        len += (size_t)snprintf(keys + len, cap - len, "%s%s", *asked ? "," : "", s[i].key);
        (*asked)++;
    }
    keys[len++] = '}';
    keys[len] = '\0';
    free(s);
    int64_t echoed = camp_sql(
        &fx->camp,
        "SELECT count(*) FROM unnest($1::text[]) AS asked(key) WHERE EXISTS (SELECT 1 FROM "
        "campaign_logs l WHERE l.uuid::text = split_part(asked.key, '/', 1) AND l.status IN "
        "('sent', 'delivered', 'read', 'failed')) OR EXISTS (SELECT 1 FROM chats c WHERE "
        "c.uuid::text = split_part(asked.key, '/', 1) AND c.wam_id IS NOT NULL)",
        1, keys);
    free(keys);
    return echoed;
}

/* Until every send the gateway was asked for has its echo stored, as long as
 * that count moves. The restore fence covers what chat.sync holds when it is
 * recorded; an echo still on its way (in wa.inbound.raw behind a busy ingest,
 * or not yet written by the gateway) is not there, and its send is asked
 * again after the restore, answered by the gateway's key rule
 * (campaign.proto). The drill stops the services the way an operator does,
 * senders first and the rest once their echoes are in, so that every repeat
 * at the gateway it counts is one the backbone made. */
static void gateway_echoes_stored(void)
{
    int64_t last = -1, moved = bz_monotonic_ms();
    for (;;) {
        size_t asked;
        int64_t echoed = gateway_sends_echoed(&asked);
        if (echoed == (int64_t)asked)
            return;
        if (echoed != last)
            moved = bz_monotonic_ms();
        last = echoed;
        if (bz_monotonic_ms() - moved > STALL_S * 1000LL)
            fail_msg("the echoes of the gateway's sends: %lld of %zu stored, unchanged for %d s",
                     (long long)echoed, asked, STALL_S);
        itest_sleep_ms(250);
    }
}

static void stop_services(void)
{
    itest_terminate(&fx->camp.senders[0], "campaign-sender", fx->camp.dir);
    itest_terminate(&mw.meta, "meta-sender", fx->camp.dir);
    /* the status webhooks of the last sends reach ingest before it stops */
    itest_sleep_ms(1500);
    gateway_echoes_stored();
    itest_terminate(&fx->ingest, "ingest", fx->camp.dir);
    itest_terminate(&fx->chat_sync, "chat-sync", fx->camp.dir);
    wh_dispatcher_stop(&fx->wh);
}

/* The replay as a loaded machine orders it: campaign-sender behind
 * chat-sync. Until it has read campaign.commands and campaign.receipts
 * back to the fence too, the fence stays up, or receipts of sends made
 * before the restore would come after it lifted and their logs would be
 * released again (0054). */
static void start_services(void)
{
    agent_start_chat_sync(fx);
    agent_start_dispatcher(fx);
    meta_world_restart_ingest();
    meta_world_start_meta_sender();
    agent_wait(fx, 0, 120, "SELECT count(*) FROM restore_fence_offsets o LEFT JOIN kafka_offsets "
                           "k USING (group_id, topic, partition) WHERE o.topic LIKE '%%chat.sync' "
                           "AND coalesce(k.next_offset, 0) < o.end_offset");
    /* meta-sender reads the fence once a second: it has looked again */
    itest_sleep_ms(2500);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM restore_fences WHERE lifted_at IS NULL"),
                     1);
    camp_start_sender(&fx->camp, 0, NULL);
}

static void restores_and_replays_once(void **state)
{
    (void)state;
    own_database_up();
    world w;
    memset(&w, 0, sizeof w);
    meta_world_prepare("drill", "{\"per_second\": " META_WORLD_TEXT(CAMPAIGN_RATE) ", "
                                 "\"per_minute\": 0, \"per_hour\": 0}");
    w.webjs_account = camp_account(&fx->camp, mw.ws, "drill-web", 0, 100,
                                   "{\"per_second\": 20, \"per_minute\": 0, \"per_hour\": 0}");
    char *session = itest_pg_textf(fx->camp.pg, "SELECT session_id FROM whatsapp_accounts WHERE "
                                                "id = %lld", (long long)w.webjs_account);
    snprintf(w.webjs_session, sizeof w.webjs_session, "%s", session);
    free(session);
    for (int i = 0; i < AGENT_SENDS; i++) {
        char phone[32];
        snprintf(phone, sizeof phone, "+628190000%04d", i);
        w.webjs_contacts[i] = agent_contact(fx, mw.ws, phone, "Web");
        snprintf(phone, sizeof phone, "+628200000%04d", i);
        w.meta_contacts[i] = agent_contact(fx, mw.ws, phone, "Meta");
        meta_world_contact_wrote(w.meta_contacts[i], 3600 * 1000LL);
    }
    w.key = mw.api_key;
    agent_endpoint(fx, mw.ws, "/ok/drill");
    agent_start_dispatcher(fx);
    agent_start_sim(fx);
    meta_world_launch(NULL);

    int64_t group = camp_audience(&fx->camp, mw.ws, CAMPAIGN_CONTACTS, 63);
    w.webjs_campaign = camp_campaign(&fx->camp, mw.ws, group, w.webjs_account,
                                     "Halo {{first_name}}", "draft", NULL);
    traffic(&w, "before");
    agent_wait(fx, WEBJS_INBOUND + META_INBOUND, 90,
               "SELECT count(*) FROM chats WHERE wam_id LIKE '%%before-%%'");
    /* the agents' sends before T are at the gateway and back: one still in
     * the outbox at T (released, not yet relayed) is there again after the
     * restore and published again, a repeat the gateway's key rule answers
     * and the fence cannot prevent (OPERATIONS.md §6.5) */
    wait_while_moving("the echoes of the agents' sends before T", "yes",
                      "SELECT CASE WHEN count(*) >= %d THEN 'yes' ELSE count(*)::text END FROM "
                      "chats WHERE whatsapp_account_id = %lld AND metadata->>'source' = 'crm' "
                      "AND wam_id IS NOT NULL",
                      AGENT_SENDS, (long long)w.webjs_account);
    /* T comes once the Meta campaign is sending: some of its sends before T,
     * not all (asserted on the restored database). It starts only now, and
     * paced at CAMPAIGN_RATE, so that the waits above, long on a loaded
     * machine, cannot let it finish before T. */
    w.meta_campaign = meta_world_start_campaign(CAMPAIGN_CONTACTS);
    wait_while_moving("the Meta campaign's first 20 sends", "yes",
                      "SELECT CASE WHEN count(*) >= 20 THEN 'yes' ELSE count(*)::text END FROM "
                      "campaign_logs WHERE campaign_id = %lld AND status NOT IN ('pending', "
                      "'queued')",
                      (long long)w.meta_campaign);
    char *t = itest_pg_textf(fx->camp.pg, "SELECT now()::text");
    itest_sleep_ms(1100);

    /* after T: the webjs campaign starts (the replay starts it again) */
    camp_command(&fx->camp, mw.ws, w.webjs_campaign, "start", "itest");
    traffic(&w, "after");
    settle(&w);
    int64_t after_t = agent_int(fx, "SELECT count(*) FROM chats WHERE created_at > '%s'", t);
    int64_t stored_after =
        agent_int(fx, "SELECT count(*) FROM chats WHERE wam_id LIKE '%%after-%%'");
    assert_int_equal(stored_after, WEBJS_INBOUND + META_INBOUND);
    char *chats_before = chats_snapshot(), *contacts_before = contacts_snapshot();
    counters meta_before = campaign_counters(w.meta_campaign),
             webjs_before = campaign_counters(w.webjs_campaign);
    size_t graph_before = graph_accepted(), gateway_before = gateway_sends();
    itest_pg_exec(fx->camp.pg, "SELECT pg_switch_wal()");

    /* the disaster's answer: stop, restore to T, start */
    int64_t started = bz_monotonic_ms();
    stop_services();
    received before;
    receive_all(&before);
    own_pg_stack_ok(&db, "restore", t);
    int64_t restored = bz_monotonic_ms();
    PQreset(fx->camp.pg);
    PQreset(fx->wh.conn);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM chats WHERE wam_id LIKE '%%after-%%'"),
                     0);
    assert_true(agent_int(fx, "SELECT count(*) FROM restore_fence_offsets WHERE topic LIKE "
                              "'%%chat.sync'") > 0);
    assert_true(agent_int(fx, "SELECT count(*) FROM restore_fence_offsets WHERE topic LIKE "
                              "'%%campaign.receipts'") > 0);
    /* what the campaigns had sent at T: the Meta one some and not all (its
     * sends on both sides of T), the webjs one, started after T, none */
    const char *sends_sql = "SELECT count(*) FROM campaign_logs WHERE campaign_id = %lld AND "
                            "status IN ('sent', 'delivered', 'read')";
    int64_t campaign_sends_at_t = agent_int(fx, sends_sql, (long long)w.meta_campaign);
    assert_true(campaign_sends_at_t > 0);
    assert_true(campaign_sends_at_t < CAMPAIGN_CONTACTS);
    assert_int_equal(agent_int(fx, sends_sql, (long long)w.webjs_campaign), 0);
    counters meta_at_t = campaign_counters(w.meta_campaign),
             webjs_at_t = campaign_counters(w.webjs_campaign);
    start_services();
    agent_wait(fx, 1, 120, "SELECT count(*) FROM restore_fences WHERE lifted_at IS NOT NULL");
    /* the chats table whole again, as long as the replay moves it */
    char *chats_after = NULL;
    for (int64_t moved = bz_monotonic_ms();
         bz_monotonic_ms() - moved <= STALL_S * 1000LL; itest_sleep_ms(100)) {
        char *now = chats_snapshot();
        if (!chats_after || strcmp(now, chats_after) != 0)
            moved = bz_monotonic_ms();
        free(chats_after);
        chats_after = now;
        if (strcmp(chats_after, chats_before) == 0)
            break;
    }
    int64_t replayed = bz_monotonic_ms();
    settle(&w);
    /* anything sent twice has had its time to show */
    itest_sleep_ms(2000);

    size_t graph_after = graph_accepted(), gateway_after = gateway_sends(), snapshots;
    long repeats = agent_send_repeats(fx);
    received after;
    receive_all(&after);
    size_t new_ids = webhooks_under_new_ids(&before, &snapshots);
    double proven = wh_metric(mw.meta_admin_port, "blazz_meta_sender_proven_sent_total");
    print_message("restore drill: %lld rows after T (%d inbound messages), re-stored %lld once "
                  "each; Meta campaign sends at T %lld of %d; sends at the gateway %zu before, "
                  "%zu after, %ld asked again; at Meta %zu before, %zu after; meta-sender found %.0f sends already "
                  "made; webhooks: %zu deliveries before, %zu after the restore, %zu under a "
                  "new webhook-id (%zu of them campaign progress snapshots); "
                  "recovery: restore and WAL replay %.1f s, Kafka replay until the "
                  "chats table was whole %.1f s\n",
                  (long long)after_t, WEBJS_INBOUND + META_INBOUND,
                  (long long)agent_int(fx, "SELECT count(*) FROM chats WHERE wam_id LIKE "
                                           "'%%after-%%'"),
                  (long long)campaign_sends_at_t, CAMPAIGN_CONTACTS, gateway_before,
                  gateway_after, repeats, graph_before, graph_after, proven, before.deliveries,
                  after.deliveries, new_ids + snapshots, snapshots, (double)(restored - started) / 1000.0,
                  (double)(replayed - restored) / 1000.0);
    char *contacts_after = contacts_snapshot();
    assert_int_equal(print_differences("a chats row", chats_before, chats_after), 0);
    assert_int_equal(print_differences("a contact", contacts_before, contacts_after), 0);
    assert_int_equal(gateway_after, gateway_before);
    assert_int_equal(graph_after, graph_before);
    assert_int_equal(repeats, 0);
    assert_int_equal(new_ids, 0);
    assert_true(after.deliveries > before.deliveries);
    assert_true(proven > 0);
    camp_assert_counters_exact(&fx->camp, w.meta_campaign);
    camp_assert_counters_exact(&fx->camp, w.webjs_campaign);
    counters meta_after = campaign_counters(w.meta_campaign),
             webjs_after = campaign_counters(w.webjs_campaign);
    assert_not_below("of the Meta campaign at T", &meta_at_t, &meta_after);
    assert_not_below("of the webjs campaign at T", &webjs_at_t, &webjs_after);
    assert_not_below("of the Meta campaign before the restore", &meta_before, &meta_after);
    assert_not_below("of the webjs campaign before the restore", &webjs_before, &webjs_after);
    json_decref(before.ids);
    json_decref(after.ids);
    free(chats_before);
    free(chats_after);
    free(contacts_before);
    free(contacts_after);
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(restores_and_replays_once, agent_test_setup,
                                        drill_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
