-- Breakdown figures (segment_site_totals, segment_totals) carry their own watermark (issue 26):
-- while the ledger is busy the aggregator writes them less often than the headline totals, so
-- each changed (site, brand) row is written once per interval rather than once per apply.
-- They include every ledger row up to breakdown_applied, never one after applied_position
-- (SQLite cannot add that table constraint to an existing table; the aggregator keeps it).
ALTER TABLE aggregator_state ADD COLUMN breakdown_applied INTEGER NOT NULL DEFAULT 0;
UPDATE aggregator_state SET breakdown_applied = applied_position;
