-- Core schema: people, their ids in each source, groups, resources and grants.
-- Plain SQL, applied by `gatehouse db migrate` as the owner role.

CREATE TABLE people (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_name        text NOT NULL CHECK (length(user_name) BETWEEN 1 AND 256),
    given_name       text,
    family_name      text,
    display_name     text,
    emails           jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(emails) = 'array'),
    primary_email    text,
    employee_number  text,
    department       text,
    organization     text,
    title            text,
    manager_id       uuid REFERENCES people (id) ON DELETE SET NULL,
    -- A manager reference (id, userName, email, employee number or DN) that
    -- names nobody yet; resolved when that person arrives.
    manager_ref      text,
    active           boolean NOT NULL DEFAULT true,
    source           text NOT NULL CHECK (source IN ('scim', 'ldap', 'manual')),
    -- Which source last set each attribute: {"department": "ldap", ...}.
    attribute_sources jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(attribute_sources) = 'object'),
    version          bigint NOT NULL DEFAULT 1 CHECK (version > 0),
    started_at       timestamptz NOT NULL DEFAULT now(),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    deleted_at       timestamptz,
    CHECK (manager_id IS NULL OR manager_id <> id),
    CHECK (deleted_at IS NULL OR NOT active)
);
CREATE UNIQUE INDEX people_user_name_key ON people (lower(user_name));
CREATE UNIQUE INDEX people_employee_number_key ON people (employee_number) WHERE employee_number IS NOT NULL;
CREATE INDEX people_primary_email_idx ON people (lower(primary_email));
CREATE INDEX people_manager_idx ON people (manager_id);

-- One row per (source, id in that source): Okta's externalId, an LDAP DN or
-- objectGUID. The same person seen by two sources has two rows here.
CREATE TABLE person_external_ids (
    person_id    uuid NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    source       text NOT NULL CHECK (length(source) BETWEEN 1 AND 64),
    external_id  text NOT NULL CHECK (length(external_id) BETWEEN 1 AND 1024),
    PRIMARY KEY (source, external_id),
    UNIQUE (person_id, source)
);

CREATE TABLE groups (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    display_name  text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 256),
    external_id   text,
    source        text NOT NULL CHECK (source IN ('scim', 'ldap', 'manual')),
    version       bigint NOT NULL DEFAULT 1 CHECK (version > 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX groups_display_name_key ON groups (lower(display_name));

CREATE TABLE group_members (
    group_id   uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    person_id  uuid NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    added_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, person_id)
);
CREATE INDEX group_members_person_idx ON group_members (person_id);

CREATE TABLE resources (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    key         text NOT NULL UNIQUE CHECK (key ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 256),
    kind        text NOT NULL CHECK (kind IN ('vpn', 'tool')),
    connector   jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(connector) = 'object'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE grants (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    person_id    uuid NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    resource_id  uuid NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    state        text NOT NULL CHECK (state IN ('active', 'suspended', 'revoked')),
    reason       text,
    granted_by   text NOT NULL CHECK (length(granted_by) > 0),
    granted_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (person_id, resource_id),
    CHECK (state = 'active' OR reason IS NOT NULL)
);
CREATE INDEX grants_resource_idx ON grants (resource_id, state);
