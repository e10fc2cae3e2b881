-- Signed checkpoints of the journal (issue 15 item 4).
--
-- journal_merkle holds the perfect subtrees of the RFC 9162 Merkle tree over
-- the journal's row hashes (leaf index = seq - 1, leaf input = the row's hash):
-- node (level, idx) is the hash of leaves idx*2^level .. (idx+1)*2^level - 1.
-- A node never changes once its leaves exist, so the table is append-only like
-- the journal; proofs read O(log^2 n) of its rows (service/journal/tree.py).
--
-- journal_checkpoints holds every signed checkpoint (a C2SP tlog-checkpoint
-- in a C2SP signed-note), append-only. The key is held outside the database
-- (a key file or a PKCS#11 token); a copy of each checkpoint is published
-- outside it too, because whoever can disable these triggers can also delete
-- rows here: `gatehouse journal verify --checkpoint FILE` checks against that.
-- No new journal kind: the worker's run of journal_checkpoint is journaled
-- (kind job) by the job runner with the checkpoint in its counts.
-- The application role may SELECT and INSERT both (grants.sql, which re-applies
-- the privileges after every run and would otherwise grant UPDATE and DELETE).

CREATE TABLE journal_merkle (
    level  smallint NOT NULL CHECK (level BETWEEN 0 AND 62),
    idx    bigint NOT NULL CHECK (idx >= 0),
    hash   bytea NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
);

CREATE TABLE journal_checkpoints (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    origin     text NOT NULL,
    tree_size  bigint NOT NULL CHECK (tree_size >= 0),
    root_hash  bytea NOT NULL CHECK (length(root_hash) = 32),
    key_name   text NOT NULL,
    key_id     bytea NOT NULL CHECK (length(key_id) = 4),
    note       text NOT NULL,
    signer     text NOT NULL CHECK (signer IN ('file', 'pkcs11')),
    signed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX journal_checkpoints_size_idx ON journal_checkpoints (tree_size);

CREATE TRIGGER journal_merkle_no_update BEFORE UPDATE OR DELETE ON journal_merkle
    FOR EACH ROW EXECUTE FUNCTION journal_refuse();
CREATE TRIGGER journal_merkle_no_truncate BEFORE TRUNCATE ON journal_merkle
    FOR EACH STATEMENT EXECUTE FUNCTION journal_refuse();
CREATE TRIGGER journal_checkpoints_no_update BEFORE UPDATE OR DELETE ON journal_checkpoints
    FOR EACH ROW EXECUTE FUNCTION journal_refuse();
CREATE TRIGGER journal_checkpoints_no_truncate BEFORE TRUNCATE ON journal_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION journal_refuse();

