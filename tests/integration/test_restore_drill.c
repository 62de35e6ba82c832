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
 *    to send and the Graph test server's accepted messages are unchanged
 *    (the webjs gateway sends once per idempotency key, by its contract;
 *    Meta has no key, so meta-sender holds every send behind the restore
 *    fence until chat-sync has re-read chat.sync, where the proofs of the
 *    sends made after T are, and then finds each one sent: the
 *    blazz_meta_sender_proven_sent_total counter);
 *  - webhooks for the replayed events carry the webhook-ids they had
 *    before: every delivery after the restore repeats an id the receiver
 *    already had (receivers deduplicate by it), but for one kind: an
 *    agent's message whose echo is re-read before its command is stored
 *    by the echo, as the row the CRM knew (same uuid), and its
 *    message.created comes under the echo's id; those are counted apart;
 *  - the campaigns' counters are exact, and so is every contact's count of
 *    unread messages.
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
 * the replay from Kafka until the chats table is what it was).
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

/* What the receiver got: its webhook-ids and the chats rows its webhooks
 * named (data.chat.uuid), as the keys of two objects, and how many
 * deliveries. */
typedef struct received {
    json_t *ids, *rows;
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
    r->rows = json_object();
    r->deliveries = 0;
    json_array_foreach(all, i, req) {
        const char *id = wh_header(req, "webhook-id");
        if (!id)
            continue;
        r->deliveries++;
        json_object_set_new(r->ids, id, json_true());
        json_t *doc;
        const char *row = row_named(req, &doc);
        if (row)
            json_object_set_new(r->rows, row, json_true());
        json_decref(doc);
    }
    json_decref(all);
}

/* Webhooks delivered since `before` under a webhook-id it did not have:
 * *same_row counts the message.created ones naming a row the receiver knew
 * (an agent's message whose echo was replayed before its command, stored
 * by the echo as the row it was); the others are returned. */
static size_t webhooks_under_new_ids(const received *before, size_t *same_row)
{
    json_t *all = wh_requests(&fx->wh), *req;
    size_t i, others = 0;
    *same_row = 0;
    json_array_foreach(all, i, req) {
        const char *id = wh_header(req, "webhook-id");
        if (!id || json_object_get(before->ids, id))
            continue;
        json_t *doc;
        const char *row = row_named(req, &doc);
        const char *type = json_string_value(json_object_get(doc, "type"));
        const char *kind =
            json_string_value(json_object_get(json_object_get(doc, "data"), "kind"));
        if (row && type && strcmp(type, "message.created") == 0 &&
            json_object_get(before->rows, row))
            (*same_row)++;
        else if (type && strcmp(type, "campaign.progress") == 0 && kind &&
                 strcmp(kind, "started") != 0)
            /* progress, pause and resume: snapshots that may repeat under
             * fresh ids (ARCHITECTURE.md §6.5) */
            print_message("a campaign snapshot under a new webhook-id (by design): %s\n", kind);
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

/* Everything the traffic started has settled: both campaigns completed,
 * every agent's message past pending, no webhook delivery open. */
static void settle(const world *w)
{
    camp_wait_status(&fx->camp, w->meta_campaign, "completed", 180);
    camp_wait_status(&fx->camp, w->webjs_campaign, "completed", 180);
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

static void stop_services(void)
{
    itest_terminate(&fx->camp.senders[0], "campaign-sender", fx->camp.dir);
    itest_terminate(&mw.meta, "meta-sender", fx->camp.dir);
    /* the status webhooks of the last sends reach ingest before it stops */
    itest_sleep_ms(1500);
    itest_terminate(&fx->ingest, "ingest", fx->camp.dir);
    itest_terminate(&fx->chat_sync, "chat-sync", fx->camp.dir);
    wh_dispatcher_stop(&fx->wh);
}

static void start_services(void)
{
    agent_start_chat_sync(fx);
    agent_start_dispatcher(fx);
    meta_world_restart_ingest();
    camp_start_sender(&fx->camp, 0, NULL);
    meta_world_start_meta_sender();
}

static void restores_and_replays_once(void **state)
{
    (void)state;
    own_database_up();
    world w;
    memset(&w, 0, sizeof w);
    meta_world_prepare("drill", META_WORLD_PACED);
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

    /* before T: the Meta campaign starts and runs across it */
    w.meta_campaign = meta_world_start_campaign(CAMPAIGN_CONTACTS);
    int64_t group = camp_audience(&fx->camp, mw.ws, CAMPAIGN_CONTACTS, 63);
    w.webjs_campaign = camp_campaign(&fx->camp, mw.ws, group, w.webjs_account,
                                     "Halo {{first_name}}", "draft", NULL);
    traffic(&w, "before");
    agent_wait(fx, WEBJS_INBOUND + META_INBOUND, 90,
               "SELECT count(*) FROM chats WHERE wam_id LIKE '%%before-%%'");
    for (int i = 0; i < 600; i++) {
        if (agent_int(fx, "SELECT count(*) FROM campaign_logs WHERE campaign_id = %lld AND "
                          "status NOT IN ('pending', 'queued')", (long long)w.meta_campaign) >= 20)
            break;
        itest_sleep_ms(50);
    }
    char *t = itest_pg_textf(fx->camp.pg, "SELECT now()::text");
    itest_sleep_ms(1100);
    int64_t campaign_sends_at_t =
        agent_int(fx, "SELECT count(*) FROM campaign_logs WHERE status IN ('sent', 'delivered', "
                      "'read')");

    /* after T: the webjs campaign starts (the replay starts it again) */
    camp_command(&fx->camp, mw.ws, w.webjs_campaign, "start", "itest");
    traffic(&w, "after");
    settle(&w);
    int64_t after_t = agent_int(fx, "SELECT count(*) FROM chats WHERE created_at > '%s'", t);
    int64_t stored_after =
        agent_int(fx, "SELECT count(*) FROM chats WHERE wam_id LIKE '%%after-%%'");
    assert_int_equal(stored_after, WEBJS_INBOUND + META_INBOUND);
    char *chats_before = chats_snapshot(), *contacts_before = contacts_snapshot();
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
    assert_true(agent_int(fx, "SELECT count(*) FROM restore_fence_offsets") > 0);
    start_services();
    agent_wait(fx, 1, 120, "SELECT count(*) FROM restore_fences WHERE lifted_at IS NOT NULL");
    char *chats_after = NULL;
    for (int i = 0; i < 1200; i++) {
        free(chats_after);
        chats_after = chats_snapshot();
        if (strcmp(chats_after, chats_before) == 0)
            break;
        itest_sleep_ms(100);
    }
    int64_t replayed = bz_monotonic_ms();
    settle(&w);
    /* anything sent twice has had its time to show */
    itest_sleep_ms(2000);

    size_t graph_after = graph_accepted(), gateway_after = gateway_sends(), same_row;
    received after;
    receive_all(&after);
    size_t new_ids = webhooks_under_new_ids(&before, &same_row);
    double proven = wh_metric(mw.meta_admin_port, "blazz_meta_sender_proven_sent_total");
    print_message("restore drill: %lld rows after T (%d inbound messages), re-stored %lld once "
                  "each; campaign sends at T %lld of %d; sends at the gateway %zu before, %zu "
                  "after; at Meta %zu before, %zu after; meta-sender found %.0f sends already "
                  "made; webhooks: %zu deliveries before, %zu after the restore, %zu under a "
                  "new webhook-id (%zu of them message.created of a row the receiver knew); "
                  "recovery: restore and WAL replay %.1f s, Kafka replay until the "
                  "chats table was whole %.1f s\n",
                  (long long)after_t, WEBJS_INBOUND + META_INBOUND,
                  (long long)agent_int(fx, "SELECT count(*) FROM chats WHERE wam_id LIKE "
                                           "'%%after-%%'"),
                  (long long)campaign_sends_at_t, 2 * CAMPAIGN_CONTACTS, gateway_before,
                  gateway_after, graph_before, graph_after, proven, before.deliveries,
                  after.deliveries, new_ids + same_row, same_row, (double)(restored - started) / 1000.0,
                  (double)(replayed - restored) / 1000.0);
    char *contacts_after = contacts_snapshot();
    assert_int_equal(print_differences("a chats row", chats_before, chats_after), 0);
    assert_int_equal(print_differences("a contact", contacts_before, contacts_after), 0);
    assert_int_equal(gateway_after, gateway_before);
    assert_int_equal(graph_after, graph_before);
    assert_int_equal(new_ids, 0);
    assert_true(after.deliveries > before.deliveries);
    assert_true(proven > 0);
    camp_assert_counters_exact(&fx->camp, w.meta_campaign);
    camp_assert_counters_exact(&fx->camp, w.webjs_campaign);
    json_decref(before.ids);
    json_decref(before.rows);
    json_decref(after.ids);
    json_decref(after.rows);
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
