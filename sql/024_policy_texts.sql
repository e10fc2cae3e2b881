-- The text of every policy version the service ran with, so that evidence for a period can show the rules in
-- force (each journal row names its policy_version). The database checks that a text is the version it claims
-- (the version is the SHA-256 of the file's bytes), and keeps them: the application role may add, never change.

CREATE TABLE policy_texts (
    version     text PRIMARY KEY CHECK (version ~ '^[0-9a-f]{64}$'),
    text        text NOT NULL,
    first_seen  timestamptz NOT NULL DEFAULT now(),
    CHECK (encode(sha256(convert_to(text, 'UTF8')), 'hex') = version)
);
