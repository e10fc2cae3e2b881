-- A reviewer hands their whole open set in a campaign to another manager. The
-- items move to the delegate (reviewer_id); this row keeps who handed what to
-- whom and when, so the original link shows the delegation instead of refusing.
-- The application role's privileges come from grants.sql, re-applied after
-- every migration run (it covers tables added here).
SET LOCAL lock_timeout = '10s';

CREATE TABLE review_delegations (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id   uuid NOT NULL REFERENCES review_campaigns (id) ON DELETE CASCADE,
    from_id       uuid NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    to_id         uuid NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    items         integer NOT NULL CHECK (items > 0),
    comment       text CHECK (length(comment) <= 2000),
    delegated_at  timestamptz NOT NULL,
    CHECK (from_id <> to_id)
);
CREATE INDEX review_delegations_from_idx ON review_delegations (campaign_id, from_id);
