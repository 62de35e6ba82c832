-- 0032_meta_business_accounts_and_templates.sql - the business behind Meta's
-- numbers, and templates as Meta reports them (issue 35, ARCHITECTURE.md
-- §12.5).
--
-- Meta's templates, messaging limits and account notices belong to the
-- WhatsApp Business Account (WABA) and its business portfolio, not to one
-- phone number: their webhooks carry the WABA id (entry.id) and no
-- phone_number_id. whatsapp_accounts.meta_waba_id and meta_business_id
-- record them for each Meta account (`blazzctl meta business`); ingest
-- accepts a WABA's notification only when a live account names the WABA,
-- and all accounts naming one WABA are one workspace's (a trigger keeps it
-- so), which is the workspace its templates belong to.
--
-- templates gains what Meta says of a template: the WABA it lives in, the
-- rejection reason, the quality score, Meta's last status event, and when
-- Meta reported the status, the category and the quality. A template of a WABA is one row per (workspace, WABA, name,
-- language), Meta's own key; templates made in the CRM before their WABA
-- was known (meta_waba_id NULL) are adopted by the first report of their
-- name and language. status keeps Meta's words (APPROVED, PENDING,
-- REJECTED, PAUSED, DISABLED, ...); sendable: APPROVED and FLAGGED (at risk,
-- still sent).

ALTER TABLE whatsapp_accounts
    ADD COLUMN meta_waba_id     text CHECK (meta_waba_id ~ '^[0-9]{1,32}$'),
    ADD COLUMN meta_business_id text CHECK (meta_business_id ~ '^[0-9]{1,32}$'),
    ADD CONSTRAINT whatsapp_accounts_meta_business_only_meta
        CHECK (provider_type = 'meta' OR (meta_waba_id IS NULL AND meta_business_id IS NULL));

COMMENT ON COLUMN whatsapp_accounts.meta_waba_id IS
    'Meta accounts: the WhatsApp Business Account of the number (templates, limits and account webhooks are per WABA).';
COMMENT ON COLUMN whatsapp_accounts.meta_business_id IS
    'Meta accounts: the business portfolio of the WABA (the 24 h messaging limit is shared across it).';

CREATE INDEX whatsapp_accounts_meta_waba_idx ON whatsapp_accounts (meta_waba_id)
    WHERE meta_waba_id IS NOT NULL AND deleted_at IS NULL;

-- One workspace per WABA: its templates have one owner. Checked on write
-- (the columns change by hand, rarely), under a lock per WABA so two
-- writers cannot both pass.
CREATE FUNCTION blazz_waba_in_one_workspace() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF NEW.meta_waba_id IS NULL OR NEW.deleted_at IS NOT NULL THEN
        RETURN NEW;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('whatsapp_accounts.meta_waba_id'), hashtext(NEW.meta_waba_id));
    IF EXISTS (SELECT 1 FROM whatsapp_accounts a
               WHERE a.meta_waba_id = NEW.meta_waba_id AND a.deleted_at IS NULL
                 AND a.workspace_id <> NEW.workspace_id) THEN
        RAISE EXCEPTION 'WhatsApp Business Account % belongs to another workspace', NEW.meta_waba_id
            USING ERRCODE = 'unique_violation',
                  HINT = 'A WABA''s numbers, templates and limits are one workspace''s.';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER whatsapp_accounts_waba_in_one_workspace
    BEFORE INSERT OR UPDATE OF meta_waba_id, workspace_id, deleted_at ON whatsapp_accounts
    FOR EACH ROW EXECUTE FUNCTION blazz_waba_in_one_workspace();

ALTER TABLE templates
    ADD COLUMN meta_waba_id          text CHECK (meta_waba_id ~ '^[0-9]{1,32}$'),
    ADD COLUMN rejection_reason      text,
    ADD COLUMN quality_score         text,
    ADD COLUMN meta_event            text,
    ADD COLUMN meta_event_at         timestamptz,
    ADD COLUMN category_reported_at  timestamptz,
    ADD COLUMN quality_reported_at   timestamptz;

COMMENT ON COLUMN templates.meta_event IS
    'Meta''s last status event of the template (APPROVED, PAUSED, LOCKED, ...); status follows it except for events that do not change whether it may be sent.';
COMMENT ON COLUMN templates.meta_event_at IS
    'When Meta reported the status kept here (webhook entry.time, or the sync); an older status report does not overwrite it. category_reported_at and quality_reported_at do the same for the category and the quality score, which Meta reports apart.';

CREATE UNIQUE INDEX templates_waba_name_language_key
    ON templates (workspace_id, meta_waba_id, name, language)
    WHERE meta_waba_id IS NOT NULL AND deleted_at IS NULL;

-- One report from Meta about one template (a webhook applied by chat-sync,
-- a row of the template list read by `blazzctl meta templates sync`),
-- applied the one way both use. The row is found by Meta's key (workspace,
-- WABA, name, language), else by Meta's template id, else a template made
-- in the CRM under that name and language with no WABA yet is adopted; else
-- one is made. A report carries a status (p_event), a category, a quality
-- score, or several; each is applied unless the row keeps a later report of
-- it (Meta does not promise the order of its deliveries, and reports each
-- apart). Events that say nothing of whether the template may be sent
-- (LOCKED, UNLOCKED, LIMIT_EXCEEDED) keep the status; REINSTATED and
-- UNARCHIVED make it APPROVED again. changed: whether status, category,
-- quality or reason moved (chat-sync tells the CRM only then).
CREATE FUNCTION blazz_template_report(
    p_workspace_id bigint, p_waba_id text, p_meta_template_id text, p_name text,
    p_language text, p_event text, p_reason text, p_category text, p_quality text,
    p_at timestamptz,
    OUT template_id bigint, OUT changed boolean, OUT status text)
    LANGUAGE plpgsql
AS $$
DECLARE
    t templates%ROWTYPE;
    new_status text;
    status_newer boolean;
    category_newer boolean;
    quality_newer boolean;
BEGIN
    SELECT * INTO t FROM templates x
    WHERE x.workspace_id = p_workspace_id AND x.deleted_at IS NULL
      AND ((x.meta_waba_id = p_waba_id AND x.name = p_name AND x.language = p_language)
           OR (p_meta_template_id IS NOT NULL AND x.meta_template_id = p_meta_template_id)
           OR (x.meta_waba_id IS NULL AND x.name = p_name AND x.language = p_language))
    ORDER BY (x.meta_waba_id = p_waba_id AND x.name = p_name AND x.language = p_language) DESC
                 NULLS LAST,
             (x.meta_template_id = p_meta_template_id) DESC NULLS LAST, x.id
    LIMIT 1
    FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO templates (workspace_id, name, language)
        VALUES (p_workspace_id, p_name, p_language)
        RETURNING * INTO t;
    END IF;
    status_newer := p_event IS NOT NULL AND (t.meta_event_at IS NULL OR t.meta_event_at <= p_at);
    category_newer := p_category IS NOT NULL
                      AND (t.category_reported_at IS NULL OR t.category_reported_at <= p_at);
    quality_newer := p_quality IS NOT NULL
                     AND (t.quality_reported_at IS NULL OR t.quality_reported_at <= p_at);
    new_status := CASE
        WHEN NOT status_newer OR p_event IN ('LOCKED', 'UNLOCKED', 'LIMIT_EXCEEDED') THEN t.status
        WHEN p_event IN ('REINSTATED', 'UNARCHIVED') THEN 'APPROVED'
        ELSE p_event END;
    UPDATE templates x
    SET meta_waba_id = p_waba_id,
        meta_template_id = coalesce(p_meta_template_id, x.meta_template_id),
        status = new_status,
        rejection_reason = CASE WHEN NOT status_newer THEN x.rejection_reason
                                WHEN new_status IN ('APPROVED', 'FLAGGED') THEN NULL
                                ELSE nullif(p_reason, 'NONE') END,
        meta_event = CASE WHEN status_newer THEN p_event ELSE x.meta_event END,
        meta_event_at = CASE WHEN status_newer THEN p_at ELSE x.meta_event_at END,
        category = CASE WHEN category_newer THEN p_category ELSE x.category END,
        category_reported_at = CASE WHEN category_newer THEN p_at ELSE x.category_reported_at END,
        quality_score = CASE WHEN quality_newer THEN p_quality ELSE x.quality_score END,
        quality_reported_at = CASE WHEN quality_newer THEN p_at ELSE x.quality_reported_at END
    WHERE x.id = t.id
    RETURNING x.id, x.status,
              (x.status IS DISTINCT FROM t.status OR x.category IS DISTINCT FROM t.category
               OR x.quality_score IS DISTINCT FROM t.quality_score
               OR x.rejection_reason IS DISTINCT FROM t.rejection_reason)
        INTO template_id, status, changed;
END
$$;

-- chat-sync applies Meta's template reports.
GRANT INSERT, UPDATE ON templates TO blazz_chat_sync;
GRANT EXECUTE ON FUNCTION blazz_template_report TO blazz_chat_sync;
