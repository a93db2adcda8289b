-- One site may push sales whose sum passes 2^63 (each amount is an i64, there is no limit on how
-- many): SQLite integers are 64-bit (a larger one would turn into a lossy REAL), so money sums
-- are stored as exact decimal TEXT, wide enough for any sum of the ledger (below 2^126).

CREATE TABLE site_totals_wide (
    site_id        TEXT NOT NULL REFERENCES sites (site_id),
    currency       TEXT NOT NULL,
    sale_count     INTEGER NOT NULL CHECK (sale_count >= 0),
    gross_minor    TEXT NOT NULL CHECK (gross_minor GLOB '[0-9]*'),
    refund_count   INTEGER NOT NULL CHECK (refund_count >= 0),
    refunded_minor TEXT NOT NULL CHECK (refunded_minor GLOB '[0-9]*'),
    net_minor      TEXT NOT NULL CHECK (net_minor GLOB '[0-9]*'),
    PRIMARY KEY (site_id, currency)
) STRICT;
INSERT INTO site_totals_wide
SELECT site_id, currency, sale_count, CAST(gross_minor AS TEXT), refund_count,
       CAST(refunded_minor AS TEXT), CAST(net_minor AS TEXT)
FROM site_totals;
DROP TABLE site_totals;
ALTER TABLE site_totals_wide RENAME TO site_totals;

CREATE TABLE hourly_totals_wide (
    site_id       TEXT NOT NULL REFERENCES sites (site_id),
    currency      TEXT NOT NULL,
    hour_start_ns INTEGER NOT NULL,
    sale_count    INTEGER NOT NULL CHECK (sale_count >= 0),
    net_minor     TEXT NOT NULL CHECK (net_minor GLOB '[0-9]*' OR net_minor GLOB '-[0-9]*'),
    PRIMARY KEY (site_id, currency, hour_start_ns)
) STRICT;
INSERT INTO hourly_totals_wide
SELECT site_id, currency, hour_start_ns, sale_count, CAST(net_minor AS TEXT)
FROM hourly_totals;
DROP TABLE hourly_totals;
ALTER TABLE hourly_totals_wide RENAME TO hourly_totals;
