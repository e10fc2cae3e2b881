-- The decision journal: one row per event, append-only, hash-chained.
--
-- Canonical encoding (gatehouse-journal-v1), documented in README.md and
-- reproduced by service/journal.py for `gatehouse journal verify`:
--   hash = sha256(utf8("gatehouse-journal-v1" || F(seq) || F(ts) || ... || F(prev_hash)))
-- where F(NULL) = '|-' and F(v) = '|' || octet_length(v) || ':' || v, the
-- fields in the order of journal_payload() below, ts as UTC with microseconds,
-- jsonb as PostgreSQL's canonical jsonb text and hashes as lowercase hex.

CREATE TABLE journal (
    seq             bigint PRIMARY KEY CHECK (seq > 0),
    ts              timestamptz NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('check', 'grant', 'revoke', 'suspend', 'restore',
                                                  'sync', 'review', 'notify', 'admin', 'job')),
    subject         text,
    resource        text,
    outcome         text NOT NULL CHECK (length(outcome) BETWEEN 1 AND 64),
    reasons         jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(reasons) = 'array'),
    detail          jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(detail) = 'object'),
    actor           text NOT NULL CHECK (length(actor) BETWEEN 1 AND 512),
    policy_version  text,
    request_id      text,
    prev_hash       bytea NOT NULL UNIQUE CHECK (octet_length(prev_hash) = 32),
    hash            bytea NOT NULL UNIQUE CHECK (octet_length(hash) = 32)
);
CREATE INDEX journal_subject_idx ON journal (subject, seq) WHERE subject IS NOT NULL;
CREATE INDEX journal_kind_ts_idx ON journal (kind, ts);

-- The chain's head: one row, locked by each append, so appenders from any
-- number of sessions form one linear, gapless chain (a sequence would leave
-- gaps on rollback; the lock is released at commit or rollback). It also
-- remembers the last row, so a deleted tail is noticed by verification.
CREATE TABLE journal_head (
    id    boolean PRIMARY KEY DEFAULT true CHECK (id),
    seq   bigint NOT NULL,
    hash  bytea NOT NULL
);
INSERT INTO journal_head (id, seq, hash) VALUES (true, 0, '\x0000000000000000000000000000000000000000000000000000000000000000');

-- plpgsql rather than SQL functions: plpgsql caches its plans, a non-inlined
-- SQL function is planned anew on every call (0.4 ms a row, measured).
CREATE FUNCTION journal_field(v text) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    IF v IS NULL THEN
        RETURN '|-';
    END IF;
    RETURN '|' || octet_length(convert_to(v, 'UTF8')) || ':' || v;
END
$$;

CREATE FUNCTION journal_payload(j journal) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    RETURN convert_to('gatehouse-journal-v1'
        || journal_field(j.seq::text)
        || journal_field(to_char(j.ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
        || journal_field(j.kind)
        || journal_field(j.subject)
        || journal_field(j.resource)
        || journal_field(j.outcome)
        || journal_field(j.reasons::text)
        || journal_field(j.detail::text)
        || journal_field(j.actor)
        || journal_field(j.policy_version)
        || journal_field(j.request_id)
        || journal_field(encode(j.prev_hash, 'hex')), 'UTF8');
END
$$;

-- Complete the row before it is written: seq, ts, prev_hash and hash are the
-- database's, whatever the inserter supplied. Never insert-then-update.
-- The head row's lock serializes appenders until commit (FOR UPDATE waits in
-- READ COMMITTED, and fails rather than forks under REPEATABLE READ); the
-- previous row is read through the primary key, and the head itself is moved
-- once per statement (journal_advance), not once per row: updating one row
-- many times in a transaction costs time quadratic in the rows.
CREATE FUNCTION journal_chain() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    last record;
BEGIN
    PERFORM 1 FROM journal_head h WHERE h.id FOR UPDATE;
    SELECT j.seq, j.hash INTO last FROM journal j ORDER BY j.seq DESC LIMIT 1;
    IF NOT FOUND THEN
        SELECT h.seq, h.hash INTO STRICT last FROM journal_head h WHERE h.id;
    END IF;
    NEW.seq := last.seq + 1;
    NEW.ts := clock_timestamp();
    NEW.prev_hash := last.hash;
    NEW.hash := sha256(journal_payload(NEW));
    RETURN NEW;
END
$$;

CREATE FUNCTION journal_advance() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    UPDATE journal_head h SET seq = n.seq, hash = n.hash
    FROM (SELECT seq, hash FROM appended ORDER BY seq DESC LIMIT 1) n
    WHERE h.id;
    RETURN NULL;
END
$$;

CREATE FUNCTION journal_refuse() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the journal is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER journal_chain BEFORE INSERT ON journal
    FOR EACH ROW EXECUTE FUNCTION journal_chain();
CREATE TRIGGER journal_advance AFTER INSERT ON journal
    REFERENCING NEW TABLE AS appended FOR EACH STATEMENT EXECUTE FUNCTION journal_advance();
CREATE TRIGGER journal_no_update BEFORE UPDATE OR DELETE ON journal
    FOR EACH ROW EXECUTE FUNCTION journal_refuse();
CREATE TRIGGER journal_no_truncate BEFORE TRUNCATE ON journal
    FOR EACH STATEMENT EXECUTE FUNCTION journal_refuse();
CREATE FUNCTION journal_head_forward() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.seq <= OLD.seq OR NEW.id IS DISTINCT FROM OLD.id
       OR NOT EXISTS (SELECT 1 FROM journal j WHERE j.seq = NEW.seq AND j.hash = NEW.hash) THEN
        RAISE EXCEPTION 'the journal is append-only: its head only moves forward, to a row that exists'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;

-- The head moves only forward, to the row journal_advance() names.
CREATE TRIGGER journal_head_forward BEFORE UPDATE ON journal_head
    FOR EACH ROW EXECUTE FUNCTION journal_head_forward();
CREATE TRIGGER journal_head_no_delete BEFORE DELETE ON journal_head
    FOR EACH ROW EXECUTE FUNCTION journal_refuse();
CREATE TRIGGER journal_head_no_truncate BEFORE TRUNCATE ON journal_head
    FOR EACH STATEMENT EXECUTE FUNCTION journal_refuse();
