/*
 * chats_insert.h - the multi-row INSERT of chats rows from unnest() arrays.
 *
 * Shared by apply_message.c, which adds its idempotency (ON CONFLICT on the
 * account's wam_id, in arrival order) and RETURNING, and by bench_chat_sync's
 * raw-insert baseline, which must put exactly the same columns and values in
 * the same table to measure what the schema alone costs. The
 * CS_CHATS_INSERT_NCOLS parameters, in order: workspace, account, contact
 * (or NULL), group (or NULL), wam_id, type, provider_type, chat_type,
 * message_status, metadata (JSON text), is_read, sent_at and created_at
 * (Unix ms; sent_at NULL when unset). The seeds' `status` column is the
 * message_status a row is created with (their controller sets 'delivered'
 * for an inbound message and never changes it); message_status moves on.
 */
#ifndef CS_CHATS_INSERT_H
#define CS_CHATS_INSERT_H

#define CS_CHATS_INSERT_NCOLS 13

/* Followed by the alias of the unnest: AS t(CS_CHATS_UNNEST_NAMES ...). */
#define CS_CHATS_INSERT_FROM_UNNEST                                                               \
    "INSERT INTO chats (workspace_id, whatsapp_account_id, contact_id, group_id, wam_id, type, "   \
    "provider_type, chat_type, message_status, status, metadata, is_read, sent_at, created_at) "  \
    "SELECT ws, acct, contact, grp, wam, typ, prov, ctype, status, status, meta::jsonb, rd, "     \
    "to_timestamp(sent / 1000.0), to_timestamp(created / 1000.0) "                                \
    "FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[], $6::text[], " \
    "$7::text[], $8::text[], $9::text[], $10::text[], $11::boolean[], $12::bigint[], "            \
    "$13::bigint[])"

#define CS_CHATS_UNNEST_NAMES "ws, acct, contact, grp, wam, typ, prov, ctype, status, meta, rd, sent, created"

#endif
