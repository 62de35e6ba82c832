-- 0057_marketing_limit_retry.sql - a campaign message Meta did not deliver
-- for the recipient's per-user marketing limit is sent again once, later
-- (issue 53, ARCHITECTURE.md §12.11).
--
-- Meta accepts a marketing template and then reports it failed with error
-- 131049 ("This message was not delivered to maintain healthy ecosystem
-- engagement") when the recipient has had their share of marketing
-- messages, from any business, for a while. The limit is the recipient's,
-- not the campaign's nor the account's, and lifts: Meta's advice is to try
-- again no sooner than 24 hours later. campaign-sender puts such a log back
-- to pending with retry_at = now() + retry.marketing_limit_after_s, and its
-- send round does not pick a log before its retry_at. A log that has a
-- retry_at was retried once already: a second 131049 fails it for good.
-- The column is set only, never cleared. NULL on every existing row, so
-- adding it rewrites nothing.

ALTER TABLE campaign_logs ADD COLUMN retry_at timestamptz;

COMMENT ON COLUMN campaign_logs.retry_at IS
    'When a log Meta failed with 131049 (the recipient''s per-user marketing limit) may be sent again; set once, by campaign-sender: a log with it was retried already.';
