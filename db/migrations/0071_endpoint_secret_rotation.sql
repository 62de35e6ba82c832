-- 0071_endpoint_secret_rotation.sql - the CRM rotates its webhook
-- endpoints' signing secrets over the API, with an overlap (issue 54:
-- POST /v1/webhook-endpoints/{id}/rotate-secret,
-- services/ingest/crm/crm_webhook_writes.c).
--
-- Expand only (docs/decisions/0008): new nullable columns and a function;
-- a dispatcher of an earlier release ignores the columns and signs with
-- the new secret alone.
--
-- A rotation seals a new secret (ingest holds the ring, §9.3 of
-- SECURITY.md) and keeps the one it replaces, still sealed as it was,
-- beside it until previous_secret_until: the dispatcher signs every
-- delivery with both until then (Standard Webhooks' several signatures),
-- so a receiver can move to the new secret at its own pace. Ingest's role
-- is the internet-facing one (0027) and must never read a secret: moving
-- the old ciphertext to its new column reads it, so the move is this
-- function, run as the table's owner, and ingest may only call it. The
-- ciphertext stays bound to its row ("webhook_endpoints:<id>:<workspace>"),
-- so it opens in its new column as it did in the old one.

ALTER TABLE webhook_endpoints
    ADD COLUMN previous_secret_ciphertext bytea,
    ADD COLUMN previous_secret_nonce bytea,
    ADD COLUMN previous_secret_until timestamptz,
    ADD CONSTRAINT webhook_endpoints_previous_secret_whole
        CHECK ((previous_secret_ciphertext IS NULL) = (previous_secret_until IS NULL)
               AND (previous_secret_nonce IS NULL OR previous_secret_ciphertext IS NOT NULL));

COMMENT ON COLUMN webhook_endpoints.previous_secret_ciphertext IS
    'The signing secret a rotation replaced, sealed as it was (0071); deliveries are signed with it too until previous_secret_until.';
COMMENT ON COLUMN webhook_endpoints.previous_secret_nonce IS
    'secret_nonce of the replaced secret when it was in the older form (0025), else NULL.';
COMMENT ON COLUMN webhook_endpoints.previous_secret_until IS
    'When the replaced secret stops signing (the rotation''s overlap).';

-- The workspace's live endpoint p_endpoint gets the sealed secret p_sealed
-- (current form: its key id inside, bound to the row); the secret it had
-- keeps signing for p_overlap_s seconds (0: not at all). An endpoint signed
-- with X-WhatsApp-Signature (signature_scheme whatsapp_hmac) carries one
-- signature a request, so its old secret stops at once whatever the
-- overlap. Answers the endpoint's id and when the old secret stops, no row
-- when the endpoint is not the workspace's.
CREATE FUNCTION blazz_rotate_endpoint_secret(p_workspace_id bigint, p_endpoint_id bigint,
                                             p_sealed bytea, p_overlap_s integer)
    RETURNS TABLE (endpoint_id bigint, previous_secret_until timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF p_overlap_s IS NULL OR p_overlap_s < 0 THEN
        RAISE EXCEPTION 'rotate the secret of endpoint %: overlap % s is not a duration',
            p_endpoint_id, p_overlap_s USING ERRCODE = '22023';
    END IF;
    RETURN QUERY
    UPDATE public.webhook_endpoints e
    SET previous_secret_ciphertext = CASE WHEN p_overlap_s > 0 AND e.signature_scheme = 'standard'
                                          THEN e.secret_ciphertext END,
        previous_secret_nonce = CASE WHEN p_overlap_s > 0 AND e.signature_scheme = 'standard'
                                     THEN e.secret_nonce END,
        previous_secret_until = CASE WHEN p_overlap_s > 0 AND e.signature_scheme = 'standard'
                                     THEN now() + make_interval(secs => p_overlap_s) END,
        secret_ciphertext = p_sealed,
        secret_nonce = NULL
    WHERE e.workspace_id = p_workspace_id AND e.id = p_endpoint_id AND e.deleted_at IS NULL
    RETURNING e.id, e.previous_secret_until;
END;
$$;

REVOKE ALL ON FUNCTION blazz_rotate_endpoint_secret(bigint, bigint, bytea, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION blazz_rotate_endpoint_secret(bigint, bigint, bytea, integer)
    TO blazz_ingest;
