-- Who may do what: admins and their WebAuthn keys, single-use challenges,
-- enrollment links, browser sessions, human roles, and machine clients with
-- their tokens. Secrets and tokens are stored only as SHA-256 hashes.

CREATE TABLE admins (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email        text NOT NULL CHECK (email ~ '^[^@\s]+@[^@\s]+$'),
    display_name text,
    -- WebAuthn user.id: random, never the email (W3C WebAuthn §14.6.1).
    user_handle  bytea NOT NULL UNIQUE CHECK (octet_length(user_handle) BETWEEN 16 AND 64),
    active       boolean NOT NULL DEFAULT true,
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX admins_email_key ON admins (lower(email));

CREATE TABLE webauthn_credentials (
    id               bytea PRIMARY KEY CHECK (octet_length(id) BETWEEN 16 AND 1023),
    admin_id         uuid NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    public_key       bytea NOT NULL,
    sign_count       bigint NOT NULL DEFAULT 0 CHECK (sign_count >= 0),
    aaguid           uuid NOT NULL,
    attestation_fmt  text NOT NULL,
    -- true when an attestation chain verified against a configured root
    attested         boolean NOT NULL DEFAULT false,
    backup_eligible  boolean NOT NULL,
    backed_up        boolean NOT NULL,
    user_verified    boolean NOT NULL,
    transports       text[] NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_used_at     timestamptz
);
CREATE INDEX webauthn_credentials_admin_idx ON webauthn_credentials (admin_id);

-- One row per challenge handed out; consumed (deleted) by its first use.
CREATE TABLE webauthn_challenges (
    challenge    bytea PRIMARY KEY CHECK (octet_length(challenge) >= 32),
    purpose      text NOT NULL CHECK (purpose IN ('register', 'login', 'action')),
    admin_id     uuid REFERENCES admins (id) ON DELETE CASCADE,
    action       text,
    body_hash    text,
    -- for a registration started by a step-up (keys.add): that assertion's key and counter
    step_up      jsonb,
    expires_at   timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (purpose <> 'action' OR (admin_id IS NOT NULL AND action IS NOT NULL AND body_hash IS NOT NULL)),
    CHECK (purpose <> 'register' OR admin_id IS NOT NULL)
);
CREATE INDEX webauthn_challenges_expiry_idx ON webauthn_challenges (expires_at);

CREATE TABLE enrollments (
    token_hash   bytea PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    admin_id     uuid NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    created_by   text NOT NULL,
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- Browser sessions: the cookie carries a random token, the table its hash.
CREATE TABLE web_sessions (
    token_hash   bytea PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    admin_id     uuid REFERENCES admins (id) ON DELETE CASCADE,
    person_id    uuid REFERENCES people (id) ON DELETE CASCADE,
    csrf_token   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    CHECK ((admin_id IS NULL) <> (person_id IS NULL))
);
CREATE INDEX web_sessions_expiry_idx ON web_sessions (expires_at);

-- Human roles held by people (manager is derived: anyone with direct reports).
CREATE TABLE person_roles (
    person_id    uuid NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    role         text NOT NULL CHECK (role IN ('auditor', 'hr')),
    granted_by   text NOT NULL,
    granted_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (person_id, role)
);

CREATE TABLE api_clients (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name          text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    client_id     text NOT NULL UNIQUE,
    secret_hash   bytea NOT NULL CHECK (octet_length(secret_hash) = 32),
    scopes        text[] NOT NULL CHECK (scopes <@ ARRAY['scim', 'access:check', 'training:write', 'journal:read']
                                         AND cardinality(scopes) > 0),
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    last_used_at  timestamptz
);
CREATE UNIQUE INDEX api_clients_name_key ON api_clients (lower(name));

CREATE TABLE api_tokens (
    token_hash    bytea PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    client_id     uuid NOT NULL REFERENCES api_clients (id) ON DELETE CASCADE,
    kind          text NOT NULL CHECK (kind IN ('access', 'static')),
    scopes        text[] NOT NULL,
    expires_at    timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    last_used_at  timestamptz,
    CHECK (kind = 'static' OR expires_at IS NOT NULL)
);
CREATE INDEX api_tokens_client_idx ON api_tokens (client_id);

-- Keys the service generates for itself on first use (e.g. the key that signs
-- the short-lived OIDC state cookie), shared by every worker and replica.
CREATE TABLE app_secrets (
    name        text PRIMARY KEY,
    value       bytea NOT NULL CHECK (octet_length(value) >= 32),
    created_at  timestamptz NOT NULL DEFAULT now()
);
