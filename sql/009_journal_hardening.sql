-- Journal hardening: every function names the tables and functions it uses, and
-- appending refuses a chain whose tail was deleted.
--
-- PostgreSQL searches pg_temp FIRST for tables unless a search_path names it.
-- The application role may create temporary tables (the LDAP sync writes
-- through one), so a temp table called journal or journal_head shadowed the
-- real ones inside journal_chain() and journal_advance(), which run as the
-- owner (SECURITY DEFINER): rows were chained to a forged head. Each function
-- below now pins search_path = pg_catalog, public, pg_temp (pg_temp last,
-- named) and schema-qualifies every table and function of ours it touches.
--
-- The canonical encoding is unchanged (gatehouse-journal-v1, see 002). Each
-- field is now written inline, F(v) = coalesce('|' || bytes || ':' || v, '|-')
-- (NULL propagates through ||), instead of by journal_field(): one function
-- call per row instead of thirteen, which pays for the pinned search_path.
-- Every operator and function resolves to an exact match in pg_catalog
-- (explicit ::text and ::name casts), so nothing in another schema outranks it.

CREATE OR REPLACE FUNCTION public.journal_payload(j public.journal) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    at text := to_char(j.ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');
BEGIN
    RETURN convert_to('gatehouse-journal-v1'::text
        || coalesce('|' || octet_length(convert_to(j.seq::text, 'UTF8'::name))::text || ':' || j.seq::text, '|-')
        || coalesce('|' || octet_length(convert_to(at, 'UTF8'::name))::text || ':' || at, '|-')
        || coalesce('|' || octet_length(convert_to(j.kind, 'UTF8'::name))::text || ':' || j.kind, '|-')
        || coalesce('|' || octet_length(convert_to(j.subject, 'UTF8'::name))::text || ':' || j.subject, '|-')
        || coalesce('|' || octet_length(convert_to(j.resource, 'UTF8'::name))::text || ':' || j.resource, '|-')
        || coalesce('|' || octet_length(convert_to(j.outcome, 'UTF8'::name))::text || ':' || j.outcome, '|-')
        || coalesce('|' || octet_length(convert_to(j.reasons::text, 'UTF8'::name))::text || ':' || j.reasons::text, '|-')
        || coalesce('|' || octet_length(convert_to(j.detail::text, 'UTF8'::name))::text || ':' || j.detail::text, '|-')
        || coalesce('|' || octet_length(convert_to(j.actor, 'UTF8'::name))::text || ':' || j.actor, '|-')
        || coalesce('|' || octet_length(convert_to(j.policy_version, 'UTF8'::name))::text || ':' || j.policy_version, '|-')
        || coalesce('|' || octet_length(convert_to(j.request_id, 'UTF8'::name))::text || ':' || j.request_id, '|-')
        || coalesce('|' || octet_length(convert_to(encode(j.prev_hash, 'hex'), 'UTF8'::name))::text || ':'
                    || encode(j.prev_hash, 'hex'), '|-'),
        'UTF8'::name);
END
$$;

DROP FUNCTION IF EXISTS public.journal_field(text);

-- As in 002, plus: the last row must be the one the head names. A tail deleted
-- behind the triggers leaves the head ahead of the last row; appending after
-- it would fail later, in journal_head_forward(), with a misleading message.
-- Say what is wrong instead, with a SQLSTATE of our own (GJ001) that the
-- application recognises. Inside one multi-row INSERT the head moves only at
-- the statement's end (journal_advance), so the last row may be ahead of it
-- there; only a last row behind the head is a broken chain.
CREATE OR REPLACE FUNCTION public.journal_chain() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    head_seq bigint;
    head_hash bytea;
    last_seq bigint;
    last_hash bytea;
BEGIN
    SELECT h.seq, h.hash INTO STRICT head_seq, head_hash FROM public.journal_head h WHERE h.id FOR UPDATE;
    SELECT j.seq, j.hash INTO last_seq, last_hash FROM public.journal j ORDER BY j.seq DESC LIMIT 1;
    IF NOT FOUND THEN  -- an empty journal continues from the genesis head (seq 0)
        last_seq := 0;
        last_hash := head_hash;
    END IF;
    IF last_seq < head_seq THEN
        RAISE EXCEPTION 'the journal''s head is at seq % but its last row is %: run gatehouse journal verify',
            head_seq, last_seq USING ERRCODE = 'GJ001';
    END IF;
    NEW.seq := last_seq + 1;
    NEW.ts := clock_timestamp();
    NEW.prev_hash := last_hash;
    NEW.hash := sha256(public.journal_payload(NEW));
    RETURN NEW;
END
$$;

-- `appended` is the statement's transition table: a temp table cannot shadow
-- it (transition tables are resolved before any schema is searched).
CREATE OR REPLACE FUNCTION public.journal_advance() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    UPDATE public.journal_head h SET seq = n.seq, hash = n.hash
    FROM (SELECT a.seq, a.hash FROM appended a ORDER BY a.seq DESC LIMIT 1) n
    WHERE h.id;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION public.journal_refuse() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'the journal is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

-- Not SECURITY DEFINER, but it runs inside journal_advance() in the
-- appender's session, where that session's temp tables exist.
CREATE OR REPLACE FUNCTION public.journal_head_forward() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF NEW.seq <= OLD.seq OR NEW.id IS DISTINCT FROM OLD.id
       OR NOT EXISTS (SELECT 1 FROM public.journal j WHERE j.seq = NEW.seq AND j.hash = NEW.hash) THEN
        RAISE EXCEPTION 'the journal is append-only: its head only moves forward, to a row that exists'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
