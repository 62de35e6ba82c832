/*
 * session_status.c - a session's state as its gateway instance reports it,
 * checked (see session_status.h).
 */
#include "events/session_status.h"

#include "events/event_tree.h"
#include "events/field_checks.h"

/* the longest QR payload a gateway may report */
#define QR_MAX 8192

/* Times and sizes a report gives are never negative. */
static bz_status check_not_negative(const Blazz__V1__SessionStatus *s, bz_error *err)
{
    if (s->qr_expires_at_ms < 0)
        return ing_reject(err, "invalid_field", "session_status.qr_expires_at_ms", "negative");
    if (s->session_file_size_bytes < 0)
        return ing_reject(err, "invalid_field", "session_status.session_file_size_bytes",
                          "negative");
    if (s->session_storage_verified_at_ms < 0)
        return ing_reject(err, "invalid_field", "session_status.session_storage_verified_at_ms",
                          "negative");
    return BZ_OK;
}

bz_status ing_normalize_session_status(Blazz__V1__SessionStatus *s, const ing_norm_opts *o,
                                       bz_error *err)
{
    if (s->status == BLAZZ__V1__SESSION_STATE__SESSION_STATE_UNSPECIFIED)
        return ing_reject(err, "missing_field", "session_status.status", "required");
    if (s->status > BLAZZ__V1__SESSION_STATE__SESSION_STATE_FAILED)
        return ing_reject(err, "invalid_field", "session_status.status", "unknown state %d",
                          s->status);
    if (s->reason > BLAZZ__V1__DISCONNECT_REASON__DISCONNECT_REASON_CREDENTIALS_MISSING)
        return ing_reject(err, "invalid_field", "session_status.reason", "unknown reason %d",
                          s->reason);
    int down = s->status == BLAZZ__V1__SESSION_STATE__SESSION_STATE_DISCONNECTED ||
               s->status == BLAZZ__V1__SESSION_STATE__SESSION_STATE_FAILED;
    if (down && s->reason == BLAZZ__V1__DISCONNECT_REASON__DISCONNECT_REASON_UNSPECIFIED)
        s->reason = BLAZZ__V1__DISCONNECT_REASON__DISCONNECT_REASON_UNKNOWN;
    if (s->instance && s->instance->index < 0)
        return ing_reject(err, "invalid_field", "session_status.instance.index", "negative");
    bz_status st = ing_norm_phone_only(&s->phone_number, "session_status.phone_number", o, err);
    if (st == BZ_OK)
        st = ing_check_text(s->details, ING_TEXT_MAX, "session_status.details", err);
    if (st == BZ_OK)
        st = ing_check_text(s->qr_code, QR_MAX, "session_status.qr_code", err);
    if (st == BZ_OK)
        st = ing_check_text(s->push_name, ING_NAME_MAX_BYTES, "session_status.push_name", err);
    if (st == BZ_OK)
        st = ing_check_text(s->platform, 64, "session_status.platform", err);
    if (st == BZ_OK && s->instance)
        st = ing_check_text(s->instance->url, ING_TEXT_MAX, "session_status.instance.url", err);
    if (st == BZ_OK)
        st = ing_check_text(s->remote_session_path, ING_TEXT_MAX,
                            "session_status.remote_session_path", err);
    if (st == BZ_OK)
        st = ing_check_id(s->command_event_id, 0, "session_status.command_event_id", err);
    if (st == BZ_OK && !ing_str_empty(s->session_storage))
        st = ing_check_storage_name(s->session_storage, "session_status.session_storage", err);
    if (st == BZ_OK)
        st = check_not_negative(s, err);
    return st;
}
