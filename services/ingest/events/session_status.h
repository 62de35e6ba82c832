/*
 * session_status.h - a session's state as its gateway instance reports it
 * (SessionStatus, ARCHITECTURE.md §15), checked like every other event
 * before it goes on: a known state and reason (a disconnect without one is
 * `unknown`), the phone in E.164, the texts within their limits, and where
 * the credentials are: the shared store by a name heartbeats list
 * (field_checks.h), the times and sizes not negative.
 */
#ifndef ING_SESSION_STATUS_H
#define ING_SESSION_STATUS_H

#include "blazz/v1/inbound.pb-c.h"
#include "core/status.h"
#include "events/normalize.h"

/* Check s and normalize it in place. */
bz_status ing_normalize_session_status(Blazz__V1__SessionStatus *s, const ing_norm_opts *o,
                                       bz_error *err);

#endif
