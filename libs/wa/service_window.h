/*
 * service_window.h - Meta's 24-hour customer-service window: through the
 * Cloud API a business may send a contact anything but a template only
 * within 24 hours of the contact's last message to that business phone
 * number (the account); outside it Meta refuses the message (131047,
 * re-engagement). whatsapp-web.js has no such rule.
 *
 * The window is read from chats, the messages themselves: is there an
 * inbound message of the contact to the account newer than 24 hours ago
 * (PostgreSQL's clock)? chats_contact_created_idx (contact_id, created_at
 * DESC, id DESC) turns that into a range of the contact's last 24 hours of
 * messages, so no table or column has to be kept beside chats and
 * chat-sync's write path pays nothing. The same question runs where the
 * message's account becomes known: ingest (422 when the account is named
 * or the conversation's) and chat-sync (the message fails at acceptance
 * when it chooses the account), before anything is released to Meta.
 */
#ifndef BZ_WA_SERVICE_WINDOW_H
#define BZ_WA_SERVICE_WINDOW_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "blazz/v1/common.pb-c.h"
#include "blazz/v1/whatsapp.pb-c.h"
#include "core/status.h"

/* The reason of every refusal here. */
#define BZ_WA_SERVICE_WINDOW_REASON "outside_service_window"

/* 1 when a message of type to a contact through an account of provider
 * (Blazz__V1__Provider) may only leave inside the window: a Meta account,
 * anything but a template. */
int bz_wa_service_window_applies(int provider, Blazz__V1__MessageType type);

/* open[i] = 1 when contacts[i] wrote to accounts[i] within the last 24
 * hours; one statement for all n pairs. */
bz_status bz_wa_service_window_open(PGconn *conn, const int64_t *accounts,
                                    const int64_t *contacts, size_t n, int *open,
                                    bz_error *err);

/* err as BZ_ERR_INVALID, reason outside_service_window, "field
 * message_type: ..." naming the account; returns BZ_ERR_INVALID. */
bz_status bz_wa_service_window_refuse(bz_error *err, int64_t account_id);

#endif
