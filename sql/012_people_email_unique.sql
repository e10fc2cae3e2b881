-- A primary e-mail names one live person: checks and training imports find
-- people by it, and two live people sharing one would make a reference name
-- both. Deleted people keep theirs (the journal names them) and may share.
--
-- Duplicates are not resolved here (which one is right is a person's call, and
-- dropping anyone would drop their access history): the migration stops and
-- lists them; fix them in the source (SCIM, LDAP) or by hand, then migrate again.

-- SHARE: no one writes people between the check and the index (CREATE INDEX takes this lock anyway).
LOCK TABLE people IN SHARE MODE;

DO $$
DECLARE
    shared text;
    groups integer;
BEGIN
    SELECT string_agg(format('%s: %s people (%s)', d.email, d.n, d.names), '; ' ORDER BY d.email)
               FILTER (WHERE d.rank <= 50),
           count(*)
      INTO shared, groups
      FROM (SELECT lower(p.primary_email) AS email, count(*) AS n,
                   array_to_string((array_agg(p.user_name ORDER BY lower(p.user_name)))[1:10], ', ')
                       || CASE WHEN count(*) > 10 THEN ', ...' ELSE '' END AS names,
                   row_number() OVER (ORDER BY lower(p.primary_email)) AS rank
              FROM people p
             WHERE p.deleted_at IS NULL AND p.primary_email IS NOT NULL
             GROUP BY lower(p.primary_email)
            HAVING count(*) > 1) d;
    IF groups > 0 THEN
        RAISE EXCEPTION 'live people share a primary e-mail, which must name one person: give each their own '
                        '(or delete the stale person), then migrate again; % shared: %',
            groups, shared || CASE WHEN groups > 50 THEN format('; and %s more', groups - 50) ELSE '' END;
    END IF;
END
$$;

CREATE UNIQUE INDEX people_primary_email_key ON people (lower(primary_email))
    WHERE deleted_at IS NULL AND primary_email IS NOT NULL;
