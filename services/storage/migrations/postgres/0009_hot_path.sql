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
