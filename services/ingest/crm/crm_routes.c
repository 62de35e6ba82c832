/*
 * crm_routes.c - the CRM's paths and their handlers (see crm_routes.h):
 * one row per path and method. Paths with an id inside are read by the
 * file that serves them (crm_sessions.c's commands, crm_reads.c's,
 * crm_contacts.c's, crm_calls.c's, crm_groups.c's and crm_webhooks.c's reads,
 * crm_contact_writes.c's changes and merges, crm_webhook_writes.c's
 * endpoint creations, changes, deletions, replays and secret rotations,
 * crm_api_keys.c's keys).
 * The methods a path takes are those of its rows, which a 405 names.
 */
#include "crm/crm_routes.h"

#include <stdio.h>
#include <string.h>

#include "crm/crm_api_keys.h"
#include "crm/crm_calls.h"
#include "crm/crm_contact_writes.h"
#include "crm/crm_contacts.h"
#include "crm/crm_conversations.h"
#include "crm/crm_groups.h"
#include "crm/crm_messages.h"
#include "crm/crm_reads.h"
#include "crm/crm_sessions.h"
#include "crm/crm_webhook_writes.h"
#include "crm/crm_webhooks.h"

static int is_messages(const char *url)
{
    return strcmp(url, "/v1/messages") == 0;
}

static int is_chats_read(const char *url)
{
    return strcmp(url, "/v1/chats/read") == 0;
}

static int is_sessions(const char *url)
{
    return strcmp(url, "/v1/sessions") == 0;
}

static int is_contacts(const char *url)
{
    return strcmp(url, "/v1/contacts") == 0;
}

static int is_session_command(const char *url)
{
    return ing_crm_session_route(url, NULL, 0) > ING_CRM_SESSION_CREATE;
}

static const struct {
    int (*matches)(const char *url);
    const char *method;
    ing_crm_handler_fn handler;
} routes[] = {
    {is_messages, "POST", ing_crm_accept_send},
    {ing_crm_is_message_path, "GET", ing_crm_read_message},
    {is_chats_read, "POST", ing_crm_accept_read},
    {is_sessions, "GET", ing_crm_read_sessions},
    {is_sessions, "POST", ing_crm_accept_session},
    {is_session_command, "POST", ing_crm_accept_session},
    {ing_crm_is_session_path, "GET", ing_crm_read_session},
    {is_contacts, "GET", ing_crm_find_contact},
    {is_contacts, "POST", ing_crm_create_contact},
    {ing_crm_is_contact_path, "GET", ing_crm_read_contact},
    {ing_crm_is_contact_path, "PATCH", ing_crm_change_contact},
    {ing_crm_is_contact_merge_path, "POST", ing_crm_merge_contacts},
    {ing_crm_is_contact_messages_path, "GET", ing_crm_read_contact_messages},
    {ing_crm_is_contact_calls_path, "GET", ing_crm_read_contact_calls},
    {ing_crm_is_conversations_path, "GET", ing_crm_read_conversations},
    {ing_crm_is_group_messages_path, "GET", ing_crm_read_group_messages},
    {ing_crm_is_endpoints_path, "GET", ing_crm_read_endpoints},
    {ing_crm_is_endpoints_path, "POST", ing_crm_create_endpoint},
    {ing_crm_is_deliveries_path, "GET", ing_crm_read_deliveries},
    {ing_crm_is_endpoint_path, "PATCH", ing_crm_change_endpoint},
    {ing_crm_is_endpoint_path, "DELETE", ing_crm_delete_endpoint},
    {ing_crm_is_replay_path, "POST", ing_crm_replay_deliveries},
    {ing_crm_is_rotate_secret_path, "POST", ing_crm_rotate_endpoint_secret},
    {ing_crm_is_api_keys_path, "GET", ing_crm_read_api_keys},
    {ing_crm_is_api_key_path, "DELETE", ing_crm_revoke_api_key},
};

ing_crm_handler_fn ing_crm_route_of(const char *url, const char *method, char *allow,
                                    size_t cap)
{
    size_t used = 0;
    allow[0] = '\0';
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (!routes[i].matches(url))
            continue;
        if (strcmp(method, routes[i].method) == 0)
            return routes[i].handler;
        int n = snprintf(allow + used, cap - used, "%s%s", used ? ", " : "", routes[i].method);
        if (n > 0 && (size_t)n < cap - used)
            used += (size_t)n;
    }
    return NULL;
}
