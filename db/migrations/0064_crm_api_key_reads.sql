-- 0064_crm_api_key_reads.sql - ingest lists the CRM's API keys and
-- revokes one over its API (GET /v1/api-keys, DELETE /v1/api-keys/
-- {key_id}, issue 54; services/ingest/crm/crm_api_keys.c).
--
-- Expand only (docs/decisions/0008): grants no service of an earlier
-- release misses.
--
-- The CRM's own role may read its keys and revoke them, nothing more
-- (0026: a revocation is final, the trigger binds every role). Ingest's
-- role, blazz_ingest, already reads a key's id, workspace, hash and
-- revocation to check requests (0027); it gets the columns the list
-- answers beside them (never the hash, which it reads but does not
-- answer) and revoked_at to write, bound by the same trigger. Creating a
-- key stays an operator's (`blazzctl apikeys create`): a CRM key that could
-- mint keys would let one leaked key outlive its revocation.

GRANT SELECT (name, created_at, last_used_at) ON api_keys TO blazz_ingest;
GRANT UPDATE (revoked_at) ON api_keys TO blazz_ingest;
