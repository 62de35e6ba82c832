-- 0056_contact_lids.sql - a whatsapp-web.js LID is a key of its own, and
-- two contacts found to be one person are merged (issue 50; decision
-- 0010, "LIDs and merging").
--
-- WhatsApp's multi-device protocol names a person by a LID (<digits>@lid),
-- with or without the phone beside it. Until now a LID-only contact kept
-- its LID in contacts.phone and a contact with both kept the LID in
-- metadata.jid, matched by nobody: a later LID-only message opened a
-- second contact. contacts.lid holds the LID, one live contact per
-- (workspace, lid), as bsuid does for Meta's ids (0051).
--
-- Expand only, safe beside the release's chat-sync (which writes no lid:
-- the new chat-sync finds such rows by their phone column, and fills lid
-- as messages name it): a nullable column, the shape check NOT VALID,
-- the index over live rows that have a LID, and a backfill that takes a
-- row lock per contact it fills and never two rows of one LID (the older
-- row keeps it: the other pair is for a mapping to merge).

ALTER TABLE contacts ADD COLUMN lid text;

ALTER TABLE contacts
    ADD CONSTRAINT contacts_lid_shape CHECK (lid ~ '^[0-9]{1,32}@lid$') NOT VALID;

COMMENT ON COLUMN contacts.lid IS
    'whatsapp-web.js LID (<digits>@lid), unique among a workspace''s live contacts (decision 0010).';

CREATE UNIQUE INDEX contacts_workspace_lid_key
    ON contacts (workspace_id, lid) WHERE deleted_at IS NULL AND lid IS NOT NULL;

-- LID-only contacts: their phone column holds the LID, unique already.
UPDATE contacts SET lid = phone
WHERE deleted_at IS NULL AND lid IS NULL AND phone ~ '^[0-9]{1,32}@lid$';

-- Contacts with a phone that know their LID from an event that carried both.
UPDATE contacts c SET lid = c.metadata->>'jid'
WHERE c.deleted_at IS NULL AND c.lid IS NULL AND c.metadata->>'jid' ~ '^[0-9]{1,32}@lid$'
  AND NOT EXISTS (SELECT 1 FROM contacts o
                  WHERE o.workspace_id = c.workspace_id AND o.deleted_at IS NULL
                    AND o.id <> c.id
                    AND (o.lid = c.metadata->>'jid'
                         OR (o.metadata->>'jid' = c.metadata->>'jid' AND o.id < c.id)));

-- Merging: the rows of a merged contact move to the survivor in chat-sync's
-- transaction. chat-sync writes contacts and chats itself; the tables
-- campaign-sender owns (campaign_logs, meta_reach, warmup_recipients) and
-- the CRM's audiences (contact_group_members) it may not write, so this
-- function, run as their owner, moves them and nothing else. Where both
-- contacts have a row under one key (a campaign that logged both, one
-- business's reach, one account's warm-up) the survivor keeps its own and
-- the merged contact's stays with the merged (soft-deleted) row: counts
-- already made from it stay exact. Such a log still pending is skipped
-- (skip_reason 'merged', counted in messages_skipped as every skip is),
-- so a campaign never sends twice to one person because of the merge.

ALTER TABLE campaign_logs DROP CONSTRAINT campaign_logs_skip_reason_check;
ALTER TABLE campaign_logs
    ADD CONSTRAINT campaign_logs_skip_reason_check
        CHECK (skip_reason IN ('opted_out', 'outside_service_window', 'merged')) NOT VALID;
ALTER TABLE campaign_logs VALIDATE CONSTRAINT campaign_logs_skip_reason_check;

COMMENT ON COLUMN campaign_logs.skip_reason IS
    'Why a skipped log was not sent: opted_out (the contact had opted out when it would have left), outside_service_window (a free-form message through a Meta account to a contact who had not written to it within 24 hours), merged (its contact was merged into one the campaign also logged, 0056).';
CREATE FUNCTION blazz_merge_contact_rows(p_workspace_id bigint, p_survivor bigint,
                                         p_merged bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM public.contacts
                   WHERE id = p_survivor AND workspace_id = p_workspace_id)
       OR NOT EXISTS (SELECT 1 FROM public.contacts
                      WHERE id = p_merged AND workspace_id = p_workspace_id) THEN
        RAISE EXCEPTION 'merge contact % into %: not both in workspace %',
            p_merged, p_survivor, p_workspace_id USING ERRCODE = '22023';
    END IF;
    UPDATE public.campaign_logs l SET contact_id = p_survivor
    WHERE l.contact_id = p_merged AND l.workspace_id = p_workspace_id
      AND NOT EXISTS (SELECT 1 FROM public.campaign_logs s
                      WHERE s.campaign_id = l.campaign_id AND s.contact_id = p_survivor);
    WITH s AS (UPDATE public.campaign_logs l
               SET status = 'skipped', skip_reason = 'merged', skipped_at = now()
               WHERE l.contact_id = p_merged AND l.status = 'pending'
               RETURNING l.campaign_id)
    UPDATE public.campaigns c SET messages_skipped = c.messages_skipped + n.n
    FROM (SELECT campaign_id, count(*) AS n FROM s GROUP BY 1) n WHERE c.id = n.campaign_id;
    INSERT INTO public.contact_group_members (contact_group_id, contact_id, workspace_id)
    SELECT m.contact_group_id, p_survivor, m.workspace_id
    FROM public.contact_group_members m WHERE m.contact_id = p_merged
    ON CONFLICT DO NOTHING;
    DELETE FROM public.contact_group_members WHERE contact_id = p_merged;
    UPDATE public.meta_reach r SET contact_id = p_survivor
    WHERE r.contact_id = p_merged
      AND NOT EXISTS (SELECT 1 FROM public.meta_reach s
                      WHERE s.business_key = r.business_key AND s.contact_id = p_survivor);
    UPDATE public.warmup_recipients w SET contact_id = p_survivor
    WHERE w.contact_id = p_merged
      AND NOT EXISTS (SELECT 1 FROM public.warmup_recipients s
                      WHERE s.whatsapp_account_id = w.whatsapp_account_id
                        AND s.contact_id = p_survivor);
END
$$;

REVOKE ALL ON FUNCTION blazz_merge_contact_rows(bigint, bigint, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION blazz_merge_contact_rows(bigint, bigint, bigint) TO blazz_chat_sync;
