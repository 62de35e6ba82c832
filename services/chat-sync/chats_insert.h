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
 * (Unix ms; sent_at NULL when unset), and the uuid the row claims (or
 * NULL). The seeds' `status` column is the
 * message_status a row is created with (their controller sets 'delivered'
 * for an inbound message and never changes it); message_status moves on.
 * The row's uuid follows from (account, wam_id) (blazz_message_uuid,
 * 0044): a message stored again after a restore keeps the uuid the CRM
 * knows it by. A row may claim another uuid instead (an agent's message
 * whose echo is replayed before its command, apply_message.c), which it
 * gets only when no row has it yet.
 */
#ifndef CS_CHATS_INSERT_H
#define CS_CHATS_INSERT_H

#include "media_link.h"

#define CS_CHATS_INSERT_NCOLS 14

/* CS_CHATS_INSERT_FROM_UNNEST(ordinality, extra_names): ordinality is
 * " WITH ORDINALITY" (extra_names ", ord", for an ORDER BY ord after it) or
 * "" (extra_names ""). chats.media_id is the row the metadata's
 * media.stored_media_uuid names in the message's workspace (media_link.h);
 * a uuid naming none is stored unlinked with media.link_error in the
 * metadata. The caller may add ORDER BY, ON CONFLICT and RETURNING. */
#define CS_CHATS_INSERT_FROM_UNNEST(ordinality, extra_names)                                      \
    "INSERT INTO chats (uuid, workspace_id, whatsapp_account_id, contact_id, group_id, wam_id, "  \
    "type, provider_type, chat_type, message_status, status, metadata, is_read, sent_at, "        \
    "created_at, media_id) "                                                                      \
    "SELECT coalesce(CASE WHEN claim IS NOT NULL AND NOT EXISTS (SELECT 1 FROM chats c "         \
    "  WHERE c.uuid = claim::uuid) THEN claim::uuid END, "                                        \
    "  blazz_message_uuid(acct, nullif(wam, '')), gen_random_uuid()), "                           \
    "ws, acct, contact, grp, wam, typ, prov, ctype, status, status, "                             \
    "CASE WHEN lk.id IS NULL AND j.m #> '{media,stored_media_uuid}' IS NOT NULL "                 \
    "THEN jsonb_set(j.m, '{media,link_error}', '\"" CS_MEDIA_LINK_ERROR "\"') ELSE j.m END, rd, " \
    "to_timestamp(sent / 1000.0), to_timestamp(created / 1000.0), lk.id "                         \
    "FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[], $6::text[], " \
    "$7::text[], $8::text[], $9::text[], $10::text[], $11::boolean[], $12::bigint[], "            \
    "$13::bigint[], $14::text[])" ordinality " AS t(" CS_CHATS_UNNEST_NAMES extra_names ") "                   \
    "CROSS JOIN LATERAL (SELECT t.meta::jsonb AS m) j "                                           \
    "LEFT JOIN LATERAL (" CS_STORED_MEDIA_ROW("t.ws", "j.m") ") lk ON true"

#define CS_CHATS_UNNEST_NAMES                                                                     \
    "ws, acct, contact, grp, wam, typ, prov, ctype, status, meta, rd, sent, created, claim"

#endif
