/*
 * test_crm_routes.c - the CRM's route table (services/ingest/crm/
 * crm_routes.h): each path and method to its handler, and for a method a
 * path does not take, the methods it does (a 405's Allow):
 *  - the commands are POST, the reads GET, /v1/sessions both;
 *  - an id path takes one segment: /v1/messages/{id}/more is no route, and
 *    of /v1/contacts/{id}/... only messages and calls (GET) and merge
 *    (POST) are, of /v1/groups/{id}/... messages (GET), and of
 *    /v1/webhook-endpoints/{id}/... deliveries (GET) and replay (POST);
 *  - a path of no route names no method (a 404, not a 405).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "crm/crm_api_keys.h"
#include "crm/crm_calls.h"
#include "crm/crm_contact_writes.h"
#include "crm/crm_contacts.h"
#include "crm/crm_conversations.h"
#include "crm/crm_groups.h"
#include "crm/crm_messages.h"
#include "crm/crm_reads.h"
#include "crm/crm_routes.h"
#include "crm/crm_sessions.h"
#include "crm/crm_webhook_writes.h"
#include "crm/crm_webhooks.h"

static void assert_route(const char *method, const char *url, ing_crm_handler_fn want)
{
    char allow[32];
    ing_crm_handler_fn got = ing_crm_route_of(url, method, allow, sizeof allow);
    if (got != want)
        fail_msg("%s %s: not the handler expected", method, url);
}

static void assert_allow(const char *method, const char *url, const char *want)
{
    char allow[32];
    assert_null(ing_crm_route_of(url, method, allow, sizeof allow));
    assert_string_equal(allow, want);
}

static void each_path_and_method_has_its_handler(void **state)
{
    (void)state;
    assert_route("POST", "/v1/messages", ing_crm_accept_send);
    assert_route("GET", "/v1/messages/3f6c1b2a-9d4e-4f5a-8b7c-6d5e4f3a2b1c", ing_crm_read_message);
    assert_route("POST", "/v1/chats/read", ing_crm_accept_read);
    assert_route("GET", "/v1/sessions", ing_crm_read_sessions);
    assert_route("POST", "/v1/sessions", ing_crm_accept_session);
    assert_route("GET", "/v1/sessions/ws12-sales-2", ing_crm_read_session);
    assert_route("POST", "/v1/sessions/ws12-sales-2/restart", ing_crm_accept_session);
    assert_route("POST", "/v1/sessions/ws12-sales-2/primary", ing_crm_accept_session);
    assert_route("GET", "/v1/contacts", ing_crm_find_contact);
    assert_route("GET", "/v1/contacts/3f6c1b2a-9d4e-4f5a-8b7c-6d5e4f3a2b1c", ing_crm_read_contact);
    assert_route("GET", "/v1/contacts/41", ing_crm_read_contact);
    assert_route("GET", "/v1/contacts/41/messages", ing_crm_read_contact_messages);
    assert_route("GET", "/v1/contacts/41/calls", ing_crm_read_contact_calls);
    assert_route("POST", "/v1/contacts", ing_crm_create_contact);
    assert_route("PATCH", "/v1/contacts/41", ing_crm_change_contact);
    assert_route("POST", "/v1/contacts/41/merge", ing_crm_merge_contacts);
    assert_route("GET", "/v1/conversations", ing_crm_read_conversations);
    assert_route("GET", "/v1/groups/9/messages", ing_crm_read_group_messages);
    assert_route("GET", "/v1/webhook-endpoints", ing_crm_read_endpoints);
    assert_route("POST", "/v1/webhook-endpoints", ing_crm_create_endpoint);
    assert_route("GET", "/v1/webhook-endpoints/7/deliveries", ing_crm_read_deliveries);
    assert_route("PATCH", "/v1/webhook-endpoints/7", ing_crm_change_endpoint);
    assert_route("DELETE", "/v1/webhook-endpoints/7", ing_crm_delete_endpoint);
    assert_route("POST", "/v1/webhook-endpoints/7/replay", ing_crm_replay_deliveries);
    assert_route("POST", "/v1/webhook-endpoints/7/rotate-secret", ing_crm_rotate_endpoint_secret);
    assert_route("GET", "/v1/api-keys", ing_crm_read_api_keys);
    assert_route("DELETE", "/v1/api-keys/k3y0f1nterest000", ing_crm_revoke_api_key);
}

static void another_method_names_the_ones_the_path_takes(void **state)
{
    (void)state;
    assert_allow("GET", "/v1/messages", "POST");
    assert_allow("PUT", "/v1/messages/3f6c1b2a-9d4e-4f5a-8b7c-6d5e4f3a2b1c", "GET");
    assert_allow("DELETE", "/v1/sessions", "GET, POST");
    assert_allow("POST", "/v1/sessions/ws12-sales-2", "GET");
    assert_allow("GET", "/v1/sessions/ws12-sales-2/logout", "POST");
    assert_allow("PUT", "/v1/contacts", "GET, POST");
    assert_allow("DELETE", "/v1/contacts/41", "GET, PATCH");
    assert_allow("POST", "/v1/contacts/41/messages", "GET");
    assert_allow("POST", "/v1/contacts/41/calls", "GET");
    assert_allow("GET", "/v1/contacts/41/merge", "POST");
    assert_allow("POST", "/v1/conversations", "GET");
    assert_allow("DELETE", "/v1/groups/9/messages", "GET");
    assert_allow("PUT", "/v1/webhook-endpoints", "GET, POST");
    assert_allow("GET", "/v1/webhook-endpoints/7", "PATCH, DELETE");
    assert_allow("GET", "/v1/webhook-endpoints/7/replay", "POST");
    assert_allow("GET", "/v1/webhook-endpoints/7/rotate-secret", "POST");
    assert_allow("POST", "/v1/webhook-endpoints/7/deliveries", "GET");
    assert_allow("POST", "/v1/api-keys", "GET");
    assert_allow("GET", "/v1/api-keys/k3y0f1nterest000", "DELETE");
}

static void paths_of_no_route_name_no_method(void **state)
{
    (void)state;
    assert_allow("GET", "/v1/messages/abc/more", "");
    assert_allow("GET", "/v1/messages/", "");
    assert_allow("GET", "/v1/sessions/", "");
    assert_allow("POST", "/v1/nothing", "");
    assert_allow("GET", "/v1/contacts/", "");
    assert_allow("GET", "/v1/contacts//messages", "");
    assert_allow("GET", "/v1/contacts/41/messages/", "");
    assert_allow("GET", "/v1/contacts/41/groups", "");
    assert_allow("GET", "/v1/contacts/41/messages/more", "");
    assert_allow("GET", "/v1/contacts//calls", "");
    assert_allow("GET", "/v1/contacts/41/calls/", "");
    assert_allow("POST", "/v1/contacts//merge", "");
    assert_allow("POST", "/v1/contacts/41/merge/", "");
    assert_allow("GET", "/v1/conversations/7", "");
    assert_allow("GET", "/v1/groups/9", "");
    assert_allow("GET", "/v1/groups//messages", "");
    assert_allow("GET", "/v1/groups/9/messages/", "");
    assert_allow("PATCH", "/v1/webhook-endpoints/", "");
    assert_allow("POST", "/v1/webhook-endpoints//replay", "");
    assert_allow("POST", "/v1/webhook-endpoints/7/replay/", "");
    assert_allow("DELETE", "/v1/api-keys/", "");
    assert_allow("DELETE", "/v1/api-keys/k3y0f1nterest000/x", "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(each_path_and_method_has_its_handler),
        cmocka_unit_test(another_method_names_the_ones_the_path_takes),
        cmocka_unit_test(paths_of_no_route_name_no_method),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
