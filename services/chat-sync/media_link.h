/*
 * media_link.h - the chat_media row a chats row's stored media names, as a
 * SQL fragment (ARCHITECTURE.md §16.4, §16.6).
 *
 * A message names bytes the backbone holds by media.stored_media_uuid in
 * its metadata: an agent's send (the uuid ingest resolved in the key's
 * workspace) and a gateway's inbound message (the uuid its upload was
 * answered). Both inserts link chats.media_id with this one lookup: the
 * row of that uuid in the message's own workspace, none for another
 * workspace's or an unknown uuid. A value without a uuid's shape is no
 * row either, rather than a failed cast that would abort the transaction.
 * CS_STORED_MEDIA_ROW(ws, meta) is a SELECT of one column, the row's id
 * (zero or one row: chat_media.uuid is unique); ws and meta are SQL
 * expressions, meta jsonb.
 */
#ifndef CS_MEDIA_LINK_H
#define CS_MEDIA_LINK_H

#define CS_STORED_MEDIA_ROW(ws, meta)                                                             \
    "SELECT cm.id FROM chat_media cm WHERE cm.workspace_id = " ws " AND cm.uuid = CASE WHEN "    \
    "(" meta ") #>> '{media,stored_media_uuid}' ~* "                                              \
    "'^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' "                           \
    "THEN ((" meta ") #>> '{media,stored_media_uuid}')::uuid END"

/* The note an inbound message's metadata gets when the uuid it names is no
 * row of its workspace: media.link_error (the message is stored, unlinked). */
#define CS_MEDIA_LINK_ERROR "unknown_media"

#endif
