-- The base URL each `gatehouse serve` announces when it starts, so that an
-- operator command on the same database (`gatehouse admin enroll`) prints links
-- to where the service really is, even when its own settings differ.
CREATE TABLE served_urls (
    base_url    text PRIMARY KEY CHECK (base_url ~ '^https?://' AND length(base_url) <= 2048),
    started_at  timestamptz NOT NULL DEFAULT now()
);
-- The application role (which serves) writes it: sql/grants.sql grants it every
-- table's SELECT, INSERT, UPDATE and DELETE after each migration run.
