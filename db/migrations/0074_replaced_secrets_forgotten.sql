-- 0074_replaced_secrets_forgotten.sql - a webhook endpoint's replaced
-- signing secret is forgotten once its overlap ended (issue 54).
--
-- Expand only (docs/decisions/0008): a function no service of an earlier
-- release calls.
--
-- A rotation (0071) keeps the secret it replaces, sealed, until
-- previous_secret_until; past it the dispatcher signs with the new secret
-- alone, but the old ciphertext stayed in the row until the next rotation,
-- one more copy of a secret nobody uses. cleanup forgets it at its sweeps.
-- Its role never reads a secret column: the function runs as the table's
-- owner and can only empty the replaced secret of an endpoint whose overlap
-- ended before p_before (cleanup's clock), never write one. The row's
-- updated_at moves with it (webhook_endpoints_touch): the endpoint did
-- change, a secret it held is gone.

CREATE FUNCTION blazz_forget_replaced_secrets(p_before timestamptz)
    RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
    WITH forgotten AS (
        UPDATE public.webhook_endpoints
        SET previous_secret_ciphertext = NULL, previous_secret_nonce = NULL,
            previous_secret_until = NULL
        WHERE previous_secret_until < p_before
        RETURNING 1)
    SELECT count(*) FROM forgotten
$$;

REVOKE ALL ON FUNCTION blazz_forget_replaced_secrets FROM PUBLIC;
GRANT EXECUTE ON FUNCTION blazz_forget_replaced_secrets TO blazz_cleanup;
