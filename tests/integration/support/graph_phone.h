/*
 * graph_phone.h - what the Graph test server plays on the phones of a
 * number that Meta reports by webhook beside messages (graph_phone.c):
 * the owner's text typed in the WhatsApp Business app (its
 * smb_message_echoes change) and a customer's call (its calls changes,
 * connect then terminate).
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
 * (COMPLETED) into *terminate; the new call id into id. 0 when req lacks
 * one of them (why names it). */
int gp_call_values(json_t *req, long long now, json_t **connect, json_t **terminate, char *id,
                   size_t cap, const char **why);

#endif
