-- 0026_api_keys_revoke_only.sql - the CRM may revoke its API keys, nothing
-- more (issue 32).
--
-- 0021 granted blazz_crm UPDATE on the whole api_keys row: a CRM session
-- could un-revoke a key (revoked_at back to NULL) or put a hash of its own
-- choosing in secret_sha256, taking over a key it was never shown. Now it
-- may update revoked_at only, and only from NULL to a time: a revocation
-- is final. The owner (blazzctl, ingest's last_used_at) is not bound by the
-- column grant; the trigger binds everyone but is only reachable by a
-- change of revoked_at.

REVOKE UPDATE ON api_keys FROM blazz_crm;
GRANT UPDATE (revoked_at) ON api_keys TO blazz_crm;

CREATE FUNCTION blazz_api_keys_revocation_is_final() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.revoked_at IS NOT NULL AND NEW.revoked_at IS DISTINCT FROM OLD.revoked_at THEN
        RAISE EXCEPTION 'api key % was revoked at %: a revocation is final', OLD.key_id,
            OLD.revoked_at
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER api_keys_revocation_is_final BEFORE UPDATE OF revoked_at ON api_keys
    FOR EACH ROW EXECUTE FUNCTION blazz_api_keys_revocation_is_final();
