-- 0017: the (status, updated_at) index of webhook_retry_queue covers final
-- rows only.
--
-- Its one reader is cleanup's retention purge (status = 'success' AND
-- updated_at < cutoff). Covering open rows too made it a second way to find
-- pending rows: when the statistics lagged a burst of deliveries (the table
-- looked empty at the last ANALYZE), the planner read every pending row
-- through it and sorted them on each claim, instead of walking the due index
-- (status, next_retry_at) in order up to the claim's LIMIT; dispatcher
-- throughput fell from thousands to a few hundred a second. Open rows are
-- also the ones updated most (a claim lease, then the outcome), and each of
-- those updates no longer has to touch this index.
DROP INDEX webhook_retry_queue_status_updated_idx;
CREATE INDEX webhook_retry_queue_final_updated_idx ON webhook_retry_queue (status, updated_at)
    WHERE status IN ('success', 'failed');
