-- 0059_meta_groups.sql - a Meta Cloud API group is a group of its own
-- (issue 50, "group participants' ids"; issue 53, groups).
--
-- Meta's group messages webhook names the group by the Groups API's
-- group_id, an opaque id ("Y2FwaV9ncm91cDox..."), not a JID; it is also
-- what Meta's send API takes as `to` for the group. chat-sync keys such a
-- group by that id in whatsapp_groups.group_jid, as it came (1 to 128
-- letters, digits, '_', '-' and '=': libs/wa/meta_group.h), so a group
-- message is stored under the group rather than as a private message of
-- its sender.
--
-- Expand only, safe for a running system, as 0057: the key's check is
-- widened (NOT VALID, then VALIDATE: every row already matches the
-- narrower one); the release's chat-sync writes only JIDs.

ALTER TABLE whatsapp_groups DROP CONSTRAINT whatsapp_groups_group_jid_check;
ALTER TABLE whatsapp_groups
    ADD CONSTRAINT whatsapp_groups_group_jid_check
        CHECK (group_jid LIKE '%@g.us' OR group_jid ~ '^[A-Za-z0-9_=-]{1,128}$') NOT VALID;
ALTER TABLE whatsapp_groups VALIDATE CONSTRAINT whatsapp_groups_group_jid_check;

COMMENT ON COLUMN whatsapp_groups.group_jid IS
    'The group''s key: its whatsapp-web.js JID (...@g.us), or for a Meta Cloud API group '
    'the Groups API''s group_id as Meta gives it (no @).';
