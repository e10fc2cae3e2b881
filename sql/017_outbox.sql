-- Outbound enforcement: the outbox, written by the database itself.
--
-- A grant change must reach the tools where access also lives (a SCIM tool,
-- an LDAP group, a webhook). Whatever code path changes a grant (the training
-- sweep, a leaver, an admin, a group rule, a review), the trigger below writes
-- one outbox row per target of the grant's resource in the same transaction,
-- so no path can forget it and a rolled-back change leaves no row. The worker's
-- `outbox` job delivers the rows, outside any transaction, in order per
-- (person, target).
--
-- The application role may read the outbox and move a row through its states
-- (intent -> sent -> confirmed; dead; discarded), never insert, delete, or
-- change what a row asks for; every change of a row needs its journal row
-- (kind outbound, detail.outbox = the row's id) written earlier in the same
-- transaction, so a row cannot be marked done unrecorded (grants.sql holds the
-- privileges, as it re-applies them after every run).

ALTER TABLE journal DROP CONSTRAINT journal_kind_check;
ALTER TABLE journal ADD CONSTRAINT journal_kind_check
    CHECK (kind IN ('check', 'grant', 'revoke', 'suspend', 'restore', 'sync', 'review', 'notify', 'admin', 'job',
                    'outbound'));

-- The policy file's [[targets]], synced at start by key like the resources; a
-- target dropped from the file is disabled (its rows and journal stay).
CREATE TABLE outbound_targets (
    key           text PRIMARY KEY CHECK (key ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
    resource_id   uuid NOT NULL REFERENCES resources (id),
    type          text NOT NULL CHECK (type IN ('scim', 'ldap_group', 'webhook')),
    enabled       boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbound_targets_resource_idx ON outbound_targets (resource_id) WHERE enabled;

CREATE TABLE outbox (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Sent with each delivery (Idempotency-Key, the webhook's event id): a
    -- receiver that saw it already can tell a retry from a new event.
    idempotency_key  uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    target           text NOT NULL REFERENCES outbound_targets (key),
    -- No foreign key: a row outlives its person and grant (the journal names them too).
    person_id        uuid NOT NULL,
    user_name        text,
    resource         text NOT NULL,
    grant_id         uuid,
    op               text NOT NULL CHECK (op IN ('disable', 'enable')),
    cause            text NOT NULL CHECK (cause IN ('grant', 'restore', 'suspend', 'revoke', 'delete')),
    reason           text,
    state            text NOT NULL DEFAULT 'intent'
                     CHECK (state IN ('intent', 'sent', 'confirmed', 'dead', 'discarded')),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text,
    remote_id        text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    confirmed_at     timestamptz,
    finished_by      text,
    CHECK (state <> 'confirmed' OR (sent_at IS NOT NULL AND confirmed_at IS NOT NULL)),
    CHECK (state <> 'discarded' OR finished_by IS NOT NULL)
);
CREATE INDEX outbox_due_idx ON outbox (next_attempt_at, id) WHERE state IN ('intent', 'sent');
CREATE INDEX outbox_pair_idx ON outbox (person_id, target, id);
CREATE INDEX outbox_state_idx ON outbox (target, state);

-- The remote user's id at a SCIM target, once found: later deliveries use it
-- instead of searching by userName again.
CREATE TABLE outbound_accounts (
    target      text NOT NULL REFERENCES outbound_targets (key),
    person_id   uuid NOT NULL,
    remote_id   text NOT NULL CHECK (length(remote_id) BETWEEN 1 AND 1024),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (target, person_id)
);

-- INSERT of an active grant: enable (a new grant). A state change from active:
-- disable (suspend, revoke); to active: enable (restore). suspended <-> revoked
-- changes nothing downstream (the access is off already). A deleted active grant
-- (a cascade from its person or resource included): disable.
-- SECURITY DEFINER: the application role cannot insert outbox rows itself.
CREATE FUNCTION public.outbox_enqueue() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    g public.grants;
    new_op text;
    new_cause text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        g := OLD;
        IF OLD.state <> 'active' THEN
            RETURN NULL;
        END IF;
        new_op := 'disable';
        new_cause := 'delete';
    ELSIF TG_OP = 'INSERT' THEN
        g := NEW;
        IF NEW.state <> 'active' THEN
            RETURN NULL;
        END IF;
        new_op := 'enable';
        new_cause := 'grant';
    ELSE
        g := NEW;
        IF NEW.state = OLD.state THEN
            RETURN NULL;
        ELSIF NEW.state = 'active' THEN
            new_op := 'enable';
            new_cause := 'restore';
        ELSIF OLD.state = 'active' THEN
            new_op := 'disable';
            new_cause := CASE NEW.state WHEN 'suspended' THEN 'suspend' ELSE 'revoke' END;
        ELSE
            RETURN NULL;
        END IF;
    END IF;
    INSERT INTO public.outbox (target, person_id, user_name, resource, grant_id, op, cause, reason)
    SELECT t.key, g.person_id, p.user_name, r.key, g.id, new_op, new_cause, g.reason
    FROM public.outbound_targets t
    JOIN public.resources r ON r.id = t.resource_id
    LEFT JOIN public.people p ON p.id = g.person_id
    WHERE t.resource_id = g.resource_id AND t.enabled
    ORDER BY t.key;
    RETURN NULL;
END
$$;

CREATE TRIGGER grants_outbox AFTER INSERT OR UPDATE OF state OR DELETE ON grants
    FOR EACH ROW EXECUTE FUNCTION public.outbox_enqueue();

-- What a row asks for never changes; a confirmed or discarded row never
-- changes again; states move only forward (a dead row may be retried); and
-- every change comes with its journal row, written first in the same
-- transaction (ts >= now(): a journal row's ts is the clock at its insert, now()
-- the transaction's start).
CREATE FUNCTION public.outbox_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF TG_OP <> 'UPDATE' THEN
        RAISE EXCEPTION 'outbox rows are never deleted: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF (NEW.id, NEW.idempotency_key, NEW.target, NEW.person_id, NEW.user_name, NEW.resource, NEW.grant_id,
        NEW.op, NEW.cause, NEW.reason, NEW.created_at)
       IS DISTINCT FROM (OLD.id, OLD.idempotency_key, OLD.target, OLD.person_id, OLD.user_name, OLD.resource,
                         OLD.grant_id, OLD.op, OLD.cause, OLD.reason, OLD.created_at) THEN
        RAISE EXCEPTION 'outbox row %: what it asks for never changes', OLD.id USING ERRCODE = 'GO001';
    END IF;
    IF OLD.state IN ('confirmed', 'discarded') THEN
        RAISE EXCEPTION 'outbox row % is % and final', OLD.id, OLD.state USING ERRCODE = 'GO001';
    END IF;
    IF NOT (OLD.state = NEW.state
            OR (OLD.state = 'intent' AND NEW.state IN ('sent', 'dead', 'discarded'))
            OR (OLD.state = 'sent' AND NEW.state IN ('confirmed', 'dead', 'discarded'))
            OR (OLD.state = 'dead' AND NEW.state IN ('intent', 'discarded'))) THEN
        RAISE EXCEPTION 'outbox row %: % -> % is not a transition', OLD.id, OLD.state, NEW.state
            USING ERRCODE = 'GO001';
    END IF;
    IF NEW.attempts < OLD.attempts AND NOT (OLD.state = 'dead' AND NEW.state = 'intent') THEN
        RAISE EXCEPTION 'outbox row %: attempts only grow', OLD.id USING ERRCODE = 'GO001';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM public.journal j
                   WHERE j.kind = 'outbound' AND j.ts >= now() AND j.detail ->> 'outbox' = OLD.id::text) THEN
        RAISE EXCEPTION 'outbox row %: a change needs its journal row (kind outbound) first, in its transaction',
            OLD.id USING ERRCODE = 'GO001';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER outbox_guard BEFORE UPDATE OR DELETE ON outbox
    FOR EACH ROW EXECUTE FUNCTION public.outbox_guard();
CREATE TRIGGER outbox_no_truncate BEFORE TRUNCATE ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION public.journal_refuse();
