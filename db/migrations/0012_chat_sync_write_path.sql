-- 0012_chat_sync_write_path.sql - a cheaper write path for chat-sync.
--
-- chat-sync stores every message with one chats row and updates the
-- contact's counters in the same transaction; receipts then update the
-- message's status. Each index on chats costs every stored message an index
-- insert, and an index over a column a receipt changes (message_status,
-- is_read) forbids HOT updates, so every receipt also inserted into all of
-- chats' indexes. This migration drops the chats indexes that no query of
-- the services, the tools or the CRM (seeds 000-004) needs, and leaves room
-- in the pages so updates can stay on their page (HOT when no indexed column
-- changes). Kept: the unique keys (id, uuid, (whatsapp_account_id, wam_id)),
-- the chat-list indexes (workspace, contact, group and account, each with
-- created_at) and (workspace_id, chat_type, created_at) of seed 002's chat
-- list filtered by chat type.
--
-- Dropped:
--  - chats_contact_unread_idx (contact_id WHERE NOT is_read AND inbound):
--    created for recounting a conversation's unread messages, but chat-sync
--    maintains contacts.unread_messages incrementally in the transaction
--    that stores or reads a message and never counts chats rows; the CRM
--    reads the counter. Its predicate covers is_read, so it made every read
--    receipt a non-HOT update.
--  - chats_workspace_status_idx (workspace_id, message_status), the seeds'
--    idx_workspace_status: nothing filters a workspace's messages by status
--    (delivery reports read campaign_logs, which carries its own status);
--    with seven values it is too unselective to beat
--    chats_workspace_created_idx for any list query. It made every receipt
--    a non-HOT update.
--  - chats_workspace_type_idx (workspace_id, type), the seeds'
--    idx_workspace_type: two values (inbound | outbound), never a filter on
--    its own in the seeds' queries or ours; one index insert per message for
--    nothing.
--
-- fillfactor leaves free space in new pages (existing pages are not
-- rewritten): chats at 90 for the status updates of receipts, which become
-- HOT now; contacts at 80 because chat-sync rewrites a contact's counters
-- with nearly every message (those updates change latest_chat_created_at,
-- which contacts_workspace_latest_chat_idx covers, so they are not HOT, but
-- the new version still lands on the same page, and name or unread-only
-- changes are HOT).

DROP INDEX chats_contact_unread_idx;
DROP INDEX chats_workspace_status_idx;
DROP INDEX chats_workspace_type_idx;

ALTER TABLE chats SET (fillfactor = 90);
ALTER TABLE contacts SET (fillfactor = 80);
