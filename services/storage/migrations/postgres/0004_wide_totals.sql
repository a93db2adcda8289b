-- One site may push sales whose sum passes 2^63 (each amount is an i64, there is no limit on how
-- many): totals are exact NUMERIC, wide enough for any sum of the ledger (below 2^126).
ALTER TABLE site_totals
    ALTER COLUMN gross_minor TYPE NUMERIC(39, 0),
    ALTER COLUMN refunded_minor TYPE NUMERIC(39, 0),
    ALTER COLUMN net_minor TYPE NUMERIC(39, 0);
ALTER TABLE hourly_totals
    ALTER COLUMN net_minor TYPE NUMERIC(39, 0);
