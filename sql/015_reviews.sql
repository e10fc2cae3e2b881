-- Access reviews: campaigns, one item per (person, grant) snapshotted at the
-- start, who reviews what, reminders sent, and movers waiting for a review.
-- The e-mail outbox learns the review kinds, an HTML part and a claim, so two
-- delivery runs never send the same message.
SET LOCAL lock_timeout = '10s';

-- A grant revoked and granted again is a new grant: an item (and its decision
-- or miss) belongs to the epoch it was made for, never to a later one. A
-- suspension lifted (training restored) is the same grant.
ALTER TABLE grants ADD COLUMN epoch integer NOT NULL DEFAULT 1 CHECK (epoch > 0);

CREATE FUNCTION grants_new_epoch() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    NEW.epoch := OLD.epoch + 1;
    RETURN NEW;
END
$$;
CREATE TRIGGER grants_new_epoch BEFORE UPDATE OF state ON grants
    FOR EACH ROW WHEN (OLD.state = 'revoked' AND NEW.state <> 'revoked') EXECUTE FUNCTION grants_new_epoch();

CREATE TABLE review_campaigns (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- The name reason codes carry: review_missed:<key>, review_revoked:<key>.
    key           text NOT NULL UNIQUE CHECK (key ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
    origin        text NOT NULL CHECK (origin IN ('schedule', 'admin', 'operator', 'mover')),
    resources     text[] NOT NULL,
    started_at    timestamptz NOT NULL,
    due_at        timestamptz NOT NULL CHECK (due_at > started_at),
    state         text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'held', 'confirmed', 'closed')),
    -- Snapshotted from the policy at the start, so a later policy edit does not move the guard.
    guard_share   real NOT NULL CHECK (guard_share > 0 AND guard_share <= 1),
    -- Kept by every decision in its transaction: a check reads the guard's share without counting items.
    items_total   integer NOT NULL DEFAULT 0 CHECK (items_total >= 0),
    items_open    integer NOT NULL DEFAULT 0 CHECK (items_open >= 0 AND items_open <= items_total),
    created_by    text NOT NULL,
    policy_version text,
    held_at       timestamptz,
    confirmed_by  text,
    closed_at     timestamptz
);
CREATE INDEX review_campaigns_open_idx ON review_campaigns (due_at) WHERE state IN ('open', 'confirmed');

CREATE TABLE review_items (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    campaign_id   uuid NOT NULL REFERENCES review_campaigns (id) ON DELETE CASCADE,
    grant_id      uuid NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    grant_epoch   integer NOT NULL,
    person_id     uuid NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    resource_id   uuid NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    -- NULL: nobody qualified; the item waits in the admins' queue.
    reviewer_id   uuid REFERENCES people (id) ON DELETE SET NULL,
    route         text NOT NULL,
    -- What was true at the start: the person, the resource, how the grant came.
    snapshot      jsonb NOT NULL CHECK (jsonb_typeof(snapshot) = 'object'),
    decision      text CHECK (decision IN ('approve', 'revoke')),
    decided_by    text,
    decided_at    timestamptz,
    comment       text CHECK (length(comment) <= 2000),
    -- What the reviewer saw when deciding (last use, training, recommendation).
    evidence      jsonb,
    -- An approval a second reviewer must confirm (rubber-stamp guard); the item stays undecided meanwhile.
    second_stage_by uuid REFERENCES people (id) ON DELETE SET NULL,
    second_stage_why text,
    missed_at     timestamptz,
    UNIQUE (campaign_id, grant_id),
    CHECK ((decision IS NULL) = (decided_at IS NULL))
);
CREATE INDEX review_items_grant_idx ON review_items (grant_id);
CREATE INDEX review_items_reviewer_idx ON review_items (campaign_id, reviewer_id);
CREATE INDEX review_items_second_idx ON review_items (campaign_id, second_stage_by) WHERE second_stage_by IS NOT NULL;

-- Reminders queued: each (campaign, reviewer, offset) once, whichever worker gets there first.
CREATE TABLE review_reminders (
    campaign_id   uuid NOT NULL REFERENCES review_campaigns (id) ON DELETE CASCADE,
    reviewer_id   uuid NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    days_before   integer NOT NULL CHECK (days_before >= 0),
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, reviewer_id, days_before)
);

-- People whose manager or department changed (from SCIM, LDAP or by hand): the
-- reviews_movers job gives their grants to the new manager in a small campaign.
CREATE TABLE review_movers (
    person_id     uuid PRIMARY KEY REFERENCES people (id) ON DELETE CASCADE,
    moved_at      timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION people_moved() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    INSERT INTO review_movers (person_id) VALUES (NEW.id)
        ON CONFLICT (person_id) DO UPDATE SET moved_at = now();
    RETURN NEW;
END
$$;
CREATE TRIGGER people_moved AFTER UPDATE OF manager_id, department ON people
    -- A first manager or department (a joiner, a manager who arrived later) is no move.
    FOR EACH ROW WHEN (NEW.deleted_at IS NULL
                       AND ((OLD.manager_id IS NOT NULL AND OLD.manager_id IS DISTINCT FROM NEW.manager_id)
                            OR (OLD.department IS NOT NULL AND OLD.department IS DISTINCT FROM NEW.department)))
    EXECUTE FUNCTION people_moved();

-- The outbox: review mail kinds, an HTML alternative, and a claim taken in its
-- own transaction before sending (a second runner skips a claimed message).
ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check CHECK (kind IN (
    'training_lapsed', 'training_reminder', 'review_request', 'review_reminder', 'review_missed',
    'review_held', 'review_revoked'));
ALTER TABLE notifications ADD COLUMN html text;
ALTER TABLE notifications ADD COLUMN claimed_at timestamptz;
