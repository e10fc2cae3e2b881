-- Group rules: the members of a group get a grant on a resource, and lose it
-- when they leave the group (unless another rule or an admin still grants it).
CREATE TABLE group_grant_rules (
    group_id     uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    resource_id  uuid NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, resource_id)
);
CREATE INDEX group_grant_rules_resource_idx ON group_grant_rules (resource_id);
