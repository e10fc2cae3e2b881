-- One person, every login: each source's own login, under its source's name, next to the userName.
--
-- Gateways send the directory login (RADIUS User-Name, OpenVPN common name); a SCIM client joining an LDAP person
-- sets the userName to its own. Before this, the directory login was gone with the old userName and the person
-- was unknown at every gateway. Now each source keeps its login in person_logins under its name: "userName" (the
-- person's userName, whoever set it: the trigger of 013), "ldap" (the entry's uid, written by the sync) and
-- "scim:<client>" (the userName that client sent). All of them go through the one key (login_key), so each one
-- resolves its person and none can name two people (person_logins_pkey).
--
-- person_login_set(person, source, login) is the one way to change a source's login: the source's old one goes
-- (a row no longer naming any login goes with it), the new one joins the person's row for its key, and a key
-- that is another person's raises unique_violation on person_logins_pkey (a 409, a sync conflict). A NULL login
-- removes the source's. Existing people get the login of the source that set their userName (below); every
-- other login a source gives is added the next time it writes the person (the next sync, the next SCIM write).

CREATE FUNCTION person_login_set(person uuid, source text, login text) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF login IS NOT NULL AND EXISTS (SELECT 1 FROM person_logins l WHERE l.person_id = person
                                        AND l.login_key = login_key(login) AND l.logins ->> source = login) THEN
        RETURN;  -- already so: the usual case on a sync that changes nothing
    END IF;
    DELETE FROM person_logins l WHERE l.person_id = person AND l.logins ? source AND l.logins - source = '{}';
    UPDATE person_logins l SET logins = l.logins - source WHERE l.person_id = person AND l.logins ? source;
    IF login IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO person_logins AS l (login_key, person_id, logins)
    VALUES (login_key(login), person, jsonb_build_object(source, login))
    ON CONFLICT (login_key) DO UPDATE SET logins = l.logins || EXCLUDED.logins WHERE l.person_id = EXCLUDED.person_id;
    IF NOT FOUND THEN  -- the key is another person's
        RAISE EXCEPTION 'the % login % is another person''s', source, login
            USING ERRCODE = 'unique_violation', CONSTRAINT = 'person_logins_pkey', TABLE = 'person_logins';
    END IF;
END
$$;

-- The userName's row, as 013 kept it, now through the one function.
CREATE OR REPLACE FUNCTION people_sync_login() RETURNS trigger LANGUAGE plpgsql
    SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.user_name IS NOT DISTINCT FROM OLD.user_name THEN
        RETURN NULL;
    END IF;
    PERFORM person_login_set(NEW.id, 'userName', NEW.user_name);
    RETURN NULL;
END
$$;

-- Which SCIM client owns a person (013's scim_owner) is shown where the sources are: attribute_sources.owner.
UPDATE people SET attribute_sources = attribute_sources || jsonb_build_object('owner', scim_owner)
 WHERE scim_owner IS NOT NULL AND attribute_sources->>'owner' IS DISTINCT FROM scim_owner;

-- Existing people: the source that set their userName gave it, so it is that source's login too (the same key as
-- their "userName" entry: no clash is possible). An LDAP person Okta joins later keeps their uid this way.
SELECT person_login_set(p.id, p.attribute_sources->>'user_name', p.user_name) FROM people p
 WHERE p.attribute_sources->>'user_name' IS NOT NULL AND p.attribute_sources->>'user_name' <> 'userName';
