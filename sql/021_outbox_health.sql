-- Outbound health: a target that keeps failing is quarantined, a delivery
-- sent but never confirmed is escalated, and the admins are told of both.
--
-- outbound_health holds one row per target that has been tried: failed
-- attempts in a row, the last success, and the quarantine (Entra's rule: after
-- the policy's quarantine_after failures the target is tried only at 6 h,
-- 12 h, 24 h, then daily, one delivery at a time, until one succeeds).
-- outbox_escalations records once that a row was still `sent` (the target took
-- it, no re-read has shown it done) after its target's confirm_within_seconds;
-- the journal row (kind outbound, outcome escalated) commits with it.
-- Neither table decides anything by itself: the journal is the record.
--
-- The application role gets these tables through grants.sql's blanket grant
-- on every table (re-applied after each run); nothing here needs more.

CREATE TABLE outbound_health (
    target           text PRIMARY KEY REFERENCES outbound_targets (key),
    failures         integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
    last_success_at  timestamptz,
    last_failure_at  timestamptz,
    last_error       text,
    quarantined_at   timestamptz,
    quarantine_step  integer NOT NULL DEFAULT 0 CHECK (quarantine_step >= 0),
    probe_at         timestamptz,
    CHECK ((quarantined_at IS NULL) = (probe_at IS NULL))
);

CREATE TABLE outbox_escalations (
    outbox_id     bigint PRIMARY KEY REFERENCES outbox (id),
    escalated_at  timestamptz NOT NULL DEFAULT now()
);

-- The admins' mail for both (queued in the same transaction, sent by mail_deliver).
ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check CHECK (kind IN (
    'training_lapsed', 'training_reminder', 'review_request', 'review_reminder', 'review_missed',
    'review_held', 'review_revoked', 'outbox_unconfirmed', 'outbox_quarantined', 'outbox_released'));

-- Two more kinds of target: a VPN's live sessions, ended through OpenVPN's
-- management interface or a configured command (connectors/vpn.py).
ALTER TABLE outbound_targets DROP CONSTRAINT outbound_targets_type_check;
ALTER TABLE outbound_targets ADD CONSTRAINT outbound_targets_type_check
    CHECK (type IN ('scim', 'ldap_group', 'webhook', 'openvpn', 'command'));

-- Reconciliation (the outbox_reconcile job): who has access at a target
-- against who should. A run whose removals exceed the policy's [guard] is held
-- here for an admin's WebAuthn-bound decision (confirmed: the next job run
-- applies exactly the held plan; discarded: nothing), as a held directory sync
-- is. `plan` holds the removals and additions as the run found them.
CREATE TABLE outbound_reconciliations (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target      text NOT NULL REFERENCES outbound_targets (key),
    state       text NOT NULL CHECK (state IN ('held', 'confirmed', 'applied', 'discarded')),
    plan        jsonb NOT NULL,
    reason      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    decided_by  text,
    decided_at  timestamptz,
    applied_at  timestamptz
);
CREATE UNIQUE INDEX outbound_reconciliations_open_idx ON outbound_reconciliations (target)
    WHERE state IN ('held', 'confirmed');
