-- 0075_crm_inbox_of_workspace.sql - the inbox for a workspace its caller
-- names, so that ingest answers it over HTTP (GET /v1/conversations,
-- issue 54: "conversations ... over HTTP").
--
-- Expand only (docs/decisions/0008): crm_inbox keeps its arguments and its
-- columns; a function no service of an earlier release calls is added.
--
-- crm_inbox (0031) reads the workspace from the session's setting, as the
-- CRM's login role does under row level security. Ingest's role bypasses
-- row level security (0027) and resolves the workspace from the API key,
-- on pooled connections that serve every workspace: it names the workspace
-- instead. crm_inbox_of is crm_inbox's one text, with the workspace, the
-- page's size (the API's limit, 1 to 200; crm_inbox's 50) and the latest
-- message's uuid (the API names messages by it); crm_inbox calls it with
-- the session's workspace, as before. It runs as its caller: for the CRM's
-- role the policies of 0011 still hold whichever workspace it names. The
-- latest message shown is the newest not deleted for everyone: 0031's
-- showed a deleted one's text, which no read of the message answers.

CREATE FUNCTION crm_inbox_of(ws bigint, session_account bigint, before_at timestamptz,
                             before_kind text, before_id bigint, page_size integer)
RETURNS TABLE (kind text, id bigint, latest_at timestamptz, uuid uuid, name text, phone text,
               participants_count integer, whatsapp_account_id bigint, unread_messages integer,
               last_message_id bigint, last_message_direction text, last_message_body text,
               last_message_type text, last_message_status text, provider_type text,
               last_message_uuid uuid)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, public, pg_temp
AS $fn$
DECLARE
    by_session text := CASE WHEN session_account IS NULL THEN ''
                            ELSE ' AND whatsapp_account_id = $4' END;
BEGIN
    -- EXECUTE: planned per call, for this workspace and the form's own index
    RETURN QUERY EXECUTE format($q$
        WITH page AS (
            (SELECT 'contact' AS kind, c.id, c.latest_chat_created_at AS latest_at
             FROM contacts c
             WHERE c.workspace_id = $5 AND c.deleted_at IS NULL
               AND c.latest_chat_created_at IS NOT NULL %1$s
               AND (c.latest_chat_created_at, c.id)
                   < ($1, CASE WHEN $2 = 'contact' THEN $3 ELSE 0 END)
             ORDER BY c.latest_chat_created_at DESC, c.id DESC LIMIT $6)
            UNION ALL
            (SELECT 'group', g.id, g.latest_chat_created_at
             FROM whatsapp_groups g
             WHERE g.workspace_id = $5
               AND g.latest_chat_created_at IS NOT NULL %1$s
               AND (g.latest_chat_created_at, g.id)
                   < ($1, CASE WHEN $2 = 'group' THEN $3 ELSE 9223372036854775807 END)
             ORDER BY g.latest_chat_created_at DESC, g.id DESC LIMIT $6)
            ORDER BY latest_at DESC, kind, id DESC LIMIT $6)
        SELECT p.kind, p.id, p.latest_at, coalesce(c.uuid, g.uuid),
               coalesce(c.full_name, g.name), c.phone, g.participants_count,
               coalesce(c.whatsapp_account_id, g.whatsapp_account_id),
               coalesce(c.unread_messages, gu.unread),
               last.id, last.type, last.metadata ->> 'body', last.metadata ->> 'message_type',
               last.message_status, last.provider_type, last.uuid
        FROM page p
        LEFT JOIN contacts c ON p.kind = 'contact' AND c.id = p.id
        LEFT JOIN whatsapp_groups g ON p.kind = 'group' AND g.id = p.id
        LEFT JOIN LATERAL (
            SELECT count(*)::integer AS unread FROM chats u
            WHERE u.group_id = CASE WHEN p.kind = 'group' THEN p.id END
              AND u.type = 'inbound' AND NOT u.is_read) gu ON p.kind = 'group'
        LEFT JOIN LATERAL (
            SELECT m.id, m.uuid, m.type, m.metadata, m.message_status, m.provider_type
            FROM chats m
            WHERE m.contact_id = CASE WHEN p.kind = 'contact' THEN p.id END
              AND m.deleted_at IS NULL
              AND coalesce(m.metadata ->> 'message_type', '') <> 'reaction'
            ORDER BY m.created_at DESC, m.id DESC LIMIT 1) lc ON p.kind = 'contact'
        LEFT JOIN LATERAL (
            SELECT m.id, m.uuid, m.type, m.metadata, m.message_status, m.provider_type
            FROM chats m
            WHERE m.group_id = CASE WHEN p.kind = 'group' THEN p.id END
              AND m.deleted_at IS NULL
              AND coalesce(m.metadata ->> 'message_type', '') <> 'reaction'
            ORDER BY m.created_at DESC, m.id DESC LIMIT 1) lg ON p.kind = 'group'
        CROSS JOIN LATERAL (
            SELECT coalesce(lc.id, lg.id) AS id, coalesce(lc.uuid, lg.uuid) AS uuid,
                   coalesce(lc.type, lg.type) AS type,
                   coalesce(lc.metadata, lg.metadata) AS metadata,
                   coalesce(lc.message_status, lg.message_status) AS message_status,
                   coalesce(lc.provider_type, lg.provider_type) AS provider_type) last
        ORDER BY p.latest_at DESC, p.kind, p.id DESC
    $q$, by_session)
    USING before_at, before_kind, before_id, session_account, ws, page_size;
END
$fn$;

REVOKE ALL ON FUNCTION crm_inbox_of(bigint, bigint, timestamptz, text, bigint, integer)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_inbox_of(bigint, bigint, timestamptz, text, bigint, integer)
    TO blazz_crm, blazz_ingest;

-- The same answer as 0031's, from the one text: a value, not the function,
-- is passed, so the plan is made for this workspace.
CREATE OR REPLACE FUNCTION crm_inbox(session_account bigint, before_at timestamptz,
                                     before_kind text, before_id bigint)
RETURNS TABLE (kind text, id bigint, latest_at timestamptz, uuid uuid, name text, phone text,
               participants_count integer, whatsapp_account_id bigint, unread_messages integer,
               last_message_id bigint, last_message_direction text, last_message_body text,
               last_message_type text, last_message_status text, provider_type text)
LANGUAGE sql STABLE SET search_path = pg_catalog, public, pg_temp
AS $fn$
    SELECT i.kind, i.id, i.latest_at, i.uuid, i.name, i.phone, i.participants_count,
           i.whatsapp_account_id, i.unread_messages, i.last_message_id,
           i.last_message_direction, i.last_message_body, i.last_message_type,
           i.last_message_status, i.provider_type
    FROM crm_inbox_of(blazz_current_workspace_id(), session_account, before_at, before_kind,
                      before_id, 50) i
$fn$;
