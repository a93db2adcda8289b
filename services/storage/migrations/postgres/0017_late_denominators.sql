-- The late figures carry their own denominators (issue 28): per (event, site, currency) the
-- sales folded with them and their value, at the late figures' position. A late share is then
-- never the late figures of one ledger position over the headline gross of a later one (which
-- made the shares of sites folded at different paces incomparable while the ledger was busy).
-- And the sales with a round amount among them (the amount-pattern rule's count).
-- Every key with a sale has a row now. The windows are dropped, so the aggregator counts every
-- event's late figures again from the ledger once, giving the rows their denominators.
ALTER TABLE late_totals
    ADD COLUMN sale_count BIGINT NOT NULL DEFAULT 0 CHECK (sale_count >= 0),
    ADD COLUMN gross_minor NUMERIC(39, 0) NOT NULL DEFAULT 0 CHECK (gross_minor >= 0),
    ADD COLUMN round_count BIGINT NOT NULL DEFAULT 0 CHECK (round_count >= 0);
DELETE FROM late_windows;
