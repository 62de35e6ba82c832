/*
 * meta_calls.c - Meta's calls field mapped to CallEvents (see
 * meta_calls.h), with the helpers of meta_mapping.h.
 *
 * The customer is one party of the call: the caller (`from`,
 * from_user_id) of a USER_INITIATED call, the callee (`to`, to_user_id)
 * of a BUSINESS_INITIATED one, and the recipient of a status (Meta sends
 * statuses only for calls the business placed). When Meta does not say
 * who called, the party that is not the business's own number
 * (metadata.display_phone_number) is the customer. An item of another
 * event or type, or naming no call id, is not understood: the whole
 * change goes to a dead letter (meta_webhook.h), its other items still
 * mapped.
 */
#include "meta/meta_calls.h"

#include <stdint.h>
#include <string.h>

/* A call fact (connect or terminate) the backbone maps: it names its
 * call and what happened. */
static int call_understood(json_t *call)
{
    const char *event = ing_meta_str_of(call, "event");
    return json_is_object(call) && ing_meta_str_of(call, "id") && event &&
           (strcmp(event, "connect") == 0 || strcmp(event, "terminate") == 0);
}

/* A status of a call the business placed (RINGING, ACCEPTED, REJECTED). */
static int call_status_understood(json_t *status)
{
    const char *type = ing_meta_str_of(status, "type");
    return json_is_object(status) && ing_meta_str_of(status, "id") &&
           ing_meta_str_of(status, "status") && (!type || strcmp(type, "call") == 0);
}

static Blazz__V1__Direction call_direction(const char *meta_word)
{
    if (meta_word && strcmp(meta_word, "USER_INITIATED") == 0)
        return BLAZZ__V1__DIRECTION__DIRECTION_INBOUND;
    if (meta_word && strcmp(meta_word, "BUSINESS_INITIATED") == 0)
        return BLAZZ__V1__DIRECTION__DIRECTION_OUTBOUND;
    return BLAZZ__V1__DIRECTION__DIRECTION_UNSPECIFIED;
}

/* Whether the customer is the call's `to`: the business called, or, when
 * Meta does not say who did, `from` is the business's own number. */
static int customer_is_callee(json_t *call, json_t *value, Blazz__V1__Direction direction)
{
    if (direction != BLAZZ__V1__DIRECTION__DIRECTION_UNSPECIFIED)
        return direction == BLAZZ__V1__DIRECTION__DIRECTION_OUTBOUND;
    const char *business =
        ing_meta_str_of(json_object_get(value, "metadata"), "display_phone_number");
    return ing_meta_same_id(ing_meta_digits_of(ing_meta_str_of(call, "from")),
                            ing_meta_digits_of(business));
}

/* A call event of the number, dated and named by item (its id), with
 * Meta's first error and the business's reference when given. */
static Blazz__V1__InboundEvent *new_call_event(ing_meta_mapping *mp, json_t *item,
                                               const char *event, const char *phone_number_id)
{
    Blazz__V1__InboundEvent *ev =
        ing_meta_new_event(mp, item, phone_number_id, BLAZZ__V1__INBOUND_EVENT__PAYLOAD_CALL);
    if (!ev || ev->payload_case != BLAZZ__V1__INBOUND_EVENT__PAYLOAD_CALL)
        return ev;
    Blazz__V1__CallEvent *c = ev->call;
    c->timestamp_ms = ev->envelope->occurred_at_ms;
    ing_meta_copy(mp, &c->call_id, ing_meta_str_of(item, "id"));
    ing_meta_copy(mp, &c->event, event);
    ing_meta_copy(mp, &c->status, ing_meta_str_of(item, "status"));
    ing_meta_copy(mp, &c->client_reference, ing_meta_str_of(item, "biz_opaque_callback_data"));
    json_t *first_error = json_array_get(json_object_get(item, "errors"), 0);
    if (json_is_object(first_error)) {
        ing_meta_copy_number_text(mp, &c->error_code, json_object_get(first_error, "code"));
        ing_meta_copy_error_message(mp, &c->error_message, first_error);
    }
    return ev;
}

/* A connect or a terminate: the customer is the caller of a call they
 * placed and the callee of one the business placed, by phone and/or
 * BSUID (from_user_id / to_user_id, as messages name them); a terminate
 * says how it ended, when it started and ended and how long it lasted. */
static Blazz__V1__InboundEvent *map_call(ing_meta_mapping *mp, json_t *call, json_t *value,
                                         const char *phone_number_id)
{
    Blazz__V1__InboundEvent *ev =
        new_call_event(mp, call, ing_meta_str_of(call, "event"), phone_number_id);
    if (!ev || ev->payload_case != BLAZZ__V1__INBOUND_EVENT__PAYLOAD_CALL)
        return ev;
    Blazz__V1__CallEvent *c = ev->call;
    c->direction = call_direction(ing_meta_str_of(call, "direction"));
    int callee = customer_is_callee(call, value, c->direction);
    const char *phone = ing_meta_str_of(call, callee ? "to" : "from");
    const char *user_id = ing_meta_str_of(call, callee ? "to_user_id" : "from_user_id");
    json_t *contact = ing_meta_sender_contact(json_object_get(value, "contacts"), phone, user_id);
    ing_meta_copy(mp, &c->contact_phone, phone);
    ing_meta_copy(mp, &c->contact_bsuid, user_id ? user_id : ing_meta_str_of(contact, "user_id"));
    ing_meta_copy(mp, &c->contact_name,
                  ing_meta_str_of(json_object_get(contact, "profile"), "name"));
    c->started_at_ms = ing_meta_unix_ms_of(call, "start_time");
    c->ended_at_ms = ing_meta_unix_ms_of(call, "end_time");
    /* out of range: left unset, the rest of the call kept */
    int64_t duration;
    if (ing_meta_whole_number_of(json_object_get(call, "duration"), &duration) && duration >= 0 &&
        duration <= INT32_MAX)
        c->duration_s = (int32_t)duration;
    return ev;
}

/* A status of a call the business placed: the customer is its recipient. */
static Blazz__V1__InboundEvent *map_call_status(ing_meta_mapping *mp, json_t *status,
                                                json_t *value, const char *phone_number_id)
{
    (void)value;
    Blazz__V1__InboundEvent *ev = new_call_event(mp, status, "status", phone_number_id);
    if (!ev || ev->payload_case != BLAZZ__V1__INBOUND_EVENT__PAYLOAD_CALL)
        return ev;
    ev->call->direction = BLAZZ__V1__DIRECTION__DIRECTION_OUTBOUND;
    ing_meta_copy(mp, &ev->call->contact_phone, ing_meta_str_of(status, "recipient_id"));
    ing_meta_copy(mp, &ev->call->contact_bsuid, ing_meta_str_of(status, "recipient_user_id"));
    return ev;
}

int ing_meta_map_calls_field(ing_meta_mapping *mp, json_t *value, ing_events *out)
{
    int any = 0, all = 1;
    if (json_object_get(value, "calls")) {
        any = 1;
        all &= ing_meta_map_items(mp, value, "calls", call_understood, map_call, out);
    }
    if (json_object_get(value, "statuses")) {
        any = 1;
        all &= ing_meta_map_items(mp, value, "statuses", call_status_understood, map_call_status,
                                  out);
    }
    return any && all;
}
