-- Ingest at the speed of the database (issue 15). The foreign keys from the ledger and from the
-- per-site breakdown totals to `sites` are dropped: once `sites` has planner statistics, the
-- check runs a sequential scan of `sites` for every inserted row (and locks the site row), which
-- cost about 3 us of server CPU per accepted row and grew with the number of sites. They
-- guarded nothing a writer could break: a ledger row's site is the site of the active API key
-- that sent it (`api_keys.site_id` still references `sites`), sites are never deleted (only
-- disabled), and the breakdown rows are folded from ledger rows. `site_totals` and
-- `hourly_totals` keep theirs (a row is inserted there once per site and currency or hour).
ALTER TABLE ledger DROP CONSTRAINT IF EXISTS ledger_site_id_fkey;
ALTER TABLE segment_site_totals DROP CONSTRAINT IF EXISTS segment_site_totals_site_id_fkey;

-- The national breakdown rows are rewritten at every apply that touches their key, and each
-- rewrite moved `changed_at_position`, which this index held: no update could stay on its page
-- without new index entries (HOT), about a microsecond of server CPU per ledger row. The
-- leaderboard's read of the rows changed since its last read scans the event's rows through
-- the primary key's `event_id` prefix instead (bounded by that event's keys).
DROP INDEX IF EXISTS segment_totals_changed;
