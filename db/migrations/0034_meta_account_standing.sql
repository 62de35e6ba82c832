-- 0034_meta_account_standing.sql - what Meta says of a Meta account's
-- standing: its number's quality flag and messaging limit, the business
-- portfolio's daily limit, and the WABA's restrictions, violations and
-- bans (issue 35, ARCHITECTURE.md §12.8).
--
-- Meta reports these in three webhook fields of the WABA (entry.id):
-- phone_number_quality_update (one number, named by its display phone
-- number: FLAGGED, UNFLAGGED, UPGRADE, DOWNGRADE, ... with the number's
-- current_limit and the portfolio's max_daily_conversations_per_business),
-- account_update (the WABA: ACCOUNT_RESTRICTION with restriction_info,
-- ACCOUNT_VIOLATION with violation_info, DISABLED_UPDATE with ban_info,
-- ...) and account_alerts (an alert about the WABA or one number). Each
-- lands on the whatsapp_accounts rows it concerns, in Meta's words, with
-- when Meta reported it: Meta does not promise the order of its
-- deliveries, and reports quality and account standing apart, so each
-- aspect keeps its own report time and an older report of it is ignored.

ALTER TABLE whatsapp_accounts
    ADD COLUMN meta_quality_event        text,
    ADD COLUMN meta_flagged              boolean NOT NULL DEFAULT false,
    ADD COLUMN meta_messaging_limit      text,
    ADD COLUMN meta_business_limit       text,
    ADD COLUMN meta_quality_reported_at  timestamptz,
    ADD COLUMN meta_account_event        text,
    ADD COLUMN meta_restriction          text,
    ADD COLUMN meta_restricted_until     timestamptz,
    ADD COLUMN meta_violation            text,
    ADD COLUMN meta_ban_state            text,
    ADD COLUMN meta_account_detail       text,
    ADD COLUMN meta_account_reported_at  timestamptz;

COMMENT ON COLUMN whatsapp_accounts.meta_flagged IS
    'Meta flagged the number''s quality (phone_number_quality_update FLAGGED) and has not cleared it (UNFLAGGED, UPGRADE): its marketing campaigns pause.';
COMMENT ON COLUMN whatsapp_accounts.meta_messaging_limit IS
    'The number''s messaging limit as Meta last reported it (current_limit: TIER_250, TIER_2K, ..., TIER_UNLIMITED).';
COMMENT ON COLUMN whatsapp_accounts.meta_business_limit IS
    'The business portfolio''s daily limit of business-initiated unique recipients (max_daily_conversations_per_business), shared by every number of the portfolio; set on each of its accounts.';
COMMENT ON COLUMN whatsapp_accounts.meta_restriction IS
    'An account_update ACCOUNT_RESTRICTION''s restriction_type (RESTRICTED_BIZ_INITIATED_MESSAGING, ...), in force until meta_restricted_until (NULL: no end given).';
COMMENT ON COLUMN whatsapp_accounts.meta_ban_state IS
    'DISABLED_UPDATE''s ban_info.waba_ban_state (SCHEDULE_FOR_DISABLE, DISABLE, REINSTATE).';

-- One report from Meta about the standing of a WABA's accounts, applied
-- to the live accounts it concerns: one number (p_phone, Meta's display
-- phone number, compared by its digits; or p_phone_number_id, the
-- account's session_id) or, when it names none, every account of the WABA.
-- A portfolio limit (p_business_limit) goes to every account of the
-- portfolio (meta_business_id, else the WABA). p_field says which aspect:
-- 'phone_number_quality_update' sets the quality event, flag and limits;
-- the others ('account_update', 'account_alerts') the account event and,
-- per event, the restriction, violation or ban. Returns each account whose
-- standing moved (chat-sync tells the CRM only then).
CREATE FUNCTION blazz_account_report(
    p_workspace_id bigint, p_waba_id text, p_phone text, p_phone_number_id text,
    p_field text, p_event text, p_messaging_limit text, p_business_limit text,
    p_restriction text, p_restricted_until timestamptz, p_violation text, p_ban_state text,
    p_detail text, p_at timestamptz)
    RETURNS TABLE (account_id bigint)
    LANGUAGE plpgsql
AS $$
DECLARE
    quality boolean := p_field = 'phone_number_quality_update';
    business text;
BEGIN
    SELECT coalesce(a.meta_business_id, a.meta_waba_id) INTO business
    FROM whatsapp_accounts a
    WHERE a.workspace_id = p_workspace_id AND a.meta_waba_id = p_waba_id AND a.deleted_at IS NULL
    ORDER BY a.meta_business_id NULLS LAST LIMIT 1;

    RETURN QUERY
    WITH named AS (
        SELECT a.id FROM whatsapp_accounts a
        WHERE a.workspace_id = p_workspace_id AND a.meta_waba_id = p_waba_id
          AND a.deleted_at IS NULL
          AND (p_phone IS NULL OR regexp_replace(coalesce(a.phone_number, ''), '[^0-9]', '', 'g')
                                  = regexp_replace(p_phone, '[^0-9]', '', 'g'))
          AND (p_phone_number_id IS NULL OR a.session_id = p_phone_number_id)
    ), before AS (
        SELECT a.* FROM whatsapp_accounts a
        WHERE a.id IN (SELECT id FROM named)
           OR (quality AND p_business_limit IS NOT NULL AND a.workspace_id = p_workspace_id
               AND a.deleted_at IS NULL
               AND coalesce(a.meta_business_id, a.meta_waba_id) = business)
        FOR UPDATE
    ), after AS (
        UPDATE whatsapp_accounts x
        SET meta_quality_event = CASE WHEN q.newer AND q.mine THEN p_event
                                      ELSE x.meta_quality_event END,
            meta_flagged = CASE WHEN NOT (q.newer AND q.mine) THEN x.meta_flagged
                                WHEN p_event = 'FLAGGED' THEN true
                                WHEN p_event IN ('UNFLAGGED', 'UPGRADE') THEN false
                                ELSE x.meta_flagged END,
            meta_messaging_limit = CASE WHEN q.newer AND q.mine
                                        THEN coalesce(p_messaging_limit, x.meta_messaging_limit)
                                        ELSE x.meta_messaging_limit END,
            meta_business_limit = CASE WHEN q.newer
                                       THEN coalesce(p_business_limit, x.meta_business_limit)
                                       ELSE x.meta_business_limit END,
            meta_quality_reported_at = CASE WHEN q.newer THEN p_at
                                            ELSE x.meta_quality_reported_at END,
            meta_account_event = CASE WHEN q.acc_newer THEN p_event ELSE x.meta_account_event END,
            meta_restriction = CASE WHEN NOT q.acc_newer THEN x.meta_restriction
                                    WHEN p_event = 'ACCOUNT_RESTRICTION' THEN p_restriction
                                    ELSE x.meta_restriction END,
            meta_restricted_until = CASE WHEN NOT q.acc_newer THEN x.meta_restricted_until
                                         WHEN p_event = 'ACCOUNT_RESTRICTION'
                                         THEN p_restricted_until
                                         ELSE x.meta_restricted_until END,
            meta_violation = CASE WHEN q.acc_newer AND p_event = 'ACCOUNT_VIOLATION'
                                  THEN p_violation ELSE x.meta_violation END,
            meta_ban_state = CASE WHEN q.acc_newer AND p_event = 'DISABLED_UPDATE'
                                  THEN p_ban_state ELSE x.meta_ban_state END,
            meta_account_detail = CASE WHEN q.acc_newer THEN p_detail
                                       ELSE x.meta_account_detail END,
            meta_account_reported_at = CASE WHEN q.acc_newer THEN p_at
                                            ELSE x.meta_account_reported_at END
        FROM (SELECT b.id,
                     b.id IN (SELECT id FROM named) AS mine,
                     quality AND (b.meta_quality_reported_at IS NULL
                                  OR b.meta_quality_reported_at <= p_at) AS newer,
                     NOT quality AND b.id IN (SELECT id FROM named)
                         AND (b.meta_account_reported_at IS NULL
                              OR b.meta_account_reported_at <= p_at) AS acc_newer
              FROM before b) q
        WHERE x.id = q.id
        RETURNING x.*
    )
    SELECT n.id FROM after n JOIN before o ON o.id = n.id
    WHERE (n.meta_flagged, n.meta_messaging_limit, n.meta_business_limit, n.meta_restriction,
           n.meta_restricted_until, n.meta_violation, n.meta_ban_state, n.meta_quality_event,
           n.meta_account_event)
          IS DISTINCT FROM
          (o.meta_flagged, o.meta_messaging_limit, o.meta_business_limit, o.meta_restriction,
           o.meta_restricted_until, o.meta_violation, o.meta_ban_state, o.meta_quality_event,
           o.meta_account_event)
    ORDER BY n.id;
END
$$;

-- chat-sync applies Meta's account reports (it may update whatsapp_accounts
-- already, 0027).
GRANT EXECUTE ON FUNCTION blazz_account_report TO blazz_chat_sync;
