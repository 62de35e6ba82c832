-- read_contract.sql - the CRM's reads: the statements it runs against the
-- backbone's database, each with the index it walks.
--
-- The CRM runs them as blazz_crm with its workspace set (0001):
--
--     SET ROLE blazz_crm; SET blazz.workspace_id = '42';
--
-- Row level security then hides every other workspace; the statements name
-- the workspace as well (:ws), so the planner reaches the index range
-- directly instead of filtering the policy's predicate afterwards. Three
-- are functions of migration 0031, which take the workspace from the
-- session: the inbox (one text for its two forms) and the two searches.
-- The searches run as the tables' owner and scope themselves to the
-- session's workspace, because under row level security PostgreSQL applies
-- a condition whose operator is not leakproof (LIKE, the full-text @@) only
-- after the policy, never as an index condition, so inside the policy's
-- view a search would scan the whole workspace.
--
-- Pages are keysets, never OFFSET: the next page starts after the last row
-- of the previous one (its cursor columns), so page 400 costs what page 1
-- does. A first page passes the cursor that lies before everything:
-- :at = 'infinity', :kind = 'contact', :id = 0 for conversations;
-- 'infinity' and 0 for messages, calls and deliveries.
--
-- Each statement starts with "-- name: NAME"; :name is a parameter (psql
-- and pgbench substitute them, test_read_contract binds them, and checks
-- that each statement walks its index). Plans and figures at 10 M
-- messages: docs/READS.md.

-- name: inbox
-- The inbox: conversations (contacts and groups) by their latest message,
-- newest first, 50 a page, each with that message and its unread count.
-- Order: latest_at DESC, then contacts before groups, then id DESC; the
-- cursor is the last row's (latest_at, kind, id). A function of migration
-- 0031 (one text for both forms, each planned with its own index:
-- contacts_inbox_idx and whatsapp_groups_inbox_idx), run under row level
-- security like the statements here.
SELECT * FROM crm_inbox(NULL, :at::timestamptz, :kind::text, :id::bigint);

-- name: inbox_by_session
-- The inbox filtered by session (the account dropdown): conversations whose
-- latest message went through :account (chat-sync keeps that account on
-- the contact and the group, migration 0031). Same order and cursor;
-- contacts_account_inbox_idx and whatsapp_groups_account_inbox_idx.
SELECT * FROM crm_inbox(:account::bigint, :at::timestamptz, :kind::text, :id::bigint);

-- name: sessions
-- The session dropdown: the workspace's connected accounts with their
-- unread inbound messages (seed 002's withCount of unread chats), counted
-- in chats_account_unread_inbound_idx, which holds only unread messages.
SELECT a.id, a.uuid, a.session_id, a.phone_number, a.provider_type, a.status,
       (SELECT count(*) FROM chats m
        WHERE m.whatsapp_account_id = a.id AND m.workspace_id = :ws
          AND m.type = 'inbound' AND NOT m.is_read) AS unread_count
FROM whatsapp_accounts a
WHERE a.workspace_id = :ws AND a.deleted_at IS NULL AND a.status = 'connected'
ORDER BY a.id;

-- name: contact_messages
-- A private conversation, newest first, 50 a page, with receipts
-- (message_status and its times) and reactions (metadata.reactions); for a
-- Meta number, the ad a customer came from (referral: Meta's object whole,
-- ctwa_clid among it) and the answer to a button, list or flow
-- (interactive_reply: a flow's form answers in its response_json), NULL
-- where the message has none; its media as the webhooks' chat.media
-- (media) and the uuid of the bytes the backbone stores for it
-- (stored_media_uuid: GET /v1/media/{uuid} links them; NULL while it holds
-- none). Cursor: the last row's (created_at, id).
-- chats_contact_created_idx.
SELECT m.id, m.uuid, m.type, m.message_status, m.is_read, m.sent_at, m.delivered_at, m.read_at,
       m.metadata ->> 'body' AS body, m.metadata ->> 'message_type' AS message_type,
       m.metadata -> 'reactions' AS reactions, m.whatsapp_account_id, m.user_id, m.created_at,
       m.metadata -> 'referral' AS referral, m.metadata -> 'interactive_reply' AS interactive_reply,
       m.metadata -> 'media' AS media,
       (SELECT cm.uuid FROM chat_media cm WHERE cm.id = m.media_id) AS stored_media_uuid
FROM chats m
WHERE m.contact_id = :contact AND m.workspace_id = :ws AND m.deleted_at IS NULL
  AND (m.created_at, m.id) < (:at::timestamptz, :id::bigint)
ORDER BY m.created_at DESC, m.id DESC LIMIT 50;

-- name: group_messages
-- A group conversation, as contact_messages (its media too), with each
-- message's author: its phone, name, and BSUID (a Cloud API group's member
-- known by it alone has no phone).
-- chats_group_created_idx.
SELECT m.id, m.uuid, m.type, m.message_status, m.is_read, m.sent_at, m.delivered_at, m.read_at,
       m.metadata ->> 'body' AS body, m.metadata ->> 'message_type' AS message_type,
       m.metadata ->> 'sender_phone' AS sender_phone, m.metadata ->> 'sender_name' AS sender_name,
       m.metadata -> 'reactions' AS reactions, m.whatsapp_account_id, m.user_id, m.created_at,
       m.metadata ->> 'sender_bsuid' AS sender_bsuid, m.metadata -> 'referral' AS referral,
       m.metadata -> 'interactive_reply' AS interactive_reply, m.metadata -> 'media' AS media,
       (SELECT cm.uuid FROM chat_media cm WHERE cm.id = m.media_id) AS stored_media_uuid
FROM chats m
WHERE m.group_id = :group AND m.workspace_id = :ws AND m.deleted_at IS NULL
  AND (m.created_at, m.id) < (:at::timestamptz, :id::bigint)
ORDER BY m.created_at DESC, m.id DESC LIMIT 50;

-- name: contact_calls
-- A private conversation's calls (Meta numbers only: 0060), newest first,
-- 50 a page: the CRM interleaves them with the messages by created_at,
-- since a call is no message and chats never holds it. Cursor: the last
-- row's (created_at, id). calls_contact_idx.
SELECT k.id, k.uuid, k.meta_call_id, k.direction, k.status, k.connected_at, k.started_at,
       k.ended_at, k.terminated_at, k.duration_s, k.error_code, k.error_message,
       k.whatsapp_account_id, k.created_at
FROM calls k
WHERE k.contact_id = :contact AND k.workspace_id = :ws
  AND (k.created_at, k.id) < (:at::timestamptz, :id::bigint)
ORDER BY k.created_at DESC, k.id DESC LIMIT 50;

-- name: search_conversations
-- Conversations whose name starts with :q (contacts' full name, groups'
-- name, case-insensitive) or whose phone starts with it, newest first,
-- 50. A function of migration 0031 (see the header for why). A phone is
-- found as typed (0076): +62877, 62877, 62 877; a national 0877 with the
-- workspace's country code as a second argument,
-- crm_search_conversations(:q, '62').
SELECT * FROM crm_search_conversations(:q);

-- name: search_messages
-- Messages whose text holds every word of :q (full text, 'simple'
-- configuration), newest first, 50 a page; cursor (created_at, id). A
-- function of migration 0031.
SELECT * FROM crm_search_messages(:q, :at::timestamptz, :id::bigint);

-- name: usage_by_price
-- What the workspace's messages cost over a period (:from to :to, UTC
-- days, both included): outbound messages delivered per Meta pricing
-- category and pricing type ('regular' is charged; 'free_customer_service'
-- and 'free_entry_point' are not), summed over its Meta numbers and the
-- days, as Meta's statuses priced them (0055; messages without pricing are
-- in message_usage only). message_usage_priced_workspace_day_idx.
SELECT u.category, u.pricing_type, sum(u.delivered) AS delivered
FROM message_usage_priced u
WHERE u.workspace_id = :ws AND u.day BETWEEN :from::date AND :to::date
GROUP BY u.category, u.pricing_type
ORDER BY u.category, u.pricing_type;

-- name: campaign_progress
-- A campaign's progress: its counters (campaign-sender keeps them) and its
-- recipients by outcome, counted in campaign_logs_campaign_status_idx.
SELECT c.id, c.uuid, c.name, c.status, c.contacts_count, c.messages_sent, c.messages_delivered,
       c.messages_read, c.messages_failed, c.error_message, c.started_at, c.completed_at,
       (SELECT jsonb_object_agg(s.status, s.n)
        FROM (SELECT l.status, count(*) AS n FROM campaign_logs l
              WHERE l.campaign_id = c.id AND l.workspace_id = :ws GROUP BY l.status) s) AS by_status
FROM campaigns c
WHERE c.id = :campaign AND c.workspace_id = :ws;

-- name: campaign_recipients
-- A campaign's recipients with one outcome (:status: the report's tab,
-- such as 'failed'), 50 a page in the order they were expanded (cursor:
-- the last log id; 0 for the first page), along
-- campaign_logs_campaign_status_idx. Without the outcome no index orders
-- a campaign's logs, and campaign-sender's expansion would pay for one.
SELECT l.id, l.contact_id, ct.full_name, ct.phone, l.status, l.sent_at, l.delivered_at,
       l.read_at, l.failed_at, l.error_message
FROM campaign_logs l
JOIN contacts ct ON ct.id = l.contact_id
WHERE l.campaign_id = :campaign AND l.workspace_id = :ws AND l.status = :status::text
  AND l.id > :id::bigint
ORDER BY l.id LIMIT 50;

-- name: webhook_deliveries
-- An endpoint's delivery log, newest first, 50 a page; cursor (created_at,
-- id). webhook_retry_queue_endpoint_created_idx.
SELECT d.id, d.event_id, d.event_type, d.status, d.retry_count, d.last_status_code, d.last_error,
       d.next_retry_at, d.delivered_at, d.created_at
FROM webhook_retry_queue d
WHERE d.endpoint_id = :endpoint AND d.workspace_id = :ws
  AND (d.created_at, d.id) < (:at::timestamptz, :id::bigint)
ORDER BY d.created_at DESC, d.id DESC LIMIT 50;
