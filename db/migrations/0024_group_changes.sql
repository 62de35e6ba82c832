-- 0024_group_changes.sql - group changes land on whatsapp_groups
-- (issue 20; ARCHITECTURE.md §5.2).
--
-- participants_count: the seeds' column (000: groups as the CRM lists them),
-- kept equal to jsonb_array_length(participants) by chat-sync, which writes
-- both in one UPDATE; the backfill gives existing rows the same value.
-- group_metadata: what a group update says that has no column of its own
-- (picture_url) and the clock that makes updates apply once: "clock" =
-- {"at": <ms of the newest update applied>, "ids": [<event ids applied at
-- that ms>]}, so a replayed or older update changes nothing and emits no
-- group.updated, while several updates of one second all apply.
ALTER TABLE whatsapp_groups
    ADD COLUMN participants_count integer NOT NULL DEFAULT 0 CHECK (participants_count >= 0),
    ADD COLUMN group_metadata jsonb NOT NULL DEFAULT '{}'::jsonb
        CHECK (jsonb_typeof(group_metadata) = 'object');

UPDATE whatsapp_groups SET participants_count = jsonb_array_length(participants)
WHERE participants_count <> jsonb_array_length(participants);
