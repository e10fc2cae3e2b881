-- Training lapse and restore: each lapse recorded once, reminders sent once
-- per offset, and the e-mail outbox (rows written with the change, sent after
-- commit by the training sweep, retried until sent).

-- One row per lapse (or never-completed course past its grace) the sweep has
-- acted on. The key is the lapse instant: a new completion moves it, so the
-- next lapse is a new row; the same lapse is never suspended twice.
CREATE TABLE training_lapses (
    person_id    uuid NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    course       text NOT NULL CHECK (length(course) BETWEEN 1 AND 128),
    lapses_at    timestamptz NOT NULL,
    state        text NOT NULL CHECK (state IN ('lapsed', 'missing')),
    -- The resource keys whose grants this lapse suspended (may be none).
    resources    text[] NOT NULL DEFAULT '{}',
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (person_id, course, lapses_at)
);

-- Reminders queued before a lapse: each offset once per lapse instant.
CREATE TABLE training_reminders (
    person_id    uuid NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    course       text NOT NULL CHECK (length(course) BETWEEN 1 AND 128),
    lapses_at    timestamptz NOT NULL,
    days_before  integer NOT NULL CHECK (days_before > 0),
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (person_id, course, lapses_at, days_before)
);

-- The e-mail outbox: never sent inside a transaction; sent_at is set once the
-- SMTP server took the message.
CREATE TABLE notifications (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    kind         text NOT NULL CHECK (kind IN ('training_lapsed', 'training_reminder')),
    person_id    uuid REFERENCES people (id) ON DELETE SET NULL,
    to_addrs     text[] NOT NULL CHECK (cardinality(to_addrs) > 0),
    cc_addrs     text[] NOT NULL DEFAULT '{}',
    subject      text NOT NULL CHECK (length(subject) BETWEEN 1 AND 256),
    body         text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    sent_at      timestamptz,
    attempts     integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error   text
);
CREATE INDEX notifications_unsent_idx ON notifications (created_at) WHERE sent_at IS NULL;
-- The sweep looks up suspended grants by their reason.
CREATE INDEX grants_training_lapsed_idx ON grants (person_id)
    WHERE state = 'suspended' AND reason LIKE 'training_lapsed:%';
