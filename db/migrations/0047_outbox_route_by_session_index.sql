-- 0047_outbox_route_by_session_index.sql - the outbox's gateway routing
-- (0029, 0030) finds the account through whatsapp_accounts_session_id_key,
-- not by reading the table (issue 52).
--
-- The trigger compared session_id with convert_from(NEW.msg_key, 'UTF8').
-- convert_from takes the encoding as a `name`, whose collation is "C", and
-- its text result inherits it; beside session_id's default collation the
-- comparison has no collation the unique index was built for, so every
-- routed row read whatsapp_accounts from the start until it met its
-- session, and through the whole table when none matched (a Meta account's
-- send). Each removal of blazz-cleanup writes a routed DESTROY command:
-- its sweep over 1 M accounts (bench_cleanup, 100,000 removals) took about
-- 115 s instead of 10, 103 s of it in this lookup (1 ms a call, a
-- sequential scan in its plan). COLLATE "default" gives the key the
-- column's collation, so the lookup is one index probe; the body is 0030's
-- otherwise. CREATE OR REPLACE keeps the owner, the grants and the trigger
-- and locks neither outbox nor whatsapp_accounts: safe while writers run.

CREATE OR REPLACE FUNCTION blazz_outbox_route_to_gateway() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    serving text;
    instance smallint;
    epoch bigint;
BEGIN
    SELECT a.gateway_id, a.assigned_instance_index, a.assignment_epoch
      INTO serving, instance, epoch
      FROM whatsapp_accounts a
     WHERE a.session_id = convert_from(NEW.msg_key, 'UTF8') COLLATE "default"
       AND a.provider_type = 'webjs';
    IF serving IS NOT NULL THEN
        NEW.topic := NEW.topic || '.gw.' || serving;
        IF NEW.topic LIKE 'wa.outbound.gw.%' AND epoch > 0 AND instance IS NOT NULL THEN
            NEW.headers := NEW.headers ||
                jsonb_build_object('blazz-assignment', instance::text || ':' || epoch::text);
        END IF;
    END IF;
    RETURN NEW;
END
$$;
