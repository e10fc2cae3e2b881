-- Evidence bundles asked for from the auditor's console: queued by the request, built by the worker's
-- evidence_export job (a large bundle is never built inside a web request), kept here for auditors to download.
-- The bundle's bytes are stored in parts of about 1 MiB, so a download streams them.

CREATE TABLE evidence_requests (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    requested_by  text NOT NULL CHECK (length(requested_by) > 0),
    requested_at  timestamptz NOT NULL DEFAULT now(),
    since         timestamptz NOT NULL,
    until         timestamptz NOT NULL,
    state         text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'done', 'failed')),
    started_at    timestamptz,
    finished_at   timestamptz,
    row_count     bigint,
    bytes         bigint,
    sha256        text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    error         text,
    CHECK (since < until),
    CHECK (state <> 'done' OR (sha256 IS NOT NULL AND bytes IS NOT NULL))
);
CREATE INDEX evidence_requests_queued_idx ON evidence_requests (id) WHERE state = 'queued';

CREATE TABLE evidence_bundle_parts (
    request_id  bigint NOT NULL REFERENCES evidence_requests (id) ON DELETE CASCADE,
    part        integer NOT NULL CHECK (part >= 0),
    data        bytea NOT NULL,
    PRIMARY KEY (request_id, part)
);
