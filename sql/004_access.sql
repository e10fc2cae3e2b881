-- Access decisions: training completions, the facts a check reads besides
-- people, resources and grants (sql/001_core.sql). Rows arrive from the
-- training import (API and CSV); a check reads the latest per course.

CREATE TABLE training_completions (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    person_id     uuid NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    course        text NOT NULL CHECK (length(course) BETWEEN 1 AND 128),
    completed_at  timestamptz NOT NULL,
    source        text NOT NULL CHECK (length(source) BETWEEN 1 AND 64),
    source_id     text NOT NULL CHECK (length(source_id) BETWEEN 1 AND 256),
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    -- A re-sent completion is a duplicate, not a second row.
    UNIQUE (source, source_id)
);
-- The latest completion of each course for a person: one index range scan.
CREATE INDEX training_completions_latest_idx ON training_completions (person_id, course, completed_at DESC);
