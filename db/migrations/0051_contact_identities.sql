-- 0051_contact_identities.sql - a contact is a person, known by its phone
-- or by its Meta business-scoped user id (issue 50; the identity model:
-- docs/decisions/0010-a-contact-is-a-person-not-a-phone.md).
--
-- Meta identifies a customer who adopted a WhatsApp username by a BSUID
-- (contacts[].user_id, messages[].from_user_id,
-- statuses[].recipient_user_id: a two-letter country code, '.', up to 128
-- letters and digits), scoped to the business portfolio, and may withhold
-- the phone. Such a contact keeps contacts.phone NOT NULL: it holds the
-- BSUID until a phone is known (as a LID-only contact holds its LID),
-- and bsuid holds the id itself, one live contact per (workspace, bsuid).
-- parent_bsuid (CC.ENT.<id>, shared by a managed business's portfolios)
-- and username (a display handle the user may change) are stored, no key.
--
-- Expand only, safe for a running system: nullable columns (no rewrite),
-- an index over rows that have a BSUID (none yet, so it builds at once;
-- older chat-sync instances keep upserting on (workspace_id, phone)), and
-- the shape checks NOT VALID (every row is NULL here; no scan under an
-- exclusive lock): ALTER TABLE contacts VALIDATE CONSTRAINT ... may run
-- at any time. chat-sync's table grants (0027) cover the new columns.
-- LIDs get no column here: whatsapp-web.js's identity slice adds it.

ALTER TABLE contacts
    ADD COLUMN bsuid text,
    ADD COLUMN parent_bsuid text,
    ADD COLUMN username text;

ALTER TABLE contacts
    ADD CONSTRAINT contacts_bsuid_shape
    CHECK (bsuid ~ '^[A-Z]{2}\.[A-Za-z0-9]{1,128}$')
    NOT VALID;
ALTER TABLE contacts
    ADD CONSTRAINT contacts_parent_bsuid_shape
    CHECK (parent_bsuid ~ '^[A-Z]{2}\.ENT\.[A-Za-z0-9]{1,128}$')
    NOT VALID;
ALTER TABLE contacts
    ADD CONSTRAINT contacts_username_length CHECK (length(username) BETWEEN 1 AND 256) NOT VALID;

COMMENT ON COLUMN contacts.phone IS
    'E.164 (+<digits>) when known; else the contact''s BSUID or LID (decision 0010).';
COMMENT ON COLUMN contacts.bsuid IS
    'Meta business-scoped user id (CC.<id>), unique among a workspace''s live contacts.';
COMMENT ON COLUMN contacts.parent_bsuid IS 'Meta parent BSUID (CC.ENT.<id>), when Meta sends one.';
COMMENT ON COLUMN contacts.username IS 'WhatsApp username: shown, never a key (the user changes it).';

CREATE UNIQUE INDEX contacts_workspace_bsuid_key
    ON contacts (workspace_id, bsuid) WHERE deleted_at IS NULL AND bsuid IS NOT NULL;
