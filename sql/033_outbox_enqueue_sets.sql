-- The grants' outbox trigger once per statement, not once per row. A review
-- deadline revokes 100,000 grants in one UPDATE, and the row trigger of 017
-- ran its INSERT ... SELECT 100,000 times (4 of the statement's 11 s,
-- measured); one INSERT ... SELECT over the statement's transition tables
-- queues the same rows. The rules are 017's: a new active grant enables; a
-- state change from active disables (suspend, revoke), one to active enables
-- (restore), suspended <-> revoked changes nothing downstream; a deleted
-- active grant (a cascade from its person or resource included) disables.
-- Within a statement a (person, target) pair has at most one row (one grant
-- per person and resource), so the order across statements, which is the
-- order that matters (outbox ids), is unchanged.
-- SECURITY DEFINER: the application role cannot insert outbox rows itself.
-- Transition tables allow no column list, so the UPDATE trigger fires for any
-- UPDATE of grants; a statement that leaves every state as it was queues
-- nothing.
SET LOCAL lock_timeout = '10s';

DROP TRIGGER grants_outbox ON public.grants;
DROP FUNCTION public.outbox_enqueue();

CREATE FUNCTION public.outbox_enqueue_set() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO public.outbox (target, person_id, user_name, resource, grant_id, op, cause, reason)
        SELECT t.key, g.person_id, p.user_name, r.key, g.id, 'enable', 'grant', g.reason
        FROM new_grants g
        JOIN public.outbound_targets t ON t.resource_id = g.resource_id AND t.enabled
        JOIN public.resources r ON r.id = t.resource_id
        LEFT JOIN public.people p ON p.id = g.person_id
        WHERE g.state = 'active'
        ORDER BY g.person_id, t.key;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO public.outbox (target, person_id, user_name, resource, grant_id, op, cause, reason)
        SELECT t.key, g.person_id, p.user_name, r.key, g.id,
               CASE WHEN g.state = 'active' THEN 'enable' ELSE 'disable' END,
               CASE WHEN g.state = 'active' THEN 'restore' WHEN g.state = 'suspended' THEN 'suspend'
                    ELSE 'revoke' END,
               g.reason
        FROM new_grants g
        JOIN old_grants o ON o.id = g.id
        JOIN public.outbound_targets t ON t.resource_id = g.resource_id AND t.enabled
        JOIN public.resources r ON r.id = t.resource_id
        LEFT JOIN public.people p ON p.id = g.person_id
        WHERE g.state <> o.state AND 'active' IN (g.state, o.state)
        ORDER BY g.person_id, t.key;
    ELSE
        INSERT INTO public.outbox (target, person_id, user_name, resource, grant_id, op, cause, reason)
        SELECT t.key, g.person_id, p.user_name, r.key, g.id, 'disable', 'delete', g.reason
        FROM old_grants g
        JOIN public.outbound_targets t ON t.resource_id = g.resource_id AND t.enabled
        JOIN public.resources r ON r.id = t.resource_id
        LEFT JOIN public.people p ON p.id = g.person_id
        WHERE g.state = 'active'
        ORDER BY g.person_id, t.key;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER grants_outbox_insert AFTER INSERT ON public.grants
    REFERENCING NEW TABLE AS new_grants FOR EACH STATEMENT EXECUTE FUNCTION public.outbox_enqueue_set();
CREATE TRIGGER grants_outbox_update AFTER UPDATE ON public.grants
    REFERENCING OLD TABLE AS old_grants NEW TABLE AS new_grants
    FOR EACH STATEMENT EXECUTE FUNCTION public.outbox_enqueue_set();
CREATE TRIGGER grants_outbox_delete AFTER DELETE ON public.grants
    REFERENCING OLD TABLE AS old_grants FOR EACH STATEMENT EXECUTE FUNCTION public.outbox_enqueue_set();
