-- A site can be disabled (its keys refused, off the leaderboard) and enabled again; its ledger
-- rows and totals stay.
ALTER TABLE sites ADD COLUMN disabled_at_ns BIGINT;
