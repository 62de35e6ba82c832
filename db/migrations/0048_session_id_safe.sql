-- 0048_session_id_safe.sql - a session id is a plain file name in the
-- table too (issue 49).
--
-- Gateways keep a session's credentials in a file named by its id, so the
-- backbone refuses any id outside letters, digits, '.', '_' and '-', one
-- that starts with '.' or holds '..' (bz_session_id_valid,
-- libs/wa/crm_command.c) at every entry: the CRM API, crm.commands,
-- gateway events. The CRM's own role may write whatsapp_accounts directly
-- (0011), past those checks; this constraint holds it to the same rule.
-- NOT VALID: rows written before it are not validated (no lock that stops
-- writers on a running system; the count below reads without one), and an
-- old id outside the set stays where it is stored; such sessions' events are refused at ingest, so an operator
-- renames them (a new session, scanned again) and then runs
--   ALTER TABLE whatsapp_accounts VALIDATE CONSTRAINT whatsapp_accounts_session_id_safe;
-- The notice below counts them when this migration runs.

ALTER TABLE whatsapp_accounts
    ADD CONSTRAINT whatsapp_accounts_session_id_safe
    CHECK (session_id ~ '^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$' AND strpos(session_id, '..') = 0)
    NOT VALID;

DO $$
DECLARE
    outside bigint;
BEGIN
    SELECT count(*) INTO outside FROM whatsapp_accounts
     WHERE NOT (session_id ~ '^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$'
                AND strpos(session_id, '..') = 0);
    IF outside > 0 THEN
        RAISE WARNING '% whatsapp_accounts rows have a session id outside the safe set; their '
                      'events are refused (docs/SECURITY.md, "File names built from data")',
                      outside;
    END IF;
END
$$;
