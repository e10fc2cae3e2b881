-- Logins set by the set, not by the row: a full LDAP sync creating 20,000 people called person_login_set (018)
-- 40,000 times, once from the people trigger for each userName and once for each uid: 27 s of its 43 s write,
-- measured with pg_stat_statements. person_logins_set does the same for many people in a few statements, and
-- new people get their userName's login from one statement-level trigger; a rename keeps the row trigger.

-- person_logins_set(persons, source, logins): person_login_set for each (persons[i], logins[i]), each person at
-- most once; the same outcome, including unique_violation on person_logins_pkey when a login's key is another
-- person's (or two of the people given would share one).
CREATE FUNCTION person_logins_set(persons uuid[], source text, logins text[]) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    who uuid[];    -- the people whose login changes, with their new login and its key
    what text[];
    keys text[];
    written bigint;
    clash text;
BEGIN
    IF coalesce(cardinality(persons), 0) = 0 THEN
        RETURN;
    END IF;
    IF cardinality(persons) <> cardinality(logins) THEN
        RAISE EXCEPTION 'person_logins_set: % people but % logins', cardinality(persons), cardinality(logins)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF (SELECT count(DISTINCT p) FROM unnest(persons) p) <> cardinality(persons) THEN
        RAISE EXCEPTION 'person_logins_set: a person given twice' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT array_agg(c.person), array_agg(c.login), array_agg(login_key(c.login)) INTO who, what, keys
    FROM unnest(persons, logins) AS c (person, login)
    WHERE c.login IS NULL OR NOT EXISTS (  -- already so: the usual case on a sync that changes nothing
        SELECT 1 FROM person_logins l WHERE l.person_id = c.person AND l.login_key = login_key(c.login)
                                        AND l.logins ->> source = c.login);
    IF who IS NULL THEN
        RETURN;
    END IF;
    SELECT min(c.login) INTO clash FROM unnest(what, keys) AS c (login, key) WHERE c.key IS NOT NULL
     GROUP BY c.key HAVING count(*) > 1 LIMIT 1;
    IF clash IS NOT NULL THEN
        RAISE EXCEPTION 'the % login % would name two people', source, clash
            USING ERRCODE = 'unique_violation', CONSTRAINT = 'person_logins_pkey', TABLE = 'person_logins';
    END IF;
    DELETE FROM person_logins l WHERE l.person_id = ANY (who) AND l.logins ? source AND l.logins - source = '{}';
    UPDATE person_logins l SET logins = l.logins - source WHERE l.person_id = ANY (who) AND l.logins ? source;
    INSERT INTO person_logins AS l (login_key, person_id, logins)
    SELECT c.key, c.person, jsonb_build_object(source, c.login)
    FROM unnest(who, what, keys) AS c (person, login, key) WHERE c.login IS NOT NULL
    ON CONFLICT (login_key) DO UPDATE SET logins = l.logins || EXCLUDED.logins WHERE l.person_id = EXCLUDED.person_id;
    GET DIAGNOSTICS written = ROW_COUNT;
    IF written < (SELECT count(*) FROM unnest(what) w WHERE w IS NOT NULL) THEN  -- a key is another person's
        SELECT c.login INTO clash FROM unnest(who, what, keys) AS c (person, login, key)
          JOIN person_logins l ON l.login_key = c.key WHERE l.person_id <> c.person LIMIT 1;
        RAISE EXCEPTION 'the % login % is another person''s', source, clash
            USING ERRCODE = 'unique_violation', CONSTRAINT = 'person_logins_pkey', TABLE = 'person_logins';
    END IF;
END
$$;

-- One mechanism: person_login_set (018) is person_logins_set for one person.
CREATE OR REPLACE FUNCTION person_login_set(person uuid, source text, login text) RETURNS void
    LANGUAGE sql SET search_path = pg_catalog, public, pg_temp
    AS $$ SELECT person_logins_set(ARRAY[person], source, ARRAY[login]) $$;

-- New people: their userName's login, for all the rows of one INSERT or COPY at once. Not deferred: a violation
-- surfaces at the statement that caused it, as a 409, as with the row trigger before.
CREATE FUNCTION people_added_logins() RETURNS trigger LANGUAGE plpgsql
    SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    PERFORM person_logins_set(array_agg(a.id), 'userName', array_agg(a.user_name)) FROM added a;
    RETURN NULL;
END
$$;

DROP TRIGGER people_sync_login ON people;
CREATE TRIGGER people_sync_login AFTER UPDATE OF user_name ON people
    FOR EACH ROW EXECUTE FUNCTION people_sync_login();
CREATE TRIGGER people_added_logins AFTER INSERT ON people REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION people_added_logins();
