/*
 * vocabulary.c - the words producers use for message types, delivery
 * statuses, session states, disconnect reasons and group actions, mapped to
 * the contract's enums, and the unit of their timestamps (see
 * vocabulary.h).
 *
 * One table a vocabulary, several spellings a value (whatsapp-web.js, the
 * seeds' notifier and Meta each name things their own way), compared
 * without case; the end of a table carries no name.
 */
#include "events/vocabulary.h"

#include <stddef.h>
#include <strings.h>

typedef struct name_value {
    const char *name;
    int value;
} name_value;

static int lookup(const name_value *table, const char *text, int fallback)
{
    if (!text)
        return fallback;
    for (; table->name; table++)
        if (strcasecmp(table->name, text) == 0)
            return table->value;
    return fallback;
}

Blazz__V1__MessageType ing_message_type_from_text(const char *raw)
{
    static const name_value types[] = {
        {"chat", 1}, {"text", 1}, {"image", 2}, {"video", 3}, {"gif", 3}, {"audio", 4},
        {"ptt", 5}, {"voice", 5}, {"document", 6}, {"sticker", 7}, {"location", 8},
        {"live_location", 8}, {"vcard", 9}, {"multi_vcard", 9}, {"contacts", 9},
        {"interactive", 10}, {"list_response", 10}, {"buttons_response", 11}, {"button", 11},
        {"template_button_reply", 11}, {"reaction", 12}, {"template", 13}, {"revoked", 14},
        {"revoke", 14}, {"edit", 17}, {"message_edit", 17}, {"edited", 17},
        {"system", 15}, {"notification", 15}, {"e2e_notification", 15}, {"gp2", 15},
        {"notification_template", 15}, {"call_log", 15}, {"protocol", 15}, {NULL, 0}};
    return (Blazz__V1__MessageType)lookup(types, raw, BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_UNKNOWN);
}

Blazz__V1__DeliveryStatus ing_delivery_status_from_text(const char *text)
{
    static const name_value statuses[] = {
        {"pending", 1}, {"sent", 2}, {"server", 2}, {"delivered", 3}, {"device", 3}, {"read", 4},
        {"played", 5}, {"failed", 6}, {"error", 6}, {NULL, 0}};
    return (Blazz__V1__DeliveryStatus)lookup(statuses, text, 0);
}

Blazz__V1__SessionState ing_session_state_from_text(const char *text)
{
    static const name_value states[] = {
        {"qr_scanning", 1}, {"qr", 1}, {"authenticated", 2}, {"connected", 3}, {"ready", 3},
        {"disconnected", 4}, {"failed", 5}, {"auth_failure", 5}, {NULL, 0}};
    return (Blazz__V1__SessionState)lookup(states, text, 0);
}

Blazz__V1__DisconnectReason ing_disconnect_reason_from_text(const char *text)
{
    static const name_value reasons[] = {
        {"user_initiated", 1}, {"logout", 1}, {"instance_restart", 2}, {"timeout", 3},
        {"error", 4}, {"qr_expired", 5}, {"unknown", 6}, {"credentials_missing", 7},
        {NULL, 0}};
    return (Blazz__V1__DisconnectReason)lookup(reasons, text, 0);
}

Blazz__V1__GroupAction ing_group_action_from_text(const char *text)
{
    static const name_value actions[] = {
        {"created", 1}, {"updated", 2}, {"participants_added", 3}, {"add", 3},
        {"participants_removed", 4}, {"remove", 4}, {"participants_promoted", 5},
        {"promote", 5}, {"participants_demoted", 6}, {"demote", 6}, {"left", 7},
        {"leave", 7}, {"subject", 2}, {"description", 2}, {"picture", 2}, {"settings", 2},
        {"announce", 2}, {"restrict", 2}, {"invite", 2}, {"invite_code", 2}, {NULL, 0}};
    return (Blazz__V1__GroupAction)lookup(actions, text, 0);
}

int64_t ing_timestamp_ms(int64_t value)
{
    return value > 0 && value < 100000000000LL ? value * 1000 : value;
}
