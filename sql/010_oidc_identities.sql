-- Which account at the OIDC provider is which person. OpenID Connect Core 1.0
-- §5.7: only (iss, sub) identifies an end-user stably; e-mail and
-- preferred_username can change or be reused. A binding is written at the first
-- sign-in matched by a verified e-mail and is what matches afterwards.
CREATE TABLE person_oidc_identities (
    issuer        text NOT NULL CHECK (length(issuer) BETWEEN 1 AND 2048),
    subject       text NOT NULL CHECK (length(subject) BETWEEN 1 AND 255),
    person_id     uuid NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    bound_at      timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (issuer, subject),
    -- One account per person at each provider: a second one is refused, never
    -- bound silently. Person first, so the index also serves ON DELETE CASCADE.
    UNIQUE (person_id, issuer)
);
