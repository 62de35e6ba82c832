-- 0029_outbound_per_gateway.sql - each gateway reads only the sends and
-- session commands of the sessions it serves (issue 32, ARCHITECTURE.md
-- §2, §9.1).
--
-- Until now every SendMessage went to wa.outbound and every SessionCommand
-- to wa.session.commands, and every gateway's principal could read both:
-- one whatsapp-web.js gateway read every tenant's outbound text and phone
-- numbers, Meta accounts' included. Now a row written to the outbox for
-- either topic is routed, as it is inserted, to the topic of the gateway
-- that serves its session (the row's key): wa.outbound.gw.<gateway id> or
-- wa.session.commands.gw.<gateway id>, which only that gateway's principal
-- may read. The broker enforces the rest.
--
-- Why here and not in each writer: every writer of these topics (chat-sync's
-- CRM sends, campaign-sender's campaign and agent sends, cleanup's DESTROY,
-- an operator's replay) goes through the outbox, so one trigger routes them
-- all, in the writer's own transaction, against the account row as that
-- transaction sees it. A later writer cannot forget.
--
-- Not routed: Meta accounts (meta-sender reads wa.outbound) and accounts
-- with no gateway, whose rows stay on the shared topics that no gateway
-- reads any more (an account with no gateway neither receives nor sends;
-- `blazzctl gateways bind` gives it one).
--
-- Upgrading a running system (the order matters; ARCHITECTURE.md §9.1):
--   1. create every webjs gateway's topics and grants first:
--      `blazzctl topics ensure --gateway ID...`, `blazzctl acls apply
--      --gateway ID=PRINCIPAL...`;
--   2. deploy gateways that read their own two topics as well as the
--      shared ones;
--   3. apply this migration: rows written from then on are routed;
--   4. once every gateway's lag on wa.outbound and wa.session.commands is
--      0, remove the old grants (Read on those two topics and the prefixed
--      group blazz-gateway-<id>*) with Kafka's kafka-acls --remove.

CREATE FUNCTION blazz_outbox_route_to_gateway() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    serving text;
BEGIN
    SELECT a.gateway_id INTO serving
      FROM whatsapp_accounts a
     WHERE a.session_id = convert_from(NEW.msg_key, 'UTF8')
       AND a.provider_type = 'webjs';
    IF serving IS NOT NULL THEN
        NEW.topic := NEW.topic || '.gw.' || serving;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER outbox_route_to_gateway BEFORE INSERT ON outbox
    FOR EACH ROW
    WHEN (NEW.topic IN ('wa.outbound', 'wa.session.commands') AND NEW.msg_key IS NOT NULL)
    EXECUTE FUNCTION blazz_outbox_route_to_gateway();
