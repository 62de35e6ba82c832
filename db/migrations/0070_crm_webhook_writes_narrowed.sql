-- 0070_crm_webhook_writes_narrowed.sql - the CRM's role reads the webhook
-- tables and no longer writes them (issue 54; least privilege, the step
-- 0065 left for a release later).
--
-- 0065 narrowed blazz_crm's writes to what READS.md §6 says the CRM
-- writes, but left webhook_endpoints and webhook_retry_queue as the seeds
-- had them: their disable, enable and replay over the API (0063) were new
-- in that release, and a CRM doing them in SQL needed a release to move
-- (docs/decisions/0008, rule 1). v0.47.0 shipped them. An endpoint is made
-- and its secret sealed by blazzctl webhooks (as the migrator), disabled or
-- enabled through PATCH /v1/webhook-endpoints/{id}, a dead delivery replayed
-- through POST /v1/webhook-endpoints/{id}/replay; the dispatcher writes the
-- rest. No service logs in as blazz_crm, so none is affected; reading stays
-- as it was (SELECT, row level security).

REVOKE INSERT, UPDATE, DELETE ON webhook_endpoints, webhook_retry_queue FROM blazz_crm;
