/*
 * vocabulary.h - the producers' words for the contract's enums and their
 * times, shared by the JSON and Meta parsers and by normalization
 * (vocabulary.c).
 */
#ifndef ING_VOCABULARY_H
#define ING_VOCABULARY_H

#include <stdint.h>

#include "blazz/v1/inbound.pb-c.h"

/* Unknown text maps to UNKNOWN / UNSPECIFIED (the callers decide whether
 * that is an error). */
Blazz__V1__MessageType ing_message_type_from_text(const char *raw);
Blazz__V1__DeliveryStatus ing_delivery_status_from_text(const char *text);
Blazz__V1__SessionState ing_session_state_from_text(const char *text);
Blazz__V1__DisconnectReason ing_disconnect_reason_from_text(const char *text);
Blazz__V1__GroupAction ing_group_action_from_text(const char *text);

/* A timestamp in seconds or milliseconds -> milliseconds: a value below
 * 10^11 is taken for seconds (10^11 ms is 1973, 10^11 s the year 5138). */
int64_t ing_timestamp_ms(int64_t value);

#endif
