-- Totals and exchange rates belong to an event. What exists belongs to the one event there was
-- (an event-less deployment's rates are kept under '' and apply to no event). SQLite changes a
-- primary key by rebuilding the table.
CREATE TABLE site_totals_by_event (
    event_id       TEXT NOT NULL,
    site_id        TEXT NOT NULL REFERENCES sites (site_id),
    currency       TEXT NOT NULL,
    sale_count     INTEGER NOT NULL CHECK (sale_count >= 0),
    gross_minor    TEXT NOT NULL CHECK (gross_minor GLOB '[0-9]*'),
    refund_count   INTEGER NOT NULL CHECK (refund_count >= 0),
    refunded_minor TEXT NOT NULL CHECK (refunded_minor GLOB '[0-9]*'),
    net_minor      TEXT NOT NULL CHECK (net_minor GLOB '[0-9]*'),
    PRIMARY KEY (event_id, site_id, currency)
) STRICT;
INSERT INTO site_totals_by_event
SELECT COALESCE((SELECT event_id FROM events ORDER BY starts_at_ns LIMIT 1), ''), site_id,
       currency, sale_count, gross_minor, refund_count, refunded_minor, net_minor
FROM site_totals;
DROP TABLE site_totals;
ALTER TABLE site_totals_by_event RENAME TO site_totals;

CREATE TABLE hourly_totals_by_event (
    event_id      TEXT NOT NULL,
    site_id       TEXT NOT NULL REFERENCES sites (site_id),
    currency      TEXT NOT NULL,
    hour_start_ns INTEGER NOT NULL,
    sale_count    INTEGER NOT NULL CHECK (sale_count >= 0),
    net_minor     TEXT NOT NULL CHECK (net_minor GLOB '[0-9]*' OR net_minor GLOB '-[0-9]*'),
    PRIMARY KEY (event_id, site_id, currency, hour_start_ns)
) STRICT;
INSERT INTO hourly_totals_by_event
SELECT COALESCE((SELECT event_id FROM events ORDER BY starts_at_ns LIMIT 1), ''), site_id,
       currency, hour_start_ns, sale_count, net_minor
FROM hourly_totals;
DROP TABLE hourly_totals;
ALTER TABLE hourly_totals_by_event RENAME TO hourly_totals;

CREATE TABLE exchange_rates_by_event (
    event_id TEXT NOT NULL,
    currency TEXT NOT NULL,
    rate     TEXT NOT NULL,
    PRIMARY KEY (event_id, currency)
) STRICT;
INSERT INTO exchange_rates_by_event
SELECT COALESCE((SELECT event_id FROM events ORDER BY starts_at_ns LIMIT 1), ''), currency, rate
FROM exchange_rates;
DROP TABLE exchange_rates;
ALTER TABLE exchange_rates_by_event RENAME TO exchange_rates;
