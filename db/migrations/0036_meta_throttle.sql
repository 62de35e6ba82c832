-- 0036_meta_throttle.sql - Meta's throttling of an account, kept where the
-- send budget sees it (issue 35, ARCHITECTURE.md §11.3, §12.1).
--
-- meta-sender slows a Meta account when Meta answers a throttling code
-- (130429 throughput, 131056 pair rate, the other rate limits): a factor of
-- its rate halves per answer, down to 0.1, and recovers by 0.1 per second
-- without one (libs/wa/meta_throttle.c). campaign-sender, which releases
-- the account's messages, must slow down with it, or released messages pile
-- up in meta_sends. One row per account holds the factor just after the
-- last throttling answer and when that was: the recovered factor at any
-- later moment follows from the rule, so meta-sender writes only when Meta
-- throttles (in the transaction that stores the throttled outcomes), and a
-- restart of either service finds the state where it left it.
--
-- Nothing here is tenant data: no grants to blazz_crm. meta-sender writes
-- it; campaign-sender reads it for its budget.

CREATE TABLE meta_throttle (
    whatsapp_account_id bigint PRIMARY KEY,
    workspace_id        bigint NOT NULL,
    factor              double precision NOT NULL CHECK (factor > 0 AND factor <= 1),
    throttled_at        timestamptz NOT NULL,
    last_code           text NOT NULL,
    throttles           bigint NOT NULL DEFAULT 0 CHECK (throttles >= 0),
    FOREIGN KEY (workspace_id, whatsapp_account_id)
        REFERENCES whatsapp_accounts (workspace_id, id) ON DELETE CASCADE
);

COMMENT ON TABLE meta_throttle IS
    'Meta accounts Meta throttled: the pace factor just after the last throttling answer; it recovers by 0.1 a second.';
COMMENT ON COLUMN meta_throttle.factor IS
    'The factor of the account''s rate just after the last throttling answer (0.1 to 1).';
COMMENT ON COLUMN meta_throttle.throttled_at IS
    'When Meta last throttled the account; each whole second since gives 0.1 of the factor back.';
COMMENT ON COLUMN meta_throttle.last_code IS
    'Meta''s code of the last throttling answer (130429, 131056, 4, 80007, 429).';
COMMENT ON COLUMN meta_throttle.throttles IS 'Throttling answers Meta gave the account, in all.';

GRANT SELECT, INSERT, UPDATE ON meta_throttle TO blazz_meta_sender;
GRANT SELECT ON meta_throttle TO blazz_campaign_sender;
