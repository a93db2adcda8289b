-- The leaderboard refreshes at every apply and at every admin change (issue 26): it reads only
-- what changed since its last read.
--
-- Each site total records the applied position at which it last changed, set by the
-- aggregator's upsert like the national breakdown rows. Deliberately without an index: an
-- index on a column every apply rewrites costs an index update per row rewritten (see
-- 0008_hot_path), and the board's filter on it scans one event's rows (a few thousand)
-- through the primary key's `event_id` prefix. The rows stored before this migration read as
-- changed at 0: a read without a cursor (every board's first, and the safety refresh) takes
-- them.
ALTER TABLE site_totals ADD COLUMN changed_at_position INTEGER NOT NULL DEFAULT 0;

-- A version of the sites table, bumped in the transaction of every write that changes a site
-- (created, enabled, disabled): the board reads the sites again only when it moved.
CREATE TABLE catalog_version (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    sites INTEGER NOT NULL
) STRICT;
INSERT INTO catalog_version (id, sites) VALUES (1, 0);
