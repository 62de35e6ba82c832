/*
 * test_history_limits.c - seed 002's initial sync under the backbone's
 * limits (issue 55), on the real stack: chat-sync sends its history_sync
 * settings with every CREATE and RESTART, a gateway instance
 * (blazz-gateway-sim --mode instance, a phone of 40 chats of 8 messages,
 * chat i last active i * 47 minutes before the connect) chooses and paces
 * the chats by them, and what the CRM reads is what they let through:
 *
 *  - max_chats 25, the last 5 messages a chat, 10 chats a batch at 50 a
 *    second: the 25 newest chats, 5 messages each (the last), the run
 *    completed in whatsapp_accounts.metadata with its counts, its 3
 *    batches and a duration no shorter than the pace allows; a session
 *    the CRM created with history_sync false (whatsapp_accounts.sync_enabled
 *    false) connects and syncs nothing, and once switched on
 *    (POST /v1/sessions/{id}/history-sync) and restarted syncs its 25;
 *  - window_days 1 and no chat limit: the 31 chats active in the last day.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "itest.h"
#include "session_itest.h"

#define PHONE_CHATS 40
#define PHONE_MESSAGES 8

static sess_fx *fx;

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

#define sess_int(...) itest_pg_int64f(fx->a.camp.pg, __VA_ARGS__)

/* chat-sync under limits, ingest, one instance whose phone holds
 * PHONE_CHATS chats and scans at once; the workspace's API key (heap). */
static char *stack_with_limits(const char *max_chats, const char *window_days)
{
    const char *limits[] = {max_chats, window_days, "BLAZZ_HISTORY_SYNC_MESSAGES_PER_CHAT=5",
                            "BLAZZ_HISTORY_SYNC_BATCH_CHATS=10",
                            "BLAZZ_HISTORY_SYNC_CHATS_PER_SECOND=50", NULL};
    sess_start_chat_sync_env(fx, 30, limits);
    agent_start_ingest(&fx->a, NULL);
    sess_instance how = {.index = 0, .capacity = 10, .heartbeat_ms = 1000, .lease_ms = 8000,
                         .scan_after_ms = 1, .phone_chats = PHONE_CHATS,
                         .history_messages = PHONE_MESSAGES};
    sess_start_instance(fx, &how);
    sess_wait_live(fx, 1);
    return agent_api_key(&fx->a, fx->a.wh.workspace_id);
}

/* Create session name<prefix> and wait until its run completed; its
 * whatsapp_accounts.id. */
static int64_t synced_session(const char *key, const char *name, char *id)
{
    sess_create_ok(fx, key, name, id);
    agent_wait(&fx->a, 1, 90,
               "SELECT count(*) FROM whatsapp_accounts WHERE session_id = '%s' AND "
               "metadata->>'sync_status' = 'completed'", id);
    return sess_int("SELECT id FROM whatsapp_accounts WHERE session_id = '%s'", id);
}

static int64_t chats_of(int64_t account)
{
    return sess_int("SELECT count(DISTINCT contact_id) FROM chats WHERE whatsapp_account_id = %lld",
                    (long long)account);
}

static void a_sync_sends_the_newest_chats_and_their_last_messages(void **state)
{
    (void)state;
    sess_fx_init(fx, "hlimits");
    char *key = stack_with_limits("BLAZZ_HISTORY_SYNC_MAX_CHATS=25",
                                  "BLAZZ_HISTORY_SYNC_WINDOW_DAYS=30");

    /* first a session whose history stays out: connected, nothing synced */
    char quiet[128], body[256], resp[512];
    snprintf(quiet, sizeof quiet, "quiet.%s", fx->a.wh.prefix);
    snprintf(body, sizeof body,
             "{\"session_id\": \"%s\", \"gateway_id\": \"sim\", \"history_sync\": false}", quiet);
    assert_int_equal(sess_post(fx, "/v1/sessions", key, body, resp, sizeof resp), 202);
    agent_wait(&fx->a, 1, 60,
               "SELECT count(*) FROM whatsapp_accounts WHERE session_id = '%s' AND "
               "status = 'connected' AND NOT sync_enabled", quiet);

    char id[128];
    int64_t account = synced_session(key, "synced.", id);
    assert_int_equal(chats_of(account), 25);
    /* the newest 25: chats 0..24 of the phone */
    assert_int_equal(sess_int("SELECT count(*) FROM chats c JOIN contacts p ON p.id = c.contact_id "
                              "WHERE c.whatsapp_account_id = %lld AND right(p.phone, 4)::int >= 25",
                              (long long)account), 0);
    /* the last 5 of each chat's 8 */
    assert_int_equal(sess_int("SELECT count(*) FROM chats WHERE whatsapp_account_id = %lld",
                              (long long)account), 25 * 5);
    assert_int_equal(sess_int("SELECT count(*) FROM chats WHERE whatsapp_account_id = %lld AND "
                              "metadata->>'body' ~ '^history [1-3] of'", (long long)account), 0);
    assert_int_equal(sess_int("SELECT count(*) FROM chats WHERE whatsapp_account_id = %lld AND "
                              "metadata->>'body' LIKE 'history 8 of%%'", (long long)account), 25);
    /* the run as the CRM reads it */
    assert_int_equal(sess_int("SELECT (metadata->>'synced_count')::int FROM whatsapp_accounts "
                              "WHERE id = %lld", (long long)account), 25);
    assert_int_equal(sess_int("SELECT (metadata->>'total_count')::int FROM whatsapp_accounts "
                              "WHERE id = %lld", (long long)account), 25);
    assert_int_equal(sess_int("SELECT jsonb_array_length(metadata->'sync_batches') FROM "
                              "whatsapp_accounts WHERE id = %lld", (long long)account), 3);
    /* 10 chats at 50 a second: the next batch 200 ms after, the third 400 */
    int64_t duration = sess_int("SELECT (metadata->>'sync_duration_ms')::bigint FROM "
                                "whatsapp_accounts WHERE id = %lld", (long long)account);
    if (duration < 400)
        fail_msg("3 batches of 10 chats at 50 a second took %lld ms", (long long)duration);
    assert_int_equal(sess_int("SELECT count(*) FROM whatsapp_accounts WHERE id = %lld AND "
                              "metadata ? 'sync_started_at' AND metadata ? 'last_sync_at' AND "
                              "sync_enabled", (long long)account), 1);

    /* the quiet one, connected before it, synced nothing */
    assert_int_equal(sess_int("SELECT count(*) FROM chats c JOIN whatsapp_accounts a ON "
                              "a.id = c.whatsapp_account_id WHERE a.session_id = '%s'", quiet), 0);
    assert_int_equal(sess_int("SELECT count(*) FROM whatsapp_accounts WHERE session_id = '%s' "
                              "AND metadata ? 'sync_status'", quiet), 0);
    print_message("max_chats 25: 25 chats of 40, 5 messages each, 3 batches in %lld ms; "
                  "history_sync false: nothing\n", (long long)duration);

    /* switched on afterwards and restarted: its next connect syncs */
    char path[256], switch_path[288];
    snprintf(path, sizeof path, "/v1/sessions/%s", quiet);
    snprintf(switch_path, sizeof switch_path, "%s/history-sync", path);
    json_t *doc = agent_expect_answer(&fx->a, "GET", path, key, NULL, 200);
    assert_true(json_is_false(json_object_get(doc, "history_sync")));
    json_decref(doc);
    agent_expect_refused(&fx->a, "POST", switch_path, key, "{}", 400, "missing_field",
                         "history_sync");
    json_decref(agent_expect_answer(&fx->a, "POST", switch_path, key,
                                    "{\"history_sync\": true}", 202));
    agent_wait(&fx->a, 1, 60, "SELECT count(*) FROM whatsapp_accounts WHERE session_id = '%s' "
                              "AND sync_enabled", quiet);
    doc = agent_expect_answer(&fx->a, "GET", path, key, NULL, 200);
    assert_true(json_is_true(json_object_get(doc, "history_sync")));
    json_decref(doc);
    char restart_path[288];
    snprintf(restart_path, sizeof restart_path, "%s/restart", path);
    json_decref(agent_expect_answer(&fx->a, "POST", restart_path, key, NULL, 202));
    agent_wait(&fx->a, 1, 90,
               "SELECT count(*) FROM whatsapp_accounts WHERE session_id = '%s' AND "
               "metadata->>'sync_status' = 'completed'", quiet);
    assert_int_equal(chats_of(sess_int("SELECT id FROM whatsapp_accounts WHERE session_id = "
                                       "'%s'", quiet)),
                     25);
    /* and off again: the column, which the next connect obeys */
    json_decref(agent_expect_answer(&fx->a, "POST", switch_path, key,
                                    "{\"history_sync\": false}", 202));
    agent_wait(&fx->a, 1, 60, "SELECT count(*) FROM whatsapp_accounts WHERE session_id = '%s' "
                              "AND NOT sync_enabled", quiet);
    free(key);
}

static void a_sync_keeps_to_its_window(void **state)
{
    (void)state;
    sess_fx_init(fx, "hwindow");
    char *key = stack_with_limits("BLAZZ_HISTORY_SYNC_MAX_CHATS=0",
                                  "BLAZZ_HISTORY_SYNC_WINDOW_DAYS=1");
    char id[128];
    int64_t account = synced_session(key, "window.", id);
    /* chat i was last active i * 47 minutes ago: 0..30 within 1,440 */
    assert_int_equal(chats_of(account), 31);
    assert_int_equal(sess_int("SELECT (metadata->>'total_count')::int FROM whatsapp_accounts "
                              "WHERE id = %lld", (long long)account), 31);
    assert_int_equal(sess_int("SELECT count(*) FROM chats c JOIN contacts p ON p.id = c.contact_id "
                              "WHERE c.whatsapp_account_id = %lld AND right(p.phone, 4)::int >= 31",
                              (long long)account), 0);
    free(key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_sync_sends_the_newest_chats_and_their_last_messages,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(a_sync_keeps_to_its_window, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
