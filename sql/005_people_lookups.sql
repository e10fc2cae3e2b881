-- Lookups SCIM and LDAP make on every write: people waiting for a manager who
-- has not arrived yet, and manager references by e-mail or id.
CREATE INDEX people_pending_manager_idx ON people (lower(manager_ref))
    WHERE manager_ref IS NOT NULL AND manager_id IS NULL;
CREATE INDEX person_external_ids_lower_idx ON person_external_ids (lower(external_id));
