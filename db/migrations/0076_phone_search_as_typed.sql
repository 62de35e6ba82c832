-- 0076_phone_search_as_typed.sql - the CRM's conversation search finds a
-- phone as a person types it (issue 54: "+62877 matches, 62877 and 0877
-- do not, though the API turns all three into E.164").
--
-- Expand only (docs/decisions/0008): crm_search_conversations(text) keeps
-- its argument and its columns; a second form and a helper are added.
--
-- Contacts keep their phone in E.164 (+<country><number>), and 0031's
-- search compared the text as typed with it: a prefix without its "+",
-- with spaces or dashes, or in the national form was no prefix of any.
-- crm_phone_prefix turns a query that is a phone as typed into the E.164
-- prefix the API would store (services/ingest: bz_phone_normalize's
-- rules): digits kept, spaces, dots, dashes, parentheses and a "(0)"
-- trunk hint dropped; a leading "+" or "00" is the international form; a
-- leading single 0 is the national one, whose country code the caller
-- gives (the CRM knows its workspace's country; without one the digits
-- are taken as international). Any other text is compared as it is, and
-- the text as typed is searched too, as 0031 did (a BSUID, or a LID kept
-- in the phone column as <digits>@lid). The prefix depends on the
-- arguments alone and not on the table, so each range is an index
-- condition of contacts_workspace_phone_key.

CREATE FUNCTION crm_phone_prefix(q text, country_code text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN q !~ '^\s*\+?[0-9(][0-9 ().-]*$' OR d = '' THEN q
        WHEN ltrim(q) LIKE '+%' THEN '+' || d
        WHEN d LIKE '00_%' THEN '+' || substr(d, 3)
        WHEN d LIKE '0%' AND country_code ~ '^[1-9][0-9]{0,2}$'
            THEN '+' || country_code || substr(d, 2)
        ELSE '+' || d
    END
    -- "+44 (0)20": the (0) is the national trunk hint, not a digit
    FROM (SELECT regexp_replace(replace(q, '(0)', ''), '[^0-9]', '', 'g') AS d) digits
$$;

-- Conversations whose name starts with q (case-insensitive) or whose phone
-- starts with q read as a phone (crm_phone_prefix, with the workspace's
-- country code for a national number), as 0031's form otherwise.
CREATE FUNCTION crm_search_conversations(q text, country_code text)
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
       AND c.phone >= public.crm_phone_prefix(q, country_code)
       AND c.phone < public.crm_phone_prefix(q, country_code) || chr(1114111)
     UNION
     -- as typed, as 0031 did: a LID kept in the phone column (<digits>@lid)
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

-- 0031's form: the digits of a number typed without "+" found too.
CREATE OR REPLACE FUNCTION crm_search_conversations(q text)
RETURNS TABLE (kind text, id bigint, latest_at timestamptz, uuid uuid, name text, phone text,
               unread_messages integer, whatsapp_account_id bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT * FROM public.crm_search_conversations(q, NULL)
$$;

REVOKE ALL ON FUNCTION crm_phone_prefix(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION crm_search_conversations(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_phone_prefix(text, text) TO blazz_crm;
GRANT EXECUTE ON FUNCTION crm_search_conversations(text, text) TO blazz_crm;
