-- The auditor's search over the journal: each filter has an index whose order is seq, so a page of 50 rows is
-- an index range read under the keyset (seq < the last one shown), however long the journal grows.
--
-- subject (a person) has journal_subject_idx (002). The time range is turned into a seq range first, through
-- journal_ts_idx (ts is the append's clock_timestamp(): it grows with seq within a few milliseconds, and the
-- search still filters on ts itself, so an out-of-order instant is never shown on the wrong side of a bound).
-- A reason code is looked up in reasons (a jsonb array of {code, text}) by containment, through a GIN index.

CREATE INDEX journal_ts_idx ON journal (ts);
CREATE INDEX journal_kind_seq_idx ON journal (kind, seq);
CREATE INDEX journal_resource_seq_idx ON journal (resource, seq) WHERE resource IS NOT NULL;
CREATE INDEX journal_actor_seq_idx ON journal (actor, seq);
CREATE INDEX journal_outcome_seq_idx ON journal (outcome, seq);
CREATE INDEX journal_reasons_idx ON journal USING gin (reasons jsonb_path_ops);
