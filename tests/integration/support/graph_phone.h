/*
 * graph_phone.h - what the Graph test server plays on the phones of a
 * number that Meta reports by webhook beside messages (graph_phone.c):
 * the owner's text typed in the WhatsApp Business app (its
 * smb_message_echoes change), a customer's call (its calls changes,
 * connect then terminate), the chat history the owner shares at
 * onboarding (its history changes, three phases), a user's marketing
 * preference (user_preferences), the owner's address book
 * (smb_app_state_sync) and what happens to a group the number is in (the
 * Groups API's webhook fields).
 */
#ifndef GRAPH_PHONE_H
#define GRAPH_PHONE_H

#include <jansson.h>
#include <stddef.h>

/* The value of the smb_message_echoes change that reports the owner's
 * text req.text to the customer req.to (digits) from number
 * req.phone_number_id (display number req.display_phone_number, default
 * the id), sent at `now` (Unix seconds); its new wamid into id. NULL when
 * req lacks one of them (why names it). */
json_t *gp_echo_value(json_t *req, long long now, char *id, size_t cap, const char **why);

/* The values of the two calls changes that report a call the customer
 * req.from (digits; req.name, their profile name, optional) placed to
 * number req.phone_number_id and that lasted req.duration seconds, ending
 * at `now`: connect (at now - duration) into *connect and terminate
 * (COMPLETED; FAILED when req.answered is false) into *terminate; the
 * new call id into id. 0 when req lacks
 * one of them (why names it). */
int gp_call_values(json_t *req, long long now, json_t **connect, json_t **terminate, char *id,
                   size_t cap, const char **why);

/* The value of the user_preferences change that reports the user req.wa_id
 * (digits) and/or req.user_id (BSUID) stopping or resuming (req.value
 * "stop" or "resume") marketing messages from number req.phone_number_id
 * at req.timestamp (Unix seconds; default now). NULL when req lacks one of
 * them (why names it). */
json_t *gp_preference_value(json_t *req, long long now, const char **why);

/* The value of the account_update change that reports the WABA's volume
 * tier (VOLUME_BASED_PRICING_TIER_UPDATE): req.effective_month (YYYY-MM),
 * req.pricing_category, req.region and req.tier (Meta's band), updated
 * `now`. NULL when req lacks one of them (why names it). */
json_t *gp_volume_tier_value(json_t *req, long long now, const char **why);

/* The value of the smb_app_state_sync change that reports the owner adding
 * (or editing; req.action "add") or removing ("remove") the customer
 * req.phone (digits) in the app's address book, under req.full_name and
 * req.first_name (an add's, optional), at req.timestamp (Unix seconds;
 * default now). NULL when req lacks one of them (why names it). */
json_t *gp_address_book_value(json_t *req, long long now, const char **why);

/* The value of a group change of number req.phone_number_id: req.field,
 * one of the Groups API's webhook fields (group_lifecycle_update,
 * group_participants_update, group_settings_update, group_status_update),
 * carrying req.groups, items of that field's types each with its group_id,
 * type and timestamp (the field's name into *field). NULL when req lacks
 * one of them or an item is not the field's (why names it). */
json_t *gp_group_value(json_t *req, const char **field, const char **why);

#define GP_HISTORY_PHASES 3

/* The values of the history changes that share the chat history of
 * number req.phone_number_id with each customer of req.customers (1 to
 * 50 digit strings) as its owner approved at `now`: one chunk per phase
 * (0, 1, 2: a day, 30 days and 120 days before), chunk_order 1, progress
 * 33, 66 and 100, each customer's thread holding their question and the
 * owner's answer, newest first, read. The run's sync id ("meta-history:"
 * and the number) into id. 0 when req lacks one of them (why names it). */
int gp_history_values(json_t *req, long long now, json_t *values[GP_HISTORY_PHASES], char *id,
                      size_t cap, const char **why);

#endif
