-- 0031_crm_read_contract.sql - the columns and indexes the CRM's reads use.
--
-- The CRM's queries are written down in db/read_contract.sql; this
-- migration gives each of them an index it can walk in order, so that a
-- page costs what it returns and not what the workspace holds. Figures and
-- plans at 10 M messages: docs/READS.md.
--
-- The inbox lists conversations newest first, 50 a page, by keyset. A
-- conversation is a contact (private chats) or a group. Both carry the time
-- of their latest message, kept by chat-sync in the transaction that stores
-- it (contacts had it; groups get it here), so a page is an index range and
-- needs no window function over the workspace's messages (seed 002's
-- getChatList ranked every chat of the workspace on each call).
--
-- contacts.whatsapp_account_id and whatsapp_groups.whatsapp_account_id
-- become the account of the conversation's latest message (chat-sync moves
-- it with the latest message's time; a group update no longer moves it;
-- the account that created a contact stays in source_session_id). That
-- makes the inbox filtered by session an index range too. Seed 002
-- filtered by "has ever had a message on this session" (whereHas), which
-- no index orders by recency; here the filter is "where the conversation
-- is now", the account a reply goes out on (ARCHITECTURE.md §11.4).
-- Reactions the CRM sends are rows of chats but not messages of the
-- conversation (chat-sync moves nothing for them), so the backfill below
-- skips them as well.
--
-- Write cost: chat-sync already rewrote the contact's row with every
-- message (latest_chat_created_at is indexed, so those updates are not
-- HOT); the account moves in the same update. Groups now get a small
-- update too. One more partial index on chats, of unread inbound messages
-- per account, is written once per inbound message and keeps read receipts
-- as they were (the two unread indexes of 0021 already made them non-HOT).
-- The message-text index (GIN, full text with the 'simple' configuration)
-- is the largest cost: measured in docs/READS.md.
--
-- Running it: one transaction, like every migration. It holds contacts and
-- whatsapp_groups exclusively and blocks writes to chats while the indexes
-- build, which at 10 M messages takes minutes: chat-sync waits (its
-- records stay in Kafka) and the CRM's inbox with it. Apply it in a quiet
-- hour; what chat-sync wrote before its new version started is caught up
-- by running the two backfill statements again.
--
-- The prefix searches are ranges that hold under the C collation only; a
-- database created with another is refused here with how to fix it, rather
-- than answering wrong rows later.

DO $$
BEGIN
    IF (SELECT datcollate FROM pg_database WHERE datname = current_database())
       NOT IN ('C', 'POSIX', 'C.UTF-8', 'C.utf8') THEN
        RAISE EXCEPTION 'migration 0031 needs the database''s collation to be C, not %',
            (SELECT datcollate FROM pg_database WHERE datname = current_database())
            USING HINT = 'create the database with --locale=C (compose: POSTGRES_INITDB_ARGS) '
                         'and restore into it; the CRM''s prefix searches are index ranges only under C';
    END IF;
END
$$;

ALTER TABLE whatsapp_groups ADD COLUMN latest_chat_created_at timestamptz;

UPDATE whatsapp_groups g
SET latest_chat_created_at = l.created_at,
    whatsapp_account_id = coalesce(l.acct, g.whatsapp_account_id)
FROM (SELECT DISTINCT ON (group_id) group_id, created_at, whatsapp_account_id AS acct
      FROM chats WHERE group_id IS NOT NULL
        AND coalesce(metadata ->> 'message_type', '') <> 'reaction'
      ORDER BY group_id, created_at DESC, id DESC) l
WHERE g.id = l.group_id;

UPDATE contacts c SET whatsapp_account_id = l.acct
FROM (SELECT DISTINCT ON (contact_id) contact_id, whatsapp_account_id AS acct
      FROM chats WHERE contact_id IS NOT NULL AND whatsapp_account_id IS NOT NULL
        AND coalesce(metadata ->> 'message_type', '') <> 'reaction'
      ORDER BY contact_id, created_at DESC, id DESC) l
WHERE c.id = l.contact_id AND c.whatsapp_account_id IS DISTINCT FROM l.acct;

COMMENT ON COLUMN contacts.whatsapp_account_id IS
    'Account of the conversation''s latest message (chat-sync); the first one is source_session_id.';
COMMENT ON COLUMN whatsapp_groups.whatsapp_account_id IS
    'Account of the group''s latest message (chat-sync), else the one that first reported it.';
COMMENT ON COLUMN whatsapp_groups.latest_chat_created_at IS
    'created_at of the group''s latest message (chat-sync).';

-- the inbox, whole and by session (keyset on (latest, id))
DROP INDEX contacts_workspace_latest_chat_idx;
CREATE INDEX contacts_inbox_idx ON contacts (workspace_id, latest_chat_created_at DESC, id DESC)
    WHERE deleted_at IS NULL AND latest_chat_created_at IS NOT NULL;
-- not partial: the foreign key to whatsapp_accounts (ON DELETE SET NULL)
-- looks contacts up by (workspace_id, whatsapp_account_id) too, which is
-- why contacts_account_idx, the account alone, can go (nothing else reads
-- it; the planner preferred it and sorted an account's contacts)
CREATE INDEX contacts_account_inbox_idx
    ON contacts (workspace_id, whatsapp_account_id, latest_chat_created_at DESC, id DESC);
DROP INDEX contacts_account_idx;
CREATE INDEX whatsapp_groups_inbox_idx
    ON whatsapp_groups (workspace_id, latest_chat_created_at DESC, id DESC)
    WHERE latest_chat_created_at IS NOT NULL;
DROP INDEX whatsapp_groups_workspace_account_idx;
CREATE INDEX whatsapp_groups_account_inbox_idx
    ON whatsapp_groups (workspace_id, whatsapp_account_id, latest_chat_created_at DESC, id DESC);

-- a conversation's messages and an endpoint's deliveries, newest first by
-- (created_at, id): with id in the index the keyset cursor is an index
-- condition and the order needs no sort. Without it a prepared statement's
-- generic plan, which cannot know the cursor, sorted a whole group's or
-- endpoint's rows (47 ms and 135 ms at 10 M messages, against 0.1 ms).
-- The same names, so chat-sync's lookups by (contact | group, created_at)
-- keep their index.
DROP INDEX chats_contact_created_idx;
CREATE INDEX chats_contact_created_idx ON chats (contact_id, created_at DESC, id DESC);
DROP INDEX chats_group_created_idx;
CREATE INDEX chats_group_created_idx ON chats (group_id, created_at DESC, id DESC)
    WHERE group_id IS NOT NULL;
DROP INDEX webhook_retry_queue_endpoint_created_idx;
CREATE INDEX webhook_retry_queue_endpoint_created_idx
    ON webhook_retry_queue (endpoint_id, created_at DESC, id DESC);

-- A prepared statement's generic plan estimates "endpoint = $1 AND
-- workspace = $2" as if the two were independent, so about nothing, and
-- then preferred combining both indexes and sorting an endpoint's 200,000
-- deliveries (115 ms p95, at times 900 ms, where the index walk takes
-- 0.6). An endpoint, a contact, a group, a campaign belongs to one
-- workspace; these statistics tell the planner so.
CREATE STATISTICS webhook_retry_queue_endpoint_workspace (dependencies)
    ON endpoint_id, workspace_id FROM webhook_retry_queue;
CREATE STATISTICS chats_conversation_workspace (dependencies)
    ON contact_id, group_id, workspace_id FROM chats;
CREATE STATISTICS campaign_logs_campaign_workspace (dependencies)
    ON campaign_id, workspace_id FROM campaign_logs;

-- search by name prefix (phone prefixes use contacts_workspace_phone_key);
-- prefixes are ranges, which presumes the C collation the stack's and
-- compose's databases are created with
CREATE INDEX contacts_name_search_idx
    ON contacts (workspace_id, lower(full_name)) WHERE deleted_at IS NULL;
CREATE INDEX whatsapp_groups_name_search_idx ON whatsapp_groups (workspace_id, lower(name));

-- search by message text
CREATE INDEX chats_body_search_idx ON chats
    USING gin (to_tsvector('simple', coalesce(metadata ->> 'body', '')));

-- the session list's unread counts
CREATE INDEX chats_account_unread_inbound_idx ON chats (whatsapp_account_id, workspace_id)
    WHERE is_read = false AND type = 'inbound';

-- The inbox, whole or filtered by session: conversations (contacts and
-- groups) by their latest message, newest first, 50 a page after the
-- cursor (before_at, before_kind, before_id), each with that message and
-- its unread count. Order: latest_at DESC, contacts before groups, id DESC.
-- The two halves are ranges of the inbox indexes (by session: of the
-- account ones), merged; the latest message is one probe of the
-- conversation's (contact_id | group_id, created_at) index. A function so
-- the two forms share one text, planned per call (EXECUTE) with the form's
-- own index; it runs as its caller, under row level security.
CREATE FUNCTION crm_inbox(session_account bigint, before_at timestamptz, before_kind text,
                          before_id bigint)
RETURNS TABLE (kind text, id bigint, latest_at timestamptz, uuid uuid, name text, phone text,
               participants_count integer, whatsapp_account_id bigint, unread_messages integer,
               last_message_id bigint, last_message_direction text, last_message_body text,
               last_message_type text, last_message_status text, provider_type text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, public, pg_temp
AS $fn$
DECLARE
    by_session text := CASE WHEN session_account IS NULL THEN ''
                            ELSE ' AND whatsapp_account_id = $4' END;
    -- a value, not the function, so the plan is made for this workspace
    ws bigint := blazz_current_workspace_id();
BEGIN
    RETURN QUERY EXECUTE format($q$
        WITH page AS (
            (SELECT 'contact' AS kind, c.id, c.latest_chat_created_at AS latest_at
             FROM contacts c
             WHERE c.workspace_id = $5 AND c.deleted_at IS NULL
               AND c.latest_chat_created_at IS NOT NULL %1$s
               AND (c.latest_chat_created_at, c.id)
                   < ($1, CASE WHEN $2 = 'contact' THEN $3 ELSE 0 END)
             ORDER BY c.latest_chat_created_at DESC, c.id DESC LIMIT 50)
            UNION ALL
            (SELECT 'group', g.id, g.latest_chat_created_at
             FROM whatsapp_groups g
             WHERE g.workspace_id = $5
               AND g.latest_chat_created_at IS NOT NULL %1$s
               AND (g.latest_chat_created_at, g.id)
                   < ($1, CASE WHEN $2 = 'group' THEN $3 ELSE 9223372036854775807 END)
             ORDER BY g.latest_chat_created_at DESC, g.id DESC LIMIT 50)
            ORDER BY latest_at DESC, kind, id DESC LIMIT 50)
        SELECT p.kind, p.id, p.latest_at, coalesce(c.uuid, g.uuid),
               coalesce(c.full_name, g.name), c.phone, g.participants_count,
               coalesce(c.whatsapp_account_id, g.whatsapp_account_id),
               coalesce(c.unread_messages, gu.unread),
               last.id, last.type, last.metadata ->> 'body', last.metadata ->> 'message_type',
               last.message_status, last.provider_type
        FROM page p
        LEFT JOIN contacts c ON p.kind = 'contact' AND c.id = p.id
        LEFT JOIN whatsapp_groups g ON p.kind = 'group' AND g.id = p.id
        LEFT JOIN LATERAL (
            SELECT count(*)::integer AS unread FROM chats u
            WHERE u.group_id = CASE WHEN p.kind = 'group' THEN p.id END
              AND u.type = 'inbound' AND NOT u.is_read) gu ON p.kind = 'group'
        LEFT JOIN LATERAL (
            SELECT m.id, m.type, m.metadata, m.message_status, m.provider_type FROM chats m
            WHERE m.contact_id = CASE WHEN p.kind = 'contact' THEN p.id END
              AND coalesce(m.metadata ->> 'message_type', '') <> 'reaction'
            ORDER BY m.created_at DESC, m.id DESC LIMIT 1) lc ON p.kind = 'contact'
        LEFT JOIN LATERAL (
            SELECT m.id, m.type, m.metadata, m.message_status, m.provider_type FROM chats m
            WHERE m.group_id = CASE WHEN p.kind = 'group' THEN p.id END
              AND coalesce(m.metadata ->> 'message_type', '') <> 'reaction'
            ORDER BY m.created_at DESC, m.id DESC LIMIT 1) lg ON p.kind = 'group'
        CROSS JOIN LATERAL (
            SELECT coalesce(lc.id, lg.id) AS id, coalesce(lc.type, lg.type) AS type,
                   coalesce(lc.metadata, lg.metadata) AS metadata,
                   coalesce(lc.message_status, lg.message_status) AS message_status,
                   coalesce(lc.provider_type, lg.provider_type) AS provider_type) last
        ORDER BY p.latest_at DESC, p.kind, p.id DESC
    $q$, by_session)
    USING before_at, before_kind, before_id, session_account, ws;
END
$fn$;

REVOKE ALL ON FUNCTION crm_inbox(bigint, timestamptz, text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_inbox(bigint, timestamptz, text, bigint) TO blazz_crm;

-- The two searches, as functions. Under row level security PostgreSQL
-- applies a condition whose operator is not leakproof (LIKE, @@) after the
-- policy's own and never as an index condition, so run as blazz_crm a
-- search would walk the whole workspace. These run as the tables' owner
-- (SECURITY DEFINER, which row level security does not bind) and scope
-- themselves to the session's workspace, the one the policies would allow:
-- with none set they return nothing. Only blazz_crm may call them. Their
-- search_path ends with pg_temp and their tables are named with their
-- schema, so no temporary table or view of the caller's, whose functions
-- would run as the owner, can stand in for ours.

-- Conversations whose name (case-insensitive) or phone starts with q,
-- newest first, 50. A prefix is the range [q, q || U+10FFFF): under the C
-- collation every string that starts with q sorts inside it, and a range
-- is an index condition even for a parameter, where LIKE 'q%' is one only
-- for a constant.
CREATE FUNCTION crm_search_conversations(q text)
RETURNS TABLE (kind text, id bigint, latest_at timestamptz, uuid uuid, name text, phone text,
               unread_messages integer, whatsapp_account_id bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
    (SELECT 'contact', c.id, c.latest_chat_created_at, c.uuid, c.full_name, c.phone,
            c.unread_messages, c.whatsapp_account_id
     FROM public.contacts c
     WHERE c.workspace_id = public.blazz_current_workspace_id() AND c.deleted_at IS NULL
       AND lower(c.full_name) >= lower(q) AND lower(c.full_name) < lower(q) || chr(1114111)
     UNION
     SELECT 'contact', c.id, c.latest_chat_created_at, c.uuid, c.full_name, c.phone,
            c.unread_messages, c.whatsapp_account_id
     FROM public.contacts c
     WHERE c.workspace_id = public.blazz_current_workspace_id() AND c.deleted_at IS NULL
       AND c.phone >= q AND c.phone < q || chr(1114111)
     UNION ALL
     SELECT 'group', g.id, g.latest_chat_created_at, g.uuid, g.name, NULL, NULL,
            g.whatsapp_account_id
     FROM public.whatsapp_groups g
     WHERE g.workspace_id = public.blazz_current_workspace_id()
       AND lower(g.name) >= lower(q) AND lower(g.name) < lower(q) || chr(1114111))
    ORDER BY 3 DESC NULLS LAST, 1, 2 DESC LIMIT 50
$$;

-- Messages holding every word of q, newest first, 50 a page after the
-- cursor (before_at, before_id). Planned for each call with its words
-- (EXECUTE): a rare word is fastest through chats_body_search_idx, a
-- common one by walking the workspace's messages newest first until 50
-- match, and only the word's frequency tells which.
CREATE FUNCTION crm_search_messages(q text, before_at timestamptz, before_id bigint)
RETURNS TABLE (id bigint, uuid uuid, contact_id bigint, group_id bigint, type text,
               body text, whatsapp_account_id bigint, created_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    RETURN QUERY EXECUTE
        'SELECT m.id, m.uuid, m.contact_id, m.group_id, m.type, m.metadata ->> ''body'', '
        '       m.whatsapp_account_id, m.created_at '
        'FROM public.chats m '
        'WHERE m.workspace_id = $4 AND m.deleted_at IS NULL '
        '  AND to_tsvector(''simple'', coalesce(m.metadata ->> ''body'', '''')) '
        '      @@ plainto_tsquery(''simple'', $1) '
        '  AND (m.created_at, m.id) < ($2, $3) '
        'ORDER BY m.created_at DESC, m.id DESC LIMIT 50'
        USING q, before_at, before_id, public.blazz_current_workspace_id();
END
$$;

REVOKE ALL ON FUNCTION crm_search_conversations(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION crm_search_messages(text, timestamptz, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_search_conversations(text) TO blazz_crm;
GRANT EXECUTE ON FUNCTION crm_search_messages(text, timestamptz, bigint) TO blazz_crm;

-- the statistics above, taken now rather than at autovacuum's next visit
ANALYZE webhook_retry_queue, chats, campaign_logs;
