-- Access as code: group → resource rules from the policy file, beside the
-- console's (group_grant_rules). A file rule names its group by name, as the
-- file does, so a group that arrives later (the first LDAP sync) is covered
-- from the moment it exists. Each application of a policy version is a run;
-- one that would end too many grants is held with the rules it would apply.

CREATE TABLE policy_rules (
    -- lower(display name): groups are unique by that (groups_display_name_key)
    group_key       text NOT NULL CHECK (length(group_key) BETWEEN 1 AND 256 AND group_key = lower(group_key)),
    group_name      text NOT NULL CHECK (length(group_name) BETWEEN 1 AND 256),
    resource_id     uuid NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    policy_version  text NOT NULL CHECK (policy_version ~ '^[0-9a-f]{64}$'),
    applied_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_key, resource_id)
);
CREATE INDEX policy_rules_resource_idx ON policy_rules (resource_id);

CREATE TABLE policy_runs (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    version     text NOT NULL CHECK (version ~ '^[0-9a-f]{64}$'),
    source      text NOT NULL CHECK (length(source) BETWEEN 1 AND 1024),  -- the file it was read from
    state       text NOT NULL CHECK (state IN ('applied', 'held', 'confirmed', 'discarded')),
    actor       text NOT NULL CHECK (length(actor) BETWEEN 1 AND 512),
    started_at  timestamptz NOT NULL DEFAULT now(),
    -- The file's rules, [[group, resource], ...]: what a held run applies when confirmed.
    rules       jsonb NOT NULL CHECK (jsonb_typeof(rules) = 'array'),
    counts      jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(counts) = 'object'),
    message     text,
    applied_at  timestamptz,
    decided_by  text,
    decided_at  timestamptz,
    CHECK ((applied_at IS NOT NULL) = (state IN ('applied', 'confirmed'))),
    CHECK ((decided_by IS NULL) = (state NOT IN ('confirmed', 'discarded')))
);
-- The version in force: the latest run applied or confirmed.
CREATE INDEX policy_runs_applied_idx ON policy_runs (applied_at DESC) WHERE applied_at IS NOT NULL;
CREATE INDEX policy_runs_held_idx ON policy_runs (started_at) WHERE state = 'held';

-- The application role reads and writes both (serve applies the policy at start): sql/grants.sql,
-- which the runner applies after this file, grants it every table's rows.
