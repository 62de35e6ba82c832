-- 0057_opt_out_by_api.sql - the CRM opts a contact out of campaigns, and
-- back in, over its API (PATCH /v1/contacts/{id} {"opted_out": ...},
-- issue 54): chat-sync applies it as the keywords, Meta's button and
-- Meta's user_preferences (services/chat-sync/optout.c), with
-- opt_out_source 'api' and no keyword.
--
-- Expand only, safe for a running system, as 0053: the source's check
-- gains the value, NOT VALID then VALIDATE; older chat-sync instances
-- never write the new value.

ALTER TABLE contacts DROP CONSTRAINT contacts_opt_out_source_check;
ALTER TABLE contacts
    ADD CONSTRAINT contacts_opt_out_source_check
        CHECK (opt_out_source IN ('keyword', 'button', 'preference', 'api')) NOT VALID;
ALTER TABLE contacts VALIDATE CONSTRAINT contacts_opt_out_source_check;

COMMENT ON COLUMN contacts.opt_out_source IS
    'How it opted out: keyword (a whole message), button (Meta''s marketing opt-out button), '
    'preference (Meta''s user_preferences webhook: the user stopped marketing messages) or '
    'api (the CRM, PATCH /v1/contacts/{id}).';
