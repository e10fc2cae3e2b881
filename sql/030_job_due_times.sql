-- Each scheduled run names the due time it serves (its slot: the interval's boundary, or the day's hour), so that
-- every replica's scheduler, firing at the same aligned instants, runs a job once per due time: a runner that
-- takes the job's lock after another finished the slot skips it. A manual run (`gatehouse jobs run`) has none.
-- A slot that failed, or whose runner died, may be run again; one that ended ok or skipped may not.

SET LOCAL lock_timeout = '10s';

ALTER TABLE job_runs ADD COLUMN due_at timestamptz;
CREATE UNIQUE INDEX job_runs_once_per_due ON job_runs (job, due_at) WHERE outcome IN ('ok', 'skipped');

-- 'wake': the outbox run a worker starts at once after a job of its queued outbound changes (a revocation).
ALTER TABLE job_runs DROP CONSTRAINT job_runs_trigger_check;
ALTER TABLE job_runs ADD CONSTRAINT job_runs_trigger_check CHECK (trigger IN ('schedule', 'manual', 'wake'));
