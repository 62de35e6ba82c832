/*
 * call.c - a fact of a WhatsApp call, checked and normalized (see call.h).
 *
 * Only Meta reports calls (a whatsapp-web.js gateway has no call payload
 * yet). The event is one of connect, terminate and status; Meta's words
 * (a terminate's outcome, a status) are checked for their shape, not
 * against a list, as business notices' are: Meta adds words without
 * notice, and chat-sync stores what Meta said. The customer is named by
 * phone and/or BSUID; a phone becomes E.164.
 */
#include "events/call.h"

#include <stdio.h>
#include <string.h>

#include "events/event_tree.h"
#include "events/field_checks.h"
#include "wa/phone.h"

#define WORD_MAX 64

static int is_event(const char *e)
{
    return e && (strcmp(e, "connect") == 0 || strcmp(e, "terminate") == 0 ||
                 strcmp(e, "status") == 0);
}

/* Meta's word: upper-case letters, digits and _; required but for a
 * connect, which says none. */
static bz_status check_status(const Blazz__V1__CallEvent *c, bz_error *err)
{
    size_t n = c->status ? strlen(c->status) : 0;
    if (n == 0)
        return strcmp(c->event, "connect") == 0
                   ? BZ_OK
                   : ing_reject(err, "missing_field", "call.status", "required for a %s",
                                c->event);
    if (n > WORD_MAX || strspn(c->status, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != n)
        return ing_reject(err, "invalid_field", "call.status",
                          "upper-case letters, digits and _, at most %d", WORD_MAX);
    return BZ_OK;
}

/* The customer: a phone (E.164 from here on) and/or a BSUID. */
static bz_status norm_customer(Blazz__V1__CallEvent *c, const ing_norm_opts *o, bz_error *err)
{
    bz_status st = ing_check_bsuid(c->contact_bsuid, 0, "call.contact_bsuid", err);
    if (st != BZ_OK)
        return st;
    if (ing_str_empty(c->contact_phone))
        return ing_str_empty(c->contact_bsuid)
                   ? ing_reject(err, "missing_field", "call.contact_phone",
                                "required, or call.contact_bsuid")
                   : BZ_OK;
    char e164[BZ_PHONE_E164_SIZE];
    bz_error inner;
    if (bz_phone_normalize(c->contact_phone, o->default_cc, e164, sizeof e164, &inner) != BZ_OK)
        return ing_reject(err, "invalid_field", "call.contact_phone", "%s", inner.msg);
    return ing_str_set(&c->contact_phone, e164) ? BZ_OK
                                                : ing_out_of_memory(err, "call.contact_phone");
}

static bz_status check_times(Blazz__V1__CallEvent *c, const Blazz__V1__Envelope *env,
                             const ing_norm_opts *o, bz_error *err)
{
    bz_status st = ing_check_timestamp(&c->timestamp_ms, env->occurred_at_ms, 1, o,
                                       "call.timestamp_ms", err);
    if (st == BZ_OK)
        st = ing_check_timestamp(&c->started_at_ms, 0, 0, o, "call.started_at_ms", err);
    if (st == BZ_OK)
        st = ing_check_timestamp(&c->ended_at_ms, 0, 0, o, "call.ended_at_ms", err);
    if (st == BZ_OK && c->duration_s < 0)
        st = ing_reject(err, "invalid_field", "call.duration_s", "negative");
    return st;
}

bz_status ing_normalize_call(Blazz__V1__CallEvent *c, const Blazz__V1__Envelope *env,
                             const ing_norm_opts *o, char *conversation, bz_error *err)
{
    if (env->provider != BLAZZ__V1__PROVIDER__PROVIDER_META)
        return ing_reject(err, "invalid_field", "call", "only a Meta account reports calls");
    bz_status st = ing_check_id(c->call_id, 1, "call.call_id", err);
    if (st == BZ_OK && !is_event(c->event))
        st = ing_reject(err, "invalid_field", "call.event", "connect, terminate or status");
    if (st == BZ_OK)
        st = check_status(c, err);
    if (st == BZ_OK && c->direction > BLAZZ__V1__DIRECTION__DIRECTION_OUTBOUND)
        st = ing_reject(err, "invalid_field", "call.direction", "unknown direction %d",
                        c->direction);
    if (st == BZ_OK)
        st = norm_customer(c, o, err);
    if (st == BZ_OK)
        st = ing_check_text(c->contact_name, ING_NAME_MAX_BYTES, "call.contact_name", err);
    if (st == BZ_OK)
        st = check_times(c, env, o, err);
    if (st == BZ_OK)
        st = ing_check_text(c->error_code, WORD_MAX, "call.error_code", err);
    if (st == BZ_OK)
        st = ing_check_text(c->error_message, ING_TEXT_MAX, "call.error_message", err);
    if (st == BZ_OK)
        st = ing_check_text(c->client_reference, ING_NAME_MAX_BYTES, "call.client_reference",
                            err);
    if (st == BZ_OK)
        snprintf(conversation, ING_CONVERSATION_MAX, "%s",
                 !ing_str_empty(c->contact_phone) ? c->contact_phone : c->contact_bsuid);
    return st;
}
