/*
 * meta_mapping.h - what the files mapping a Meta notification share
 * (meta_webhook.c: the notification, its messages, statuses, echoes,
 * preferences and notices; meta_calls.c: the calls field; meta_history.c:
 * the history field). Private to
 * meta/; see meta_webhook.h for what the mapping makes of a notification.
 *
 * The mapping is lenient (meta_webhook.h), so no helper here fails on a
 * field of the wrong type: it reads as absent, and the event is still
 * made for validation to dead-letter. What does fail (memory only) is
 * kept in the ing_meta_mapping every helper takes: its first failure
 * stops the notification, and every helper after it does nothing, so the
 * callers need not check each step.
 */
#ifndef ING_META_MAPPING_H
#define ING_META_MAPPING_H

#include <jansson.h>
#include <stdint.h>

#include "core/status.h"
#include "events/event_tree.h"

/* One notification's mapping: BZ_OK until the first failure, whose error
 * is in err. */
typedef struct ing_meta_mapping {
    bz_status st;
    bz_error *err;
} ing_meta_mapping;

const char *ing_meta_str_of(json_t *obj, const char *key);

void ing_meta_copy(ing_meta_mapping *mp, char **dst, const char *value);

/* Meta writes its numbers (error codes, template ids) as JSON numbers,
 * or as strings in some samples: either becomes text. */
void ing_meta_copy_number_text(ing_meta_mapping *mp, char **dst, json_t *v);

/* A whole number Meta writes as a JSON number, or as a string of digits
 * in places (Unix seconds, a call's duration); 0 when v is neither. */
int ing_meta_whole_number_of(json_t *v, int64_t *out);

/* obj's member key, Unix seconds, in milliseconds; 0 when it has none. */
int64_t ing_meta_unix_ms_of(json_t *obj, const char *key);

/* p, recording the failure when it is NULL (an allocation that failed). */
void *ing_meta_alloc_or_fail(ing_meta_mapping *mp, void *p);

int ing_meta_same_id(const char *a, const char *b);

/* A phone without the '+' Meta writes in some places (a group message's
 * `from`) and not in others (contacts[].wa_id). */
const char *ing_meta_digits_of(const char *phone);

/* The contacts[] entry of a message's sender: the one whose wa_id (phone)
 * or user_id (BSUID) is the message's, else the first that names neither
 * (Meta's samples list one contact per message). */
json_t *ing_meta_sender_contact(json_t *contacts, const char *wa_id, const char *user_id);

/* A Meta event dated by obj's timestamp, with an empty payload of the
 * given kind (a message, an ack, a call, a history batch, a group update
 * or a contact update); a payload
 * that could not be allocated stays unset (mp knows). */
Blazz__V1__InboundEvent *ing_meta_new_event(ing_meta_mapping *mp, json_t *obj,
                                            const char *phone_number_id,
                                            Blazz__V1__InboundEvent__PayloadCase payload);

/* "title: details" of a Meta error (details say why, e.g. the 24-hour
 * window), or its message when it has neither. */
void ing_meta_copy_error_message(ing_meta_mapping *mp, char **dst, json_t *error);

/* The first of Meta's errors[] (code, title or else message,
 * error_data.details) as a new ProviderError the caller owns; NULL when
 * there is none, or on failure (mp knows). */
Blazz__V1__ProviderError *ing_meta_first_error(ing_meta_mapping *mp, json_t *errors);

/* ev (NULL: nothing) appended to out; freed instead once mp has failed. */
void ing_meta_collect(ing_meta_mapping *mp, ing_events *out, Blazz__V1__InboundEvent *ev);

/* msg (an object of Meta's messages[], message_echoes[] or a history
 * thread) as a message event of the number phone_number_id, its other
 * party left unset for the caller; the caller owns the event. NULL or a
 * payload left unset when allocation failed (mp says so). Defined in
 * meta_webhook.c, beside the messages field it maps. */
Blazz__V1__InboundEvent *ing_meta_map_message_of_number(ing_meta_mapping *mp, json_t *msg,
                                                         const char *phone_number_id);

/* One item of a change's array mapped to an event; value is the change's
 * value, phone_number_id its number's. */
typedef Blazz__V1__InboundEvent *(*ing_meta_item_mapper)(ing_meta_mapping *mp, json_t *item,
                                                         json_t *value,
                                                         const char *phone_number_id);

/* The items of value's array `key` that are understood, each mapped to
 * an event; 0 when the array is missing or empty or some item is not
 * understood (its change is then kept whole as well). */
int ing_meta_map_items(ing_meta_mapping *mp, json_t *value, const char *key,
                       int (*understood)(json_t *), ing_meta_item_mapper map, ing_events *out);

#endif
