-- 0054_campaign_topics_behind_the_fence.sql - a restore's fence covers
-- campaign-sender's own topics too (ARCHITECTURE.md §6.5).
--
-- The fence lifted once chat-sync had re-read chat.sync, whatever
-- campaign-sender had read of campaign.commands and campaign.receipts. A
-- campaign-sender slower than chat-sync then read receipts of sends made
-- before the restore after the lift: refused unknown_campaign_log (their
-- logs not made again yet), their logs released a second time under the
-- same keys (the restore drill counted 44 repeats on a loaded machine, and
-- a campaign that never completed). `stack.sh restore` now records the
-- ends of those two topics as well (restore_window.sh), no campaign log is
-- released while a fence is up, and campaign-sender, which may run without
-- meta-sender, reads the fence and lifts it as meta-sender does
-- (libs/pg/restore_fence.c).

GRANT SELECT ON restore_fence_offsets TO blazz_campaign_sender;
GRANT UPDATE (lifted_at) ON restore_fences TO blazz_campaign_sender;

COMMENT ON TABLE restore_fences IS
    'A restore (stack.sh restore): meta-sender holds every send and campaign-sender every campaign release until the kafka_offsets of chat-sync and campaign-sender reach the fence''s restore_fence_offsets (chat.sync, campaign.commands, campaign.receipts); whichever sees it first sets lifted_at.';
