-- A campaign writes all its items in one INSERT ... SELECT (a quarter's: 100,000 people x 5 grants), and each
-- foreign key is a check per row. An item's person and resource are its grant's: one composite key to the grant
-- (id, person, resource) checks the three at once, and says more than the three did (they cannot disagree).
-- Deleting a person or a resource still removes their items, through their grants (ON DELETE CASCADE).
SET LOCAL lock_timeout = '10s';

ALTER TABLE grants ADD CONSTRAINT grants_id_person_resource_key UNIQUE (id, person_id, resource_id);
ALTER TABLE review_items
    DROP CONSTRAINT review_items_grant_id_fkey,
    DROP CONSTRAINT review_items_person_id_fkey,
    DROP CONSTRAINT review_items_resource_id_fkey,
    ADD CONSTRAINT review_items_grant_fkey FOREIGN KEY (grant_id, person_id, resource_id)
        REFERENCES grants (id, person_id, resource_id) ON DELETE CASCADE;
