-- 0040_service_window_skip.sql - campaigns skip contacts outside Meta's
-- 24-hour customer-service window (issue 35, ARCHITECTURE.md §12.7).
--
-- Through the Cloud API a business may send a user anything but a template
-- only within 24 hours of the user's last message to that number; outside
-- it Meta answers 131047 and the message fails. A free-form campaign
-- message through a Meta account to a contact who has not written to the
-- account within 24 hours is therefore not sent: campaign-sender marks its
-- log skipped at release, with the reason outside_service_window, counted
-- in campaigns.messages_skipped as an opted-out contact's log is (0033).
-- Only the reason is new: 0033 kept the reason out of the status for this.
--
-- NOT VALID then VALIDATE: the existing rows are checked without holding
-- off writers for the whole scan.

ALTER TABLE campaign_logs DROP CONSTRAINT campaign_logs_skip_reason_check;
ALTER TABLE campaign_logs
    ADD CONSTRAINT campaign_logs_skip_reason_check
        CHECK (skip_reason IN ('opted_out', 'outside_service_window')) NOT VALID;
ALTER TABLE campaign_logs VALIDATE CONSTRAINT campaign_logs_skip_reason_check;

COMMENT ON COLUMN campaign_logs.skip_reason IS
    'Why a skipped log was not sent: opted_out (the contact had opted out when it would have left), outside_service_window (a free-form message through a Meta account to a contact who had not written to it within 24 hours).';
