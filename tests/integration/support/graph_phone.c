/*
 * graph_phone.c - the webhook values Meta posts when something happens on
 * the phones of a number beside the messages it carries (graph_phone.h),
 * shaped as Meta's webhook references show them:
 *  - smb_message_echoes (coexistence: the number is also in the WhatsApp
 *    Business app): message_echoes[] with `from` the business's display
 *    number, `to` the customer, the message's id, timestamp, type and the
 *    type's object, and no contacts[];
 *  - calls (the Calling API's user-initiated call): a `connect` with the
 *    caller in contacts[] and the offer's SDP, then a `terminate` with the
 *    outcome (COMPLETED), start_time, end_time and duration;
 *  - history (coexistence: the chat history shared at onboarding):
 *    history[] chunks with metadata.phase, chunk_order and progress, and
 *    threads[] of one customer each (id, the customer's digits) whose
 *    messages name `from` (`to` too for the business's own), id,
 *    timestamp, type, the type's object and history_context.status;
 *  - user_preferences (a user stops or resumes the business's marketing
 *    messages): the user in contacts[] and user_preferences[] by wa_id
 *    and/or user_id (a username user by the BSUID alone), with detail,
 *    category marketing_messages, value and timestamp;
 *  - smb_app_state_sync (the owner's address book in the app): state_sync[]
 *    of type contact, the contact's full_name, first_name (an add's) and
 *    phone_number, the action (add, remove) and metadata.timestamp;
 *  - the Groups API's four fields (a group the number is in: made or
 *    deleted, members joining, asking to join or leaving, its settings
 *    changed, suspended by Meta): groups[] items of the types Meta's
 *    Groups webhook reference lists for the field, each with its
 *    group_id, type and timestamp, and the type's own members as given.
 * Timestamps are Unix seconds as strings, as Meta sends them. The ids are
 * made up per number and counted, so each is new while the server runs.
 */
#include "graph_phone.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static atomic_long echoes, calls, history_messages;

static const char *text_of(json_t *req, const char *key)
{
    const char *v = json_string_value(json_object_get(req, key));
    return v && *v ? v : NULL;
}

/* A change's value as every field of a number carries it: the product and
 * the number's metadata; NULL when req names no number. */
static json_t *value_of_number(json_t *req, const char **display)
{
    const char *pnid = text_of(req, "phone_number_id");
    if (!pnid)
        return NULL;
    *display = text_of(req, "display_phone_number");
    if (!*display)
        *display = pnid;
    return json_pack("{s:s, s:{s:s, s:s}}", "messaging_product", "whatsapp", "metadata",
                     "display_phone_number", *display, "phone_number_id", pnid);
}

json_t *gp_echo_value(json_t *req, long long now, char *id, size_t cap, const char **why)
{
    const char *to = text_of(req, "to"), *text = text_of(req, "text"), *display = NULL;
    json_t *value = to && text ? value_of_number(req, &display) : NULL;
    if (!value) {
        *why = "phone_number_id, to and text are required";
        return NULL;
    }
    snprintf(id, cap, "wamid.E%s_%ld", text_of(req, "phone_number_id"),
             atomic_fetch_add(&echoes, 1) + 1);
    char ts[24];
    snprintf(ts, sizeof ts, "%lld", now);
    json_object_set_new(value, "message_echoes",
                        json_pack("[{s:s, s:s, s:s, s:s, s:s, s:{s:s}}]", "from", display, "to",
                                  to, "id", id, "timestamp", ts, "type", "text", "text", "body",
                                  text));
    return value;
}

/* req.timestamp (Unix seconds) as Meta's string, else now. */
static void timestamp_of(json_t *req, long long now, char *ts, size_t cap)
{
    json_t *at = json_object_get(req, "timestamp");
    snprintf(ts, cap, "%lld", json_is_integer(at) ? (long long)json_integer_value(at) : now);
}

json_t *gp_preference_value(json_t *req, long long now, const char **why)
{
    const char *wa_id = text_of(req, "wa_id"), *user_id = text_of(req, "user_id");
    const char *choice = text_of(req, "value"), *display = NULL;
    int known = choice && (strcmp(choice, "stop") == 0 || strcmp(choice, "resume") == 0);
    json_t *value = known && (wa_id || user_id) ? value_of_number(req, &display) : NULL;
    if (!value) {
        *why = "phone_number_id, wa_id or user_id, and value (stop, resume) are required";
        return NULL;
    }
    char ts[24], detail[64];
    timestamp_of(req, now, ts, sizeof ts);
    snprintf(detail, sizeof detail, "User requested to %s marketing messages", choice);
    json_t *contact = json_pack("{s:{s:s}}", "profile", "name", "Ani");
    json_t *item = json_pack("{s:s, s:s, s:s, s:s}", "detail", detail, "category",
                             "marketing_messages", "value", choice, "timestamp", ts);
    const char *keys[] = {"wa_id", "user_id"}, *ids[] = {wa_id, user_id};
    for (int i = 0; i < 2; i++)
        if (ids[i]) {
            json_object_set_new(contact, keys[i], json_string(ids[i]));
            json_object_set_new(item, keys[i], json_string(ids[i]));
        }
    json_object_set_new(value, "contacts", json_pack("[o]", contact));
    json_object_set_new(value, "user_preferences", json_pack("[o]", item));
    return value;
}

json_t *gp_volume_tier_value(json_t *req, long long now, const char **why)
{
    const char *month = text_of(req, "effective_month"), *category = text_of(req, "pricing_category");
    const char *region = text_of(req, "region"), *tier = text_of(req, "tier");
    if (!month || !category || !region || !tier) {
        *why = "effective_month, pricing_category, region and tier are required";
        return NULL;
    }
    return json_pack("{s:s, s:{s:s, s:s, s:s, s:s, s:I}}", "event",
                     "VOLUME_BASED_PRICING_TIER_UPDATE", "volume_tier_info", "effective_month",
                     month, "pricing_category", category, "region", region, "tier", tier,
                     "tier_update_time", (json_int_t)now);
}

json_t *gp_address_book_value(json_t *req, long long now, const char **why)
{
    const char *phone = text_of(req, "phone"), *action = text_of(req, "action"), *display = NULL;
    int known = action && (strcmp(action, "add") == 0 || strcmp(action, "remove") == 0);
    json_t *value = known && phone ? value_of_number(req, &display) : NULL;
    if (!value) {
        *why = "phone_number_id, phone and action (add, remove) are required";
        return NULL;
    }
    char ts[24];
    timestamp_of(req, now, ts, sizeof ts);
    json_t *contact = json_pack("{s:s}", "phone_number", phone);
    const char *names[] = {"full_name", "first_name"};
    for (int i = 0; i < 2 && strcmp(action, "add") == 0; i++)
        if (text_of(req, names[i]))
            json_object_set_new(contact, names[i], json_string(text_of(req, names[i])));
    json_object_set_new(value, "state_sync",
                        json_pack("[{s:s, s:o, s:s, s:{s:s}}]", "type", "contact", "contact",
                                  contact, "action", action, "metadata", "timestamp", ts));
    return value;
}

/* One item of calls[]: what every report of the call names. */
static json_t *call_item(const char *id, const char *from, const char *to, const char *event,
                         long long at)
{
    char ts[24];
    snprintf(ts, sizeof ts, "%lld", at);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "id", id, "from", from, "to", to, "event",
                     event, "timestamp", ts, "direction", "USER_INITIATED");
}

int gp_call_values(json_t *req, long long now, json_t **connect, json_t **terminate, char *id,
                   size_t cap, const char **why)
{
    const char *from = text_of(req, "from"), *name = text_of(req, "name"), *display = NULL;
    json_t *duration = json_object_get(req, "duration");
    *connect = *terminate = NULL;
    if (!from || !json_is_integer(duration) || json_integer_value(duration) < 0 ||
        json_integer_value(duration) > 86400 || !(*connect = value_of_number(req, &display))) {
        *why = "phone_number_id, from and duration (0-86400 seconds) are required";
        return 0;
    }
    *terminate = json_deep_copy(*connect);
    snprintf(id, cap, "wacid.C%s_%ld", text_of(req, "phone_number_id"),
             atomic_fetch_add(&calls, 1) + 1);
    long long start = now - (long long)json_integer_value(duration);
    json_t *rings = call_item(id, from, display, "connect", start);
    json_object_set_new(rings, "session",
                        json_pack("{s:s, s:s}", "sdp_type", "offer", "sdp", "<RFC 8866 SDP>"));
    json_object_set_new(*connect, "contacts",
                        json_pack("[{s:{s:s}, s:s}]", "profile", "name", name ? name : from,
                                  "wa_id", from));
    json_object_set_new(*connect, "calls", json_pack("[o]", rings));
    json_t *ends = call_item(id, from, display, "terminate", now);
    json_object_set_new(*terminate, "calls", json_pack("[o]", ends));
    if (json_is_false(json_object_get(req, "answered"))) {
        /* rang out: Meta's terminate is FAILED and, never started, has no
         * start, end nor length */
        json_object_set_new(ends, "status", json_string("FAILED"));
        return 1;
    }
    char start_ts[24], end_ts[24];
    snprintf(start_ts, sizeof start_ts, "%lld", start);
    snprintf(end_ts, sizeof end_ts, "%lld", now);
    json_object_set_new(ends, "status", json_string("COMPLETED"));
    json_object_set_new(ends, "start_time", json_string(start_ts));
    json_object_set_new(ends, "end_time", json_string(end_ts));
    json_object_set(ends, "duration", duration);
    return 1;
}

/* One message of a history thread, read on the phone. */
static json_t *history_message(const char *pnid, const char *from, const char *to,
                               long long at, const char *text)
{
    char id[96], ts[24];
    snprintf(id, sizeof id, "wamid.H%s_%ld", pnid, atomic_fetch_add(&history_messages, 1) + 1);
    snprintf(ts, sizeof ts, "%lld", at);
    json_t *m = json_pack("{s:s, s:s, s:s, s:s, s:{s:s}, s:{s:s}}", "from", from, "id", id,
                          "timestamp", ts, "type", "text", "text", "body", text,
                          "history_context", "status", "READ");
    if (to)
        json_object_set_new(m, "to", json_string(to));
    return m;
}

int gp_history_values(json_t *req, long long now, json_t *values[GP_HISTORY_PHASES], char *id,
                      size_t cap, const char **why)
{
    static const long long days_before[GP_HISTORY_PHASES] = {0, 30, 120};
    json_t *customers = json_object_get(req, "customers");
    const char *pnid = text_of(req, "phone_number_id"), *display = NULL;
    size_t n = json_array_size(customers), i;
    json_t *customer;
    int valid = pnid && n >= 1 && n <= 50;
    json_array_foreach(customers, i, customer)
        valid = valid && json_string_length(customer) > 0;
    for (int p = 0; p < GP_HISTORY_PHASES; p++)
        values[p] = valid ? value_of_number(req, &display) : NULL;
    if (!valid) {
        *why = "phone_number_id and customers (1 to 50 phone numbers) are required";
        return 0;
    }
    snprintf(id, cap, "meta-history:%s", pnid);
    for (int p = 0; p < GP_HISTORY_PHASES; p++) {
        long long asked = now - days_before[p] * 86400 - 3600;
        json_t *threads = json_array();
        json_array_foreach(customers, i, customer) {
            const char *digits = json_string_value(customer);
            json_array_append_new(
                threads,
                json_pack("{s:s, s:[o, o]}", "id", digits, "messages",
                          history_message(pnid, display, digits, asked + 60, "We open at 9."),
                          history_message(pnid, digits, NULL, asked, "When do you open?")));
        }
        json_object_set_new(values[p], "history",
                            json_pack("[{s:{s:i, s:i, s:i}, s:o}]", "metadata", "phase", p,
                                      "chunk_order", 1, "progress", p == 2 ? 100 : 33 * (p + 1),
                                      "threads", threads));
    }
    return 1;
}

/* The group webhook fields and the item types Meta's reference lists for
 * each. */
static const struct {
    const char *field;
    const char *types[5];
} group_fields[] = {
    {"group_lifecycle_update", {"group_create", "group_delete", NULL}},
    {"group_participants_update",
     {"group_participants_add", "group_participants_remove", "group_join_request_created",
      "group_join_request_revoked", NULL}},
    {"group_settings_update", {"group_settings_update", NULL}},
    {"group_status_update", {"group_suspend", "group_suspend_cleared", NULL}},
};

/* The index of field in group_fields, -1 when it is none. */
static int group_field(const char *field)
{
    for (size_t i = 0; field && i < sizeof group_fields / sizeof group_fields[0]; i++)
        if (strcmp(field, group_fields[i].field) == 0)
            return (int)i;
    return -1;
}

/* Whether item is one of field k's: a group_id, a type of the field, and
 * a timestamp (Unix seconds, a string of digits or a number: Meta's
 * samples print both). */
static int group_item_ok(int k, json_t *item)
{
    const char *type = text_of(item, "type");
    json_t *at = json_object_get(item, "timestamp");
    const char *ts = json_string_value(at);
    int dated = json_is_integer(at) || (ts && *ts && strspn(ts, "0123456789") == strlen(ts));
    if (!text_of(item, "group_id") || !type || !dated)
        return 0;
    for (size_t i = 0; group_fields[k].types[i]; i++)
        if (strcmp(type, group_fields[k].types[i]) == 0)
            return 1;
    return 0;
}

json_t *gp_group_value(json_t *req, const char **field, const char **why)
{
    *field = text_of(req, "field");
    int k = group_field(*field);
    json_t *groups = json_object_get(req, "groups"), *item;
    size_t i;
    const char *display = NULL;
    if (k < 0 || !json_is_array(groups) || json_array_size(groups) == 0) {
        *why = "phone_number_id, field (a group webhook field) and groups[] are required";
        return NULL;
    }
    json_array_foreach(groups, i, item) {
        if (!group_item_ok(k, item)) {
            *why = "each groups[] item needs group_id, a type of its field and a timestamp";
            return NULL;
        }
    }
    json_t *value = value_of_number(req, &display);
    if (!value) {
        *why = "phone_number_id, field (a group webhook field) and groups[] are required";
        return NULL;
    }
    json_object_set_new(value, "groups", json_deep_copy(groups));
    return value;
}
