-- 0053_opt_out_by_preference.sql - a contact opts out of campaigns, and
-- back in, through Meta's user_preferences webhook too (issue 53): the
-- user stopped or resumed marketing messages in WhatsApp. chat-sync
-- applies it as the keywords and Meta's button (services/chat-sync/
-- optout.c), with opt_out_source 'preference' and no keyword.
--
-- Expand only, safe for a running system: the source's check gains the
-- value, NOT VALID then VALIDATE (the old rows are checked without holding
-- off writers for the whole scan); older chat-sync instances never write
-- the new value.

ALTER TABLE contacts DROP CONSTRAINT contacts_opt_out_source_check;
ALTER TABLE contacts
    ADD CONSTRAINT contacts_opt_out_source_check
        CHECK (opt_out_source IN ('keyword', 'button', 'preference')) NOT VALID;
ALTER TABLE contacts VALIDATE CONSTRAINT contacts_opt_out_source_check;

COMMENT ON COLUMN contacts.opt_out_source IS
    'How it opted out: keyword (a whole message), button (Meta''s marketing opt-out button) or '
    'preference (Meta''s user_preferences webhook: the user stopped marketing messages).';
