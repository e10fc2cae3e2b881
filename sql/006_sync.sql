-- Directory sync runs and their high-water marks, and the worker's job runs.
-- A sync run that would deactivate too many people is held with its plan
-- (what it would change) until an admin confirms or discards it.

CREATE TABLE sync_runs (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    source       text NOT NULL CHECK (length(source) BETWEEN 1 AND 64),
    kind         text NOT NULL CHECK (kind IN ('full', 'incremental')),
    state        text NOT NULL CHECK (state IN ('running', 'applied', 'held', 'confirmed', 'discarded', 'failed')),
    actor        text NOT NULL CHECK (length(actor) BETWEEN 1 AND 512),
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    counts       jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(counts) = 'object'),
    -- What a held run would change, applied as is when confirmed.
    plan         jsonb CHECK (plan IS NULL OR jsonb_typeof(plan) = 'object'),
    -- The directory's high-water mark after this run (stored once applied).
    high_water   text,
    message      text,
    error        text,
    decided_by   text,
    decided_at   timestamptz,
    CHECK (state <> 'held' OR plan IS NOT NULL),
    CHECK ((decided_by IS NULL) = (state NOT IN ('confirmed', 'discarded')))
);
CREATE INDEX sync_runs_started_idx ON sync_runs (started_at DESC);
CREATE INDEX sync_runs_held_idx ON sync_runs (source) WHERE state = 'held';

-- Per source: where the next incremental run starts (modifyTimestamp or uSNChanged).
CREATE TABLE sync_state (
    source        text PRIMARY KEY CHECK (length(source) BETWEEN 1 AND 64),
    high_water    text,
    last_full_at  timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- One row per job run by the worker or `gatehouse jobs run` (each is journaled too).
CREATE TABLE job_runs (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    job          text NOT NULL CHECK (length(job) BETWEEN 1 AND 64),
    trigger      text NOT NULL CHECK (trigger IN ('schedule', 'manual')),
    runner       text NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    outcome      text NOT NULL CHECK (outcome IN ('running', 'ok', 'skipped', 'failed')),
    counts       jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(counts) = 'object'),
    error        text
);
CREATE INDEX job_runs_job_idx ON job_runs (job, started_at DESC);
