/*
 * test_meta_calls.c - WhatsApp calls on a Meta Cloud API number (issue 53,
 * calls), over the real chain (ingest's Meta edge, chat-sync, PostgreSQL,
 * webhook-dispatcher).
 *  - calls_are_stored_once_and_announced: Meta's `calls` webhooks, signed
 *    as Meta signs them, as its Calling API pages show them: a customer's
 *    call whose terminate (COMPLETED, its times and length) arrives before
 *    its connect, then the connect, then the connect again (Meta
 *    redelivers); a call the business placed to the same customer:
 *    connect, ACCEPTED twice, terminate; a call from a username customer
 *    (BSUID only) that only connected. Each call is one calls row, its
 *    customer the contact a message of theirs would have (one by phone
 *    and BSUID, one by BSUID alone), the terminate's outcome kept against
 *    the later connect; the CRM's role reads the rows of its workspace;
 *    each fact that made or moved a row is one call.updated, a repeated
 *    one none; nothing is dead-lettered. The CRM's API answers each
 *    customer's calls as their rows say, newest first, a page of one at
 *    a time to the end (GET /v1/contacts/{contact_id}/calls, by the
 *    contact's uuid and its id), and refuses another workspace's key, an
 *    unknown contact and a cursor it never answered.
 *  - a_missed_call_is_an_inbound_call_never_started: the Graph test
 *    server plays a customer whose call rang out, nobody answering
 *    (POST /_call, "answered": false: the connect, then Meta's terminate
 *    FAILED without start, end or length). The row and the CRM's event
 *    say it as a missed call reads: inbound, failed, connected (it rang),
 *    never started, no length; two call.updated, the terminate's failed.
 * The payloads follow Meta's Calling API webhook reference (user- and
 * business-initiated calls, call status webhooks), not the backbone's
 * code. Every wait polls PostgreSQL with a deadline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent_itest.h"
#include "itest.h"
#include "meta_world.h"

#define fx agent_test_fx
#define mw meta_test_world

#define PHONE "16315553601"
#define BSUID "US.13491208655302741918"
#define NAMELESS "US.99991208655302741918"
#define CALL_IN "wacid.ABGGFjFVU2AfAgo6V-Hc5eCgK5Gh"
#define CALL_OUT "wacid.HBgLMTIxODU1NTI4MjgVAgARGCAyODRQIAFRoA"
#define CALL_USERNAME "wacid.HBgNNjI4MTM2MTkwNTEzMxUCABE"

/* Meta's calls webhook of the world's number carrying `items` (the JSON
 * text of value's "calls" or "statuses" member, and "contacts" when
 * given). */
static void post_calls(const char *items)
{
    char body[4096];
    snprintf(body, sizeof body,
             "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"%s\",\"changes\":"
             "[{\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{"
             "\"display_phone_number\":\"15550783881\",\"phone_number_id\":\"%s\"},%s},"
             "\"field\":\"calls\"}]}]}",
             mw.waba, mw.session, items);
    meta_world_post_webhook(body);
}

/* One call item: its id, event, direction and the rest of its members. */
static void post_call(const char *id, const char *event, const char *direction,
                      const char *members)
{
    char items[2048];
    snprintf(items, sizeof items,
             "\"calls\":[{\"id\":\"%s\",\"event\":\"%s\",\"direction\":\"%s\",%s}]", id, event,
             direction, members);
    post_calls(items);
}

/* The calls row of Meta's call id as "direction|status|contact phone or
 * BSUID|connected|started|ended|duration|error_code". */
static char *stored(const char *call_id)
{
    return itest_pg_textf(
        fx->camp.pg,
        "SELECT concat_ws('|', k.direction, k.status, coalesce(c.phone, ''), "
        "k.connected_at IS NOT NULL, coalesce(extract(epoch FROM k.started_at)::bigint, 0), "
        "coalesce(extract(epoch FROM k.ended_at)::bigint, 0), coalesce(k.duration_s, 0), "
        "coalesce(k.error_code, '')) FROM calls k JOIN contacts c ON c.id = k.contact_id "
        "WHERE k.workspace_id = %lld AND k.meta_call_id = '%s'",
        (long long)mw.ws, call_id);
}

/* The business's call to PHONE, as Meta reports it: connect, ACCEPTED
 * (twice: redelivered), terminate COMPLETED. */
static void business_calls_the_customer(long long now)
{
    char members[512];
    snprintf(members, sizeof members,
             "\"from\":\"15550783881\",\"to\":\"" PHONE "\",\"timestamp\":\"%lld\","
             "\"biz_opaque_callback_data\":\"TRx334DUDFTI4Mj\","
             "\"session\":{\"sdp_type\":\"answer\",\"sdp\":\"<RFC 8866 SDP>\"}",
             now - 60);
    post_call(CALL_OUT, "connect", "BUSINESS_INITIATED", members);
    char accepted[512];
    snprintf(accepted, sizeof accepted,
             "\"statuses\":[{\"id\":\"" CALL_OUT "\",\"timestamp\":\"%lld\",\"type\":\"call\","
             "\"status\":\"ACCEPTED\",\"recipient_id\":\"" PHONE "\"}]",
             now - 58);
    post_calls(accepted);
    post_calls(accepted);
    snprintf(members, sizeof members,
             "\"from\":\"15550783881\",\"to\":\"" PHONE "\",\"timestamp\":\"%lld\","
             "\"status\":\"COMPLETED\",\"start_time\":\"%lld\",\"end_time\":\"%lld\","
             "\"duration\":40",
             now - 10, now - 50, now - 10);
    post_call(CALL_OUT, "terminate", "BUSINESS_INITIATED", members);
}

/* A time column as the CRM's routes write it: ISO 8601 in UTC, rounded
 * to the millisecond as they round it. */
#define ISO(col)                                                                                 \
    "to_char(('epoch'::timestamptz + (extract(epoch FROM " col ") * 1000)::bigint * "           \
    "interval '1 millisecond') AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/* The contact's calls as the CRM's API must answer them, from the rows:
 * newest first, each as the call.updated webhook shows it, with created_at. */
static json_t *calls_as_rows_say(int64_t contact)
{
    char *text = itest_pg_textf(
        fx->camp.pg,
        "SELECT coalesce(json_agg(json_build_object('id', id, 'uuid', uuid, "
        "'call_id', meta_call_id, 'contact_id', contact_id, "
        "'whatsapp_account_id', whatsapp_account_id, 'direction', direction, 'status', status, "
        "'connected_at', " ISO("connected_at") ", 'started_at', " ISO("started_at") ", "
        "'ended_at', " ISO("ended_at") ", 'terminated_at', " ISO("terminated_at") ", "
        "'duration_s', duration_s, 'error_code', error_code, "
        "'error_message', error_message, 'created_at', " ISO("created_at") ") "
        "ORDER BY created_at DESC, id DESC), '[]') FROM calls "
        "WHERE workspace_id = %lld AND contact_id = %lld",
        (long long)mw.ws, (long long)contact);
    json_t *rows = json_loads(text, 0, NULL);
    if (!rows)
        fail_msg("not JSON: %s", text);
    free(text);
    return rows;
}

/* Every page of GET /v1/contacts/{contact}/calls, limit a page, as one
 * array; each page but the last full, the last's next_cursor null. */
static json_t *calls_read(const char *key, const char *contact, int limit)
{
    json_t *all = json_array();
    char path[256], cursor[64] = "";
    for (int page = 0;; page++) {
        assert_true(page < 10);
        snprintf(path, sizeof path, "/v1/contacts/%s/calls?limit=%d%s%s", contact, limit,
                 cursor[0] ? "&cursor=" : "", cursor);
        json_t *doc;
        long status = agent_get_json(fx, path, key, &doc);
        if (status != 200) {
            char *text = json_dumps(doc, 0);
            fail_msg("GET %s: %ld, want 200: %s", path, status, text ? text : "-");
        }
        json_t *list = json_object_get(doc, "calls"), *next = json_object_get(doc, "next_cursor");
        assert_true(json_is_array(list) && json_array_size(list) <= (size_t)limit);
        assert_int_equal(json_array_extend(all, list), 0);
        if (json_is_null(next)) {
            json_decref(doc);
            return all;
        }
        assert_int_equal(json_array_size(list), limit);
        snprintf(cursor, sizeof cursor, "%s", json_string_value(next));
        json_decref(doc);
    }
}

/* The contact's calls read over the CRM's API, by its id and by its uuid,
 * are its rows; want of them. */
static void calls_read_as_rows_say(int64_t contact, size_t want)
{
    json_t *rows = calls_as_rows_say(contact);
    assert_int_equal(json_array_size(rows), want);
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)contact);
    char *uuid = itest_pg_textf(fx->camp.pg, "SELECT uuid FROM contacts WHERE id = %lld",
                                (long long)contact);
    json_t *by_id = calls_read(mw.api_key, id, 1), *by_uuid = calls_read(mw.api_key, uuid, 50);
    if (!json_equal(by_id, rows) || !json_equal(by_uuid, rows)) {
        char *want_text = json_dumps(rows, 0), *got = json_dumps(by_id, 0);
        fail_msg("contact %s's calls: got %s, want %s", id, got ? got : "-",
                 want_text ? want_text : "-");
    }
    json_decref(by_uuid);
    json_decref(by_id);
    json_decref(rows);
    free(uuid);
}

/* GET path with key refused with status, naming reason and field. */
static void calls_refused(const char *path, const char *key, long status, const char *reason,
                          const char *field)
{
    json_t *doc;
    long got = agent_get_json(fx, path, key, &doc);
    const char *r = json_string_value(json_object_get(doc, "error"));
    const char *f = json_string_value(json_object_get(doc, "field"));
    if (got != status || !r || strcmp(r, reason) != 0 || !f || strcmp(f, field) != 0)
        fail_msg("GET %s: %ld %s/%s, want %ld %s/%s", path, got, r ? r : "-", f ? f : "-",
                 status, reason, field);
    json_decref(doc);
}

/* The CRM's API answers the world's calls as their rows say, and refuses
 * what is not the key's or not a page it answered. */
static void calls_read_over_the_api(void)
{
    int64_t customer = agent_int(fx, "SELECT id FROM contacts WHERE workspace_id = %lld AND "
                                     "phone = '+" PHONE "'", (long long)mw.ws);
    int64_t nameless = agent_int(fx, "SELECT id FROM contacts WHERE workspace_id = %lld AND "
                                     "bsuid = '" NAMELESS "'", (long long)mw.ws);
    calls_read_as_rows_say(customer, 2);
    calls_read_as_rows_say(nameless, 1);
    char path[128];
    snprintf(path, sizeof path, "/v1/contacts/%lld/calls", (long long)customer);
    char *stranger = agent_api_key(fx, camp_workspace(&fx->camp));
    calls_refused(path, stranger, 404, "unknown_contact", "contact_id");
    free(stranger);
    calls_refused("/v1/contacts/999999999999/calls", mw.api_key, 404, "unknown_contact",
                  "contact_id");
    calls_refused("/v1/contacts/not-a-contact/calls", mw.api_key, 400, "invalid_field",
                  "contact_id");
    snprintf(path, sizeof path, "/v1/contacts/%lld/calls?cursor=yesterday", (long long)customer);
    calls_refused(path, mw.api_key, 400, "invalid_field", "cursor");
    snprintf(path, sizeof path, "/v1/contacts/%lld/calls?limit=0", (long long)customer);
    calls_refused(path, mw.api_key, 400, "invalid_field", "limit");
}

static void calls_are_stored_once_and_announced(void **state)
{
    (void)state;
    meta_world_start("metacalls", META_WORLD_PACED, NULL);
    agent_endpoint(fx, mw.ws, "/ok/calls");
    agent_start_dispatcher(fx);
    long long now = (long long)time(NULL);
    char members[512];
    /* the terminate first: Meta does not order its webhooks */
    snprintf(members, sizeof members,
             "\"from\":\"" PHONE "\",\"to\":\"15550783881\",\"timestamp\":\"%lld\","
             "\"status\":\"COMPLETED\",\"start_time\":\"%lld\",\"end_time\":\"%lld\","
             "\"duration\":118",
             now - 100, now - 218, now - 100);
    post_call(CALL_IN, "terminate", "USER_INITIATED", members);
    char connect[1024];
    snprintf(connect, sizeof connect,
             "\"contacts\":[{\"profile\":{\"name\":\"Sheena Nelson\"},\"wa_id\":\"" PHONE "\","
             "\"user_id\":\"" BSUID "\"}],\"calls\":[{\"id\":\"" CALL_IN "\",\"from\":\"" PHONE
             "\",\"from_user_id\":\"" BSUID "\",\"to\":\"15550783881\",\"event\":\"connect\","
             "\"timestamp\":\"%lld\",\"direction\":\"USER_INITIATED\",\"session\":{"
             "\"sdp_type\":\"offer\",\"sdp\":\"<RFC 8866 SDP>\"}}]",
             now - 220);
    post_calls(connect);
    post_calls(connect);
    business_calls_the_customer(now);
    snprintf(members, sizeof members,
             "\"from_user_id\":\"" NAMELESS "\",\"to\":\"15550783881\",\"timestamp\":\"%lld\"",
             now - 5);
    post_call(CALL_USERNAME, "connect", "USER_INITIATED", members);

    /* the business's terminate came last on the customer's conversation */
    agent_wait(fx, 1, 90,
               "SELECT count(*) FROM calls WHERE workspace_id = %lld AND meta_call_id = '" CALL_OUT
               "' AND terminated_at IS NOT NULL",
               (long long)mw.ws);
    agent_wait(fx, 3, 90, "SELECT count(*) FROM calls WHERE workspace_id = %lld",
               (long long)mw.ws);
    char expect_in[128], expect_out[128];
    snprintf(expect_in, sizeof expect_in, "inbound|completed|+" PHONE "|t|%lld|%lld|118|",
             now - 218, now - 100);
    snprintf(expect_out, sizeof expect_out, "outbound|completed|+" PHONE "|t|%lld|%lld|40|",
             now - 50, now - 10);
    itest_assert_text(expect_in, stored(CALL_IN));
    itest_assert_text(expect_out, stored(CALL_OUT));
    itest_assert_text("inbound|ringing|" NAMELESS "|t|0|0|0|", stored(CALL_USERNAME));
    /* the customers are the contacts their messages would be: the phone's
     * (which learned its BSUID from the connect) and the username's */
    assert_int_equal(agent_int(fx,
                               "SELECT count(*) FROM contacts WHERE workspace_id = %lld AND "
                               "((phone = '+" PHONE "' AND bsuid = '" BSUID "') OR "
                               "(bsuid = '" NAMELESS "'))",
                               (long long)mw.ws),
                     2);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM contacts WHERE workspace_id = %lld",
                               (long long)mw.ws),
                     2);
    const char *calls = "SELECT count(*) FROM calls";
    assert_int_equal(itest_pg_int64_as_crm(fx->camp.pg, mw.ws, calls), 3);
    assert_int_equal(itest_pg_int64_as_crm(fx->camp.pg, mw.ws + 1000, calls), 0);
    /* one call.updated per fact that moved a row: the inbound call's
     * terminate and connect, the business's connect, ACCEPTED and
     * terminate, the username's connect */
    agent_wait(fx, 6, 60,
               "SELECT count(*) FROM webhook_retry_queue WHERE workspace_id = %lld AND "
               "event_type = 'call.updated' AND status = 'success'",
               (long long)mw.ws);
    assert_int_equal(
        meta_world_webhooks_delivered("call.updated", "b #>> '{data,call,call_id}' = '" CALL_IN "'"),
        2);
    assert_int_equal(meta_world_webhooks_delivered(
                         "call.updated", "b #>> '{data,call,call_id}' = '" CALL_OUT "' AND "
                                         "b #>> '{data,call,direction}' = 'outbound' AND "
                                         "b #>> '{data,contact,phone}' = '+" PHONE "'"),
                     3);
    assert_int_equal(meta_world_webhooks_delivered(
                         "call.updated", "b #>> '{data,event}' = 'terminate' AND "
                                         "b #>> '{data,call,status}' = 'completed'"),
                     2);
    assert_int_equal(agent_int(fx,
                               "SELECT count(*) FROM webhook_retry_queue WHERE workspace_id = "
                               "%lld AND event_type = 'call.updated'",
                               (long long)mw.ws),
                     6);
    assert_int_equal(agent_dead_letter_count(fx), 0);
    calls_read_over_the_api();
}

#define MISSER "16315553602"

static void a_missed_call_is_an_inbound_call_never_started(void **state)
{
    (void)state;
    meta_world_start("metacalls-missed", META_WORLD_PACED, NULL);
    agent_endpoint(fx, mw.ws, "/ok/missed");
    agent_start_dispatcher(fx);
    char body[256];
    snprintf(body, sizeof body,
             "{\"phone_number_id\":\"%s\",\"display_phone_number\":\"15550783881\","
             "\"from\":\"" MISSER "\",\"name\":\"Rina\",\"duration\":25,"
             "\"answered\":false}",
             mw.session);
    meta_world_graph_plays("_call", body);
    agent_wait(fx, 1, 90,
               "SELECT count(*) FROM calls WHERE workspace_id = %lld AND terminated_at IS NOT NULL",
               (long long)mw.ws);
    char *call_id = itest_pg_textf(fx->camp.pg, "SELECT meta_call_id FROM calls WHERE "
                                   "workspace_id = %lld", (long long)mw.ws);
    itest_assert_text("inbound|failed|+" MISSER "|t|0|0|0|", stored(call_id));
    free(call_id);
    meta_world_wait_webhooks("call.updated", 2);
    assert_int_equal(meta_world_webhooks_delivered(
                         "call.updated", "b #>> '{data,event}' = 'terminate' AND "
                                         "b #>> '{data,call,status}' = 'failed' AND "
                                         "b #>> '{data,call,direction}' = 'inbound' AND "
                                         "b #> '{data,call,started_at}' = 'null' AND "
                                         "b #>> '{data,contact,phone}' = '+" MISSER "'"),
                     1);
    assert_int_equal(agent_dead_letter_count(fx), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(calls_are_stored_once_and_announced, agent_test_setup,
                                        meta_world_teardown),
        cmocka_unit_test_setup_teardown(a_missed_call_is_an_inbound_call_never_started,
                                        agent_test_setup, meta_world_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
