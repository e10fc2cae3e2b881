-- SCIM: one name, one person; name.formatted and member display kept as sent; which SCIM client owns whom.
--
-- 1. login_key(): the key that makes two logins one name. NFKC (fullwidth ＺＯＥ is ZOE, a decomposed é
--    the precomposed one), trimmed, case-folded (lower(), then ß → ss and final ς → σ, the full case folding
--    lower() lacks); accents are not folded, so Zoé and Zoe are two names. lower() folds by the database's
--    LC_CTYPE: with a UTF-8 one (C.UTF-8, en_US.UTF-8...) it folds every script; with plain "C" only ASCII.
--    The stored value stays as sent; only the key compares.
-- 2. person_logins: one row per key, naming its one person, with each login that has that key and where it
--    came from ({"userName": "Zoé"} now; other sources add theirs under their own name). The key is the
--    primary key, so a login another person already has is a unique violation (person_logins_pkey), never a
--    second person. A trigger keeps the userName's row in step with people.user_name, whoever writes it.
--    Deleted people keep theirs: a userName keeps naming its person after they leave (the journal does).
-- 3. Existing people get their keys here. If two people already share a key the migration stops and lists
--    them (no one is dropped or renamed: which one is right is a person's call); rename one in the source
--    (SCIM, LDAP) or by hand, then migrate again.

CREATE FUNCTION login_key(login text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, public, pg_temp
    RETURN replace(replace(normalize(lower(btrim(normalize(login, NFKC))), NFKC), 'ß', 'ss'),
                   'ς', 'σ');

CREATE TABLE person_logins (
    login_key  text PRIMARY KEY CHECK (length(login_key) BETWEEN 1 AND 1024),
    person_id  uuid NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    -- {"userName": "as sent", ...}: which logins of this person have this key
    logins     jsonb NOT NULL CHECK (jsonb_typeof(logins) = 'object' AND logins <> '{}')
);
CREATE INDEX person_logins_person_idx ON person_logins (person_id);

-- SHARE: no one writes people between the check and the copy.
LOCK TABLE people IN SHARE MODE;

DO $$
DECLARE
    shared text;
    clashes integer;
BEGIN
    SELECT string_agg(format('%s: %s', d.key, d.names), '; ' ORDER BY d.key) FILTER (WHERE d.rank <= 50), count(*)
      INTO shared, clashes
      FROM (SELECT login_key(p.user_name) AS key,
                   string_agg(format('%s (%s%s)', p.user_name, p.id,
                                     CASE WHEN p.deleted_at IS NOT NULL THEN ', deleted' ELSE '' END),
                              ', ' ORDER BY p.created_at) AS names,
                   row_number() OVER (ORDER BY login_key(p.user_name)) AS rank
              FROM people p
             GROUP BY login_key(p.user_name)
            HAVING count(*) > 1) d;
    IF clashes > 0 THEN
        RAISE EXCEPTION 'people have userNames that are one name (same after NFKC, trimming and case folding): '
                        'rename all but one of each in its source (or by hand), then migrate again; % clashes: %',
            clashes, shared || CASE WHEN clashes > 50 THEN format('; and %s more', clashes - 50) ELSE '' END;
    END IF;
END
$$;

INSERT INTO person_logins (login_key, person_id, logins)
SELECT login_key(p.user_name), p.id, jsonb_build_object('userName', p.user_name) FROM people p;

CREATE FUNCTION people_sync_login() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.user_name IS NOT DISTINCT FROM OLD.user_name THEN
            RETURN NULL;
        END IF;
        DELETE FROM person_logins WHERE person_id = OLD.id AND logins - 'userName' = '{}';
        UPDATE person_logins SET logins = logins - 'userName' WHERE person_id = OLD.id AND logins ? 'userName';
    END IF;
    INSERT INTO person_logins AS l (login_key, person_id, logins)
    VALUES (login_key(NEW.user_name), NEW.id, jsonb_build_object('userName', NEW.user_name))
    ON CONFLICT (login_key) DO UPDATE SET logins = l.logins || EXCLUDED.logins WHERE l.person_id = EXCLUDED.person_id;
    IF NOT FOUND THEN  -- the key is another person's
        RAISE EXCEPTION 'this userName is another person''s login'
            USING ERRCODE = 'unique_violation', CONSTRAINT = 'person_logins_pkey', TABLE = 'person_logins';
    END IF;
    RETURN NULL;
END
$$;

-- Per row and not deferred: the violation surfaces at the INSERT or UPDATE that caused it, as a 409.
CREATE TRIGGER people_sync_login AFTER INSERT OR UPDATE OF user_name ON people
    FOR EACH ROW EXECUTE FUNCTION people_sync_login();

-- name.formatted as the client sent it (RFC 7643 §4.1.1); NULL: rendered from the given and family names.
ALTER TABLE people ADD COLUMN formatted_name text CHECK (length(formatted_name) <= 1024);

-- The SCIM client ("scim:<client name>") that created this person or whose join linked them: with
-- scim_ownership on, only it may change or delete them. Existing people: the one SCIM client that holds their
-- externalId or last set their userName.
ALTER TABLE people ADD COLUMN scim_owner text CHECK (length(scim_owner) BETWEEN 1 AND 128);
UPDATE people p SET scim_owner = coalesce(
    (SELECT min(x.source) FROM person_external_ids x WHERE x.person_id = p.id AND x.source LIKE 'scim:%'
     HAVING count(*) = 1),
    CASE WHEN p.attribute_sources->>'user_name' LIKE 'scim:%' THEN p.attribute_sources->>'user_name' END);

-- A member's display as the SCIM client sent it (RFC 7643 §4.2); NULL: the person's display name.
ALTER TABLE group_members ADD COLUMN display text CHECK (length(display) <= 1024);

-- PATCH remove of `active` (RFC 7644 §3.5.2.2): the attribute is unassigned, which fails closed: the person is
-- inactive (a leaver: grants revoked) and `active` is not returned until a client assigns it again.
ALTER TABLE people ADD COLUMN active_assigned boolean NOT NULL DEFAULT true;
ALTER TABLE people ADD CONSTRAINT people_unassigned_active_is_inactive CHECK (active_assigned OR NOT active);
