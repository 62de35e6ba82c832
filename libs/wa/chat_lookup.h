/*
 * chat_lookup.h - finding one message of a conversation by its WhatsApp
 * message id, for the CRM's "mark read up to this message" and the message
 * a reaction acts on: ingest answers 404 for an unknown one, chat-sync
 * dead-letters commands that reached Kafka another way, both with the same
 * question.
 */
#ifndef BZ_WA_CHAT_LOOKUP_H
#define BZ_WA_CHAT_LOOKUP_H

#include <libpq-fe.h>
#include <stdint.h>

#include "core/status.h"

/* created_at (Unix ms) of the message wam_id of the workspace's contact
 * contact_id or group group_id (the other 0). *found is 0 when there is
 * none. The message is found through (whatsapp_account_id, wam_id), the
 * unique key, over the workspace's accounts. */
bz_status bz_chat_message_time(PGconn *conn, int64_t workspace_id, int64_t contact_id,
                               int64_t group_id, const char *wam_id, int64_t *created_ms,
                               int *found, bz_error *err);

#endif
