-- Privileges of the application role, re-applied after every migration run
-- (so tables added later are covered). The runner sets gatehouse.app_role.
-- The application may read and write the domain tables, may only INSERT and
-- SELECT the journal, and may not touch the journal head or the migrations.
DO $$
DECLARE
    app text := current_setting('gatehouse.app_role');
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA public TO %I', app);
    -- The journal's functions search public (after pg_catalog): nobody but the
    -- owner may create objects there. PostgreSQL 15+ has this by default; on
    -- older servers it takes the schema's owner (else this only warns).
    REVOKE CREATE ON SCHEMA public FROM PUBLIC;
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO %I', app);
    EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO %I', app);
    EXECUTE format('REVOKE ALL ON public.journal, public.journal_head, public.schema_migrations FROM %I', app);
    EXECUTE format('GRANT SELECT, INSERT ON public.journal TO %I', app);
    EXECUTE format('GRANT SELECT ON public.journal_head, public.schema_migrations TO %I', app);
    -- OIDC bindings: added at a first sign-in, then only last_seen_at moves;
    -- the application never rebinds or unbinds anyone (the owner may).
    EXECUTE format('REVOKE ALL ON public.person_oidc_identities FROM %I', app);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE (last_seen_at) ON public.person_oidc_identities TO %I', app);
    -- The outbox (017): rows are written by the grants trigger only; the worker moves a row through its
    -- delivery states, never changes what it asks for, never deletes one. Targets come from the policy file at
    -- start (disabled, never deleted, when dropped from it).
    EXECUTE format('REVOKE ALL ON public.outbox, public.outbound_targets FROM %I', app);
    EXECUTE format('GRANT SELECT, UPDATE (state, attempts, next_attempt_at, last_error, remote_id, sent_at, '
                   'confirmed_at, finished_by) ON public.outbox TO %I', app);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE (resource_id, type, enabled, updated_at) '
                   'ON public.outbound_targets TO %I', app);
    -- Policy texts (024): evidence of what was in force; added at start, never changed.
    IF to_regclass('public.policy_texts') IS NOT NULL THEN
        EXECUTE format('REVOKE ALL ON public.policy_texts FROM %I', app);
        EXECUTE format('GRANT SELECT, INSERT ON public.policy_texts TO %I', app);
    END IF;
    -- Evidence bundles (027): a request moves queued -> running -> done|failed; a built bundle's parts are
    -- written once and never changed.
    IF to_regclass('public.evidence_requests') IS NOT NULL THEN
        EXECUTE format('REVOKE ALL ON public.evidence_requests, public.evidence_bundle_parts FROM %I', app);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE (state, started_at, finished_at, row_count, bytes, sha256, '
                       'error) ON public.evidence_requests TO %I', app);
        EXECUTE format('GRANT SELECT, INSERT ON public.evidence_bundle_parts TO %I', app);
    END IF;
    -- Checkpoints (022): the Merkle tree's nodes and the signed checkpoints are append-only, like the journal.
    EXECUTE format('REVOKE ALL ON public.journal_merkle, public.journal_checkpoints FROM %I', app);
    EXECUTE format('GRANT SELECT, INSERT ON public.journal_merkle, public.journal_checkpoints TO %I', app);
END
$$;
