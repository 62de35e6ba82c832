-- 0020: webhook deliveries count their claims and are claimed endpoint by
-- endpoint; endpoints record how long their circuit is open and default to
-- 500 deliveries a second.
--
-- webhook_retry_queue.claims counts the claims of a delivery. The
-- dispatcher's claim increments it, and every outcome the dispatcher writes
-- names the claim it comes from: it applies only while the row is still on
-- that claim. When a holder's lease runs out (a frozen or cut-off instance,
-- a dead letter waiting for the broker) and another claim takes the row,
-- the stale holder's outcome is ignored and its dead letter is never sent,
-- instead of counting an attempt twice or dead-lettering a delivery twice.
-- A column with a constant default is added without rewriting the table.
--
-- webhook_retry_queue_endpoint_due_idx replaces webhook_retry_queue_due_idx
-- (status, next_retry_at). The dispatcher's claim walked that index in time
-- order and skipped the rows of endpoints it could not take: endpoints that
-- stopped answering, or a slow one with a large backlog, put tens of
-- thousands of rows in front of everyone else's and every claim walked them
-- (a healthy endpoint's deliveries went from 25 ms to seconds beside 100
-- endpoints that never answer). The claim now finds the endpoints with open
-- rows by a skip scan of this index and takes each one's oldest rows, so its
-- cost follows endpoints, not rows. status is included for the queue-depth
-- gauge, which counted through the old index.
--
-- webhook_endpoints.circuit_open_until is set by the dispatcher when an
-- endpoint's circuit breaker opens, and fan-out stamps the endpoint's new
-- rows due at that time rather than now. The open circuit's backlog was
-- already moved past the open period in the table, so that every
-- dispatcher instance waits it out; rows arriving during the open period
-- now wait too, instead of being claimed by an instance that has not yet
-- learnt (by its own timeouts) that the endpoint is down. NULL or past: no
-- effect.
--
-- webhook_endpoints.rate_limit_per_sec defaulted to 10 deliveries a second,
-- less than one busy workspace produces: one WhatsApp account sending a
-- campaign at Meta's 80 messages/s tier makes up to ~320 events a second
-- (each message created, then sent, delivered and read), so that
-- workspace's webhooks fell behind for good. 500 a second keeps up with such
-- an account with room to spare, and still caps a runaway. Endpoints that
-- exist keep the limit they have (10 may have been chosen on purpose);
-- `blazzctl webhooks add --rate N` or an UPDATE sets another one.
ALTER TABLE webhook_retry_queue ADD COLUMN claims integer NOT NULL DEFAULT 0;
CREATE INDEX webhook_retry_queue_endpoint_due_idx
    ON webhook_retry_queue (endpoint_id, next_retry_at, id) INCLUDE (status)
    WHERE status IN ('pending', 'retrying');
DROP INDEX webhook_retry_queue_due_idx;
ALTER TABLE webhook_endpoints ADD COLUMN circuit_open_until timestamptz;
ALTER TABLE webhook_endpoints ALTER COLUMN rate_limit_per_sec SET DEFAULT 500;
